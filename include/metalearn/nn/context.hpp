// SPDX-License-Identifier: MIT
/// @file metalearn/nn/context.hpp
/// CAVIA's context parameters (Zintgraf et al. 2019): a vector appended to every input
/// row, adapted per task by the inner loop (meta::AdaptContext) while the rest of the
/// network is meta-learned.
#pragma once

#include <array>
#include <cstdint>
#include <metalearn/nn/layer.hpp>
#include <string>

namespace metalearn::nn {

/// [N, d] -> [N, d + size]: each row followed by the context vector phi (parameter
/// "context", shape [size], zero). Place it first (CAVIA §3: "concatenated to the
/// input") or before any Linear layer. Batches tasks: x [T, N, d] with phi shared or one
/// row per task ([T, size]).
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
    const int r = s.rank();
    const std::int64_t c = context_.shape()[0];
    const Shape ps = p[0].shape();
    const bool per_task = r == 3 && ps == Shape{s[0], c};
    if (r != 2 && r != 3)
      throw InvalidArgument("metalearn::nn::Context::forward: input has shape " + s.to_string() +
                            ", expected [N, features] or [tasks, N, features]");
    if (ps != Shape{c} && !per_task)
      throw InvalidArgument("metalearn::nn::Context::forward: context has shape " + ps.to_string() +
                            ", expected [" + std::to_string(c) + "] or one row per task");
    const Shape rows = r == 2 ? Shape{s[0], c} : Shape{s[0], s[1], c};
    const Var<Scalar> ctx = broadcast_to(per_task ? reshape(p[0], Shape{s[0], 1, c}) : p[0], rows);
    // Join along the feature axis: moved to the front, concatenated, moved back.
    const std::array<int, 4> front =
        r == 2 ? std::array<int, 4>{1, 0} : std::array<int, 4>{2, 0, 1};
    const std::array<int, 4> back = r == 2 ? std::array<int, 4>{1, 0} : std::array<int, 4>{1, 2, 0};
    return permute(concat(std::vector<Var<Scalar>>{permute(x, front), permute(ctx, front)}), back);
  }
  bool batches_tasks() const override { return true; }

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
