// SPDX-License-Identifier: MIT
/// @file metalearn/learners/matching.hpp
/// Matching Networks (Vinyals et al. 2016): classify a query by attention over the labelled
/// support examples, weighted by the cosine similarity of their embeddings, optionally
/// full-context embeddings (full_context_embedding.hpp).
#pragma once

#include <cmath>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/data/episode.hpp>
#include <metalearn/learners/embedding.hpp>
#include <metalearn/learners/full_context_embedding.hpp>
#include <metalearn/learners/learner.hpp>
#include <metalearn/learners/results.hpp>
#include <metalearn/learners/scoring.hpp>
#include <metalearn/learners/task_pool.hpp>
#include <string>
#include <vector>

namespace metalearn::meta {

/// Options of MatchingNet.
struct MatchingNetOptions {
  /// Scale of the cosine similarities before the attention softmax. 1 is the paper's
  /// Eq. 2; a larger value sharpens the attention (cosines lie in [-1, 1], so with 1 the
  /// weights of a 5-way 1-shot episode stay close to uniform early in training).
  double temperature = 1.0;
  /// Threads for the episodes of a meta-batch, the spare ones for each episode's ops (0: the
  /// hardware's count); bit-identical results for any count.
  int threads = 0;
  double clip_norm = 0.0;  ///< clip the gradient's global norm (0: off)
  /// The network mode in evaluate() (see ProtoNetOptions::eval_mode).
  nn::Mode eval_mode = nn::Mode::eval;
  /// Full-context embeddings (§2.1.2): off by default (`dim` = 0: f = g = the network);
  /// set `full_context.dim` to the network's output width to turn them on.
  FullContextEmbeddingOptions full_context{};
};

/// Matching Networks. A query x's class distribution is P(y | x, S) = sum_i a(x, x_i) y_i
/// (Eq. 1) with the attention a(x, x_i) = softmax_i(t cos(f(x, S), g(x_i, S))) over the
/// support set (Eq. 2, t the temperature) and y_i one-hot; the network (and the LSTMs of the
/// full-context embeddings, when on) are trained on -log P(y | x, S) of N-way K-shot
/// episodes (Eq. 6: training matches test conditions). Without full-context embeddings,
/// f = g = the embedding network.
///
/// @tparam Scalar float for speed, double for gradient checks.
template <class Scalar = float>
class MatchingNet {
 public:
  using scalar_type = Scalar;
  /// What StepStats::tasks counts (the trainer's rate).
  static constexpr const char* rate_unit = "episodes";
  using Episode = data::Episode<Scalar>;

  explicit MatchingNet(MatchingNetOptions options = {})
      : options_(options), full_context_(options.full_context) {
    if (!(options.temperature > 0) || !std::isfinite(options.temperature) || options.threads < 0 ||
        !(options.clip_norm >= 0))
      throw InvalidArgument(
          "metalearn::meta::MatchingNet: need a finite temperature > 0, threads >= 0 and "
          "clip_norm >= 0, got temperature = " +
          std::to_string(options.temperature) + ", threads = " + std::to_string(options.threads) +
          ", clip_norm = " + std::to_string(options.clip_norm));
  }
  const MatchingNetOptions& options() const { return options_; }

  /// What the optimizer trains: the embedding network's parameters, then the full-context
  /// embeddings' LSTM weights ("fce.*", when on), which the list points into: keep this
  /// learner (not a copy) for as long as the optimizer built over the list.
  template <class Model>
  ParameterList<Scalar> meta_parameters(Model& net) & {
    ParameterList<Scalar> list = net.parameters();
    full_context_.add_to(list);
    return list;
  }
  /// A temporary learner's weights would be gone before the optimizer's first step.
  template <class Model>
  ParameterList<Scalar> meta_parameters(Model& net) && = delete;

