// SPDX-License-Identifier: MIT
/// @file metalearn/learners/learners.hpp
/// The learners module: gradient-based meta-learners (MAML, first-order MAML, ANIL,
/// Reptile, Meta-SGD, MAML++, iMAML, CAVIA) with the open inner loop `adapt`, and
/// metric-based learners (Prototypical Networks, Matching Networks, Siamese networks,
/// triplet loss), all with the surface of metalearn/learners/learner.hpp.
#pragma once

#include <metalearn/learners/adapt.hpp>
#include <metalearn/learners/distances.hpp>
#include <metalearn/learners/embedding.hpp>
#include <metalearn/learners/full_context_embedding.hpp>
#include <metalearn/learners/gradient_learner.hpp>
#include <metalearn/learners/learner.hpp>
#include <metalearn/learners/load_model.hpp>
#include <metalearn/learners/matching.hpp>
#include <metalearn/learners/mining.hpp>
#include <metalearn/learners/pair_losses.hpp>
#include <metalearn/learners/policies.hpp>
#include <metalearn/learners/protonet.hpp>
#include <metalearn/learners/scoring.hpp>
#include <metalearn/learners/siamese.hpp>
#include <metalearn/learners/task_group.hpp>
#include <metalearn/learners/task_pool.hpp>
#include <metalearn/learners/trainer.hpp>
#include <metalearn/learners/triplet.hpp>
#include <metalearn/learners/validate.hpp>
