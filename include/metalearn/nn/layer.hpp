// SPDX-License-Identifier: MIT
/// @file metalearn/nn/layer.hpp
/// The layer interface, and the layers without parameters: activations and Flatten.
#pragma once

#include <memory>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/parameter_list.hpp>
#include <string>

namespace metalearn::nn {

/// Training or evaluation behaviour (only batch norm with running statistics differs).
enum class Mode { train, eval };

/// A layer is functional: `forward` takes its parameters as Vars on the current tape
/// (the model's own tensors brought on as leaves, or MAML's adapted fast weights) and
/// never reads its own tensors during the forward pass. It owns the tensors that the
/// optimizer updates and the checkpoint saves.
template <class Scalar>
class Layer {
 public:
  using scalar_type = Scalar;
  virtual ~Layer() = default;

  /// Short description, e.g. "Linear(40, 1)".
  virtual std::string describe() const = 0;
  /// Number of parameter tensors `forward` expects.
  virtual std::size_t num_parameters() const { return 0; }
  /// Append this layer's parameters, named `prefix` + name, in forward order.
  virtual void collect_parameters(const std::string& /*prefix*/, ParameterList<Scalar>& /*out*/) {}
  /// Append this layer's buffers (state that is not trained by gradients).
  virtual void collect_buffers(const std::string& /*prefix*/, ParameterList<Scalar>& /*out*/) {}
  /// y = layer(params, x). `params` points at num_parameters() Vars.
  virtual Var<Scalar> forward(const Var<Scalar>* params, const Var<Scalar>& x, Mode mode) = 0;
  /// Whether forward also accepts several tasks at once: inputs with a leading task axis
  /// ([T, N, ...]) and each parameter either shared or given per task with a leading
  /// task axis ([T, ...]). Learners then run a meta-batch as batched products.
  virtual bool batches_tasks() const { return false; }
  /// A deep copy.
  virtual std::unique_ptr<Layer> clone() const = 0;
};

namespace detail {
/// CRTP helper: clone() for a copyable layer.
template <class Derived, class Scalar>
class Cloneable : public Layer<Scalar> {
 public:
  std::unique_ptr<Layer<Scalar>> clone() const override {
    return std::make_unique<Derived>(static_cast<const Derived&>(*this));
  }
};
}  // namespace detail

/// max(x, 0).
template <class Scalar = float>
class Relu : public detail::Cloneable<Relu<Scalar>, Scalar> {
 public:
  bool batches_tasks() const override { return true; }  // elementwise
  std::string describe() const override { return "Relu"; }
  Var<Scalar> forward(const Var<Scalar>*, const Var<Scalar>& x, Mode) override { return relu(x); }
};

/// x for x > 0, slope x otherwise.
template <class Scalar = float>
class LeakyRelu : public detail::Cloneable<LeakyRelu<Scalar>, Scalar> {
 public:
  bool batches_tasks() const override { return true; }  // elementwise
  explicit LeakyRelu(double slope = 0.01) : slope_(slope) {}
  std::string describe() const override { return "LeakyRelu(" + std::to_string(slope_) + ")"; }
  Var<Scalar> forward(const Var<Scalar>*, const Var<Scalar>& x, Mode) override {
    return leaky_relu(x, static_cast<Scalar>(slope_));
  }

 private:
  double slope_;
};

/// tanh(x).
template <class Scalar = float>
class Tanh : public detail::Cloneable<Tanh<Scalar>, Scalar> {
 public:
  bool batches_tasks() const override { return true; }  // elementwise
  std::string describe() const override { return "Tanh"; }
  Var<Scalar> forward(const Var<Scalar>*, const Var<Scalar>& x, Mode) override { return tanh(x); }
};

/// 1 / (1 + e^-x).
template <class Scalar = float>
class Sigmoid : public detail::Cloneable<Sigmoid<Scalar>, Scalar> {
 public:
  bool batches_tasks() const override { return true; }  // elementwise
  std::string describe() const override { return "Sigmoid"; }
  Var<Scalar> forward(const Var<Scalar>*, const Var<Scalar>& x, Mode) override {
    return sigmoid(x);
  }
};

/// [N, d1, d2, ...] -> [N, d1 d2 ...] (no copy).
template <class Scalar = float>
class Flatten : public detail::Cloneable<Flatten<Scalar>, Scalar> {
 public:
  std::string describe() const override { return "Flatten"; }
  Var<Scalar> forward(const Var<Scalar>*, const Var<Scalar>& x, Mode) override {
    return flatten(x);
  }
};

}  // namespace metalearn::nn