  /// [queries, ways] log P(y = k | x, S) of `episode`'s queries, recorded on the current
  /// tape with `params`, meta_parameters(net) as Vars (differentiable to any order).
  template <class Model>
  Var<Scalar> log_probabilities(Model& net, const std::vector<Var<Scalar>>& params,
                                const Episode& episode, nn::Mode mode = nn::Mode::train) const {
    detail::check_episode("MatchingNet", episode);
    const std::size_t own = full_context_.size(), model = net.parameters().size();
    if (params.size() != model + own)
      throw InvalidArgument("metalearn::meta::MatchingNet: got " + std::to_string(params.size()) +
                            " parameters, expected the " + std::to_string(model) +
                            " of the model and the " + std::to_string(own) +
                            " of the full-context embeddings (meta_parameters(net))");
    auto [support, query] =
        own == 0 ? detail::embed_episode(net, params, episode, mode)
                 : detail::embed_episode(
                       net, std::vector<Var<Scalar>>(params.begin(), params.begin() + model),
                       episode, mode);
    if (own > 0) {
      support = full_context_.support(&params[model], support);
      query = full_context_.query(&params[model], query, support);
    }
    const Var<Scalar> attention = softmax(pairwise_cosine_similarity(query, support) *
                                          static_cast<Scalar>(options_.temperature));
    Tensor<Scalar> one_hot(
        Shape{static_cast<std::int64_t>(episode.support_labels.size()), episode.ways}, Scalar(0));
    for (std::size_t i = 0; i < episode.support_labels.size(); ++i)
      one_hot.data()[static_cast<std::int64_t>(i) * episode.ways + episode.support_labels[i]] = 1;
    // Every class has a support example, so each probability is a positive sum of softmax
    // weights: the log is finite.
    return log(matmul(attention, constant(one_hot)));
  }

  /// The gradient of the mean query negative log-likelihood over the episodes of `batch`,
  /// one tensor per parameter, into `grads`. query_metric is the query accuracy.
  template <class Model>
  StepStats meta_gradient(Model& net, const std::vector<Episode>& batch,
                          std::vector<Tensor<Scalar>>& grads) const {
    return episode_gradients<Scalar>(
        "MatchingNet::meta_gradient", net, trained(net), batch, options_.threads,
        [&](const std::vector<Var<Scalar>>& params, const Episode& e, TaskOutcome<Scalar>& o) {
          const Var<Scalar> lp = log_probabilities(net, params, e);
          o.metric = accuracy(lp.value(), e.query_labels);
          return cross_entropy(lp, e.query_labels);  // = -log P: the rows of P sum to 1
        },
        grads);
  }

  /// One training step on `batch`; a non-finite loss or gradient skips the update.
  template <class Model, class Optimizer>
  StepStats meta_step(Model& net, Optimizer& outer, const std::vector<Episode>& batch) const {
    return meta::meta_step(*this, net, outer, batch);
  }

  /// Classify `episode`'s queries by the attention-weighted support labels. `steps` is
  /// accepted for the common learner surface and ignored: nothing adapts.
  template <class Model>
  EpisodeResult evaluate(Model& net, const Episode& episode, int steps = 0) const {
    const IntraOpThreads ops(op_threads(options_.threads));  // one episode: its ops on every thread
    (void)steps;
    Tape<Scalar> tape;
    NoGradGuard<Scalar> no_grad;
    const Var<Scalar> lp =
        log_probabilities(net, tape.leaves(trained(net)), episode, options_.eval_mode);
    EpisodeResult r;
    r.loss = static_cast<double>(cross_entropy(lp, episode.query_labels).item());
    r.accuracy = accuracy(lp.value(), episode.query_labels);
    return r;
  }

 private:
  // Views of meta_parameters(net), in its order.
  template <class Model>
  std::vector<TensorView<Scalar>> trained(Model& net) const {
    std::vector<TensorView<Scalar>> v = net.parameters().views();
    full_context_.append_views(v);
    return v;
  }

  MatchingNetOptions options_;
  FullContextEmbedding<Scalar> full_context_;
};

}  // namespace metalearn::meta
