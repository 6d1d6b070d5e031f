// SPDX-License-Identifier: MIT
/// @file metalearn/rl/baseline.hpp
/// The linear feature baseline of Duan et al. 2016 (supplementary §2): a value estimate
/// linear in [s, s², t/100, (t/100)², (t/100)³, 1], fitted by ridge-regularised least
/// squares to one task's returns.
#pragma once

#include <Eigen/Cholesky>
#include <cmath>
#include <cstdint>
#include <metalearn/error.hpp>
#include <metalearn/rl/environment.hpp>
#include <string>

namespace metalearn::rl {

class LinearFeatureBaseline {
 public:
  /// `reg`: the ridge coefficient (multiplied by 10, up to 5 times, until the solution is
  /// finite, as rllab does).
  explicit LinearFeatureBaseline(double reg = 1e-5) : reg_(reg) {}

  /// Fit to `returns` [H, E] of episodes whose observations are `obs` [H*E, d],
  /// time-major (row t*E + e).
  void fit(const Matrix& obs, const Matrix& returns) {
    const Matrix x = features(obs, returns.rows(), returns.cols());
    Eigen::VectorXd y(returns.size());
    for (Eigen::Index t = 0; t < returns.rows(); ++t)
      for (Eigen::Index e = 0; e < returns.cols(); ++e) y[t * returns.cols() + e] = returns(t, e);
    const Eigen::MatrixXd xtx = x.transpose() * x;
    const Eigen::VectorXd xty = x.transpose() * y;
    double reg = reg_;
    for (int attempt = 0; attempt < 5; ++attempt, reg *= 10) {
      const Eigen::MatrixXd a = xtx + reg * Eigen::MatrixXd::Identity(xtx.rows(), xtx.cols());
      weights_ = a.ldlt().solve(xty);
      if (weights_.allFinite()) return;
    }
    throw InvalidArgument(
        "metalearn::rl::LinearFeatureBaseline::fit: no finite least-squares solution even with "
        "a ridge of " +
        std::to_string(reg) + " (non-finite observations or returns?)");
  }

  /// The values of the observations `obs` [H*E, d] as [H, E]; zero before any fit.
  Matrix predict(const Matrix& obs, std::int64_t horizon, std::int64_t envs) const {
    Matrix v = Matrix::Zero(horizon, envs);
    if (weights_.size() == 0) return v;
    const Eigen::VectorXd flat = features(obs, horizon, envs) * weights_;
    for (std::int64_t t = 0; t < horizon; ++t)
      for (std::int64_t e = 0; e < envs; ++e) v(t, e) = flat[t * envs + e];
    return v;
  }
  const Eigen::VectorXd& weights() const { return weights_; }

 private:
  static Eigen::MatrixXd features(const Matrix& obs, std::int64_t horizon, std::int64_t envs) {
    if (obs.rows() != horizon * envs)
      throw InvalidArgument("metalearn::rl::LinearFeatureBaseline: " + std::to_string(obs.rows()) +
                            " observations for " + std::to_string(horizon) + " steps of " +
                            std::to_string(envs) + " episodes");
    const Eigen::Index d = obs.cols();
    Eigen::MatrixXd x(obs.rows(), 2 * d + 4);
    for (Eigen::Index i = 0; i < obs.rows(); ++i) {
      const double t = static_cast<double>(i / envs) / 100.0;
      for (Eigen::Index j = 0; j < d; ++j) {
        const double s = std::fmax(-10.0, std::fmin(10.0, obs(i, j)));  // rllab clips at ±10
        x(i, j) = s;
        x(i, d + j) = s * s;
      }
      x(i, 2 * d) = t;
      x(i, 2 * d + 1) = t * t;
      x(i, 2 * d + 2) = t * t * t;
      x(i, 2 * d + 3) = 1.0;
    }
    return x;
  }
  double reg_;
  Eigen::VectorXd weights_;
};

}  // namespace metalearn::rl
