// Running an example under mpirun (docs/distributed.md): each example's body runs through
// with_ranks, which starts MPI when an MPI launcher started the program and otherwise runs
// alone, so `mpirun -np 4 ./maml_omniglot ...` needs no extra flag. Rank 0 prints and
// writes files; the others train and stay silent.
#pragma once

#include <iostream>
#include <metalearn/metalearn.hpp>
#include <string>
#if defined(METALEARN_HAS_MPI)
#include <metalearn/distributed/distributed.hpp>
#endif

namespace examples {

/// This process's place among the ranks of the run.
struct Ranks {
  const metalearn::meta::ProcessGroup* group = nullptr;  ///< null: alone
  bool lead = true;  ///< rank 0, or alone: prints, validates, writes files
  int threads = 0;   ///< default --threads (0: every core; under MPI, a share)
};

/// The run's ranks (set by with_ranks).
inline Ranks& ranks() {
  static Ranks r;
  return r;
}

/// body() on every rank with ranks() set; returns its exit code. An exception prints
/// "error: ..." and returns 1 (alone), or stops every rank (MPI, distributed::run).
template <class Body>
int with_ranks(int argc, char** argv, Body body) {
  const auto alone = [&] {
    try {
      return body();
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << '\n';
      return 1;
    }
  };
#if defined(METALEARN_HAS_MPI)
  if (metalearn::distributed::launched_by_mpi()) {
    metalearn::distributed::Communicator comm(&argc, &argv);
    if (comm.size() == 1) return alone();
    ranks().group = &comm;
    ranks().lead = comm.rank() == 0;
    ranks().threads = comm.threads_per_rank();
    if (!ranks().lead) std::cout.rdbuf(nullptr);  // one rank speaks (errors still do)
    return metalearn::distributed::run(comm, body);
  }
#endif
  return alone();
}

}  // namespace examples
