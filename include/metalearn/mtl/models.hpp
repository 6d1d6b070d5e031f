// SPDX-License-Identifier: MIT
/// @file metalearn/mtl/models.hpp
/// The multi-task model concept, and its two standard architectures: hard parameter
/// sharing (a trunk and one head per task) and the multi-gate mixture of experts (MMoE).
///
/// A multi-task model is a model (metalearn/nn/model.hpp) that also has
/// - `std::size_t num_tasks() const`;
/// - `std::size_t num_shared() const`: its first num_shared() parameters are shared by
///   the tasks (what the gradient aggregators act on); the others are task-specific;
/// - `std::vector<Var<Scalar>> forward_tasks(params, x)`: one output per task; optionally
///   `forward_tasks(params, x, nn::Mode)`, which MtlLearner's evaluate and task_metrics
///   call with Mode::eval (batch norm with running statistics then uses and keeps them);
/// - optionally, the same forward in two halves, which MtlLearner's representation
///   Gramian (MGDA-UB, Sener & Koltun 2018, §3.3) differentiates between:
///   `std::vector<Var<Scalar>> shared_representation(params, x)`, what the shared
///   parameters compute, and `std::vector<Var<Scalar>> task_outputs(params, representation,
///   x)`, the task outputs from it (x: for parts that read the input, like MMoE's gates),
///   each optionally with an `nn::Mode` last.
/// Its plain `forward` gives the task outputs side by side (columns), so the meta-learners
/// and `meta::adapt` accept it too.
#pragma once

#include <cstdint>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <metalearn/nn/conv2d.hpp>
#include <metalearn/nn/layer.hpp>
#include <metalearn/nn/linear.hpp>
#include <metalearn/nn/model.hpp>
#include <metalearn/nn/pool.hpp>
#include <metalearn/nn/sequential.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::mtl {

namespace detail {
template <class M, class Scalar, class = void>
struct has_forward_tasks : std::false_type {};
template <class M, class Scalar>
struct has_forward_tasks<
    M, Scalar,
    std::void_t<decltype(std::declval<M&>().forward_tasks(
        std::declval<const std::vector<Var<Scalar>>&>(), std::declval<const Var<Scalar>&>()))>>
    : std::is_convertible<decltype(std::declval<M&>().forward_tasks(
                              std::declval<const std::vector<Var<Scalar>>&>(),
                              std::declval<const Var<Scalar>&>())),
                          std::vector<Var<Scalar>>> {};
template <class M, class Scalar, class = void>
struct has_forward_tasks_mode : std::false_type {};
template <class M, class Scalar>
struct has_forward_tasks_mode<M, Scalar,
                              std::void_t<decltype(std::declval<M&>().forward_tasks(
                                  std::declval<const std::vector<Var<Scalar>>&>(),
                                  std::declval<const Var<Scalar>&>(), nn::Mode::eval))>>
    : std::true_type {};

template <class M, class Scalar, class = void>
struct has_shared_representation : std::false_type {};
template <class M, class Scalar>
struct has_shared_representation<
    M, Scalar,
    std::void_t<decltype(std::declval<M&>().task_outputs(
        std::declval<const std::vector<Var<Scalar>>&>(),
        std::declval<M&>().shared_representation(std::declval<const std::vector<Var<Scalar>>&>(),
                                                 std::declval<const Var<Scalar>&>()),
        std::declval<const Var<Scalar>&>()))>> : std::true_type {};

template <class M, class = void>
struct has_task_counts : std::false_type {};
template <class M>
struct has_task_counts<M, std::void_t<decltype(std::size_t(std::declval<const M&>().num_tasks())),
                                      decltype(std::size_t(std::declval<const M&>().num_shared()))>>
    : std::true_type {};

// Task outputs [N, o_t] side by side: [N, sum o_t].
template <class Scalar>
Var<Scalar> side_by_side(const std::vector<Var<Scalar>>& outputs) {
  std::vector<Var<Scalar>> columns;
  for (const auto& o : outputs) {
    if (o.shape().rank() != 2)
      throw InvalidArgument(
          "metalearn::mtl: forward gives the task outputs side by side, which needs [N, "
          "outputs] outputs; got " +
          o.shape().to_string() + " (use forward_tasks)");
    columns.push_back(transpose(o));
  }
  return transpose(concat(columns));
}
}  // namespace detail

