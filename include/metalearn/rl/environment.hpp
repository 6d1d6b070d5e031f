// SPDX-License-Identifier: MIT
/// @file metalearn/rl/environment.hpp
/// Environments as task families: the requirements of an environment, a task to meta-train
/// on (an environment instance with the seed of its rollouts), and their samplers.
///
/// Requirements of an environment family `Env` (a small copyable struct of options; every
/// call is const and vectorised over `envs` copies of one task):
/// - `using task_type = ...`: what varies between tasks (a goal, arm means, a mass);
/// - `task_type sample_task(Rng&) const`;
/// - `std::int64_t observation_size() const`, `std::int64_t horizon() const`;
/// - `std::int64_t action_size() const`: action dimensions, or the number of actions
///   when `static constexpr bool discrete_actions = true` (actions are then indices);
/// - `Matrix reset(const task_type&, std::int64_t envs, Rng&) const`: the first
///   observations, [envs, observation_size];
/// - `Eigen::VectorXd step(const task_type&, Matrix& observations, const Matrix& actions,
///   Rng&) const`: advance every copy by one step (the observations in place) and return
///   the rewards, [envs]. Actions are [envs, action_size] (one column of indices when
///   discrete); the environment clips them to its own bounds.
/// The observation is the whole state (the environments here are fully observed); an
/// episode lasts exactly `horizon()` steps.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <vector>

namespace metalearn::rl {

/// Observations and actions of `envs` environment copies, one row each.
using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace detail {
template <class Env, class = void>
struct discrete_actions : std::false_type {};
template <class Env>
struct discrete_actions<Env, std::void_t<decltype(Env::discrete_actions)>>
    : std::bool_constant<Env::discrete_actions> {};
}  // namespace detail

/// True when Env's actions are indices (a categorical policy), false for real vectors.
template <class Env>
inline constexpr bool discrete_actions_v = detail::discrete_actions<Env>::value;

/// One task of a meta-batch: the environment, the task, and the seed its rollouts draw
/// from (so a task's rollouts are the same whichever thread or rank samples them).
template <class Env>
struct EnvTask {
  Env env;
  typename Env::task_type task;
  std::uint64_t seed = 0;
};

/// Meta-batches of `tasks` tasks of `env`, each with a fresh rollout seed: the sampler the
/// trainer draws from (`sample(Rng&)`).
template <class Env>
class EnvTaskSampler {
 public:
  EnvTaskSampler(Env env, std::int64_t tasks) : env_(std::move(env)), tasks_(tasks) {
    if (tasks < 1)
      throw InvalidArgument("metalearn::rl::EnvTaskSampler: need tasks >= 1, got " +
                            std::to_string(tasks));
  }
  std::vector<EnvTask<Env>> sample(Rng& rng) const {
    std::vector<EnvTask<Env>> batch;
    batch.reserve(static_cast<std::size_t>(tasks_));
    for (std::int64_t t = 0; t < tasks_; ++t) {
      EnvTask<Env> e{env_, env_.sample_task(rng), 0};
      e.seed = rng();
      batch.push_back(std::move(e));
    }
    return batch;
  }
  const Env& env() const { return env_; }

 private:
  Env env_;
  std::int64_t tasks_;
};

/// `count` tasks drawn with their own `seed`: the same held-out tasks in every run (the
/// trainer's validation set, the example's 40 test tasks).
template <class Env>
std::vector<EnvTask<Env>> fixed_tasks(const Env& env, std::int64_t count, std::uint64_t seed) {
  Rng rng(seed);
  return EnvTaskSampler<Env>(env, count).sample(rng);
}

}  // namespace metalearn::rl
