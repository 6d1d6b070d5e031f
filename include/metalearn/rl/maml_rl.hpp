// SPDX-License-Identifier: MIT
/// @file metalearn/rl/maml_rl.hpp
/// MAML for reinforcement learning (Finn et al. 2017, §5.3): a stochastic policy meta-trained
/// so that one policy-gradient step on a new task's rollouts solves it. The learner shares
/// the surface of every other one (meta_parameters, meta_gradient, meta_step, evaluate), so
/// the shared trainer, checkpoints and the distributed layer serve it; its batches are
/// tasks (rl::EnvTask), and it draws their rollouts itself, with the policy they need.
///
/// One task: n episodes with theta (the support rollouts), an inner step on their
/// REINFORCE surrogate L(theta) = -mean_t[log pi_theta(a_t | s_t) A_t] (advantages from the
/// linear baseline fitted to these episodes) with learning rate alpha, repeated with fresh
/// episodes of the adapted policy for more inner steps, then n episodes with theta' (the
/// query rollouts). The meta-objective is the query surrogate
/// -mean_t[pi_theta'(a_t|s_t) / pi_old(a_t|s_t) A_t], pi_old the policy that drew them,
/// differentiated through the inner steps (second order unless `inner_order` says
/// otherwise). As in Finn et al. and pytorch-maml-rl, the rollouts are constants: the
/// dependence of the sampling distribution on theta is not differentiated (ProMP and DiCE
/// correct this term).
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <metalearn/learners/adapt.hpp>
#include <metalearn/learners/learner.hpp>
#include <metalearn/learners/results.hpp>
#include <metalearn/learners/task_pool.hpp>
#include <metalearn/nn/model.hpp>
#include <metalearn/rl/environment.hpp>
#include <metalearn/rl/outer_updates.hpp>
#include <metalearn/rl/rollouts.hpp>
#include <metalearn/rl/surrogates.hpp>
#include <string>
#include <utility>
#include <vector>

namespace metalearn::rl {

/// Options of MamlRl (pytorch-maml-rl's 2-D navigation values where they apply).
struct MamlRlOptions {
  double inner_lr = 0.1;  ///< alpha of the inner policy-gradient steps
  /// Inner steps while meta-training; 0 trains the pretrained baseline of Finn et al.
  /// (one policy on all tasks, plain policy gradient, adapted only at test time).
  int inner_steps = 1;
  int eval_inner_steps = 1;                       ///< inner steps in evaluate() when none are given
  meta::Order inner_order = meta::Order::second;  ///< Order::first: first-order MAML-RL
  std::int64_t episodes = 20;  ///< episodes per task for each inner step and for the query
  AdvantageOptions advantages = {};
  /// Threads for the tasks of a meta-batch, the spare ones for each task's ops (0: the
  /// hardware's count). Results are bit-identical for any count.
  int threads = 0;
  double clip_norm = 0.0;  ///< clip the outer gradient to this norm (0: off)
};

/// The rollouts of one task in a meta-step, kept for the outer update's later passes.
template <class Scalar>
struct TaskRollouts {
  std::vector<Rollouts<Scalar>> support;  ///< one per inner step
  Rollouts<Scalar> query;                 ///< drawn by the adapted policy
};

/// MAML-RL over tasks of `Env` with the outer update `Outer` (outer_updates.hpp:
/// TrustRegion, TRPO as Finn et al.; SurrogateGradient for Adam). The policy model
/// (rl::GaussianPolicy, rl::CategoricalPolicy, or any model declaring `using distribution`)
/// maps observations to its distribution's outputs.
template <class Env, class Outer = TrustRegion, class Scalar = float>
class MamlRl {
 public:
  using scalar_type = Scalar;
  using evaluation_type = EnvTask<Env>;
  static constexpr const char* metric_name = "return";
  static constexpr bool higher_metric_is_better = true;

