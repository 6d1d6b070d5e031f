// SPDX-License-Identifier: MIT
/// @file metalearn/learners/learner.hpp
/// The surface every learner shares, as a concept, and the one meta-training step built on it.
///
/// A learner `L` over `Scalar` (`L::scalar_type`) for a model `M` and batches `B` has
/// - `ParameterList<Scalar> meta_parameters(M& net)`: what the outer optimizer trains;
/// - `StepStats meta_gradient(M& net, const B& batch, std::vector<Tensor<Scalar>>& grads)
///   const`: one gradient tensor per meta-parameter;
/// - `EpisodeResult evaluate(M& net, const E& e) const`, E = `L::evaluation_type` when
///   declared (the multi-task learner's batches), else `data::Episode<Scalar>`;
/// - `options().clip_norm` (double; 0: no clipping).
/// Optional: `on_meta_step()` (called after each outer step) with `meta_steps()` and
/// `set_meta_steps(n)` (the trainer checkpoints the count), for learners with a schedule;
/// `ParameterList<Scalar> learner_state()`: state the trainer checkpoints beside the model
/// (a loss weighting's history); `static constexpr const char* rate_unit`: what
/// StepStats::tasks counts, for the trainer's rate ("tasks" when not declared; "episodes",
/// "pair batches", "examples"); `static constexpr const char* metric_name` with `static
/// constexpr bool higher_metric_is_better`: what StepStats::query_metric and the validation
/// measure when it is neither accuracy nor MSE (rl::MamlRl: the return, higher is better).
#pragma once

#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/data/episode.hpp>
#include <metalearn/learners/results.hpp>
#include <metalearn/learners/task_pool.hpp>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::meta {

namespace detail {
template <class L, class M, class = void>
struct has_meta_parameters : std::false_type {};
template <class L, class M>
struct has_meta_parameters<
    L, M, std::void_t<decltype(std::declval<L&>().meta_parameters(std::declval<M&>()))>>
    : std::true_type {};

template <class L, class M, class B, class = void>
struct has_meta_gradient : std::false_type {};
template <class L, class M, class B>
struct has_meta_gradient<L, M, B,
                         std::void_t<decltype(std::declval<const L&>().meta_gradient(
                             std::declval<M&>(), std::declval<const B&>(),
                             std::declval<std::vector<Tensor<typename L::scalar_type>>&>()))>>
    : std::is_same<decltype(std::declval<const L&>().meta_gradient(
                       std::declval<M&>(), std::declval<const B&>(),
                       std::declval<std::vector<Tensor<typename L::scalar_type>>&>())),
                   StepStats> {};

// What a learner evaluates: L::evaluation_type when it declares one (the multi-task
// learner's batches), else an Episode.
template <class L, class = void>
struct evaluation_type {
  using type = data::Episode<typename L::scalar_type>;
};
template <class L>
struct evaluation_type<L, std::void_t<typename L::evaluation_type>> {
  using type = typename L::evaluation_type;
};

template <class L, class M, class = void>
struct has_evaluate : std::false_type {};
template <class L, class M>
struct has_evaluate<
    L, M,
    std::void_t<decltype(std::declval<const L&>().evaluate(
        std::declval<M&>(), std::declval<const typename evaluation_type<L>::type&>()))>>
    : std::true_type {};

template <class L, class = void>
struct has_learner_state : std::false_type {};
template <class L>
struct has_learner_state<L, std::void_t<decltype(std::declval<L&>().learner_state())>>
    : std::true_type {};

template <class L, class = void>
struct rate_unit {
  static constexpr const char* value = "tasks";
};
template <class L>
struct rate_unit<L, std::void_t<decltype(L::rate_unit)>> {
  static constexpr const char* value = L::rate_unit;
};

template <class L, class = void>
struct has_clip_norm : std::false_type {};
template <class L>
struct has_clip_norm<L, std::void_t<decltype(double(std::declval<const L&>().options().clip_norm))>>
    : std::true_type {};

template <class L, class = void>
struct has_scalar_type : std::false_type {};
template <class L>
struct has_scalar_type<L, std::void_t<typename L::scalar_type>> : std::true_type {};

template <class L, class = void>
struct counts_meta_steps : std::false_type {};
template <class L>
struct counts_meta_steps<L, std::void_t<decltype(std::declval<L&>().on_meta_step())>>
    : std::true_type {};
}  // namespace detail

/// Compile-time check of the learner surface, one message per missing member. Called by
/// train() and meta_step().
template <class Learner, class Model, class Batch>
constexpr void require_learner() {
  using L = std::decay_t<Learner>;
  static_assert(detail::has_scalar_type<L>::value,
                "metalearn: a learner needs `using scalar_type = ...` (see "
                "metalearn/learners/learner.hpp)");
  if constexpr (detail::has_scalar_type<L>::value) {
    static_assert(detail::has_meta_parameters<L, Model>::value,
                  "metalearn: the learner needs `meta_parameters(net)` for this model (see "
                  "metalearn/learners/learner.hpp)");
    static_assert(detail::has_meta_gradient<L, Model, Batch>::value,
                  "metalearn: the learner needs `StepStats meta_gradient(net, batch, grads) const` "
                  "for this model and batch type (see metalearn/learners/learner.hpp)");
    static_assert(
        detail::has_evaluate<L, Model>::value,
        "metalearn: the learner needs `EpisodeResult evaluate(net, episode) const` for its "
        "evaluation_type (see "
        "metalearn/learners/learner.hpp)");
    static_assert(detail::has_clip_norm<L>::value,
                  "metalearn: the learner needs `options().clip_norm` (see "
                  "metalearn/learners/learner.hpp)");
  }
}

/// One meta-training step of any learner: its meta-gradient over `batch`, optional clipping
/// (`learner.options().clip_norm`), then `outer.step`; a non-finite loss or gradient skips
/// the update (StepStats::finite). A learner that counts its meta-steps (for a schedule)
/// has `on_meta_step()` called. Every learner's member `meta_step` is this.
template <class Learner, class Model, class Optimizer, class Batch>
StepStats meta_step(Learner& learner, Model& net, Optimizer& outer, const Batch& batch) {
  require_learner<Learner, Model, Batch>();
  std::vector<Tensor<typename std::decay_t<Learner>::scalar_type>> grads;
  const StepStats s = learner.meta_gradient(net, batch, grads);
  apply_meta_gradient(s, grads, learner.options().clip_norm, outer);
  if constexpr (detail::counts_meta_steps<Learner>::value) learner.on_meta_step();
  return s;
}

}  // namespace metalearn::meta
