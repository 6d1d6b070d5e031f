// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/parallel.hpp
/// Threads inside one op (intra-op): convolutions, batch norm and pooling split their work
/// into chunks (groups of images, or channels) fixed by the shapes alone, and run them on
/// the threads this thread may use. Chunk results are combined in chunk order, so an op
/// gives the same bits for any thread count.
///
/// The budget is per calling thread: 1 (no extra threads) unless set by `IntraOpThreads`.
/// The learners set it themselves from their `threads` option: a meta-step with fewer tasks
/// than threads gives each task the spare ones (a ProtoNet episode on 2 threads runs its
/// convolutions on both).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <metalearn/autodiff/detail/thread_pool.hpp>
#include <mutex>

namespace metalearn {

namespace detail {
inline std::size_t& intra_op_budget() {
  thread_local std::size_t threads = 1;
  return threads;
}
}  // namespace detail

/// The threads an op on this thread may use (the caller's included).
inline std::size_t intra_op_threads() { return detail::intra_op_budget(); }

/// Sets this thread's intra-op thread budget for its lifetime, then restores the previous
/// one. `IntraOpThreads threads(2);` before a forward pass runs its convolutions on 2 threads.
class IntraOpThreads {
 public:
  explicit IntraOpThreads(std::size_t threads) : previous_(detail::intra_op_budget()) {
    detail::intra_op_budget() = threads < 1 ? 1 : threads;
  }
  IntraOpThreads(const IntraOpThreads&) = delete;
  IntraOpThreads& operator=(const IntraOpThreads&) = delete;
  ~IntraOpThreads() { detail::intra_op_budget() = previous_; }

 private:
  std::size_t previous_;
};

namespace detail {

/// The participants a loop of `chunks` chunks runs on: this thread's budget, at most one
/// per chunk. Ops size per-participant scratch with it.
inline std::size_t chunk_workers(std::size_t chunks) {
  const std::size_t budget = intra_op_threads();
  return chunks < budget ? (chunks < 1 ? 1 : chunks) : budget;
}

/// body(chunk, participant) for chunk in [0, chunks), participant in
/// [0, chunk_workers(chunks)), on this thread's budget; the ops inside a chunk run with a
/// budget of 1. The exception of the first failing chunk (in chunk order) is rethrown after
/// all chunks ran.
template <class Body>
void parallel_chunks(std::size_t chunks, Body&& body) {
  const std::size_t workers = chunk_workers(chunks);
  if (workers <= 1) {
    for (std::size_t i = 0; i < chunks; ++i) body(i, std::size_t{0});
    return;
  }
  std::mutex failure;
  std::exception_ptr first;
  std::size_t first_chunk = chunks;
  auto guarded = [&](std::size_t i, std::size_t p) {
    try {
      const IntraOpThreads inside(1);
      body(i, p);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure);
      if (i < first_chunk) {
        first_chunk = i;
        first = std::current_exception();
      }
    }
  };
  ThreadPool::shared().parallel_for(chunks, workers, guarded);
  if (first) std::rethrow_exception(first);
}

/// body(begin, end) over [0, total) in ranges of `grain` items (the last one shorter): a
/// parallel_chunks loop over items that need no scratch (image planes, channels). `grain`
/// must depend on the shapes alone.
template <class Body>
void parallel_ranges(std::int64_t total, std::int64_t grain, Body&& body) {
  if (total <= 0) return;
  grain = std::max<std::int64_t>(1, grain);
  const auto chunks = static_cast<std::size_t>((total + grain - 1) / grain);
  parallel_chunks(chunks, [&](std::size_t i, std::size_t) {
    const std::int64_t begin = static_cast<std::int64_t>(i) * grain;
    body(begin, std::min(total, begin + grain));
  });
}

/// Values per chunk of an element-wise loop: enough to pay for handing a chunk to another
/// thread.
inline constexpr std::int64_t chunk_values = 16384;

/// Items per chunk for loops over items of `work` values each: about chunk_values values.
inline std::int64_t grain_for(std::int64_t work) {
  return std::max<std::int64_t>(1, chunk_values / std::max<std::int64_t>(1, work));
}

}  // namespace detail
}  // namespace metalearn
