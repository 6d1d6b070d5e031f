// SPDX-License-Identifier: MIT
/// @file metalearn/data/lake.hpp
/// Lake et al.'s one-shot classification runs (Science 2015): ROOT/runNN/training/*.png (one
/// image per class), ROOT/runNN/test/*.png, and ROOT/runNN/class_labels.txt with lines
/// "runNN/test/itemXX.png runNN/training/classYY.png". Each run is a 20-way 1-shot episode.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <metalearn/data/episode.hpp>
#include <metalearn/data/image.hpp>
#include <metalearn/data/image_folder.hpp>
#include <metalearn/error.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace metalearn::data {

/// One run: the episode (support = the training images in file-name order, labels 0..K-1;
/// query = the test images in class_labels.txt order) and its folder name.
struct LakeRun {
  std::string name;
  Episode<float> episode;
};

namespace detail {
inline void put_image(const std::string& file, const ImageFolderOptions& o, float* dst) {
  const GreyImage img = resize_area(read_grey_image(file), o.size);
  for (std::size_t k = 0; k < img.pixels.size(); ++k)
    dst[k] = o.invert ? 1.0f - img.pixels[k] : img.pixels[k];
}
}  // namespace detail

/// Read every ROOT/run*/ folder (sorted), scoring-ready. Images are resized and inverted as
/// in `options` (use the same as for training). Throws IoError naming the file (and line)
/// for a missing folder or file, a malformed class_labels.txt, or an unknown class image.
inline std::vector<LakeRun> load_lake_runs(const std::string& root_path,
                                           const ImageFolderOptions& options = {}) try {
  namespace fs = std::filesystem;
  const std::string who = "metalearn::data::load_lake_runs: ";
  const fs::path root(root_path);
  if (!fs::is_directory(root)) throw IoError(who + "'" + root_path + "' is not a folder");
  std::vector<fs::path> runs;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && e.path().filename().string().rfind("run", 0) == 0)
      runs.push_back(e.path());
  std::sort(runs.begin(), runs.end());
  if (runs.empty()) throw IoError(who + "no run* folders in '" + root_path + "'");
  const std::int64_t n = options.size;
  std::vector<LakeRun> out;
  for (const auto& run : runs) {
    const fs::path training = run / "training", labels_file = run / "class_labels.txt";
    if (!fs::is_directory(training)) throw IoError(who + "'" + training.string() + "' is missing");
    const auto classes = detail::sorted_entries(training, false);
    if (classes.empty()) throw IoError(who + "no images in '" + training.string() + "'");
    std::ifstream in(labels_file);
    if (!in) throw IoError(who + "cannot open '" + labels_file.string() + "'");
    std::vector<std::pair<fs::path, std::int64_t>> queries;
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      std::istringstream fields(line);
      std::string test, train, extra;
      if (!(fields >> test >> train) || (fields >> extra))
        throw IoError(who + "'" + labels_file.string() + "' line " + std::to_string(line_no) +
                      ": expected 'runNN/test/item.png runNN/training/class.png', got '" + line +
                      "'");
      const fs::path test_path = root / test, train_path = root / train;
      const auto it = std::find(classes.begin(), classes.end(), train_path);
      if (it == classes.end())
        throw IoError(who + "'" + labels_file.string() + "' line " + std::to_string(line_no) +
                      ": '" + train + "' is not an image in '" + training.string() + "'");
      if (!fs::is_regular_file(test_path))
        throw IoError(who + "'" + labels_file.string() + "' line " + std::to_string(line_no) +
                      ": '" + test_path.string() + "' does not exist");
      queries.emplace_back(test_path, static_cast<std::int64_t>(it - classes.begin()));
    }
    if (queries.empty()) throw IoError(who + "'" + labels_file.string() + "' lists no test images");
    LakeRun r;
    r.name = run.filename().string();
    Episode<float>& e = r.episode;
    const auto ways = static_cast<std::int64_t>(classes.size());
    e.ways = ways;
    e.shots = 1;
    e.queries = 1;
    e.support_inputs = Tensor<float>(Shape{ways, 1, n, n});
    e.query_inputs = Tensor<float>(Shape{static_cast<std::int64_t>(queries.size()), 1, n, n});
    for (std::int64_t c = 0; c < ways; ++c) {
      detail::put_image(classes[static_cast<std::size_t>(c)].string(), options,
                        e.support_inputs.data() + c * n * n);
      e.support_labels.push_back(c);
      e.classes.push_back(c);
    }
    for (std::size_t q = 0; q < queries.size(); ++q) {
      detail::put_image(queries[q].first.string(), options,
                        e.query_inputs.data() + static_cast<std::int64_t>(q) * n * n);
      e.query_labels.push_back(queries[q].second);
    }
    out.push_back(std::move(r));
  }
  return out;
} catch (const std::filesystem::filesystem_error& e) {
  // Any file-system failure (permissions, a name too long, a file vanishing mid-read)
  // becomes an IoError like every other bad input.
  throw IoError(std::string("metalearn::data::load_lake_runs: ") + e.what());
}

}  // namespace metalearn::data
