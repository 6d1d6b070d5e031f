// SPDX-License-Identifier: MIT
/// @file metalearn/rl/rl.hpp
/// The rl module: environments as task families, stochastic policies, rollouts with
/// returns, GAE and the linear baseline, and MAML for policies with TRPO's outer step.
#pragma once

#include <metalearn/rl/bandit.hpp>
#include <metalearn/rl/baseline.hpp>
#include <metalearn/rl/distributions.hpp>
#include <metalearn/rl/environment.hpp>
#include <metalearn/rl/maml_rl.hpp>
#include <metalearn/rl/navigation.hpp>
#include <metalearn/rl/outer_updates.hpp>
#include <metalearn/rl/point_mass.hpp>
#include <metalearn/rl/policies.hpp>
#include <metalearn/rl/returns.hpp>
#include <metalearn/rl/rollouts.hpp>
#include <metalearn/rl/surrogates.hpp>
