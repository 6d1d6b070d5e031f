// SPDX-License-Identifier: MIT
/// @file metalearn/mtl/batch.hpp
/// Multi-task data: one input, one target per task. `MultiTaskDataset` holds the examples,
/// `MultiTaskSampler` draws training batches from it, `fixed_batches` cuts a dataset into
/// the batches of a validation or test pass.
#pragma once

#include <algorithm>
#include <cstdint>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <utility>
#include <vector>

namespace metalearn::mtl {

/// One task's targets for the rows of a batch or dataset: class labels (classification,
/// `classes` > 0) or real values [N, outputs] (regression, `classes` == 0).
template <class Scalar = float>
struct TaskTargets {
  std::vector<std::int64_t> labels;  ///< classification: 0 .. classes - 1, one per row
  Tensor<Scalar> values;             ///< regression: [N, outputs]
  std::int64_t classes = 0;          ///< 0 for regression

  bool is_classification() const noexcept { return classes > 0; }
  std::int64_t rows() const {
    return is_classification() ? static_cast<std::int64_t>(labels.size())
                               : (values.shape().rank() == 0 ? 0 : values.shape()[0]);
  }

  /// Classification targets.
  static TaskTargets classification(std::vector<std::int64_t> labels, std::int64_t classes) {
    TaskTargets t;
    t.labels = std::move(labels);
    t.classes = classes;
    return t;
  }
  /// Regression targets [N, outputs].
  static TaskTargets regression(Tensor<Scalar> values) {
    TaskTargets t;
    t.values = std::move(values);
    return t;
  }
};

/// One input batch [N, ...] and each task's targets for its N rows.
template <class Scalar = float>
struct MultiTaskBatch {
  Tensor<Scalar> inputs;
  std::vector<TaskTargets<Scalar>> tasks;

  std::size_t num_tasks() const noexcept { return tasks.size(); }
  std::int64_t rows() const { return inputs.shape().rank() == 0 ? 0 : inputs.shape()[0]; }
  /// True when every task is a classification (the trainer then keeps the best accuracy).
  bool is_classification() const {
    return !tasks.empty() && std::all_of(tasks.begin(), tasks.end(),
                                         [](const auto& t) { return t.is_classification(); });
  }
  /// Throws InvalidArgument naming `who` unless there is a task and every task has a
  /// target for each input row, labels within their classes.
  void validate(const std::string& who) const {
    if (tasks.empty()) throw InvalidArgument(who + ": the batch has no tasks");
    if (rows() < 1) throw InvalidArgument(who + ": the batch has no rows");
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      const auto& k = tasks[t];
      if (k.rows() != rows())
        throw InvalidArgument(who + ": task " + std::to_string(t) + " has " +
                              std::to_string(k.rows()) + " targets for " + std::to_string(rows()) +
                              " input rows");
      if (!k.is_classification() && k.values.shape().rank() != 2)
        throw InvalidArgument(who + ": task " + std::to_string(t) +
                              " (regression) needs values [N, outputs], got " +
                              k.values.shape().to_string());
      for (std::int64_t label : k.labels)
        if (label < 0 || label >= k.classes)
          throw InvalidArgument(who + ": task " + std::to_string(t) + " has label " +
                                std::to_string(label) + ", expected 0.." +
                                std::to_string(k.classes - 1));
    }
  }
};

/// Examples with a target per task; rows of `inputs` and of every task's targets match.
template <class Scalar = float>
class MultiTaskDataset {
 public:
  MultiTaskDataset(Tensor<Scalar> inputs, std::vector<TaskTargets<Scalar>> tasks)
      : all_{std::move(inputs), std::move(tasks)} {
    all_.validate("metalearn::mtl::MultiTaskDataset");
  }

  std::int64_t size() const { return all_.rows(); }
  std::size_t num_tasks() const { return all_.num_tasks(); }
  const MultiTaskBatch<Scalar>& all() const { return all_; }

