// SPDX-License-Identifier: MIT
/// @file metalearn/learners/gradient_learner.hpp
/// The gradient-based meta-learner: one class template composing four policies (inner
/// update, meta-objective, adaptation set, task loss); MAML (Finn et al. 2017) and its
/// family are aliases.
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/data/episode.hpp>
#include <metalearn/learners/adapt.hpp>
#include <metalearn/learners/imaml.hpp>
#include <metalearn/learners/learner.hpp>
#include <metalearn/learners/policies.hpp>
#include <metalearn/learners/scoring.hpp>
#include <metalearn/learners/task_group.hpp>
#include <metalearn/learners/task_pool.hpp>
#include <metalearn/learners/task_run.hpp>
#include <metalearn/nn/model.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::meta {

/// Options of the gradient-based learners (set them by name).
struct GradientLearnerOptions {
  double inner_lr = 0.01;     ///< step size alpha of the inner steps (the first, if learned)
  int inner_steps = 1;        ///< inner steps while meta-training
  int eval_inner_steps = 10;  ///< inner steps in evaluate() when none are given
  /// Threads for the tasks of a meta-batch, the spare ones for each task's ops, and all of
  /// them for evaluate()'s ops (0: the hardware's count). Results are bit-identical for any
  /// count: per-task gradients are summed in task order, ops are chunked by shape.
  int threads = 0;
  /// Clip the meta-gradient to this global norm before the outer step (0: off).
  double clip_norm = 0.0;
  /// Memory bound for second-order learners: differentiate through only the last this
  /// many inner steps (0: all). Earlier steps are taken first-order (d theta_k / d theta
  /// taken as I, as FOMAML does) on a scratch tape freed at once, so the tape holds the
  /// graph of at most this many steps whatever inner_steps is. Exact when >= inner_steps.
  /// (MultiStepLoss differentiates every step.)
  int differentiated_steps = 0;
  /// Tasks run together as one batched computation when the model batches tasks
  /// (nn::batches_tasks, e.g. an MLP Sequential), the task loss does (EpisodeLoss) and the
  /// meta-batch's episodes share their shapes: inputs [T, N, ...], fast weights [T, ...],
  /// batched products (the bmm formulation). 1: one task at a time. The same
  /// meta-gradient up to rounding; the grouping never depends on `threads`. Groups of at
  /// most 7 already amortise the per-operation cost (docs/learners.md) and cut a 25-task
  /// meta-batch into 4 near-equal groups (7, 6, 6, 6: group_tasks) for 2 or 4 threads or
  /// ranks.
  int tasks_per_group = 7;
};

/// Gradient-based meta-learning over any model (metalearn/nn/model.hpp). One task: the
/// adaptation set's parameters take `inner_steps` steps of the inner update on the support
/// loss, then the meta-objective scores the adapted model; the meta-gradient with respect
/// to meta_parameters() is averaged over the meta-batch.
///
/// @tparam Update    inner update (inner_update.hpp): InnerSgd, LearnedStepSizes (Meta-SGD),
///                   PerLayerStepSizes (MAML++'s LSLR).
/// @tparam Objective meta-objective (meta_objective.hpp): FinalQueryLoss<Order::second>
///                   (MAML), FinalQueryLoss<Order::first> (FOMAML), ReptileDirection,
///                   MultiStepLoss (MAML++), ImplicitGradient (iMAML).
/// @tparam AdaptSet  adaptation set (adaptation_set.hpp): AdaptAll, AdaptHead (ANIL),
///                   AdaptContext (CAVIA).
/// @tparam Loss      task loss (task_loss.hpp): EpisodeLoss or any user loss.
/// @tparam Scalar    float for speed, double for gradient checks.
template <class Update = InnerSgd, class Objective = FinalQueryLoss<Order::second>,
          class AdaptSet = AdaptAll, class Loss = EpisodeLoss, class Scalar = float>
class GradientLearner {
 public:
  using scalar_type = Scalar;
  using Episode = data::Episode<Scalar>;

