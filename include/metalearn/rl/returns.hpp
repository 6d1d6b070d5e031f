// SPDX-License-Identifier: MIT
/// @file metalearn/rl/returns.hpp
/// Discounted returns and generalized advantage estimation on [horizon, envs] rewards.
#pragma once

#include <metalearn/error.hpp>
#include <metalearn/rl/environment.hpp>
#include <string>

namespace metalearn::rl {

/// R_t = sum_{k >= t} gamma^(k - t) r_k, per episode (column).
inline Matrix discounted_returns(const Matrix& rewards, double gamma) {
  Matrix g(rewards.rows(), rewards.cols());
  Eigen::RowVectorXd acc = Eigen::RowVectorXd::Zero(rewards.cols());
  for (Eigen::Index t = rewards.rows() - 1; t >= 0; --t) {
    acc = rewards.row(t) + gamma * acc;
    g.row(t) = acc;
  }
  return g;
}

/// Generalized advantage estimation (Schulman et al. 2016, Eq. 16): delta_t = r_t +
/// gamma V(s_{t+1}) - V(s_t) with V = 0 after the last step, A_t = sum_k (gamma
/// lambda)^k delta_{t+k}. `values` is [horizon, envs] like the rewards.
inline Matrix gae(const Matrix& rewards, const Matrix& values, double gamma, double lambda) {
  if (values.rows() != rewards.rows() || values.cols() != rewards.cols())
    throw InvalidArgument("metalearn::rl::gae: values [" + std::to_string(values.rows()) + ", " +
                          std::to_string(values.cols()) + "] for rewards [" +
                          std::to_string(rewards.rows()) + ", " + std::to_string(rewards.cols()) +
                          "]");
  Matrix a(rewards.rows(), rewards.cols());
  Eigen::RowVectorXd acc = Eigen::RowVectorXd::Zero(rewards.cols());
  for (Eigen::Index t = rewards.rows() - 1; t >= 0; --t) {
    const Eigen::RowVectorXd next = t + 1 < rewards.rows()
                                        ? Eigen::RowVectorXd(values.row(t + 1))
                                        : Eigen::RowVectorXd::Zero(rewards.cols());
    const Eigen::RowVectorXd delta = rewards.row(t) + gamma * next - values.row(t);
    acc = delta + gamma * lambda * acc;
    a.row(t) = acc;
  }
  return a;
}

}  // namespace metalearn::rl
