// SPDX-License-Identifier: MIT
/// @file metalearn/metalearn.hpp
/// Everything metalearn offers; what users include.
#pragma once

#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/config.hpp>
#include <metalearn/data/data.hpp>
#include <metalearn/error.hpp>
#include <metalearn/io/io.hpp>
#include <metalearn/learners/learners.hpp>
#include <metalearn/mtl/mtl.hpp>
#include <metalearn/nn/nn.hpp>
#include <metalearn/optim/optim.hpp>
#include <metalearn/random.hpp>
#include <metalearn/rl/rl.hpp>
#include <metalearn/version.hpp>
