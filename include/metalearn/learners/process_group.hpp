// SPDX-License-Identifier: MIT
/// @file metalearn/learners/process_group.hpp
/// A group of processes that train one model together, as the learners see it: rank, size,
/// and two collectives over bytes. The core never depends on MPI; `distributed::Communicator`
/// (metalearn/distributed/communicator.hpp, the `metalearn::mpi` target) is the MPI one.
///
/// How a meta-step is shared: every rank draws the same meta-batch (same seed), computes
/// the outcomes of its contiguous share of the tasks (`share_of`), and the outcomes are
/// gathered into task order on every rank, which then reduces them exactly as one process
/// does. So the parameters are bit-identical for any number of ranks and threads, and the
/// learners do not change: `run_tasks` consults the group set on the calling thread by a
/// `ProcessGroupGuard` (the trainer and `distributed::meta_step` set it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <metalearn/detail/first_difference.hpp>
#include <metalearn/error.hpp>
#include <string>
#include <utility>
#include <vector>

namespace metalearn::meta {

/// Bytes sent between ranks.
using Bytes = std::vector<char>;

/// The interface a process group implements. Every rank calls each collective in the same
/// order (they are collectives: a rank that skips one leaves the others waiting).
class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Every rank's `mine`, indexed by rank, on every rank.
  virtual std::vector<Bytes> all_gather(const Bytes& mine) const = 0;
  /// `bytes` of rank `root` on every rank (resized as needed).
  virtual void broadcast(Bytes& bytes, int root) const = 0;
};

/// The tasks [first, last) of `tasks` that rank `rank` of `size` computes: contiguous,
/// sizes differing by at most one, fixed by the task index and the rank count only.
inline std::pair<std::size_t, std::size_t> share_of(int rank, int size, std::size_t tasks) {
  const auto r = static_cast<std::size_t>(rank), n = static_cast<std::size_t>(size);
  return {tasks * r / n, tasks * (r + 1) / n};
}

namespace detail {
inline const ProcessGroup*& process_group_slot() {
  thread_local const ProcessGroup* group = nullptr;
  return group;
}
}  // namespace detail

/// The group the meta-step running on this thread shares its tasks with (null: alone).
inline const ProcessGroup* process_group() { return detail::process_group_slot(); }

/// Sets the calling thread's process group for its scope and restores the previous one.
/// A group of size 1 is the same as none.
class ProcessGroupGuard {
 public:
  explicit ProcessGroupGuard(const ProcessGroup* group) : was_(detail::process_group_slot()) {
    detail::process_group_slot() = group != nullptr && group->size() > 1 ? group : nullptr;
  }
  ~ProcessGroupGuard() { detail::process_group_slot() = was_; }
  ProcessGroupGuard(const ProcessGroupGuard&) = delete;
  ProcessGroupGuard& operator=(const ProcessGroupGuard&) = delete;

 private:
  const ProcessGroup* was_;
};

namespace detail {
/// Little helpers to put plain values and strings into Bytes and take them out again.
class ByteWriter {
 public:
  template <class T>
  void pod(const T& v) {
    raw(&v, sizeof v);
  }
  void raw(const void* p, std::size_t n) {
    const auto* c = static_cast<const char*>(p);
    bytes_.insert(bytes_.end(), c, c + n);
  }
  void string(const std::string& s) {
    pod(static_cast<std::uint64_t>(s.size()));
    raw(s.data(), s.size());
  }
  Bytes& bytes() { return bytes_; }

 private:
  Bytes bytes_;
};

class ByteReader {
 public:
  explicit ByteReader(const Bytes& bytes) : bytes_(bytes) {}
  template <class T>
  T pod() {
    T v;
    raw(&v, sizeof v);
    return v;
  }
  void raw(void* p, std::size_t n) {
    if (n > bytes_.size() - pos_)
      throw IoError("metalearn::meta::ProcessGroup: a message from another rank is " +
                    std::to_string(bytes_.size()) + " bytes, shorter than its content says");
    if (n > 0) std::memcpy(p, bytes_.data() + pos_, n);
    pos_ += n;
  }
  std::string string() {
    const auto n = pod<std::uint64_t>();
    std::string s(static_cast<std::size_t>(n), '\0');
    raw(s.data(), s.size());
    return s;
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  const Bytes& bytes_;
  std::size_t pos_ = 0;
};
}  // namespace detail

/// Collective: when any rank passes a non-empty `error`, every rank throws an Error with
/// the first such rank's message (so a failure on one rank stops all of them, none is left
/// waiting); otherwise returns.
inline void raise_on_any_rank(const ProcessGroup& group, const std::string& error) {
  detail::ByteWriter w;
  w.string(error);
  const std::vector<Bytes> all = group.all_gather(w.bytes());
  for (int r = 0; r < group.size(); ++r) {
    detail::ByteReader in(all[static_cast<std::size_t>(r)]);
    const std::string e = in.string();
    if (!e.empty()) throw Error("rank " + std::to_string(r) + ": " + e);
  }
}

/// Collective: throws the same InvalidArgument on every rank when `text` (lines) is not the
/// same on all ranks, naming `what`, the first rank that differs from rank 0 and the first
/// line where it does.
inline void require_same_on_all_ranks(const ProcessGroup& group, const std::string& text,
                                      const std::string& what) {
  const std::vector<Bytes> all = group.all_gather(Bytes(text.begin(), text.end()));
  const std::string lead(all[0].begin(), all[0].end());
  for (int r = 1; r < group.size(); ++r) {
    const std::string other(all[static_cast<std::size_t>(r)].begin(),
                            all[static_cast<std::size_t>(r)].end());
    if (other == lead) continue;
    const auto [theirs, ours] = metalearn::detail::first_difference(other, lead);
    throw InvalidArgument(what + " differ between ranks: rank " + std::to_string(r) + " has '" +
                          theirs + "' where rank 0 has '" + ours + "'");
  }
}

}  // namespace metalearn::meta
