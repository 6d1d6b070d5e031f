// SPDX-License-Identifier: MIT
/// @file metalearn/learners/results.hpp
/// What every learner reports: the statistics of a meta-step, the outcome of an episode.
#pragma once

#include <cstdint>
#include <limits>

namespace metalearn::meta {

/// What one meta-training step did (means over the tasks of the meta-batch).
struct StepStats {
  double support_loss = 0;  ///< before adaptation
  double query_loss = 0;    ///< after adaptation: the meta-objective
  /// Query accuracy (classification) or MSE (regression) after adaptation; the query loss
  /// when the outputs do not have the targets' shape (a user model and loss).
  double query_metric = 0;
  double grad_norm = 0;  ///< norm of the meta-gradient (before clipping)
  bool finite = true;    ///< false: a loss or gradient was NaN/inf and no update was made
  std::int64_t tasks = 0;
};

/// The outcome of adapting to one episode and scoring its query set.
struct EpisodeResult {
  double loss = 0;
  /// Fraction of queries classified correctly (NaN for regression).
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  /// Mean squared error on the queries (NaN for classification; the loss when the outputs
  /// do not have the targets' shape).
  double mse = std::numeric_limits<double>::quiet_NaN();
  /// Mean return of the episodes after adaptation (reinforcement learning; NaN otherwise).
  double mean_return = std::numeric_limits<double>::quiet_NaN();
  int steps = 0;
};

}  // namespace metalearn::meta
