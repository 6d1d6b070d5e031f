// SPDX-License-Identifier: MIT
/// @file metalearn/data/pairs.hpp
/// Pair and triplet batches for metric learning (Siamese networks, triplet loss).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <metalearn/data/class_dataset.hpp>
#include <metalearn/data/episode_sampler.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace metalearn::data {

/// B pairs: rows i of `first` and `second`, and `different[i]` = 1 when the two come from
/// different classes, 0 when from the same class. This is the convention of the
/// contrastive loss L = (1 - y) D + y max(0, m - D) (Hadsell et al. 2006), y = different.
template <class Scalar = float>
struct PairBatch {
  Tensor<Scalar> first, second;
  Tensor<Scalar> different;  ///< [B], 0 or 1
};

/// (anchor, positive, negative): anchor and positive share a class, negative does not.
template <class Scalar = float>
struct TripletBatch {
  Tensor<Scalar> anchor, positive, negative;
};

namespace detail {
template <class Scalar>
Shape batch_shape(std::int64_t rows, const ClassDataset<Scalar>& data) {
  const Shape one = data.example_shape();
  std::array<std::int64_t, 4> d{rows, 0, 0, 0};
  for (int i = 0; i < one.rank(); ++i) d[i + 1] = one[i];
  return Shape::from_array(d, one.rank() + 1);
}

template <class Scalar>
std::vector<std::int64_t> checked_classes(const char* who, const ClassDataset<Scalar>& data,
                                          std::vector<std::int64_t> classes) {
  if (classes.empty()) classes = data.all_classes();
  if (classes.size() < 2)
    throw InvalidArgument(std::string(who) + ": need at least 2 classes, got " +
                          std::to_string(classes.size()));
  for (std::int64_t c : classes) {
    if (c < 0 || c >= data.num_classes())
      throw InvalidArgument(std::string(who) + ": class ordinal " + std::to_string(c) +
                            " out of range");
    if (data.examples_of(c).size() < 2)
      throw InvalidArgument(std::string(who) + ": class " + std::to_string(data.class_id(c)) +
                            " has fewer than 2 examples, so it has no positive pairs");
  }
  return classes;
}

/// Two distinct random examples of class c.
template <class Scalar>
std::pair<std::int64_t, std::int64_t> two_of(const ClassDataset<Scalar>& data, std::int64_t c,
                                             Rng& rng) {
  const auto& m = data.examples_of(c);
  const auto n = static_cast<std::uint64_t>(m.size());
  const auto i = uniform_index(rng, n);
  auto j = uniform_index(rng, n - 1);
  if (j >= i) ++j;
  return {m[i], m[j]};
}

/// Two distinct random classes from `classes`.
inline std::pair<std::int64_t, std::int64_t> two_classes(const std::vector<std::int64_t>& classes,
                                                         Rng& rng) {
  const auto n = static_cast<std::uint64_t>(classes.size());
  const auto i = uniform_index(rng, n);
  auto j = uniform_index(rng, n - 1);
  if (j >= i) ++j;
  return {classes[i], classes[j]};
}

template <class Scalar>
std::int64_t one_of(const ClassDataset<Scalar>& data, std::int64_t c, Rng& rng) {
  const auto& m = data.examples_of(c);
  return m[uniform_index(rng, static_cast<std::uint64_t>(m.size()))];
}
}  // namespace detail

/// Hard negatives for PairSampler: with probability `same_group` a different-class pair's
/// second class is another class of the first one's group (`group_of[c]`, e.g. an Omniglot
/// alphabet: the confusions Lake's one-shot runs test), else any class. 0 (the default)
/// draws exactly as without it.
struct PairNegatives {
  std::vector<std::int64_t> group_of;  ///< the group of each class ordinal of the dataset
  double same_group = 0;
};

