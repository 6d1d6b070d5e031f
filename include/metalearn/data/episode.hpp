// SPDX-License-Identifier: MIT
/// @file metalearn/data/episode.hpp
/// `Episode`: one task's support and query sets, the unit every learner consumes.
#pragma once

#include <cstdint>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/random.hpp>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::data {

/// A support set (to adapt on) and a query set (to evaluate the adaptation on).
///
/// Classification: `support_labels` / `query_labels` hold labels remapped to 0..ways-1,
/// and `classes[label]` is the original class id. Regression: `support_targets` /
/// `query_targets` hold real targets, [K, outputs]. Inputs are [K, ...] either way, rows in
/// class-major order for classification (all shots of label 0, then label 1, ...).
template <class Scalar = float>
struct Episode {
  Tensor<Scalar> support_inputs, query_inputs;
  Tensor<Scalar> support_targets, query_targets;           // regression
  std::vector<std::int64_t> support_labels, query_labels;  // classification, 0..ways-1
  std::vector<std::int64_t> classes;                       // original id of each label
  std::int64_t ways = 0;     ///< classes in the episode (0 for regression)
  std::int64_t shots = 0;    ///< support examples per class (per task for regression)
  std::int64_t queries = 0;  ///< query examples per class (per task for regression)

  bool is_classification() const noexcept { return ways > 0; }
};

/// A sampler is any type with `Episode<S> sample(Rng&)`; this trait checks for it.
template <class T, class = void>
inline constexpr bool is_sampler_v = false;
template <class T>
inline constexpr bool
    is_sampler_v<T, std::void_t<decltype(std::declval<T&>().sample(std::declval<Rng&>()))>> = true;

}  // namespace metalearn::data
