// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/detail/partial_sums.hpp
/// Sums over chunks that give the same bits for any thread count: the chunks are split into
/// a fixed number of slots (a function of the shapes), each slot sums its chunks in order
/// into its own partial, and the partials are added in slot order. Each participant's
/// partial or scratch starts on its own 64-byte line.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <utility>

namespace metalearn::detail {

/// Values per participant of a parallel loop, rounded up to whole 64-byte lines so that no
/// two participants write to one cache line.
template <class Scalar>
std::int64_t per_worker(std::int64_t values) {
  const std::int64_t line = 64 / static_cast<std::int64_t>(sizeof(Scalar));
  return (values + line - 1) / line * line;
}

/// The partial sums a weight gradient over `chunks` groups of images is split into: at
/// least 4 groups each (fewer partials cost less than the threads gain on small batches),
/// at most 4. A function of the shapes only, so every thread count adds alike.
inline std::int64_t reduction_slots(std::int64_t chunks) {
  return std::max<std::int64_t>(1, std::min<std::int64_t>(4, chunks / 4));
}
/// Groups [first, last) of slot `s` of `slots` over `chunks` groups.
inline std::pair<std::int64_t, std::int64_t> slot_range(std::int64_t s, std::int64_t slots,
                                                        std::int64_t chunks) {
  return {s * chunks / slots, (s + 1) * chunks / slots};
}

/// out = sum over slots of the `size` values at partial[s] (partial[0] is `out` itself),
/// added in slot order.
template <class Scalar>
void add_slots(Scalar* out, const Scalar* partials, std::int64_t slots, std::int64_t size) {
  using Vec = Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
  using ConstVec = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
  for (std::int64_t s = 1; s < slots; ++s)
    Vec(out, size) += ConstVec(partials + (s - 1) * per_worker<Scalar>(size), size);
}

}  // namespace metalearn::detail
