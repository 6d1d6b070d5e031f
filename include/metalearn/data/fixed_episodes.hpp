// SPDX-License-Identifier: MIT
/// @file metalearn/data/fixed_episodes.hpp
/// A fixed set of episodes for validation or test: drawn once from any sampler with a
/// generator of their own, so they are the same in every run and independent of how much
/// training drew from its own generator.
#pragma once

#include <cstdint>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <vector>

namespace metalearn::data {

/// `count` episodes (or batches: whatever `sampler.sample(rng)` returns) drawn from
/// `sampler` with Rng(seed).
///
/// ```
/// const auto validation = metalearn::data::fixed_episodes(tasks, 100, /*seed=*/7);
/// ```
template <class Sampler>
auto fixed_episodes(const Sampler& sampler, std::int64_t count, std::uint64_t seed) {
  if (count < 0)
    throw InvalidArgument("metalearn::data::fixed_episodes: count must be >= 0, got " +
                          std::to_string(count));
  Rng rng(seed);
  std::vector<decltype(sampler.sample(rng))> out;
  out.reserve(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) out.push_back(sampler.sample(rng));
  return out;
}

}  // namespace metalearn::data
