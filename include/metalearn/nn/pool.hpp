// SPDX-License-Identifier: MIT
/// @file metalearn/nn/pool.hpp
/// Pooling layers over NCHW images.
#pragma once

#include <cstdint>
#include <metalearn/nn/layer.hpp>
#include <string>

namespace metalearn::nn {

/// Max over kernel x kernel windows; stride defaults to the kernel size.
template <class Scalar = float>
class MaxPool2d : public detail::Cloneable<MaxPool2d<Scalar>, Scalar> {
 public:
  explicit MaxPool2d(std::int64_t kernel = 2, std::int64_t stride = 0)
      : kernel_(kernel), stride_(stride > 0 ? stride : kernel) {}
  std::string describe() const override { return "MaxPool2d(" + std::to_string(kernel_) + ")"; }
  Var<Scalar> forward(const Var<Scalar>*, const Var<Scalar>& x, Mode) override {
    return max_pool2d(x, kernel_, stride_);
  }

 private:
  std::int64_t kernel_, stride_;
};

/// Mean over kernel x kernel windows; stride defaults to the kernel size.
template <class Scalar = float>
class AvgPool2d : public detail::Cloneable<AvgPool2d<Scalar>, Scalar> {
 public:
  explicit AvgPool2d(std::int64_t kernel = 2, std::int64_t stride = 0)
      : kernel_(kernel), stride_(stride > 0 ? stride : kernel) {}
  std::string describe() const override { return "AvgPool2d(" + std::to_string(kernel_) + ")"; }
  Var<Scalar> forward(const Var<Scalar>*, const Var<Scalar>& x, Mode) override {
    return avg_pool2d(x, kernel_, stride_);
  }

 private:
  std::int64_t kernel_, stride_;
};

/// Mean over the whole image: [N, C, H, W] -> [N, C].
template <class Scalar = float>
class GlobalAvgPool2d : public detail::Cloneable<GlobalAvgPool2d<Scalar>, Scalar> {
 public:
  std::string describe() const override { return "GlobalAvgPool2d"; }
  Var<Scalar> forward(const Var<Scalar>*, const Var<Scalar>& x, Mode) override {
    return global_avg_pool2d(x);
  }
};

}  // namespace metalearn::nn
