// SPDX-License-Identifier: MIT
/// @file metalearn/learners/task_pool.hpp
/// Runs the tasks of a meta-batch on a few threads, each with its own tape, and returns
/// their outcomes in task order, so the caller can reduce them in an order that does not
/// depend on the thread count (bit-identical results for 1 and N threads).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/autodiff/detail/thread_pool.hpp>
#include <metalearn/autodiff/parallel.hpp>
#include <metalearn/error.hpp>
#include <metalearn/learners/process_group.hpp>
#include <metalearn/learners/results.hpp>
#include <metalearn/optim/clip.hpp>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::meta {

/// The thread count a learner uses for `tasks` tasks: `requested` (0 = the hardware's
/// count), never more than the tasks.
inline std::size_t task_threads(int requested, std::size_t tasks) {
  const std::size_t want = requested > 0 ? static_cast<std::size_t>(requested)
                                         : std::max(1u, std::thread::hardware_concurrency());
  return std::max<std::size_t>(1, std::min(want, tasks));
}

/// The intra-op thread budget of work a learner runs on the calling thread (evaluate, a
/// Siamese pair batch): all of its `threads` (0 = the hardware's count).
inline std::size_t op_threads(int threads) {
  return task_threads(threads, std::numeric_limits<std::size_t>::max());
}

/// How a meta-step spends its threads (`threads`, 0 = the hardware's count): as many tasks
/// at once as there are threads and tasks, or one task at a time when the tasks may not
/// run together (batch norm's running statistics are written during the forward pass);
/// the threads left over go to each task's ops (intra-op, autodiff/parallel.hpp). One
/// episode on 2 threads runs its convolutions on both.
struct ThreadPlan {
  int threads = 1;
  bool tasks_at_once = true;
};

/// What one task, or a group of tasks run together, contributes to a meta-step: the sum
/// over its tasks of their gradients (one tensor per meta-parameter) and of their losses.
template <class Scalar>
struct TaskOutcome {
  std::vector<Tensor<Scalar>> grads;
  double support_loss = 0, query_loss = 0;
  double metric = 0;      ///< accuracy or MSE
  std::size_t tasks = 1;  ///< tasks summed in this outcome
};

