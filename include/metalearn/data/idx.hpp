// SPDX-License-Identifier: MIT
/// @file metalearn/data/idx.hpp
/// MNIST-format IDX files (MNIST, Fashion-MNIST, ...): unsigned-byte images and labels, raw
/// or gzip-compressed (.gz, when metalearn was built with zlib).
#pragma once

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#if defined(METALEARN_HAS_ZLIB)
#include <zlib.h>
#endif

#include <metalearn/data/class_dataset.hpp>
#include <metalearn/error.hpp>

namespace metalearn::data {

namespace detail {

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The whole file, decompressed if its name ends in .gz.
inline std::vector<unsigned char> read_file_bytes(const std::string& path, const char* who) {
  if (ends_with(path, ".gz")) {
#if defined(METALEARN_HAS_ZLIB)
    gzFile f = gzopen(path.c_str(), "rb");
    if (f == nullptr) throw IoError(std::string(who) + ": cannot open '" + path + "'");
    std::vector<unsigned char> out;
    unsigned char buf[1 << 16];
    int n = 0;
    while ((n = gzread(f, buf, sizeof(buf))) > 0) out.insert(out.end(), buf, buf + n);
    int err = 0;
    const char* msg = gzerror(f, &err);
    gzclose(f);
    if (n < 0 || (err != Z_OK && err != Z_STREAM_END))
      throw IoError(std::string(who) + ": '" + path + "' is not valid gzip data (" + msg + ")");
    return out;
#else
    throw IoError(std::string(who) + ": '" + path +
                  "' is gzip-compressed and metalearn was built without zlib");
#endif
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(std::string(who) + ": cannot open '" + path + "'");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::uint32_t big_endian_u32(const std::vector<unsigned char>& b, std::size_t at) {
  return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) |
         (std::uint32_t{b[at + 2]} << 8) | b[at + 3];
}

/// Checks the IDX header (magic 0x00 0x00 0x08 rank: unsigned bytes) and returns the dims.
inline std::vector<std::int64_t> idx_dims(const std::vector<unsigned char>& b, std::uint32_t rank,
                                          const std::string& path, const char* who) {
  if (b.size() < 4)
    throw IoError(std::string(who) + ": '" + path + "' is truncated (" + std::to_string(b.size()) +
                  " bytes)");
  if (b[0] != 0 || b[1] != 0 || b[2] != 0x08 || b[3] != rank)
    throw IoError(std::string(who) + ": '" + path + "' has magic number 0x" +
                  [&] {
                    char s[9];
                    std::snprintf(s, sizeof(s), "%08x", big_endian_u32(b, 0));
                    return std::string(s);
                  }() +
                  ", expected 0x000008" +
                  (rank == 3 ? "03 (unsigned-byte images)" : "01 (unsigned-byte labels)"));
  if (b.size() < 4 + 4 * rank)
    throw IoError(std::string(who) + ": '" + path + "' is truncated (" + std::to_string(b.size()) +
                  " bytes)");
  // The product of the dims, stopping as soon as it exceeds the file (no overflow: each
  // dim is < 2^32 and the running product stays <= the file size before a multiply).
  std::vector<std::int64_t> dims;
  std::uint64_t total = 1;
  for (std::uint32_t k = 0; k < rank; ++k) {
    const std::uint32_t d = big_endian_u32(b, 4 + 4 * k);
    dims.push_back(d);
    if (d != 0 && total > b.size() / d) {
      std::string shape;
      for (std::uint32_t j = 0; j < rank; ++j)
        shape += (j ? " x " : "") + std::to_string(big_endian_u32(b, 4 + 4 * j));
      throw IoError(std::string(who) + ": '" + path + "' has " + std::to_string(b.size()) +
                    " bytes, its header says " + shape + " (truncated or corrupt)");
    }
    total *= d;
  }
  const std::size_t need = 4 + 4 * rank + static_cast<std::size_t>(total);
  if (b.size() != need)
    throw IoError(std::string(who) + ": '" + path + "' has " + std::to_string(b.size()) +
                  " bytes, its header says " + std::to_string(need) +
                  (b.size() < need ? " (truncated)" : " (trailing data)"));
  return dims;
}

}  // namespace detail

/// IDX unsigned-byte images as [M, 1, rows, cols] in [0, 1].
template <class Scalar = float>
Tensor<Scalar> load_idx_images(const std::string& path) {
  const char* who = "metalearn::data::load_idx_images";
  const auto b = detail::read_file_bytes(path, who);
  const auto d = detail::idx_dims(b, 3, path, who);
  Tensor<Scalar> t(Shape{d[0], 1, d[1], d[2]});
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = static_cast<Scalar>(b[16 + static_cast<std::size_t>(i)] / 255.0);
  return t;
}

/// IDX unsigned-byte labels.
inline std::vector<std::int64_t> load_idx_labels(const std::string& path) {
  const char* who = "metalearn::data::load_idx_labels";
  const auto b = detail::read_file_bytes(path, who);
  const auto d = detail::idx_dims(b, 1, path, who);
  return std::vector<std::int64_t>(b.begin() + 8, b.end());
}

/// Images and labels as a ClassDataset (throws IoError if their counts differ).
template <class Scalar = float>
ClassDataset<Scalar> load_idx(const std::string& images_path, const std::string& labels_path) {
  Tensor<Scalar> images = load_idx_images<Scalar>(images_path);
  std::vector<std::int64_t> labels = load_idx_labels(labels_path);
  if (static_cast<std::int64_t>(labels.size()) != images.shape()[0])
    throw IoError("metalearn::data::load_idx: '" + images_path + "' has " +
                  std::to_string(images.shape()[0]) + " images, '" + labels_path + "' has " +
                  std::to_string(labels.size()) + " labels");
  return ClassDataset<Scalar>(std::move(images), std::move(labels));
}

}  // namespace metalearn::data
