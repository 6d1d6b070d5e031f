// SPDX-License-Identifier: MIT
/// @file metalearn/nn/nn.hpp
/// The nn module: functional layers with explicit parameters, initialisers, model builders.
#pragma once

#include <metalearn/nn/batch_norm.hpp>
#include <metalearn/nn/context.hpp>
#include <metalearn/nn/conv2d.hpp>
#include <metalearn/nn/init.hpp>
#include <metalearn/nn/inner_step.hpp>
#include <metalearn/nn/layer.hpp>
#include <metalearn/nn/linear.hpp>
#include <metalearn/nn/lstm.hpp>
#include <metalearn/nn/model.hpp>
#include <metalearn/nn/models.hpp>
#include <metalearn/nn/per_step_batch_norm.hpp>
#include <metalearn/nn/pool.hpp>
#include <metalearn/nn/sequential.hpp>
#include <metalearn/parameter_list.hpp>
