// SPDX-License-Identifier: MIT
/// @file metalearn/nn/batch_norm.hpp
/// Batch normalisation (Ioffe & Szegedy 2015) for dense [N, C] and image [N, C, H, W] inputs.
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/nn/init.hpp>
#include <metalearn/nn/layer.hpp>
#include <string>
#include <vector>

namespace metalearn::nn {

/// Options of BatchNorm.
struct BatchNormOptions {
  double eps = 1e-5;
  /// Weight of the newest batch in the running averages (PyTorch's convention).
  double momentum = 0.1;
  /// Learn a per-channel scale and shift (gamma, beta).
  bool affine = true;
  /// Keep running mean and variance and use them in Mode::eval. Off by default: MAML's
  /// reference setup normalises with the statistics of the current batch in training and
  /// at test time alike ("transductive", Finn et al. 2017).
  bool running_stats = false;
};

/// y = (x - mean) / sqrt(var + eps) * gamma + beta, statistics per channel over the batch
/// (and over H, W for images). Twice differentiable: built from broadcasting ops.
template <class Scalar = float>
class BatchNorm : public detail::Cloneable<BatchNorm<Scalar>, Scalar> {
 public:
  explicit BatchNorm(std::int64_t channels, BatchNormOptions options = {})
      : options_(options),
        gamma_(Shape{checked(channels)}, Scalar(1)),
        beta_(Shape{channels}, Scalar(0)),
        running_mean_(Shape{channels}, Scalar(0)),
        running_var_(Shape{channels}, Scalar(1)) {
    if (!(options.eps > 0) || !(options.momentum >= 0 && options.momentum <= 1))
      throw InvalidArgument("metalearn::nn::BatchNorm: eps must be > 0 and momentum in [0, 1]");
  }

  std::string describe() const override {
    return "BatchNorm(" + std::to_string(channels()) + (options_.running_stats ? ", running" : "") +
           ")";
  }
  std::size_t num_parameters() const override { return options_.affine ? 2 : 0; }
  void collect_parameters(const std::string& prefix, ParameterList<Scalar>& out) override {
    if (!options_.affine) return;
    out.add(prefix + "weight", gamma_);
    out.add(prefix + "bias", beta_);
  }
  void collect_buffers(const std::string& prefix, ParameterList<Scalar>& out) override {
    if (!options_.running_stats) return;
    out.add(prefix + "running_mean", running_mean_);
    out.add(prefix + "running_var", running_var_);
  }

  Var<Scalar> forward(const Var<Scalar>* p, const Var<Scalar>& x, Mode mode) override {
    const Shape s = x.shape();
    const std::int64_t c = channels();
    if (!((s.rank() == 2 || s.rank() == 4) && s[1] == c))
      throw InvalidArgument("metalearn::nn::BatchNorm::forward: input has shape " + s.to_string() +
                            ", expected [N, " + std::to_string(c) + "] or [N, " +
                            std::to_string(c) + ", H, W]");
    const Shape per_channel = s.rank() == 4 ? Shape{1, c, 1, 1} : Shape{1, c};
    const std::int64_t count = s.numel() / c;
    const Scalar eps = static_cast<Scalar>(options_.eps);
    if (mode == Mode::eval && options_.running_stats) {
      Tensor<Scalar> inv_std(per_channel), shift(per_channel);
      for (std::int64_t k = 0; k < c; ++k) {
        inv_std.data()[k] = Scalar(1) / std::sqrt(running_var_.data()[k] + eps);
        shift.data()[k] = -running_mean_.data()[k] * inv_std.data()[k];
      }
      const Var<Scalar> normalized = x * constant(inv_std) + constant(shift);
      if (!options_.affine) return normalized;
      return normalized * reshape(p[0], per_channel) + reshape(p[1], per_channel);
    }
    if (mode == Mode::train && options_.running_stats) update_running(x, count);
    return options_.affine ? batch_norm(x, p[0], p[1], eps) : channel_normalize(x, eps);
  }

  std::int64_t channels() const { return gamma_.shape()[0]; }
  const BatchNormOptions& options() const { return options_; }
  const Tensor<Scalar>& running_mean() const { return running_mean_; }
  const Tensor<Scalar>& running_var() const { return running_var_; }

 private:
  static std::int64_t checked(std::int64_t channels) {
    if (channels < 1)
      throw InvalidArgument("metalearn::nn::BatchNorm: channels must be positive, got " +
                            std::to_string(channels));
    return channels;
  }

  // Running averages use the unbiased variance, as PyTorch does. Computed from the input's
  // values (statistics are not differentiated through the running averages).
  void update_running(const Var<Scalar>& x, std::int64_t count) {
    std::vector<Scalar> mean;
    std::vector<double> var;
    channel_moments(x.value(), mean, var);
    const double m = options_.momentum,
                 unbias = count > 1 ? double(count) / double(count - 1) : 1.0;
    for (std::size_t k = 0; k < mean.size(); ++k) {
      running_mean_.data()[k] = Scalar((1 - m) * running_mean_.data()[k] + m * mean[k]);
      running_var_.data()[k] = Scalar((1 - m) * running_var_.data()[k] + m * unbias * var[k]);
    }
  }

  BatchNormOptions options_;
  Tensor<Scalar> gamma_, beta_, running_mean_, running_var_;
};

}  // namespace metalearn::nn
