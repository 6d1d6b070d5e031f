// SPDX-License-Identifier: MIT
/// @file metalearn/learners/pair_losses.hpp
/// Pair-loss policies of the Siamese learner.
///
/// Requirements of a PairLoss policy: `static Var<S> loss(d, different, margin)`, given the
/// distances d [B] of B pairs and `different` [B] (1: the two come from different classes,
/// 0: same class), returns the mean loss over the pairs; `static constexpr const char* name`.
#pragma once

#include <metalearn/autodiff/autodiff.hpp>
#include <type_traits>

namespace metalearn::meta {

/// L = (1 - y) D + y max(0, m - D): same-class pairs are pulled together, different-class
/// pairs pushed at least the margin m apart (the contrastive loss, Hadsell et al. 2006, in
/// its unsquared form; with y = 1 for different classes, as in Eq. 4 of that paper).
struct Contrastive {
  static constexpr const char* name = "contrastive";
  template <class S>
  static Var<S> loss(const Var<S>& d, const Var<S>& different, S margin) {
    return mean((S(1) - different) * d + different * relu(margin - d));
  }
};

/// L = (1 - y) D^2 / 2 + y max(0, m - D)^2 / 2: Hadsell et al. 2006, Eq. 4 exactly.
struct SquaredContrastive {
  static constexpr const char* name = "squared_contrastive";
  template <class S>
  static Var<S> loss(const Var<S>& d, const Var<S>& different, S margin) {
    return scale(mean((S(1) - different) * square(d) + different * square(relu(margin - d))),
                 S(0.5));
  }
};

/// Koch et al. 2015's head (§3.1, Eq. 1-2): p(same) = sigmoid(sum_k alpha_k |f1_k - f2_k| +
/// beta) with learned alpha [features] and beta, trained with binary cross-entropy. The
/// Siamese learner owns alpha and beta (SiameseOptions::head_features, listed by
/// meta_parameters) and reports -logit as the pair's "distance", so verification and
/// classification by the support set work as with the other losses (threshold 0: p = 1/2).
/// The Distance parameter is not used with this loss.
struct KochHead {
  static constexpr const char* name = "koch";
  static constexpr bool learned_head = true;
  /// Binary cross-entropy of the logits z = -d against "same class" = 1 - different.
  template <class S>
  static Var<S> loss(const Var<S>& d, const Var<S>& different, S /*margin*/) {
    return binary_cross_entropy_with_logits(-d, S(1) - different);
  }
};

namespace detail {
template <class T, class = void>
inline constexpr bool has_learned_head_v = false;
template <class T>
inline constexpr bool has_learned_head_v<T, std::void_t<decltype(T::learned_head)>> =
    T::learned_head;
}  // namespace detail

}  // namespace metalearn::meta
