// SPDX-License-Identifier: MIT
/// @file metalearn/learners/gradient_learner.hpp
/// The gradient-based meta-learner: MAML (Finn et al. 2017) and first-order MAML as policies
/// of one class template.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/data/episode.hpp>
#include <metalearn/learners/policies.hpp>
#include <metalearn/learners/scoring.hpp>
#include <metalearn/learners/task_group.hpp>
#include <metalearn/learners/task_pool.hpp>
#include <metalearn/nn/sequential.hpp>
#include <metalearn/optim/clip.hpp>
#include <string>
#include <vector>

namespace metalearn::meta {

/// Options of the gradient-based learners.
struct MamlOptions {
  double inner_lr = 0.01;     ///< step size alpha of the inner SGD steps
  int inner_steps = 1;        ///< inner steps while meta-training
  int eval_inner_steps = 10;  ///< inner steps in evaluate() when none are given
  /// Threads for the tasks of a meta-batch (0: the hardware's count). Results are
  /// bit-identical for any count: per-task gradients are summed in task order.
  int threads = 0;
  /// Clip the meta-gradient to this global norm before the outer step (0: off).
  double clip_norm = 0.0;
  /// Memory bound for second-order learners: differentiate through only the last this
  /// many inner steps (0: all). Earlier steps are taken first-order (d theta_k / d theta
  /// taken as I, as FOMAML does) on a scratch tape freed at once, so the tape holds the
  /// graph of at most this many steps whatever inner_steps is. Exact when >= inner_steps.
  int differentiated_steps = 0;
  /// Tasks run together as one batched computation when the model batches tasks
  /// (nn::Sequential::batches_tasks, e.g. an MLP) and the meta-batch's episodes share
  /// their shapes: inputs [T, N, ...], fast weights [T, ...], batched products (the bmm
  /// formulation). 1: one task at a time. The same meta-gradient up to rounding; the
  /// grouping never depends on `threads`. Groups of 5 already amortise the per-operation
  /// cost (1.4x the one-at-a-time sinusoid meta-step; 25 measured no faster) and leave a
  /// 25-task meta-batch 5 groups to spread over threads.
  int tasks_per_group = 5;
};

/// Gradient-based meta-learning over a functional model. One task: adapt the parameters
/// theta by `inner_steps` SGD steps on the support loss, theta' = theta - alpha grad
/// L_support, then score L_query(theta'). The meta-gradient is d L_query(theta') / d theta,
/// through the inner steps (Finn et al. 2017, Eq. 1), averaged over the meta-batch.
///
/// @tparam DiffPolicy  SecondOrder (MAML: the inner gradients are recorded and
///                     differentiated) or FirstOrder (FOMAML: d theta'/d theta taken as I).
/// @tparam Scalar      float for speed, double for gradient checks.
/// @tparam AdaptPolicy AdaptAll (MAML) or AdaptHead (ANIL: the inner loop adapts the head
///                     only; the body is meta-learned but fixed within a task).
template <class DiffPolicy = SecondOrder, class Scalar = float, class AdaptPolicy = AdaptAll>
class GradientLearner {
  static_assert(detail::has_create_graph_v<DiffPolicy>,
                "DiffPolicy must declare `static constexpr bool create_graph` "
                "(see metalearn/learners/policies.hpp)");

 public:
  using Model = nn::Sequential<Scalar>;
  using Episode = data::Episode<Scalar>;

  explicit GradientLearner(MamlOptions options = {}) : options_(options) {
    if (!(options.inner_lr >= 0) || !std::isfinite(options.inner_lr) || options.inner_steps < 0 ||
        options.eval_inner_steps < 0 || options.threads < 0 || !(options.clip_norm >= 0) ||
        options.differentiated_steps < 0 || options.tasks_per_group < 1)
      throw InvalidArgument(
          "metalearn::meta::GradientLearner: need a finite inner_lr >= 0, inner "
          "steps >= 0, threads >= 0, clip_norm >= 0, differentiated_steps >= 0 and "
          "tasks_per_group >= 1");
  }
  const MamlOptions& options() const { return options_; }

  /// The tensors the outer optimizer trains, in the order of meta_gradient's result: the
  /// model's parameters, then (Meta-SGD) one step-size tensor per adapted parameter, named
  /// "step_size.<parameter>", created at inner_lr on the first call. Build the optimizer and
  /// the checkpoint over this list.
  nn::ParameterList<Scalar> meta_parameters(Model& net) {
    nn::ParameterList<Scalar> list = net.parameters();
    if constexpr (detail::learns_step_sizes_v<DiffPolicy>) {
      const auto adapted = AdaptPolicy::select(list);
      if (!has_step_sizes_for(list, adapted)) {
        step_sizes_.clear();
        for (std::size_t i : adapted)
          step_sizes_.push_back(Tensor<Scalar>(list[i].shape(), Scalar(options_.inner_lr)));
      }
      for (std::size_t j = 0; j < adapted.size(); ++j)
        list.add("step_size." + list.name(adapted[j]), step_sizes_[j]);
    }
    return list;
  }