namespace detail {
template <class T>
struct is_task_outcome : std::false_type {};
template <class Scalar>
struct is_task_outcome<TaskOutcome<Scalar>> : std::true_type {};

inline std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

/// Fills in the outcomes of the other ranks' tasks: each rank sends its own [first, last)
/// (or its first failure), every rank receives all of them in task order. The first
/// failure in task order is rethrown on every rank: the original on the rank that had it,
/// an Error with its message elsewhere, so no rank is left waiting in a later collective.
template <class Scalar>
void gather_outcomes(const ProcessGroup& group, std::vector<TaskOutcome<Scalar>>& out,
                     const std::vector<std::exception_ptr>& errors, std::size_t first,
                     std::size_t last) {
  ByteWriter w;
  std::int64_t failed = -1;
  for (std::size_t t = first; t < last && failed < 0; ++t)
    if (errors[t]) failed = static_cast<std::int64_t>(t);
  // Header: what every rank must agree on, then this rank's first failure (-1: none).
  w.pod(static_cast<std::uint32_t>(sizeof(Scalar)));
  w.pod(static_cast<std::uint64_t>(out.size()));
  w.pod(failed);
  w.string(failed < 0 ? std::string() : what_of(errors[static_cast<std::size_t>(failed)]));
  if (failed < 0)
    for (std::size_t t = first; t < last; ++t) {
      const TaskOutcome<Scalar>& o = out[t];
      w.pod(o.support_loss);
      w.pod(o.query_loss);
      w.pod(o.metric);
      w.pod(static_cast<std::uint64_t>(o.tasks));
      w.pod(static_cast<std::uint64_t>(o.grads.size()));
      for (const auto& g : o.grads) {
        w.pod(static_cast<std::int32_t>(g.rank()));
        for (int a = 0; a < g.rank(); ++a) w.pod(static_cast<std::int64_t>(g.shape()[a]));
        w.raw(g.data(), sizeof(Scalar) * static_cast<std::size_t>(g.numel()));
      }
    }
  const std::vector<Bytes> all = group.all_gather(w.bytes());
  // Every rank reads every header (its own too), so all decide alike: a rank with another
  // scalar type or meta-batch size stops all of them.
  std::uint32_t scalar0 = 0;
  std::uint64_t count0 = 0;
  for (int r = 0; r < group.size(); ++r) {
    ByteReader in(all[static_cast<std::size_t>(r)]);
    const auto scalar = in.pod<std::uint32_t>();
    const auto count = in.pod<std::uint64_t>();
    if (r == 0) {
      scalar0 = scalar;
      count0 = count;
    } else if (scalar != scalar0 || count != count0) {
      throw InvalidArgument("metalearn::meta::run_tasks: rank " + std::to_string(r) + " has " +
                            std::to_string(count) + " task outcomes of " + std::to_string(scalar) +
                            "-byte values, rank 0 " + std::to_string(count0) + " of " +
                            std::to_string(scalar0) + " (another meta-batch size or scalar type?)");
    }
  }
  // Ranks hold increasing ranges: the first rank that failed had the first failure.
  for (int r = 0; r < group.size(); ++r) {
    ByteReader in(all[static_cast<std::size_t>(r)]);
    in.pod<std::uint32_t>();
    in.pod<std::uint64_t>();
    const auto f = in.pod<std::int64_t>();
    const std::string message = in.string();
    if (f < 0) continue;
    if (r == group.rank()) std::rethrow_exception(errors[static_cast<std::size_t>(f)]);
    // An outcome is one task, or one group of tasks run together (tasks_per_group).
    throw Error("task outcome " + std::to_string(f) + " of the meta-batch failed on rank " +
                std::to_string(r) + ": " + message);
  }
  for (int r = 0; r < group.size(); ++r) {
    if (r == group.rank()) continue;
    ByteReader in(all[static_cast<std::size_t>(r)]);
    in.pod<std::uint32_t>();
    in.pod<std::uint64_t>();
    in.pod<std::int64_t>();
    in.string();
    const auto [from, to] = share_of(r, group.size(), out.size());
    for (std::size_t t = from; t < to; ++t) {
      TaskOutcome<Scalar>& o = out[t];
      o.support_loss = in.pod<double>();
      o.query_loss = in.pod<double>();
      o.metric = in.pod<double>();
      o.tasks = static_cast<std::size_t>(in.pod<std::uint64_t>());
      o.grads.resize(static_cast<std::size_t>(in.pod<std::uint64_t>()));
      for (auto& g : o.grads) {
        const auto rank = in.pod<std::int32_t>();
        if (rank < 0 || rank > Shape::max_rank)
          throw IoError("metalearn::meta::run_tasks: rank " + std::to_string(r) +
                        " sent a gradient of rank " + std::to_string(rank));
        std::array<std::int64_t, Shape::max_rank> dims{};
        for (int a = 0; a < rank; ++a) dims[static_cast<std::size_t>(a)] = in.pod<std::int64_t>();
        g = Tensor<Scalar>(Shape::from_array(dims, rank));
        in.raw(g.data(), sizeof(Scalar) * static_cast<std::size_t>(g.numel()));
      }
    }
    if (!in.done())
      throw IoError("metalearn::meta::run_tasks: rank " + std::to_string(r) +
                    " sent more than its share of the outcomes (another meta-batch size?)");
  }
}
}  // namespace detail