/// Compile-time check of the multi-task model concept (see the file comment).
template <class M, class Scalar>
constexpr void require_multi_task_model() {
  nn::require_model<M, Scalar>();
  static_assert(detail::has_task_counts<M>::value,
                "metalearn: a multi-task model needs `num_tasks()` and `num_shared()` (see "
                "metalearn/mtl/models.hpp)");
  static_assert(detail::has_forward_tasks<M, Scalar>::value,
                "metalearn: a multi-task model needs `std::vector<Var<Scalar>> "
                "forward_tasks(params, x)` (see metalearn/mtl/models.hpp)");
}

/// Hard parameter sharing (Caruana 1997): a shared trunk, then one head per task on the
/// trunk's output. Parameters "trunk.<name>", then "head<t>.<name>" for each task t.
///
/// ```
/// metalearn::Rng rng{1};
/// metalearn::mtl::HardSharing<float> net(metalearn::nn::mlp<float>({8, 64, 64}, rng),
///                                        {metalearn::nn::mlp<float>({64, 10}, rng),
///                                         metalearn::nn::mlp<float>({64, 10}, rng)});
/// ```
template <class Scalar = float>
class HardSharing {
 public:
  using scalar_type = Scalar;

  HardSharing(nn::Sequential<Scalar> trunk, std::vector<nn::Sequential<Scalar>> heads)
      : trunk_(std::move(trunk)), heads_(std::move(heads)) {
    if (heads_.empty())
      throw InvalidArgument("metalearn::mtl::HardSharing: need at least one head");
  }

  std::size_t num_tasks() const { return heads_.size(); }
  std::size_t num_shared() const { return trunk_.num_parameters(); }

  ParameterList<Scalar> parameters() {
    ParameterList<Scalar> out;
    trunk_.collect_parameters("trunk.", out);
    for (std::size_t t = 0; t < heads_.size(); ++t)
      heads_[t].collect_parameters("head" + std::to_string(t) + ".", out);
    return out;
  }
  ParameterList<Scalar> buffers() {
    ParameterList<Scalar> out;
    trunk_.collect_buffers("trunk.", out);
    for (std::size_t t = 0; t < heads_.size(); ++t)
      heads_[t].collect_buffers("head" + std::to_string(t) + ".", out);
    return out;
  }

  std::vector<Var<Scalar>> forward_tasks(const std::vector<Var<Scalar>>& params,
                                         const Var<Scalar>& x, nn::Mode mode = nn::Mode::train) {
    return task_outputs(params, shared_representation(params, x, mode), x, mode);
  }
  /// The trunk's output, as one tensor.
  std::vector<Var<Scalar>> shared_representation(const std::vector<Var<Scalar>>& params,
                                                 const Var<Scalar>& x,
                                                 nn::Mode mode = nn::Mode::train) {
    check_count(params, "shared_representation");
    return {trunk_.forward(params.data(), x, mode)};
  }
  /// Each head on the trunk's output `representation` (x is not read).
  std::vector<Var<Scalar>> task_outputs(const std::vector<Var<Scalar>>& params,
                                        const std::vector<Var<Scalar>>& representation,
                                        const Var<Scalar>& /*x*/, nn::Mode mode = nn::Mode::train) {
    check_count(params, "task_outputs");
    if (representation.size() != 1)
      throw InvalidArgument(
          "metalearn::mtl::HardSharing::task_outputs: the representation is the trunk's one "
          "output, got " +
          std::to_string(representation.size()) + " tensors");
    const Var<Scalar>* p = params.data() + trunk_.num_parameters();
    std::vector<Var<Scalar>> out;
    for (auto& h : heads_) {
      out.push_back(h.forward(p, representation[0], mode));
      p += h.num_parameters();
    }
    return out;
  }
  Var<Scalar> forward(const std::vector<Var<Scalar>>& params, const Var<Scalar>& x) {
    return detail::side_by_side(forward_tasks(params, x));
  }

  nn::Sequential<Scalar>& trunk() { return trunk_; }
  nn::Sequential<Scalar>& head(std::size_t t) { return heads_.at(t); }