  /// The meta-gradient of the mean query loss over `batch`, one tensor per entry of
  /// meta_parameters(net), into `grads`. Returns the step's statistics; when a loss or
  /// gradient is not finite, `finite` is false.
  StepStats meta_gradient(Model& net, const std::vector<Episode>& batch,
                          std::vector<Tensor<Scalar>>& grads) const {
    if (batch.empty())
      throw InvalidArgument("metalearn::meta::GradientLearner::meta_gradient: empty meta-batch");
    const auto params = net.parameters();
    const auto adapted = AdaptPolicy::select(params);  // once, shared by the tasks
    check_step_sizes("meta_gradient", params, adapted);
    std::vector<TensorView<Scalar>> views = params.views();
    for (auto& a : step_sizes_) views.push_back(a.view());
    const bool batched = options_.tasks_per_group > 1 && net.batches_tasks() && stackable(batch);
    const auto groups =
        group_tasks(batch, batched ? static_cast<std::size_t>(options_.tasks_per_group) : 1);
    // Batch norm with running statistics writes its buffers in forward: one thread then.
    const std::size_t threads =
        net.buffers().empty() ? task_threads(options_.threads, groups.size()) : 1;
    const auto outcomes = run_tasks<TaskOutcome<Scalar>>(
        groups.size(), threads,
        [&](std::size_t g) { return run_group(net, views, adapted, groups[g]); });

    return reduce_outcomes(outcomes, grads);  // in task order: independent of the threads
  }

  /// One meta-training step: meta-gradient over `batch`, optional clipping, then
  /// `outer.step`. A non-finite loss or gradient skips the update (see StepStats::finite).
  template <class Optimizer>
  StepStats meta_step(Model& net, Optimizer& outer, const std::vector<Episode>& batch) const {
    std::vector<Tensor<Scalar>> grads;
    const StepStats s = meta_gradient(net, batch, grads);
    apply_meta_gradient(s, grads, options_.clip_norm, outer);
    return s;
  }

  /// Adapt a copy of the parameters to `episode`'s support set with `steps` inner steps
  /// (default: eval_inner_steps) and score the query set. The model is not changed.
  EpisodeResult evaluate(Model& net, const Episode& episode, int steps = -1) const {
    if (steps < 0) steps = options_.eval_inner_steps;
    check_step_sizes("evaluate", net.parameters(), AdaptPolicy::select(net.parameters()));
    Tape<Scalar> tape;
    const Var<Scalar> out = adapted_outputs(tape, net, episode, steps);
    EpisodeResult r;
    r.steps = steps;
    r.loss = static_cast<double>(task_loss(episode, out, false).item());
    if (episode.is_classification())
      r.accuracy = accuracy(out.value(), episode.query_labels);
    else
      r.mse = r.loss;
    return r;
  }

  /// The model's outputs on `episode.query_inputs` after adapting a copy of the parameters
  /// to the support set with `steps` inner steps.
  Tensor<Scalar> predict(Model& net, const Episode& episode, int steps) const {
    check_step_sizes("predict", net.parameters(), AdaptPolicy::select(net.parameters()));
    Tape<Scalar> tape;
    return adapted_outputs(tape, net, episode, steps).to_tensor();
  }

 private:
  // Inner SGD steps on the support set (no second-order terms: each step's result becomes
  // a fresh leaf), then the forward pass on the queries.
  Var<Scalar> adapted_outputs(Tape<Scalar>& tape, Model& net, const Episode& episode,
                              int steps) const {
    std::vector<Var<Scalar>> fast = tape.leaves(net.parameters().views());
    const auto xs = tape.constant(episode.support_inputs);
    const auto adapted = AdaptPolicy::select(net.parameters());
    const std::vector<Var<Scalar>> alpha = step_size_vars(tape, false);
    for (int k = 0; k < steps; ++k) {
      inner_step(task_loss(episode, net.forward(fast, xs), true), fast, adapted, alpha, false);
      for (std::size_t i : adapted) fast[i] = tape.leaf(fast[i].value());  // a fresh leaf per step
    }
    NoGradGuard<Scalar> no_grad;
    return net.forward(fast, tape.constant(episode.query_inputs));
  }

