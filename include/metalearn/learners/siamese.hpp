// SPDX-License-Identifier: MIT
/// @file metalearn/learners/siamese.hpp
/// Siamese networks: one encoder applied to both members of a pair, trained so that the
/// distance of the two embeddings tells same-class from different-class pairs.
#pragma once

#include <cmath>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/data/episode.hpp>
#include <metalearn/data/pairs.hpp>
#include <metalearn/learners/distances.hpp>
#include <metalearn/learners/embedding.hpp>
#include <metalearn/learners/learner.hpp>
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
  /// Threads for the ops of a pair batch or an episode (0: the hardware's count).
  int threads = 0;
};

/// A Siamese network (Bromley et al. 1993; Hadsell et al. 2006; Koch et al. 2015): D =
/// Distance(f(x1), f(x2)) for a pair, trained with PairLoss(D, y, margin), y = 1 for a pair
/// of different classes. Used for verification (same or different?) and for N-way K-shot
/// classification of an episode by the support examples (SiameseOptions::rule).
///
/// @tparam Distance Euclidean (default), SquaredEuclidean, Cosine or L1.
/// @tparam PairLoss Contrastive (default), SquaredContrastive, or KochHead (a learned
///                  weighted-L1 head with binary cross-entropy; pair_losses.hpp).
template <class Distance = Euclidean, class PairLoss = Contrastive, class Scalar = float>
class Siamese {
 public:
  using scalar_type = Scalar;
  /// What StepStats::tasks counts (the trainer's rate).
  static constexpr const char* rate_unit = "pair batches";
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
    const Var<Scalar> e1 = slice(all, 0, a[0]), e2 = slice(all, a[0], 2 * a[0]);
    if constexpr (koch) {
      // -(|e1 - e2| alpha + beta): minus Koch's logit, so small means "same".
      const auto& h = head_vars(params);
      return -reshape(matmul(abs(e1 - e2), reshape(h[0], Shape{h[0].shape()[0], 1})) + h[1],
                      Shape{a[0]});
    } else {
      return Distance::rowwise(e1, e2);
    }
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
      const auto& h = head_vars(params);
      const Shape sq = query.shape(), ss = support.shape();
      const Var<Scalar> diff = abs(reshape(query, Shape{sq[0], 1, sq[1]}) -
                                   reshape(support, Shape{1, ss[0], ss[1]}));  // [Q, S, d]
      const Var<Scalar> logits = reshape(matmul(reshape(diff, Shape{sq[0] * ss[0], sq[1]}),
                                                reshape(h[0], Shape{sq[1], 1})),
                                         Shape{sq[0], ss[0]}) +
                                 h[1];
      scores = detail::support_scores(
          (-logits).value(), episode.support_labels, episode.ways,
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
