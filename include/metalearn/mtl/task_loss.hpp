// SPDX-License-Identifier: MIT
/// @file metalearn/mtl/task_loss.hpp
/// How MtlLearner scores one task's output: cross-entropy for a classification task, MSE
/// for a regression one, with a message naming the task when the output's shape does not
/// fit its targets.
#pragma once

#include <cstddef>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <metalearn/mtl/batch.hpp>
#include <string>

namespace metalearn::mtl::detail {

template <class Scalar>
Var<Scalar> task_loss(const Var<Scalar>& out, const TaskTargets<Scalar>& t, std::size_t task) {
  const Shape s = out.shape();
  if (t.is_classification()) {
    if (s.rank() != 2 || s[1] != t.classes)
      throw InvalidArgument("metalearn::mtl::MtlLearner: task " + std::to_string(task) + " has " +
                            std::to_string(t.classes) + " classes but its output has shape " +
                            s.to_string());
    return cross_entropy(out, t.labels);
  }
  if (s != t.values.shape())
    throw InvalidArgument("metalearn::mtl::MtlLearner: task " + std::to_string(task) +
                          " has targets " + t.values.shape().to_string() +
                          " but its output has shape " + s.to_string());
  return mse(out, constant(t.values));
}
}  // namespace metalearn::mtl::detail
