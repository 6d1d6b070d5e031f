// SPDX-License-Identifier: MIT
/// @file metalearn/data/image.hpp
/// Reading one greyscale image (PNG, JPEG, BMP... through stb_image) and resizing it by area
/// averaging. Needs Debian's libstb-dev (`<stb/stb_image.h>`).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <metalearn/error.hpp>
#include <string>
#include <vector>

#if !__has_include(<stb/stb_image.h>)
#error \
    "metalearn/data/image.hpp needs stb_image: install libstb-dev (Debian) or put stb/stb_image.h on the include path"
#endif

// stb_image is itself header-only; compiled here with internal linkage (STB_IMAGE_STATIC),
// so every translation unit that includes metalearn gets its own private copy and no
// symbol clashes with an application that uses stb itself.
#if !defined(STBI_INCLUDE_STB_IMAGE_H)
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_PGM
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif

namespace metalearn::data {

/// A greyscale image with values in [0, 1], row-major.
struct GreyImage {
  std::int64_t height = 0, width = 0;
  std::vector<float> pixels;
};

namespace detail {
/// A PNG's chunks must fit in the file: stb reserves a chunk's declared length before
/// reading it, so a few bytes declaring a 2 GB IDAT chunk would allocate 2 GB. Returns an
/// empty string when the chunks fit (or the bytes are not a PNG), else what is wrong.
inline std::string png_chunk_problem(const std::vector<unsigned char>& b) {
  static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (b.size() < 8 || !std::equal(signature, signature + 8, b.begin())) return "";
  std::size_t at = 8;
  while (at + 8 <= b.size()) {
    const std::uint64_t length = (std::uint64_t{b[at]} << 24) | (std::uint64_t{b[at + 1]} << 16) |
                                 (std::uint64_t{b[at + 2]} << 8) | b[at + 3];
    if (length + 12 > b.size() - at)
      return "a PNG chunk at byte " + std::to_string(at) + " declares " + std::to_string(length) +
             " bytes, only " + std::to_string(b.size() - at) + " remain";
    if (std::equal(b.begin() + static_cast<std::ptrdiff_t>(at) + 4,
                   b.begin() + static_cast<std::ptrdiff_t>(at) + 8, "IEND"))
      break;
    at += 12 + static_cast<std::size_t>(length);
  }
  return "";
}
}  // namespace detail

/// Decode a file to greyscale in [0, 1]. Throws IoError naming the file and the problem:
/// stb's reason, a PNG chunk longer than the file, or a header declaring more pixels than
/// the file could hold (no format here compresses better than deflate's 1032:1, at most 8
/// pixels a byte for 1-bit PNG). The last two are checked before decoding, so a few corrupt
/// bytes cannot make stb allocate gigabytes or decode for seconds.
inline GreyImage read_grey_image(const std::string& path) {
  const std::string who = "metalearn::data::read_grey_image: '" + path + "'";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(who + " cannot be opened");
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                         std::istreambuf_iterator<char>());
  if (bytes.size() > (std::size_t{1} << 31))
    throw IoError(who + " is larger than 2 GiB (" + std::to_string(bytes.size()) + " bytes)");
  const std::string chunk_problem = detail::png_chunk_problem(bytes);
  if (!chunk_problem.empty()) throw IoError(who + ": " + chunk_problem + " (corrupt or truncated)");
  const auto size = static_cast<int>(bytes.size());
  const auto fail = [&] {
    return IoError(who + " cannot be decoded: " +
                   (stbi_failure_reason() ? stbi_failure_reason() : "unknown error"));
  };
  int w = 0, h = 0, channels = 0;
  if (stbi_info_from_memory(bytes.data(), size, &w, &h, &channels) == 0) throw fail();
  const double pixels = static_cast<double>(w) * static_cast<double>(h);
  if (w <= 0 || h <= 0 || pixels > 8.0 * 1032.0 * static_cast<double>(size) + 4096.0 ||
      pixels > 1e9)
    throw IoError(who + " declares " + std::to_string(w) + " x " + std::to_string(h) +
                  " pixels in " + std::to_string(size) + " bytes (corrupt or truncated)");
  unsigned char* data = stbi_load_from_memory(bytes.data(), size, &w, &h, &channels, 1);
  if (data == nullptr) throw fail();
  GreyImage img;
  img.height = h;
  img.width = w;
  img.pixels.resize(static_cast<std::size_t>(w) * static_cast<std::size_t>(h));
  for (std::size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = data[i] / 255.0f;
  stbi_image_free(data);
  return img;
}

namespace detail {
/// 1-D area resampling: output cell o averages input [o n/m, (o+1) n/m) with fractional
/// weights at the ends. Applied along rows, then columns.
inline std::vector<float> area_resample(const std::vector<float>& in, std::int64_t lines,
                                        std::int64_t n, std::int64_t m, bool along_rows) {
  std::vector<float> out(static_cast<std::size_t>(lines * m));
  const double scale = static_cast<double>(n) / static_cast<double>(m);
  for (std::int64_t l = 0; l < lines; ++l)
    for (std::int64_t o = 0; o < m; ++o) {
      const double lo = o * scale, hi = (o + 1) * scale;
      double acc = 0;
      for (auto i = static_cast<std::int64_t>(lo); i < n && i < hi; ++i) {
        const double w = std::min<double>(i + 1, hi) - std::max<double>(i, lo);
        const float v = along_rows ? in[static_cast<std::size_t>(l * n + i)]
                                   : in[static_cast<std::size_t>(i * lines + l)];
        acc += w * v;
      }
      const auto at = along_rows ? l * m + o : o * lines + l;
      out[static_cast<std::size_t>(at)] = static_cast<float>(acc / scale);
    }
  return out;
}
}  // namespace detail

/// Resize to size x size by area averaging (each output pixel is the mean of the input area
/// it covers: the right filter for shrinking 105x105 Omniglot strokes to 28x28).
inline GreyImage resize_area(const GreyImage& img, std::int64_t size) {
  if (size < 1) throw InvalidArgument("metalearn::data::resize_area: size must be >= 1");
  GreyImage out;
  out.height = out.width = size;
  const auto rows =
      detail::area_resample(img.pixels, img.height, img.width, size, true);  // [H, size]
  out.pixels = detail::area_resample(rows, size, img.height, size, false);   // [size, size]
  return out;
}

}  // namespace metalearn::data
