// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/detail/thread_pool.hpp
/// The one pool of worker threads behind every parallel loop: a meta-batch's tasks
/// (learners/task_pool.hpp) and the images or channels of one op (autodiff/parallel.hpp).
/// A loop nested in a loop (an op inside a task) joins the same pool: no thread is ever
/// spawned per call, and the pool never grows beyond the largest budget asked of it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace metalearn::detail {

/// Worker threads kept alive for the whole process (each thread's tape arena then stays
/// warm: a thread started per meta-step pays a page fault for every byte its first task's
/// tape touches), grown on demand and never destroyed, so no static destructor can join a
/// thread that is gone or still in use.
///
/// `parallel_for(n, threads, body)` runs body(i, p) for i in [0, n) on the caller and up
/// to threads - 1 idle workers; p in [0, threads) names the participant (0: the caller),
/// so a call can hand each participant its own scratch memory. Indices are claimed one at a
/// time, so which participant runs which index varies between runs: results must depend on
/// i only. A caller never waits for an index nobody has claimed (it runs them all itself
/// when no worker is idle), so nested and concurrent calls cannot deadlock. In a child
/// process after fork() (where the workers do not exist) every call runs on the caller.
class ThreadPool {
 public:
  static ThreadPool& shared() {
    static ThreadPool* pool = new ThreadPool;
    return *pool;
  }

  /// Grows the pool to at least `workers` threads (a no-op after fork()).
  void reserve(std::size_t workers) {
    if (forked()) return;
    std::lock_guard<std::mutex> lock(mutex_);
    while (threads_.size() < workers) threads_.emplace_back([this] { serve(); });
  }

  /// body(i, participant) for every i in [0, n); `body` must not throw (on a worker that
  /// would end the process).
  template <class Body>
  void parallel_for(std::size_t n, std::size_t threads, Body& body) {
    if (threads <= 1 || n <= 1 || forked()) {
      for (std::size_t i = 0; i < n; ++i) body(i, 0);
      return;
    }
    reserve(threads - 1);
    Job job;
    job.n = n;
    job.wanted = threads - 1;
    job.body = &body;
    job.call = [](void* b, std::size_t i, std::size_t p) { (*static_cast<Body*>(b))(i, p); };
    bool sleepers = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      open_.push_back(&job);
      opened_.fetch_add(1, std::memory_order_release);
      sleepers = sleeping_ > 0;
    }
    if (sleepers) wake_.notify_all();
    const Retire retire{*this, job};  // even if the caller's share throws
    job.run(0);
  }

 private:
  struct Job {
    std::atomic<std::size_t> next{0};
    std::size_t n = 0, wanted = 0;
    std::size_t joined = 0;  // guarded by the pool's mutex
    // Workers running the job: raised and lowered under the mutex (a caller blocked on
    // done_ must not miss the last one), read without it by a caller spinning for the end;
    // a worker does not touch the job after lowering it.
    std::atomic<std::size_t> helpers{0};
    void* body = nullptr;
    void (*call)(void*, std::size_t, std::size_t) = nullptr;
    bool open() const { return joined < wanted && next.load(std::memory_order_relaxed) < n; }
    void run(std::size_t participant) {
      for (std::size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1))
        call(body, i, participant);
    }
  };

  /// Takes a job off the open list (no worker joins after this) and waits for its helpers,
  /// spinning first as a worker does, so the job, which lives on the caller's stack,
  /// outlives every use.
  struct Retire {
    ThreadPool& pool;
    Job& job;
    ~Retire() {
      std::unique_lock<std::mutex> lock(pool.mutex_);
      pool.close(&job);
      lock.unlock();
      spin_until([&] { return job.helpers.load(std::memory_order_acquire) == 0; });
      lock.lock();
      pool.done_.wait(lock, [&] { return job.helpers.load(std::memory_order_acquire) == 0; });
    }
  };

  ThreadPool() = default;

  bool forked() const {
#if defined(__unix__) || defined(__APPLE__)
    return ::getpid() != owner_;
#else
    return false;
#endif
  }

  Job* find_open() {
    for (Job* j : open_)
      if (j->open()) return j;
    return nullptr;
  }
  void close(Job* job) {
    for (std::size_t k = 0; k < open_.size(); ++k)
      if (open_[k] == job) {
        open_.erase(open_.begin() + static_cast<std::ptrdiff_t>(k));
        return;
      }
  }

  /// Spins up to `spin_limit` until `ready()` before a thread blocks on a condition
  /// variable: waking a blocked thread takes tens of microseconds, as long as a sinusoid
  /// task group's whole run, and a learner opens its next loop (or a helper ends its
  /// share) within that time.
  /// It yields between polls, so with more threads than cores (ranks oversubscribed) the
  /// spinning thread gives its core to one that has work.
  template <class Ready>
  static void spin_until(Ready ready) {
    const auto until = std::chrono::steady_clock::now() + spin_limit;
    while (!ready()) {
      std::this_thread::yield();
      if (std::chrono::steady_clock::now() > until) return;
    }
  }

  void serve() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      Job* job = find_open();
      if (job == nullptr) {
        const std::size_t seen = opened_.load(std::memory_order_relaxed);
        lock.unlock();
        spin_until([&] { return opened_.load(std::memory_order_acquire) != seen; });
        lock.lock();
        ++sleeping_;
        wake_.wait(lock, [&] { return (job = find_open()) != nullptr; });
        --sleeping_;
      }
      const std::size_t participant = ++job->joined;
      ++job->helpers;
      lock.unlock();
      job->run(participant);
      lock.lock();
      if (job->helpers.fetch_sub(1, std::memory_order_release) == 1) done_.notify_all();
    }
  }

  std::mutex mutex_;  // guards the members below but opened_, and the jobs' joined and helpers
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  std::vector<Job*> open_;              // jobs that may take more helpers
  std::size_t sleeping_ = 0;            // workers blocked on wake_
  std::atomic<std::size_t> opened_{0};  // jobs ever opened: a spinning worker watches it
  static constexpr std::chrono::microseconds spin_limit{100};
#if defined(__unix__) || defined(__APPLE__)
  const pid_t owner_ = ::getpid();
#endif
};

}  // namespace metalearn::detail
