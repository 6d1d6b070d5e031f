// SPDX-License-Identifier: MIT
/// @file metalearn/learners/policies.hpp
/// Policies of the gradient-based learner, and the results every learner reports.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace metalearn::meta {

/// How the inner loop is differentiated.
/// Requirements: `static constexpr bool create_graph;` (true = keep second-order terms).
struct SecondOrder {
  static constexpr bool create_graph = true;
};
struct FirstOrder {
  static constexpr bool create_graph = false;
};
/// Reptile (Nichol et al. 2018): no gradient through the inner loop; the meta-update moves
/// theta toward the adapted weights, theta <- theta + epsilon (theta' - theta). The inner
/// loop trains on the whole task (support and query sets). The learner hands the outer
/// optimizer the pseudo-gradient theta - mean(theta'), so plain SGD with learning rate
/// epsilon is exactly Reptile's update (Algorithm 2, batched).
struct ReptileUpdate {
  static constexpr bool create_graph = false;
  static constexpr bool reptile = true;
};

/// Meta-SGD (Li et al. 2017): second-order MAML whose inner step size is a learned tensor
/// alpha per adapted parameter, theta' = theta - alpha * grad L_support (elementwise; Eq. 3),
/// meta-trained with theta. The step sizes start at MamlOptions::inner_lr.
struct LearnedStepSizes {
  static constexpr bool create_graph = true;
  static constexpr bool learned_step_sizes = true;
};

/// Which parameters the inner loop adapts (the others are used as they are, and still
/// meta-learned through the query loss).
/// Requirements: `template <class L> static std::vector<std::size_t> select(L& params)`,
/// given the model's ParameterList, returns the indices to adapt.
struct AdaptAll {
  template <class List>
  static std::vector<std::size_t> select(const List& params) {
    std::vector<std::size_t> all(params.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    return all;
  }
};
/// ANIL (Raghu et al. 2020): adapt only the head, the parameters of the last layer that has
/// any ("<layer>." prefix of the last parameter name).
struct AdaptHead {
  template <class List>
  static std::vector<std::size_t> select(const List& params) {
    if (params.size() == 0) return {};
    const std::string& last = params.name(params.size() - 1);
    return params.select(last.substr(0, last.find('.') + 1));
  }
};

namespace detail {
template <class T, class = void>
inline constexpr bool has_create_graph_v = false;
template <class T>
inline constexpr bool has_create_graph_v<T, std::void_t<decltype(T::create_graph)>> =
    std::is_same_v<std::remove_cv_t<decltype(T::create_graph)>, bool>;
/// Optional policy member `static constexpr bool reptile` (false when absent).
template <class T, class = void>
inline constexpr bool is_reptile_v = false;
template <class T>
inline constexpr bool is_reptile_v<T, std::void_t<decltype(T::reptile)>> = T::reptile;
/// Optional policy member `static constexpr bool learned_step_sizes` (false when absent).
template <class T, class = void>
inline constexpr bool learns_step_sizes_v = false;
template <class T>
inline constexpr bool learns_step_sizes_v<T, std::void_t<decltype(T::learned_step_sizes)>> =
    T::learned_step_sizes;
}  // namespace detail

/// What one meta-training step did (means over the tasks of the meta-batch).
struct StepStats {
  double support_loss = 0;  ///< before adaptation
  double query_loss = 0;    ///< after adaptation: the meta-objective
  /// Query accuracy (classification) or MSE (regression) after adaptation.
  double query_metric = 0;
  double grad_norm = 0;  ///< norm of the meta-gradient (before clipping)
  bool finite = true;    ///< false: a loss or gradient was NaN/inf and no update was made
  std::int64_t tasks = 0;
};

/// The outcome of adapting to one episode and scoring its query set.
struct EpisodeResult {
  double loss = 0;
  /// Fraction of queries classified correctly (NaN for regression).
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  /// Mean squared error on the queries (NaN for classification).
  double mse = std::numeric_limits<double>::quiet_NaN();
  int steps = 0;
};

}  // namespace metalearn::meta
