// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/detail/sweep_pool.hpp
/// Value memory of a reverse sweep that is not recorded: freed as soon as no adjoint needs it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <vector>

namespace metalearn::detail {

/// The values a reverse sweep computes when it is not recorded (the last `grad` of a
/// meta-gradient) are needed only until the adjoints they feed are consumed. The tape's
/// bump arena would keep them all to the end of the scope: for second-order MAML on conv4
/// that sweep was half of a task's peak memory. Here each value gets a block of its own,
/// counted by the adjoint slots that hold it; a block no slot holds goes back to a free
/// list when the step that made it ends. A value takes the smallest free block that fits
/// (a block keeps its size): the second-order part of a MAML sweep, many support-sized
/// values, then reuses the query-sized blocks instead of adding 9 MiB of its own to conv4's
/// peak. Memory is kept for the next sweep, like the arena's.
class SweepPool {
 public:
  static constexpr std::size_t alignment = 64;

  /// A block of `bytes` for a value made in the current step.
  void* allocate(std::size_t bytes) {
    bytes = (bytes + alignment - 1) / alignment * alignment;
    if (bytes == 0) bytes = alignment;
    std::byte* data = nullptr;
    auto fit = free_.lower_bound(bytes);
    while (fit != free_.end() && fit->second.empty()) ++fit;
    if (fit != free_.end()) {
      data = fit->second.back();
      fit->second.pop_back();
      bytes = fit->first;
    } else {
      owned_.emplace_back(
          static_cast<std::byte*>(::operator new (bytes, std::align_val_t{alignment})));
      data = owned_.back().get();
      held_ += bytes;
    }
    last_ = static_cast<std::int32_t>(blocks_.size());
    blocks_.push_back({data, bytes, 0});
    made_this_step_.push_back(last_);
    return data;
  }
  /// The id of the block the last allocate returned.
  std::int32_t last_block() const noexcept { return last_; }

  void retain(std::int32_t id) {
    if (id >= 0) ++blocks_[static_cast<std::size_t>(id)].refs;
  }
  void release(std::int32_t id) {
    if (id < 0) return;
    Block& b = blocks_[static_cast<std::size_t>(id)];
    if (--b.refs == 0 && b.data != nullptr && !made_in_step(id)) free_block(id);
  }

  /// The step ends: free its blocks that no adjoint slot holds.
  void end_step() {
    for (const std::int32_t id : made_this_step_)
      if (blocks_[static_cast<std::size_t>(id)].refs == 0) free_block(id);
    made_this_step_.clear();
  }

  /// The sweep ends: every block back to the free lists.
  void end_sweep() {
    for (std::size_t id = 0; id < blocks_.size(); ++id)
      if (blocks_[id].data) free_block(static_cast<std::int32_t>(id));
    blocks_.clear();
    made_this_step_.clear();
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

  bool made_in_step(std::int32_t id) const {
    for (const std::int32_t m : made_this_step_)
      if (m == id) return true;
    return false;
  }
  void free_block(std::int32_t id) {
    Block& b = blocks_[static_cast<std::size_t>(id)];
    free_[b.size].push_back(b.data);
    b.data = nullptr;
  }

  std::vector<Block> blocks_;  // of the current sweep, by id
  std::int32_t last_ = -1;
  std::vector<std::int32_t> made_this_step_;
  std::map<std::size_t, std::vector<std::byte*>> free_;  // by block size
  std::vector<std::unique_ptr<std::byte[], Free>> owned_;
  std::size_t held_ = 0;
};

}  // namespace metalearn::detail
