// SPDX-License-Identifier: MIT
/// @file metalearn/optim/clip.hpp
/// Gradient clipping, by value and by global norm, on gradients taken off the tape.
#pragma once

#include <cmath>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/error.hpp>
#include <string>
#include <vector>

namespace metalearn::optim {

/// Euclidean norm of all gradients together (NaN if any entry is NaN).
template <class Scalar>
double global_norm(const std::vector<Tensor<Scalar>>& grads) {
  double sq = 0;
  for (const auto& g : grads) sq += g.array().template cast<double>().square().sum();
  return std::sqrt(sq);
}

/// Clamp every entry to [-limit, limit].
template <class Scalar>
void clip_by_value(std::vector<Tensor<Scalar>>& grads, double limit) {
  if (!(limit > 0))
    throw InvalidArgument("metalearn::optim::clip_by_value: limit must be > 0, got " +
                          std::to_string(limit));
  for (auto& g : grads) g.array() = g.array().max(Scalar(-limit)).min(Scalar(limit));
}

/// Scale all gradients together so their global norm is at most `max_norm` (Pascanu et
/// al. 2013). Returns the norm before clipping; a non-finite norm leaves the gradients
/// untouched, so the caller can see it and skip the step.
template <class Scalar>
double clip_by_global_norm(std::vector<Tensor<Scalar>>& grads, double max_norm) {
  if (!(max_norm > 0))
    throw InvalidArgument("metalearn::optim::clip_by_global_norm: max_norm must be > 0, got " +
                          std::to_string(max_norm));
  const double norm = global_norm(grads);
  if (std::isfinite(norm) && norm > max_norm)
    for (auto& g : grads) g.array() *= Scalar(max_norm / norm);
  return norm;
}

}  // namespace metalearn::optim
