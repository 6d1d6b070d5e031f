// SPDX-License-Identifier: MIT
/// @file metalearn/rl/distributions.hpp
/// Action distributions of stochastic policies, as functions of a policy model's outputs:
/// log-probabilities (differentiable to any order, the policy gradient's ingredient), the
/// KL divergence TRPO's trust region bounds, and sampling.
///
/// Requirements of a distribution `D` (what rl::MamlRl and rl::rollout use):
/// - `static Var<S> log_prob(const Var<S>& outputs, const Tensor<S>& actions)`: [N];
/// - `static Var<S> kl(const Tensor<S>& old_outputs, const Var<S>& outputs)`: the mean over
///   the N states of KL(old || new), a scalar;
/// - `static Tensor<S> sample(const Tensor<S>& outputs, Rng&)`: one action row per state;
/// - `static std::int64_t action_columns(std::int64_t action_size)`.
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <string>

namespace metalearn::rl {

/// A Gaussian with a diagonal covariance. Outputs for N states are [2N, A]: the N rows of
/// means above the N rows of log standard deviations (rl::GaussianPolicy produces them).
struct DiagGaussian {
  static std::int64_t action_columns(std::int64_t action_size) { return action_size; }

  /// log N(a; mu, diag(sigma²)) = -1/2 sum_i ((a_i - mu_i)/sigma_i)² - sum_i log sigma_i
  /// - A/2 log 2 pi, per row.
  template <class S>
  static Var<S> log_prob(const Var<S>& out, const Tensor<S>& actions) {
    const std::int64_t n = rows(out, "log_prob");
    require_actions(out, actions, n);
    const Var<S> mu = slice(out, 0, n), log_std = slice(out, n, 2 * n);
    const Var<S> z = (constant(actions) - mu) * exp(-log_std);
    const double a = static_cast<double>(out.shape()[1]);
    return sum(square(z), 1) * S(-0.5) - sum(log_std, 1) -
           S(0.5 * a * std::log(2 * 3.14159265358979323846));
  }

  /// Mean over rows of KL(old || new) = sum_i [log s_n - log s_o + (s_o² + (m_o - m_n)²) /
  /// (2 s_n²) - 1/2].
  template <class S>
  static Var<S> kl(const Tensor<S>& old_out, const Var<S>& out) {
    const std::int64_t n = rows(out, "kl");
    if (old_out.shape() != out.shape())
      throw InvalidArgument("metalearn::rl::DiagGaussian::kl: old outputs " +
                            old_out.shape().to_string() + ", new " + out.shape().to_string());
    const Var<S> old = constant(old_out);
    const Var<S> mu_o = slice(old, 0, n), ls_o = slice(old, n, 2 * n);
    const Var<S> mu = slice(out, 0, n), ls = slice(out, n, 2 * n);
    const Var<S> d = mu_o - mu;
    const Var<S> per =
        ls - ls_o + (exp(ls_o * S(2)) + square(d)) * exp(ls * S(-2)) * S(0.5) - S(0.5);
    return sum(per) * S(1.0 / static_cast<double>(n));
  }

  template <class S>
  static Tensor<S> sample(const Tensor<S>& out, Rng& rng) {
    const std::int64_t n = out.shape()[0] / 2, a = out.shape()[1];
    Tensor<S> act(Shape{n, a});
    const auto m = out.matrix();
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < a; ++j)
        act.matrix()(i, j) =
            static_cast<S>(static_cast<double>(m(i, j)) +
                           std::exp(static_cast<double>(m(n + i, j))) * normal(rng));
    return act;
  }

