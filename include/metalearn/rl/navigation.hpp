// SPDX-License-Identifier: MIT
/// @file metalearn/rl/navigation.hpp
/// 2-D navigation (Finn et al. 2017, §5.3): a point agent starts at the origin and moves by
/// its action, a velocity clipped to ±0.1 per axis; the reward is minus its distance to
/// the task's goal, drawn uniformly from [-0.5, 0.5]²; 100 steps.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <metalearn/rl/environment.hpp>
#include <string>

namespace metalearn::rl {

/// Options of Navigation2D (Finn et al.'s values).
struct Navigation2DOptions {
  double goal_low = -0.5, goal_high = 0.5;  ///< goals uniform in [low, high]²
  double max_action = 0.1;                  ///< actions clipped to ±this per axis
  std::int64_t horizon = 100;
};

/// The point-agent navigation family (see the file comment). Unlike the rllab and
/// pytorch-maml-rl versions, an episode does not end early within 0.01 of the goal: every
/// episode lasts `horizon` steps, so returns compare across policies.
class Navigation2D {
 public:
  struct task_type {
    double goal_x = 0, goal_y = 0;
  };

  explicit Navigation2D(Navigation2DOptions o = {}) : o_(o) {
    if (!(o.goal_low <= o.goal_high) || !(o.max_action > 0) || o.horizon < 1)
      throw InvalidArgument(
          "metalearn::rl::Navigation2D: need goal_low <= goal_high, max_action > 0 and "
          "horizon >= 1");
  }
  const Navigation2DOptions& options() const { return o_; }

  task_type sample_task(Rng& rng) const {
    task_type t;
    t.goal_x = uniform(rng, o_.goal_low, o_.goal_high);
    t.goal_y = uniform(rng, o_.goal_low, o_.goal_high);
    return t;
  }
  std::int64_t observation_size() const { return 2; }
  std::int64_t action_size() const { return 2; }
  std::int64_t horizon() const { return o_.horizon; }

  Matrix reset(const task_type&, std::int64_t envs, Rng&) const { return Matrix::Zero(envs, 2); }
  Eigen::VectorXd step(const task_type& t, Matrix& obs, const Matrix& actions, Rng&) const {
    require_rows(obs, actions);
    obs += actions.cwiseMax(-o_.max_action).cwiseMin(o_.max_action);
    Eigen::VectorXd r(obs.rows());
    for (Eigen::Index e = 0; e < obs.rows(); ++e)
      r[e] = -std::hypot(obs(e, 0) - t.goal_x, obs(e, 1) - t.goal_y);
    return r;
  }

 private:
  static void require_rows(const Matrix& obs, const Matrix& actions) {
    if (actions.rows() != obs.rows() || actions.cols() != 2 || obs.cols() != 2)
      throw InvalidArgument("metalearn::rl::Navigation2D::step: expected [envs, 2] actions for " +
                            std::to_string(obs.rows()) + " environments, got [" +
                            std::to_string(actions.rows()) + ", " + std::to_string(actions.cols()) +
                            "]");
  }
  Navigation2DOptions o_;
};

}  // namespace metalearn::rl
