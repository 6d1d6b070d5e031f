// SPDX-License-Identifier: MIT
/// @file metalearn/data/data.hpp
/// The data module: episodes, regression task families, class-indexed datasets, N-way
/// K-shot episode samplers, meta-batches, class splits, pairs and triplets, and loaders
/// (image folders, IDX files, Lake et al.'s one-shot runs).
#pragma once

#include <metalearn/data/any_sampler.hpp>
#include <metalearn/data/class_dataset.hpp>
#include <metalearn/data/episode.hpp>
#include <metalearn/data/episode_sampler.hpp>
#include <metalearn/data/fixed_episodes.hpp>
#include <metalearn/data/group_episodes.hpp>
#include <metalearn/data/meta_batch.hpp>
#include <metalearn/data/pairs.hpp>
#include <metalearn/data/regression.hpp>
#include <metalearn/data/split.hpp>
#include <metalearn/data/transforms.hpp>

// Loaders of real data sets: image folders and Lake runs need stb_image (libstb-dev).
#include <metalearn/data/idx.hpp>
#if __has_include(<stb/stb_image.h>)
#include <metalearn/data/image.hpp>
#include <metalearn/data/image_folder.hpp>
#include <metalearn/data/lake.hpp>
#include <metalearn/data/omniglot.hpp>
#endif
