// SPDX-License-Identifier: MIT
/// @file metalearn/rl/point_mass.hpp
/// A point mass pushed to a fixed goal, whose dynamics are the task: its mass and the
/// friction acting on it change from task to task, so the force that reaches the goal
/// without overshooting must be learned from the task's own rollouts.
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <metalearn/rl/environment.hpp>
#include <string>

namespace metalearn::rl {

/// Options of PointMass.
struct PointMassOptions {
  double mass_low = 0.2, mass_high = 5.0;          ///< mass, log-uniform in [low, high]
  double friction_low = 0.0, friction_high = 2.0;  ///< velocity damping, uniform
  double goal_x = 1.0, goal_y = 0.0;               ///< the goal, the same for every task
  double max_force = 1.0;                          ///< forces clipped to ±this per axis
  double dt = 0.1;                                 ///< integration step (semi-implicit Euler)
  std::int64_t horizon = 50;
};

/// The changing-dynamics family (see the file comment). Observation: position and
/// velocity (4 numbers); action: a 2-D force; reward: minus the distance to the goal.
class PointMass {
 public:
  struct task_type {
    double mass = 1, friction = 0;
  };

  explicit PointMass(PointMassOptions o = {}) : o_(o) {
    if (!(o.mass_low > 0) || !(o.mass_low <= o.mass_high) || !(o.friction_low >= 0) ||
        !(o.friction_low <= o.friction_high) || !(o.max_force > 0) || !(o.dt > 0) || o.horizon < 1)
      throw InvalidArgument(
          "metalearn::rl::PointMass: need 0 < mass_low <= mass_high, 0 <= friction_low <= "
          "friction_high, max_force > 0, dt > 0 and horizon >= 1");
  }
  const PointMassOptions& options() const { return o_; }

  task_type sample_task(Rng& rng) const {
    task_type t;
    t.mass = std::exp(uniform(rng, std::log(o_.mass_low), std::log(o_.mass_high)));
    t.friction = uniform(rng, o_.friction_low, o_.friction_high);
    return t;
  }
  std::int64_t observation_size() const { return 4; }
  std::int64_t action_size() const { return 2; }
  std::int64_t horizon() const { return o_.horizon; }

  Matrix reset(const task_type&, std::int64_t envs, Rng&) const { return Matrix::Zero(envs, 4); }
  Eigen::VectorXd step(const task_type& t, Matrix& obs, const Matrix& actions, Rng&) const {
    if (actions.rows() != obs.rows() || actions.cols() != 2 || obs.cols() != 4)
      throw InvalidArgument("metalearn::rl::PointMass::step: expected [envs, 2] forces for " +
                            std::to_string(obs.rows()) + " environments, got [" +
                            std::to_string(actions.rows()) + ", " + std::to_string(actions.cols()) +
                            "]");
    Eigen::VectorXd r(obs.rows());
    for (Eigen::Index e = 0; e < obs.rows(); ++e) {
      for (int d = 0; d < 2; ++d) {
        const double f = std::fmax(-o_.max_force, std::fmin(o_.max_force, actions(e, d)));
        double& v = obs(e, 2 + d);
        v += o_.dt * (f / t.mass - t.friction * v);
        obs(e, d) += o_.dt * v;
      }
      r[e] = -std::hypot(obs(e, 0) - o_.goal_x, obs(e, 1) - o_.goal_y);
    }
    return r;
  }

 private:
  PointMassOptions o_;
};

}  // namespace metalearn::rl
