// SPDX-License-Identifier: MIT
/// @file metalearn/random.hpp
/// The library's random number generator and its distribution helpers.
///
/// All randomness goes through an explicit `Rng&`. std::mt19937_64's sequence is fixed by
/// the standard, but std::*_distribution output differs between standard libraries, so the
/// helpers here are our own: the same seed gives the same numbers on every platform.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

namespace metalearn {

/// The generator used everywhere in metalearn.
using Rng = std::mt19937_64;

/// Uniform double in [0, 1), from the top 53 bits of one draw.
inline double uniform01(Rng& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

/// Uniform double in [lo, hi).
inline double uniform(Rng& rng, double lo, double hi) { return lo + (hi - lo) * uniform01(rng); }

/// Uniform integer in [0, n), without modulo bias (rejection sampling). n must be > 0.
inline std::uint64_t uniform_index(Rng& rng, std::uint64_t n) {
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t r = rng();
  while (r >= limit) r = rng();
  return r % n;
}

/// Standard normal draw (Box-Muller; one of the pair is discarded to keep the helper
/// stateless, so a draw depends only on the generator's state).
inline double normal(Rng& rng) {
  constexpr double two_pi = 6.283185307179586476925286766559;
  double u1 = uniform01(rng);
  while (u1 <= 0.0) u1 = uniform01(rng);
  const double u2 = uniform01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2);
}

/// Normal draw with the given mean and standard deviation.
inline double normal(Rng& rng, double mean, double stddev) { return mean + stddev * normal(rng); }

}  // namespace metalearn
