// SPDX-License-Identifier: MIT
/// @file metalearn/learners/task_pool.hpp
/// Runs the tasks of a meta-batch on a few threads, each with its own tape, and returns
/// their outcomes in task order, so the caller can reduce them in an order that does not
/// depend on the thread count (bit-identical results for 1 and N threads).
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace metalearn::meta {

/// The thread count a learner uses for `tasks` tasks: `requested` (0 = the hardware's
/// count), never more than the tasks.
inline std::size_t task_threads(int requested, std::size_t tasks) {
  const std::size_t want = requested > 0 ? static_cast<std::size_t>(requested)
                                         : std::max(1u, std::thread::hardware_concurrency());
  return std::max<std::size_t>(1, std::min(want, tasks));
}

/// outcome[t] = run(t) for t in [0, tasks), on `threads` threads (task t on thread
/// t mod threads; thread 0 is the caller). The first exception, in task order, is rethrown
/// on the calling thread after every thread has finished.
template <class Outcome, class Run>
std::vector<Outcome> run_tasks(std::size_t tasks, std::size_t threads, Run run) {
  std::vector<Outcome> out(tasks);
  std::vector<std::exception_ptr> errors(tasks);
  const auto work = [&](std::size_t first) {
    for (std::size_t t = first; t < tasks; t += threads) {
      try {
        out[t] = run(t);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t k = 1; k < threads; ++k) pool.emplace_back(work, k);
  work(0);
  for (auto& th : pool) th.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

}  // namespace metalearn::meta
