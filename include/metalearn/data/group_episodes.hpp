// SPDX-License-Identifier: MIT
/// @file metalearn/data/group_episodes.hpp
/// Episodes in the style of Lake et al.'s one-shot runs (Science 2015): all classes of an
/// episode from one group (an Omniglot alphabet), and the support and query images of
/// different drawers. To validate on alphabets held out of the background set the way the
/// published runs test, which are not part of the data metalearn is given.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <metalearn/data/class_dataset.hpp>
#include <metalearn/data/episode.hpp>
#include <metalearn/data/episode_sampler.hpp>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <vector>

namespace metalearn::data {

/// Draws a group (uniformly among those with at least `ways` classes in `classes`), then
/// `ways` of its classes without replacement, then shots + queries *positions* without
/// replacement, the same for every class: support example k of each class is the class's
/// example at position p_k, query examples at the other positions. In an Omniglot folder
/// loaded by load_image_folder the examples of a character are its files in name order,
/// "<character>_<drawer>.png", so position = drawer: the support images are all by some
/// drawers and the query images by others, as in Lake's runs (20-way 1-shot: one drawer
/// for the support set, another for the queries).
///
/// `group_of[c]` is the group of class ordinal c (ImageFolder::group_of; for a dataset made
/// by with_rotations, class 4k + r belongs to group_of[k]: pass the expanded list).
template <class Scalar = float>
class GroupEpisodeSampler {
 public:
  GroupEpisodeSampler(const ClassDataset<Scalar>& data, std::vector<std::int64_t> group_of,
                      EpisodeOptions options, std::vector<std::int64_t> classes = {})
      : data_(&data), o_(options), group_of_(std::move(group_of)) {
    const char* who = "metalearn::data::GroupEpisodeSampler";
    if (static_cast<std::int64_t>(group_of_.size()) != data.num_classes())
      throw InvalidArgument(std::string(who) + ": group_of has " +
                            std::to_string(group_of_.size()) + " entries for " +
                            std::to_string(data.num_classes()) + " classes");
    if (o_.ways < 1 || o_.shots < 1 || o_.queries < 1)
      throw InvalidArgument(std::string(who) + ": need ways, shots and queries >= 1");
    if (classes.empty()) classes = data.all_classes();
    for (const std::int64_t c : classes) {
      if (c < 0 || c >= data.num_classes())
        throw InvalidArgument(std::string(who) + ": class ordinal " + std::to_string(c) +
                              " out of range");
      const auto size = static_cast<std::int64_t>(data.examples_of(c).size());
      if (size < o_.shots + o_.queries)
        throw InvalidArgument(std::string(who) + ": class " + std::to_string(data.class_id(c)) +
                              " has " + std::to_string(size) +
                              " examples, fewer than shots + queries");
      const std::int64_t g = group_of_[static_cast<std::size_t>(c)];
      auto it = std::find(group_ids_.begin(), group_ids_.end(), g);
      if (it == group_ids_.end()) {
        group_ids_.push_back(g);
        members_.emplace_back();
        it = group_ids_.end() - 1;
      }
      members_[static_cast<std::size_t>(it - group_ids_.begin())].push_back(c);
    }
    for (std::size_t k = 0; k < members_.size(); ++k)
      if (static_cast<std::int64_t>(members_[k].size()) >= o_.ways) eligible_.push_back(k);
    if (eligible_.empty())
      throw InvalidArgument(std::string(who) + ": no group has " + std::to_string(o_.ways) +
                            " classes");
  }

  Episode<Scalar> sample(Rng& rng) const {
    const std::size_t group =
        eligible_[static_cast<std::size_t>(uniform_index(rng, eligible_.size()))];
    std::vector<std::int64_t> pool = members_[group];
    detail::choose_without_replacement(pool, o_.ways, rng);
    pool.resize(static_cast<std::size_t>(o_.ways));
    std::int64_t smallest = -1;  // positions every chosen class has
    for (const auto c : pool) {
      const auto n = static_cast<std::int64_t>(data_->examples_of(c).size());
      smallest = smallest < 0 ? n : std::min(smallest, n);
    }
    std::vector<std::int64_t> positions(static_cast<std::size_t>(smallest));
    for (std::int64_t i = 0; i < smallest; ++i) positions[static_cast<std::size_t>(i)] = i;
    detail::choose_without_replacement(positions, o_.shots + o_.queries, rng);

    std::vector<std::int64_t> support_labels, query_labels;
    const Shape one = data_->example_shape();
    const auto rows = [&](std::int64_t n) {
      std::array<std::int64_t, 4> d{n, 0, 0, 0};
      for (int i = 0; i < one.rank(); ++i) d[static_cast<std::size_t>(i) + 1] = one[i];
      return Shape::from_array(d, one.rank() + 1);
    };
    Tensor<Scalar> support(rows(o_.ways * o_.shots)), query(rows(o_.ways * o_.queries));
    const std::int64_t size = data_->example_size();
    for (std::int64_t label = 0; label < o_.ways; ++label) {
      const auto& examples = data_->examples_of(pool[static_cast<std::size_t>(label)]);
      for (std::int64_t k = 0; k < o_.shots; ++k) {
        data_->copy_example(
            examples[static_cast<std::size_t>(positions[static_cast<std::size_t>(k)])],
            support.data() + (label * o_.shots + k) * size);
        support_labels.push_back(label);
      }
      for (std::int64_t k = 0; k < o_.queries; ++k) {
        const auto p = positions[static_cast<std::size_t>(o_.shots + k)];
        data_->copy_example(examples[static_cast<std::size_t>(p)],
                            query.data() + (label * o_.queries + k) * size);
        query_labels.push_back(label);
      }
    }
    Episode<Scalar> e = Episode<Scalar>::classification(
        std::move(support), std::move(support_labels), std::move(query), std::move(query_labels));
    e.classes.clear();
    for (const auto c : pool) e.classes.push_back(data_->class_id(c));
    return e;
  }

  const EpisodeOptions& options() const { return o_; }

 private:
  const ClassDataset<Scalar>* data_;
  EpisodeOptions o_;
  std::vector<std::int64_t> group_of_;
  std::vector<std::int64_t> group_ids_;             // distinct groups, first-seen order
  std::vector<std::vector<std::int64_t>> members_;  // class ordinals of each group
  std::vector<std::size_t> eligible_;               // groups with >= ways classes
};

}  // namespace metalearn::data
