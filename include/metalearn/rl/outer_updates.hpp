// SPDX-License-Identifier: MIT
/// @file metalearn/rl/outer_updates.hpp
/// Outer-update policies of rl::MamlRl: what the meta-batch's surrogate gradient becomes
/// before the outer optimizer applies it.
///
/// Requirements of an outer update `U`: `template <class S> std::vector<Tensor<S>>
/// operator()(const OuterStep<S>& step) const` returning one tensor per meta-parameter,
/// handed to the outer optimizer as its gradient. `static constexpr const char*
/// optimizer` names the optimizer it is meant for (the docs and the example use it).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <functional>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <string>
#include <utility>
#include <vector>

namespace metalearn::rl {

/// What an outer update sees of one meta-step: the mean surrogate loss over the tasks and
/// its gradient at the meta-parameters theta, and (computed on demand, over the same
/// rollouts) the Fisher-vector product of the mean KL between the adapted policies before
/// and after a change of theta, and the surrogate and KL at another theta.
template <class S>
struct OuterStep {
  std::vector<Tensor<S>> parameters;  ///< theta
  std::vector<Tensor<S>> gradient;    ///< d loss / d theta
  double loss = 0;
  /// v -> H v, H the Hessian of the mean KL at theta (the Fisher matrix of the adapted
  /// policies, pulled back through the inner steps).
  std::function<std::vector<Tensor<S>>(const std::vector<Tensor<S>>&)> fisher_product;
  /// theta' -> (mean surrogate loss, mean KL from the sampling policies) at theta'.
  std::function<std::pair<double, double>(const std::vector<Tensor<S>>&)> evaluate;
};

/// The surrogate's gradient as it is: a policy-gradient meta-update for Adam or SGD (the
/// simpler outer loop of the issue; what ProMP builds on).
struct SurrogateGradient {
  static constexpr const char* optimizer = "Adam (or Sgd) with your learning rate";
  template <class S>
  std::vector<Tensor<S>> operator()(const OuterStep<S>& step) const {
    return step.gradient;
  }
};

/// Options of TrustRegion (pytorch-maml-rl's 2-D navigation values).
struct TrustRegionOptions {
  double max_kl = 0.01;        ///< the trust region: mean KL(old || new) <= max_kl
  int cg_iters = 10;           ///< conjugate-gradient iterations
  double cg_damping = 1e-5;    ///< H + damping I
  int line_search_steps = 15;  ///< backtracking steps before giving up (no update)
  double backtrack_ratio = 0.8;
};

/// Solve A x = b by conjugate gradients (A symmetric positive definite, given as a
/// product), `iters` iterations or until the residual's squared norm is below 1e-10.
inline Eigen::VectorXd conjugate_gradient(
    const std::function<Eigen::VectorXd(const Eigen::VectorXd&)>& product, const Eigen::VectorXd& b,
    int iters) {
  Eigen::VectorXd x = Eigen::VectorXd::Zero(b.size()), r = b, p = b;
  double rr = r.squaredNorm();
  for (int i = 0; i < iters && rr > 1e-10; ++i) {
    const Eigen::VectorXd ap = product(p);
    const double pap = p.dot(ap);
    if (!(pap > 0)) break;  // not positive definite along p: keep what we have
    const double alpha = rr / pap;
    x += alpha * p;
    r -= alpha * ap;
    const double next = r.squaredNorm();
    p = r + (next / rr) * p;
    rr = next;
  }
  return x;
}

/// TRPO's step (Schulman et al. 2015, Appendix C), the outer loop of MAML-RL (Finn et al.
/// 2017, §5.3): the natural-gradient direction x = H^-1 g by conjugate gradients on
/// Fisher-vector products, scaled to the trust region's edge, beta = sqrt(2 max_kl / x'Hx),
/// then a backtracking line search until the surrogate improves and the mean KL is within
/// max_kl. Returns theta - theta_new (zero when the search fails), so optim::Sgd with
/// learning rate 1 applies exactly TRPO's update.
struct TrustRegion {
  static constexpr const char* optimizer = "Sgd with learning rate 1";
  TrustRegionOptions options;

  TrustRegion() = default;
  explicit TrustRegion(TrustRegionOptions o) : options(o) {
    if (!(o.max_kl > 0) || o.cg_iters < 1 || !(o.cg_damping >= 0) || o.line_search_steps < 1 ||
        !(o.backtrack_ratio > 0 && o.backtrack_ratio < 1))
      throw InvalidArgument(
          "metalearn::rl::TrustRegion: need max_kl > 0, cg_iters >= 1, cg_damping >= 0, "
          "line_search_steps >= 1 and 0 < backtrack_ratio < 1");
  }

  template <class S>
  std::vector<Tensor<S>> operator()(const OuterStep<S>& step) const {
    const Eigen::VectorXd g = flat(step.gradient);
    std::vector<Tensor<S>> update = zeros_like(step.gradient);
    if (!g.allFinite() || g.squaredNorm() == 0) return update;
    const auto hv = [&](const Eigen::VectorXd& v) {
      return Eigen::VectorXd(flat(step.fisher_product(shaped(v, step.gradient))) +
                             options.cg_damping * v);
    };
    const Eigen::VectorXd x = conjugate_gradient(hv, g, options.cg_iters);
    const double xhx = x.dot(hv(x));
    if (!(xhx > 0) || !std::isfinite(xhx)) return update;
    const Eigen::VectorXd full = x * std::sqrt(2 * options.max_kl / xhx);
    const Eigen::VectorXd theta = flat(step.parameters);
    double fraction = 1;
    for (int k = 0; k < options.line_search_steps; ++k, fraction *= options.backtrack_ratio) {
      const Eigen::VectorXd trial = theta - fraction * full;
      const auto [loss, kl] = step.evaluate(shaped(trial, step.parameters));
      if (loss < step.loss && kl <= options.max_kl) return shaped(fraction * full, step.gradient);
    }
    return update;
  }

 private:
  template <class S>
  static Eigen::VectorXd flat(const std::vector<Tensor<S>>& ts) {
    Eigen::Index n = 0;
    for (const auto& t : ts) n += t.numel();
    Eigen::VectorXd v(n);
    Eigen::Index at = 0;
    for (const auto& t : ts) {
      v.segment(at, t.numel()) = t.array().template cast<double>().matrix();
      at += t.numel();
    }
    return v;
  }
  template <class S>
  static std::vector<Tensor<S>> shaped(const Eigen::VectorXd& v,
                                       const std::vector<Tensor<S>>& like) {
    std::vector<Tensor<S>> out;
    Eigen::Index at = 0;
    for (const auto& t : like) {
      Tensor<S> o(t.shape());
      o.array() = v.segment(at, t.numel()).array().template cast<S>();
      at += t.numel();
      out.push_back(std::move(o));
    }
    return out;
  }
  template <class S>
  static std::vector<Tensor<S>> zeros_like(const std::vector<Tensor<S>>& like) {
    std::vector<Tensor<S>> out;
    for (const auto& t : like) out.emplace_back(t.shape(), S(0));
    return out;
  }
};

}  // namespace metalearn::rl
