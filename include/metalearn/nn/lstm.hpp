// SPDX-License-Identifier: MIT
/// @file metalearn/nn/lstm.hpp
/// One step of a long short-term memory cell (Hochreiter & Schmidhuber 1997, with the
/// forget gate of Gers et al. 2000), as a function of recorded Vars: differentiable to any
/// order, so a recurrent part of a model (Matching Networks' full-context embeddings) meets
/// second-order meta-learning like any other op.
#pragma once

#include <cstdint>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <string>
#include <utility>

namespace metalearn::nn {

/// The hidden state and the cell of an LSTM after a step, both [hidden, n].
template <class Scalar>
struct LstmState {
  Var<Scalar> hidden, cell;
};

/// One LSTM step in column layout (each column is one sequence, so the four gates are row
/// blocks and need no copy): `gates` [4 hidden, n] holds the pre-activations (input and
/// recurrent products plus the bias) in PyTorch's order: input i, forget f, candidate g,
/// output o; `cell` [hidden, n] is the previous cell. Returns
/// c' = sigmoid(f) * c + sigmoid(i) * tanh(g) and h' = sigmoid(o) * tanh(c').
template <class Scalar>
LstmState<Scalar> lstm_step(const Var<Scalar>& gates, const Var<Scalar>& cell) {
  const Shape g = gates.shape(), c = cell.shape();
  if (g.rank() != 2 || c.rank() != 2 || g[0] != 4 * c[0] || g[1] != c[1])
    throw InvalidArgument("metalearn::nn::lstm_step: gates " + g.to_string() + " and cell " +
                          c.to_string() + " do not match: expected [4 h, n] and [h, n]");
  const std::int64_t h = c[0];
  const Var<Scalar> next = sigmoid(slice(gates, h, 2 * h)) * cell +
                           sigmoid(slice(gates, 0, h)) * tanh(slice(gates, 2 * h, 3 * h));
  return {sigmoid(slice(gates, 3 * h, 4 * h)) * tanh(next), next};
}

}  // namespace metalearn::nn
