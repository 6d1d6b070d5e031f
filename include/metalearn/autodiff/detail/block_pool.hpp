// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/detail/block_pool.hpp
/// Blocks of their own for a tape's large values, freed as soon as nothing needs them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <vector>

namespace metalearn::detail {

/// A tape's bump arena frees values only when their scope ends. For large values that
/// kept everything a MAML task ever computed: activations no backward rule reads (a batch
/// norm output that only a max-pool consumes), and every adjoint of the meta-gradient's
/// last sweep. Here each large value gets a block counted by what still refers to it (the
/// Vars of its node and of views of it, and the backward rules that read it); a block
/// nothing counts goes back to a free list at once. A value takes the smallest free block
/// that fits and is at most twice its size (a block keeps its size; larger ones given to
/// small values left conv4's large values without a block, 10 MiB more at the peak). Free
/// blocks are kept for the next task, like the arena's chunks. Blocks are made and dropped
/// in stack order with the nodes: rewind(mark) frees every block made since `mark`.
class BlockPool {
 public:
  static constexpr std::size_t alignment = 64;

  /// A block of at least `bytes`, counted zero times (its holders retain it).
  std::int32_t allocate(std::size_t bytes) {
    bytes = (bytes + alignment - 1) / alignment * alignment;
    if (bytes == 0) bytes = alignment;
    std::byte* data = nullptr;
    auto fit = free_.lower_bound(bytes);
    while (fit != free_.end() && fit->second.empty()) ++fit;
    if (fit != free_.end() && fit->first <= 2 * bytes) {
      data = fit->second.back();
      fit->second.pop_back();
      bytes = fit->first;
    } else {
      owned_.emplace_back(
          static_cast<std::byte*>(::operator new (bytes, std::align_val_t{alignment})));
      data = owned_.back().get();
      held_ += bytes;
    }
    const auto id = static_cast<std::int32_t>(blocks_.size());
    blocks_.push_back({data, bytes, 0});
    return id;
  }
  /// The block's memory; null once it was freed.
  void* data(std::int32_t id) const noexcept { return blocks_[static_cast<std::size_t>(id)].data; }

  std::int32_t refs(std::int32_t id) const noexcept {
    return blocks_[static_cast<std::size_t>(id)].refs;
  }
  void retain(std::int32_t id) {
    if (id >= 0) ++blocks_[static_cast<std::size_t>(id)].refs;
  }
  /// True if the block was freed.
  bool release(std::int32_t id) {
    if (id < 0) return false;
    Block& b = blocks_[static_cast<std::size_t>(id)];
    if (--b.refs > 0 || b.data == nullptr) return false;
    free_block(id);
    return true;
  }

  /// Where the pool stands, to rewind to.
  std::size_t mark() const noexcept { return blocks_.size(); }
  /// Free every block made since `m`.
  void rewind(std::size_t m) {
    for (std::size_t id = m; id < blocks_.size(); ++id)
      if (blocks_[id].data) free_block(static_cast<std::int32_t>(id));
    blocks_.resize(m);
  }

  /// Bytes held from the system (live blocks and free lists).
  std::size_t held() const noexcept { return held_; }

 private:
  struct Block {
    std::byte* data;
    std::size_t size;
    std::int32_t refs;
  };
  struct Free {
    void operator()(std::byte* p) const noexcept {
      ::operator delete (p, std::align_val_t{alignment});
    }
  };

  void free_block(std::int32_t id) {
    Block& b = blocks_[static_cast<std::size_t>(id)];
#ifndef NDEBUG
    std::memset(b.data, 0xff, b.size);  // NaN for float and double: a stray read shows
#endif
    free_[b.size].push_back(b.data);
    b.data = nullptr;
  }

  std::vector<Block> blocks_;                            // by id, in the order made
  std::map<std::size_t, std::vector<std::byte*>> free_;  // by block size
  std::vector<std::unique_ptr<std::byte[], Free>> owned_;
  std::size_t held_ = 0;
};

}  // namespace metalearn::detail
