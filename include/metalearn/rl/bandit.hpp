// SPDX-License-Identifier: MIT
/// @file metalearn/rl/bandit.hpp
/// Bernoulli multi-armed bandits (Duan et al. 2016, RL², §4.1): arm i pays 1 with
/// probability p_i, the task's p drawn uniformly from [0, 1]^K. One pull is one episode
/// (horizon 1, as in pytorch-maml-rl's Bandit-K*-v0), so a task's "rollouts" of n episodes
/// are n pulls; the observation is a constant 0.
#pragma once

#include <cstdint>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <metalearn/rl/environment.hpp>
#include <string>
#include <vector>

namespace metalearn::rl {

/// Options of BernoulliBandit.
struct BanditOptions {
  std::int64_t arms = 5;
};

/// The Bernoulli bandit family (see the file comment).
class BernoulliBandit {
 public:
  static constexpr bool discrete_actions = true;
  struct task_type {
    std::vector<double> means;  ///< each arm's probability of paying 1
  };

  explicit BernoulliBandit(BanditOptions o = {}) : o_(o) {
    if (o.arms < 2)
      throw InvalidArgument("metalearn::rl::BernoulliBandit: need arms >= 2, got " +
                            std::to_string(o.arms));
  }
  const BanditOptions& options() const { return o_; }

  task_type sample_task(Rng& rng) const {
    task_type t;
    for (std::int64_t a = 0; a < o_.arms; ++a) t.means.push_back(uniform01(rng));
    return t;
  }
  std::int64_t observation_size() const { return 1; }
  std::int64_t action_size() const { return o_.arms; }
  std::int64_t horizon() const { return 1; }

  Matrix reset(const task_type&, std::int64_t envs, Rng&) const { return Matrix::Zero(envs, 1); }
  Eigen::VectorXd step(const task_type& t, Matrix& obs, const Matrix& actions, Rng& rng) const {
    if (actions.rows() != obs.rows() || actions.cols() != 1 ||
        static_cast<std::int64_t>(t.means.size()) != o_.arms)
      throw InvalidArgument(
          "metalearn::rl::BernoulliBandit::step: expected [envs, 1] arm "
          "indices for " +
          std::to_string(obs.rows()) + " environments and " + std::to_string(o_.arms) +
          " arm means");
    Eigen::VectorXd r(obs.rows());
    for (Eigen::Index e = 0; e < obs.rows(); ++e) {
      const double a = actions(e, 0);
      if (!(a >= 0) || a >= static_cast<double>(o_.arms))
        throw InvalidArgument("metalearn::rl::BernoulliBandit::step: arm " + std::to_string(a) +
                              " out of range for " + std::to_string(o_.arms) + " arms");
      r[e] = uniform01(rng) < t.means[static_cast<std::size_t>(a)] ? 1.0 : 0.0;
    }
    return r;
  }

 private:
  BanditOptions o_;
};

}  // namespace metalearn::rl