  explicit MamlRl(MamlRlOptions o = {}, Outer outer = {}) : o_(o), outer_(std::move(outer)) {
    if (!(o.inner_lr >= 0) || !std::isfinite(o.inner_lr) || o.inner_steps < 0 ||
        o.eval_inner_steps < 0 || o.inner_order == meta::Order::none || o.episodes < 1 ||
        o.threads < 0 || !(o.clip_norm >= 0) || !(o.advantages.gamma >= 0) ||
        !(o.advantages.gamma <= 1) || !(o.advantages.gae_lambda >= 0) ||
        !(o.advantages.gae_lambda <= 1))
      throw InvalidArgument(
          "metalearn::rl::MamlRl: need a finite inner_lr >= 0, inner steps >= 0, inner_order "
          "second or first, episodes >= 1, threads >= 0, clip_norm >= 0 and gamma, gae_lambda "
          "in [0, 1]");
  }
  const MamlRlOptions& options() const { return o_; }
  const Outer& outer_update() const { return outer_; }

  template <class Model>
  ParameterList<Scalar> meta_parameters(Model& net) {
    nn::require_model<Model, Scalar>();
    return net.parameters();
  }

  /// The outer update's gradient (outer_updates.hpp) for `batch`: every task's rollouts
  /// are drawn from its own seed. StepStats: support_loss is minus the mean return before
  /// adaptation (the inner surrogate itself is 0 by construction of the normalised
  /// advantages), query_loss the query surrogate (the meta-objective), query_metric the mean
  /// return after adaptation, grad_norm the norm of the returned update.
  template <class Model>
  meta::StepStats meta_gradient(Model& net, const std::vector<EnvTask<Env>>& batch,
                                std::vector<Tensor<Scalar>>& grads) const {
    nn::require_model<Model, Scalar>();
    if (batch.empty()) throw InvalidArgument("metalearn::rl::MamlRl::meta_gradient: no tasks");
    const auto params = net.parameters();
    const auto views = params.views();
    const meta::ThreadPlan plan{o_.threads, net.buffers().empty()};
    std::vector<TaskRollouts<Scalar>> kept(batch.size());
    // Each pass over the tasks runs on the threads (and ranks) like any learner's tasks.
    const auto each_task = [&](auto&& work) {
      return meta::run_tasks<meta::TaskOutcome<Scalar>>(batch.size(), plan, [&](std::size_t t) {
        meta::TaskOutcome<Scalar> out;
        Tape<Scalar> tape;
        work(t, out);
        return out;
      });
    };
    OuterStep<Scalar> step;
    meta::StepStats s = meta::reduce_outcomes(
        each_task([&](std::size_t t, meta::TaskOutcome<Scalar>& out) {
          kept[t] = sample(net, batch[t]);
          const auto theta = leaves_of(views);
          const Var<Scalar> loss = query_surrogate(net, theta, kept[t], o_.inner_order);
          out.support_loss =
              -(kept[t].support.empty() ? kept[t].query : kept[t].support[0]).mean_return();
          out.query_loss = static_cast<double>(loss.item());
          out.metric = kept[t].query.mean_return();
          for (const auto& g : grad(loss, theta)) out.grads.push_back(g.to_tensor());
        }),
        step.gradient);
    if (!s.finite) {
      grads = step.gradient;
      return s;
    }
    step.loss = s.query_loss;
    for (std::size_t i = 0; i < params.size(); ++i) step.parameters.push_back(params[i]);
    step.fisher_product = [&](const std::vector<Tensor<Scalar>>& v) {
      std::vector<Tensor<Scalar>> hv;
      meta::reduce_outcomes(each_task([&](std::size_t t, meta::TaskOutcome<Scalar>& out) {
                              out.grads = kl_hessian_product(net, leaves_of(views), kept[t], v);
                            }),
                            hv);
      return hv;
    };
    step.evaluate = [&](const std::vector<Tensor<Scalar>>& at) {
      std::vector<TensorView<Scalar>> moved;
      for (const auto& t : at) moved.push_back(t.view());
      std::vector<Tensor<Scalar>> unused;
      const meta::StepStats e = meta::reduce_outcomes(
          each_task([&](std::size_t t, meta::TaskOutcome<Scalar>& out) {
            using D = typename Model::distribution;
            const Var<Scalar> outputs =  // one adaptation for both figures
                query_outputs(net, leaves_of(moved), kept[t], meta::Order::none);
            out.query_loss = static_cast<double>(importance_loss<D>(outputs, kept[t].query).item());
            out.metric = static_cast<double>(kl_from_sampling<D>(outputs, kept[t].query).item());
            out.grads.push_back(Tensor<Scalar>(Shape{}, Scalar(0)));
          }),
          unused);
      return std::pair<double, double>(e.query_loss, e.query_metric);
    };
    grads = outer_(step);
    s.grad_norm = optim::global_norm(grads);
    s.finite = std::isfinite(s.grad_norm);
    return s;
  }

