// SPDX-License-Identifier: MIT
/// @file metalearn/optim/optim.hpp
/// The optim module: SGD, Adam, AdamW, gradient clipping, learning-rate schedules.
#pragma once

#include <metalearn/optim/adam.hpp>
#include <metalearn/optim/clip.hpp>
#include <metalearn/optim/optimizer.hpp>
#include <metalearn/optim/schedule.hpp>
#include <metalearn/optim/sgd.hpp>
