// SPDX-License-Identifier: MIT
/// @file metalearn/data/data.hpp
/// The data module: episodes, regression task families, class-indexed datasets, N-way
/// K-shot episode samplers, meta-batches, class splits, pairs and triplets.
#pragma once

#include <metalearn/data/class_dataset.hpp>
#include <metalearn/data/episode.hpp>
#include <metalearn/data/episode_sampler.hpp>
#include <metalearn/data/meta_batch.hpp>
#include <metalearn/data/pairs.hpp>
#include <metalearn/data/regression.hpp>
#include <metalearn/data/split.hpp>
