// SPDX-License-Identifier: MIT
/// @file metalearn/data/episode_sampler.hpp
/// N-way K-shot Q-query classification episodes over a ClassDataset.
#pragma once

#include <array>
#include <cstdint>
#include <metalearn/data/class_dataset.hpp>
#include <metalearn/data/episode.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <utility>
#include <vector>

namespace metalearn::data {

/// Sizes of an N-way K-shot episode.
struct EpisodeOptions {
  std::int64_t ways = 5;
  std::int64_t shots = 1;
  std::int64_t queries = 15;  ///< per class
};

namespace detail {
/// The first k entries of a uniform random permutation of `items` (partial Fisher-Yates
/// with metalearn's own uniform draws: the same on every platform).
inline void choose_without_replacement(std::vector<std::int64_t>& items, std::int64_t k, Rng& rng) {
  const std::int64_t n = static_cast<std::int64_t>(items.size());
  for (std::int64_t i = 0; i < k; ++i) {
    const auto j =
        i + static_cast<std::int64_t>(uniform_index(rng, static_cast<std::uint64_t>(n - i)));
    std::swap(items[static_cast<std::size_t>(i)], items[static_cast<std::size_t>(j)]);
  }
}
}  // namespace detail

/// Draws `ways` classes without replacement from `classes` (ordinals of the dataset; all
/// by default: pass a split's classes to sample from that split only), then shots + queries
/// examples of each without replacement. Labels are remapped to 0..ways-1 in the order the
/// classes were drawn. The dataset must outlive the sampler.
template <class Scalar = float>
class EpisodeSampler {
 public:
  EpisodeSampler(const ClassDataset<Scalar>& data, EpisodeOptions options,
                 std::vector<std::int64_t> classes = {})
      : data_(&data),
        o_(options),
        classes_(classes.empty() ? data.all_classes() : std::move(classes)) {
    const char* who = "metalearn::data::EpisodeSampler";
    if (o_.ways < 1 || o_.shots < 1 || o_.queries < 0)
      throw InvalidArgument(std::string(who) + ": need ways >= 1, shots >= 1, queries >= 0, got " +
                            std::to_string(o_.ways) + ", " + std::to_string(o_.shots) + ", " +
                            std::to_string(o_.queries));
    if (o_.ways > static_cast<std::int64_t>(classes_.size()))
      throw InvalidArgument(std::string(who) + ": " + std::to_string(o_.ways) + " ways but only " +
                            std::to_string(classes_.size()) + " classes to draw from");
    for (std::int64_t c : classes_) {
      if (c < 0 || c >= data.num_classes())
        throw InvalidArgument(std::string(who) + ": class ordinal " + std::to_string(c) +
                              " out of range for " + std::to_string(data.num_classes()) +
                              " classes");
      const auto have = static_cast<std::int64_t>(data.examples_of(c).size());
      if (have < o_.shots + o_.queries)
        throw InvalidArgument(
            std::string(who) + ": class " + std::to_string(data.class_id(c)) + " has " +
            std::to_string(have) +
            " examples, fewer than shots + queries = " + std::to_string(o_.shots + o_.queries));
    }
  }

  Episode<Scalar> sample(Rng& rng) const {
    Episode<Scalar> e;
    e.ways = o_.ways;
    e.shots = o_.shots;
    e.queries = o_.queries;
    std::vector<std::int64_t> pool = classes_;
    detail::choose_without_replacement(pool, o_.ways, rng);
    const Shape one = data_->example_shape();
    e.support_inputs = Tensor<Scalar>(stacked(o_.ways * o_.shots, one));
    e.query_inputs = Tensor<Scalar>(stacked(o_.ways * o_.queries, one));
    const std::int64_t n = data_->example_size();
    for (std::int64_t label = 0; label < o_.ways; ++label) {
      const std::int64_t c = pool[static_cast<std::size_t>(label)];
      e.classes.push_back(data_->class_id(c));
      std::vector<std::int64_t> members = data_->examples_of(c);
      detail::choose_without_replacement(members, o_.shots + o_.queries, rng);
      for (std::int64_t k = 0; k < o_.shots; ++k) {
        data_->copy_example(members[static_cast<std::size_t>(k)],
                            e.support_inputs.data() + (label * o_.shots + k) * n);
        e.support_labels.push_back(label);
      }
      for (std::int64_t k = 0; k < o_.queries; ++k) {
        data_->copy_example(members[static_cast<std::size_t>(o_.shots + k)],
                            e.query_inputs.data() + (label * o_.queries + k) * n);
        e.query_labels.push_back(label);
      }
    }
    return e;
  }

  const EpisodeOptions& options() const { return o_; }
  const std::vector<std::int64_t>& classes() const { return classes_; }

 private:
  static Shape stacked(std::int64_t rows, const Shape& one) {
    std::array<std::int64_t, 4> d{rows, 0, 0, 0};
    for (int i = 0; i < one.rank(); ++i) d[i + 1] = one[i];
    return Shape::from_array(d, one.rank() + 1);
  }

  const ClassDataset<Scalar>* data_;
  EpisodeOptions o_;
  std::vector<std::int64_t> classes_;
};

}  // namespace metalearn::data
