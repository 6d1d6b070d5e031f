// SPDX-License-Identifier: MIT
/// @file metalearn/distributed/meta_step.hpp
/// A meta-step shared by the ranks of a process group, for a training loop of one's own
/// (meta::train does the same when TrainerOptions::group is set), and rank 0's parameters
/// sent to every rank. Works with any meta::ProcessGroup; MPI's is distributed::Communicator.
#pragma once

#include <metalearn/error.hpp>
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/learners/learner.hpp>
#include <metalearn/learners/process_group.hpp>
#include <metalearn/parameter_list.hpp>

namespace metalearn::distributed {

/// meta::meta_step with the tasks of `batch` split among the ranks of `group`: every rank
/// passes the same batch (same sampler, same seed) and the same parameters, computes its
/// share of the tasks (episodes for metric learners), and all ranks take the same outer
/// step, bit for bit what one process takes. Learners whose batch is not a set of tasks
/// (a Siamese pair batch, a multi-task batch) compute it whole on every rank.
template <class Learner, class Model, class Optimizer, class Batch>
meta::StepStats meta_step(const meta::ProcessGroup& group, Learner& learner, Model& net,
                          Optimizer& outer, const Batch& batch) {
  if (group.size() > 1 && !net.buffers().empty())
    throw InvalidArgument(
        "metalearn::distributed::meta_step: a model with buffers (batch norm's running "
        "statistics) cannot be shared among ranks: each would update them with its own "
        "tasks only; use BatchNormOptions::running_stats = false");
  const meta::ProcessGroupGuard share(&group);
  return meta::meta_step(learner, net, outer, batch);
}

/// Rank 0's values of `params` (a model's parameters, an optimizer's state) on every rank:
/// call it once before training so that all ranks start from the same bits.
template <class Scalar>
void broadcast_parameters(const meta::ProcessGroup& group, ParameterList<Scalar> params) {
  io::Checkpoint<Scalar> ckpt;
  ckpt.tensors("p", params);
  meta::Bytes bytes = group.rank() == 0 ? ckpt.to_bytes() : meta::Bytes();
  meta::require_same_on_all_ranks(group, ckpt.layout(),
                                  "metalearn::distributed::broadcast_parameters: the parameters");
  group.broadcast(bytes, 0);
  if (group.rank() != 0) ckpt.load_bytes(bytes, "rank 0's parameters");
}

}  // namespace metalearn::distributed
