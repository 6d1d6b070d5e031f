// SPDX-License-Identifier: MIT
/// @file metalearn/config.hpp
/// Build-time switches: METALEARN_ASSERT for internal invariants.
///
/// METALEARN_ASSERT is on when NDEBUG is off or METALEARN_ENABLE_ASSERTS is defined. With
/// METALEARN_ASSERT_THROWS it throws metalearn::detail::AssertionFailure instead of aborting.
/// Users may define METALEARN_ASSERT themselves (like eigen_assert). Define these per
/// target, never per file: different definitions in one program break the ODR.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <metalearn/error.hpp>
#include <string>

#if !defined(METALEARN_ASSERT)
#if !defined(NDEBUG) || defined(METALEARN_ENABLE_ASSERTS)
#if defined(METALEARN_ASSERT_THROWS)
#define METALEARN_ASSERT(cond, msg)                                                              \
  do {                                                                                           \
    if (!(cond))                                                                                 \
      throw ::metalearn::detail::AssertionFailure(std::string("metalearn assertion '") + #cond + \
                                                  "' failed: " + (msg));                         \
  } while (false)
#else
#define METALEARN_ASSERT(cond, msg)                                                       \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "metalearn assertion '%s' failed: %s (%s:%d)\n", #cond, (msg), \
                   __FILE__, __LINE__);                                                   \
      std::abort();                                                                       \
    }                                                                                     \
  } while (false)
#endif
#else
#define METALEARN_ASSERT(cond, msg) ((void)0)
#endif
#endif
