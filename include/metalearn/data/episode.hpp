// SPDX-License-Identifier: MIT
/// @file metalearn/data/episode.hpp
/// `Episode`: one task's support and query sets, the unit every learner consumes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::data {

namespace detail {
template <class Scalar>
void check_rows(const char* who, const char* set, const Tensor<Scalar>& inputs,
                std::int64_t expected) {
  if (inputs.rank() < 1 || inputs.shape()[0] != expected)
    throw InvalidArgument(std::string(who) + ": the " + set + " inputs have shape " +
                          inputs.shape().to_string() + ", their targets or labels " +
                          std::to_string(expected) + " rows");
}
}  // namespace detail

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

  /// A regression episode from your tensors: inputs [K, ...], targets [K, outputs], K >= 1
  /// support rows (queries may be 0 rows). `ways` is 0, `shots` and `queries` the row counts.
  static Episode regression(Tensor<Scalar> support_inputs, Tensor<Scalar> support_targets,
                            Tensor<Scalar> query_inputs, Tensor<Scalar> query_targets) {
    const char* who = "metalearn::data::Episode::regression";
    detail::check_rows(who, "support", support_inputs,
                       support_targets.rank() >= 1 ? support_targets.shape()[0] : -1);
    detail::check_rows(who, "query", query_inputs,
                       query_targets.rank() >= 1 ? query_targets.shape()[0] : -1);
    if (support_inputs.shape()[0] < 1)
      throw InvalidArgument(std::string(who) + ": the support set is empty");
    Episode e;
    e.shots = support_inputs.shape()[0];
    e.queries = query_inputs.shape()[0];
    e.support_inputs = std::move(support_inputs);
    e.support_targets = std::move(support_targets);
    e.query_inputs = std::move(query_inputs);
    e.query_targets = std::move(query_targets);
    return e;
  }

  /// A classification episode from your tensors: inputs [rows, ...], labels 0..ways-1 with
  /// ways = the largest label + 1; the support rows in class-major order with the same
  /// number of shots per label (all of label 0, then label 1, ...), which is what the
  /// metric learners' prototypes read; the query set the same count of each label, in any
  /// order. `classes` is 0..ways-1 (set it to your own ids if you have them).
  static Episode classification(Tensor<Scalar> support_inputs,
                                std::vector<std::int64_t> support_labels,
                                Tensor<Scalar> query_inputs,
                                std::vector<std::int64_t> query_labels) {
    const char* who = "metalearn::data::Episode::classification";
    detail::check_rows(who, "support", support_inputs,
                       static_cast<std::int64_t>(support_labels.size()));
    detail::check_rows(who, "query", query_inputs, static_cast<std::int64_t>(query_labels.size()));
    if (support_labels.empty())
      throw InvalidArgument(std::string(who) + ": the support set is empty");
    std::int64_t ways = 0;
    for (const auto l : support_labels) {
      if (l < 0)
        throw InvalidArgument(std::string(who) + ": labels must be >= 0, got " + std::to_string(l));
      ways = std::max(ways, l + 1);
    }
    const std::int64_t shots = static_cast<std::int64_t>(support_labels.size()) / ways;
    for (std::size_t i = 0; i < support_labels.size(); ++i) {
      const auto want = static_cast<std::int64_t>(i) / shots;
      if (static_cast<std::int64_t>(support_labels.size()) != ways * shots ||
          support_labels[i] != want)
        throw InvalidArgument(
            std::string(who) + ": support labels must be 0..ways-1 in " + "class-major order, " +
            std::to_string(shots) + " shots each; row " + std::to_string(i) + " has label " +
            std::to_string(support_labels[i]) + ", " + std::to_string(want) + " expected");
    }
    std::vector<std::int64_t> count(static_cast<std::size_t>(ways), 0);
    for (const auto l : query_labels) {
      if (l < 0 || l >= ways)
        throw InvalidArgument(std::string(who) + ": query label " + std::to_string(l) +
                              " is not one of the support set's 0.." + std::to_string(ways - 1));
      ++count[static_cast<std::size_t>(l)];
    }
    for (const auto c : count)
      if (c != count[0])
        throw InvalidArgument(std::string(who) + ": the query set needs the same count of " +
                              "every label (" + std::to_string(count[0]) + " of label 0, " +
                              std::to_string(c) + " of another)");
    Episode e;
    e.ways = ways;
    e.shots = shots;
    e.queries = count[0];
    e.support_inputs = std::move(support_inputs);
    e.query_inputs = std::move(query_inputs);
    e.support_labels = std::move(support_labels);
    e.query_labels = std::move(query_labels);
    for (std::int64_t c = 0; c < ways; ++c) e.classes.push_back(c);
    return e;
  }
};

/// A sampler is any type with `Episode<S> sample(Rng&)`; this trait checks for it.
template <class T, class = void>
inline constexpr bool is_sampler_v = false;
template <class T>
inline constexpr bool
    is_sampler_v<T, std::void_t<decltype(std::declval<T&>().sample(std::declval<Rng&>()))>> = true;

}  // namespace metalearn::data
