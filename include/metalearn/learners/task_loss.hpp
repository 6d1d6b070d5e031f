// SPDX-License-Identifier: MIT
/// @file metalearn/learners/task_loss.hpp
/// Task-loss policies of the gradient learner: how an episode is scored from the model's
/// outputs, on its support set (the inner loop) and its query set (the meta-objective).
///
/// Requirements of a task loss `L`: a const call operator
/// `template <class Scalar> Var<Scalar> operator()(const Var<Scalar>& outputs,
///  const data::Episode<Scalar>& episode, Split split) const` returning a scalar Var.
/// Optional: `static constexpr bool batches_tasks = true` together with a four-argument
/// operator taking `std::size_t tasks` (outputs [T, N, ...] of T stacked episodes; return
/// the sum of the tasks' mean losses); then the learner may run tasks stacked.
#pragma once

#include <cstddef>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/data/episode.hpp>
#include <type_traits>

namespace metalearn::meta {

/// Which half of an episode is scored.
enum class Split { support, query };

/// Cross-entropy for classification episodes, MSE for regression (the default).
struct EpisodeLoss {
  static constexpr bool batches_tasks = true;

  template <class Scalar>
  Var<Scalar> operator()(const Var<Scalar>& out, const data::Episode<Scalar>& e, Split s) const {
    const bool support = s == Split::support;
    if (e.is_classification())
      return cross_entropy(out, support ? e.support_labels : e.query_labels);
    return mse(out, constant(support ? e.support_targets : e.query_targets));
  }

  /// T stacked tasks: every task has the same number of rows, so the mean over all rows is
  /// the mean of the tasks' means.
  template <class Scalar>
  Var<Scalar> operator()(const Var<Scalar>& out, const data::Episode<Scalar>& e, Split s,
                         std::size_t tasks) const {
    if (tasks == 1) return (*this)(out, e, s);
    const Shape sh = out.shape();
    const Var<Scalar> rows = e.is_classification()
                                 ? reshape(out, Shape{sh[0] * sh[1], sh.numel() / (sh[0] * sh[1])})
                                 : out;
    return (*this)(rows, e, s) * static_cast<Scalar>(tasks);
  }
};

namespace detail {
template <class L, class = void>
inline constexpr bool loss_batches_tasks_v = false;
template <class L>
inline constexpr bool loss_batches_tasks_v<L, std::void_t<decltype(L::batches_tasks)>> =
    L::batches_tasks;
}  // namespace detail

}  // namespace metalearn::meta
