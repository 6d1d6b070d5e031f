// SPDX-License-Identifier: MIT
/// @file metalearn/io/checkpoint.hpp
/// Checkpoints: a model's parameters and buffers, optimizer state, counters and the RNG, in
/// a checksummed binary file written atomically.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/detail/first_difference.hpp>
#include <metalearn/error.hpp>
#include <metalearn/io/detail/checkpoint_format.hpp>
#include <metalearn/parameter_list.hpp>
#include <metalearn/random.hpp>

namespace metalearn::io {

/// Version of the file format this build writes and the newest it reads.
inline constexpr std::uint32_t checkpoint_format_version = 2;  // 2: text entries

/// What Checkpoint::load does with entries of the file that nothing registered.
enum class Unregistered {
  error,  ///< a different model? the load fails and changes nothing (the default)
  /// Skip what train() keeps beside the model (entries "optimizer.*" and
  /// "learner_state.*", the counters, the RNG): the model out of a training checkpoint.
  /// Any other extra entry (a buffer this model lacks) is still an error.
  training_state,
  ignore,  ///< skip every extra entry (a partial load, chosen explicitly)
};

/// The set of things a checkpoint saves and restores, by reference: groups of named tensors
/// (model parameters, buffers, optimizer moments), integer counters (the step) and an RNG.
/// `load` is all-or-nothing: it parses and checks the whole file first, and changes nothing
/// when anything is wrong (truncated, corrupt, other scalar type, newer format, missing or
/// extra entries, other shapes).
///
/// ```
/// metalearn::io::Checkpoint<float> ckpt;
/// ckpt.tensors("model", net.parameters()).tensors("optimizer", adam.state())
///     .counter("step", step).counter("optimizer.steps", adam.step_counter()).rng(rng);
/// ckpt.save("run.ckpt");   // atomic: temp file, fsync, rename
/// ckpt.load("run.ckpt");
/// ```
template <class Scalar>
class Checkpoint {
 public:
  /// Register the tensors of `list` under "<group>.<name>".
  Checkpoint& tensors(const std::string& group, ParameterList<Scalar> list) {
    for (std::size_t i = 0; i < list.size(); ++i) add_name(group + "." + list.name(i));
    groups_.push_back({group, std::move(list)});
    return *this;
  }
  /// Register an integer (a step count).
  Checkpoint& counter(const std::string& name, std::int64_t& value) {
    add_name(name);
    counters_.push_back({name, &value});
    return *this;
  }
  /// Register a text that describes what the checkpoint is of (train() writes the model's
  /// layers and the learner): saved as it is; on load, a file holding this entry with other
  /// text is an error naming the first line that differs, and a file without it (older, or
  /// written without it) loads.
  Checkpoint& text(const std::string& name, std::string value) {
    add_name(name);
    texts_.push_back({name, std::move(value)});
    return *this;
  }
  /// Register the random generator, so a resumed run draws what the original would have.
  Checkpoint& rng(Rng& generator) {
    add_name("rng");
    rng_ = &generator;
    return *this;
  }

  /// Write everything registered to `path`, atomically: a crash during the write leaves any
  /// previous file at `path` intact.
  void save(const std::string& path) const { write_atomically(path, to_bytes()); }

  /// The bytes save() writes: to send a checkpoint to other processes.
  std::vector<char> to_bytes() const {
    detail::Writer w;
    w.bytes(detail::checkpoint_magic, sizeof(detail::checkpoint_magic));
    w.pod(checkpoint_format_version);
    w.pod(static_cast<std::uint32_t>(sizeof(Scalar)));
    w.pod(detail::endian_marker);
    w.pod(static_cast<std::uint32_t>(names_.size()));
    for (const auto& g : groups_)
      for (std::size_t i = 0; i < g.list.size(); ++i) {
        const Tensor<Scalar>& t = g.list[i];
        w.pod(detail::EntryKind::tensor);
        w.string(g.name + "." + g.list.name(i));
        w.pod(static_cast<std::uint32_t>(t.rank()));
        for (int a = 0; a < t.rank(); ++a) w.pod(static_cast<std::int64_t>(t.shape()[a]));
        w.bytes(t.data(), sizeof(Scalar) * static_cast<std::size_t>(t.numel()));
      }
    for (const auto& c : counters_) {
      w.pod(detail::EntryKind::counter);
      w.string(c.name);
      w.pod(*c.value);
    }
    for (const auto& t : texts_) {
      w.pod(detail::EntryKind::text);
      w.string(t.name);
      w.string(t.value);
    }
    if (rng_ != nullptr) {
      std::ostringstream s;
      s << *rng_;
      w.pod(detail::EntryKind::rng);
      w.string("rng");
      w.string(s.str());
    }
    auto& buf = w.buffer();
    const std::uint64_t sum = detail::fnv1a(buf.data(), buf.size());
    w.pod(sum);
    return buf;
  }

