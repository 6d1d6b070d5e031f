// SPDX-License-Identifier: MIT
/// @file metalearn/data/omniglot.hpp
/// Omniglot as the few-shot literature prepares it (Vinyals et al. 2016, Snell et al. 2017,
/// Finn et al. 2017): every rotation by 90 degrees is a class of its own, and classes are
/// split by alphabet, so validation and test characters come from alphabets never seen in
/// training (Lake et al. 2015's background / evaluation division, repeated inside a folder).
#pragma once

#include <cstdint>
#include <metalearn/data/class_dataset.hpp>
#include <metalearn/data/image_folder.hpp>
#include <metalearn/data/split.hpp>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <vector>

namespace metalearn::data {

/// A prepared Omniglot folder.
struct Omniglot {
  /// with_rotations of the folder's images: class 4k + r is the folder's class k rotated
  /// by r x 90 degrees (ids equal ordinals).
  ClassDataset<float> data;
  std::vector<std::int64_t> train, validation, test;  ///< class ordinals of `data`
  std::vector<std::string> alphabets;                 ///< the folder's group names
  std::vector<std::int64_t> alphabet_of;              ///< the alphabet of each class ordinal
};

/// How many alphabets split_omniglot holds out; the rest are for training.
struct OmniglotSplit {
  std::int64_t validation_alphabets = 5;
  std::int64_t test_alphabets = 5;
};

namespace detail {
inline std::vector<std::int64_t> with_rotated_ordinals(const std::vector<std::int64_t>& classes) {
  std::vector<std::int64_t> r;
  r.reserve(4 * classes.size());
  for (const std::int64_t c : classes)
    for (std::int64_t k = 0; k < 4; ++k) r.push_back(4 * c + k);
  return r;
}
inline Omniglot rotated_omniglot(const ImageFolder& folder) {
  Omniglot out{with_rotations(folder.data), {}, {}, {}, folder.group_names, {}};
  out.alphabet_of.reserve(4 * folder.group_of.size());
  for (const std::int64_t g : folder.group_of)
    for (int r = 0; r < 4; ++r) out.alphabet_of.push_back(g);
  return out;
}
}  // namespace detail

/// `folder` (load_image_folder of an Omniglot folder) with rotations as classes and its
/// alphabets split at random (from `rng`) into training, `split.validation_alphabets` and
/// `split.test_alphabets`; at least one alphabet must remain for training.
inline Omniglot split_omniglot(const ImageFolder& folder, const OmniglotSplit& split, Rng& rng) {
  const auto groups = static_cast<std::int64_t>(folder.group_names.size());
  if (split.validation_alphabets < 0 || split.test_alphabets < 0 ||
      groups < split.validation_alphabets + split.test_alphabets + 1)
    throw InvalidArgument(
        "metalearn::data::split_omniglot: the folder has " + std::to_string(groups) +
        " alphabets; " + std::to_string(split.validation_alphabets) + " for validation and " +
        std::to_string(split.test_alphabets) + " for test need at least one more for training");
  const ClassSplit s =
      split_by_group(folder.group_of, groups - split.validation_alphabets - split.test_alphabets,
                     split.validation_alphabets, rng);
  Omniglot out = detail::rotated_omniglot(folder);
  out.train = detail::with_rotated_ordinals(s.train);
  out.validation = detail::with_rotated_ordinals(s.validation);
  out.test = detail::with_rotated_ordinals(s.test);
  return out;
}

/// Every class of `folder`, rotations included, for testing only (train and validation
/// empty): the standard protocol trains on images_background and scores all alphabets of
/// images_evaluation.
inline Omniglot omniglot_test_set(const ImageFolder& folder) {
  if (folder.group_of.empty())
    throw InvalidArgument("metalearn::data::omniglot_test_set: the folder has no classes");
  Omniglot out = detail::rotated_omniglot(folder);
  std::vector<std::int64_t> all(folder.group_of.size());
  for (std::size_t c = 0; c < all.size(); ++c) all[c] = static_cast<std::int64_t>(c);
  out.test = detail::with_rotated_ordinals(all);
  return out;
}

}  // namespace metalearn::data
