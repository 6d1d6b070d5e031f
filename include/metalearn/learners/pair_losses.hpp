// SPDX-License-Identifier: MIT
/// @file metalearn/learners/pair_losses.hpp
/// Pair-loss policies of the Siamese learner.
///
/// Requirements of a PairLoss policy: `static Var<S> loss(d, different, margin)`, given the
/// distances d [B] of B pairs and `different` [B] (1: the two come from different classes,
/// 0: same class), returns the mean loss over the pairs; `static constexpr const char* name`.
#pragma once

#include <metalearn/autodiff/autodiff.hpp>

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

}  // namespace metalearn::meta
