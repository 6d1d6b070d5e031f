// SPDX-License-Identifier: MIT
/// @file metalearn/learners/siamese.hpp
/// Siamese networks: one encoder applied to both members of a pair, trained so that the
/// distance of the two embeddings tells same-class from different-class pairs.
#pragma once

#include <algorithm>
#include <cmath>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/data/episode.hpp>
#include <metalearn/data/pairs.hpp>
#include <metalearn/learners/distances.hpp>
#include <metalearn/learners/embedding.hpp>
#include <metalearn/learners/learner.hpp>
#include <metalearn/learners/mining.hpp>
#include <metalearn/learners/pair_losses.hpp>
#include <metalearn/learners/results.hpp>
#include <metalearn/learners/scoring.hpp>
#include <metalearn/learners/task_pool.hpp>
#include <metalearn/nn/sequential.hpp>
#include <string>
#include <vector>

namespace metalearn::meta {

/// Options of the Siamese learner.
struct SiameseOptions {
  double margin = 1.0;  ///< m of the contrastive loss
  /// Verification: a pair whose distance is below this is called "same class". Negative:
  /// margin / 2, the midpoint of the contrastive loss's targets (0 and m).
  double threshold = -1.0;
  SupportRule rule = SupportRule::nearest_example;  ///< how evaluate() classifies queries
  double clip_norm = 0.0;                           ///< clip the gradient's global norm (0: off)
  nn::Mode eval_mode = nn::Mode::eval;              ///< the network mode outside training
  /// KochHead only: the embedding size, i.e. the number of learned weights alpha.
  std::int64_t head_features = 0;
  /// Threads for the ops of a pair batch or an episode (0: the hardware's count), and for
  /// the episodes of an episode batch.
  int threads = 0;
  /// Which pairs of an episode batch are scored (meta_gradient over episodes; mining.hpp).
  Mining mining = Mining::hard;
};

/// A Siamese network (Bromley et al. 1993; Hadsell et al. 2006; Koch et al. 2015): D =
/// Distance(f(x1), f(x2)) for a pair, trained with PairLoss(D, y, margin), y = 1 for a pair
/// of different classes. Used for verification (same or different?) and for N-way K-shot
/// classification of an episode by the support examples (SiameseOptions::rule). It trains
/// on pair batches (PairSampler) or on episodes, whose examples it embeds once and pairs
/// among themselves (SiameseOptions::mining; mined_loss).
///
/// @tparam Distance Euclidean (default), SquaredEuclidean, Cosine or L1.
/// @tparam PairLoss Contrastive (default), SquaredContrastive, or KochHead (a learned
///                  weighted-L1 head with binary cross-entropy; pair_losses.hpp).
template <class Distance = Euclidean, class PairLoss = Contrastive, class Scalar = float>
class Siamese {
 public:
  using scalar_type = Scalar;
  /// What StepStats::tasks counts (the trainer's rate).
  static constexpr const char* rate_unit = "batches";  // of pairs, or sets to mine
  using Episode = data::Episode<Scalar>;
  using Batch = data::PairBatch<Scalar>;

  explicit Siamese(SiameseOptions options = {}) : options_(options) {
    if (!(options.margin > 0) || !std::isfinite(options.margin) || !(options.clip_norm >= 0) ||
        !std::isfinite(options.threshold) || options.threads < 0)
      throw InvalidArgument(
          "metalearn::meta::Siamese: need a finite margin > 0, a finite threshold, "
          "clip_norm >= 0 and threads >= 0, got margin = " +
          std::to_string(options.margin) + ", threshold = " + std::to_string(options.threshold) +
          ", threads = " + std::to_string(options.threads));
    if (options_.threshold < 0) options_.threshold = koch ? 0.0 : options_.margin / 2;
    if (koch && options.head_features < 1)
      throw InvalidArgument(
          "metalearn::meta::Siamese: KochHead needs head_features (the embedding size) >= 1, "
          "got " +
          std::to_string(options.head_features));
  }
  const SiameseOptions& options() const { return options_; }

  /// The model's parameters, then (KochHead) the head's "head.alpha" [features] and
  /// "head.beta" [1], created on the first call (alpha = -1 / features, beta = 0: the head
  /// starts as "the closer, the likelier the same class", minus the mean L1 distance).
  template <class Model>
  ParameterList<Scalar> meta_parameters(Model& net) {
    ParameterList<Scalar> list = net.parameters();
    if constexpr (koch) {
      if (head_.empty()) {
        head_.emplace_back(Shape{options_.head_features},
                           Scalar(-1) / static_cast<Scalar>(options_.head_features));
        head_.emplace_back(Shape{1}, Scalar(0));
      }
      list.add("head.alpha", head_[0]);
      list.add("head.beta", head_[1]);
    }
    return list;
  }

