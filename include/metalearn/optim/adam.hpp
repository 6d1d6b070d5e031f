// SPDX-License-Identifier: MIT
/// @file metalearn/optim/adam.hpp
/// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019).
#pragma once

#include <cmath>
#include <metalearn/optim/optimizer.hpp>
#include <string>

namespace metalearn::optim {

/// Options of Adam and AdamW.
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  /// Adam: L2 penalty added to the gradient. AdamW: decoupled decay p <- p - lr wd p.
  double weight_decay = 0.0;
};

namespace detail {
template <class Scalar, bool Decoupled>
class AdamBase : public Optimizer<Scalar> {
 public:
  AdamBase(ParameterList<Scalar> params, AdamOptions options, const char* who)
      : Optimizer<Scalar>(std::move(params), options.lr, who), options_(options) {
    if (!(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1 &&
          options.eps > 0 && options.weight_decay >= 0))
      throw InvalidArgument(std::string(who) +
                            ": need beta1, beta2 in [0, 1), eps > 0 and weight_decay >= 0");
    this->add_state("exp_avg");
    this->add_state("exp_avg_sq");
  }

  /// One update (Kingma & Ba 2015, Algorithm 1): m <- b1 m + (1 - b1) g,
  /// v <- b2 v + (1 - b2) g^2, p <- p - lr m^ / (sqrt(v^) + eps) with bias-corrected m^, v^.
  template <class Grads>
  void step(const Grads& grads) {
    this->check_grads(grads);
    const double t = static_cast<double>(this->steps_ + 1);
    const Scalar b1 = Scalar(options_.beta1), b2 = Scalar(options_.beta2);
    const Scalar c1 = Scalar(1 - std::pow(options_.beta1, t)),
                 c2 = Scalar(1 - std::pow(options_.beta2, t));
    const Scalar wd = Scalar(options_.weight_decay), eps = Scalar(options_.eps);
    std::size_t i = 0;
    for (const auto& grad : grads) {
      auto p = this->params_[i].array();
      const Scalar lr = Scalar(this->lr(i));
      auto m = this->state_tensors(0)[i].array();
      auto v = this->state_tensors(1)[i].array();
      const auto g_raw = view_of(grad).array();
      if (Decoupled) {
        p *= Scalar(1) - lr * wd;  // AdamW, Algorithm 2 line 12
        m = b1 * m + (1 - b1) * g_raw;
        v = b2 * v + (1 - b2) * g_raw.square();
      } else {
        const auto g = g_raw + wd * p;
        m = b1 * m + (1 - b1) * g;
        v = b2 * v + (1 - b2) * g.square();
      }
      p -= lr * (m / c1) / ((v / c2).sqrt() + eps);
      ++i;
    }
    ++this->steps_;
  }

  const AdamOptions& options() const { return options_; }

 private:
  AdamOptions options_;
};
}  // namespace detail

/// Adam; weight_decay is an L2 term added to the gradient.
template <class Scalar = float>
class Adam : public detail::AdamBase<Scalar, false> {
 public:
  Adam(ParameterList<Scalar> params, AdamOptions options = {})
      : detail::AdamBase<Scalar, false>(std::move(params), options, "metalearn::optim::Adam") {}
};

/// AdamW; weight_decay shrinks the parameters directly, decoupled from the moments.
template <class Scalar = float>
class AdamW : public detail::AdamBase<Scalar, true> {
 public:
  AdamW(ParameterList<Scalar> params, AdamOptions options = {})
      : detail::AdamBase<Scalar, true>(std::move(params), options, "metalearn::optim::AdamW") {}
};

}  // namespace metalearn::optim
