// SPDX-License-Identifier: MIT
/// @file metalearn/learners/policies.hpp
/// The policies of the gradient learner (one header per kind) and the results every
/// learner reports.
#pragma once

#include <metalearn/learners/adaptation_set.hpp>
#include <metalearn/learners/inner_update.hpp>
#include <metalearn/learners/meta_objective.hpp>
#include <metalearn/learners/results.hpp>
#include <metalearn/learners/task_loss.hpp>
