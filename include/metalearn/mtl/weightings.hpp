// SPDX-License-Identifier: MIT
/// @file metalearn/mtl/weightings.hpp
/// Loss weightings: how the K task losses are weighted into the training objective.
///
/// A weighting `W` has
/// - `static constexpr const char* name`;
/// - `std::vector<meta::MetaTensor> learned(std::size_t K) const`: tensors it learns with
///   the model (uncertainty weighting's log-variances); the learner lists them in
///   meta_parameters(), so the outer optimizer trains them and checkpoints hold them;
/// - `std::vector<meta::MetaTensor> state(std::size_t K) const`: what it remembers
///   between steps (DWA's loss history); the learner keeps it in learner_state(), which
///   train() checkpoints;
/// - `template <class Scalar> std::vector<Var<Scalar>> weighted(losses, learned, state,
///   step, rng) const`: the weighted task losses l_t, whose sum is the objective and whose
///   gradients the aggregators combine;
/// - `void after_step(losses, state, step) const`: update the state after every step, taken
///   or skipped (a skipped step's losses may be non-finite);
/// - optional `void learned_gradient(G, losses, learned, state, grads) const`: a gradient
///   for the learned tensors from the Gramian G of the weighted task gradients, for a
///   weighting trained by its own rule (GradNorm); it then has `needs_gramian = true`.
#pragma once

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <metalearn/learners/inner_update.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <utility>
#include <vector>

namespace metalearn::mtl {

using meta::MetaTensor;

namespace detail {
// Element t of a [K] Var, as a scalar Var.
template <class Scalar>
Var<Scalar> element(const Var<Scalar>& v, std::size_t t) {
  const auto i = static_cast<std::int64_t>(t);
  return reshape(slice(v, i, i + 1), Shape{});
}
// scale * softmax(z), max-shifted: the weights of DWA, GradNorm and RLW.
inline std::vector<double> scaled_softmax(std::vector<double> z, double scale) {
  double top = -INFINITY, total = 0;
  for (double x : z) top = std::max(top, x);
  for (double& x : z) total += x = std::exp(x - top);
  for (double& x : z) x *= scale / total;
  return z;
}
// Constant weights times the losses.
template <class Scalar>
std::vector<Var<Scalar>> scaled(const std::vector<Var<Scalar>>& losses,
                                const std::vector<double>& w) {
  std::vector<Var<Scalar>> out;
  for (std::size_t t = 0; t < losses.size(); ++t)
    out.push_back(losses[t] * static_cast<Scalar>(w[t]));
  return out;
}
}  // namespace detail

/// Equal weighting (EW): the plain sum of the task losses.
struct EqualWeighting {
  static constexpr const char* name = "ew";
  static constexpr bool needs_gramian = false;
  std::vector<MetaTensor> learned(std::size_t) const { return {}; }
  std::vector<MetaTensor> state(std::size_t) const { return {}; }
  template <class Scalar>
  std::vector<Var<Scalar>> weighted(const std::vector<Var<Scalar>>& losses,
                                    const std::vector<Var<Scalar>>&,
                                    const std::vector<Tensor<Scalar>>&, std::int64_t, Rng&) const {
    return losses;
  }
  template <class Scalar>
  void after_step(const std::vector<double>&, std::vector<Tensor<Scalar>>&, std::int64_t) const {}
};

/// Uncertainty weighting (Kendall et al. 2018, Eq. 7 with s = log sigma^2, in LibMTL's form
/// for every task): l_t = exp(-s_t) L_t / 2 + s_t / 2, the log-variances s ("uw.log_var",
/// [K], from 0) learned with the model: dl_t/ds_t = 1/2 - exp(-s_t) L_t / 2, so s_t settles
/// at log L_t and a task's weight exp(-s_t) / 2 falls as its loss grows.
struct UncertaintyWeighting {
  static constexpr const char* name = "uw";
  static constexpr bool needs_gramian = false;
  std::vector<MetaTensor> learned(std::size_t k) const {
    return {{"uw.log_var", Shape{static_cast<std::int64_t>(k)}, 0.0}};
  }
  std::vector<MetaTensor> state(std::size_t) const { return {}; }
  template <class Scalar>
  std::vector<Var<Scalar>> weighted(const std::vector<Var<Scalar>>& losses,
                                    const std::vector<Var<Scalar>>& learned,
                                    const std::vector<Tensor<Scalar>>&, std::int64_t, Rng&) const {
    std::vector<Var<Scalar>> out;
    for (std::size_t t = 0; t < losses.size(); ++t) {
      const Var<Scalar> s = detail::element(learned[0], t);
      out.push_back((exp(-s) * losses[t] + s) * Scalar(0.5));
    }
    return out;
  }
  template <class Scalar>
  void after_step(const std::vector<double>&, std::vector<Tensor<Scalar>>&, std::int64_t) const {}
};

/// Options of Dwa.
struct DwaOptions {
  double temperature = 2.0;  ///< T of Eq. 7 (the paper's 2)
  /// Meta-steps per "epoch": the loss averages that make the descent rates are over
  /// windows of this many steps (the paper averages over epochs).
  std::int64_t window = 100;
};

/// Dynamic weight average (Liu et al. 2019, Eq. 7): w_t = K exp(r_t / T) / sum_j exp(r_j / T)
/// with r_t = L_t(e-1) / L_t(e-2), the ratio of the task's mean losses over the last two
/// windows of `window` steps; w = 1 in the first two windows. State "dwa.history" [4, K]:
/// this window's sums of the finite losses, their count, then the means of the last window
/// and of the one before. A window closes by the step count, skipped steps included; one
/// with no finite step keeps the previous means, and a zero mean gives the ratio 1.
struct Dwa {
  static constexpr const char* name = "dwa";
  static constexpr bool needs_gramian = false;
  DwaOptions options;

