// Counts heap allocations made by the calling thread (global operator new is replaced in
// alloc_counter.cpp), so a test can show that a warm training loop allocates nothing.
#pragma once

#include <cstddef>

namespace metalearn::test {

/// Allocations made by this thread since it started.
std::size_t thread_allocations();

}  // namespace metalearn::test
