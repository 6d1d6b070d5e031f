// SPDX-License-Identifier: MIT
/// @file metalearn/distributed/communicator.hpp
/// MPI as a meta::ProcessGroup: the communicator owns MPI_Init and MPI_Finalize, and the
/// two collectives the learners and the trainer use (all-gather and broadcast of bytes).
/// Part of the optional `metalearn::mpi` target (links MPI::MPI_CXX).
#pragma once

#include <mpi.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <metalearn/error.hpp>
#include <metalearn/learners/process_group.hpp>
#include <string>
#include <thread>
#include <vector>

namespace metalearn::distributed {

/// True when an MPI launcher started this process (mpirun or mpiexec of Open MPI or MPICH,
/// Slurm's srun with PMI or PMIx), so a program can use MPI exactly when it was asked to
/// and run alone otherwise.
inline bool launched_by_mpi() {
  for (const char* v :
       {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

/// MPI_COMM_WORLD as a process group. The first communicator of a process initialises MPI
/// (MPI_THREAD_FUNNELED: the task threads never call MPI, only the thread that trains) and
/// finalises it when destroyed. Destroyed by an exception that is still flying, it calls
/// MPI_Abort instead, so the other ranks stop too rather than wait for this one forever
/// (see distributed::run for printing the message first).
class Communicator final : public meta::ProcessGroup {
 public:
  Communicator() : Communicator(nullptr, nullptr) {}
  Communicator(int* argc, char*** argv) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (finalized)
      throw StateError("metalearn::distributed::Communicator: MPI was already finalised");
    if (!initialized) {
      int provided = 0;
      MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
      owns_ = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm node;  // the ranks that share this machine
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local_size_);
    MPI_Comm_free(&node);
  }
  ~Communicator() override {
    if (!owns_) return;
    if (std::uncaught_exceptions() > 0 && size_ > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Finalize();
  }
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  /// The ranks on this machine (this one included).
  int local_size() const { return local_size_; }
  /// Threads each rank should use so that the ranks of one machine fill its cores once.
  int threads_per_rank() const {
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    return cores / local_size_ > 1 ? cores / local_size_ : 1;
  }

  std::vector<meta::Bytes> all_gather(const meta::Bytes& mine) const override {
    const std::uint64_t n = mine.size();
    std::vector<std::uint64_t> sizes(static_cast<std::size_t>(size_));
    MPI_Allgather(&n, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
    std::vector<int> counts(sizes.size()), displs(sizes.size());
    std::uint64_t total = 0;
    for (std::size_t r = 0; r < sizes.size(); ++r) {
      displs[r] = static_cast<int>(total);
      counts[r] = static_cast<int>(sizes[r]);
      total += sizes[r];
      if (total > static_cast<std::uint64_t>(INT_MAX))
        throw InvalidArgument(
            "metalearn::distributed::Communicator::all_gather: " + std::to_string(total) +
            " bytes in one gather, more than MPI's int counts hold (2 GiB); use fewer or "
            "smaller tasks per meta-batch");
    }
    meta::Bytes all(static_cast<std::size_t>(total));
    MPI_Allgatherv(mine.data(), static_cast<int>(n), MPI_CHAR, all.data(), counts.data(),
                   displs.data(), MPI_CHAR, MPI_COMM_WORLD);
    std::vector<meta::Bytes> out(sizes.size());
    for (std::size_t r = 0; r < sizes.size(); ++r)
      out[r].assign(all.begin() + displs[r], all.begin() + displs[r] + counts[r]);
    return out;
  }

  void broadcast(meta::Bytes& bytes, int root) const override {
    std::uint64_t n = bytes.size();
    MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD);
    if (n > static_cast<std::uint64_t>(INT_MAX))
      throw InvalidArgument("metalearn::distributed::Communicator::broadcast: " +
                            std::to_string(n) + " bytes, more than MPI's int counts hold");
    bytes.resize(static_cast<std::size_t>(n));
    MPI_Bcast(bytes.data(), static_cast<int>(n), MPI_CHAR, root, MPI_COMM_WORLD);
  }

  /// Every rank waits here for the others.
  void barrier() const { MPI_Barrier(MPI_COMM_WORLD); }

  /// Stops every rank of the job now with exit code `code`.
  [[noreturn]] void abort(int code) const {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::abort();  // MPI_Abort does not return; this keeps [[noreturn]] true
  }

 private:
  int rank_ = 0, size_ = 1, local_size_ = 1;
  bool owns_ = false;
};

}  // namespace metalearn::distributed