  Dwa() = default;
  explicit Dwa(DwaOptions o) : options(o) {
    if (!(o.temperature > 0) || o.window < 1)
      throw InvalidArgument("metalearn::mtl::Dwa: need temperature > 0 and window >= 1");
  }
  std::vector<MetaTensor> learned(std::size_t) const { return {}; }
  std::vector<MetaTensor> state(std::size_t k) const {
    return {{"dwa.history", Shape{4, static_cast<std::int64_t>(k)}, 0.0}};
  }
  /// The weights at meta-step `step` from the state.
  template <class Scalar>
  std::vector<double> weights(const Tensor<Scalar>& history, std::int64_t step) const {
    const std::int64_t k = history.shape()[1];
    std::vector<double> z(static_cast<std::size_t>(k), 1.0);
    if (step / options.window < 2) return z;
    for (std::int64_t t = 0; t < k; ++t) {
      const double before = double(history.at(3, t));
      z[static_cast<std::size_t>(t)] =
          (before > 0 ? double(history.at(2, t)) / before : 1.0) / options.temperature;
    }
    return detail::scaled_softmax(std::move(z), static_cast<double>(k));
  }
  template <class Scalar>
  std::vector<Var<Scalar>> weighted(const std::vector<Var<Scalar>>& losses,
                                    const std::vector<Var<Scalar>>&,
                                    const std::vector<Tensor<Scalar>>& state, std::int64_t step,
                                    Rng&) const {
    return detail::scaled(losses, weights(state[0], step));
  }
  template <class Scalar>
  void after_step(const std::vector<double>& losses, std::vector<Tensor<Scalar>>& state,
                  std::int64_t step) const {
    Tensor<Scalar>& h = state[0];
    const std::int64_t k = h.shape()[1];
    bool finite = true;
    for (double l : losses) finite = finite && std::isfinite(l);
    for (std::int64_t t = 0; finite && t < k; ++t) {
      h.data()[t] += static_cast<Scalar>(losses[static_cast<std::size_t>(t)]);
      h.data()[k + t] += Scalar(1);
    }
    if ((step + 1) % options.window != 0) return;  // the window goes on
    for (std::int64_t t = 0; t < k; ++t) {
      if (h.data()[k + t] > 0) {
        h.data()[3 * k + t] = h.data()[2 * k + t];
        h.data()[2 * k + t] = h.data()[t] / h.data()[k + t];
      }
      h.data()[t] = h.data()[k + t] = Scalar(0);
    }
  }
};

/// Options of GradNorm.
struct GradNormOptions {
  double alpha = 1.5;  ///< the restoring-force strength (the paper's NYUv2 value; LibMTL's default)
};

/// GradNorm (Chen et al. 2018, Eq. 1-2 and §3.2): weights w = K softmax(z), z
/// ("gradnorm.logits", [K], from 0) trained by the outer optimizer on
/// L_grad = sum_t |G_t - mean(G) r_t^alpha| instead of the task loss, where G_t = |grad of
/// w_t L_t| over the shared parameters (LibMTL's choice; the paper uses the last shared
/// layer), r_t = (L_t / L_t(0)) / mean_j (L_j / L_j(0)), the target held constant. The
/// model is trained on sum_t w_t L_t with w held constant. State "gradnorm.initial_loss"
/// [K]: the losses of the first finite step (a task whose first loss is not positive keeps
/// the ratio 1).
struct GradNorm {
  static constexpr const char* name = "gradnorm";
  static constexpr bool needs_gramian = true;
  GradNormOptions options;

