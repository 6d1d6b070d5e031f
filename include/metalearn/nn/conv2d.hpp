// SPDX-License-Identifier: MIT
/// @file metalearn/nn/conv2d.hpp
/// 2-D convolution layer over NCHW images.
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/nn/init.hpp>
#include <metalearn/nn/layer.hpp>
#include <string>

namespace metalearn::nn {

/// Options of Conv2d beyond the channel counts.
struct Conv2dOptions {
  std::int64_t kernel = 3;
  std::int64_t stride = 1;
  std::int64_t padding = 0;
  bool bias = true;
};

/// y = conv(x, W) + b with W [out, in, k, k], b [out]; x is [N, in, H, W]. Initialised as
/// PyTorch's nn.Conv2d: uniform in +-1/sqrt(in k k).
template <class Scalar = float>
class Conv2d : public detail::Cloneable<Conv2d<Scalar>, Scalar> {
 public:
  Conv2d(std::int64_t in, std::int64_t out, Rng& rng, Conv2dOptions options = {})
      : options_(options), weight_(checked_shape(in, out, options)), bias_(Shape{out}) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in * options.kernel * options.kernel));
    init::uniform(weight_, -bound, bound, rng);
    if (options_.bias) init::uniform(bias_, -bound, bound, rng);
  }

  std::string describe() const override {
    return "Conv2d(" + std::to_string(weight_.shape()[1]) + ", " +
           std::to_string(weight_.shape()[0]) + ", kernel " + std::to_string(options_.kernel) +
           ", stride " + std::to_string(options_.stride) + ", padding " +
           std::to_string(options_.padding) + ")";
  }
  std::size_t num_parameters() const override { return options_.bias ? 2 : 1; }
  void collect_parameters(const std::string& prefix, ParameterList<Scalar>& out) override {
    out.add(prefix + "weight", weight_);
    if (options_.bias) out.add(prefix + "bias", bias_);
  }
  Var<Scalar> forward(const Var<Scalar>* p, const Var<Scalar>& x, Mode) override {
    const Shape s = x.shape();
    if (s.rank() != 4 || s[1] != weight_.shape()[1])
      throw InvalidArgument("metalearn::nn::Conv2d::forward: input has shape " + s.to_string() +
                            ", expected [N, " + std::to_string(weight_.shape()[1]) + ", H, W]");
    const Conv2dGeometry g{options_.stride, options_.padding};
    return options_.bias ? conv2d(x, p[0], p[1], g) : conv2d(x, p[0], g);
  }

  const Conv2dOptions& options() const { return options_; }
  Tensor<Scalar>& weight() { return weight_; }
  Tensor<Scalar>& bias() { return bias_; }

 private:
  static Shape checked_shape(std::int64_t in, std::int64_t out, const Conv2dOptions& o) {
    if (in < 1 || out < 1 || o.kernel < 1 || o.stride < 1 || o.padding < 0)
      throw InvalidArgument("metalearn::nn::Conv2d: channels " + std::to_string(in) + " -> " +
                            std::to_string(out) + ", kernel " + std::to_string(o.kernel) +
                            ", stride " + std::to_string(o.stride) + ", padding " +
                            std::to_string(o.padding) + " are not all valid");
    return Shape{out, in, o.kernel, o.kernel};
  }

  Conv2dOptions options_;
  Tensor<Scalar> weight_, bias_;
};

}  // namespace metalearn::nn
