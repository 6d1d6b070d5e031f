// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/shape.hpp
/// Shape of a tensor: rank 0 to 4, row-major.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <metalearn/error.hpp>
#include <string>

namespace metalearn {

/// Dimensions of a tensor of rank 0 (a scalar) to 4. The last dimension is contiguous.
class Shape {
 public:
  static constexpr int max_rank = 4;

  /// Rank-0 shape (a scalar, one element).
  Shape() = default;

  /// Shape from a dimension list, e.g. `Shape{32, 40}`. Throws InvalidArgument for more
  /// than four dimensions or a negative one.
  Shape(std::initializer_list<std::int64_t> dims) {
    if (dims.size() > max_rank)
      throw InvalidArgument("metalearn::Shape: rank " + std::to_string(dims.size()) +
                            " requested, at most 4 supported");
    for (std::int64_t d : dims) {
      if (d < 0) throw InvalidArgument("metalearn::Shape: negative dimension " + std::to_string(d));
      dims_[rank_++] = d;
    }
  }

  /// Shape from the first `rank` entries of `dims` (checked like the list constructor).
  static Shape from_array(const std::array<std::int64_t, max_rank>& dims, int rank) {
    if (rank < 0 || rank > max_rank)
      throw InvalidArgument("metalearn::Shape: rank " + std::to_string(rank) +
                            " requested, expected 0 to 4");
    Shape s;
    for (int i = 0; i < rank; ++i) {
      if (dims[i] < 0)
        throw InvalidArgument("metalearn::Shape: negative dimension " + std::to_string(dims[i]));
      s.dims_[i] = dims[i];
    }
    s.rank_ = rank;
    return s;
  }

  int rank() const noexcept { return rank_; }
  std::int64_t operator[](int axis) const noexcept { return dims_[axis]; }
  const std::array<std::int64_t, max_rank>& dims() const noexcept { return dims_; }

  /// Number of elements (1 for rank 0).
  std::int64_t numel() const noexcept {
    std::int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }

  /// Size of the last dimension (1 for rank 0): the columns of the matrix view.
  std::int64_t cols() const noexcept { return rank_ == 0 ? 1 : dims_[rank_ - 1]; }
  /// Product of all but the last dimension: the rows of the matrix view.
  std::int64_t rows() const noexcept {
    return rank_ == 0 ? 1 : numel() / (cols() == 0 ? 1 : cols());
  }

  /// Axis in [-rank, rank) normalised to [0, rank); throws naming `where` otherwise.
  int normalize_axis(int axis, const char* where) const {
    const int a = axis < 0 ? axis + rank_ : axis;
    if (a < 0 || a >= rank_)
      throw InvalidArgument(std::string(where) + ": axis " + std::to_string(axis) +
                            " out of range for shape " + to_string());
    return a;
  }

  /// "[2, 3]" (and "[]" for a scalar), for error messages.
  std::string to_string() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[i]);
    }
    return s + "]";
  }

  friend bool operator==(const Shape& a, const Shape& b) noexcept {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
      if (a.dims_[i] != b.dims_[i]) return false;
    return true;
  }
  friend bool operator!=(const Shape& a, const Shape& b) noexcept { return !(a == b); }

 private:
  std::array<std::int64_t, max_rank> dims_{};
  int rank_ = 0;
};

}  // namespace metalearn
