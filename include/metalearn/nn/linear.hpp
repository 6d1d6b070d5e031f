// SPDX-License-Identifier: MIT
/// @file metalearn/nn/linear.hpp
/// Fully connected layer: y = x W + b.
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/nn/init.hpp>
#include <metalearn/nn/layer.hpp>
#include <string>

namespace metalearn::nn {

/// y = x W + b with W [in, out] and b [out]; x is [N, in]. Initialised as PyTorch's
/// nn.Linear: W and b uniform in +-1/sqrt(in). Batches tasks: x [T, N, in] with W shared
/// or per task ([T, in, out]) and b shared or per task ([T, out]).
template <class Scalar = float>
class Linear : public detail::Cloneable<Linear<Scalar>, Scalar> {
 public:
  Linear(std::int64_t in, std::int64_t out, Rng& rng, bool bias = true)
      : weight_(checked_shape(in, out)), bias_(Shape{out}), has_bias_(bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    init::uniform(weight_, -bound, bound, rng);
    if (has_bias_) init::uniform(bias_, -bound, bound, rng);
  }

  std::string describe() const override {
    return "Linear(" + std::to_string(in()) + ", " + std::to_string(out()) + ")";
  }
  std::size_t num_parameters() const override { return has_bias_ ? 2 : 1; }
  void collect_parameters(const std::string& prefix, ParameterList<Scalar>& out) override {
    out.add(prefix + "weight", weight_);
    if (has_bias_) out.add(prefix + "bias", bias_);
  }
  Var<Scalar> forward(const Var<Scalar>* p, const Var<Scalar>& x, Mode) override {
    const Shape s = x.shape();
    if ((s.rank() != 2 && s.rank() != 3) || s[s.rank() - 1] != in())
      throw InvalidArgument("metalearn::nn::Linear::forward: input has shape " + s.to_string() +
                            ", expected [N, " + std::to_string(in()) + "] or [tasks, N, " +
                            std::to_string(in()) + "]");
    const Var<Scalar> y = matmul(x, p[0]);
    if (!has_bias_) return y;
    const Shape b = p[1].shape();  // per task [T, out] meets y [T, N, out] as [T, 1, out]
    return b.rank() == 2 ? y + reshape(p[1], Shape{b[0], 1, b[1]}) : y + p[1];
  }
  bool batches_tasks() const override { return true; }

  std::int64_t in() const { return weight_.shape()[0]; }
  std::int64_t out() const { return weight_.shape()[1]; }
  Tensor<Scalar>& weight() { return weight_; }
  Tensor<Scalar>& bias() { return bias_; }

 private:
  static Shape checked_shape(std::int64_t in, std::int64_t out) {
    if (in < 1 || out < 1)
      throw InvalidArgument("metalearn::nn::Linear: sizes must be positive, got " +
                            std::to_string(in) + " x " + std::to_string(out));
    return Shape{in, out};
  }

  Tensor<Scalar> weight_, bias_;
  bool has_bias_;
};

}  // namespace metalearn::nn