  /// Restore everything registered from `path`; on any error throws IoError naming the file
  /// and the problem, and leaves every registered object unchanged. Entries of the file that
  /// are not registered are an error (a different model?) unless `Unregistered::ignore` (to
  /// take only the model out of a training checkpoint).
  void load(const std::string& path, Unregistered unregistered = Unregistered::error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError("metalearn::io::Checkpoint::load: '" + path + "' cannot be opened");
    const std::vector<char> buf((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
    load_bytes(buf, path, unregistered);
  }

  /// load() from the bytes of a file (to_bytes() of another process); `source` names them
  /// in errors.
  void load_bytes(const std::vector<char>& buf, const std::string& source,
                  Unregistered unregistered = Unregistered::error) {
    const std::string& path = source;
    const bool ignore_unregistered = unregistered == Unregistered::ignore;
    const std::string who = "metalearn::io::Checkpoint::load: '" + path + "'";
    const std::size_t header = sizeof(detail::checkpoint_magic) + 4 * sizeof(std::uint32_t);
    if (buf.size() < header + sizeof(std::uint64_t))
      throw IoError(who + " is truncated (" + std::to_string(buf.size()) + " bytes)");
    if (std::memcmp(buf.data(), detail::checkpoint_magic, sizeof(detail::checkpoint_magic)) != 0)
      throw IoError(who + " is not a metalearn checkpoint (bad magic number)");
    detail::Reader r(buf, buf.size() - sizeof(std::uint64_t), path);
    r.take(sizeof(detail::checkpoint_magic));
    const auto version = r.pod<std::uint32_t>();
    if (version > checkpoint_format_version)
      throw IoError(who + " has format version " + std::to_string(version) +
                    ", newer than this build reads (" + std::to_string(checkpoint_format_version) +
                    ")");
    std::uint64_t stored;
    std::memcpy(&stored, buf.data() + buf.size() - sizeof(stored), sizeof(stored));
    if (detail::fnv1a(buf.data(), buf.size() - sizeof(stored)) != stored)
      throw IoError(who + " fails its checksum: the file is corrupt or truncated");
    const auto scalar_size = r.pod<std::uint32_t>();
    if (scalar_size != sizeof(Scalar))
      throw IoError(who + " holds " + std::to_string(scalar_size) +
                    "-byte values, this model uses " + std::to_string(sizeof(Scalar)) +
                    "-byte ones (float vs double)");
    if (r.pod<std::uint32_t>() != detail::endian_marker)
      throw IoError(who + " was written on a machine of other byte order");
    const auto count = r.pod<std::uint32_t>();

    // Stage everything, check it against what is registered, then commit.
    std::map<std::string, Tensor<Scalar>> tensors;
    std::map<std::string, std::int64_t> counters;
    std::map<std::string, std::string> texts;
    std::string rng_state;
    bool has_rng = false;
    for (std::uint32_t e = 0; e < count; ++e) {
      const auto kind = r.pod<detail::EntryKind>();
      const std::string name = r.string();
      if (kind == detail::EntryKind::tensor) {
        const auto rank = r.pod<std::uint32_t>();
        if (rank > 4)
          throw IoError(who + ": entry '" + name + "' has rank " + std::to_string(rank));
        std::array<std::int64_t, 4> dims{};
        std::uint64_t values = 1;  // checked against the bytes left before allocating
        for (std::uint32_t a = 0; a < rank; ++a) {
          dims[a] = r.pod<std::int64_t>();
          const auto d = static_cast<std::uint64_t>(dims[a]);
          if (dims[a] < 0 || (d != 0 && values > r.remaining() / sizeof(Scalar) / d))
            throw IoError(who + ": entry '" + name + "' has dimension " + std::to_string(dims[a]) +
                          ", more than the file holds (corrupt?)");
          values *= d;
        }
        Tensor<Scalar> t(Shape::from_array(dims, static_cast<int>(rank)));
        const std::size_t bytes = sizeof(Scalar) * static_cast<std::size_t>(t.numel());
        const char* src = r.take(bytes);
        if (bytes > 0) std::memcpy(t.data(), src, bytes);  // an empty tensor has no storage
        tensors.emplace(name, std::move(t));
      } else if (kind == detail::EntryKind::counter) {
        counters[name] = r.pod<std::int64_t>();
      } else if (kind == detail::EntryKind::text) {
        texts[name] = r.string();
      } else if (kind == detail::EntryKind::rng) {
        rng_state = r.string();
        has_rng = true;
      } else {
        throw IoError(who + ": entry '" + name + "' has unknown kind " +
                      std::to_string(static_cast<int>(kind)));
      }
    }
    std::size_t matched = 0;
    for (const auto& g : groups_)
      for (std::size_t i = 0; i < g.list.size(); ++i) {
        const std::string name = g.name + "." + g.list.name(i);
        const auto it = tensors.find(name);
        if (it == tensors.end()) throw IoError(who + " has no entry '" + name + "'");
        if (it->second.shape() != g.list[i].shape())
          throw IoError(who + ": entry '" + name + "' has shape " + it->second.shape().to_string() +
                        " in the file, " + g.list[i].shape().to_string() + " here");
        ++matched;
      }
    for (const auto& c : counters_)
      if (counters.count(c.name) == 0) throw IoError(who + " has no counter '" + c.name + "'");
    for (const auto& t : texts_) {
      const auto it = texts.find(t.name);
      if (it == texts.end() || it->second == t.value) continue;
      const auto [theirs, ours] = metalearn::detail::first_difference(it->second, t.value);
      throw IoError(who + " is of another " + t.name + ": the file has '" + theirs +
                    "' where this one has '" + ours + "'");
    }
    if (rng_ != nullptr && !has_rng) throw IoError(who + " has no random generator state");
    Rng restored;
    if (rng_ != nullptr) {
      std::istringstream s(rng_state);
      s >> restored;
      if (!s) throw IoError(who + ": the random generator state does not parse");
    }
    if (!ignore_unregistered) {
      // What the file has that nothing registered, by group ("optimizer": 12 tensors).
      const bool training = unregistered == Unregistered::training_state;
      std::map<std::string, std::size_t> extra_groups;
      std::string first_extra;
      for (const auto& [name, t] : tensors) {
        if (registered(name)) continue;
        const std::string group = name.substr(0, name.find('.'));
        if (training && (group == "optimizer" || group == "learner_state")) continue;
        ++extra_groups[group];
        if (first_extra.empty()) first_extra = name;
      }
      std::string extra_counters;
      if (!training)
        for (const auto& [name, v] : counters)
          if (!registered_counter(name))
            extra_counters += (extra_counters.empty() ? "" : ", ") + name;
      std::string extra_texts;
      if (!training)
        for (const auto& [name, v] : texts)
          if (!registered_text(name)) extra_texts += (extra_texts.empty() ? "" : ", ") + name;
      if (!extra_groups.empty() || !extra_counters.empty() || !extra_texts.empty()) {
        std::string what;
        for (const auto& [g, n] : extra_groups)
          what += (what.empty() ? "" : ", ") + std::to_string(n) + " in '" + g + "'" +
                  (g == "optimizer" ? " (optimizer state)" : "");
        if (!extra_counters.empty())
          what += (what.empty() ? "" : ", ") + std::string("counters ") + extra_counters;
        if (!extra_texts.empty())
          what += (what.empty() ? "" : ", ") + std::string("texts ") + extra_texts;
        throw IoError(who + " holds " + std::to_string(tensors.size()) + " tensors and " +
                      std::to_string(counters.size()) + " counters, " + std::to_string(matched) +
                      " and " + std::to_string(counters_.size()) +
                      " expected; not registered here: " + what +
                      (first_extra.empty() ? "" : " (first: '" + first_extra + "')") +
                      ". A training checkpoint? Load the model with meta::load_model or "
                      "Unregistered::training_state, or register the optimizer and counters too (a "
                      "different model? then the model does not fit); Unregistered::ignore for a "
                      "partial load");
      }
    }

    for (auto& g : groups_)
      for (std::size_t i = 0; i < g.list.size(); ++i)
        g.list[i] = tensors.at(g.name + "." + g.list.name(i));
    for (auto& c : counters_) *c.value = counters.at(c.name);
    if (rng_ != nullptr) *rng_ = restored;
  }

  /// What is registered, without the values: each tensor's name and shape, each counter's
  /// name, one line each (two processes that train one model must agree on it).
  std::string layout() const {
    std::string out;
    for (const auto& g : groups_)
      for (std::size_t i = 0; i < g.list.size(); ++i)
        out += g.name + "." + g.list.name(i) + " " + g.list[i].shape().to_string() + "\n";
    for (const auto& c : counters_) out += c.name + "\n";
    for (const auto& t : texts_) out += t.name + " " + t.value + "\n";
    if (rng_ != nullptr) out += "rng\n";
    return out;
  }

 private:
  struct Group {
    std::string name;
    ParameterList<Scalar> list;
  };
  struct Counter {
    std::string name;
    std::int64_t* value;
  };
  struct Text {
    std::string name, value;
  };

  bool registered(const std::string& tensor) const {
    for (const auto& g : groups_)
      for (std::size_t i = 0; i < g.list.size(); ++i)
        if (g.name + "." + g.list.name(i) == tensor) return true;
    return false;
  }
  bool registered_counter(const std::string& name) const {
    for (const auto& c : counters_)
      if (c.name == name) return true;
    return false;
  }
  bool registered_text(const std::string& name) const {
    for (const auto& t : texts_)
      if (t.name == name) return true;
    return false;
  }

  void add_name(const std::string& name) {
    for (const auto& n : names_)
      if (n == name)
        throw InvalidArgument("metalearn::io::Checkpoint: entry '" + name + "' registered twice");
    names_.push_back(name);
  }

  static void write_atomically(const std::string& path, const std::vector<char>& buf) {
    const std::string who = "metalearn::io::Checkpoint::save: '" + path + "'";
    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr) throw IoError(who + ": cannot create '" + tmp + "'");
    // Written in two halves with the test hook between them: a test can stop the process
    // there (tests/io: SIGKILL during a save) and check that `path` is untouched.
    const std::size_t half = buf.size() / 2;
    bool ok = std::fwrite(buf.data(), 1, half, f) == half && std::fflush(f) == 0;
    if (detail::checkpoint_write_hook != nullptr) detail::checkpoint_write_hook(tmp);
    ok = ok && std::fwrite(buf.data() + half, 1, buf.size() - half, f) == buf.size() - half &&
         std::fflush(f) == 0;
#if defined(__unix__) || defined(__APPLE__)
    ok = ok && ::fsync(fileno(f)) == 0;  // the data is on disk before the rename makes it live
#endif
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
      std::remove(tmp.c_str());
      throw IoError(who + ": writing '" + tmp + "' failed (disk full?)");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      std::remove(tmp.c_str());
      throw IoError(who + ": cannot rename '" + tmp + "' into place");
    }
  }

  std::vector<Group> groups_;
  std::vector<Counter> counters_;
  std::vector<Text> texts_;
  Rng* rng_ = nullptr;
  std::vector<std::string> names_;
};

}  // namespace metalearn::io