  // theta' = theta - alpha grad L_support(theta) on the adapted parameters (Finn et al.
  // 2017, Eq. 1, inner update); with create_graph the step is recorded for the meta-gradient.
  // Meta-SGD passes one step-size Var per adapted parameter (Li et al. 2017, Eq. 3).
  void inner_step(const Var<Scalar>& loss, std::vector<Var<Scalar>>& fast,
                  const std::vector<std::size_t>& adapted, const std::vector<Var<Scalar>>& alpha,
                  bool create_graph) const {
    std::vector<Var<Scalar>> sub;
    for (std::size_t i : adapted) sub.push_back(fast[i]);
    GradOptions o;
    o.create_graph = create_graph;
    const auto g = grad(loss, sub, o);
    for (std::size_t j = 0; j < adapted.size(); ++j)
      fast[adapted[j]] = alpha.empty() ? sub[j] - g[j] * static_cast<Scalar>(options_.inner_lr)
                                       : sub[j] - alpha[j] * g[j];
  }

  // Meta-SGD's step sizes on `tape` (leaves when they are differentiated), else none.
  std::vector<Var<Scalar>> step_size_vars(Tape<Scalar>& tape, bool differentiable) const {
    std::vector<Var<Scalar>> out;
    for (const auto& a : step_sizes_)
      out.push_back(differentiable ? tape.leaf(a.view()) : tape.constant(a.view()));
    return out;
  }

  bool has_step_sizes_for(const nn::ParameterList<Scalar>& params,
                          const std::vector<std::size_t>& adapted) const {
    if (step_sizes_.size() != adapted.size()) return false;
    for (std::size_t j = 0; j < adapted.size(); ++j)
      if (step_sizes_[j].shape() != params[adapted[j]].shape()) return false;
    return true;
  }

  void check_step_sizes(const char* who, const nn::ParameterList<Scalar>& params,
                        const std::vector<std::size_t>& adapted) const {
    if constexpr (detail::learns_step_sizes_v<DiffPolicy>)
      if (!has_step_sizes_for(params, adapted))
        throw StateError(std::string("metalearn::meta::GradientLearner::") + who +
                         ": Meta-SGD has no step sizes for this model; call meta_parameters(net) "
                         "first and build the outer optimizer over its result");
  }

  /// Cross-entropy for classification, MSE for regression, on the support or query set.
  /// For `tasks` stacked tasks (outputs [T, N, ...]): the sum of the tasks' mean losses.
  static Var<Scalar> task_loss(const Episode& e, const Var<Scalar>& out, bool support,
                               std::size_t tasks = 1) {
    if (tasks == 1) {
      if (e.is_classification())
        return cross_entropy(out, support ? e.support_labels : e.query_labels);
      return mse(out, constant(support ? e.support_targets : e.query_targets));
    }
    // Every task has the same number of rows, so the mean over all rows is the mean of the
    // tasks' means.
    return task_loss(e, e.is_classification() ? rows_of_all_tasks(out) : out, support) *
           static_cast<Scalar>(tasks);
  }

  // [T, N, C] logits as [T N, C] rows, matching the concatenated labels.
  static Var<Scalar> rows_of_all_tasks(const Var<Scalar>& out) {
    const Shape s = out.shape();
    return reshape(out, Shape{s[0] * s[1], s.numel() / (s[0] * s[1])});
  }

  // The fast weights of a group of stacked tasks: one copy of each adapted parameter per
  // task ([T, ...]), so the inner gradients come out per task; the others stay shared.
  static void per_task_copies(std::vector<Var<Scalar>>& fast,
                              const std::vector<std::size_t>& adapted, std::size_t tasks) {
    if (tasks == 1) return;
    for (std::size_t i : adapted)
      fast[i] = broadcast_to(
          fast[i], detail::with_task_axis(fast[i].shape(), static_cast<std::int64_t>(tasks)));
  }