  /// The rows `index` (in that order) as a batch.
  MultiTaskBatch<Scalar> rows(const std::vector<std::int64_t>& index) const {
    const Shape s = all_.inputs.shape();
    const std::int64_t row = s.numel() / s[0];
    for (std::int64_t i : index)
      if (i < 0 || i >= size())
        throw InvalidArgument("metalearn::mtl::MultiTaskDataset::rows: row " + std::to_string(i) +
                              " out of range for " + std::to_string(size()) + " examples");
    auto dims = s.dims();
    dims[0] = static_cast<std::int64_t>(index.size());
    MultiTaskBatch<Scalar> b;
    b.inputs = Tensor<Scalar>(Shape::from_array(dims, s.rank()));
    for (std::size_t r = 0; r < index.size(); ++r)
      std::copy_n(all_.inputs.data() + index[r] * row, row,
                  b.inputs.data() + static_cast<std::int64_t>(r) * row);
    for (const auto& t : all_.tasks) {
      if (t.is_classification()) {
        std::vector<std::int64_t> labels;
        for (std::int64_t i : index) labels.push_back(t.labels[static_cast<std::size_t>(i)]);
        b.tasks.push_back(TaskTargets<Scalar>::classification(std::move(labels), t.classes));
      } else {
        const std::int64_t out = t.values.shape()[1];
        Tensor<Scalar> v(Shape{static_cast<std::int64_t>(index.size()), out});
        for (std::size_t r = 0; r < index.size(); ++r)
          std::copy_n(t.values.data() + index[r] * out, out,
                      v.data() + static_cast<std::int64_t>(r) * out);
        b.tasks.push_back(TaskTargets<Scalar>::regression(std::move(v)));
      }
    }
    return b;
  }

 private:
  MultiTaskBatch<Scalar> all_;
};

/// Training batches of `batch_size` distinct rows drawn uniformly at random. Stateless:
/// the batches depend on `rng` alone, so a resumed run (which restores the Rng) draws the
/// same ones.
template <class Scalar = float>
class MultiTaskSampler {
 public:
  MultiTaskSampler(const MultiTaskDataset<Scalar>& data, std::int64_t batch_size)
      : data_(&data), batch_(batch_size) {
    if (batch_size < 1 || batch_size > data.size())
      throw InvalidArgument("metalearn::mtl::MultiTaskSampler: batch_size must be in 1.." +
                            std::to_string(data.size()) + ", got " + std::to_string(batch_size));
  }

  /// `batch_size` distinct rows, uniformly at random.
  MultiTaskBatch<Scalar> sample(Rng& rng) const {
    // Floyd's algorithm: distinct rows, in draw order, with batch_size draws.
    std::vector<std::int64_t> chosen;
    chosen.reserve(static_cast<std::size_t>(batch_));
    const std::int64_t n = data_->size();
    for (std::int64_t j = n - batch_; j < n; ++j) {
      const auto t =
          static_cast<std::int64_t>(uniform_index(rng, static_cast<std::uint64_t>(j + 1)));
      chosen.push_back(std::find(chosen.begin(), chosen.end(), t) == chosen.end() ? t : j);
    }
    return data_->rows(chosen);
  }
  std::int64_t batch_size() const { return batch_; }

 private:
  const MultiTaskDataset<Scalar>* data_;
  std::int64_t batch_;
};

/// The dataset cut into consecutive batches of at most `batch_size` rows, in order: a
/// validation or test pass that sees every example once.
template <class Scalar>
std::vector<MultiTaskBatch<Scalar>> fixed_batches(const MultiTaskDataset<Scalar>& data,
                                                  std::int64_t batch_size) {
  if (batch_size < 1)
    throw InvalidArgument("metalearn::mtl::fixed_batches: batch_size must be >= 1, got " +
                          std::to_string(batch_size));
  std::vector<MultiTaskBatch<Scalar>> out;
  for (std::int64_t from = 0; from < data.size(); from += batch_size) {
    std::vector<std::int64_t> index;
    for (std::int64_t i = from; i < std::min(data.size(), from + batch_size); ++i)
      index.push_back(i);
    out.push_back(data.rows(index));
  }
  return out;
}

}  // namespace metalearn::mtl
