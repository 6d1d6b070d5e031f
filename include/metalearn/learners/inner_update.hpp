// SPDX-License-Identifier: MIT
/// @file metalearn/learners/inner_update.hpp
/// Inner-update policies of the gradient learner: the step each adapted parameter takes in
/// the inner loop, and the tensors the policy meta-learns for it (step sizes). The learner
/// stores those tensors, lists them in meta_parameters() (so the outer optimizer and the
/// checkpoints hold them) and brings them onto each task's tape.
///
/// Requirements of an inner update `U`:
/// - `template <class Scalar> std::vector<MetaTensor> meta_tensors(const
///   ParameterList<Scalar>& params, const std::vector<std::size_t>& adapted, const
///   InnerSetup& s) const`: what it meta-learns for the adapted parameters (may be empty);
/// - `template <class Scalar> Var<Scalar> step(const Var<Scalar>& w, const Var<Scalar>& g,
///   std::size_t j, int k, const std::vector<Var<Scalar>>& own, const InnerSetup& s) const`:
///   the new value of the j-th adapted parameter at inner step k, given its gradient and
///   the policy's own tensors as Vars (in meta_tensors() order).
#pragma once

#include <algorithm>
#include <cstddef>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/parameter_list.hpp>
#include <string>
#include <vector>

namespace metalearn::meta {

/// What the learner tells an inner update.
struct InnerSetup {
  double inner_lr = 0.01;  ///< GradientLearnerOptions::inner_lr
  int inner_steps = 1;     ///< GradientLearnerOptions::inner_steps
};

/// A tensor an inner update meta-learns: its name in meta_parameters(), shape, first value.
struct MetaTensor {
  std::string name;
  Shape shape;
  double init = 0;
};

/// Plain SGD with the fixed step size inner_lr (MAML, Finn et al. 2017, Eq. 1).
struct InnerSgd {
  template <class Scalar>
  std::vector<MetaTensor> meta_tensors(const ParameterList<Scalar>&,
                                       const std::vector<std::size_t>&, const InnerSetup&) const {
    return {};
  }
  template <class Scalar>
  Var<Scalar> step(const Var<Scalar>& w, const Var<Scalar>& g, std::size_t, int,
                   const std::vector<Var<Scalar>>&, const InnerSetup& s) const {
    return w - g * static_cast<Scalar>(s.inner_lr);
  }
};

/// Meta-SGD (Li et al. 2017): a learned step size per element of each adapted parameter,
/// theta' = theta - alpha * grad (elementwise; Eq. 3). Named "step_size.<parameter>",
/// starting at inner_lr.
struct LearnedStepSizes {
  template <class Scalar>
  std::vector<MetaTensor> meta_tensors(const ParameterList<Scalar>& params,
                                       const std::vector<std::size_t>& adapted,
                                       const InnerSetup& s) const {
    std::vector<MetaTensor> out;
    for (std::size_t i : adapted)
      out.push_back({"step_size." + params.name(i), params[i].shape(), s.inner_lr});
    return out;
  }
  template <class Scalar>
  Var<Scalar> step(const Var<Scalar>& w, const Var<Scalar>& g, std::size_t j, int,
                   const std::vector<Var<Scalar>>& own, const InnerSetup&) const {
    return w - own[j] * g;
  }
};

/// MAML++'s LSLR (Antoniou et al. 2019, §4 "Learning per-layer per-step learning rates"):
/// one learned step size per adapted parameter tensor (each layer's weight and bias) and
/// per inner step, named "step_rates.<parameter>" with shape [inner_steps], starting at
/// inner_lr. Steps past the trained count use the last step's rate, which was learned for
/// that step only and may diverge when repeated: evaluate with eval_inner_steps =
/// inner_steps (the paper's protocol).
struct PerLayerStepSizes {
  template <class Scalar>
  std::vector<MetaTensor> meta_tensors(const ParameterList<Scalar>& params,
                                       const std::vector<std::size_t>& adapted,
                                       const InnerSetup& s) const {
    std::vector<MetaTensor> out;
    const std::int64_t steps = std::max(1, s.inner_steps);
    for (std::size_t i : adapted)
      out.push_back({"step_rates." + params.name(i), Shape{steps}, s.inner_lr});
    return out;
  }
  template <class Scalar>
  Var<Scalar> step(const Var<Scalar>& w, const Var<Scalar>& g, std::size_t j, int k,
                   const std::vector<Var<Scalar>>& own, const InnerSetup&) const {
    const std::int64_t last = own[j].shape()[0] - 1;
    const std::int64_t at = std::min<std::int64_t>(k, last);
    return w - slice(own[j], at, at + 1) * g;  // a [1] rate broadcast over the tensor
  }
};

}  // namespace metalearn::meta
