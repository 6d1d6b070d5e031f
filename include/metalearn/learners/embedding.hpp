// SPDX-License-Identifier: MIT
/// @file metalearn/learners/embedding.hpp
/// What the metric learners share: embedding an episode in one forward pass, class means
/// (prototypes), and classifying queries by their distances to the support set.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/data/episode.hpp>
#include <metalearn/error.hpp>
#include <metalearn/nn/layer.hpp>
#include <metalearn/nn/model.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::meta {

/// How Siamese and triplet learners classify a query of an N-way K-shot episode.
enum class SupportRule {
  nearest_example,  ///< the class of the nearest support example (Koch et al. 2015)
  mean_distance,    ///< the class with the smallest mean distance to its support examples
  prototype,        ///< the class whose mean embedding is nearest (as ProtoNets do)
};

namespace detail {

/// Checks that `e` is a classification episode a metric learner can use: labels in
/// [0, ways), at least one support example of every class, inputs matching the labels.
template <class Scalar>
void check_episode(const char* who, const data::Episode<Scalar>& e) {
  const auto fail = [&](const std::string& what) {
    throw InvalidArgument(std::string("metalearn::meta::") + who + ": " + what);
  };
  if (!e.is_classification()) fail("needs a classification episode (ways > 0), got regression");
  if (e.support_inputs.shape().rank() < 2 ||
      e.support_inputs.shape()[0] != static_cast<std::int64_t>(e.support_labels.size()) ||
      e.query_inputs.shape().rank() < 2 ||
      e.query_inputs.shape()[0] != static_cast<std::int64_t>(e.query_labels.size()))
    fail("support inputs " + e.support_inputs.shape().to_string() + " and query inputs " +
         e.query_inputs.shape().to_string() + " do not match " +
         std::to_string(e.support_labels.size()) + " support and " +
         std::to_string(e.query_labels.size()) + " query labels");
  std::vector<int> seen(static_cast<std::size_t>(e.ways), 0);
  for (const auto* labels : {&e.support_labels, &e.query_labels})
    for (std::int64_t l : *labels) {
      if (l < 0 || l >= e.ways)
        fail("label " + std::to_string(l) + " outside [0, " + std::to_string(e.ways) + ")");
      if (labels == &e.support_labels) seen[static_cast<std::size_t>(l)] = 1;
    }
  for (std::int64_t c = 0; c < e.ways; ++c)
    if (seen[static_cast<std::size_t>(c)] == 0)
      fail("class " + std::to_string(c) + " has no support example");
}

/// The rows of a, then the rows of b (same trailing shape).
template <class Scalar>
Tensor<Scalar> stack_rows(const Tensor<Scalar>& a, const Tensor<Scalar>& b) {
  const Shape sa = a.shape();
  std::array<std::int64_t, Shape::max_rank> dims{};
  for (int i = 0; i < sa.rank(); ++i) dims[static_cast<std::size_t>(i)] = sa[i];
  dims[0] += b.shape()[0];
  Tensor<Scalar> out(Shape::from_array(dims, sa.rank()));
  std::copy(a.data(), a.data() + a.numel(), out.data());
  std::copy(b.data(), b.data() + b.numel(), out.data() + a.numel());
  return out;
}

template <class M, class Scalar, class = void>
struct forward_takes_mode : std::false_type {};
template <class M, class Scalar>
struct forward_takes_mode<M, Scalar,
                          std::void_t<decltype(std::declval<M&>().forward(
                              std::declval<const std::vector<Var<Scalar>>&>(),
                              std::declval<const Var<Scalar>&>(), nn::Mode::eval))>>
    : std::true_type {};

/// The network's output as [n, d] embeddings (`mode` is passed to a model whose forward
/// takes one, as nn::Sequential's does).
template <class Model, class Scalar>
Var<Scalar> embed(Model& net, const std::vector<Var<Scalar>>& params, const Var<Scalar>& x,
                  nn::Mode mode) {
  nn::require_model<Model, Scalar>();
  Var<Scalar> e;
  if constexpr (forward_takes_mode<Model, Scalar>::value)
    e = net.forward(params, x, mode);
  else
    e = net.forward(params, x);
  return e.shape().rank() == 2 ? e : flatten(e);
}

/// Support and query embeddings from one forward pass over both sets (so batch norm
/// normalises them together, as in Snell et al.'s reference code; one larger GEMM is also
/// faster than two).
template <class Model, class Scalar>
std::pair<Var<Scalar>, Var<Scalar>> embed_episode(Model& net,
                                                  const std::vector<Var<Scalar>>& params,
                                                  const data::Episode<Scalar>& e, nn::Mode mode) {
  const std::int64_t s = e.support_inputs.shape()[0], q = e.query_inputs.shape()[0];
  const Var<Scalar> all =
      embed(net, params, constant(stack_rows(e.support_inputs, e.query_inputs)), mode);
  return {slice(all, 0, s), slice(all, s, s + q)};
}

/// [ways, d]: the mean embedding of each class (Snell et al. 2017, Eq. 1).
template <class Scalar>
Var<Scalar> class_means(const Var<Scalar>& embeddings, const std::vector<std::int64_t>& labels,
                        std::int64_t ways) {
  Tensor<Scalar> inverse_count(Shape{ways, 1}, Scalar(0));
  for (std::int64_t l : labels) inverse_count.data()[l] += Scalar(1);
  for (std::int64_t c = 0; c < ways; ++c)
    inverse_count.data()[c] = Scalar(1) / std::max(Scalar(1), inverse_count.data()[c]);
  return scatter_add_rows(embeddings, labels, ways) * constant(inverse_count);
}

/// [queries, ways] scores (higher = more likely) from the query-to-support distances
/// `d` [queries, support]: minus the nearest or the mean distance to each class's examples.
template <class Scalar>
Tensor<Scalar> support_scores(TensorView<Scalar> d, const std::vector<std::int64_t>& labels,
                              std::int64_t ways, SupportRule rule) {
  const std::int64_t q = d.shape()[0], s = d.shape()[1];
  Tensor<Scalar> scores(Shape{q, ways});
  std::vector<Scalar> count(static_cast<std::size_t>(ways), Scalar(0));
  for (std::int64_t l : labels) count[static_cast<std::size_t>(l)] += Scalar(1);
  for (std::int64_t i = 0; i < q; ++i) {
    Scalar* row = scores.data() + i * ways;
    std::fill(
        row, row + ways,
        rule == SupportRule::nearest_example ? std::numeric_limits<Scalar>::infinity() : Scalar(0));
    for (std::int64_t j = 0; j < s; ++j) {
      const auto c = labels[static_cast<std::size_t>(j)];
      const Scalar dij = d.data()[i * s + j];
      row[c] = rule == SupportRule::nearest_example
                   ? std::min(row[c], dij)
                   : row[c] + dij / count[static_cast<std::size_t>(c)];
    }
    for (std::int64_t c = 0; c < ways; ++c) row[c] = -row[c];
  }
  return scores;
}

/// Classify the queries of `e` with an embedding network and a distance: scores
/// [queries, ways], by `rule`.
template <class Distance, class Model, class Scalar>
Tensor<Scalar> classify_by_support(Model& net, const data::Episode<Scalar>& e, SupportRule rule,
                                   nn::Mode mode) {
  Tape<Scalar> tape;
  NoGradGuard<Scalar> no_grad;
  const auto params = tape.leaves(net.parameters().views());
  const auto [support, query] = embed_episode(net, params, e, mode);
  if (rule == SupportRule::prototype)
    return (-Distance::pairwise(query, class_means(support, e.support_labels, e.ways))).to_tensor();
  return support_scores(Distance::pairwise(query, support).value(), e.support_labels, e.ways, rule);
}

}  // namespace detail
}  // namespace metalearn::meta
