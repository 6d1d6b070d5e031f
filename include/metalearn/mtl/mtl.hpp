// SPDX-License-Identifier: MIT
/// @file metalearn/mtl/mtl.hpp
/// The mtl module: multi-task batches and models, loss weightings, gradient aggregators,
/// the multi-task learner, and the two-objective toy problem.
#pragma once

#include <metalearn/mtl/aggregators.hpp>
#include <metalearn/mtl/batch.hpp>
#include <metalearn/mtl/models.hpp>
#include <metalearn/mtl/mtl_learner.hpp>
#include <metalearn/mtl/multi_fashion.hpp>
#include <metalearn/mtl/report.hpp>
#include <metalearn/mtl/synthetic.hpp>
#include <metalearn/mtl/task_loss.hpp>
#include <metalearn/mtl/toy.hpp>
#include <metalearn/mtl/weightings.hpp>
