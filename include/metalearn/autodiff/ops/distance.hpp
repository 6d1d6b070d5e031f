// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/ops/distance.hpp
/// Pairwise distances between two row sets: squared Euclidean, Euclidean, cosine.
#pragma once

#include <metalearn/autodiff/ops/arithmetic.hpp>
#include <metalearn/autodiff/ops/elementwise.hpp>
#include <metalearn/autodiff/ops/linalg.hpp>
#include <metalearn/autodiff/ops/reduce.hpp>
#include <metalearn/autodiff/ops/shape_ops.hpp>
#include <string>

namespace metalearn {

namespace detail {
template <class Scalar>
void check_row_sets(const char* op, const Var<Scalar>& a, const Var<Scalar>& b) {
  if (a.rank() != 2 || b.rank() != 2 || a.shape()[1] != b.shape()[1])
    throw InvalidArgument(
        shapes_message(op, "expected [n, d] and [m, d] row sets", a.shape(), b.shape()));
}
}  // namespace detail

/// [n, m] matrix of |a_i - b_j|^2 for rows a_i of a [n, d] and b_j of b [m, d], as
/// |a_i|^2 + |b_j|^2 - 2 a_i.b_j (one GEMM: the ProtoNet distance, Snell et al. 2017 Eq. 2).
/// Rounding can make an entry slightly negative when a_i is close to b_j.
template <class Scalar>
Var<Scalar> pairwise_squared_euclidean(const Var<Scalar>& a, const Var<Scalar>& b) {
  detail::check_row_sets("pairwise_squared_euclidean", a, b);
  const Var<Scalar> aa = sum(square(a), 1, true);                                   // [n, 1]
  const Var<Scalar> bb = reshape(sum(square(b), 1, true), Shape{1, b.shape()[0]});  // [1, m]
  return add(add(aa, bb), scale(matmul(a, b, false, true), Scalar(-2)));
}

/// [n, m] matrix of |a_i - b_j|, as sqrt(max(d^2, 0) + eps). The epsilon keeps the
/// gradient finite where a_i = b_j (the derivative of sqrt is infinite at 0).
template <class Scalar>
Var<Scalar> pairwise_euclidean(const Var<Scalar>& a, const Var<Scalar>& b,
                               Scalar eps = Scalar(1e-12)) {
  detail::check_row_sets("pairwise_euclidean", a, b);
  return sqrt(add_scalar(relu(pairwise_squared_euclidean(a, b)), eps));
}

/// [n, m] matrix of cosine similarities a_i.b_j / (|a_i| |b_j|); eps guards zero rows.
template <class Scalar>
Var<Scalar> pairwise_cosine_similarity(const Var<Scalar>& a, const Var<Scalar>& b,
                                       Scalar eps = Scalar(1e-12)) {
  detail::check_row_sets("pairwise_cosine_similarity", a, b);
  const Var<Scalar> an = div(a, sqrt(add_scalar(sum(square(a), 1, true), eps)));
  const Var<Scalar> bn = div(b, sqrt(add_scalar(sum(square(b), 1, true), eps)));
  return matmul(an, bn, false, true);
}

/// [n, m] matrix of cosine distances 1 - cos(a_i, b_j).
template <class Scalar>
Var<Scalar> pairwise_cosine_distance(const Var<Scalar>& a, const Var<Scalar>& b,
                                     Scalar eps = Scalar(1e-12)) {
  return Scalar(1) - pairwise_cosine_similarity(a, b, eps);
}

}  // namespace metalearn
