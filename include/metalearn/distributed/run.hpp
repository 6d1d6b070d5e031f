// SPDX-License-Identifier: MIT
/// @file metalearn/distributed/run.hpp
/// A program's body on every rank, with failures that stop the whole job: an exception on
/// one rank is printed with its rank and ends every rank (MPI_Abort), instead of leaving
/// the others blocked in their next collective.
#pragma once

#include <exception>
#include <iostream>
#include <metalearn/distributed/communicator.hpp>

namespace metalearn::distributed {

/// Returns body()'s exit code. An exception prints "error (rank r of n): what" on stderr;
/// with more than one rank it then aborts the job (exit code 1 on every rank, within a
/// second or two), alone it returns 1.
///
/// ```
/// int main(int argc, char** argv) {
///   metalearn::distributed::Communicator comm(&argc, &argv);
///   return metalearn::distributed::run(comm, [&] { /* train with options.group = &comm */ return
///   0; });
/// }
/// ```
template <class Body>
int run(const Communicator& comm, Body&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::cerr << "error (rank " << comm.rank() << " of " << comm.size() << "): " << e.what()
              << std::endl;
    if (comm.size() > 1) comm.abort(1);
    return 1;
  }
}

}  // namespace metalearn::distributed
