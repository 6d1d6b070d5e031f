// SPDX-License-Identifier: MIT
/// @file metalearn/learners/full_context_embedding.hpp
/// Matching Networks' full-context embeddings (Vinyals et al. 2016, §2.1.2 and Appendix A):
/// the support embeddings read the whole support set through a bidirectional LSTM, and a
/// query's embedding attends to them over K steps of an attention LSTM, so that both depend
/// on the episode, not on one example alone.
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <metalearn/nn/init.hpp>
#include <metalearn/nn/lstm.hpp>
#include <metalearn/parameter_list.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <vector>

namespace metalearn::meta {

/// Options of FullContextEmbedding.
struct FullContextEmbeddingOptions {
  /// The embedding network's output width d, also the LSTMs' hidden width (so that
  /// g = h_forward + h_backward + g' adds up); 0 turns full-context embeddings off.
  std::int64_t dim = 0;
  /// K, the attention LSTM's steps for a query's embedding (Appendix A.1; the paper gives
  /// no value for Omniglot).
  int processing_steps = 1;
  /// Seed of the LSTM weights, drawn as PyTorch's nn.LSTM draws them: uniform in
  /// [-1/sqrt(d), 1/sqrt(d)].
  std::uint64_t seed = 0;
};

/// The LSTM weights of the full-context embeddings g and f and the two functions.
/// Column layout inside (states [d, n]), rows at the interface ([S, d], [Q, d]).
template <class Scalar>
class FullContextEmbedding {
 public:
  /// The weights, in the order of add_to() and of the `w` arguments below.
  enum Weight : std::size_t {
    support_forward_input,      ///< [4d, d]
    support_forward_recurrent,  ///< [4d, d]
    support_forward_bias,       ///< [4d, 1]
    support_backward_input,
    support_backward_recurrent,
    support_backward_bias,
    query_input,      ///< [4d, d]: f'(x)
    query_recurrent,  ///< [4d, d]: h_{k-1}
    query_readout,    ///< [4d, d]: r_{k-1}
    query_bias,       ///< [4d, 1]
    weight_count
  };
  static constexpr const char* weight_names[weight_count] = {"fce.support_forward.input",
                                                             "fce.support_forward.recurrent",
                                                             "fce.support_forward.bias",
                                                             "fce.support_backward.input",
                                                             "fce.support_backward.recurrent",
                                                             "fce.support_backward.bias",
                                                             "fce.query.input",
                                                             "fce.query.recurrent",
                                                             "fce.query.readout",
                                                             "fce.query.bias"};

  explicit FullContextEmbedding(FullContextEmbeddingOptions options = {}) : options_(options) {
    if (options.dim < 0 || options.processing_steps < 1)
      throw InvalidArgument(
          "metalearn::meta::FullContextEmbedding: need dim >= 0 (0: off) and processing_steps "
          ">= 1, got dim = " +
          std::to_string(options.dim) +
          ", processing_steps = " + std::to_string(options.processing_steps));
    if (!enabled()) return;
    const std::int64_t d = options.dim;
    Rng rng(options.seed);
    const double bound = 1.0 / std::sqrt(static_cast<double>(d));
    for (std::size_t i = 0; i < weight_count; ++i) {
      const bool bias = i == support_forward_bias || i == support_backward_bias || i == query_bias;
      weights_.emplace_back(bias ? Shape{4 * d, 1} : Shape{4 * d, d});
      nn::init::uniform(weights_.back(), -bound, bound, rng);
    }
  }
  const FullContextEmbeddingOptions& options() const { return options_; }
  bool enabled() const { return options_.dim > 0; }
  /// The number of weight tensors (0 when off).
  std::size_t size() const { return weights_.size(); }

  /// Appends the weights to `list` (what the outer optimizer trains and checkpoints hold).
  void add_to(ParameterList<Scalar>& list) {
    for (std::size_t i = 0; i < weights_.size(); ++i) list.add(weight_names[i], weights_[i]);
  }
  /// Appends views of the weights to `views`, in add_to's order.
  void append_views(std::vector<TensorView<Scalar>>& views) const {
    for (const auto& w : weights_) views.push_back(w.view());
  }

