// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/ops/softmax.hpp
/// softmax and log_softmax along the last axis, numerically stable.
#pragma once

#include <cmath>
#include <metalearn/autodiff/detail/op_support.hpp>
#include <metalearn/autodiff/ops/arithmetic.hpp>
#include <metalearn/autodiff/ops/elementwise.hpp>
#include <metalearn/autodiff/ops/reduce.hpp>

namespace metalearn {

namespace detail {
template <class Scalar>
void softmax_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void log_softmax_backward(BackwardContext<Scalar>& c);

template <class Scalar>
inline const OpRule<Scalar> softmax_rule{"softmax", &softmax_backward<Scalar>, reads_output};
template <class Scalar>
inline const OpRule<Scalar> log_softmax_rule{"log_softmax", &log_softmax_backward<Scalar>,
                                             reads_output};

/// Row-wise (last axis) log-sum-exp shift: writes x - max - log(sum(exp(x - max))).
template <class Scalar>
void log_softmax_rows(const Scalar* x, Scalar* out, std::int64_t rows, std::int64_t cols) {
  using Map = Eigen::Map<const RowMatrix<Scalar>>;
  const Map X(x, rows, cols);
  Eigen::Map<RowMatrix<Scalar>> O(out, rows, cols);
  for (std::int64_t r = 0; r < rows; ++r) {
    const Scalar m = X.row(r).maxCoeff();
    const Scalar lse = m + std::log((X.row(r).array() - m).exp().sum());
    O.row(r).array() = X.row(r).array() - lse;
  }
}

inline void require_classes(const char* op, const Shape& s) {
  if (s.rank() < 1 || s.cols() == 0)
    throw InvalidArgument(std::string("metalearn::") + op +
                          ": expected at least one entry along the last axis, got shape " +
                          s.to_string());
}
}  // namespace detail

/// exp(x) / sum(exp(x)) along the last axis.
template <class Scalar>
Var<Scalar> softmax(const Var<Scalar>& x) {
  const Shape s = x.shape();
  detail::require_classes("softmax", s);
  auto out = detail::record(detail::softmax_rule<Scalar>, s, {x});
  detail::log_softmax_rows(x.value().data(), out.data, s.rows(), s.cols());
  Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>> o(out.data, s.numel());
  o = o.exp();
  return out.var;
}

/// x - log(sum(exp(x))) along the last axis.
template <class Scalar>
Var<Scalar> log_softmax(const Var<Scalar>& x) {
  const Shape s = x.shape();
  detail::require_classes("log_softmax", s);
  auto out = detail::record(detail::log_softmax_rule<Scalar>, s, {x});
  detail::log_softmax_rows(x.value().data(), out.data, s.rows(), s.cols());
  return out.var;
}

namespace detail {
// y = softmax(x): dx = y * (g - sum(g * y, last axis)).
template <class Scalar>
void softmax_backward(BackwardContext<Scalar>& c) {
  const Var<Scalar> y = c.output(), g = c.grad_output;
  c.grad_inputs[0] = mul(y, sub(g, sum(mul(g, y), -1, true)));
}
// y = log_softmax(x): dx = g - softmax(x) * sum(g, last axis).
template <class Scalar>
void log_softmax_backward(BackwardContext<Scalar>& c) {
  const Var<Scalar> g = c.grad_output;
  c.grad_inputs[0] = sub(g, mul(exp(c.output()), sum(g, -1, true)));
}
}  // namespace detail
}  // namespace metalearn
