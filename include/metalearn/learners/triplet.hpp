// SPDX-License-Identifier: MIT
/// @file metalearn/learners/triplet.hpp
/// Triplet-loss embedding learning with triplets mined inside each episode.
#pragma once

#include <cmath>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/data/episode.hpp>
#include <metalearn/learners/distances.hpp>
#include <metalearn/learners/embedding.hpp>
#include <metalearn/learners/learner.hpp>
#include <metalearn/learners/mining.hpp>
#include <metalearn/learners/results.hpp>
#include <metalearn/learners/scoring.hpp>
#include <metalearn/learners/task_pool.hpp>
#include <metalearn/nn/sequential.hpp>
#include <string>
#include <vector>

namespace metalearn::meta {

/// The triplet loss max(0, m + D(a, p) - D(a, n)) (Schroff et al. 2015, Eq. 1, with a
/// margin m) over the triplets of n labelled embeddings whose distance matrix is `d` [n, n],
/// mined by `mining`. Anchors without a positive or without a negative take no part; if no
/// anchor has both, throws.
template <class Scalar>
Var<Scalar> triplet_loss(const Var<Scalar>& d, const std::vector<std::int64_t>& labels,
                         Scalar margin, Mining mining) {
  const auto n = static_cast<std::int64_t>(labels.size());
  if (d.shape() != Shape{n, n})
    throw InvalidArgument("metalearn::meta::triplet_loss: distances " + d.shape().to_string() +
                          " for " + std::to_string(n) + " labels (need [n, n])");
  Tensor<Scalar> positive(Shape{n, n}, Scalar(0)), negative(Shape{n, n}, Scalar(0));
  Tensor<Scalar> anchor(Shape{n}, Scalar(0));  // 1: the anchor has a positive and a negative
  std::int64_t anchors = 0;
  for (std::int64_t a = 0; a < n; ++a) {
    bool has_pos = false, has_neg = false;
    for (std::int64_t b = 0; b < n; ++b) {
      const bool same = labels[static_cast<std::size_t>(a)] == labels[static_cast<std::size_t>(b)];
      positive.data()[a * n + b] = Scalar(same && a != b);
      negative.data()[a * n + b] = Scalar(!same);
      has_pos |= same && a != b;
      has_neg |= !same;
    }
    anchor.data()[a] = Scalar(has_pos && has_neg);
    anchors += has_pos && has_neg;
  }
  if (anchors == 0)
    throw InvalidArgument(
        "metalearn::meta::triplet_loss: no anchor has both a positive (same label) and a "
        "negative (other label); need at least 2 classes with 2 examples of one");
  if (mining == Mining::hard) {
    // Farthest positive: max over D * positive-mask (distances are >= 0, so masked entries,
    // zeros, never win over a real positive). Nearest negative: min over D plus a constant
    // larger than every distance on the non-negatives.
    const Scalar big = d.value().array().maxCoeff() + std::abs(margin) + Scalar(1);
    Tensor<Scalar> shift(Shape{n, n});
    for (std::int64_t i = 0; i < n * n; ++i)
      shift.data()[i] = (Scalar(1) - negative.data()[i]) * big;
    const Var<Scalar> hardest_pos = max(d * constant(positive), 1);
    const Var<Scalar> hardest_neg = min(d + constant(shift), 1);
    return sum(relu(margin + hardest_pos - hardest_neg) * constant(anchor)) /
           static_cast<Scalar>(anchors);
  }
  // Batch-all: l[a, p, q] = max(0, m + D[a, p] - D[a, q]) on valid triplets.
  Tensor<Scalar> valid(Shape{n, n, n});
  std::int64_t count = 0;
  for (std::int64_t a = 0; a < n; ++a)
    for (std::int64_t p = 0; p < n; ++p)
      for (std::int64_t q = 0; q < n; ++q) {
        const bool ok = positive.data()[a * n + p] != 0 && negative.data()[a * n + q] != 0;
        valid.data()[(a * n + p) * n + q] = Scalar(ok);
        count += ok;
      }
  const Var<Scalar> l =
      relu(margin + reshape(d, Shape{n, n, 1}) - reshape(d, Shape{n, 1, n})) * constant(valid);
  return sum(l) / static_cast<Scalar>(count);
}

/// Options of the Triplet learner.
struct TripletOptions {
  double margin = 0.2;  ///< m (Schroff et al. 2015 use 0.2 on normalised embeddings)
  Mining mining = Mining::hard;
  SupportRule rule = SupportRule::nearest_example;  ///< how evaluate() classifies queries
  int threads = 0;  ///< threads for the episodes of a batch, the spare ones for their ops
  double clip_norm = 0.0;
  nn::Mode eval_mode = nn::Mode::eval;
};

/// Embedding learning with the triplet loss, triplets mined among all examples (support
/// and query) of each episode; classification of an episode's queries by the support set.
///
/// @tparam Distance Euclidean (default), SquaredEuclidean, Cosine or L1.
template <class Distance = Euclidean, class Scalar = float>
class Triplet {
 public:
  using scalar_type = Scalar;
  /// What StepStats::tasks counts (the trainer's rate).
  static constexpr const char* rate_unit = "episodes";
  using Episode = data::Episode<Scalar>;