  /// g(x_i, S) = h_forward_i + h_backward_i + g'(x_i) (Appendix A.2) for the support
  /// embeddings g' [S, d] read in the episode's order, with `w` the recorded weights.
  Var<Scalar> support(const Var<Scalar>* w, const Var<Scalar>& g_prime) const {
    check("support", g_prime);
    const std::int64_t s = g_prime.shape()[0];
    const auto forward = run_support(w + support_forward_input, g_prime, false);
    const auto backward = run_support(w + support_backward_input, g_prime, true);
    std::vector<Var<Scalar>> rows;
    rows.reserve(static_cast<std::size_t>(s));
    for (std::int64_t i = 0; i < s; ++i)
      rows.push_back(
          transpose(forward[static_cast<std::size_t>(i)] + backward[static_cast<std::size_t>(i)]));
    return concat(rows) + g_prime;
  }

  /// f(x, S) = h_K (Appendix A.1) for all queries f' [Q, d] at once, attending to the
  /// support embeddings g [S, d]: h_k = LSTM(f', [h_{k-1}, r_{k-1}], c_{k-1}) + f' with the
  /// read-out r_{k-1} = sum_i softmax_i(h_{k-1}^T g_i) g_i, from h_0 = c_0 = 0.
  Var<Scalar> query(const Var<Scalar>* w, const Var<Scalar>& f_prime, const Var<Scalar>& g) const {
    check("query", f_prime);
    check("query", g);
    const std::int64_t d = options_.dim, q = f_prime.shape()[0];
    const Var<Scalar> f_t = transpose(f_prime);
    const Var<Scalar> input = matmul(w[query_input], f_prime, false, true) + w[query_bias];
    Var<Scalar> h = constant(Tensor<Scalar>(Shape{d, q}, Scalar(0)));
    Var<Scalar> c = h;
    for (int k = 0; k < options_.processing_steps; ++k) {
      const Var<Scalar> attention = softmax(matmul(h, g, true, true));  // [Q, S]
      const Var<Scalar> readout = matmul(g, attention, true, true);     // [d, Q]
      const auto next = nn::lstm_step(
          input + matmul(w[query_recurrent], h) + matmul(w[query_readout], readout), c);
      h = next.hidden + f_t;
      c = next.cell;
    }
    return transpose(h);
  }

 private:
  void check(const char* who, const Var<Scalar>& x) const {
    if (x.shape().rank() != 2 || x.shape()[1] != options_.dim || x.shape()[0] < 1)
      throw InvalidArgument(std::string("metalearn::meta::FullContextEmbedding::") + who +
                            ": embeddings have shape " + x.shape().to_string() + ", expected [n, " +
                            std::to_string(options_.dim) +
                            "] (FullContextEmbeddingOptions::dim is the network's output width)");
  }

  /// The hidden states [d, 1] of one direction's LSTM over the rows of g', in row order;
  /// `w` points at that direction's input, recurrent and bias weights.
  std::vector<Var<Scalar>> run_support(const Var<Scalar>* w, const Var<Scalar>& g_prime,
                                       bool reverse) const {
    const std::int64_t s = g_prime.shape()[0];
    const Var<Scalar> input = matmul(g_prime, w[0], false, true);  // [S, 4d]: row i is W x_i
    std::vector<Var<Scalar>> hidden(static_cast<std::size_t>(s));
    Var<Scalar> h, c = constant(Tensor<Scalar>(Shape{options_.dim, 1}, Scalar(0)));
    for (std::int64_t n = 0; n < s; ++n) {
      const std::int64_t i = reverse ? s - 1 - n : n;
      Var<Scalar> gates = transpose(slice(input, i, i + 1)) + w[2];
      if (n > 0) gates = gates + matmul(w[1], h);  // h_0 = 0
      const auto next = nn::lstm_step(gates, c);
      h = next.hidden;
      c = next.cell;
      hidden[static_cast<std::size_t>(i)] = h;
    }
    return hidden;
  }

  FullContextEmbeddingOptions options_;
  std::vector<Tensor<Scalar>> weights_;
};

}  // namespace metalearn::meta
