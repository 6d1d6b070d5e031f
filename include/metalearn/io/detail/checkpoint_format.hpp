// SPDX-License-Identifier: MIT
/// @file metalearn/io/detail/checkpoint_format.hpp
/// The byte layer of the checkpoint file format (metalearn/io/checkpoint.hpp): its magic,
/// entry kinds and checksum, and the writer and bounds-checked reader of its entries.
#pragma once

#include <cstdint>
#include <cstring>
#include <metalearn/error.hpp>
#include <string>
#include <vector>

namespace metalearn::io {

namespace detail {

inline constexpr char checkpoint_magic[8] = {'M', 'L', 'C', 'K', 'P', 'T', '\r', '\n'};
inline constexpr std::uint32_t endian_marker = 0x01020304;
enum class EntryKind : std::uint8_t { tensor = 1, counter = 2, rng = 3, text = 4 };

/// FNV-1a, 64 bits: cheap, and any flipped or lost byte changes it.
inline std::uint64_t fnv1a(const char* data, std::size_t n) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= 0x100000001b3ULL;
  }
  return h;
}

/// Called in the middle of every checkpoint write with the temporary file's path (tests
/// only: null in normal use).
inline void (*checkpoint_write_hook)(const std::string& tmp_path) = nullptr;

class Writer {
 public:
  template <class T>
  void pod(const T& v) {
    const char* p = reinterpret_cast<const char*>(&v);
    buf_.insert(buf_.end(), p, p + sizeof(T));
  }
  void bytes(const void* p, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    buf_.insert(buf_.end(), c, c + n);
  }
  void string(const std::string& s) {
    pod(static_cast<std::uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  std::vector<char>& buffer() { return buf_; }

 private:
  std::vector<char> buf_;
};

class Reader {
 public:
  Reader(const std::vector<char>& buf, std::size_t end, const std::string& path)
      : buf_(buf), end_(end), path_(path) {}
  template <class T>
  T pod() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  const char* take(std::size_t n) {
    if (n > end_ - pos_)
      throw IoError("metalearn::io::Checkpoint::load: '" + path_ +
                    "' is malformed (entry runs past the end at byte " + std::to_string(pos_) +
                    ")");
    const char* p = buf_.data() + pos_;
    pos_ += n;
    return p;
  }
  std::size_t remaining() const { return end_ - pos_; }
  std::string string() {
    const auto n = pod<std::uint32_t>();
    const char* p = take(n);
    return std::string(p, n);
  }

 private:
  const std::vector<char>& buf_;
  std::size_t end_;
  std::size_t pos_ = 0;
  const std::string& path_;
};

}  // namespace detail

}  // namespace metalearn::io
