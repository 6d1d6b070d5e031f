// SPDX-License-Identifier: MIT
/// @file metalearn/optim/schedule.hpp
/// Learning-rate schedules: each maps a step number to a factor for
/// `Optimizer::set_lr_factor`, so per-group learning rates keep their ratios.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <metalearn/error.hpp>
#include <string>

namespace metalearn::optim {

/// gamma^(floor(step / step_size)).
struct StepLr {
  std::int64_t step_size;
  double gamma = 0.1;
  double operator()(std::int64_t step) const {
    if (step_size < 1) throw InvalidArgument("metalearn::optim::StepLr: step_size must be >= 1");
    return std::pow(gamma, static_cast<double>(step / step_size));
  }
};

/// gamma^step.
struct ExponentialLr {
  double gamma;
  double operator()(std::int64_t step) const { return std::pow(gamma, static_cast<double>(step)); }
};

/// Cosine annealing (Loshchilov & Hutter 2017, without restarts): from 1 at step 0 to
/// `min_factor` at `total_steps`, constant afterwards.
struct CosineLr {
  std::int64_t total_steps;
  double min_factor = 0.0;
  double operator()(std::int64_t step) const {
    if (total_steps < 1)
      throw InvalidArgument("metalearn::optim::CosineLr: total_steps must be >= 1");
    const double t =
        static_cast<double>(std::min(step, total_steps)) / static_cast<double>(total_steps);
    return min_factor + (1 - min_factor) * 0.5 * (1 + std::cos(3.14159265358979323846 * t));
  }
};

}  // namespace metalearn::optim
