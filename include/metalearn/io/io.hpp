// SPDX-License-Identifier: MIT
/// @file metalearn/io/io.hpp
/// The io module: checkpoints.
#pragma once

#include <metalearn/io/checkpoint.hpp>
