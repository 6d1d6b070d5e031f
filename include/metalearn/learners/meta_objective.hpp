// SPDX-License-Identifier: MIT
/// @file metalearn/learners/meta_objective.hpp
/// Meta-objective policies of the gradient learner: what one task contributes to the
/// meta-gradient. The learner hands the policy a `task` (one episode, or several stacked,
/// on the calling thread's tape) offering:
/// - `start()`: the task's fast weights (an Adapted model) at the meta-parameters;
/// - `adapt(fast, steps, order, split = Split::support)`: inner steps with the learner's
///   inner update and task loss;
/// - `loss(fast, split)`, `query(fast)` (the query loss, also reported in StepStats);
/// - `differentiate(objective)`: the meta-gradient is d objective / d meta-parameters; or
///   `set_gradient(tensors)`, one per meta-parameter, for objectives that are not a loss;
/// - `leaves()` (the meta-parameters on this tape: the model's, then the inner update's),
///   `model_parameters()`, `inner_steps()`, `meta_step()` (meta-steps taken so far),
///   `setup()`, `rule()` (the inner update bound to this task), `tasks()`.
///
/// Requirements of a meta-objective `O`: `template <class Task> void operator()(Task& task)
/// const` that ends with `differentiate` or `set_gradient`. Optional: `static constexpr
/// bool batches_tasks = false` when stacked tasks would not give the per-task result;
/// `adapt_for_evaluation(task, fast, steps) const`, the adaptation evaluate() and adapt()
/// use (default: `task.adapt(fast, steps, Order::none)`).
#pragma once

#include <algorithm>
#include <cstdint>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <metalearn/learners/adapt.hpp>
#include <metalearn/learners/task_loss.hpp>
#include <string>
#include <type_traits>
#include <vector>

namespace metalearn::meta {

/// MAML's objective: the query loss after the inner steps, L_query(theta') (Finn et al.
/// 2017, Eq. 1), differentiated through the steps (Order::second) or with d theta'/d theta
/// taken as I (Order::first: FOMAML).
template <Order InnerOrder = Order::second>
struct FinalQueryLoss {
  static_assert(InnerOrder != Order::none,
                "FinalQueryLoss: Order::none leaves no gradient path to the meta-parameters");
  template <class Task>
  void operator()(Task& task) const {
    auto fast = task.start();
    task.adapt(fast, task.inner_steps(), InnerOrder);
    task.differentiate(task.query(fast));
  }
};

/// Reptile (Nichol et al. 2018): no gradient through the inner loop; the meta-update moves
/// theta toward the adapted weights, theta <- theta + epsilon (theta' - theta). The inner
/// loop trains on the whole task (support, then query set). The task reports the
/// pseudo-gradient theta - theta', so plain SGD with learning rate epsilon is exactly
/// Reptile's update (Algorithm 2, batched).
struct ReptileDirection {
  template <class Task>
  void operator()(Task& task) const {
    auto fast = task.start();
    task.adapt(fast, task.inner_steps(), Order::first);
    task.query(fast);  // the reported query loss: after the support steps
    task.adapt(fast, task.inner_steps(), Order::first, Split::query);
    const auto& theta = task.leaves();
    std::vector<Tensor<typename Task::scalar_type>> g;
    for (std::size_t i = 0; i < theta.size(); ++i)
      g.push_back(i < task.model_parameters()
                      ? sum_to(theta[i] - fast.parameters()[i], theta[i].shape()).to_tensor()
                      : Tensor<typename Task::scalar_type>(theta[i].shape(), 0));
    task.set_gradient(std::move(g));
  }
};

/// The pretrained baseline of Finn et al. 2017 (§5.1, Fig. 2): one network trained on all
/// the tasks jointly, without inner steps (the loss at theta on the support and query
/// points, averaged), then fine-tuned by gradient descent at test time (evaluate's inner
/// steps). What MAML is measured against: it learns the tasks' average, not how to adapt.
struct PretrainedLoss {
  template <class Task>
  void operator()(Task& task) const {
    using S = typename Task::scalar_type;
    auto fast = task.start();
    const Var<S> support = task.loss(fast, Split::support);
    task.differentiate((support + task.query(fast)) * S(0.5));
  }
};

/// Options of MultiStepLoss.
struct MultiStepLossOptions {
  /// Meta-steps over which the per-step weights anneal from uniform to the final step only
  /// (the paper anneals over its first 10 epochs; 0: only the final step from the start).
  std::int64_t anneal_meta_steps = 5000;
  /// Derivative-order annealing: the first this many meta-steps are first order (0: none).
  std::int64_t first_order_meta_steps = 0;
  /// The smallest weight a non-final step keeps, as a fraction of the uniform weight 1/S.
  double min_weight_fraction = 0.03;
};

/// MAML++'s multi-step loss (Antoniou et al. 2019, §4 "Multi-Step Loss Optimization"): the
/// meta-objective is sum_k w_k L_query(theta_k) over the inner steps k = 1..S, with the
/// weights starting uniform (1/S) and annealed toward the final step as in the authors'
/// code: after e meta-steps every non-final weight is max(1/S - e / (S N), f / S) and the
/// final one min(1/S + e (S - 1) / (S N), 1 - (S - 1) f / S), N = anneal_meta_steps and f =
/// min_weight_fraction, so they always sum to 1 and reach the floor at e = (1 - f) N. With
/// derivative-order annealing (first_order_meta_steps), the early meta-steps are first
/// order. Every step is differentiated (differentiated_steps must be 0).
struct MultiStepLoss {
  MultiStepLossOptions options;

