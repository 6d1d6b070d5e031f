// SPDX-License-Identifier: MIT
/// @file metalearn/nn/inner_step.hpp
/// The inner step a forward pass runs at, for layers whose weights depend on it
/// (nn::PerStepBatchNorm). meta::Adapted sets it around every forward with the number of
/// inner steps that made its parameters; any other forward runs at step 0 (the model's own
/// parameters). Per thread, like recording: tasks on different workers never see each
/// other's step.
#pragma once

namespace metalearn::nn {

namespace detail {
inline int& inner_step_slot() {
  thread_local int step = 0;
  return step;
}
}  // namespace detail

/// The inner step of the forward pass running on this thread (0 outside meta::Adapted).
inline int inner_step() { return detail::inner_step_slot(); }

/// Sets the inner step for its scope and restores the previous one.
class InnerStepGuard {
 public:
  explicit InnerStepGuard(int step) : was_(detail::inner_step_slot()) {
    detail::inner_step_slot() = step;
  }
  ~InnerStepGuard() { detail::inner_step_slot() = was_; }
  InnerStepGuard(const InnerStepGuard&) = delete;
  InnerStepGuard& operator=(const InnerStepGuard&) = delete;

 private:
  int was_;
};

}  // namespace metalearn::nn
