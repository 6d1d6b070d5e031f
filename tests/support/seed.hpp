// Reproducible randomness for tests: base seed (fixed, or METALEARN_TEST_SEED) + salt.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/random.hpp>
#include <string>

namespace metalearn::test {

inline std::uint64_t base_seed() {
  static const std::uint64_t seed = [] {
    const char* env = std::getenv("METALEARN_TEST_SEED");
    return env != nullptr ? std::stoull(env) : std::uint64_t{20261128};
  }();
  return seed;
}

inline Rng make_rng(std::uint64_t salt) { return Rng{base_seed() + salt}; }

/// A tensor of the given shape with entries uniform in [lo, hi).
inline Tensor<double> uniform(Rng& rng, Shape shape, double lo = -2.0, double hi = 2.0) {
  Tensor<double> t(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = metalearn::uniform(rng, lo, hi);
  return t;
}

/// Same, with every entry at least `gap` away from zero (for kinks: relu, abs, max).
inline Tensor<double> uniform_away_from_zero(Rng& rng, Shape shape, double gap = 1e-2,
                                             double hi = 2.0) {
  Tensor<double> t(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const double m = metalearn::uniform(rng, gap, hi);
    t.data()[i] = metalearn::uniform01(rng) < 0.5 ? -m : m;
  }
  return t;
}

}  // namespace metalearn::test