  GradNorm() = default;
  explicit GradNorm(GradNormOptions o) : options(o) {
    if (!(o.alpha >= 0)) throw InvalidArgument("metalearn::mtl::GradNorm: alpha must be >= 0");
  }
  std::vector<MetaTensor> learned(std::size_t k) const {
    return {{"gradnorm.logits", Shape{static_cast<std::int64_t>(k)}, 0.0}};
  }
  std::vector<MetaTensor> state(std::size_t k) const {
    return {{"gradnorm.initial_loss", Shape{static_cast<std::int64_t>(k)}, 0.0}};
  }
  /// w = K softmax(z).
  template <class Scalar>
  static std::vector<double> weights(const Tensor<Scalar>& logits) {
    return detail::scaled_softmax(
        std::vector<double>(logits.data(), logits.data() + logits.numel()),
        static_cast<double>(logits.numel()));
  }
  template <class Scalar>
  std::vector<Var<Scalar>> weighted(const std::vector<Var<Scalar>>& losses,
                                    const std::vector<Var<Scalar>>& learned,
                                    const std::vector<Tensor<Scalar>>&, std::int64_t, Rng&) const {
    return detail::scaled(losses, weights(learned[0].to_tensor()));
  }
  template <class Scalar>
  void after_step(const std::vector<double>& losses, std::vector<Tensor<Scalar>>& state,
                  std::int64_t /*step*/) const {
    bool unset = true, finite = true;
    for (std::size_t t = 0; t < losses.size(); ++t) {
      unset = unset && state[0].data()[t] == Scalar(0);
      finite = finite && std::isfinite(losses[t]);
    }
    if (!unset || !finite) return;
    for (std::size_t t = 0; t < losses.size(); ++t)
      state[0].data()[t] = static_cast<Scalar>(losses[t]);
  }
  /// dL_grad/dz from the Gramian of the weighted task gradients (G_tt = (w_t |g_t|)^2).
  template <class Scalar>
  void learned_gradient(const Eigen::MatrixXd& G, const std::vector<double>& losses,
                        const std::vector<Tensor<Scalar>>& learned,
                        const std::vector<Tensor<Scalar>>& state,
                        std::vector<Tensor<Scalar>>& grads) const {
    const std::size_t k = losses.size();
    const std::vector<double> w = weights(learned[0]);
    std::vector<double> norm(k), ratio(k);
    double mean_norm = 0, mean_ratio = 0;
    for (std::size_t t = 0; t < k; ++t) {
      norm[t] = std::sqrt(std::max(G(Eigen::Index(t), Eigen::Index(t)), 0.0));
      const double initial = double(state[0].data()[t]);
      ratio[t] = initial > 0 ? losses[t] / initial : 1.0;  // step 0: L_t / L_t(0) = 1
      mean_norm += norm[t] / double(k);
      mean_ratio += ratio[t] / double(k);
    }
    // dL_grad/dw_t = sign(G_t - target_t) |g_t| with |g_t| = G_t / w_t.
    std::vector<double> dw(k);
    for (std::size_t t = 0; t < k; ++t) {
      const double target = mean_norm * std::pow(ratio[t] / mean_ratio, options.alpha);
      const double diff = norm[t] - target;
      dw[t] = (diff > 0 ? 1.0 : diff < 0 ? -1.0 : 0.0) * norm[t] / w[t];
    }
    // Through w = K softmax(z): dz_j = w_j (dw_j - sum_t w_t dw_t / K).
    double mean_wdw = 0;
    for (std::size_t t = 0; t < k; ++t) mean_wdw += w[t] * dw[t] / double(k);
    Tensor<Scalar> g(learned[0].shape());
    for (std::size_t j = 0; j < k; ++j)
      g.data()[j] = static_cast<Scalar>(w[j] * (dw[j] - mean_wdw));
    grads[0] = g;
  }
};

/// Random loss weighting (RLW, Lin et al. 2022, §3): weights softmax(z), z ~ N(0, I) drawn
/// afresh every step (LibMTL's default distribution), from the learner's seed and step.
struct RandomLossWeighting {
  static constexpr const char* name = "rlw";
  static constexpr bool needs_gramian = false;
  std::vector<MetaTensor> learned(std::size_t) const { return {}; }
  std::vector<MetaTensor> state(std::size_t) const { return {}; }
  static std::vector<double> draw(std::size_t k, Rng& rng) {
    std::vector<double> z(k);
    for (double& x : z) x = normal(rng);
    return detail::scaled_softmax(std::move(z), 1.0);
  }
  template <class Scalar>
  std::vector<Var<Scalar>> weighted(const std::vector<Var<Scalar>>& losses,
                                    const std::vector<Var<Scalar>>&,
                                    const std::vector<Tensor<Scalar>>&, std::int64_t,
                                    Rng& rng) const {
    return detail::scaled(losses, draw(losses.size(), rng));
  }
  template <class Scalar>
  void after_step(const std::vector<double>&, std::vector<Tensor<Scalar>>&, std::int64_t) const {}
};

}  // namespace metalearn::mtl