 private:
  void check_count(const std::vector<Var<Scalar>>& params, const char* who) const {
    std::size_t expected = trunk_.num_parameters();
    for (const auto& h : heads_) expected += h.num_parameters();
    if (params.size() != expected)
      throw InvalidArgument(std::string("metalearn::mtl::HardSharing::") + who + ": " +
                            std::to_string(params.size()) + " parameters given, expected " +
                            std::to_string(expected));
  }

  nn::Sequential<Scalar> trunk_;
  std::vector<nn::Sequential<Scalar>> heads_;
};

/// Multi-gate mixture of experts (Ma et al. 2018, Eq. 5-6): experts f_e shared by all
/// tasks; for task t a gate g_t(x) = softmax(W_t flatten(x)) over the experts and a tower
/// h_t: y_t = h_t(sum_e g_t(x)_e f_e(x)). Every expert maps the input to [N, D] (one D).
/// Parameters "expert<e>.<name>" (shared), then per task "gate<t>.weight", "gate<t>.bias"
/// and "tower<t>.<name>".
template <class Scalar = float>
class Mmoe {
 public:
  using scalar_type = Scalar;

  /// `input_features`: the flattened input size the gates read.
  Mmoe(std::vector<nn::Sequential<Scalar>> experts, std::vector<nn::Sequential<Scalar>> towers,
       std::int64_t input_features, Rng& rng)
      : experts_(std::move(experts)), towers_(std::move(towers)) {
    if (experts_.empty() || towers_.empty() || input_features < 1)
      throw InvalidArgument(
          "metalearn::mtl::Mmoe: need at least one expert, one tower and input_features >= "
          "1, got " +
          std::to_string(experts_.size()) + ", " + std::to_string(towers_.size()) + ", " +
          std::to_string(input_features));
    for (std::size_t t = 0; t < towers_.size(); ++t)
      gates_.emplace_back(input_features, static_cast<std::int64_t>(experts_.size()), rng);
  }

  std::size_t num_tasks() const { return towers_.size(); }
  std::size_t num_experts() const { return experts_.size(); }
  std::size_t num_shared() const {
    std::size_t n = 0;
    for (const auto& e : experts_) n += e.num_parameters();
    return n;
  }

  ParameterList<Scalar> parameters() {
    ParameterList<Scalar> out;
    for (std::size_t e = 0; e < experts_.size(); ++e)
      experts_[e].collect_parameters("expert" + std::to_string(e) + ".", out);
    for (std::size_t t = 0; t < towers_.size(); ++t) {
      gates_[t].collect_parameters("gate" + std::to_string(t) + ".", out);
      towers_[t].collect_parameters("tower" + std::to_string(t) + ".", out);
    }
    return out;
  }
  ParameterList<Scalar> buffers() {
    ParameterList<Scalar> out;
    for (std::size_t e = 0; e < experts_.size(); ++e)
      experts_[e].collect_buffers("expert" + std::to_string(e) + ".", out);
    for (std::size_t t = 0; t < towers_.size(); ++t)
      towers_[t].collect_buffers("tower" + std::to_string(t) + ".", out);
    return out;
  }