  /// [B] distances of the pairs of `batch`, recorded on the current tape (one forward pass
  /// over both members, so batch norm sees all 2B examples). `params` are the model's
  /// parameters, then the head's for KochHead (as meta_parameters lists them).
  template <class Model>
  Var<Scalar> distances(Model& net, const std::vector<Var<Scalar>>& params, const Batch& batch,
                        nn::Mode mode = nn::Mode::train) const {
    const Shape a = batch.first.shape(), b = batch.second.shape();
    if (a != b || a.rank() < 2 || batch.different.numel() != a[0])
      throw InvalidArgument(
          "metalearn::meta::Siamese: pairs need first and second of one shape "
          "[B, ...] and B labels, got " +
          a.to_string() + ", " + b.to_string() + " and " + std::to_string(batch.different.numel()) +
          " labels");
    const Var<Scalar> all = detail::embed(
        net, model_part(params), constant(detail::stack_rows(batch.first, batch.second)), mode);
    return pair_distance(slice(all, 0, a[0]), slice(all, a[0], 2 * a[0]), params);
  }

  /// The pair loss over pairs mined among all n examples (support and query) of `episode`,
  /// on the current tape. One forward pass embeds the n examples; the pairs they form cost
  /// no further network evaluation (Hermans et al. 2017's in-batch mining, §2, applied to
  /// pairs). Mining::hard scores, per anchor, its farthest same-class example and its
  /// nearest other-class one (by the current distances: the max and min of batch-hard, whose
  /// gradient this is); Mining::all scores every pair. Same-class and different-class pairs
  /// weigh half each (the loss is the mean of the two kinds' mean losses), as PairSampler
  /// draws them half and half. `metric`, if given, receives the verification accuracy of the
  /// scored pairs at the threshold. Throws if the episode has no same-class pair or one
  /// class only.
  template <class Model>
  Var<Scalar> mined_loss(Model& net, const std::vector<Var<Scalar>>& params, const Episode& episode,
                         nn::Mode mode = nn::Mode::train, double* metric = nullptr) const {
    detail::check_episode("Siamese::mined_loss", episode);
    const Var<Scalar> all = detail::embed(
        net, model_part(params),
        constant(detail::stack_rows(episode.support_inputs, episode.query_inputs)), mode);
    std::vector<std::int64_t> labels = episode.support_labels;
    labels.insert(labels.end(), episode.query_labels.begin(), episode.query_labels.end());
    const MinedPairs pairs = mine(all, params, labels);
    const Var<Scalar> d =
        pair_distance(gather_rows(all, pairs.first), gather_rows(all, pairs.second), params);
    const auto same = static_cast<std::int64_t>(pairs.same);
    const auto total = static_cast<std::int64_t>(pairs.first.size());
    const auto margin = static_cast<Scalar>(options_.margin);
    const Var<Scalar> loss =
        (PairLoss::loss(slice(d, 0, same), constant(Tensor<Scalar>(Shape{same}, Scalar(0))),
                        margin) +
         PairLoss::loss(slice(d, same, total),
                        constant(Tensor<Scalar>(Shape{total - same}, Scalar(1))), margin)) /
        Scalar(2);
    if (metric) {
      Tensor<Scalar> different(Shape{total}, Scalar(1));
      std::fill(different.data(), different.data() + same, Scalar(0));
      *metric = verification_accuracy(d.value(), different);
    }
    return loss;
  }

  /// The gradient of the mean pair loss over `batch`, into `grads`. query_metric is the
  /// verification accuracy at the threshold.
  template <class Model>
  StepStats meta_gradient(Model& net, const Batch& batch,
                          std::vector<Tensor<Scalar>>& grads) const {
    const IntraOpThreads ops(op_threads(options_.threads));  // one pair batch: every thread
    Tape<Scalar> tape;
    const auto params = tape.leaves(views(net));
    const Var<Scalar> d = distances(net, params, batch);
    const Var<Scalar> loss =
        PairLoss::loss(d, constant(batch.different), static_cast<Scalar>(options_.margin));
    std::vector<TaskOutcome<Scalar>> one(1);
    one[0].query_loss = one[0].support_loss = static_cast<double>(loss.item());
    one[0].metric = verification_accuracy(d.value(), batch.different);
    for (const auto& g : grad(loss, params)) one[0].grads.push_back(g.to_tensor());
    return reduce_outcomes(one, grads);
  }

  template <class Model, class Optimizer>
  StepStats meta_step(Model& net, Optimizer& outer, const Batch& batch) const {
    return meta::meta_step(*this, net, outer, batch);
  }