  /// One task's rollouts as meta_gradient draws them from its seed: `inner_steps` sets of
  /// support episodes, each drawn by the policy the previous inner steps made, then the
  /// query episodes of the adapted policy.
  template <class Model>
  TaskRollouts<Scalar> sample(Model& net, const EnvTask<Env>& task) const {
    using D = typename Model::distribution;
    Tape<Scalar> tape;
    meta::Adapted<Model, Scalar> fast(net, leaves_of(net.parameters().views()));
    Rng rng(task.seed);
    TaskRollouts<Scalar> r;
    for (int k = 0; k < o_.inner_steps; ++k) {
      r.support.push_back(draw<D>(task, fast, rng));
      inner_step(fast, r.support.back(), meta::Order::none);
    }
    r.query = draw<D>(task, fast, rng);
    return r;
  }

  /// The meta-objective of one task on fixed rollouts: the inner steps from `theta` (Vars
  /// of the model's parameters) on `r.support`, then importance_loss on `r.query`,
  /// differentiable in theta through the steps as `order` says.
  template <class Model>
  Var<Scalar> query_surrogate(Model& net, const std::vector<Var<Scalar>>& theta,
                              const TaskRollouts<Scalar>& r, meta::Order order) const {
    return importance_loss<typename Model::distribution>(query_outputs(net, theta, r, order),
                                                         r.query);
  }
  /// The mean KL from the query rollouts' sampling policy to the policy adapted from theta.
  template <class Model>
  Var<Scalar> query_kl(Model& net, const std::vector<Var<Scalar>>& theta,
                       const TaskRollouts<Scalar>& r, meta::Order order) const {
    return kl_from_sampling<typename Model::distribution>(query_outputs(net, theta, r, order),
                                                          r.query);
  }

  template <class Model, class Optimizer>
  meta::StepStats meta_step(Model& net, Optimizer& outer, const std::vector<EnvTask<Env>>& batch) {
    return meta::meta_step(*this, net, outer, batch);
  }

  /// The policy adapted to `task` by `steps` inner steps, each on fresh episodes of the
  /// policy it adapts (as at test time in Finn et al. Fig. 5), not differentiated, on the
  /// calling thread's tape. The model is not changed.
  template <class Model>
  meta::Adapted<Model, Scalar> adapt(Model& net, const EnvTask<Env>& task, int steps) const {
    return adapt_to(net, task, steps, nullptr);
  }

  /// The mean return of fresh episodes before adaptation and after each of `steps` inner
  /// steps: steps + 1 numbers (a curve of Finn et al. Fig. 5). The model is not changed.
  template <class Model>
  std::vector<double> adaptation_returns(Model& net, const EnvTask<Env>& task, int steps) const {
    Tape<Scalar> tape;
    std::vector<double> returns;
    adapt_to(net, task, steps, &returns);
    return returns;
  }

  /// The mean return after `steps` inner steps (default: eval_inner_steps) on `task`, as
  /// EpisodeResult::mean_return (its loss is minus the return).
  template <class Model>
  meta::EpisodeResult evaluate(Model& net, const EnvTask<Env>& task, int steps = -1) const {
    if (steps < 0) steps = o_.eval_inner_steps;
    meta::EpisodeResult r;
    r.steps = steps;
    r.mean_return = adaptation_returns(net, task, steps).back();
    r.loss = -r.mean_return;
    return r;
  }

