// SPDX-License-Identifier: MIT
/// @file metalearn/nn/context.hpp
/// CAVIA's context parameters (Zintgraf et al. 2019): a vector appended to every input
/// row, adapted per task by the inner loop (meta::AdaptContext) while the rest of the
/// network is meta-learned.
#pragma once

#include <cstdint>
#include <metalearn/nn/layer.hpp>
#include <string>

namespace metalearn::nn {

/// [N, d] -> [N, d + size]: each row followed by the context vector phi (parameter
/// "context", shape [size], zero). Place it first (CAVIA §3: "concatenated to the
/// input") or before any Linear layer.
template <class Scalar = float>
class Context : public detail::Cloneable<Context<Scalar>, Scalar> {
 public:
  explicit Context(std::int64_t size) : context_(checked(size), Scalar(0)) {}

  std::string describe() const override {
    return "Context(" + std::to_string(context_.shape()[0]) + ")";
  }
  std::size_t num_parameters() const override { return 1; }
  void collect_parameters(const std::string& prefix, ParameterList<Scalar>& out) override {
    out.add(prefix + "context", context_);
  }
  Var<Scalar> forward(const Var<Scalar>* p, const Var<Scalar>& x, Mode) override {
    const Shape s = x.shape();
    const std::int64_t c = context_.shape()[0];
    if (s.rank() != 2)
      throw InvalidArgument("metalearn::nn::Context::forward: input has shape " + s.to_string() +
                            ", expected [N, features]");
    if (p[0].shape() != Shape{c})
      throw InvalidArgument("metalearn::nn::Context::forward: context has shape " +
                            p[0].shape().to_string() + ", expected [" + std::to_string(c) + "]");
    // Columns are joined as rows of the transposes: [d, N] over [c, N], then back.
    const Var<Scalar> rows = broadcast_to(reshape(p[0], Shape{1, c}), Shape{s[0], c});
    return transpose(concat(std::vector<Var<Scalar>>{transpose(x), transpose(rows)}));
  }

 private:
  static Shape checked(std::int64_t size) {
    if (size < 1)
      throw InvalidArgument("metalearn::nn::Context: size must be positive, got " +
                            std::to_string(size));
    return Shape{size};
  }
  Tensor<Scalar> context_;
};

}  // namespace metalearn::nn
