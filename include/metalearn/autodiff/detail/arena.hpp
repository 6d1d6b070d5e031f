// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/detail/arena.hpp
/// Bump allocator behind a tape: node values live here, a reset frees them all at once.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

namespace metalearn::detail {

/// Chunked bump allocator. `allocate` hands out 64-byte aligned blocks; `rewind(mark)`
/// frees everything allocated after `mark`. After a full rewind the chunks are merged into
/// one of the total size, so a loop that builds the same graph every step stops calling
/// malloc after its first step.
class Arena {
 public:
  static constexpr std::size_t alignment = 64;

  /// A position to rewind to.
  struct Mark {
    std::size_t chunk = 0;
    std::size_t used = 0;
  };

  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* allocate(std::size_t bytes) {
    bytes = round_up(bytes == 0 ? 1 : bytes);
    while (current_ < chunks_.size()) {
      Chunk& c = chunks_[current_];
      if (c.size - c.used >= bytes) {
        void* p = c.data.get() + c.used;
        c.used += bytes;
        peak_ = std::max(peak_, below_ + c.used);
        return p;
      }
      below_ += c.size;  // its unused tail stays held until a rewind below it
      ++current_;        // later chunks were emptied by a rewind; try them before growing
      if (current_ < chunks_.size()) chunks_[current_].used = 0;
    }
    const std::size_t last = chunks_.empty() ? 0 : chunks_.back().size;
    add_chunk(std::max({bytes, 2 * last, min_chunk}));
    current_ = chunks_.size() - 1;
    Chunk& c = chunks_.back();
    c.used = bytes;
    peak_ = std::max(peak_, below_ + c.used);
    return c.data.get();
  }

  Mark mark() const {
    if (chunks_.empty()) return {};
    return {current_, chunks_[current_].used};
  }

  /// Free everything allocated after `m`.
  void rewind(Mark m) {
    if (chunks_.empty()) return;
    for (std::size_t i = m.chunk; i < current_; ++i) below_ -= chunks_[i].size;
    current_ = m.chunk;
    chunks_[current_].used = m.used;
  }

  /// Free everything; merge the chunks into one so the next round needs no new chunk.
  void clear() {
    if (chunks_.size() > 1) {
      std::size_t total = 0;
      for (const Chunk& c : chunks_) total += c.size;
      chunks_.clear();
      add_chunk(total);
    }
    current_ = 0;
    below_ = 0;
    if (!chunks_.empty()) chunks_[0].used = 0;
  }

  /// Give all memory back to the system.
  void release() {
    chunks_.clear();
    current_ = 0;
    below_ = 0;
    peak_ = 0;
  }

  /// Bytes held from the system.
  std::size_t capacity() const noexcept {
    std::size_t total = 0;
    for (const Chunk& c : chunks_) total += c.size;
    return total;
  }
  /// The most bytes ever in use at once (the chunks before the current one counted whole),
  /// since construction or release(): the memory a workload touches, where capacity()
  /// rounds up to the doubling chunk sizes.
  std::size_t peak() const noexcept { return peak_; }
  /// Start peak() again from the bytes in use now.
  void reset_peak() noexcept { peak_ = in_use(); }
  /// Bytes in use now, counted as peak() counts them.
  std::size_t in_use() const noexcept {
    return chunks_.empty() ? 0 : below_ + chunks_[current_].used;
  }
  /// Number of chunks ever requested from the system (a warm loop keeps this constant).
  std::size_t system_allocations() const noexcept { return system_allocations_; }

 private:
  static constexpr std::size_t min_chunk = std::size_t{1} << 16;

  struct Free {
    void operator()(std::byte* p) const noexcept {
      ::operator delete (p, std::align_val_t{alignment});
    }
  };
  struct Chunk {
    std::unique_ptr<std::byte[], Free> data;
    std::size_t size = 0;
    std::size_t used = 0;
  };

  static std::size_t round_up(std::size_t n) { return (n + alignment - 1) / alignment * alignment; }

  void add_chunk(std::size_t bytes) {
    bytes = round_up(bytes);
    Chunk c;
    c.data.reset(static_cast<std::byte*>(::operator new (bytes, std::align_val_t{alignment})));
    c.size = bytes;
    chunks_.push_back(std::move(c));
    ++system_allocations_;
  }

  std::vector<Chunk> chunks_;
  std::size_t current_ = 0;
  std::size_t below_ = 0;  // total size of the chunks before current_
  std::size_t peak_ = 0;
  std::size_t system_allocations_ = 0;
};

}  // namespace metalearn::detail
