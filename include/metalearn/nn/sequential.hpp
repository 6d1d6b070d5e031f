// SPDX-License-Identifier: MIT
/// @file metalearn/nn/sequential.hpp
/// Sequential composition of layers: the model type of the standard few-shot networks.
#pragma once

#include <memory>
#include <metalearn/nn/layer.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::nn {

/// Layers applied in order. Owns its layers (deep copies on copy). Parameters are named
/// "<layer index>.<name>", e.g. "0.weight", "0.bias", "2.weight". A Sequential is itself a
/// Layer, so it nests: the parameters of `Sequential{trunk, head}` are named "0.0.weight",
/// ..., "1.weight" (to nest a single Sequential, use add(): a lone argument copies). An
/// activation between
/// layers that no backward rule reads is freed as soon as the next layer is done with it
/// (the Var that held it ends); a layer may keep any Var it likes.
///
/// ```
/// metalearn::Rng rng{1};
/// metalearn::nn::Sequential net{metalearn::nn::Linear{1, 40, rng}, metalearn::nn::Relu{},
///                               metalearn::nn::Linear{40, 1, rng}};
/// metalearn::Tape tape;
/// auto w = tape.leaves(net.parameters().views());
/// auto y = net.forward(w, tape.constant(x));
/// ```
template <class Scalar = float>
class Sequential : public Layer<Scalar> {
  // A lone Sequential argument is a copy, not a nesting.
  template <class First, class... Rest>
  static constexpr bool nests_v = std::is_base_of_v<Layer<Scalar>, std::decay_t<First>> &&
                                  (sizeof...(Rest) > 0 ||
                                   !std::is_same_v<std::decay_t<First>, Sequential>);

 public:
  using scalar_type = Scalar;

  Sequential() = default;
  template <class First, class... Rest, metalearn::detail::Requires<nests_v<First, Rest...>> = 0>
  explicit Sequential(First&& first, Rest&&... rest) {
    add(std::forward<First>(first));
    (add(std::forward<Rest>(rest)), ...);
  }
  Sequential(const Sequential& other) { *this = other; }
  Sequential& operator=(const Sequential& other) {
    if (this == &other) return *this;
    layers_.clear();
    for (const auto& l : other.layers_) layers_.push_back(l->clone());
    return *this;
  }
  Sequential(Sequential&&) noexcept = default;
  Sequential& operator=(Sequential&&) noexcept = default;

  /// Append a layer (copied or moved in; a `Layer&` is cloned).
  template <class L,
            metalearn::detail::Requires<std::is_base_of_v<Layer<Scalar>, std::decay_t<L>>> = 0>
  Sequential& add(L&& layer) {
    if constexpr (std::is_abstract_v<std::decay_t<L>>)  // a Layer& of unknown type
      layers_.push_back(layer.clone());
    else
      layers_.push_back(std::make_unique<std::decay_t<L>>(std::forward<L>(layer)));
    return *this;
  }

  /// All parameters in forward order, named "<index>.<name>".
  ParameterList<Scalar> parameters() {
    ParameterList<Scalar> out;
    collect_parameters("", out);
    return out;
  }
  /// All buffers (batch-norm running statistics), named like parameters.
  ParameterList<Scalar> buffers() {
    ParameterList<Scalar> out;
    collect_buffers("", out);
    return out;
  }
  std::size_t num_parameters() const override {
    std::size_t n = 0;
    for (const auto& l : layers_) n += l->num_parameters();
    return n;
  }

  /// Run the layers on `x` with `params` (one Var per parameter, in parameters() order):
  /// the model's own leaves, or adapted fast weights.
  Var<Scalar> forward(const std::vector<Var<Scalar>>& params, const Var<Scalar>& x,
                      Mode mode = Mode::train) {
    if (params.size() != num_parameters())
      throw InvalidArgument("metalearn::nn::Sequential::forward: " + std::to_string(params.size()) +
                            " parameters given, expected " + std::to_string(num_parameters()));
    return forward(params.data(), x, mode);
  }

  /// True when every layer accepts a leading task axis (Layer::batches_tasks).
  bool batches_tasks() const override {
    for (const auto& l : layers_)
      if (!l->batches_tasks()) return false;
    return !layers_.empty();
  }

  std::size_t size() const { return layers_.size(); }
  Layer<Scalar>& operator[](std::size_t i) { return *layers_.at(i); }

  /// One line per layer ("<index>: <layer>"); a nested Sequential's lines follow its own,
  /// indented.
  std::string describe() const override {
    std::string s;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const std::string d = layers_[i]->describe();
      if (d.find('\n') == std::string::npos) {
        s += std::to_string(i) + ": " + d + "\n";
        continue;
      }
      s += std::to_string(i) + ": Sequential\n";
      for (std::size_t from = 0; from < d.size();) {
        const std::size_t end = d.find('\n', from);
        s += "  " + d.substr(from, end - from) + "\n";
        from = end == std::string::npos ? d.size() : end + 1;
      }
    }
    return s;
  }

  // As a Layer inside another Sequential: the same naming under the outer prefix.
  void collect_parameters(const std::string& prefix, ParameterList<Scalar>& out) override {
    for (std::size_t i = 0; i < layers_.size(); ++i)
      layers_[i]->collect_parameters(prefix + std::to_string(i) + ".", out);
  }
  void collect_buffers(const std::string& prefix, ParameterList<Scalar>& out) override {
    for (std::size_t i = 0; i < layers_.size(); ++i)
      layers_[i]->collect_buffers(prefix + std::to_string(i) + ".", out);
  }
  Var<Scalar> forward(const Var<Scalar>* params, const Var<Scalar>& x, Mode mode) override {
    // Assigning over h lets the previous activation go: freed unless a backward rule reads
    // it (a batch norm output that only a max-pool consumes; 25 MiB of a conv4 MAML task).
    Var<Scalar> h = x;
    for (const auto& l : layers_) {
      h = l->forward(params, h, mode);
      params += l->num_parameters();
    }
    return h;
  }
  std::unique_ptr<Layer<Scalar>> clone() const override {
    return std::make_unique<Sequential>(*this);
  }

 private:
  std::vector<std::unique_ptr<Layer<Scalar>>> layers_;
};

template <class First, class... Rest>
Sequential(First, Rest...) -> Sequential<typename First::scalar_type>;

}  // namespace metalearn::nn
