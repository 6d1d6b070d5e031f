// SPDX-License-Identifier: MIT
/// @file metalearn/learners/adapt.hpp
/// The open inner loop: adapt any model's parameters to any support loss with any update
/// rule, and keep the adapted parameters as an object that runs the model (learn2learn's
/// `learner.adapt(loss)`, functional). The gradient learners run their tasks through it.
///
/// ```
/// metalearn::Tape<double> tape;
/// auto theta = tape.leaves(net.parameters().views());
/// auto huber = [&](const auto& model) { return my_huber(model.forward(xs), ys); };
/// metalearn::meta::AdaptOptions o;
/// o.steps = 3;  // second order by default: the adapted weights stay differentiable
/// auto fast = metalearn::meta::adapt(net, theta, huber, metalearn::meta::sgd_step(0.1), o);
/// auto meta_grad = metalearn::grad(mse(fast.forward(xq), yq), theta);
/// fast.adapt(huber, metalearn::meta::sgd_step(0.1), 2);  // two more steps, same object
/// ```
#pragma once

#include <cstddef>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <metalearn/nn/inner_step.hpp>
#include <metalearn/nn/model.hpp>
#include <string>
#include <utility>
#include <vector>

namespace metalearn::meta {

/// How an inner step is differentiated.
enum class Order {
  second,  ///< the step is recorded: the adapted weights are differentiable to any order
           ///< in the starting ones (MAML, Finn et al. 2017, Eq. 1)
  first,   ///< the step's gradient is a constant: d theta'/d theta = I (FOMAML, §5.2)
  none,    ///< the adapted weights become fresh leaves: no gradient flows back through
           ///< the step (evaluation, Reptile's and iMAML's inner loops)
};

/// The plain SGD rule theta' = theta - lr g, usable with `adapt` and `Adapted::step`.
/// An update rule is any callable `rule(w, g, j, k)` returning w's new value, where `j`
/// indexes the adapted parameters and `k` counts the steps taken so far.
struct SgdStep {
  double lr = 0.01;
  template <class Scalar>
  Var<Scalar> operator()(const Var<Scalar>& w, const Var<Scalar>& g, std::size_t /*j*/,
                         int /*k*/) const {
    return w - g * static_cast<Scalar>(lr);
  }
};
inline SgdStep sgd_step(double lr) { return SgdStep{lr}; }

/// Options of `adapt`.
struct AdaptOptions {
  int steps = 1;                ///< inner steps
  Order order = Order::second;  ///< how the steps are differentiated
  /// Indices into the parameter list of the ones to adapt (empty: all); the others are used
  /// as they are.
  std::vector<std::size_t> adapted;
};

/// A model with its own (adapted) parameters: call it, score it, adapt it further. Holds the
/// model by reference (it must outlive this object) and the parameters as Vars on the tape
/// they were made on (the object is valid while that tape is).
template <class Model,
          class Scalar = typename decltype(std::declval<Model&>().parameters())::scalar_type>
class Adapted {
 public:
  /// `params`: one Var per model parameter, in `model.parameters()` order; `adapted`:
  /// the indices the inner steps change (empty: all); `steps_taken`: the inner steps that
  /// made `params` (an update rule sees the step index).
  Adapted(Model& model, std::vector<Var<Scalar>> params, std::vector<std::size_t> adapted = {},
          int steps_taken = 0)
      : model_(&model),
        params_(std::move(params)),
        adapted_(std::move(adapted)),
        steps_(steps_taken) {
    nn::require_model<Model, Scalar>();
    if (adapted_.empty())
      for (std::size_t i = 0; i < params_.size(); ++i) adapted_.push_back(i);
    for (std::size_t i : adapted_)
      if (i >= params_.size())
        throw InvalidArgument("metalearn::meta::Adapted: adapted index " + std::to_string(i) +
                              " out of range for " + std::to_string(params_.size()) +
                              " parameters");
  }

  /// The model's output for `x` with these parameters, run at inner step steps() (see
  /// nn::inner_step: layers such as nn::PerStepBatchNorm use it).
  Var<Scalar> forward(const Var<Scalar>& x) const {
    const nn::InnerStepGuard at(steps_);
    return model_->forward(params_, x);
  }
  /// The output for a tensor, as a tensor (nothing recorded).
  Tensor<Scalar> predict(const Tensor<Scalar>& x) const {
    NoGradGuard<Scalar> no_grad;
    return forward(constant(x)).to_tensor();
  }

  const std::vector<Var<Scalar>>& parameters() const { return params_; }
  std::vector<Var<Scalar>>& parameters() { return params_; }
  const std::vector<std::size_t>& adapted() const { return adapted_; }
  Model& model() const { return *model_; }
  /// Inner steps taken so far.
  int steps() const { return steps_; }

  /// One inner step on `loss(*this)` (a scalar Var) with `rule`; returns *this.
  template <class Loss, class Rule>
  Adapted& step(Loss&& loss, const Rule& rule, Order order = Order::second) {
    const Var<Scalar> l = loss(static_cast<const Adapted&>(*this));
    if (l.shape().numel() != 1)
      throw InvalidArgument(
          "metalearn::meta::Adapted::step: the support loss must be a scalar, "
          "got shape " +
          l.shape().to_string());
    std::vector<Var<Scalar>> sub;
    sub.reserve(adapted_.size());
    for (std::size_t i : adapted_) sub.push_back(params_[i]);
    GradOptions o;
    o.create_graph = order == Order::second;
    std::vector<Var<Scalar>> g;
    try {
      g = grad(l, sub, o);
    } catch (const InvalidArgument& e) {  // a parameter the loss does not use
      throw InvalidArgument(std::string("metalearn::meta::Adapted::step: ") + e.what() +
                            " (adapt only what the support loss uses: AdaptOptions::adapted)");
    }
    for (std::size_t j = 0; j < adapted_.size(); ++j) {
      Var<Scalar> next = rule(sub[j], g[j], j, steps_);
      params_[adapted_[j]] = order == Order::none ? leaf(next.value()) : std::move(next);
    }
    ++steps_;
    return *this;
  }

  /// `steps` inner steps; returns *this.
  template <class Loss, class Rule>
  Adapted& adapt(Loss&& loss, const Rule& rule, int steps, Order order = Order::second) {
    if (steps < 0)
      throw InvalidArgument("metalearn::meta::Adapted::adapt: steps must be >= 0, got " +
                            std::to_string(steps));
    for (int k = 0; k < steps; ++k) step(loss, rule, order);
    return *this;
  }

 private:
  Model* model_;
  std::vector<Var<Scalar>> params_;
  std::vector<std::size_t> adapted_;
  int steps_ = 0;
};

/// Adapt `params` (Vars of `model`'s parameters, usually `tape.leaves(model.parameters()
/// .views())`) by `o.steps` steps of `rule` on `support_loss`, a callable taking the
/// Adapted model and returning a scalar Var. Second order unless `o.order` says otherwise.
template <class Model, class Scalar, class Loss, class Rule>
Adapted<Model, Scalar> adapt(Model& model, std::vector<Var<Scalar>> params, Loss&& support_loss,
                             const Rule& rule, const AdaptOptions& o = {}) {
  Adapted<Model, Scalar> a(model, std::move(params), o.adapted);
  a.adapt(support_loss, rule, o.steps, o.order);
  return a;
}

}  // namespace metalearn::meta
