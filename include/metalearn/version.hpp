// SPDX-License-Identifier: MIT
/// @file metalearn/version.hpp
/// Library version, as macros and constants.
#pragma once

#define METALEARN_VERSION_MAJOR 0
#define METALEARN_VERSION_MINOR 1
#define METALEARN_VERSION_PATCH 0
#define METALEARN_VERSION_STRING "0.1.0"
