// SPDX-License-Identifier: MIT
/// @file metalearn/optim/sgd.hpp
/// Stochastic gradient descent with momentum, Nesterov momentum and weight decay.
#pragma once

#include <metalearn/optim/optimizer.hpp>
#include <string>

namespace metalearn::optim {

/// Options of Sgd (PyTorch's torch.optim.SGD conventions).
struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
  /// L2 penalty: adds weight_decay * p to the gradient.
  double weight_decay = 0.0;
};

/// p <- p - lr d, with d = g + wd p; with momentum, b <- mu b + (1 - dampening) d (b = d on
/// the first step) and d = b, or d + mu b for Nesterov (Sutskever et al. 2013).
template <class Scalar = float>
class Sgd : public Optimizer<Scalar> {
 public:
  Sgd(ParameterList<Scalar> params, SgdOptions options = {})
      : Optimizer<Scalar>(std::move(params), options.lr, "metalearn::optim::Sgd"),
        options_(options) {
    if (options.momentum < 0 || options.weight_decay < 0 || options.dampening < 0 ||
        options.dampening > 1 ||
        (options.nesterov && (options.momentum <= 0 || options.dampening != 0)))
      throw InvalidArgument(
          "metalearn::optim::Sgd: momentum and weight_decay must be >= 0, "
          "dampening in [0, 1], and Nesterov needs momentum > 0 and no dampening");
    if (options_.momentum > 0) this->add_state("momentum_buffer");
  }

  /// One update from `grads` (Tensors or Vars, one per parameter, same shapes).
  template <class Grads>
  void step(const Grads& grads) {
    this->check_grads(grads);
    const Scalar mu = Scalar(options_.momentum), wd = Scalar(options_.weight_decay);
    std::size_t i = 0;
    for (const auto& grad : grads) {
      auto p = this->params_[i].array();
      const auto g = view_of(grad).array();
      Tensor<Scalar> d(this->params_[i].shape());
      d.array() = g + wd * p;
      if (options_.momentum > 0) {
        auto b = this->state_tensors(0)[i].array();
        if (this->steps_ == 0)
          b = d.array();
        else
          b = mu * b + Scalar(1 - options_.dampening) * d.array();
        if (options_.nesterov)
          d.array() += mu * b;
        else
          d.array() = b;
      }
      p -= Scalar(this->lr(i)) * d.array();
      ++i;
    }
    ++this->steps_;
  }

  const SgdOptions& options() const { return options_; }

 private:
  SgdOptions options_;
};

}  // namespace metalearn::optim