  /// `policies`: instances of the Objective, Update or Loss policy, in any order, each at
  /// most once, the others default-constructed, e.g. `Imaml(o, ImplicitGradient(io))`.
  template <class... Policies>
  explicit GradientLearner(GradientLearnerOptions options = {}, Policies&&... policies)
      : options_(options) {
    (take(std::forward<Policies>(policies)), ...);
    if (!(options.inner_lr >= 0) || !std::isfinite(options.inner_lr) || options.inner_steps < 0 ||
        options.eval_inner_steps < 0 || options.threads < 0 || !(options.clip_norm >= 0) ||
        options.differentiated_steps < 0 || options.tasks_per_group < 1)
      throw InvalidArgument(
          "metalearn::meta::GradientLearner: need a finite inner_lr >= 0, inner "
          "steps >= 0, threads >= 0, clip_norm >= 0, differentiated_steps >= 0 and "
          "tasks_per_group >= 1");
  }
  const GradientLearnerOptions& options() const { return options_; }
  const Objective& objective() const { return objective_; }
  const Update& update() const { return update_; }
  const Loss& loss() const { return loss_; }

  /// Meta-steps taken (meta_step counts them; schedules such as MAML++'s annealing read
  /// it; train() checkpoints and restores it).
  std::int64_t meta_steps() const { return meta_steps_; }
  void set_meta_steps(std::int64_t n) { meta_steps_ = n; }

  /// The tensors the outer optimizer trains, in the order of meta_gradient's result: the
  /// model's parameters, then the inner update's own (Meta-SGD's "step_size.<parameter>",
  /// created at inner_lr on the first call). Build the optimizer and the checkpoint over
  /// this list.
  template <class Model>
  ParameterList<Scalar> meta_parameters(Model& net) {
    nn::require_model<Model, Scalar>();
    ParameterList<Scalar> list = net.parameters();
    const auto wanted = update_.meta_tensors(list, AdaptSet::select(list), setup());
    if (!owns(wanted)) {
      own_.clear();
      for (const auto& m : wanted) own_.push_back(Tensor<Scalar>(m.shape, Scalar(m.init)));
    }
    for (std::size_t j = 0; j < wanted.size(); ++j) list.add(wanted[j].name, own_[j]);
    return list;
  }

  /// The meta-gradient of the mean meta-objective over `batch`, one tensor per entry of
  /// meta_parameters(net), into `grads`. Returns the step's statistics; when a loss or
  /// gradient is not finite, `finite` is false.
  template <class Model>
  StepStats meta_gradient(Model& net, const std::vector<Episode>& batch,
                          std::vector<Tensor<Scalar>>& grads) const {
    nn::require_model<Model, Scalar>();
    if (batch.empty())
      throw InvalidArgument("metalearn::meta::GradientLearner::meta_gradient: empty meta-batch");
    const auto params = net.parameters();
    const auto adapted = AdaptSet::select(params);  // once, shared by the tasks
    check_own("meta_gradient", params, adapted);
    std::vector<TensorView<Scalar>> views = params.views();
    for (auto& a : own_) views.push_back(a.view());
    const bool batched = options_.tasks_per_group > 1 && nn::batches_tasks(net) &&
                         detail::loss_batches_tasks_v<Loss> &&
                         detail::objective_batches_tasks_v<Objective> && stackable(batch);
    const auto groups =
        group_tasks(batch, batched ? static_cast<std::size_t>(options_.tasks_per_group) : 1);
    // Batch norm with running statistics writes its buffers in forward: one task at a time
    // then, its ops on every thread.
    const ThreadPlan plan{options_.threads, net.buffers().empty()};
    const auto outcomes = run_tasks<TaskOutcome<Scalar>>(groups.size(), plan, [&](std::size_t g) {
      Tape<Scalar> tape;
      Run<Model> task(net, views, params.size(), adapted, groups[g], policies());
      objective_(task);
      return task.outcome();
    });
    return reduce_outcomes(outcomes, grads);  // in task order: independent of the threads
  }

