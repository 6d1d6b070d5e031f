// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/detail/aligned_allocator.hpp
/// A std::allocator that hands out 64-byte aligned memory, for every Tensor's values.
#pragma once

#include <cstddef>
#include <new>

namespace metalearn::detail {

/// Every value metalearn computes on lives at a 64-byte boundary (tape arena, blocks and,
/// through this allocator, Tensors). Eigen's vectorised reductions and kernels peel a
/// different number of leading elements depending on the address, which changes the order
/// of the additions: with malloc's 16-byte alignment, the same seed gave different bits
/// when an unrelated allocation moved the heap. At a fixed alignment the rounding depends
/// only on offsets, which the program determines (same seed, same bits).
template <class T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::size_t alignment = 64;

  AlignedAllocator() noexcept = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit

  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{alignment}));
  }
  void deallocate(T* p, std::size_t) noexcept {
    ::operator delete (p, std::align_val_t{alignment});
  }

  template <class U>
  bool operator==(const AlignedAllocator<U>&) const noexcept {
    return true;
  }
  template <class U>
  bool operator!=(const AlignedAllocator<U>&) const noexcept {
    return false;
  }
};

}  // namespace metalearn::detail
