// SPDX-License-Identifier: MIT
/// @file metalearn/rl/rollouts.hpp
/// Rollouts of a stochastic policy in `envs` copies of one task, simulated together (one
/// policy forward per time step for all copies), with discounted returns, generalized
/// advantage estimation and the linear feature baseline.
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <metalearn/rl/baseline.hpp>
#include <metalearn/rl/environment.hpp>
#include <metalearn/rl/returns.hpp>
#include <string>
#include <utility>

namespace metalearn::rl {

/// `envs` episodes of `horizon` steps of one task. Rows of the [H*E, ...] tensors are
/// time-major: row t*E + e is step t of episode e.
template <class Scalar>
struct Rollouts {
  std::int64_t horizon = 0, envs = 0;
  Tensor<Scalar> observations;   ///< [H*E, observation_size]: what the policy saw
  Tensor<Scalar> actions;        ///< [H*E, action columns]: what it drew (before clipping)
  Matrix rewards;                ///< [H, E]
  Tensor<Scalar> advantages;     ///< [H*E], set by compute_advantages
  Tensor<Scalar> old_outputs;    ///< the sampling policy's outputs on `observations`
  Tensor<Scalar> old_log_probs;  ///< [H*E]: log pi_old(a | s) of the drawn actions

  /// Mean over the episodes of the undiscounted return (sum of rewards).
  double mean_return() const { return envs > 0 ? rewards.sum() / static_cast<double>(envs) : 0.0; }
};

/// Run `envs` episodes of `task` with the policy `outputs_of` (a callable: observations
/// tensor [E, obs] to the distribution's outputs, e.g. an Adapted model's `predict`),
/// drawing actions from `Distribution` with `rng`. Records the sampling policy's outputs
/// and log-probabilities for the importance ratios and KL terms of the outer update.
template <class Distribution, class Scalar, class Env, class OutputsOf>
Rollouts<Scalar> rollout(const Env& env, const typename Env::task_type& task,
                         OutputsOf&& outputs_of, std::int64_t envs, Rng& rng) {
  if (envs < 1)
    throw InvalidArgument("metalearn::rl::rollout: need envs >= 1, got " + std::to_string(envs));
  const std::int64_t h = env.horizon(), n = h * envs, d = env.observation_size();
  Rollouts<Scalar> r;
  r.horizon = h;
  r.envs = envs;
  r.observations = Tensor<Scalar>(Shape{n, d});
  r.rewards = Matrix(h, envs);
  Matrix obs = env.reset(task, envs, rng);
  Tensor<Scalar> step_obs(Shape{envs, d});
  for (std::int64_t t = 0; t < h; ++t) {
    step_obs.matrix() = obs.cast<Scalar>();
    r.observations.matrix().middleRows(t * envs, envs) = step_obs.matrix();
    Tensor<Scalar> act;
    {
      Tape<Scalar> step_tape;  // each step's forward freed at once
      act = Distribution::sample(outputs_of(step_obs), rng);
    }
    if (t == 0) r.actions = Tensor<Scalar>(Shape{n, act.shape()[1]});
    r.actions.matrix().middleRows(t * envs, envs) = act.matrix();
    r.rewards.row(t) = env.step(task, obs, act.matrix().template cast<double>(), rng).transpose();
  }
  Tape<Scalar> tape;
  NoGradGuard<Scalar> no_grad;
  r.old_outputs = outputs_of(r.observations);
  r.old_log_probs = Distribution::log_prob(constant(r.old_outputs), r.actions).to_tensor();
  return r;
}

/// Options of compute_advantages.
struct AdvantageOptions {
  double gamma = 0.99;      ///< discount
  double gae_lambda = 1.0;  ///< GAE's lambda (1: Monte-Carlo returns minus the baseline)
  bool normalize = true;    ///< shift and scale to mean 0, standard deviation 1
};

/// The advantages of `r` (Schulman et al. 2016, GAE) against the linear feature baseline
/// fitted by least squares to this task's own returns (Duan et al. 2016), normalised as
/// rllab and pytorch-maml-rl do; stored in `r.advantages`.
template <class Scalar>
void compute_advantages(Rollouts<Scalar>& r, const AdvantageOptions& o = {}) {
  const Matrix returns = discounted_returns(r.rewards, o.gamma);
  LinearFeatureBaseline baseline;
  const Matrix obs = r.observations.matrix().template cast<double>();
  baseline.fit(obs, returns);
  const Matrix adv =
      gae(r.rewards, baseline.predict(obs, r.horizon, r.envs), o.gamma, o.gae_lambda);
  Eigen::VectorXd flat = Eigen::Map<const Eigen::VectorXd>(adv.data(), adv.size());
  if (o.normalize) {
    flat.array() -= flat.mean();
    const double sd = std::sqrt(flat.squaredNorm() / static_cast<double>(flat.size()));
    flat /= sd + 1e-8;
  }
  r.advantages = Tensor<Scalar>(Shape{r.horizon * r.envs});
  r.advantages.array() = flat.array().cast<Scalar>();
}

}  // namespace metalearn::rl
