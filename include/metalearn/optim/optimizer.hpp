// SPDX-License-Identifier: MIT
/// @file metalearn/optim/optimizer.hpp
/// What every optimizer shares: the parameters it updates, per-group learning rates, a
/// schedule factor, the step count, and gradient checks.
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/autodiff/var.hpp>
#include <metalearn/error.hpp>
#include <metalearn/parameter_list.hpp>
#include <string>
#include <vector>

namespace metalearn::optim {

/// A gradient given as a Tensor, a TensorView or a Var, read as a view.
template <class Scalar>
TensorView<Scalar> view_of(const Tensor<Scalar>& t) {
  return t.view();
}
template <class Scalar>
TensorView<Scalar> view_of(const TensorView<Scalar>& t) {
  return t;
}
template <class Scalar>
TensorView<Scalar> view_of(const Var<Scalar>& v) {
  return v.value();
}

/// Base of Sgd, Adam and AdamW. Holds references to the parameters (a model's
/// ParameterList), one learning rate per parameter (so groups can differ), a factor set by
/// a schedule, and the number of steps taken. Configuration lives in the derived class's
/// options; moments live in its state tensors.
template <class Scalar>
class Optimizer {
 public:
  Optimizer(ParameterList<Scalar> params, double lr, const char* who)
      : params_(std::move(params)), lr_(params_.size(), lr), who_(who) {
    check_lr(lr);
  }

  /// Set the learning rate of the parameters at `indices` (see ParameterList::select):
  /// per-group learning rates, e.g. a slower body and a faster head.
  void set_group_lr(const std::vector<std::size_t>& indices, double lr) {
    check_lr(lr);
    for (std::size_t i : indices) {
      if (i >= lr_.size())
        throw InvalidArgument(std::string(who_) + "::set_group_lr: index " + std::to_string(i) +
                              " out of range for " + std::to_string(lr_.size()) + " parameters");
      lr_[i] = lr;
    }
  }
  /// Set one learning rate for every parameter.
  void set_lr(double lr) { set_group_lr(all_indices(), lr); }
  /// Multiply every learning rate by `factor` from now on (what a schedule sets).
  void set_lr_factor(double factor) {
    if (!(factor >= 0) || !std::isfinite(factor))
      throw InvalidArgument(std::string(who_) +
                            "::set_lr_factor: expected a finite factor >= 0, got " +
                            std::to_string(factor));
    factor_ = factor;
  }
  /// The learning rate in effect for parameter i.
  double lr(std::size_t i = 0) const { return lr_.at(i) * factor_; }

  /// Steps taken so far.
  std::int64_t steps() const { return steps_; }
  /// The parameters being optimized.
  ParameterList<Scalar>& parameters() { return params_; }
  /// The optimizer's state tensors (moments), named after the parameters, for checkpoints.
  ParameterList<Scalar> state() {
    ParameterList<Scalar> out;
    for (std::size_t k = 0; k < state_.size(); ++k)
      for (std::size_t i = 0; i < params_.size(); ++i)
        out.add(state_names_[k] + "." + params_.name(i), state_[k][i]);
    return out;
  }
  /// The step count, by reference, for checkpoints.
  std::int64_t& step_counter() { return steps_; }

 protected:
  /// Check a gradient list against the parameters: count and shapes.
  template <class Grads>
  void check_grads(const Grads& grads) const {
    if (grads.size() != params_.size())
      throw InvalidArgument(std::string(who_) + "::step: " + std::to_string(grads.size()) +
                            " gradients for " + std::to_string(params_.size()) + " parameters");
    std::size_t i = 0;
    for (const auto& g : grads) {
      const Shape s = view_of(g).shape();
      if (s != params_[i].shape())
        throw InvalidArgument(std::string(who_) + "::step: gradient " + std::to_string(i) + " ('" +
                              params_.name(i) + "') has shape " + s.to_string() +
                              ", parameter has " + params_[i].shape().to_string());
      ++i;
    }
  }
  /// Zero-initialised state tensors shaped like the parameters, one set per name.
  void add_state(const std::string& name) {
    std::vector<Tensor<Scalar>> s;
    for (std::size_t i = 0; i < params_.size(); ++i) s.emplace_back(params_[i].shape());
    state_.push_back(std::move(s));
    state_names_.push_back(name);
  }
  std::vector<Tensor<Scalar>>& state_tensors(std::size_t k) { return state_[k]; }

  ParameterList<Scalar> params_;
  std::int64_t steps_ = 0;

 private:
  std::vector<std::size_t> all_indices() const {
    std::vector<std::size_t> v(params_.size());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = i;
    return v;
  }
  void check_lr(double lr) const {
    if (!(lr >= 0) || !std::isfinite(lr))
      throw InvalidArgument(std::string(who_) + ": learning rate must be finite and >= 0, got " +
                            std::to_string(lr));
  }

  std::vector<double> lr_;
  double factor_ = 1.0;
  const char* who_;
  std::vector<std::vector<Tensor<Scalar>>> state_;
  std::vector<std::string> state_names_;
};

}  // namespace metalearn::optim