  std::vector<Var<Scalar>> forward_tasks(const std::vector<Var<Scalar>>& params,
                                         const Var<Scalar>& x, nn::Mode mode = nn::Mode::train) {
    return task_outputs(params, shared_representation(params, x, mode), x, mode);
  }
  /// The experts' outputs f_e(x), one [N, D] tensor each.
  std::vector<Var<Scalar>> shared_representation(const std::vector<Var<Scalar>>& params,
                                                 const Var<Scalar>& x,
                                                 nn::Mode mode = nn::Mode::train) {
    check_count(params, "shared_representation");
    const Var<Scalar>* p = params.data();
    std::vector<Var<Scalar>> expert_out;
    for (auto& e : experts_) {
      expert_out.push_back(e.forward(p, x, mode));
      p += e.num_parameters();
    }
    check_experts(expert_out, "shared_representation");
    return expert_out;
  }
  /// Per task: the gate read from x, the experts' outputs mixed by it, the tower.
  std::vector<Var<Scalar>> task_outputs(const std::vector<Var<Scalar>>& params,
                                        const std::vector<Var<Scalar>>& expert_out,
                                        const Var<Scalar>& x, nn::Mode mode = nn::Mode::train) {
    check_count(params, "task_outputs");
    check_experts(expert_out, "task_outputs");
    const Var<Scalar>* p = params.data() + num_shared();
    const Var<Scalar> flat = x.shape().rank() == 2 ? x : flatten(x);
    const auto n_experts = static_cast<std::int64_t>(experts_.size());
    // Column e of a gate as [N, 1], by a product with the e-th unit vector.
    std::vector<Var<Scalar>> units;
    for (std::int64_t e = 0; e < n_experts; ++e) {
      Tensor<Scalar> unit(Shape{n_experts, 1}, Scalar(0));
      unit.data()[e] = Scalar(1);
      units.push_back(constant(unit));
    }
    std::vector<Var<Scalar>> out;
    for (std::size_t t = 0; t < towers_.size(); ++t) {
      const Var<Scalar> gate = softmax(gates_[t].forward(p, flat, mode));  // [N, E]
      p += gates_[t].num_parameters();
      Var<Scalar> mixed;
      for (std::int64_t e = 0; e < n_experts; ++e) {
        const Var<Scalar> term = matmul(gate, units[static_cast<std::size_t>(e)]) *
                                 expert_out[static_cast<std::size_t>(e)];
        mixed = e == 0 ? term : mixed + term;
      }
      out.push_back(towers_[t].forward(p, mixed, mode));
      p += towers_[t].num_parameters();
    }
    return out;
  }
  Var<Scalar> forward(const std::vector<Var<Scalar>>& params, const Var<Scalar>& x) {
    return detail::side_by_side(forward_tasks(params, x));
  }

 private:
  void check_count(const std::vector<Var<Scalar>>& params, const char* who) const {
    std::size_t expected = num_shared();
    for (std::size_t t = 0; t < towers_.size(); ++t)
      expected += gates_[t].num_parameters() + towers_[t].num_parameters();
    if (params.size() != expected)
      throw InvalidArgument(std::string("metalearn::mtl::Mmoe::") + who + ": " +
                            std::to_string(params.size()) + " parameters given, expected " +
                            std::to_string(expected));
  }
  void check_experts(const std::vector<Var<Scalar>>& expert_out, const char* who) const {
    if (expert_out.size() != experts_.size())
      throw InvalidArgument(std::string("metalearn::mtl::Mmoe::") + who + ": " +
                            std::to_string(expert_out.size()) + " expert outputs for " +
                            std::to_string(experts_.size()) + " experts");
    for (std::size_t e = 0; e < expert_out.size(); ++e)
      if (expert_out[e].shape().rank() != 2 || expert_out[e].shape() != expert_out[0].shape())
        throw InvalidArgument(std::string("metalearn::mtl::Mmoe::") + who +
                              ": every expert must give the same [N, D] output; expert " +
                              std::to_string(e) + " gives " + expert_out[e].shape().to_string());
  }

  std::vector<nn::Sequential<Scalar>> experts_;
  std::vector<nn::Sequential<Scalar>> towers_;
  std::vector<nn::Linear<Scalar>> gates_;
};

/// The trunk of Sener & Koltun's MultiMNIST network (a LeNet, 1x28x28 inputs): conv 5x5
/// (10) - max-pool 2 - ReLU - conv 5x5 (20) - max-pool 2 - ReLU - linear 320 -> 50 - ReLU.
template <class Scalar = float>
nn::Sequential<Scalar> lenet_trunk(Rng& rng) {
  nn::Conv2dOptions c;
  c.kernel = 5;
  return nn::Sequential<Scalar>{nn::Conv2d<Scalar>(1, 10, rng, c),
                                nn::MaxPool2d<Scalar>(2),
                                nn::Relu<Scalar>{},
                                nn::Conv2d<Scalar>(10, 20, rng, c),
                                nn::MaxPool2d<Scalar>(2),
                                nn::Relu<Scalar>{},
                                nn::Flatten<Scalar>{},
                                nn::Linear<Scalar>(320, 50, rng),
                                nn::Relu<Scalar>{}};
}
/// Its per-task head: linear 50 -> 50 - ReLU - linear 50 -> classes.
template <class Scalar = float>
nn::Sequential<Scalar> lenet_head(Rng& rng, std::int64_t classes) {
  return nn::Sequential<Scalar>{nn::Linear<Scalar>(50, 50, rng), nn::Relu<Scalar>{},
                                nn::Linear<Scalar>(50, classes, rng)};
}

}  // namespace metalearn::mtl