  // One group of tasks (a single task, or several stacked) on the calling thread's tape:
  // inner loop, query loss, and the sum over the group of the meta-gradients with respect
  // to `views` (the parameters, then Meta-SGD's step sizes).
  TaskOutcome<Scalar> run_group(Model& net, const std::vector<TensorView<Scalar>>& views,
                                const std::vector<std::size_t>& adapted,
                                const TaskGroup<Scalar>& group) const {
    const Episode& e = group.episode();
    const std::size_t tasks = group.tasks();
    TaskOutcome<Scalar> o;
    o.tasks = tasks;
    Tape<Scalar> tape;
    const std::vector<Var<Scalar>> leaves = tape.leaves(views);
    const std::size_t n = views.size() - step_sizes_.size();
    std::vector<Var<Scalar>> fast(leaves.begin(), leaves.begin() + static_cast<std::ptrdiff_t>(n));
    per_task_copies(fast, adapted, tasks);
    const std::vector<Var<Scalar>> alpha(leaves.begin() + static_cast<std::ptrdiff_t>(n),
                                         leaves.end());
    const auto xs = tape.constant(e.support_inputs);
    const int early = first_order_steps();
    if (early > 0) advance_first_order(tape, net, group, views, adapted, alpha, early, fast, o);
    for (int k = early; k < options_.inner_steps; ++k) {
      const auto support = task_loss(e, net.forward(fast, xs), true, tasks);
      if (k == 0) o.support_loss = static_cast<double>(support.item());
      inner_step(support, fast, adapted, alpha, DiffPolicy::create_graph);
    }
    const auto out = net.forward(fast, tape.constant(e.query_inputs));
    const auto query = task_loss(e, out, false, tasks);
    o.query_loss = static_cast<double>(query.item());
    o.metric =
        !e.is_classification()
            ? o.query_loss
            : static_cast<double>(tasks) *
                  accuracy((tasks == 1 ? out : rows_of_all_tasks(out)).value(), e.query_labels);
    if (options_.inner_steps == 0) o.support_loss = o.query_loss;
    if constexpr (detail::is_reptile_v<DiffPolicy>) {
      // Reptile trains on the query set too, then reports theta - theta' (pseudo-gradient),
      // summed over the group's tasks.
      for (int k = 0; k < options_.inner_steps; ++k)
        inner_step(task_loss(e, net.forward(fast, tape.constant(e.query_inputs)), false, tasks),
                   fast, adapted, alpha, false);
      for (std::size_t i = 0; i < n; ++i)
        o.grads.push_back(sum_to(leaves[i] - fast[i], leaves[i].shape()).to_tensor());
    } else {
      for (const auto& g : grad(query, leaves)) o.grads.push_back(g.to_tensor());
    }
    return o;
  }

  // Inner steps taken first-order before the differentiated ones (MamlOptions::
  // differentiated_steps); none for first-order learners, which keep no graph anyway.
  int first_order_steps() const {
    if (!DiffPolicy::create_graph || options_.differentiated_steps == 0) return 0;
    return std::max(0, options_.inner_steps - options_.differentiated_steps);
  }

  // The first `steps` inner steps on a scratch tape (freed when it ends), then
  // fast = theta + constant(theta_k - theta): the value of theta_k with an identity Jacobian.
  void advance_first_order(Tape<Scalar>& tape, Model& net, const TaskGroup<Scalar>& group,
                           const std::vector<TensorView<Scalar>>& views,
                           const std::vector<std::size_t>& adapted,
                           const std::vector<Var<Scalar>>& alpha, int steps,
                           std::vector<Var<Scalar>>& fast, TaskOutcome<Scalar>& o) const {
    const Episode& e = group.episode();
    std::vector<Tensor<Scalar>> delta;
    {
      Tape<Scalar> scratch;
      std::vector<Var<Scalar>> w;
      for (std::size_t i = 0; i < fast.size(); ++i) w.push_back(scratch.constant(views[i]));
      per_task_copies(w, adapted, group.tasks());
      std::vector<Var<Scalar>> a;
      for (const auto& v : alpha) a.push_back(scratch.constant(v.value()));
      const auto xs = scratch.constant(e.support_inputs);
      for (int k = 0; k < steps; ++k) {
        for (std::size_t i : adapted) w[i] = scratch.leaf(w[i].value());
        const auto support = task_loss(e, net.forward(w, xs), true, group.tasks());
        if (k == 0) o.support_loss = static_cast<double>(support.item());
        inner_step(support, w, adapted, a, false);
      }
      for (std::size_t i : adapted)  // theta_k - theta, per task when stacked
        delta.push_back((w[i] - scratch.constant(views[i])).to_tensor());
    }
    for (std::size_t j = 0; j < adapted.size(); ++j)
      fast[adapted[j]] = fast[adapted[j]] + tape.constant(delta[j]);
  }

  MamlOptions options_;
  std::vector<Tensor<Scalar>> step_sizes_;  // Meta-SGD's alpha, one per adapted parameter
};

using Maml = GradientLearner<SecondOrder>;   ///< Finn et al. 2017
using Fomaml = GradientLearner<FirstOrder>;  ///< first-order MAML (Finn et al. 2017, §5.2)
using Anil = GradientLearner<SecondOrder, float, AdaptHead>;  ///< Raghu et al. 2020
using Reptile = GradientLearner<ReptileUpdate>;  ///< Nichol et al. 2018; outer: Sgd with lr epsilon
using MetaSgd = GradientLearner<LearnedStepSizes>;  ///< Li et al. 2017

}  // namespace metalearn::meta
