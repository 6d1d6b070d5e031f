// SPDX-License-Identifier: MIT
/// @file metalearn/mtl/report.hpp
/// What a multi-task comparison reports: each task's metric over a whole set, the
/// relative change against single-task baselines (Delta m, Maninis et al. 2019), and the
/// mean rank of methods.
#pragma once

#include <algorithm>
#include <cstdint>
#include <metalearn/error.hpp>
#include <metalearn/mtl/batch.hpp>
#include <string>
#include <vector>

namespace metalearn::mtl {

/// Each task's metric (accuracy or MSE, as MtlLearner::task_metrics) over all `batches`,
/// weighted by their rows: the metric of the whole set.
template <class Learner, class Model, class Scalar>
std::vector<double> task_metrics(const Learner& learner, Model& net,
                                 const std::vector<MultiTaskBatch<Scalar>>& batches) {
  if (batches.empty()) throw InvalidArgument("metalearn::mtl::task_metrics: no batches");
  std::vector<double> total;
  double rows = 0;
  for (const auto& b : batches) {
    const auto m = learner.task_metrics(net, b);
    if (total.empty()) total.assign(m.size(), 0.0);
    for (std::size_t t = 0; t < m.size(); ++t) total[t] += m[t] * static_cast<double>(b.rows());
    rows += static_cast<double>(b.rows());
  }
  for (double& x : total) x /= rows;
  return total;
}

/// Delta m in percent (Maninis et al. 2019, Eq. 5; Vandenhende et al. 2021): the mean over
/// tasks of the relative change against the baseline, counted as a loss where higher is
/// better: (1/T) sum_t (-1)^{h_t} (M_t - B_t) / B_t * 100, h_t = 1 when higher is better.
/// Negative is better than the baselines.
inline double delta_m(const std::vector<double>& method, const std::vector<double>& baseline,
                      const std::vector<bool>& higher_is_better) {
  if (method.empty() || method.size() != baseline.size() ||
      method.size() != higher_is_better.size())
    throw InvalidArgument(
        "metalearn::mtl::delta_m: need one metric, baseline and direction per "
        "task, got " +
        std::to_string(method.size()) + ", " + std::to_string(baseline.size()) + " and " +
        std::to_string(higher_is_better.size()));
  double sum = 0;
  for (std::size_t t = 0; t < method.size(); ++t) {
    if (baseline[t] == 0)
      throw InvalidArgument("metalearn::mtl::delta_m: baseline of task " + std::to_string(t) +
                            " is 0 (a relative change is undefined)");
    const double rel = (method[t] - baseline[t]) / baseline[t];
    sum += higher_is_better[t] ? -rel : rel;
  }
  return 100.0 * sum / static_cast<double>(method.size());
}

/// Mean rank of each method (rows of `metrics`, one column per task; rank 1 is best, ties
/// share the mean of their ranks): LibMTL's "MR".
inline std::vector<double> mean_rank(const std::vector<std::vector<double>>& metrics,
                                     const std::vector<bool>& higher_is_better) {
  if (metrics.empty()) throw InvalidArgument("metalearn::mtl::mean_rank: no methods");
  const std::size_t tasks = higher_is_better.size();
  for (const auto& m : metrics)
    if (m.size() != tasks)
      throw InvalidArgument("metalearn::mtl::mean_rank: every method needs " +
                            std::to_string(tasks) + " metrics");
  std::vector<double> rank(metrics.size(), 0.0);
  for (std::size_t t = 0; t < tasks; ++t)
    for (std::size_t i = 0; i < metrics.size(); ++i) {
      double better = 0, equal = 0;
      for (std::size_t j = 0; j < metrics.size(); ++j) {
        const double a = metrics[i][t], b = metrics[j][t];
        if (higher_is_better[t] ? b > a : b < a) ++better;
        if (b == a) ++equal;  // includes i itself
      }
      rank[i] += (better + 1 + (equal - 1) / 2) / static_cast<double>(tasks);
    }
  return rank;
}

}  // namespace metalearn::mtl
