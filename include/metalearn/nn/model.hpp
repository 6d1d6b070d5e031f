// SPDX-License-Identifier: MIT
/// @file metalearn/nn/model.hpp
/// The model concept every learner, `adapt` and the trainer accept.
///
/// A model `M` over `Scalar` is any class with
/// - `ParameterList<Scalar> parameters()`: the tensors the optimizer trains, in the order
///   `forward` takes them;
/// - `ParameterList<Scalar> buffers()`: state not trained by gradients (may be empty);
/// - `Var<Scalar> forward(const std::vector<Var<Scalar>>& params, const Var<Scalar>& x)`:
///   the output for input `x` computed with `params` (the model's own leaves, or adapted
///   fast weights), never reading its own tensors.
/// Optional: `bool batches_tasks() const` (forward accepts a leading task axis; see
/// nn::Layer::batches_tasks). nn::Sequential is one such model; a user struct holding a
/// trunk and several heads is another.
#pragma once

#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/parameter_list.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::nn {

namespace detail {
template <class M, class = void>
struct lists_parameters : std::false_type {};
template <class M>
struct lists_parameters<
    M, std::void_t<typename std::decay_t<decltype(std::declval<M&>().parameters())>::scalar_type>>
    : std::is_same<std::decay_t<decltype(std::declval<M&>().parameters())>,
                   ParameterList<typename std::decay_t<
                       decltype(std::declval<M&>().parameters())>::scalar_type>> {};

template <class M, class Scalar, class = void>
struct lists_buffers : std::false_type {};
template <class M, class Scalar>
struct lists_buffers<M, Scalar, std::void_t<decltype(std::declval<M&>().buffers())>>
    : std::is_convertible<decltype(std::declval<M&>().buffers()), ParameterList<Scalar>> {};

template <class M, class Scalar, class = void>
struct has_functional_forward : std::false_type {};
template <class M, class Scalar>
struct has_functional_forward<
    M, Scalar,
    std::void_t<decltype(std::declval<M&>().forward(std::declval<const std::vector<Var<Scalar>>&>(),
                                                    std::declval<const Var<Scalar>&>()))>>
    : std::is_convertible<decltype(std::declval<M&>().forward(
                              std::declval<const std::vector<Var<Scalar>>&>(),
                              std::declval<const Var<Scalar>&>())),
                          Var<Scalar>> {};

template <class M, class = void>
struct declares_batches_tasks : std::false_type {};
template <class M>
struct declares_batches_tasks<M, std::void_t<decltype(std::declval<const M&>().batches_tasks())>>
    : std::true_type {};
template <class M, class = void>
struct describes_itself : std::false_type {};
template <class M>
struct describes_itself<M, std::void_t<decltype(std::string(std::declval<const M&>().describe()))>>
    : std::true_type {};
}  // namespace detail

/// True when M has `describe()`: its layers and their options, one per line (what
/// checkpoints record as the model's architecture).
template <class M>
inline constexpr bool describes_itself_v = detail::describes_itself<M>::value;

/// model.describe() when the model has it, else `fallback`.
template <class M>
std::string describe_or(const M& model, const std::string& fallback) {
  if constexpr (describes_itself_v<M>)
    return model.describe();
  else
    return fallback;
}

/// True when M is a model over Scalar (see the file comment).
template <class M, class Scalar>
inline constexpr bool is_model_v = detail::lists_parameters<M>::value&&
    detail::lists_buffers<M, Scalar>::value&& detail::has_functional_forward<M, Scalar>::value;

/// Compile-time check with one readable message per missing member. Call as
/// `nn::require_model<Model, Scalar>();` where a template first meets the model.
template <class M, class Scalar>
constexpr void require_model() {
  static_assert(detail::lists_parameters<M>::value,
                "metalearn: the model needs `ParameterList<Scalar> parameters()` (see "
                "metalearn/nn/model.hpp)");
  static_assert(detail::lists_buffers<M, Scalar>::value,
                "metalearn: the model needs `ParameterList<Scalar> buffers()` (return an empty "
                "list when it has none; see metalearn/nn/model.hpp)");
  static_assert(detail::has_functional_forward<M, Scalar>::value,
                "metalearn: the model needs `Var<Scalar> forward(const std::vector<Var<Scalar>>& "
                "params, const Var<Scalar>& x)` (see metalearn/nn/model.hpp)");
}

/// model.batches_tasks() when the model declares it, else false.
template <class M>
bool batches_tasks(const M& model) {
  if constexpr (detail::declares_batches_tasks<M>::value)
    return model.batches_tasks();
  else
    return false;
}

}  // namespace metalearn::nn