  /// The gradient of the mean mined_loss over the episodes of `batch`, into `grads` (the
  /// episodes on SiameseOptions::threads, the spare threads for their ops). query_metric is
  /// the verification accuracy of the scored pairs.
  template <class Model>
  StepStats meta_gradient(Model& net, const std::vector<Episode>& batch,
                          std::vector<Tensor<Scalar>>& grads) const {
    return episode_gradients<Scalar>(
        "Siamese::meta_gradient", net, views(net), batch, options_.threads,
        [&](const std::vector<Var<Scalar>>& params, const Episode& e, TaskOutcome<Scalar>& o) {
          return mined_loss(net, params, e, nn::Mode::train, &o.metric);
        },
        grads);
  }
  template <class Model, class Optimizer>
  StepStats meta_step(Model& net, Optimizer& outer, const std::vector<Episode>& batch) const {
    return meta::meta_step(*this, net, outer, batch);
  }

  /// The distance of each pair (in eval mode, no tape kept): the verifier's score.
  template <class Model>
  std::vector<double> pair_distances(Model& net, const Batch& batch) const {
    const IntraOpThreads ops(op_threads(options_.threads));  // one episode: its ops on every thread
    Tape<Scalar> tape;
    NoGradGuard<Scalar> no_grad;
    const auto d = distances(net, tape.leaves(views(net)), batch, options_.eval_mode).to_tensor();
    return std::vector<double>(d.data(), d.data() + d.numel());
  }

  /// Verification of `batch`: accuracy at the threshold and the ROC AUC of -distance.
  struct Verification {
    double accuracy = 0;
    double auc = 0;
  };
  template <class Model>
  Verification verify(Model& net, const Batch& batch) const {
    const std::vector<double> d = pair_distances(net, batch);
    std::vector<double> score(d.size());
    std::vector<int> same(d.size());
    Tensor<Scalar> dt(Shape{static_cast<std::int64_t>(d.size())});
    for (std::size_t i = 0; i < d.size(); ++i) {
      score[i] = -d[i];
      same[i] = batch.different.data()[i] == Scalar(0);
      dt.data()[i] = static_cast<Scalar>(d[i]);
    }
    return {verification_accuracy(dt.view(), batch.different), roc_auc(score, same)};
  }

  /// N-way K-shot classification of `episode`'s queries by SiameseOptions::rule. `steps` is
  /// accepted for the common learner surface and ignored.
  template <class Model>
  EpisodeResult evaluate(Model& net, const Episode& episode, int steps = 0) const {
    const IntraOpThreads ops(op_threads(options_.threads));  // one episode: its ops on every thread
    (void)steps;
    detail::check_episode("Siamese", episode);
    Tensor<Scalar> scores;
    if constexpr (koch) {
      // Minus the head's query-to-support "distances" [Q, S], by the support rule.
      Tape<Scalar> tape;
      NoGradGuard<Scalar> no_grad;
      const auto params = tape.leaves(views(net));
      const auto [support, query] =
          detail::embed_episode(net, model_part(params), episode, options_.eval_mode);
      scores = detail::support_scores(
          pairwise_distance(query, support, params).value(), episode.support_labels, episode.ways,
          options_.rule == SupportRule::prototype ? SupportRule::mean_distance : options_.rule);
    } else {
      scores =
          detail::classify_by_support<Distance>(net, episode, options_.rule, options_.eval_mode);
    }
    EpisodeResult r;
    r.accuracy = accuracy(scores.view(), episode.query_labels);
    r.loss = 1.0 - r.accuracy;  // no pair loss on an episode: the error rate
    return r;
  }

 private:
  static constexpr bool koch = detail::has_learned_head_v<PairLoss>;

  // The distance of each row pair of e1 and e2 [B, d] -> [B]: Distance, or (KochHead)
  // -(|e1 - e2| alpha + beta), minus Koch's logit, so small means "same".
  Var<Scalar> pair_distance(const Var<Scalar>& e1, const Var<Scalar>& e2,
                            const std::vector<Var<Scalar>>& params) const {
    if constexpr (koch) {
      const auto& h = head_vars(params);
      return -reshape(matmul(abs(e1 - e2), reshape(h[0], Shape{h[0].shape()[0], 1})) + h[1],
                      Shape{e1.shape()[0]});
    } else {
      (void)params;
      return Distance::rowwise(e1, e2);
    }
  }
  // The same for every pair of a [n, d] and b [m, d] -> [n, m].
  Var<Scalar> pairwise_distance(const Var<Scalar>& a, const Var<Scalar>& b,
                                const std::vector<Var<Scalar>>& params) const {
    if constexpr (koch) {
      const auto& h = head_vars(params);
      const Shape sa = a.shape(), sb = b.shape();
      const Var<Scalar> diff = abs(reshape(a, Shape{sa[0], 1, sa[1]}) -
                                   reshape(b, Shape{1, sb[0], sb[1]}));  // [n, m, d]
      return -(reshape(matmul(reshape(diff, Shape{sa[0] * sb[0], sa[1]}),
                              reshape(h[0], Shape{sa[1], 1})),
                       Shape{sa[0], sb[0]}) +
               h[1]);
    } else {
      (void)params;
      return Distance::pairwise(a, b);
    }
  }

