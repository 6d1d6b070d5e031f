// SPDX-License-Identifier: MIT
/// @file metalearn/data/image_folder.hpp
/// Image folders in the Omniglot layout, ROOT/group/class/*.png, as a ClassDataset of
/// [1, N, N] images, with a binary cache so the second load is fast.
#pragma once

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <metalearn/data/class_dataset.hpp>
#include <metalearn/data/image.hpp>
#include <metalearn/error.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace metalearn::data {

/// Options of load_image_folder.
struct ImageFolderOptions {
  std::int64_t size = 28;  ///< images resized to size x size by area averaging
  bool invert = true;      ///< 1 - value: Omniglot's black strokes on white become 1 on 0
  /// Binary cache file (empty: none). Reused when it matches the folder (same files, sizes,
  /// modification times) and the options; rebuilt and rewritten atomically otherwise.
  std::string cache;
};

/// A loaded image folder: the dataset (examples [M, 1, size, size], one class per
/// ROOT/group/class folder, class ids 0.. in sorted path order), and where classes came from.
struct ImageFolder {
  ClassDataset<float> data;
  std::vector<std::string> class_names;  ///< "group/class"
  std::vector<std::int64_t> group_of;    ///< group index of each class ordinal
  std::vector<std::string> group_names;
};

namespace detail {

inline bool is_image_file(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".pgm";
}

inline std::vector<std::filesystem::path> sorted_entries(const std::filesystem::path& dir,
                                                         bool dirs) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (dirs ? e.is_directory() : (e.is_regular_file() && is_image_file(e.path())))
      out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

/// FNV-1a over raw bytes.
inline std::uint64_t bytes_hash(const void* p, std::size_t n,
                                std::uint64_t h = 0xcbf29ce484222325ULL) {
  const auto* c = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= c[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

/// Identity of the folder's contents for the cache: every file's relative path, size and
/// modification time, hashed (FNV-1a), plus the options.
inline std::uint64_t folder_key(const std::filesystem::path& root,
                                const std::vector<std::filesystem::path>& files,
                                const ImageFolderOptions& o) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto mix = [&h](const void* p, std::size_t n) { h = bytes_hash(p, n, h); };
  mix(&o.size, sizeof(o.size));
  const char inv = o.invert ? 1 : 0;
  mix(&inv, 1);
  for (const auto& f : files) {
    // Paths below root (files were listed from root, so the prefix is literal; cheaper
    // than std::filesystem::relative, which resolves every component on disk).
    const std::string rel = f.generic_string().substr(root.generic_string().size());
    mix(rel.data(), rel.size());
    const auto bytes = static_cast<std::uint64_t>(std::filesystem::file_size(f));
    const auto time = std::filesystem::last_write_time(f).time_since_epoch().count();
    mix(&bytes, sizeof(bytes));
    mix(&time, sizeof(time));
  }
  return h;
}

inline constexpr char image_cache_magic[8] = {'M', 'L', 'I', 'M', 'G', 'C', '1', '\n'};

inline bool read_cache(const std::string& path, std::uint64_t key, std::int64_t count,
                       std::int64_t size, std::vector<float>& pixels) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  char magic[8];
  std::uint64_t stored_key = 0;
  std::int64_t stored_count = 0, stored_size = 0;
  in.read(magic, 8);
  in.read(reinterpret_cast<char*>(&stored_key), sizeof(stored_key));
  in.read(reinterpret_cast<char*>(&stored_count), sizeof(stored_count));
  in.read(reinterpret_cast<char*>(&stored_size), sizeof(stored_size));
  if (!in || std::memcmp(magic, image_cache_magic, 8) != 0 || stored_key != key ||
      stored_count != count || stored_size != size)
    return false;
  pixels.resize(static_cast<std::size_t>(count * size * size));
  in.read(reinterpret_cast<char*>(pixels.data()),
          static_cast<std::streamsize>(pixels.size() * sizeof(float)));
  std::uint64_t stored_sum = 0;
  in.read(reinterpret_cast<char*>(&stored_sum), sizeof(stored_sum));
  // A damaged cache is not an error: it is rebuilt from the images.
  return static_cast<bool>(in) && in.peek() == std::char_traits<char>::eof() &&
         stored_sum == bytes_hash(pixels.data(), pixels.size() * sizeof(float));
}

// A temporary name of this writer's own: processes started together (mpirun, two runs in
// one folder) build the cache at once, and each moves its complete file into place (the
// rename replaces atomically), so none reads a half-written one or loses its temporary.
inline std::string unique_temporary(const std::string& path) {
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  const auto thread = std::hash<std::thread::id>{}(std::this_thread::get_id());
  std::uint64_t h = bytes_hash(&now, sizeof(now));
  h = bytes_hash(&thread, sizeof(thread), h);
  std::random_device entropy;  // differs between processes that start in the same tick
  const unsigned extra = entropy();
  h = bytes_hash(&extra, sizeof(extra), h);
  return path + ".tmp." + std::to_string(h);
}

inline void write_cache(const std::string& path, std::uint64_t key, std::int64_t count,
                        std::int64_t size, const std::vector<float>& pixels) {
  const std::string tmp = unique_temporary(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(image_cache_magic, 8);
    out.write(reinterpret_cast<const char*>(&key), sizeof(key));
    out.write(reinterpret_cast<const char*>(&count), sizeof(count));
    out.write(reinterpret_cast<const char*>(&size), sizeof(size));
    out.write(reinterpret_cast<const char*>(pixels.data()),
              static_cast<std::streamsize>(pixels.size() * sizeof(float)));
    const std::uint64_t sum = bytes_hash(pixels.data(), pixels.size() * sizeof(float));
    out.write(reinterpret_cast<const char*>(&sum), sizeof(sum));
    if (!out) {
      std::remove(tmp.c_str());
      throw IoError("metalearn::data::load_image_folder: cannot write cache '" + tmp + "'");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw IoError("metalearn::data::load_image_folder: cannot move cache into place at '" + path +
                  "'");
  }
}

}  // namespace detail

/// Load ROOT/group/class/*.png (any number of groups and classes; Omniglot's
/// images_background and images_evaluation). All images must have one size; each is
/// decoded to grey, resized to options.size by area averaging and optionally inverted.
/// Throws IoError naming the folder or file for a missing folder, an empty one, an
/// unreadable or corrupt image, or images of mixed sizes.
inline ImageFolder load_image_folder(const std::string& root_path,
                                     const ImageFolderOptions& options = {}) try {
  namespace fs = std::filesystem;
  const std::string who = "metalearn::data::load_image_folder: ";
  if (options.size < 1) throw InvalidArgument(who + "size must be >= 1");
  const fs::path root(root_path);
  if (!fs::is_directory(root)) throw IoError(who + "'" + root_path + "' is not a folder");
  ImageFolder result{ClassDataset<float>(Tensor<float>(Shape{1, 1}), {0}), {}, {}, {}};
  std::vector<fs::path> files;
  std::vector<std::int64_t> labels;
  for (const auto& group : detail::sorted_entries(root, true)) {
    bool group_used = false;
    for (const auto& cls : detail::sorted_entries(group, true)) {
      const auto images = detail::sorted_entries(cls, false);
      if (images.empty()) continue;
      if (!group_used) {
        result.group_names.push_back(group.filename().string());
        group_used = true;
      }
      const auto id = static_cast<std::int64_t>(result.class_names.size());
      result.class_names.push_back(group.filename().string() + "/" + cls.filename().string());
      result.group_of.push_back(static_cast<std::int64_t>(result.group_names.size()) - 1);
      for (const auto& f : images) {
        files.push_back(f);
        labels.push_back(id);
      }
    }
  }
  if (files.empty())
    throw IoError(who + "no images under '" + root_path + "' (expected ROOT/group/class/*.png)");

  const auto count = static_cast<std::int64_t>(files.size());
  const std::int64_t n = options.size;
  std::vector<float> pixels;
  const std::uint64_t key = options.cache.empty() ? 0 : detail::folder_key(root, files, options);
  if (options.cache.empty() || !detail::read_cache(options.cache, key, count, n, pixels)) {
    pixels.assign(static_cast<std::size_t>(count * n * n), 0.0f);
    std::int64_t h0 = -1, w0 = -1;
    for (std::int64_t i = 0; i < count; ++i) {
      const std::string file = files[static_cast<std::size_t>(i)].string();
      const GreyImage img = read_grey_image(file);
      if (h0 < 0) {
        h0 = img.height;
        w0 = img.width;
      } else if (img.height != h0 || img.width != w0) {
        throw IoError(who + "images of mixed sizes: '" + file + "' is " +
                      std::to_string(img.width) + "x" + std::to_string(img.height) + ", '" +
                      files[0].string() + "' is " + std::to_string(w0) + "x" + std::to_string(h0));
      }
      const GreyImage small = resize_area(img, n);
      float* dst = pixels.data() + i * n * n;
      for (std::int64_t k = 0; k < n * n; ++k)
        dst[k] = options.invert ? 1.0f - small.pixels[static_cast<std::size_t>(k)]
                                : small.pixels[static_cast<std::size_t>(k)];
    }
    if (!options.cache.empty()) detail::write_cache(options.cache, key, count, n, pixels);
  }
  result.data = ClassDataset<float>(Tensor<float>(Shape{count, 1, n, n}, std::move(pixels)),
                                    std::move(labels));
  return result;
} catch (const std::filesystem::filesystem_error& e) {
  // Any file-system failure (permissions, a name too long, a file vanishing mid-read)
  // becomes an IoError like every other bad input.
  throw IoError(std::string("metalearn::data::load_image_folder: ") + e.what());
}

}  // namespace metalearn::data