 private:
  template <class S>
  static std::int64_t rows(const Var<S>& out, const char* who) {
    const Shape s = out.shape();
    if (s.rank() != 2 || s[0] % 2 != 0 || s[0] == 0)
      throw InvalidArgument(std::string("metalearn::rl::DiagGaussian::") + who +
                            ": expected outputs [2N, A] (means above log standard deviations), "
                            "got " +
                            s.to_string());
    return s[0] / 2;
  }
  template <class S>
  static void require_actions(const Var<S>& out, const Tensor<S>& actions, std::int64_t n) {
    if (actions.shape() != Shape{n, out.shape()[1]})
      throw InvalidArgument("metalearn::rl::DiagGaussian::log_prob: expected actions [" +
                            std::to_string(n) + ", " + std::to_string(out.shape()[1]) + "], got " +
                            actions.shape().to_string());
  }
};

/// A categorical distribution over K actions. Outputs are logits [N, K]; actions are one
/// column of indices [N, 1] (stored as Scalar).
struct Categorical {
  static std::int64_t action_columns(std::int64_t) { return 1; }

  template <class S>
  static Var<S> log_prob(const Var<S>& logits, const Tensor<S>& actions) {
    return sum(log_softmax(logits) * constant(one_hot(logits.shape(), actions)), 1);
  }

  /// Mean over rows of KL(old || new) = sum_k p_k (log p_k - log q_k).
  template <class S>
  static Var<S> kl(const Tensor<S>& old_logits, const Var<S>& logits) {
    if (old_logits.shape() != logits.shape() || logits.shape().rank() != 2)
      throw InvalidArgument("metalearn::rl::Categorical::kl: old logits " +
                            old_logits.shape().to_string() + ", new " + logits.shape().to_string() +
                            " (expected the same [N, K])");
    Tensor<S> logp(old_logits.shape()), p(old_logits.shape());
    const auto l = old_logits.matrix();
    for (Eigen::Index i = 0; i < l.rows(); ++i) {
      const S top = l.row(i).maxCoeff();
      const S lse = top + std::log((l.row(i).array() - top).exp().sum());
      logp.matrix().row(i) = l.row(i).array() - lse;
      p.matrix().row(i) = logp.matrix().row(i).array().exp();
    }
    const Var<S> per = constant(p) * (constant(logp) - log_softmax(logits));
    return sum(per) * S(1.0 / static_cast<double>(l.rows()));
  }

  template <class S>
  static Tensor<S> sample(const Tensor<S>& logits, Rng& rng) {
    const auto l = logits.matrix();
    Tensor<S> act(Shape{l.rows(), 1});
    for (Eigen::Index i = 0; i < l.rows(); ++i) {
      const double top = static_cast<double>(l.row(i).maxCoeff());
      double total = 0;
      for (Eigen::Index k = 0; k < l.cols(); ++k)
        total += std::exp(static_cast<double>(l(i, k)) - top);
      double u = uniform01(rng) * total;
      Eigen::Index k = 0;
      for (; k + 1 < l.cols(); ++k) {
        u -= std::exp(static_cast<double>(l(i, k)) - top);
        if (u < 0) break;
      }
      act.matrix()(i, 0) = static_cast<S>(k);
    }
    return act;
  }

 private:
  template <class S>
  static Tensor<S> one_hot(const Shape& s, const Tensor<S>& actions) {
    if (s.rank() != 2 || actions.shape() != Shape{s[0], 1})
      throw InvalidArgument(
          "metalearn::rl::Categorical::log_prob: expected logits [N, K] and "
          "actions [N, 1], got " +
          s.to_string() + " and " + actions.shape().to_string());
    Tensor<S> h(s, S(0));
    for (std::int64_t i = 0; i < s[0]; ++i) {
      const double a = static_cast<double>(actions.matrix()(i, 0));
      if (!(a >= 0) || a >= static_cast<double>(s[1]))
        throw InvalidArgument("metalearn::rl::Categorical::log_prob: action " + std::to_string(a) +
                              " out of range for " + std::to_string(s[1]) + " actions");
      h.matrix()(i, static_cast<std::int64_t>(a)) = S(1);
    }
    return h;
  }
};

}  // namespace metalearn::rl