  MultiStepLoss() = default;
  explicit MultiStepLoss(MultiStepLossOptions o) : options(o) {
    if (o.anneal_meta_steps < 0 || o.first_order_meta_steps < 0 ||
        !(o.min_weight_fraction >= 0 && o.min_weight_fraction <= 1))
      throw InvalidArgument(
          "metalearn::meta::MultiStepLoss: need anneal_meta_steps >= 0, "
          "first_order_meta_steps >= 0 and min_weight_fraction in [0, 1]");
  }

  /// The weights w_1..w_S after `meta_step` meta-steps.
  std::vector<double> weights(int steps, std::int64_t meta_step) const {
    if (steps <= 0) return {};
    const double uniform = 1.0 / steps;
    const double floor = options.min_weight_fraction * uniform;
    const double progress = options.anneal_meta_steps == 0
                                ? 1.0
                                : static_cast<double>(meta_step) / options.anneal_meta_steps;
    std::vector<double> w(static_cast<std::size_t>(steps),
                          std::max(uniform * (1 - progress), floor));
    w.back() = std::min(uniform + (steps - 1) * uniform * progress, 1.0 - (steps - 1) * floor);
    return w;
  }

  template <class Task>
  void operator()(Task& task) const {
    using S = typename Task::scalar_type;
    if (task.differentiated_steps() > 0 && task.differentiated_steps() < task.inner_steps())
      throw InvalidArgument(
          "metalearn::meta::MultiStepLoss: every inner step enters the multi-step loss, so all "
          "are differentiated; set GradientLearnerOptions::differentiated_steps to 0");
    const Order order =
        task.meta_step() < options.first_order_meta_steps ? Order::first : Order::second;
    const std::vector<double> w = weights(task.inner_steps(), task.meta_step());
    auto fast = task.start();
    if (w.empty()) return task.differentiate(task.query(fast));
    Var<S> total;
    for (std::size_t k = 0; k < w.size(); ++k) {
      task.adapt(fast, 1, order);
      const Var<S> term = task.query(fast) * static_cast<S>(w[k]);  // the last one is reported
      total = k == 0 ? term : total + term;
    }
    task.differentiate(total);
  }
};

namespace detail {
template <class O, class Task, class Fast, class = void>
inline constexpr bool has_evaluation_adapt_v = false;
template <class O, class Task, class Fast>
inline constexpr bool
    has_evaluation_adapt_v<O, Task, Fast,
                           std::void_t<decltype(std::declval<const O&>().adapt_for_evaluation(
                               std::declval<Task&>(), std::declval<Fast&>(), 0))>> = true;

template <class O, class = void>
inline constexpr bool objective_batches_tasks_v = true;
template <class O>
inline constexpr bool objective_batches_tasks_v<O, std::void_t<decltype(O::batches_tasks)>> =
    O::batches_tasks;
}  // namespace detail

}  // namespace metalearn::meta
