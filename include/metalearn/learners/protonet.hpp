// SPDX-License-Identifier: MIT
/// @file metalearn/learners/protonet.hpp
/// Prototypical Networks (Snell et al. 2017): classify a query by its distance to the mean
/// embedding of each class's support examples.
#pragma once

#include <cmath>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/data/episode.hpp>
#include <metalearn/learners/distances.hpp>
#include <metalearn/learners/embedding.hpp>
#include <metalearn/learners/learner.hpp>
#include <metalearn/learners/results.hpp>
#include <metalearn/learners/scoring.hpp>
#include <metalearn/learners/task_pool.hpp>
#include <metalearn/nn/sequential.hpp>
#include <vector>

namespace metalearn::meta {

/// Options of ProtoNet.
struct ProtoNetOptions {
  /// Threads for the episodes of a meta-batch, the spare ones for each episode's ops (0: the
  /// hardware's count); results are bit-identical for any count. Usually one episode per
  /// step (Snell et al.), whose convolutions then run on all of them.
  int threads = 0;
  /// Clip the gradient to this global norm before the optimizer step (0: off).
  double clip_norm = 0.0;
  /// The network mode in evaluate(): eval uses batch norm's running statistics when the
  /// model keeps them (BatchNormOptions::running_stats), the usual choice for metric
  /// learners; train normalises each episode with its own statistics.
  nn::Mode eval_mode = nn::Mode::eval;
};

/// Prototypical Networks. Each class's prototype is the mean embedding of its support
/// examples, c_k = mean f(x_i) (Eq. 1); a query x is classified by a softmax over minus its
/// distances to the prototypes, p(y = k | x) ~ exp(-d(f(x), c_k)) (Eq. 2), and the network is
/// trained on the query cross-entropy of N-way K-shot episodes (Algorithm 1).
///
/// @tparam Distance SquaredEuclidean (Snell's choice; see §2.4), Euclidean, Cosine or L1
///                  (metalearn/learners/distances.hpp).
/// @tparam Scalar   float for speed, double for gradient checks.
template <class Distance = SquaredEuclidean, class Scalar = float>
class ProtoNet {
 public:
  using scalar_type = Scalar;
  /// What StepStats::tasks counts (the trainer's rate).
  static constexpr const char* rate_unit = "episodes";
  using Episode = data::Episode<Scalar>;

  explicit ProtoNet(ProtoNetOptions options = {}) : options_(options) {
    if (options.threads < 0 || !(options.clip_norm >= 0))
      throw InvalidArgument(
          "metalearn::meta::ProtoNet: need threads >= 0 and clip_norm >= 0, got threads = " +
          std::to_string(options.threads) + ", clip_norm = " + std::to_string(options.clip_norm));
  }
  const ProtoNetOptions& options() const { return options_; }

  /// What the optimizer trains: the embedding network's parameters.
  template <class Model>
  ParameterList<Scalar> meta_parameters(Model& net) const {
    return net.parameters();
  }

  /// [queries, ways] logits -d(f(x), c_k) of `episode`'s queries, recorded on the current
  /// tape with the model's parameters `params` (differentiable to any order).
  template <class Model>
  Var<Scalar> logits(Model& net, const std::vector<Var<Scalar>>& params, const Episode& episode,
                     nn::Mode mode = nn::Mode::train) const {
    detail::check_episode("ProtoNet", episode);
    const auto [support, query] = detail::embed_episode(net, params, episode, mode);
    return -Distance::pairwise(query,
                               detail::class_means(support, episode.support_labels, episode.ways));
  }

  /// The gradient of the mean query cross-entropy over the episodes of `batch`, one
  /// tensor per parameter, into `grads`. query_metric is the query accuracy.
  template <class Model>
  StepStats meta_gradient(Model& net, const std::vector<Episode>& batch,
                          std::vector<Tensor<Scalar>>& grads) const {
    return episode_gradients<Scalar>(
        "ProtoNet::meta_gradient", net, net.parameters().views(), batch, options_.threads,
        [&](const std::vector<Var<Scalar>>& params, const Episode& e, TaskOutcome<Scalar>& o) {
          const Var<Scalar> z = logits(net, params, e);
          o.metric = accuracy(z.value(), e.query_labels);
          return cross_entropy(z, e.query_labels);
        },
        grads);
  }

  /// One training step on `batch`; a non-finite loss or gradient skips the update.
  template <class Model, class Optimizer>
  StepStats meta_step(Model& net, Optimizer& outer, const std::vector<Episode>& batch) const {
    return meta::meta_step(*this, net, outer, batch);
  }

  /// Classify `episode`'s queries by their nearest prototype. `steps` is accepted for the
  /// common learner surface and ignored: a ProtoNet does not adapt.
  template <class Model>
  EpisodeResult evaluate(Model& net, const Episode& episode, int steps = 0) const {
    const IntraOpThreads ops(op_threads(options_.threads));  // one episode: its ops on every thread
    (void)steps;
    Tape<Scalar> tape;
    NoGradGuard<Scalar> no_grad;
    const Var<Scalar> z =
        logits(net, tape.leaves(net.parameters().views()), episode, options_.eval_mode);
    EpisodeResult r;
    r.loss = static_cast<double>(cross_entropy(z, episode.query_labels).item());
    r.accuracy = accuracy(z.value(), episode.query_labels);
    return r;
  }

 private:
  ProtoNetOptions options_;
};

}  // namespace metalearn::meta
