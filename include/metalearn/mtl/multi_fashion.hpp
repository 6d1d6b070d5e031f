// SPDX-License-Identifier: MIT
/// @file metalearn/mtl/multi_fashion.hpp
/// Multi-Fashion: two Fashion-MNIST items on one image, a task for each (Sener & Koltun
/// 2018, §6.1 built MultiMNIST this way from MNIST digits; Lin et al. 2019 and the Nash-MTL
/// and CAGrad papers use the Fashion-MNIST variant).
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <metalearn/data/class_dataset.hpp>
#include <metalearn/data/idx.hpp>
#include <metalearn/data/image.hpp>
#include <metalearn/error.hpp>
#include <metalearn/mtl/batch.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <vector>

namespace metalearn::mtl {

/// Options of multi_fashion().
struct MultiFashionOptions {
  std::int64_t examples = 0;  ///< images to make (0: one per source item)
  std::int64_t canvas = 36;   ///< side of the canvas the two items are placed on
  /// Offset of the right item on the canvas, down and right (the MultiMNIST loader of
  /// Sener & Koltun's code: 6, so the two 28x28 items overlap in 22x22).
  std::int64_t offset = 6;
  std::int64_t size = 28;  ///< side of the result (the canvas resized by area averaging)
};

/// Images [examples, 1, size, size] and two classification tasks (labels: the items' class
/// ordinals, 0..num_classes()-1): the class of the item at
/// the top left (task 0, "left") and of the one at the bottom right (task 1, "right").
/// Example i puts source item perm(i) at the canvas's top-left corner and a second item,
/// drawn uniformly from the others, at (offset, offset), the overlap taking the brighter
/// pixel; then the canvas is resized to size x size by area averaging (the authors' loader
/// resizes by nearest neighbour, which aliases; and may draw the same item twice).
/// Deterministic in `rng`.
template <class Scalar = float>
MultiTaskDataset<Scalar> multi_fashion(const data::ClassDataset<Scalar>& items,
                                       const MultiFashionOptions& o, Rng& rng) {
  const Shape s = items.examples().shape();
  const char* who = "metalearn::mtl::multi_fashion";
  if (s.rank() != 4 || s[1] != 1 || s[2] != s[3] || s[0] < 2)
    throw InvalidArgument(std::string(who) +
                          ": need at least two square grey items [M, 1, H, H], got " +
                          s.to_string());
  const std::int64_t m = s[0], side = s[2];
  if (o.offset < 0 || o.canvas < side + o.offset || o.size < 1 || o.examples < 0)
    throw InvalidArgument(std::string(who) + ": need offset >= 0, canvas >= the item side (" +
                          std::to_string(side) + ") + offset, size >= 1 and examples >= 0");
  const std::int64_t n = o.examples == 0 ? m : o.examples, shift = o.offset;
  std::vector<std::int64_t> order(static_cast<std::size_t>(m));
  for (std::int64_t i = 0; i < m; ++i) order[static_cast<std::size_t>(i)] = i;
  for (std::size_t i = order.size(); i > 1; --i)  // Fisher-Yates from our Rng
    std::swap(order[i - 1], order[static_cast<std::size_t>(uniform_index(rng, i))]);

  std::vector<std::int64_t> ordinal(static_cast<std::size_t>(m));  // labels as 0..classes-1
  for (std::int64_t c = 0; c < items.num_classes(); ++c)
    for (std::int64_t i : items.examples_of(c)) ordinal[static_cast<std::size_t>(i)] = c;
  Tensor<Scalar> images(Shape{n, 1, o.size, o.size});
  std::vector<std::int64_t> left(static_cast<std::size_t>(n)), right(left.size());
  data::GreyImage canvas;
  canvas.height = canvas.width = o.canvas;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t a = order[static_cast<std::size_t>(i % m)];
    std::int64_t b =
        static_cast<std::int64_t>(uniform_index(rng, static_cast<std::uint64_t>(m - 1)));
    if (b >= a) ++b;  // any item but a
    canvas.pixels.assign(static_cast<std::size_t>(o.canvas * o.canvas), 0.0f);
    const Scalar* pa = items.examples().data() + a * side * side;
    const Scalar* pb = items.examples().data() + b * side * side;
    for (std::int64_t r = 0; r < side; ++r)
      for (std::int64_t c = 0; c < side; ++c) {
        float& top_left = canvas.pixels[static_cast<std::size_t>(r * o.canvas + c)];
        top_left = std::max(top_left, static_cast<float>(pa[r * side + c]));
        float& bottom_right =
            canvas.pixels[static_cast<std::size_t>((r + shift) * o.canvas + c + shift)];
        bottom_right = std::max(bottom_right, static_cast<float>(pb[r * side + c]));
      }
    const data::GreyImage small = data::resize_area(canvas, o.size);
    std::copy(small.pixels.begin(), small.pixels.end(), images.data() + i * o.size * o.size);
    left[static_cast<std::size_t>(i)] = ordinal[static_cast<std::size_t>(a)];
    right[static_cast<std::size_t>(i)] = ordinal[static_cast<std::size_t>(b)];
  }
  const std::int64_t classes = items.num_classes();
  std::vector<TaskTargets<Scalar>> tasks;
  tasks.push_back(TaskTargets<Scalar>::classification(std::move(left), classes));
  tasks.push_back(TaskTargets<Scalar>::classification(std::move(right), classes));
  return MultiTaskDataset<Scalar>(std::move(images), std::move(tasks));
}

/// Where Debian's dataset-fashion-mnist package puts its IDX files.
inline std::string default_fashion_mnist_dir() { return "/usr/share/datasets/fashion-mnist"; }

/// Fashion-MNIST's training or test split from `dir` (the package's gzipped IDX files, or
/// uncompressed ones of the same names without ".gz").
template <class Scalar = float>
data::ClassDataset<Scalar> load_fashion_mnist(const std::string& dir, bool train) {
  const std::string stem = dir + "/" + (train ? "train" : "t10k");
  const auto pick = [](const std::string& path) {
    return std::ifstream(path + ".gz").good() ? path + ".gz" : path;
  };
  return data::load_idx<Scalar>(pick(stem + "-images-idx3-ubyte"),
                                pick(stem + "-labels-idx1-ubyte"));
}

}  // namespace metalearn::mtl