/// Balanced pair batches: even rows are same-class pairs, odd rows different-class pairs.
/// Classes are drawn uniformly from `classes` (ordinals; all by default); `negatives` may
/// draw the second class of a different pair from the first one's group. The dataset must
/// outlive the sampler.
template <class Scalar = float>
class PairSampler {
 public:
  PairSampler(const ClassDataset<Scalar>& data, std::int64_t batch,
              std::vector<std::int64_t> classes = {}, PairNegatives negatives = {})
      : data_(&data),
        batch_(batch),
        classes_(detail::checked_classes("metalearn::data::PairSampler", data, std::move(classes))),
        same_group_(negatives.same_group) {
    const char* who = "metalearn::data::PairSampler";
    if (batch < 1) throw InvalidArgument(std::string(who) + ": batch must be >= 1");
    if (!(same_group_ >= 0 && same_group_ <= 1))
      throw InvalidArgument(std::string(who) + ": same_group must be in [0, 1], got " +
                            std::to_string(same_group_));
    if (same_group_ == 0) return;
    if (static_cast<std::int64_t>(negatives.group_of.size()) != data.num_classes())
      throw InvalidArgument(std::string(who) + ": group_of has " +
                            std::to_string(negatives.group_of.size()) + " entries for " +
                            std::to_string(data.num_classes()) + " classes");
    std::map<std::int64_t, std::size_t> index_of;  // group id -> its index in groups_
    for (const std::int64_t c : classes_) {
      const std::int64_t g = negatives.group_of[static_cast<std::size_t>(c)];
      const auto [it, added] = index_of.emplace(g, groups_.size());
      if (added) groups_.emplace_back();
      groups_[it->second].push_back(c);
      group_index_.push_back(it->second);
    }
  }

  PairBatch<Scalar> sample(Rng& rng) const {
    PairBatch<Scalar> b;
    b.first = Tensor<Scalar>(detail::batch_shape(batch_, *data_));
    b.second = Tensor<Scalar>(detail::batch_shape(batch_, *data_));
    b.different = Tensor<Scalar>(Shape{batch_});
    const std::int64_t n = data_->example_size();
    for (std::int64_t i = 0; i < batch_; ++i) {
      std::int64_t a, c;
      if (i % 2 == 0) {
        const std::int64_t cls = classes_[uniform_index(rng, classes_.size())];
        std::tie(a, c) = detail::two_of(*data_, cls, rng);
      } else {
        const auto [c1, c2] = different_classes(rng);
        a = detail::one_of(*data_, c1, rng);
        c = detail::one_of(*data_, c2, rng);
      }
      data_->copy_example(a, b.first.data() + i * n);
      data_->copy_example(c, b.second.data() + i * n);
      b.different.data()[i] = Scalar(i % 2);
    }
    return b;
  }

 private:
  std::pair<std::int64_t, std::int64_t> different_classes(Rng& rng) const {
    if (same_group_ == 0 || !(uniform01(rng) < same_group_))
      return detail::two_classes(classes_, rng);
    const auto k = uniform_index(rng, classes_.size());
    const std::vector<std::int64_t>& group = groups_[group_index_[k]];
    if (group.size() < 2) return detail::two_classes(classes_, rng);  // alone in its group
    std::int64_t other = group[uniform_index(rng, group.size() - 1)];
    if (other == classes_[k]) other = group.back();  // the group's other classes, uniformly
    return {classes_[k], other};
  }

  const ClassDataset<Scalar>* data_;
  std::int64_t batch_;
  std::vector<std::int64_t> classes_;
  double same_group_;
  std::vector<std::vector<std::int64_t>> groups_;  // the classes of each group, in order
  std::vector<std::size_t> group_index_;           // classes_[k]'s group in groups_
};

/// Triplet batches: anchor and positive from one class, negative from another.
template <class Scalar = float>
class TripletSampler {
 public:
  TripletSampler(const ClassDataset<Scalar>& data, std::int64_t batch,
                 std::vector<std::int64_t> classes = {})
      : data_(&data),
        batch_(batch),
        classes_(
            detail::checked_classes("metalearn::data::TripletSampler", data, std::move(classes))) {
    if (batch < 1) throw InvalidArgument("metalearn::data::TripletSampler: batch must be >= 1");
  }

  TripletBatch<Scalar> sample(Rng& rng) const {
    TripletBatch<Scalar> b;
    for (auto* t : {&b.anchor, &b.positive, &b.negative})
      *t = Tensor<Scalar>(detail::batch_shape(batch_, *data_));
    const std::int64_t n = data_->example_size();
    for (std::int64_t i = 0; i < batch_; ++i) {
      const auto [pos, neg] = detail::two_classes(classes_, rng);
      const auto [a, p] = detail::two_of(*data_, pos, rng);
      data_->copy_example(a, b.anchor.data() + i * n);
      data_->copy_example(p, b.positive.data() + i * n);
      data_->copy_example(detail::one_of(*data_, neg, rng), b.negative.data() + i * n);
    }
    return b;
  }

 private:
  const ClassDataset<Scalar>* data_;
  std::int64_t batch_;
  std::vector<std::int64_t> classes_;
};

}  // namespace metalearn::data