  /// One meta-training step (see the free meta_step).
  template <class Model, class Optimizer>
  StepStats meta_step(Model& net, Optimizer& outer, const std::vector<Episode>& batch) {
    return meta::meta_step(*this, net, outer, batch);
  }
  /// Called by meta_step after the outer step.
  void on_meta_step() { ++meta_steps_; }

  /// The learner's own inner loop on a copy of the parameters, on the calling thread's
  /// tape: `steps` steps (default: eval_inner_steps) on `episode`'s support set, not
  /// differentiated (Order::none), or the objective's own evaluation adaptation (iMAML's
  /// proximal loop). Keep, call or adapt further the result.
  template <class Model>
  Adapted<Model, Scalar> adapt(Model& net, const Episode& episode, int steps = -1) const {
    nn::require_model<Model, Scalar>();
    if (steps < 0) steps = options_.eval_inner_steps;
    const auto params = net.parameters();
    const auto adapted = AdaptSet::select(params);
    check_own("adapt", params, adapted);
    std::vector<TensorView<Scalar>> views = params.views();
    for (auto& a : own_) views.push_back(a.view());
    const TaskGroup<Scalar> single(episode);
    Run<Model> task(net, views, params.size(), adapted, single, policies(), false);
    auto fast = task.start();
    if constexpr (detail::has_evaluation_adapt_v<Objective, Run<Model>, Adapted<Model, Scalar>>)
      objective_.adapt_for_evaluation(task, fast, steps);
    else
      task.adapt(fast, steps, Order::none);
    return fast;
  }

  /// Adapt a copy of the parameters to `episode`'s support set with `steps` inner steps
  /// (default: eval_inner_steps) and score the query set. The model is not changed.
  template <class Model>
  EpisodeResult evaluate(Model& net, const Episode& episode, int steps = -1) const {
    const IntraOpThreads ops(op_threads(options_.threads));  // one episode: its ops on every thread
    if (steps < 0) steps = options_.eval_inner_steps;
    Tape<Scalar> tape;
    const Var<Scalar> out = adapted_outputs(net, episode, steps);
    EpisodeResult r;
    r.steps = steps;
    r.loss = static_cast<double>(score(out, episode).item());
    if (episode.is_classification())
      r.accuracy = accuracy(out.value(), episode.query_labels);
    else
      r.mse = regression_metric(out, episode, r.loss);
    return r;
  }

  /// The model's outputs on `episode.query_inputs` after adapting a copy of the parameters
  /// to the support set with `steps` inner steps.
  template <class Model>
  Tensor<Scalar> predict(Model& net, const Episode& episode, int steps) const {
    Tape<Scalar> tape;
    return adapted_outputs(net, episode, steps).to_tensor();
  }

 private:
  template <class Model>
  using Run = TaskRun<Model, Scalar, Update, AdaptSet, Loss>;

  template <class P>
  void take(P&& policy) {
    using T = std::decay_t<P>;
    static_assert(
        std::is_same_v<T, Objective> || std::is_same_v<T, Update> || std::is_same_v<T, Loss>,
        "GradientLearner: an argument after the options must be an instance of the "
        "learner's Objective, Update or Loss policy");
    if constexpr (std::is_same_v<T, Objective>)
      objective_ = std::forward<P>(policy);
    else if constexpr (std::is_same_v<T, Update>)
      update_ = std::forward<P>(policy);
    else
      loss_ = std::forward<P>(policy);
  }

  InnerSetup setup() const { return InnerSetup{options_.inner_lr, options_.inner_steps}; }
  TaskPolicies<Update, Loss> policies() const {
    return {update_, loss_, setup(), options_.differentiated_steps, meta_steps_};
  }

  template <class Model>
  Var<Scalar> adapted_outputs(Model& net, const Episode& episode, int steps) const {
    const auto fast = adapt(net, episode, steps);
    NoGradGuard<Scalar> no_grad;
    return fast.forward(constant(episode.query_inputs));
  }

