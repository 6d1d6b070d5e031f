// SPDX-License-Identifier: MIT
/// @file metalearn/data/class_dataset.hpp
/// An in-memory labelled dataset indexed by class, and Omniglot's rotation augmentation.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/error.hpp>
#include <string>
#include <vector>

namespace metalearn::data {

/// Examples [M, ...] with one class id each, indexed by class. Classes are numbered by
/// ordinal 0..num_classes()-1 in increasing id order; samplers work with ordinals and
/// report original ids.
template <class Scalar = float>
class ClassDataset {
 public:
  ClassDataset(Tensor<Scalar> examples, std::vector<std::int64_t> labels)
      : examples_(std::move(examples)), labels_(std::move(labels)) {
    if (examples_.rank() < 2 || examples_.shape()[0] != static_cast<std::int64_t>(labels_.size()))
      throw InvalidArgument("metalearn::data::ClassDataset: " + std::to_string(labels_.size()) +
                            " labels for examples of shape " + examples_.shape().to_string() +
                            " (expected [M, ...] with M labels)");
    std::map<std::int64_t, std::vector<std::int64_t>> by_id;
    for (std::size_t i = 0; i < labels_.size(); ++i)
      by_id[labels_[i]].push_back(static_cast<std::int64_t>(i));
    for (auto& [id, members] : by_id) {
      ids_.push_back(id);
      members_.push_back(std::move(members));
    }
  }

  std::int64_t size() const { return examples_.shape()[0]; }
  std::int64_t num_classes() const { return static_cast<std::int64_t>(ids_.size()); }
  /// Original id of class ordinal c.
  std::int64_t class_id(std::int64_t c) const { return ids_.at(static_cast<std::size_t>(c)); }
  /// Example indices of class ordinal c.
  const std::vector<std::int64_t>& examples_of(std::int64_t c) const {
    return members_.at(static_cast<std::size_t>(c));
  }
  /// Shape of one example (the examples' shape without the leading axis).
  Shape example_shape() const {
    auto d = examples_.shape().dims();
    for (int i = 0; i + 1 < examples_.rank(); ++i) d[i] = d[i + 1];
    return Shape::from_array(d, examples_.rank() - 1);
  }
  std::int64_t example_size() const { return example_shape().numel(); }
  const Tensor<Scalar>& examples() const { return examples_; }
  const std::vector<std::int64_t>& labels() const { return labels_; }
  /// All class ordinals, 0..num_classes()-1.
  std::vector<std::int64_t> all_classes() const {
    std::vector<std::int64_t> c(ids_.size());
    for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<std::int64_t>(i);
    return c;
  }
  /// Copy example i to dst (example_size() values).
  void copy_example(std::int64_t i, Scalar* dst) const {
    const std::int64_t n = example_size();
    std::copy(examples_.data() + i * n, examples_.data() + (i + 1) * n, dst);
  }

 private:
  Tensor<Scalar> examples_;
  std::vector<std::int64_t> labels_;
  std::vector<std::int64_t> ids_;
  std::vector<std::vector<std::int64_t>> members_;
};

/// Each class becomes four: the images rotated by 0, 90, 180 and 270 degrees, as the
/// Omniglot literature does (Santoro et al. 2016; Finn et al. 2017). Examples must be
/// square images, [M, H, H] or [M, C, H, H]. Class id k*4 + r is class k rotated r * 90
/// degrees counter-clockwise.
template <class Scalar>
ClassDataset<Scalar> with_rotations(const ClassDataset<Scalar>& data) {
  const Shape s = data.examples().shape();
  const int r = s.rank();
  if (!((r == 3 || r == 4) && s[r - 1] == s[r - 2]))
    throw InvalidArgument(
        "metalearn::data::with_rotations: expected square images [M, H, H] or "
        "[M, C, H, H], got " +
        s.to_string());
  const std::int64_t m = s[0], h = s[r - 1], planes = data.example_size() / (h * h);
  auto d = s.dims();
  d[0] = 4 * m;
  Tensor<Scalar> out(Shape::from_array(d, r));
  std::vector<std::int64_t> labels(static_cast<std::size_t>(4 * m));
  const Scalar* src = data.examples().data();
  for (std::int64_t rot = 0; rot < 4; ++rot)
    for (std::int64_t i = 0; i < m; ++i) {
      const std::int64_t o = rot * m + i;
      labels[static_cast<std::size_t>(o)] = data.labels()[static_cast<std::size_t>(i)] * 4 + rot;
      for (std::int64_t p = 0; p < planes; ++p) {
        const Scalar* in = src + (i * planes + p) * h * h;
        Scalar* dst = out.data() + (o * planes + p) * h * h;
        for (std::int64_t y = 0; y < h; ++y)
          for (std::int64_t x = 0; x < h; ++x) {
            // Counter-clockwise by rot quarter turns: destination (y, x) reads source...
            std::int64_t sy = y, sx = x;
            for (std::int64_t q = 0; q < rot; ++q) {  // one quarter turn: (y, x) <- (x, h-1-y)
              const std::int64_t ty = sx, tx = h - 1 - sy;
              sy = ty;
              sx = tx;
            }
            dst[y * h + x] = in[sy * h + sx];
          }
      }
    }
  return ClassDataset<Scalar>(std::move(out), std::move(labels));
}

}  // namespace metalearn::data
