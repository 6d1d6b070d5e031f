// SPDX-License-Identifier: MIT
/// @file metalearn/learners/scoring.hpp
/// How learners and trainers score results: classification accuracy, a mean with its 95%
/// confidence interval, and the ROC AUC of a verifier.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/error.hpp>
#include <numeric>
#include <string>
#include <vector>

namespace metalearn::meta {

/// Fraction of rows of `scores` ([n, classes]) whose largest entry is at `labels[row]`.
template <class Scalar>
double accuracy(TensorView<Scalar> scores, const std::vector<std::int64_t>& labels) {
  const auto m = scores.matrix();
  if (static_cast<std::size_t>(m.rows()) != labels.size() || labels.empty())
    throw InvalidArgument("metalearn::meta::accuracy: " + std::to_string(m.rows()) +
                          " rows of scores for " + std::to_string(labels.size()) + " labels");
  std::int64_t correct = 0;
  for (Eigen::Index r = 0; r < m.rows(); ++r) {
    Eigen::Index best = 0;
    m.row(r).maxCoeff(&best);
    correct += (best == labels[static_cast<std::size_t>(r)]);
  }
  return static_cast<double>(correct) / static_cast<double>(labels.size());
}

/// A sample mean and the half-width of its 95% confidence interval (normal
/// approximation, 1.96 standard errors: what few-shot papers report over 600+ episodes).
struct MeanCi {
  double mean = 0;
  double ci95 = 0;
  std::size_t count = 0;
};

inline MeanCi mean_ci(const std::vector<double>& values) {
  if (values.empty()) throw InvalidArgument("metalearn::meta::mean_ci: no values");
  MeanCi r;
  r.count = values.size();
  const double n = static_cast<double>(values.size());
  for (double x : values) r.mean += x / n;
  double ss = 0;
  for (double x : values) ss += (x - r.mean) * (x - r.mean);
  r.ci95 = values.size() > 1 ? 1.96 * std::sqrt(ss / (n - 1)) / std::sqrt(n) : 0.0;
  return r;
}

/// Area under the ROC curve of `scores` (higher = more likely positive) against `positive`
/// (1 or 0): the probability that a random positive outscores a random negative, ties
/// counted half (the Mann-Whitney U statistic, computed from ranks in O(n log n)).
inline double roc_auc(const std::vector<double>& scores, const std::vector<int>& positive) {
  if (scores.size() != positive.size())
    throw InvalidArgument("metalearn::meta::roc_auc: " + std::to_string(scores.size()) +
                          " scores for " + std::to_string(positive.size()) + " labels");
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  double rank_sum = 0, pos = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double mid_rank = 0.5 * static_cast<double>(i + j + 1);  // 1-based average rank
    for (std::size_t k = i; k < j; ++k)
      if (positive[order[k]] != 0) rank_sum += mid_rank;
    i = j;
  }
  for (int p : positive) pos += (p != 0);
  const double neg = static_cast<double>(positive.size()) - pos;
  if (pos == 0 || neg == 0)
    throw InvalidArgument(
        "metalearn::meta::roc_auc: need both positive and negative examples, got " +
        std::to_string(static_cast<long>(pos)) + " positive and " +
        std::to_string(static_cast<long>(neg)) + " negative");
  return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

}  // namespace metalearn::meta
