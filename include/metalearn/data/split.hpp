// SPDX-License-Identifier: MIT
/// @file metalearn/data/split.hpp
/// Meta-train / meta-validation / meta-test splits of classes, by class or by group.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <metalearn/data/episode_sampler.hpp>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <vector>

namespace metalearn::data {

/// Class ordinals of each split, each list sorted.
struct ClassSplit {
  std::vector<std::int64_t> train, validation, test;
};

/// A random split of classes 0..num_classes-1: `train` and `validation` classes, the rest for
/// test. Deterministic given the generator's state.
inline ClassSplit split_classes(std::int64_t num_classes, std::int64_t train,
                                std::int64_t validation, Rng& rng) {
  if (train < 0 || validation < 0 || train + validation > num_classes)
    throw InvalidArgument("metalearn::data::split_classes: " + std::to_string(train) + " train + " +
                          std::to_string(validation) + " validation classes out of " +
                          std::to_string(num_classes));
  std::vector<std::int64_t> order(static_cast<std::size_t>(num_classes));
  for (std::int64_t i = 0; i < num_classes; ++i) order[static_cast<std::size_t>(i)] = i;
  detail::choose_without_replacement(order, num_classes, rng);
  ClassSplit s;
  s.train.assign(order.begin(), order.begin() + train);
  s.validation.assign(order.begin() + train, order.begin() + train + validation);
  s.test.assign(order.begin() + train + validation, order.end());
  for (auto* v : {&s.train, &s.validation, &s.test}) std::sort(v->begin(), v->end());
  return s;
}

/// A split by group (for Omniglot, by alphabet, so no alphabet is seen in training and
/// evaluation both): `group_of[c]` is the group of class ordinal c; `train` and `validation`
/// groups are drawn at random, the remaining groups go to test.
inline ClassSplit split_by_group(const std::vector<std::int64_t>& group_of, std::int64_t train,
                                 std::int64_t validation, Rng& rng) {
  std::map<std::int64_t, std::vector<std::int64_t>> members;
  for (std::size_t c = 0; c < group_of.size(); ++c)
    members[group_of[c]].push_back(static_cast<std::int64_t>(c));
  const std::int64_t groups = static_cast<std::int64_t>(members.size());
  if (train < 0 || validation < 0 || train + validation > groups)
    throw InvalidArgument("metalearn::data::split_by_group: " + std::to_string(train) +
                          " train + " + std::to_string(validation) + " validation groups out of " +
                          std::to_string(groups));
  std::vector<std::int64_t> ids;
  for (const auto& [g, m] : members) ids.push_back(g);
  detail::choose_without_replacement(ids, groups, rng);
  ClassSplit s;
  for (std::int64_t k = 0; k < groups; ++k) {
    auto& dst = k < train ? s.train : (k < train + validation ? s.validation : s.test);
    const auto& m = members[ids[static_cast<std::size_t>(k)]];
    dst.insert(dst.end(), m.begin(), m.end());
  }
  for (auto* v : {&s.train, &s.validation, &s.test}) std::sort(v->begin(), v->end());
  return s;
}

}  // namespace metalearn::data
