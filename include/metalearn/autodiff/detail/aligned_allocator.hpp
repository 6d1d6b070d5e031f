// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/detail/aligned_allocator.hpp
/// A std::allocator that hands out 64-byte aligned memory, for every Tensor's values.
#pragma once

#include <cstddef>
#include <cstdint>
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

  // Over-allocates by `alignment` through plain operator new and keeps the offset in the
  // byte before the block (as Eigen's handmade_aligned_malloc): the aligned operator new
  // misses glibc's fast path, which cost 6% of a sinusoid MAML step (many small tensors).
  T* allocate(std::size_t n) {
    if (n > (static_cast<std::size_t>(-1) - alignment) / sizeof(T))
      throw std::bad_array_new_length();
    auto* raw = static_cast<unsigned char*>(::operator new(n * sizeof(T) + alignment));
    const std::size_t offset =
        alignment - (reinterpret_cast<std::uintptr_t>(raw) & (alignment - 1));  // 1..64
    unsigned char* aligned = raw + offset;
    aligned[-1] = static_cast<unsigned char>(offset);
    return reinterpret_cast<T*>(aligned);
  }
  void deallocate(T* p, std::size_t) noexcept {
    auto* aligned = reinterpret_cast<unsigned char*>(p);
    ::operator delete(aligned - aligned[-1]);
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
