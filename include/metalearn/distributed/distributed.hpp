// SPDX-License-Identifier: MIT
/// @file metalearn/distributed/distributed.hpp
/// Distributed meta-training on MPI (the optional `metalearn::mpi` target; docs/distributed.md).
#pragma once

#include <metalearn/distributed/communicator.hpp>
#include <metalearn/distributed/meta_step.hpp>
#include <metalearn/distributed/run.hpp>
