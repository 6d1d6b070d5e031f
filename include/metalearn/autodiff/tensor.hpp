// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/tensor.hpp
/// Dense tensors: an owning `Tensor` (parameters, data) and a non-owning `TensorView`
/// (values on a tape), both row-major and contiguous, with Eigen maps for the kernels.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <metalearn/autodiff/detail/aligned_allocator.hpp>
#include <metalearn/autodiff/shape.hpp>
#include <metalearn/error.hpp>
#include <string>
#include <type_traits>
#include <vector>

namespace metalearn {

namespace detail {
template <bool B>
using Requires = std::enable_if_t<B, int>;
template <class T>
inline constexpr bool is_eigen_v = std::is_base_of_v<Eigen::EigenBase<T>, T>;

template <class Scalar>
using RowMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

}  // namespace detail

/// Read-only view of a contiguous row-major tensor owned by someone else (a tape's arena
/// or a Tensor). Valid as long as its owner is.
template <class Scalar>
class TensorView {
 public:
  using ConstMatrixMap = Eigen::Map<const detail::RowMatrix<Scalar>>;

  TensorView() = default;
  TensorView(const Scalar* data, Shape shape) : data_(data), shape_(shape) {}

  const Shape& shape() const noexcept { return shape_; }
  int rank() const noexcept { return shape_.rank(); }
  std::int64_t numel() const noexcept { return shape_.numel(); }
  const Scalar* data() const noexcept { return data_; }

  /// Matrix view: rows = product of all but the last dimension, cols = the last one.
  ConstMatrixMap matrix() const { return ConstMatrixMap(data_, shape_.rows(), shape_.cols()); }
  /// Flat view of all elements.
  Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>> array() const {
    return Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>(data_, numel());
  }

  /// The single value of a one-element tensor; throws InvalidArgument otherwise.
  Scalar item() const {
    if (numel() != 1)
      throw InvalidArgument("metalearn::TensorView::item: expected one element, shape is " +
                            shape_.to_string());
    return data_[0];
  }

  /// Element at a flat (row-major) index, bounds-checked.
  Scalar operator[](std::int64_t i) const {
    if (i < 0 || i >= numel())
      throw InvalidArgument("metalearn::TensorView::operator[]: index " + std::to_string(i) +
                            " out of range for shape " + shape_.to_string());
    return data_[i];
  }

 private:
  const Scalar* data_ = nullptr;
  Shape shape_;
};

/// Owning dense tensor of rank 0 to 4: model parameters, inputs, gradients taken off a tape.
template <class Scalar = float>
class Tensor {
  static_assert(std::is_floating_point_v<Scalar>,
                "metalearn tensors hold float, double or long double values");

 public:
  using value_type = Scalar;
  using MatrixMap = Eigen::Map<detail::RowMatrix<Scalar>>;
  using ConstMatrixMap = Eigen::Map<const detail::RowMatrix<Scalar>>;

  /// A scalar zero.
  Tensor() : data_(1, Scalar(0)) {}
  /// Zeros of the given shape.
  explicit Tensor(Shape shape) : shape_(shape), data_(static_cast<std::size_t>(shape.numel())) {}
  /// The given shape filled with `value`.
  Tensor(Shape shape, Scalar value)
      : shape_(shape), data_(static_cast<std::size_t>(shape.numel()), value) {}
  /// Shape and row-major values; throws InvalidArgument if the counts differ.
  Tensor(Shape shape, const std::vector<Scalar>& values)
      : shape_(shape), data_(values.begin(), values.end()) {
    if (static_cast<std::int64_t>(data_.size()) != shape.numel())
      throw InvalidArgument("metalearn::Tensor: " + std::to_string(data_.size()) +
                            " values given for shape " + shape.to_string() + " (" +
                            std::to_string(shape.numel()) + " elements)");
  }
  /// Copy of a view.
  explicit Tensor(const TensorView<Scalar>& view)
      : shape_(view.shape()), data_(view.data(), view.data() + view.numel()) {}

  /// Rank-2 copy of an Eigen matrix or expression (any storage order).
  template <class Derived, detail::Requires<detail::is_eigen_v<Derived>> = 0>
  static Tensor from_matrix(const Eigen::EigenBase<Derived>& m) {
    Tensor t(Shape{m.rows(), m.cols()});
    t.matrix() = m.derived().template cast<Scalar>();
    return t;
  }
  /// A scalar (rank 0) tensor.
  static Tensor scalar(Scalar v) { return Tensor(Shape{}, v); }

  const Shape& shape() const noexcept { return shape_; }
  int rank() const noexcept { return shape_.rank(); }
  std::int64_t numel() const noexcept { return shape_.numel(); }
  Scalar* data() noexcept { return data_.data(); }
  const Scalar* data() const noexcept { return data_.data(); }
  TensorView<Scalar> view() const { return TensorView<Scalar>(data_.data(), shape_); }
  operator TensorView<Scalar>() const { return view(); }

  /// Matrix view: rows = product of all but the last dimension, cols = the last one.
  MatrixMap matrix() { return MatrixMap(data_.data(), shape_.rows(), shape_.cols()); }
  ConstMatrixMap matrix() const {
    return ConstMatrixMap(data_.data(), shape_.rows(), shape_.cols());
  }
  /// Flat view of all elements.
  Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>> array() {
    return Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(data_.data(), numel());
  }
  Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>> array() const {
    return Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>(data_.data(), numel());
  }

  /// Element by multi-index, bounds-checked: `t.at(i, j)` for rank 2.
  template <class... Index>
  Scalar& at(Index... index) {
    return data_[flat_index({static_cast<std::int64_t>(index)...})];
  }
  template <class... Index>
  Scalar at(Index... index) const {
    return data_[flat_index({static_cast<std::int64_t>(index)...})];
  }

  /// The single value of a one-element tensor; throws InvalidArgument otherwise.
  Scalar item() const { return view().item(); }

  /// Same values under a new shape with the same number of elements.
  Tensor reshaped(Shape shape) const {
    if (shape.numel() != numel())
      throw InvalidArgument("metalearn::Tensor::reshaped: cannot reshape " + shape_.to_string() +
                            " to " + shape.to_string());
    Tensor t = *this;
    t.shape_ = shape;
    return t;
  }

  /// Values converted to another scalar type.
  template <class Other>
  Tensor<Other> cast() const {
    Tensor<Other> t(shape_);
    std::transform(data_.begin(), data_.end(), t.data(), [](Scalar v) { return Other(v); });
    return t;
  }

 private:
  std::int64_t flat_index(std::initializer_list<std::int64_t> index) const {
    if (static_cast<int>(index.size()) != rank())
      throw InvalidArgument("metalearn::Tensor::at: " + std::to_string(index.size()) +
                            " indices given for shape " + shape_.to_string());
    std::int64_t flat = 0;
    int axis = 0;
    for (std::int64_t i : index) {
      if (i < 0 || i >= shape_[axis])
        throw InvalidArgument("metalearn::Tensor::at: index " + std::to_string(i) + " on axis " +
                              std::to_string(axis) + " out of range for shape " +
                              shape_.to_string());
      flat = flat * shape_[axis] + i;
      ++axis;
    }
    return flat;
  }

  Shape shape_;
  std::vector<Scalar, detail::AlignedAllocator<Scalar>> data_;  // 64-byte aligned: same bits
};

}  // namespace metalearn
