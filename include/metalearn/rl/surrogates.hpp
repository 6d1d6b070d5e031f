// SPDX-License-Identifier: MIT
/// @file metalearn/rl/surrogates.hpp
/// The policy-gradient surrogates: scalar losses of a policy's outputs on recorded
/// rollouts whose gradients are the policy-gradient estimators. Task losses like any
/// other: `meta::adapt` and the learners differentiate them to any order.
#pragma once

#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <metalearn/rl/rollouts.hpp>
#include <string>

namespace metalearn::rl {

namespace detail {
template <class S>
void require_advantages(const char* who, const Rollouts<S>& r) {
  if (r.advantages.numel() != r.horizon * r.envs || r.advantages.numel() == 0)
    throw InvalidArgument(std::string("metalearn::rl::") + who +
                          ": the rollouts have no advantages (call compute_advantages)");
}
}  // namespace detail

/// REINFORCE with a baseline (Williams 1992): L = -mean_t[log pi(a_t | s_t) A_t], so
/// -dL/dtheta = mean_t[A_t d log pi(a_t | s_t) / dtheta], the likelihood-ratio estimator of
/// the gradient of the expected return. `outputs`: the policy's on `r.observations`.
template <class D, class S>
Var<S> reinforce_loss(const Var<S>& outputs, const Rollouts<S>& r) {
  detail::require_advantages("reinforce_loss", r);
  return -mean(D::log_prob(outputs, r.actions) * constant(r.advantages));
}

/// The importance-sampled surrogate of TRPO (Schulman et al. 2015, Eq. 14):
/// L = -mean_t[pi(a_t|s_t) / pi_old(a_t|s_t) A_t], pi_old the policy that drew the
/// rollouts. Equal to reinforce_loss in value and gradient where pi = pi_old.
template <class D, class S>
Var<S> importance_loss(const Var<S>& outputs, const Rollouts<S>& r) {
  detail::require_advantages("importance_loss", r);
  return -mean(exp(D::log_prob(outputs, r.actions) - constant(r.old_log_probs)) *
               constant(r.advantages));
}

/// Mean over the rollouts' states of KL(pi_old || pi): TRPO's trust-region measure.
template <class D, class S>
Var<S> kl_from_sampling(const Var<S>& outputs, const Rollouts<S>& r) {
  return D::kl(r.old_outputs, outputs);
}

}  // namespace metalearn::rl