  explicit Triplet(TripletOptions options = {}) : options_(options) {
    if (!(options.margin >= 0) || !std::isfinite(options.margin) || options.threads < 0 ||
        !(options.clip_norm >= 0))
      throw InvalidArgument(
          "metalearn::meta::Triplet: need a finite margin >= 0, threads >= 0 and clip_norm >= "
          "0, got margin = " +
          std::to_string(options.margin));
  }
  const TripletOptions& options() const { return options_; }

  template <class Model>
  ParameterList<Scalar> meta_parameters(Model& net) const {
    return net.parameters();
  }

  /// The mean triplet loss of `episode` (support and query together), on the current tape.
  template <class Model>
  Var<Scalar> loss(Model& net, const std::vector<Var<Scalar>>& params, const Episode& episode,
                   nn::Mode mode = nn::Mode::train) const {
    detail::check_episode("Triplet", episode);
    const auto [support, query] = detail::embed_episode(net, params, episode, mode);
    std::vector<std::int64_t> labels = episode.support_labels;
    labels.insert(labels.end(), episode.query_labels.begin(), episode.query_labels.end());
    const Var<Scalar> all = concat(std::vector<Var<Scalar>>{support, query});
    return triplet_loss(Distance::pairwise(all, all), labels, static_cast<Scalar>(options_.margin),
                        options_.mining);
  }

  /// The gradient of the mean triplet loss over the episodes of `batch`, into `grads`.
  /// query_metric stays 0 (a triplet step has no classification to score; see evaluate).
  template <class Model>
  StepStats meta_gradient(Model& net, const std::vector<Episode>& batch,
                          std::vector<Tensor<Scalar>>& grads) const {
    return episode_gradients<Scalar>(
        "Triplet::meta_gradient", net, net.parameters().views(), batch, options_.threads,
        [&](const std::vector<Var<Scalar>>& params, const Episode& e, TaskOutcome<Scalar>&) {
          return loss(net, params, e);
        },
        grads);
  }

  template <class Model, class Optimizer>
  StepStats meta_step(Model& net, Optimizer& outer, const std::vector<Episode>& batch) const {
    return meta::meta_step(*this, net, outer, batch);
  }

  /// N-way K-shot classification of `episode`'s queries by TripletOptions::rule; `loss` is
  /// the episode's triplet loss. `steps` is ignored (common learner surface).
  template <class Model>
  EpisodeResult evaluate(Model& net, const Episode& episode, int steps = 0) const {
    const IntraOpThreads ops(op_threads(options_.threads));  // one episode: its ops on every thread
    (void)steps;
    detail::check_episode("Triplet", episode);
    const Tensor<Scalar> scores =
        detail::classify_by_support<Distance>(net, episode, options_.rule, options_.eval_mode);
    EpisodeResult r;
    r.accuracy = accuracy(scores.view(), episode.query_labels);
    Tape<Scalar> tape;
    NoGradGuard<Scalar> no_grad;
    r.loss = static_cast<double>(
        loss(net, tape.leaves(net.parameters().views()), episode, options_.eval_mode).item());
    return r;
  }

 private:
  TripletOptions options_;
};

}  // namespace metalearn::meta
