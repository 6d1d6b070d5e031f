// SPDX-License-Identifier: MIT
/// @file metalearn/learners/validate.hpp
/// Scoring a learner on fixed episodes: meta::validate (mean and 95% CI of accuracy, MSE or
/// return), and which way the trainer's validation metric points.
#pragma once

#include <cmath>
#include <metalearn/error.hpp>
#include <metalearn/learners/results.hpp>
#include <metalearn/learners/scoring.hpp>
#include <string>
#include <type_traits>
#include <vector>

namespace metalearn::meta {

namespace detail {
template <class L, class = void>
struct declares_metric : std::false_type {};
template <class L>
struct declares_metric<L,
                       std::void_t<decltype(L::metric_name), decltype(L::higher_metric_is_better)>>
    : std::true_type {};

/// Whether a higher validation is better, and the metric's name in the progress line: the
/// learner's own (a return) when it declares them, else accuracy or MSE by the episodes.
template <class Learner, class Episode>
bool higher_is_better(const std::vector<Episode>& validation) {
  if constexpr (declares_metric<Learner>::value)
    return Learner::higher_metric_is_better;
  else
    return !validation.empty() && validation[0].is_classification();
}
template <class Learner, class Episode>
const char* metric_label(const std::vector<Episode>& validation) {
  if constexpr (declares_metric<Learner>::value)
    return Learner::metric_name;
  else
    return !validation.empty() && validation[0].is_classification() ? "acc" : "mse";
}

template <class Episode, class Evaluate>
MeanCi score_episodes(const std::vector<Episode>& episodes, Evaluate evaluate) {
  if (episodes.empty()) throw InvalidArgument("metalearn::meta::validate: no episodes");
  std::vector<double> v;
  for (const auto& e : episodes) {
    const EpisodeResult r = evaluate(e);
    v.push_back(!std::isnan(r.accuracy)      ? r.accuracy
                : !std::isnan(r.mean_return) ? r.mean_return
                                             : r.mse);
  }
  return mean_ci(v);
}
}  // namespace detail

/// Mean accuracy (classification) or MSE (regression) of `learner.evaluate` over `episodes`,
/// with its 95% confidence interval (MeanCi: mean, ci95, count).
template <class Learner, class Model, class Episode>
MeanCi validate(const Learner& learner, Model& net, const std::vector<Episode>& episodes) {
  return detail::score_episodes(episodes,
                                [&](const Episode& e) { return learner.evaluate(net, e); });
}

/// The same after `inner_steps` inner steps on each support set (a gradient learner's
/// `evaluate(net, episode, steps)`), e.g. MAML's 10-step figure of Finn et al. Fig. 2.
template <class Learner, class Model, class Episode>
MeanCi validate(const Learner& learner, Model& net, const std::vector<Episode>& episodes,
                int inner_steps) {
  if (inner_steps < 0)
    throw InvalidArgument("metalearn::meta::validate: inner_steps must be >= 0, got " +
                          std::to_string(inner_steps));
  return detail::score_episodes(
      episodes, [&](const Episode& e) { return learner.evaluate(net, e, inner_steps); });
}

}  // namespace metalearn::meta