  // Pairs (first[k], second[k]) of rows of a labelled set: the `same` same-class pairs
  // first, then the different-class ones.
  struct MinedPairs {
    std::vector<std::int64_t> first, second;
    std::size_t same = 0;
  };
  MinedPairs mine(const Var<Scalar>& embeddings, const std::vector<Var<Scalar>>& params,
                  const std::vector<std::int64_t>& labels) const {
    const auto n = static_cast<std::int64_t>(labels.size());
    const auto label = [&](std::int64_t i) { return labels[static_cast<std::size_t>(i)]; };
    std::vector<std::int64_t> pos_a, pos_b, neg_a, neg_b;
    if (options_.mining == Mining::all) {
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = i + 1; j < n; ++j) {
          const bool same = label(i) == label(j);
          (same ? pos_a : neg_a).push_back(i);
          (same ? pos_b : neg_b).push_back(j);
        }
    } else {
      // Batch-hard by the current distances, read off without a tape (the selection is
      // piecewise constant; the gradient flows through the distances picked).
      Tensor<Scalar> d;
      {
        NoGradGuard<Scalar> no_grad;
        const Var<Scalar> e = constant(embeddings.to_tensor());
        d = pairwise_distance(e, e, params).to_tensor();
      }
      for (std::int64_t a = 0; a < n; ++a) {
        std::int64_t far = -1, near = -1;
        for (std::int64_t b = 0; b < n; ++b) {
          const Scalar dab = d.data()[a * n + b];
          if (b != a && label(b) == label(a) && (far < 0 || dab > d.data()[a * n + far])) far = b;
          if (label(b) != label(a) && (near < 0 || dab < d.data()[a * n + near])) near = b;
        }
        if (far < 0 || near < 0) continue;  // no positive or no negative: not an anchor
        pos_a.push_back(a);
        pos_b.push_back(far);
        neg_a.push_back(a);
        neg_b.push_back(near);
      }
    }
    if (pos_a.empty() || neg_a.empty()) {
      std::int64_t same = 0;  // the set's same-class pairs, whatever the mining
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = i + 1; j < n; ++j) same += label(i) == label(j);
      throw InvalidArgument(
          "metalearn::meta::Siamese::mined_loss: pairs need two examples of one class and two "
          "classes, got " +
          std::to_string(n) + " examples forming " + std::to_string(same) + " same-class and " +
          std::to_string(n * (n - 1) / 2 - same) + " different-class pairs");
    }
    MinedPairs m;
    m.same = pos_a.size();
    m.first = pos_a;
    m.first.insert(m.first.end(), neg_a.begin(), neg_a.end());
    m.second = pos_b;
    m.second.insert(m.second.end(), neg_b.begin(), neg_b.end());
    return m;
  }

  // Views of the model's parameters, then of the head's (KochHead).
  template <class Model>
  std::vector<TensorView<Scalar>> views(Model& net) const {
    if constexpr (koch)
      if (head_.empty())
        throw StateError(
            "metalearn::meta::Siamese: KochHead has no head yet; call meta_parameters(net) "
            "first and build the optimizer over its result");
    std::vector<TensorView<Scalar>> v = net.parameters().views();
    for (const auto& t : head_) v.push_back(t.view());
    return v;
  }
  std::vector<Var<Scalar>> model_part(const std::vector<Var<Scalar>>& params) const {
    return std::vector<Var<Scalar>>(params.begin(),
                                    params.end() - static_cast<std::ptrdiff_t>(head_.size()));
  }
  static std::vector<Var<Scalar>> head_vars(const std::vector<Var<Scalar>>& params) {
    return std::vector<Var<Scalar>>(params.end() - 2, params.end());
  }

  double verification_accuracy(TensorView<Scalar> d, const Tensor<Scalar>& different) const {
    std::int64_t right = 0;
    for (std::int64_t i = 0; i < d.numel(); ++i)
      right += (d.data()[i] < options_.threshold) == (different.data()[i] == Scalar(0));
    return static_cast<double>(right) / static_cast<double>(std::max<std::int64_t>(1, d.numel()));
  }

  SiameseOptions options_;
  std::vector<Tensor<Scalar>> head_;  // KochHead: alpha [features], beta [1]
};

}  // namespace metalearn::meta
