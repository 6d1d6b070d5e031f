// SPDX-License-Identifier: MIT
/// @file metalearn/data/image.hpp
/// Reading one greyscale image (PNG, JPEG, BMP... through stb_image) and resizing it by area
/// averaging. Needs Debian's libstb-dev (`<stb/stb_image.h>`).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
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

/// Decode a file to greyscale in [0, 1]. Throws IoError naming the file and stb's reason,
/// or when the header declares more pixels than the file could hold: no format here
/// compresses better than deflate's 1032:1, at most 8 pixels a byte (1-bit PNG), so a few
/// bytes declaring a huge image (which stb would allocate and decode, padding with zeros)
/// is corrupt, and rejected before any decoding.
inline GreyImage read_grey_image(const std::string& path) {
  const char* who = "metalearn::data::read_grey_image: ";
  int w = 0, h = 0, channels = 0;
  if (stbi_info(path.c_str(), &w, &h, &channels) == 0)
    throw IoError(who + ("cannot decode '" + path + "': ") +
                  (stbi_failure_reason() ? stbi_failure_reason() : "unknown error"));
  std::error_code ec;
  const auto bytes = static_cast<double>(std::filesystem::file_size(path, ec));
  const double pixels = static_cast<double>(w) * static_cast<double>(h);
  if (ec || w <= 0 || h <= 0 || pixels > 8.0 * 1032.0 * bytes + 4096.0 || pixels > 1e9)
    throw IoError(who + ("'" + path + "' declares ") + std::to_string(w) + " x " +
                  std::to_string(h) + " pixels in " +
                  std::to_string(static_cast<long long>(bytes)) + " bytes (corrupt or truncated)");
  unsigned char* data = stbi_load(path.c_str(), &w, &h, &channels, 1);
  if (data == nullptr)
    throw IoError("metalearn::data::read_grey_image: cannot decode '" + path +
                  "': " + (stbi_failure_reason() ? stbi_failure_reason() : "unknown error"));
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