/// outcome[t] = run(t) for t in [0, tasks), in task order, on the threads of `plan`: the
/// caller and workers of the process-wide pool (detail::ThreadPool), each task's ops on the
/// threads its share leaves. The first exception, in task order, is rethrown on the calling
/// thread after every task has finished.
///
/// When this thread has a process group (ProcessGroupGuard) and the outcomes are
/// TaskOutcomes, this rank runs only its share (`share_of`) and the outcomes of the others
/// are gathered from them, so every rank returns all of them, bit for bit as one process.
template <class Outcome, class Run>
std::vector<Outcome> run_tasks(std::size_t tasks, ThreadPlan plan, Run run) {
  const ProcessGroup* group = nullptr;
  if constexpr (detail::is_task_outcome<Outcome>::value) group = process_group();
  // Not a structured binding: lambdas capture those only from C++20 (clang rejects it).
  const std::pair<std::size_t, std::size_t> share =
      group != nullptr ? share_of(group->rank(), group->size(), tasks)
                       : std::pair<std::size_t, std::size_t>{0, tasks};
  const std::size_t first = share.first, last = share.second;
  std::vector<Outcome> out(tasks);
  std::vector<std::exception_ptr> errors(tasks);
  const std::size_t threads = op_threads(plan.threads);
  const std::size_t at_once =
      plan.tasks_at_once ? std::max<std::size_t>(1, std::min(threads, last - first)) : 1;
  const std::size_t per_task = std::max<std::size_t>(1, threads / at_once);
  auto work = [&](std::size_t k, std::size_t) {
    const std::size_t t = first + k;
    const IntraOpThreads ops(per_task);
    try {
      out[t] = run(t);
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  {
    const ProcessGroupGuard alone(nullptr);  // a task's own run_tasks stays on this rank
    // All the plan's threads, not only `at_once`: the tasks' ops join the same pool.
    metalearn::detail::ThreadPool::shared().reserve(threads - 1);
    metalearn::detail::ThreadPool::shared().parallel_for(last - first, at_once, work);
  }
  if constexpr (detail::is_task_outcome<Outcome>::value)
    if (group != nullptr) {
      detail::gather_outcomes(*group, out, errors, first, last);
      return out;
    }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

/// run_tasks on `threads` threads (at least 1), tasks at once; with fewer tasks than
/// threads the spare ones go to each task's ops.
template <class Outcome, class Run>
std::vector<Outcome> run_tasks(std::size_t tasks, std::size_t threads, Run run) {
  return run_tasks<Outcome>(tasks, ThreadPlan{static_cast<int>(std::max<std::size_t>(1, threads))},
                            std::move(run));
}

/// The mean over all tasks of the outcomes' gradients into `grads` (summed in outcome
/// order) and of their losses, the gradient norm and the finite flag.
template <class Scalar>
StepStats reduce_outcomes(const std::vector<TaskOutcome<Scalar>>& outcomes,
                          std::vector<Tensor<Scalar>>& grads) {
  std::size_t tasks = 0;
  for (const auto& o : outcomes) tasks += o.tasks;
  grads = outcomes.at(0).grads;
  for (std::size_t t = 1; t < outcomes.size(); ++t)
    for (std::size_t i = 0; i < grads.size(); ++i) grads[i].array() += outcomes[t].grads[i].array();
  const Scalar inv = Scalar(1) / static_cast<Scalar>(tasks);
  for (auto& g : grads) g.array() *= inv;
  StepStats s;
  s.tasks = static_cast<std::int64_t>(tasks);
  for (const auto& o : outcomes) {
    s.support_loss += o.support_loss / static_cast<double>(tasks);
    s.query_loss += o.query_loss / static_cast<double>(tasks);
    s.query_metric += o.metric / static_cast<double>(tasks);
  }
  s.grad_norm = optim::global_norm(grads);
  s.finite =
      std::isfinite(s.query_loss) && std::isfinite(s.support_loss) && std::isfinite(s.grad_norm);
  return s;
}

/// The mean gradient over the episodes of `batch` of a per-episode objective with respect
/// to `trained` (views of the learner's meta-parameters: the model's, then its own), each
/// episode on its own tape, on `threads` threads (ThreadPlan: one episode at a time when
/// the model has buffers, its ops on all of them), summed in episode order. `objective(params,
/// episode, outcome)` returns the episode's loss on the current tape and may set `outcome.metric`.
/// Used by the metric learners.
template <class Scalar, class Model, class Episode, class Objective>
StepStats episode_gradients(const char* who, Model& net,
                            const std::vector<TensorView<Scalar>>& trained,
                            const std::vector<Episode>& batch, int threads, Objective objective,
                            std::vector<Tensor<Scalar>>& grads) {
  if (batch.empty())
    throw InvalidArgument(std::string("metalearn::meta::") + who + ": empty meta-batch");
  const ThreadPlan plan{threads, net.buffers().empty()};
  const auto outcomes = run_tasks<TaskOutcome<Scalar>>(batch.size(), plan, [&](std::size_t t) {
    TaskOutcome<Scalar> o;
    Tape<Scalar> tape;
    const auto params = tape.leaves(trained);
    const Var<Scalar> loss = objective(params, batch[t], o);
    o.query_loss = o.support_loss = static_cast<double>(loss.item());
    for (const auto& g : grad(loss, params)) o.grads.push_back(g.to_tensor());
    return o;
  });
  return reduce_outcomes(outcomes, grads);
}

namespace detail {
template <class Optimizer, class = void>
struct lists_parameters : std::false_type {};
template <class Optimizer>
struct lists_parameters<Optimizer, std::void_t<decltype(std::declval<Optimizer&>().parameters())>>
    : std::true_type {};
}  // namespace detail

/// The outer step every learner shares: optional clipping to a global norm (0: off), then
/// `outer.step`, skipped when the step was not finite. An optimizer built over another list
/// than the learner's meta-parameters (Meta-SGD's over `net.parameters()`: its step sizes
/// missing) is an error naming the fix.
template <class Scalar, class Optimizer>
void apply_meta_gradient(const StepStats& s, std::vector<Tensor<Scalar>>& grads, double clip_norm,
                         Optimizer& outer) {
  if constexpr (detail::lists_parameters<Optimizer>::value) {
    if (outer.parameters().size() != grads.size())
      throw InvalidArgument(
          "metalearn::meta::meta_step: the optimizer holds " +
          std::to_string(outer.parameters().size()) + " tensors but the learner trains " +
          std::to_string(grads.size()) +
          " (the model's parameters and the learner's own, e.g. Meta-SGD's step sizes): build "
          "the optimizer over learner.meta_parameters(net), not net.parameters()");
  }
  if (!s.finite) return;
  if (clip_norm > 0) optim::clip_by_global_norm(grads, clip_norm);
  outer.step(grads);
}

}  // namespace metalearn::meta
