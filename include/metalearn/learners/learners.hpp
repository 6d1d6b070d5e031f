// SPDX-License-Identifier: MIT
/// @file metalearn/learners/learners.hpp
/// The learners module: gradient-based meta-learners (MAML, first-order MAML).
#pragma once

#include <metalearn/learners/gradient_learner.hpp>
#include <metalearn/learners/policies.hpp>
