// SPDX-License-Identifier: MIT
/// @file metalearn/nn/per_step_batch_norm.hpp
/// Batch normalisation with one scale and shift per inner step: MAML++'s "per-step batch
/// normalisation weights and biases" (BNWB, Antoniou et al. 2019, §4).
#pragma once

#include <algorithm>
#include <cstdint>
#include <metalearn/nn/batch_norm.hpp>
#include <metalearn/nn/inner_step.hpp>
#include <string>

namespace metalearn::nn {

/// Batch norm whose gamma and beta are rows of [steps + 1, C] parameters: the forward pass
/// at inner step k (nn::inner_step(), set by meta::Adapted to the number of steps that
/// made its parameters) uses row k, and steps beyond `steps` use the last row. Row k is read
/// only by forwards with k-step parameters, so an inner step's update of a row is never
/// read again: the rows are meta-learned and not adapted, as in MAML++, even when the
/// adaptation set lists them. One row more than the authors' code, which gives the query
/// after the last step the support's row of that step; here the query after k steps has
/// row k of its own.
///
/// Normalises with the batch's statistics in training and evaluation alike. MAML++'s
/// per-step running statistics (BNRS) are not kept: the authors' layer accumulates them
/// but always calls `F.batch_norm(..., training=True)` (meta_neural_network_architectures.py,
/// MetaBatchNormLayer.forward), so they never change an output.
template <class Scalar = float>
class PerStepBatchNorm : public detail::Cloneable<PerStepBatchNorm<Scalar>, Scalar> {
 public:
  /// `steps`: the inner steps of meta-training (one row per step count 0 .. steps).
  /// Of `options`, eps is used; affine must be on and running_stats off.
  PerStepBatchNorm(std::int64_t channels, int steps, BatchNormOptions options = {})
      : eps_(options.eps),
        gamma_(Shape{rows(channels, steps, options), channels}, Scalar(1)),
        beta_(Shape{steps + 1, channels}, Scalar(0)) {}

  std::string describe() const override {
    return "PerStepBatchNorm(" + std::to_string(channels()) + ", steps " + std::to_string(steps()) +
           ")";
  }
  std::size_t num_parameters() const override { return 2; }
  void collect_parameters(const std::string& prefix, ParameterList<Scalar>& out) override {
    out.add(prefix + "weight", gamma_);
    out.add(prefix + "bias", beta_);
  }

  Var<Scalar> forward(const Var<Scalar>* p, const Var<Scalar>& x, Mode /*mode*/) override {
    const Shape s = x.shape();
    const std::int64_t c = channels();
    if (!((s.rank() == 2 || s.rank() == 4) && s[1] == c))
      throw InvalidArgument("metalearn::nn::PerStepBatchNorm::forward: input has shape " +
                            s.to_string() + ", expected [N, " + std::to_string(c) + "] or [N, " +
                            std::to_string(c) + ", H, W]");
    const std::int64_t row = std::min<std::int64_t>(std::max(inner_step(), 0), steps());
    const Var<Scalar> gamma = reshape(slice(p[0], row, row + 1), Shape{c});
    const Var<Scalar> beta = reshape(slice(p[1], row, row + 1), Shape{c});
    return batch_norm(x, gamma, beta, static_cast<Scalar>(eps_));
  }

  std::int64_t channels() const { return gamma_.shape()[1]; }
  int steps() const { return static_cast<int>(gamma_.shape()[0]) - 1; }

 private:
  static std::int64_t rows(std::int64_t channels, int steps, const BatchNormOptions& o) {
    const std::string f = "metalearn::nn::PerStepBatchNorm: ";
    if (channels < 1)
      throw InvalidArgument(f + "channels must be positive, got " + std::to_string(channels));
    if (steps < 1) throw InvalidArgument(f + "steps must be >= 1, got " + std::to_string(steps));
    if (!(o.eps > 0)) throw InvalidArgument(f + "eps must be > 0");
    if (!o.affine)
      throw InvalidArgument(f + "affine must be on (the per-step weights are the point)");
    if (o.running_stats)
      throw InvalidArgument(f +
                            "running_stats is not supported (MAML++ never normalises with "
                            "them; use nn::BatchNorm for running statistics)");
    return steps + 1;
  }

  double eps_;
  Tensor<Scalar> gamma_, beta_;
};

}  // namespace metalearn::nn
