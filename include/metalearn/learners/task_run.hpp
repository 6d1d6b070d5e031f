// SPDX-License-Identifier: MIT
/// @file metalearn/learners/task_run.hpp
/// One task (or a group of stacked tasks) of a gradient learner on the calling thread's
/// tape: the object a meta-objective policy works with (its interface is listed in
/// metalearn/learners/meta_objective.hpp). It binds the learner's policies to the episode
/// and collects what the task contributes to the meta-step.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/learners/adapt.hpp>
#include <metalearn/learners/adaptation_set.hpp>
#include <metalearn/learners/inner_update.hpp>
#include <metalearn/learners/scoring.hpp>
#include <metalearn/learners/task_group.hpp>
#include <metalearn/learners/task_loss.hpp>
#include <metalearn/learners/task_pool.hpp>
#include <utility>
#include <vector>

namespace metalearn::meta {

/// The MSE of regression outputs, or `loss` when the outputs do not have the targets' shape
/// (a user model and loss, e.g. several heads).
template <class Scalar>
double regression_metric(const Var<Scalar>& out, const data::Episode<Scalar>& e, double loss) {
  if (out.shape() != e.query_targets.shape()) return loss;
  const auto d = out.value().array() - e.query_targets.array();
  return static_cast<double>(d.square().mean());
}

/// What a task run needs from its learner, by reference (the learner outlives the run).
template <class Update, class Loss>
struct TaskPolicies {
  const Update& update;
  const Loss& loss;
  InnerSetup setup;
  int differentiated_steps = 0;  ///< GradientLearnerOptions::differentiated_steps
  std::int64_t meta_step = 0;    ///< meta-steps the learner has taken
};

template <class Model, class Scalar, class Update, class AdaptSet, class Loss>
class TaskRun {
 public:
  using scalar_type = Scalar;
  using Fast = Adapted<Model, Scalar>;

  /// The inner update bound to this task's Vars of its own tensors: an `adapt` rule.
  struct Rule {
    const Update* update;
    const std::vector<Var<Scalar>>* own;
    const InnerSetup* setup;
    Var<Scalar> operator()(const Var<Scalar>& w, const Var<Scalar>& g, std::size_t j, int k) const {
      return update->step(w, g, j, k, *own, *setup);
    }
  };

  /// `views`: the meta-parameters (the model's `model_params` first, then the update's),
  /// brought onto the calling thread's active tape as leaves, the update's as constants
  /// unless `differentiable` (evaluation).
  TaskRun(Model& net, const std::vector<TensorView<Scalar>>& views, std::size_t model_params,
          std::vector<std::size_t> adapted, const TaskGroup<Scalar>& group,
          TaskPolicies<Update, Loss> p, bool differentiable = true)
      : net_(net), adapted_(std::move(adapted)), group_(group), p_(std::move(p)), n_(model_params) {
    for (std::size_t i = 0; i < views.size(); ++i)
      leaves_.push_back(i < n_ || differentiable ? leaf(views[i]) : constant(views[i]));
    own_.assign(leaves_.begin() + static_cast<std::ptrdiff_t>(n_), leaves_.end());
  }

  const std::vector<Var<Scalar>>& leaves() const { return leaves_; }
  std::size_t model_parameters() const { return n_; }
  int inner_steps() const { return p_.setup.inner_steps; }
  int differentiated_steps() const { return p_.differentiated_steps; }
  std::int64_t meta_step() const { return p_.meta_step; }
  const InnerSetup& setup() const { return p_.setup; }
  Rule rule() const { return Rule{&p_.update, &own_, &p_.setup}; }
  std::size_t tasks() const { return group_.tasks(); }
  const data::Episode<Scalar>& episode() const { return group_.episode(); }

  /// The fast weights at the meta-parameters: one copy of each adapted parameter per task
  /// when tasks are stacked ([T, ...], so inner gradients come out per task), starting
  /// where the adaptation set says.
  Fast start() const {
    std::vector<Var<Scalar>> fast(leaves_.begin(),
                                  leaves_.begin() + static_cast<std::ptrdiff_t>(n_));
    for (std::size_t i : adapted_) {
      if constexpr (detail::has_start_v<AdaptSet, Scalar>) fast[i] = AdaptSet::start(fast[i]);
      if (tasks() > 1)
        fast[i] = broadcast_to(
            fast[i], detail::with_task_axis(fast[i].shape(), static_cast<std::int64_t>(tasks())));
    }
    return Fast(net_, std::move(fast), adapted_);
  }

  /// The task loss of `fast` on one split; the first support loss is reported.
  Var<Scalar> loss(const Fast& fast, Split s) {
    const auto& e = episode();
    const Var<Scalar> out =
        fast.forward(constant(s == Split::support ? e.support_inputs : e.query_inputs));
    const Var<Scalar> l = score(out, s);
    if (s == Split::support && !has_support_) {
      outcome_.support_loss = static_cast<double>(l.item());
      has_support_ = true;
    }
    return l;
  }

