// SPDX-License-Identifier: MIT
/// @file metalearn/learners/distances.hpp
/// Distance policies of the metric learners: how far apart two embeddings are.
///
/// Requirements of a Distance policy, for Var<S> embeddings a [n, d] and b [m, d]:
///   `static Var<S> pairwise(a, b)`  -> [n, m], entry (i, j) the distance of a_i and b_j;
///   `static Var<S> rowwise(a, b)`   -> [n] (n = m), entry i the distance of a_i and b_i;
///   `static constexpr const char* name`.
/// Every distance is twice differentiable wherever it is defined, so a metric learner can be
/// meta-trained itself.
#pragma once

#include <metalearn/autodiff/autodiff.hpp>

namespace metalearn::meta {

/// |a - b|^2: Prototypical Networks' choice (Snell et al. 2017, Eq. 2 and §2.4: a Bregman
/// divergence, which makes the prototype the cluster mean).
struct SquaredEuclidean {
  static constexpr const char* name = "squared_euclidean";
  template <class S>
  static Var<S> pairwise(const Var<S>& a, const Var<S>& b) {
    return relu(pairwise_squared_euclidean(a, b));  // the expanded form can round below 0
  }
  template <class S>
  static Var<S> rowwise(const Var<S>& a, const Var<S>& b) {
    return sum(square(a - b), 1);
  }
};

/// |a - b|, as sqrt(|a - b|^2 + eps): the epsilon keeps the gradient finite at a = b.
struct Euclidean {
  static constexpr const char* name = "euclidean";
  template <class S>
  static Var<S> pairwise(const Var<S>& a, const Var<S>& b) {
    return pairwise_euclidean(a, b, S(1e-12));
  }
  template <class S>
  static Var<S> rowwise(const Var<S>& a, const Var<S>& b) {
    return sqrt(add_scalar(sum(square(a - b), 1), S(1e-12)));
  }
};

/// 1 - cos(a, b), in [0, 2].
struct Cosine {
  static constexpr const char* name = "cosine";
  template <class S>
  static Var<S> pairwise(const Var<S>& a, const Var<S>& b) {
    return pairwise_cosine_distance(a, b, S(1e-12));
  }
  template <class S>
  static Var<S> rowwise(const Var<S>& a, const Var<S>& b) {
    const Var<S> na = add_scalar(sum(square(a), 1), S(1e-12));
    const Var<S> nb = add_scalar(sum(square(b), 1), S(1e-12));
    return S(1) - sum(a * b, 1) / sqrt(na * nb);
  }
};

/// sum_k |a_k - b_k| (Koch et al. 2015 weight it inside their Siamese head). Its second
/// derivative is zero almost everywhere; the first is undefined where a_k = b_k (abs takes 0).
struct L1 {
  static constexpr const char* name = "l1";
  template <class S>
  static Var<S> pairwise(const Var<S>& a, const Var<S>& b) {
    const Shape sa = a.shape(), sb = b.shape();
    if (sa.rank() != 2 || sb.rank() != 2 || sa[1] != sb[1])
      throw InvalidArgument("metalearn::meta::L1::pairwise: need [n, d] and [m, d], got " +
                            sa.to_string() + " and " + sb.to_string());
    // [n, 1, d] - [1, m, d] broadcasts to [n, m, d]; summed over d.
    return sum(abs(reshape(a, Shape{sa[0], 1, sa[1]}) - reshape(b, Shape{1, sb[0], sb[1]})), 2);
  }
  template <class S>
  static Var<S> rowwise(const Var<S>& a, const Var<S>& b) {
    return sum(abs(a - b), 1);
  }
};

}  // namespace metalearn::meta
