// SPDX-License-Identifier: MIT
/// @file metalearn/data/any_sampler.hpp
/// A sampler chosen at run time: AnySampler<Sample> holds any sampler whose sample(Rng&)
/// returns Sample, so a program can pick plain or augmented episodes from a flag without
/// instantiating the trainer once per choice.
#pragma once

#include <functional>
#include <metalearn/data/episode.hpp>
#include <metalearn/random.hpp>
#include <type_traits>
#include <utility>

namespace metalearn::data {

template <class Sample>
class AnySampler {
 public:
  /// Keeps a copy of `sampler`; its sample() must be const (MetaBatchSampler calls it from
  /// several threads at once).
  template <class Sampler,
            class = std::enable_if_t<!std::is_same_v<std::decay_t<Sampler>, AnySampler>>>
  AnySampler(Sampler sampler)  // NOLINT(runtime/explicit): any sampler converts
      : sample_([s = std::move(sampler)](Rng& rng) -> Sample { return s.sample(rng); }) {
    static_assert(
        std::is_same_v<
            std::decay_t<decltype(std::declval<const Sampler&>().sample(std::declval<Rng&>()))>,
            Sample>,
        "AnySampler<Sample>: the sampler's sample(Rng&) must return Sample");
  }
  Sample sample(Rng& rng) const { return sample_(rng); }

 private:
  std::function<Sample(Rng&)> sample_;
};

}  // namespace metalearn::data