  /// The query loss of `fast`, reported with its metric (the last call's are kept).
  Var<Scalar> query(const Fast& fast) {
    const auto& e = episode();
    const Var<Scalar> out = fast.forward(constant(e.query_inputs));
    const Var<Scalar> l = score(out, Split::query);
    outcome_.query_loss = static_cast<double>(l.item());
    const double t = static_cast<double>(tasks());
    if (e.is_classification()) {
      const Shape s = out.shape();
      const auto rows =
          tasks() == 1 ? out : reshape(out, Shape{s[0] * s[1], s.numel() / (s[0] * s[1])});
      outcome_.metric = t * accuracy(rows.value(), e.query_labels);
    } else {
      outcome_.metric = t * regression_metric(out, e, outcome_.query_loss / t);
    }
    return l;
  }

  /// `steps` inner steps on `split`. From the first step, when second-order steps exceed the
  /// learner's differentiated_steps, all but the last differentiated_steps are taken first
  /// order on a scratch tape freed at once: fast = theta + constant(theta_k - theta), the
  /// value of theta_k with an identity Jacobian, so the tape holds at most
  /// differentiated_steps steps' graphs. Not with learned step sizes: theirs would get no
  /// gradient from the early steps (an error says so).
  void adapt(Fast& fast, int steps, Order order, Split split = Split::support) {
    const int bound = p_.differentiated_steps;
    if (order == Order::second && bound > 0 && fast.steps() == 0 && steps > bound) {
      if (!own_.empty())
        throw InvalidArgument(
            "metalearn::meta::GradientLearner: differentiated_steps would leave the inner "
            "update's learned step sizes without a gradient from the early steps; set it to 0 "
            "(or >= inner_steps) with Meta-SGD or MAML++");
      fast = advanced_first_order(fast, steps - bound);
      steps = bound;
    }
    fast.adapt([&](const Fast& f) { return loss(f, split); }, rule(), steps, order);
  }

  /// The meta-gradient is d objective / d leaves (zero for a leaf it does not reach, e.g.
  /// CAVIA's context parameters, which restart at zero in every task).
  void differentiate(const Var<Scalar>& objective) {
    GradOptions o;
    o.allow_unused = true;
    outcome_.grads.clear();
    for (const auto& g : grad(objective, leaves_, o)) outcome_.grads.push_back(g.to_tensor());
  }
  /// Set the meta-gradient directly, one tensor per leaf.
  void set_gradient(std::vector<Tensor<Scalar>> g) {
    if (g.size() != leaves_.size())
      throw InvalidArgument("metalearn::meta::TaskRun::set_gradient: " + std::to_string(g.size()) +
                            " tensors for " + std::to_string(leaves_.size()) + " meta-parameters");
    outcome_.grads = std::move(g);
  }

  /// What the task contributes (after the objective ran).
  TaskOutcome<Scalar> outcome() {
    if (outcome_.grads.size() != leaves_.size())
      throw StateError(
          "metalearn::meta::TaskRun::outcome: the meta-objective ended without a gradient; it "
          "must call task.differentiate(objective) or task.set_gradient(tensors)");
    outcome_.tasks = tasks();
    if (!has_support_) outcome_.support_loss = outcome_.query_loss;  // no inner step
    return std::move(outcome_);
  }

 private:
  Var<Scalar> score(const Var<Scalar>& out, Split s) const {
    if constexpr (detail::loss_batches_tasks_v<Loss>)
      return p_.loss(out, episode(), s, tasks());
    else
      return p_.loss(out, episode(), s);
  }

  Fast advanced_first_order(const Fast& fast, int steps) {
    std::vector<Tensor<Scalar>> delta;
    {
      Tape<Scalar> scratch;
      std::vector<Var<Scalar>> w;
      for (const auto& v : fast.parameters()) w.push_back(scratch.constant(v.value()));
      for (std::size_t i : adapted_) w[i] = scratch.leaf(w[i].value());
      Fast moved(net_, std::move(w), adapted_);
      moved.adapt([&](const Fast& f) { return loss(f, Split::support); }, rule(), steps,
                  Order::none);
      for (std::size_t i : adapted_) {
        Tensor<Scalar> d(moved.parameters()[i].value());
        d.array() -= fast.parameters()[i].value().array();
        delta.push_back(std::move(d));
      }
    }
    std::vector<Var<Scalar>> params = fast.parameters();
    for (std::size_t j = 0; j < adapted_.size(); ++j)
      params[adapted_[j]] = params[adapted_[j]] + constant(delta[j]);
    return Fast(net_, std::move(params), adapted_, steps);
  }

  Model& net_;
  std::vector<std::size_t> adapted_;
  const TaskGroup<Scalar>& group_;  // valid while the meta-batch is
  TaskPolicies<Update, Loss> p_;
  std::size_t n_;
  std::vector<Var<Scalar>> leaves_, own_;
  TaskOutcome<Scalar> outcome_;
  bool has_support_ = false;
};

}  // namespace metalearn::meta
