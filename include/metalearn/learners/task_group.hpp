// SPDX-License-Identifier: MIT
/// @file metalearn/learners/task_group.hpp
/// Tasks of a meta-batch stacked along a leading task axis, so that a model which accepts
/// one (nn::Sequential::batches_tasks) runs several tasks as batched products: the
/// formulation of PyTorch's fastest MAML (bmm over tasks), chosen by the learner itself.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/data/episode.hpp>
#include <metalearn/error.hpp>
#include <utility>
#include <vector>

namespace metalearn::meta {

/// `tasks` episodes as one: every tensor gains a leading task axis ([T, N, ...]) and the
/// label lists are concatenated, task by task. A group of one task refers to the episode
/// itself, unstacked (no copy).
template <class Scalar>
class TaskGroup {
 public:
  explicit TaskGroup(const data::Episode<Scalar>& single) : single_(&single) {}
  TaskGroup(data::Episode<Scalar> stacked, std::size_t tasks)
      : stacked_(std::move(stacked)), tasks_(tasks) {}

  const data::Episode<Scalar>& episode() const { return single_ ? *single_ : stacked_; }
  std::size_t tasks() const { return tasks_; }
  bool stacked() const { return single_ == nullptr; }

 private:
  const data::Episode<Scalar>* single_ = nullptr;  // valid while the meta-batch is
  data::Episode<Scalar> stacked_;
  std::size_t tasks_ = 1;
};

namespace detail {

/// `s` with a leading axis of `tasks`.
inline Shape with_task_axis(const Shape& s, std::int64_t tasks) {
  std::array<std::int64_t, Shape::max_rank> d{tasks};
  for (int i = 0; i < s.rank(); ++i) d[static_cast<std::size_t>(i) + 1] = s[i];
  return Shape::from_array(d, s.rank() + 1);
}

template <class Scalar>
bool same_layout(const data::Episode<Scalar>& a, const data::Episode<Scalar>& b) {
  return a.support_inputs.shape() == b.support_inputs.shape() &&
         a.query_inputs.shape() == b.query_inputs.shape() &&
         a.support_targets.shape() == b.support_targets.shape() &&
         a.query_targets.shape() == b.query_targets.shape() &&
         a.support_labels.size() == b.support_labels.size() &&
         a.query_labels.size() == b.query_labels.size() && a.ways == b.ways;
}

template <class Scalar>
Tensor<Scalar> stack(const std::vector<const Tensor<Scalar>*>& parts) {
  Tensor<Scalar> out(
      with_task_axis(parts.front()->shape(), static_cast<std::int64_t>(parts.size())), Scalar(0));
  Scalar* dst = out.data();
  for (const Tensor<Scalar>* p : parts) dst = std::copy(p->data(), p->data() + p->numel(), dst);
  return out;
}

}  // namespace detail

/// Can every episode of `batch` be stacked with the others? They must share every tensor
/// shape and label count, and leave room for the task axis (rank 3 or less).
template <class Scalar>
bool stackable(const std::vector<data::Episode<Scalar>>& batch) {
  if (batch.empty()) return false;
  const auto& first = batch.front();
  for (const Tensor<Scalar>* t :
       {&first.support_inputs, &first.query_inputs, &first.support_targets, &first.query_targets})
    if (t->shape().rank() >= Shape::max_rank) return false;
  return std::all_of(batch.begin(), batch.end(),
                     [&](const auto& e) { return detail::same_layout(first, e); });
}

/// The meta-batch cut into ceil(tasks / per_group) groups of consecutive tasks whose sizes
/// differ by at most one (the larger first: 25 tasks by 7 are 7, 6, 6, 6, not 7, 7, 7, 4,
/// so threads or ranks sharing the groups get near-equal work), each stacked when it holds more
/// than one task. The cut depends only on the batch and `per_group`, never on threads, so
/// results stay bit-identical across thread counts. Requires per_group >= 1, and
/// stackable(batch) when per_group > 1.
template <class Scalar>
std::vector<TaskGroup<Scalar>> group_tasks(const std::vector<data::Episode<Scalar>>& batch,
                                           std::size_t per_group) {
  if (per_group == 0)
    throw InvalidArgument("metalearn::meta::group_tasks: need per_group >= 1, got 0");
  std::vector<TaskGroup<Scalar>> groups;
  if (batch.empty()) return groups;
  const std::size_t count_of_groups = (batch.size() + per_group - 1) / per_group;
  const std::size_t base = batch.size() / count_of_groups;
  const std::size_t larger = batch.size() % count_of_groups;
  for (std::size_t g = 0; g < count_of_groups; ++g) {
    const std::size_t count = base + (g < larger ? 1 : 0);
    const std::size_t start = g * base + std::min(g, larger);
    if (count == 1) {
      groups.emplace_back(batch[start]);
      continue;
    }
    auto gather = [&](auto member) {
      std::vector<const Tensor<Scalar>*> parts;
      for (std::size_t t = start; t < start + count; ++t) parts.push_back(&(batch[t].*member));
      return detail::stack(parts);
    };
    const auto& head = batch[start];
    data::Episode<Scalar> e;
    e.support_inputs = gather(&data::Episode<Scalar>::support_inputs);
    e.query_inputs = gather(&data::Episode<Scalar>::query_inputs);
    if (head.is_classification()) {
      for (std::size_t t = start; t < start + count; ++t) {
        const auto& b = batch[t];
        e.support_labels.insert(e.support_labels.end(), b.support_labels.begin(),
                                b.support_labels.end());
        e.query_labels.insert(e.query_labels.end(), b.query_labels.begin(), b.query_labels.end());
      }
    } else {
      e.support_targets = gather(&data::Episode<Scalar>::support_targets);
      e.query_targets = gather(&data::Episode<Scalar>::query_targets);
    }
    e.ways = head.ways;
    e.shots = head.shots;
    e.queries = head.queries;
    groups.emplace_back(std::move(e), count);
  }
  return groups;
}

}  // namespace metalearn::meta
