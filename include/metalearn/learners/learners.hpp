// SPDX-License-Identifier: MIT
/// @file metalearn/learners/learners.hpp
/// The learners module: gradient-based meta-learners (MAML, first-order MAML, ANIL, Reptile, Meta-SGD) and metric-based learners.
#pragma once

#include <metalearn/learners/gradient_learner.hpp>
#include <metalearn/learners/policies.hpp>
#include <metalearn/learners/scoring.hpp>
#include <metalearn/learners/task_pool.hpp>
