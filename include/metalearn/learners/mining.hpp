// SPDX-License-Identifier: MIT
/// @file metalearn/learners/mining.hpp
/// Which pairs or triplets of a labelled set an embedding loss scores.
#pragma once

namespace metalearn::meta {

/// Mining among the n labelled examples of one episode, embedded in one forward pass
/// (Hermans et al. 2017, §2): the pairs and triplets they form cost no further network
/// evaluation. Used by triplet_loss and by the Siamese learner on episode batches.
enum class Mining {
  /// batch-all: every valid triplet (anchor, positive, negative), averaged (Hermans et al.,
  /// Eq. 4; O(n^3)); for pairs, every pair, same-class and different-class halves averaged.
  all,
  /// batch-hard: per anchor, its farthest positive and its nearest negative (Eq. 5); for
  /// pairs, those two pairs per anchor.
  hard,
};

}  // namespace metalearn::meta
