// SPDX-License-Identifier: MIT
/// @file metalearn/data/meta_batch.hpp
/// Meta-batches: B episodes at once, optionally built on several threads, identical for any
/// thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <future>
#include <metalearn/data/episode.hpp>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::data {

/// Draws `batch` episodes from `sampler`. Each episode gets its own generator, seeded by
/// one draw of the caller's generator in episode order; the episodes are then built
/// independently, on up to `threads` threads. So the same seed gives the same episodes for
/// 1 or N threads, and the caller's generator advances by exactly `batch` draws.
template <class Sampler>
class MetaBatchSampler {
  static_assert(is_sampler_v<Sampler>, "Sampler must have a member `sample(metalearn::Rng&)`");

 public:
  using episode_type =
      std::decay_t<decltype(std::declval<const Sampler&>().sample(std::declval<Rng&>()))>;

  MetaBatchSampler(Sampler sampler, std::int64_t batch, int threads = 1)
      : sampler_(std::move(sampler)), batch_(batch), threads_(threads) {
    if (batch < 1 || threads < 1)
      throw InvalidArgument(
          "metalearn::data::MetaBatchSampler: need batch >= 1 and threads >= 1, got " +
          std::to_string(batch) + " and " + std::to_string(threads));
  }

  std::vector<episode_type> sample(Rng& rng) const {
    std::vector<std::uint64_t> seeds(static_cast<std::size_t>(batch_));
    for (auto& s : seeds) s = rng();
    std::vector<episode_type> out(static_cast<std::size_t>(batch_));
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(batch_));
    const auto build = [&](std::size_t begin, std::size_t step) {
      for (std::size_t i = begin; i < out.size(); i += step) {
        try {  // an exception must not escape a worker thread; rethrown below, in order
          Rng local(seeds[i]);
          out[i] = sampler_.sample(local);
        } catch (...) {
          errors[i] = std::current_exception();
        }
      }
    };
    const std::size_t t = static_cast<std::size_t>(std::min<std::int64_t>(threads_, batch_));
    std::vector<std::thread> pool;
    for (std::size_t k = 1; k < t; ++k) pool.emplace_back(build, k, t);
    build(0, std::max<std::size_t>(t, 1));
    for (auto& th : pool) th.join();
    for (const auto& e : errors)
      if (e) std::rethrow_exception(e);
    return out;
  }

  std::int64_t batch() const { return batch_; }
  const Sampler& sampler() const { return sampler_; }

 private:
  Sampler sampler_;
  std::int64_t batch_;
  int threads_;
};

/// Runs a sampler one draw ahead on a background thread: while the learner works on one
/// episode (or meta-batch), the next is being built. It owns its generator, seeded once, and
/// draws strictly in order, so a seed gives the same sequence as calling `sample` directly
/// with `Rng{seed}`. An exception in the sampler reaches the caller of `next`.
template <class Sampler>
class Prefetcher {
  static_assert(is_sampler_v<Sampler>, "Sampler must have a member `sample(metalearn::Rng&)`");

 public:
  using value_type =
      std::decay_t<decltype(std::declval<const Sampler&>().sample(std::declval<Rng&>()))>;

  Prefetcher(Sampler sampler, std::uint64_t seed) : sampler_(std::move(sampler)), rng_(seed) {
    launch();
  }
  ~Prefetcher() {
    if (pending_.valid()) pending_.wait();
  }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  /// The next draw; starts building the one after.
  value_type next() {
    value_type v = pending_.get();
    launch();
    return v;
  }

 private:
  void launch() {
    pending_ = std::async(std::launch::async, [this] { return sampler_.sample(rng_); });
  }

  Sampler sampler_;
  Rng rng_;
  std::future<value_type> pending_;
};

}  // namespace metalearn::data
