// SPDX-License-Identifier: MIT
/// @file metalearn/learners/adaptation_set.hpp
/// Adaptation-set policies of the gradient learner: which parameters the inner loop adapts
/// (the others are used as they are, and still meta-learned through the query loss), and
/// where the adapted ones start.
///
/// Requirements of an adaptation set `A`:
/// - `template <class Scalar> static std::vector<std::size_t> select(const
///   ParameterList<Scalar>& params)`: the indices to adapt;
/// - optional `template <class Scalar> static Var<Scalar> start(const Var<Scalar>& theta)`:
///   the value an adapted parameter starts each task from (default: theta itself, so the
///   initialisation is meta-learned, as in MAML).
#pragma once

#include <cstddef>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <metalearn/parameter_list.hpp>
#include <string>
#include <type_traits>
#include <vector>

namespace metalearn::meta {

/// Adapt every parameter (MAML).
struct AdaptAll {
  template <class Scalar>
  static std::vector<std::size_t> select(const ParameterList<Scalar>& params) {
    std::vector<std::size_t> all(params.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    return all;
  }
};

/// ANIL (Raghu et al. 2020): adapt only the head, the parameters of the last layer that has
/// any (the prefix of the last parameter name up to its last '.': "4." of "4.bias", "1.4."
/// of a nested "1.4.bias").
struct AdaptHead {
  template <class Scalar>
  static std::vector<std::size_t> select(const ParameterList<Scalar>& params) {
    if (params.size() == 0) return {};
    const std::string& last = params.name(params.size() - 1);
    return params.select(last.substr(0, last.rfind('.') + 1));
  }
};

/// CAVIA (Zintgraf et al. 2019): adapt only the context parameters (those named
/// "context" or "<path>.context", e.g. nn::Context's), which start every task at zero
/// (Algorithm 1, line 5: phi_0 = 0); the rest of the network is meta-learned and fixed
/// within a task.
struct AdaptContext {
  template <class Scalar>
  static std::vector<std::size_t> select(const ParameterList<Scalar>& params) {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < params.size(); ++i) {
      const std::string& n = params.name(i);
      if (n == "context" || (n.size() > 8 && n.compare(n.size() - 8, 8, ".context") == 0))
        out.push_back(i);
    }
    if (out.empty())
      throw InvalidArgument(
          "metalearn::meta::AdaptContext: the model has no context parameters (a parameter "
          "named \"context\"); CAVIA needs one, e.g. an nn::Context layer");
    return out;
  }
  template <class Scalar>
  static Var<Scalar> start(const Var<Scalar>& theta) {  // a fresh leaf: the inner loop's variable
    return leaf(Tensor<Scalar>(theta.shape(), Scalar(0)).view());
  }
};

namespace detail {
template <class A, class Scalar, class = void>
inline constexpr bool has_start_v = false;
template <class A, class Scalar>
inline constexpr bool
    has_start_v<A, Scalar, std::void_t<decltype(A::start(std::declval<const Var<Scalar>&>()))>> =
        true;
}  // namespace detail

}  // namespace metalearn::meta
