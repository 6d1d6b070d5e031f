// SPDX-License-Identifier: MIT
/// @file metalearn/nn/parameter.hpp
/// Kept for source compatibility: ParameterList now lives in <metalearn/parameter_list.hpp>
/// (below nn/, optim/ and io/, which all use it).
#pragma once

#include <metalearn/parameter_list.hpp>
