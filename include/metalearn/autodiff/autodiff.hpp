// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/autodiff.hpp
/// The autodiff module: tensors, tapes, Vars, every op, grad/vjp/jvp/hvp, gradcheck.
#pragma once

#include <metalearn/autodiff/grad.hpp>
#include <metalearn/autodiff/gradcheck.hpp>
#include <metalearn/autodiff/ops/arithmetic.hpp>
#include <metalearn/autodiff/ops/broadcast.hpp>
#include <metalearn/autodiff/ops/conv.hpp>
#include <metalearn/autodiff/ops/distance.hpp>
#include <metalearn/autodiff/ops/elementwise.hpp>
#include <metalearn/autodiff/ops/linalg.hpp>
#include <metalearn/autodiff/ops/loss.hpp>
#include <metalearn/autodiff/ops/normalize.hpp>
#include <metalearn/autodiff/ops/pool.hpp>
#include <metalearn/autodiff/ops/reduce.hpp>
#include <metalearn/autodiff/ops/shape_ops.hpp>
#include <metalearn/autodiff/ops/softmax.hpp>
#include <metalearn/autodiff/parallel.hpp>
#include <metalearn/autodiff/shape.hpp>
#include <metalearn/autodiff/tape.hpp>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/autodiff/var.hpp>