 private:
  // `steps` inner steps from theta, each on fresh episodes of the current policy; with
  // `returns`, the mean return of every policy on the way, the adapted one's last.
  template <class Model>
  meta::Adapted<Model, Scalar> adapt_to(Model& net, const EnvTask<Env>& task, int steps,
                                        std::vector<double>* returns) const {
    using D = typename Model::distribution;
    if (steps < 0) throw InvalidArgument("metalearn::rl::MamlRl::adapt: steps must be >= 0");
    meta::Adapted<Model, Scalar> fast(net, leaves_of(net.parameters().views()));
    Rng rng(task.seed);
    for (int k = 0; k < steps; ++k) {
      const Rollouts<Scalar> r = draw<D>(task, fast, rng);
      if (returns != nullptr) returns->push_back(r.mean_return());
      inner_step(fast, r, meta::Order::none);
    }
    if (returns != nullptr) returns->push_back(draw<D>(task, fast, rng).mean_return());
    return fast;
  }

  template <class D, class Fast>
  Rollouts<Scalar> draw(const EnvTask<Env>& task, const Fast& fast, Rng& rng) const {
    Rollouts<Scalar> r = rollout<D, Scalar>(
        task.env, task.task, [&](const Tensor<Scalar>& x) { return fast.predict(x); }, o_.episodes,
        rng);
    compute_advantages(r, o_.advantages);
    return r;
  }

  // The outputs on the query observations of the policy adapted from theta on r.support.
  template <class Model>
  Var<Scalar> query_outputs(Model& net, const std::vector<Var<Scalar>>& theta,
                            const TaskRollouts<Scalar>& r, meta::Order order) const {
    return adapted_on(net, theta, r, order).forward(constant(r.query.observations));
  }

  // The inner steps from theta on the kept support rollouts.
  template <class Model>
  meta::Adapted<Model, Scalar> adapted_on(Model& net, const std::vector<Var<Scalar>>& theta,
                                          const TaskRollouts<Scalar>& r, meta::Order order) const {
    meta::Adapted<Model, Scalar> fast(net, theta);
    for (const auto& support : r.support) inner_step(fast, support, order);
    return fast;
  }
  template <class Fast>
  void inner_step(Fast& fast, const Rollouts<Scalar>& r, meta::Order order) const {
    using D = typename std::decay_t<decltype(fast.model())>::distribution;
    fast.step(
        [&](const Fast& f) { return reinforce_loss<D>(f.forward(constant(r.observations)), r); },
        meta::sgd_step(o_.inner_lr), order);
  }

  // H v for H the Hessian in theta of the task's query KL (double backward: the KL's
  // gradient recorded, then differentiated along v).
  template <class Model>
  std::vector<Tensor<Scalar>> kl_hessian_product(Model& net, const std::vector<Var<Scalar>>& theta,
                                                 const TaskRollouts<Scalar>& r,
                                                 const std::vector<Tensor<Scalar>>& v) const {
    GradOptions recorded;
    recorded.create_graph = true;
    recorded.allow_unused = true;
    const auto gk = grad(query_kl(net, theta, r, o_.inner_order), theta, recorded);
    Var<Scalar> gv = sum(gk[0] * constant(v[0]));
    for (std::size_t i = 1; i < gk.size(); ++i) gv = gv + sum(gk[i] * constant(v[i]));
    GradOptions unused;
    unused.allow_unused = true;
    std::vector<Tensor<Scalar>> out;
    for (const auto& h : grad(gv, theta, unused)) out.push_back(h.to_tensor());
    return out;
  }

  static std::vector<Var<Scalar>> leaves_of(const std::vector<TensorView<Scalar>>& views) {
    std::vector<Var<Scalar>> v;
    v.reserve(views.size());
    for (const auto& t : views) v.push_back(leaf(t));
    return v;
  }

  MamlRlOptions o_;
  Outer outer_;
};

/// MAML with TRPO's outer step (Finn et al. 2017, §5.3); outer optimizer: Sgd with lr 1.
template <class Env, class Scalar = float>
using MamlTrpo = MamlRl<Env, TrustRegion, Scalar>;
/// MAML with the plain surrogate gradient as the outer gradient; outer optimizer: Adam.
template <class Env, class Scalar = float>
using MamlPolicyGradient = MamlRl<Env, SurrogateGradient, Scalar>;

}  // namespace metalearn::rl
