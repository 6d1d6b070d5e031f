// SPDX-License-Identifier: MIT
/// @file metalearn/rl/policies.hpp
/// Stochastic policies as models (metalearn/nn/model.hpp): a network maps observations to
/// the parameters of an action distribution, so adapted fast weights run through the same
/// code as in every other learner. `using distribution = ...` names the distribution.
///
/// ```cpp
/// auto net = metalearn::nn::mlp<float>({2, 64, 64, 2}, rng, metalearn::nn::Activation::tanh);
/// metalearn::rl::GaussianPolicy<metalearn::nn::Sequential<float>> policy(std::move(net), 2);
/// ```
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <metalearn/nn/model.hpp>
#include <metalearn/parameter_list.hpp>
#include <metalearn/rl/distributions.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::rl {

/// Where a Gaussian policy's standard deviation comes from.
enum class LogStd {
  state_independent,  ///< one learned log-std per action dimension (Finn et al., rllab)
  state_dependent,    ///< the network outputs 2A columns: means, then log-stds
};

/// Options of GaussianPolicy.
struct GaussianPolicyOptions {
  LogStd log_std = LogStd::state_independent;
  double init_std = 1.0;  ///< initial sigma of the state-independent log-std
};

/// A Gaussian policy over a network `Net` (any model): outputs for N observations are
/// [2N, A], the means above the log standard deviations (rl::DiagGaussian).
template <class Net>
class GaussianPolicy {
 public:
  using scalar_type = typename decltype(std::declval<Net&>().parameters())::scalar_type;
  using distribution = DiagGaussian;

  GaussianPolicy(Net net, std::int64_t action_size, GaussianPolicyOptions o = {})
      : net_(std::move(net)), net_params_(net_.parameters().size()), actions_(action_size), o_(o) {
    nn::require_model<Net, scalar_type>();
    if (action_size < 1 || !(o.init_std > 0) || !std::isfinite(o.init_std))
      throw InvalidArgument(
          "metalearn::rl::GaussianPolicy: need action_size >= 1 and a finite init_std > 0");
    if (o.log_std == LogStd::state_independent)
      log_std_ =
          Tensor<scalar_type>(Shape{action_size}, static_cast<scalar_type>(std::log(o.init_std)));
  }

  ParameterList<scalar_type> parameters() {
    ParameterList<scalar_type> p = net_.parameters();
    if (o_.log_std == LogStd::state_independent) p.add("log_std", log_std_);
    return p;
  }
  ParameterList<scalar_type> buffers() { return net_.buffers(); }

  Var<scalar_type> forward(const std::vector<Var<scalar_type>>& params, const Var<scalar_type>& x) {
    const std::size_t n = net_params_;
    if (params.size() != n + (o_.log_std == LogStd::state_independent ? 1 : 0))
      throw InvalidArgument(
          "metalearn::rl::GaussianPolicy::forward: " + std::to_string(params.size()) +
          " parameters given, expected " + std::to_string(parameters().size()));
    const std::vector<Var<scalar_type>> inner(params.begin(),
                                              params.begin() + static_cast<std::ptrdiff_t>(n));
    const Var<scalar_type> out = net_.forward(inner, x);
    const Shape s = out.shape();
    if (o_.log_std == LogStd::state_independent) {
      if (s.rank() != 2 || s[1] != actions_)
        throw InvalidArgument("metalearn::rl::GaussianPolicy::forward: the network gives " +
                              s.to_string() + ", expected [N, " + std::to_string(actions_) + "]");
      const Var<scalar_type> ls =
          broadcast_to(reshape(params[n], Shape{1, actions_}), Shape{s[0], actions_});
      return concat(std::vector<Var<scalar_type>>{out, ls});
    }
    if (s.rank() != 2 || s[1] != 2 * actions_)
      throw InvalidArgument("metalearn::rl::GaussianPolicy::forward: the network gives " +
                            s.to_string() + ", expected [N, " + std::to_string(2 * actions_) +
                            "] (means, then log-stds)");
    const Var<scalar_type> t = transpose(out);  // [2A, N]: split the columns as rows
    return concat(std::vector<Var<scalar_type>>{transpose(slice(t, 0, actions_)),
                                                transpose(slice(t, actions_, 2 * actions_))});
  }

  /// The architecture text of the trainer's checkpoints.
  std::string describe() const {
    return "GaussianPolicy(actions " + std::to_string(actions_) + ", " +
           (o_.log_std == LogStd::state_independent ? "state-independent" : "state-dependent") +
           " log-std) of\n" + nn::describe_or(net_, "a network\n");
  }
  const Net& net() const { return net_; }
  std::int64_t action_size() const { return actions_; }

 private:
  Net net_;
  std::size_t net_params_;  // counted once: forward runs at every rollout step
  std::int64_t actions_;
  GaussianPolicyOptions o_;
  Tensor<scalar_type> log_std_;
};

/// A categorical policy over a network `Net` (any model) whose outputs are the K actions'
/// logits, [N, K] (rl::Categorical).
template <class Net>
class CategoricalPolicy {
 public:
  using scalar_type = typename decltype(std::declval<Net&>().parameters())::scalar_type;
  using distribution = Categorical;

  explicit CategoricalPolicy(Net net) : net_(std::move(net)) {
    nn::require_model<Net, scalar_type>();
  }
  ParameterList<scalar_type> parameters() { return net_.parameters(); }
  ParameterList<scalar_type> buffers() { return net_.buffers(); }
  Var<scalar_type> forward(const std::vector<Var<scalar_type>>& params, const Var<scalar_type>& x) {
    return net_.forward(params, x);
  }
  std::string describe() const {
    return "CategoricalPolicy of\n" + nn::describe_or(net_, "a network\n");
  }
  const Net& net() const { return net_; }

 private:
  Net net_;
};

}  // namespace metalearn::rl