  Var<Scalar> score(const Var<Scalar>& out, const Episode& e) const {
    NoGradGuard<Scalar> no_grad;
    return loss_(out, e, Split::query);
  }

  // The update's tensors exist and match what it wants for this model.
  bool owns(const std::vector<MetaTensor>& wanted) const {
    if (own_.size() != wanted.size()) return false;
    for (std::size_t j = 0; j < wanted.size(); ++j)
      if (own_[j].shape() != wanted[j].shape) return false;
    return true;
  }
  void check_own(const char* who, const ParameterList<Scalar>& params,
                 const std::vector<std::size_t>& adapted) const {
    if (!owns(update_.meta_tensors(params, adapted, setup())))
      throw StateError(std::string("metalearn::meta::GradientLearner::") + who +
                       ": the inner update has no tensors for this model (Meta-SGD's or "
                       "MAML++'s step sizes); call meta_parameters(net) first and build the "
                       "outer optimizer over its result");
  }

  GradientLearnerOptions options_;
  Objective objective_;
  Update update_;
  Loss loss_;
  std::vector<Tensor<Scalar>> own_;  // the inner update's tensors (MetaTensor order)
  std::int64_t meta_steps_ = 0;
};

/// The published algorithms, for any Scalar (`BasicMaml<double>` for gradient checks) and
/// as float learners.
template <class Scalar = float>
using BasicMaml = GradientLearner<InnerSgd, FinalQueryLoss<Order::second>, AdaptAll, EpisodeLoss,
                                  Scalar>;  ///< Finn et al. 2017
template <class Scalar = float>
using BasicFomaml = GradientLearner<InnerSgd, FinalQueryLoss<Order::first>, AdaptAll, EpisodeLoss,
                                    Scalar>;  ///< first-order MAML (Finn et al. 2017, §5.2)
template <class Scalar = float>
using BasicAnil = GradientLearner<InnerSgd, FinalQueryLoss<Order::second>, AdaptHead, EpisodeLoss,
                                  Scalar>;  ///< Raghu et al. 2020
template <class Scalar = float>
using BasicReptile = GradientLearner<InnerSgd, ReptileDirection, AdaptAll, EpisodeLoss,
                                     Scalar>;  ///< Nichol et al. 2018; outer: Sgd with lr epsilon
template <class Scalar = float>
using BasicMetaSgd = GradientLearner<LearnedStepSizes, FinalQueryLoss<Order::second>, AdaptAll,
                                     EpisodeLoss, Scalar>;  ///< Li et al. 2017
template <class Scalar = float>
using BasicMamlPlusPlus = GradientLearner<PerLayerStepSizes, MultiStepLoss, AdaptAll, EpisodeLoss,
                                          Scalar>;  ///< Antoniou et al. 2019 (see maml_plus_plus)
template <class Scalar = float>
using BasicImaml = GradientLearner<InnerSgd, ImplicitGradient, AdaptAll, EpisodeLoss,
                                   Scalar>;  ///< Rajeswaran et al. 2019
template <class Scalar = float>
using BasicCavia = GradientLearner<InnerSgd, FinalQueryLoss<Order::second>, AdaptContext,
                                   EpisodeLoss, Scalar>;  ///< Zintgraf et al. 2019
template <class Scalar = float>
using BasicPretrained = GradientLearner<InnerSgd, PretrainedLoss, AdaptAll, EpisodeLoss,
                                        Scalar>;  ///< Finn et al. 2017's baseline

using Maml = BasicMaml<>;
using Fomaml = BasicFomaml<>;
using Anil = BasicAnil<>;
using Reptile = BasicReptile<>;
using MetaSgd = BasicMetaSgd<>;
using MamlPlusPlus = BasicMamlPlusPlus<>;
using Imaml = BasicImaml<>;
using Cavia = BasicCavia<>;
using Pretrained = BasicPretrained<>;

}  // namespace metalearn::meta
