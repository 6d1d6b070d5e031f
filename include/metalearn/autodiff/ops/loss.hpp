// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/ops/loss.hpp
/// Losses, averaged over elements (MSE, BCE) or rows (cross-entropy): mse,
/// cross_entropy over integer labels, binary_cross_entropy_with_logits.
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/detail/op_support.hpp>
#include <metalearn/autodiff/ops/arithmetic.hpp>
#include <metalearn/autodiff/ops/elementwise.hpp>
#include <metalearn/autodiff/ops/reduce.hpp>
#include <metalearn/autodiff/ops/softmax.hpp>
#include <string>
#include <vector>

namespace metalearn {

namespace detail {
template <class Scalar>
void cross_entropy_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void bce_with_logits_backward(BackwardContext<Scalar>& c);

struct Labels {  // cross_entropy: one class per row, in the arena
  const std::int64_t* labels;
};

template <class Scalar>
inline const OpRule<Scalar> cross_entropy_rule{"cross_entropy", &cross_entropy_backward<Scalar>,
                                               reads_input(0)};
template <class Scalar>
inline const OpRule<Scalar> bce_with_logits_rule{"binary_cross_entropy_with_logits",
                                                 &bce_with_logits_backward<Scalar>,
                                                 reads_input(0) | reads_input(1)};
}  // namespace detail

/// Mean squared error, mean((prediction - target)^2). The shapes must be equal: a silent
/// broadcast of [N] against [N, 1] is a classic bug, so it is refused.
template <class Scalar>
Var<Scalar> mse(const Var<Scalar>& prediction, const Var<Scalar>& target) {
  if (prediction.shape() != target.shape())
    throw InvalidArgument(detail::shapes_message("mse", "prediction and target differ",
                                                 prediction.shape(), target.shape()));
  return mean(square(sub(prediction, target)));
}

/// Cross-entropy of [N, C] logits against integer labels in [0, C), averaged over the N
/// rows: mean_i (logsumexp(x_i) - x_i[y_i]). Computed through a max-shifted log-softmax,
/// so large logits neither overflow nor lose the gradient.
template <class Scalar>
Var<Scalar> cross_entropy(const Var<Scalar>& logits, const std::vector<std::int64_t>& labels) {
  const Shape s = logits.shape();
  if (s.rank() != 2)
    throw InvalidArgument("metalearn::cross_entropy: expected [N, C] logits, got shape " +
                          s.to_string());
  if (static_cast<std::int64_t>(labels.size()) != s[0] || s[0] == 0)
    throw InvalidArgument("metalearn::cross_entropy: " + std::to_string(labels.size()) +
                          " labels for logits of shape " + s.to_string());
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= s[1])
      throw InvalidArgument("metalearn::cross_entropy: label " + std::to_string(labels[i]) +
                            " at row " + std::to_string(i) + " is outside [0, " +
                            std::to_string(s[1]) + ")");
  auto* stored =
      static_cast<std::int64_t*>(logits.tape().allocate(sizeof(std::int64_t) * labels.size()));
  std::copy(labels.begin(), labels.end(), stored);
  auto out = detail::record(detail::cross_entropy_rule<Scalar>, Shape{}, {logits},
                            detail::NodeAttrs::of(detail::Labels{stored}));
  const Eigen::Map<const detail::RowMatrix<Scalar>> X(logits.value().data(), s[0], s[1]);
  Scalar total = 0;
  for (std::int64_t r = 0; r < s[0]; ++r) {
    const Scalar m = X.row(r).maxCoeff();
    total += m + std::log((X.row(r).array() - m).exp().sum()) - X(r, labels[r]);
  }
  *out.data = total / static_cast<Scalar>(s[0]);
  return out.var;
}

/// Binary cross-entropy of logits x against targets y in [0, 1] (same shape), averaged:
/// mean(max(x, 0) - x y + log(1 + e^-|x|)), which never overflows.
template <class Scalar>
Var<Scalar> binary_cross_entropy_with_logits(const Var<Scalar>& logits,
                                             const Var<Scalar>& targets) {
  if (logits.shape() != targets.shape())
    throw InvalidArgument(detail::shapes_message("binary_cross_entropy_with_logits",
                                                 "logits and targets differ", logits.shape(),
                                                 targets.shape()));
  if (logits.numel() == 0)
    throw InvalidArgument("metalearn::binary_cross_entropy_with_logits: empty input");
  auto out = detail::record(detail::bce_with_logits_rule<Scalar>, Shape{}, {logits, targets});
  const auto x = logits.value().array();
  const auto y = targets.value().array();
  *out.data = (x.max(Scalar(0)) - x * y + (-x.abs()).exp().log1p()).mean();
  return out.var;
}

namespace detail {

// d/dx_ij = g (softmax(x)_ij - [j == y_i]) / N.
template <class Scalar>
void cross_entropy_backward(BackwardContext<Scalar>& c) {
  const Var<Scalar> x = c.input(0);
  const Shape s = x.shape();
  const std::int64_t* labels = attrs_of<Labels>(c).labels;
  auto onehot = record_constant(x, s);
  std::fill(onehot.data, onehot.data + s.numel(), Scalar(0));
  for (std::int64_t r = 0; r < s[0]; ++r) onehot.data[r * s[1] + labels[r]] = Scalar(1);
  c.grad_inputs[0] =
      scale(mul(c.grad_output, sub(softmax(x), onehot.var)), Scalar(1) / static_cast<Scalar>(s[0]));
}

// d/dx = g (sigmoid(x) - y) / n,  d/dy = -g x / n.
template <class Scalar>
void bce_with_logits_backward(BackwardContext<Scalar>& c) {
  const Var<Scalar> x = c.input(0), y = c.input(1);
  const Scalar inv_n = Scalar(1) / static_cast<Scalar>(x.numel());
  if (c.needed(0)) c.grad_inputs[0] = scale(mul(c.grad_output, sub(sigmoid(x), y)), inv_n);
  if (c.needed(1)) c.grad_inputs[1] = scale(mul(c.grad_output, x), -inv_n);
}

}  // namespace detail
}  // namespace metalearn
