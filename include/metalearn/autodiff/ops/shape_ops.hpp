// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/ops/shape_ops.hpp
/// Shape and indexing ops: reshape, flatten, detach, slice / pad_rows and concat along the
/// leading axis, gather_rows / scatter_add_rows.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <metalearn/autodiff/detail/op_support.hpp>
#include <string>
#include <vector>

namespace metalearn {

namespace detail {

template <class Scalar>
void reshape_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void slice_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void pad_rows_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void concat_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void gather_rows_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void scatter_add_rows_backward(BackwardContext<Scalar>& c);

struct RowRange {  // slice: rows [begin, end)
  std::int64_t begin, end;
};
struct RowPadding {  // pad_rows
  std::int64_t before, after;
};
struct RowIndices {  // gather_rows (count: indices), scatter_add_rows (count: output rows)
  const std::int64_t* indices;
  std::int64_t count;
};

// Shape and indexing ops read no values: their rules move the cotangent around.
template <class Scalar>
inline const OpRule<Scalar> reshape_rule{"reshape", &reshape_backward<Scalar>, reads_nothing};
template <class Scalar>
inline const OpRule<Scalar> slice_rule{"slice", &slice_backward<Scalar>, reads_nothing};
template <class Scalar>
inline const OpRule<Scalar> pad_rows_rule{"pad_rows", &pad_rows_backward<Scalar>, reads_nothing};
template <class Scalar>
inline const OpRule<Scalar> concat_rule{"concat", &concat_backward<Scalar>, reads_nothing};
template <class Scalar>
inline const OpRule<Scalar> gather_rows_rule{"gather_rows", &gather_rows_backward<Scalar>,
                                             reads_nothing};
template <class Scalar>
inline const OpRule<Scalar> scatter_add_rows_rule{
    "scatter_add_rows", &scatter_add_rows_backward<Scalar>, reads_nothing};

/// Shape with the leading dimension replaced.
inline Shape with_rows(const Shape& s, std::int64_t rows) {
  auto d = s.dims();
  d[0] = rows;
  return Shape::from_array(d, s.rank());
}

inline void require_rank_1plus(const char* op, const Shape& s) {
  if (s.rank() < 1)
    throw InvalidArgument(std::string("metalearn::") + op +
                          ": expected a tensor of rank 1 or more, got a scalar");
}

/// Copy the row indices into the tape's arena (they live as long as the node).
template <class Scalar>
const std::int64_t* store_indices(const Var<Scalar>& x, const std::int64_t* idx, std::size_t n,
                                  std::int64_t rows, const char* op) {
  for (std::size_t i = 0; i < n; ++i)
    if (idx[i] < 0 || idx[i] >= rows)
      throw InvalidArgument(std::string("metalearn::") + op + ": index " + std::to_string(idx[i]) +
                            " at position " + std::to_string(i) + " out of range for " +
                            std::to_string(rows) + " rows");
  auto* p = static_cast<std::int64_t*>(x.tape().allocate(sizeof(std::int64_t) * (n + 1)));
  std::copy(idx, idx + n, p);
  return p;
}

}  // namespace detail

/// The same values under a new shape with the same number of elements. No copy.
template <class Scalar>
Var<Scalar> reshape(const Var<Scalar>& x, const Shape& shape) {
  if (shape.numel() != x.numel())
    throw InvalidArgument(
        detail::shapes_message("reshape", "element counts differ", x.shape(), shape));
  if (shape == x.shape()) return x;
  return detail::record_view(detail::reshape_rule<Scalar>, shape, x.value().data(), x);
}

/// [N, d1, d2, ...] -> [N, d1 * d2 * ...]. No copy.
template <class Scalar>
Var<Scalar> flatten(const Var<Scalar>& x) {
  detail::require_rank_1plus("flatten", x.shape());
  const std::int64_t n = x.shape()[0];
  return reshape(x, Shape{n, n == 0 ? 0 : x.numel() / n});
}

/// The same value as a constant: gradients stop here (first-order MAML's trick). No copy.
template <class Scalar>
Var<Scalar> detach(const Var<Scalar>& x) {
  return detail::record_constant_view("detach", x);
}

/// Rows [begin, end) along the leading axis. No copy.
template <class Scalar>
Var<Scalar> slice(const Var<Scalar>& x, std::int64_t begin, std::int64_t end) {
  const Shape sx = x.shape();
  detail::require_rank_1plus("slice", sx);
  if (begin < 0 || end < begin || end > sx[0])
    throw InvalidArgument("metalearn::slice: rows [" + std::to_string(begin) + ", " +
                          std::to_string(end) + ") out of range for shape " + sx.to_string());
  const std::int64_t row = sx[0] == 0 ? 0 : sx.numel() / sx[0];
  const auto attrs = detail::NodeAttrs::of(detail::RowRange{begin, end});
  return detail::record_view(detail::slice_rule<Scalar>, detail::with_rows(sx, end - begin),
                             x.value().data() + begin * row, x, attrs);
}

/// Zero rows added along the leading axis: `before` above and `after` below (the adjoint
/// of slice).
template <class Scalar>
Var<Scalar> pad_rows(const Var<Scalar>& x, std::int64_t before, std::int64_t after) {
  const Shape sx = x.shape();
  detail::require_rank_1plus("pad_rows", sx);
  if (before < 0 || after < 0)
    throw InvalidArgument("metalearn::pad_rows: negative padding (" + std::to_string(before) +
                          ", " + std::to_string(after) + ")");
  const auto attrs = detail::NodeAttrs::of(detail::RowPadding{before, after});
  const Shape so = detail::with_rows(sx, sx[0] + before + after);
  auto out = detail::record(detail::pad_rows_rule<Scalar>, so, {x}, attrs);
  const std::int64_t row = so[0] == 0 ? 0 : so.numel() / so[0];
  std::fill(out.data, out.data + so.numel(), Scalar(0));
  std::copy(x.value().data(), x.value().data() + sx.numel(), out.data + before * row);
  return out.var;
}

/// Concatenation along the leading axis; all other dimensions must agree.
template <class Scalar>
Var<Scalar> concat(const std::vector<Var<Scalar>>& xs) {
  if (xs.empty()) throw InvalidArgument("metalearn::concat: no tensors given");
  const Shape s0 = xs[0].shape();
  detail::require_rank_1plus("concat", s0);
  std::int64_t rows = 0;
  detail::TapeStorage<Scalar>& t = xs[0].tape();
  auto* idx = static_cast<std::int32_t*>(t.allocate(sizeof(std::int32_t) * xs.size()));
  for (std::size_t k = 0; k < xs.size(); ++k) {
    const Shape sk = xs[k].shape();
    if (&xs[k].tape() != &t)
      throw InvalidArgument("metalearn::concat: operands are recorded on different threads' tapes");
    if (sk.rank() != s0.rank() || detail::with_rows(sk, 0) != detail::with_rows(s0, 0))
      throw InvalidArgument(detail::shapes_message(
          "concat", ("tensor " + std::to_string(k) + " differs beyond the leading axis").c_str(),
          s0, sk));
    rows += sk[0];
    idx[k] = xs[k].index();
  }
  const Shape so = detail::with_rows(s0, rows);
  const std::int32_t i =
      t.push(detail::concat_rule<Scalar>, so, idx, static_cast<std::int32_t>(xs.size()));
  Scalar* p = t.node(i).data;
  for (const auto& x : xs) p = std::copy(x.value().data(), x.value().data() + x.numel(), p);
  return Var<Scalar>(&t, i, t.epoch());
}

namespace detail {
/// gather_rows with indices already in the tape's arena and known to be in range (made by
/// another op, e.g. pooling): no copy, no check.
template <class Scalar>
Var<Scalar> gather_rows_trusted(const Var<Scalar>& x, const std::int64_t* idx, std::size_t n) {
  const Shape sx = x.shape();
  const NodeAttrs attrs = NodeAttrs::of(RowIndices{idx, static_cast<std::int64_t>(n)});
  const Shape so = with_rows(sx, static_cast<std::int64_t>(n));
  auto out = record(gather_rows_rule<Scalar>, so, {x}, attrs);
  const std::int64_t row = sx[0] == 0 ? 0 : sx.numel() / sx[0];
  const Scalar* px = x.value().data();
  if (row == 1) {  // element gathers (pooling): no per-row copy call
    for (std::size_t i = 0; i < n; ++i) out.data[i] = px[idx[i]];
  } else {
    for (std::size_t i = 0; i < n; ++i)
      std::copy(px + idx[i] * row, px + (idx[i] + 1) * row, out.data + i * row);
  }
  return out.var;
}

template <class Scalar>
Var<Scalar> gather_rows(const Var<Scalar>& x, const std::int64_t* indices, std::size_t n) {
  require_rank_1plus("gather_rows", x.shape());
  return gather_rows_trusted(x, store_indices(x, indices, n, x.shape()[0], "gather_rows"), n);
}

/// scatter_add_rows with trusted arena indices (see gather_rows_trusted).
template <class Scalar>
Var<Scalar> scatter_add_rows_trusted(const Var<Scalar>& x, const std::int64_t* idx, std::size_t n,
                                     std::int64_t rows) {
  const Shape sx = x.shape();
  const NodeAttrs attrs = NodeAttrs::of(RowIndices{idx, rows});
  const Shape so = with_rows(sx, rows);
  auto out = record(scatter_add_rows_rule<Scalar>, so, {x}, attrs);
  const std::int64_t row = sx[0] == 0 ? 0 : sx.numel() / sx[0];
  std::fill(out.data, out.data + so.numel(), Scalar(0));
  const Scalar* px = x.value().data();
  if (row == 1) {
    for (std::size_t i = 0; i < n; ++i) out.data[idx[i]] += px[i];
  } else {
    for (std::size_t i = 0; i < n; ++i)
      for (std::int64_t k = 0; k < row; ++k) out.data[idx[i] * row + k] += px[i * row + k];
  }
  return out.var;
}

template <class Scalar>
Var<Scalar> scatter_add_rows(const Var<Scalar>& x, const std::int64_t* indices, std::size_t n,
                             std::int64_t rows) {
  const Shape sx = x.shape();
  require_rank_1plus("scatter_add_rows", sx);
  if (static_cast<std::int64_t>(n) != sx[0])
    throw InvalidArgument("metalearn::scatter_add_rows: " + std::to_string(n) + " indices for " +
                          std::to_string(sx[0]) + " rows of shape " + sx.to_string());
  return scatter_add_rows_trusted(x, store_indices(x, indices, n, rows, "scatter_add_rows"), n,
                                  rows);
}
}  // namespace detail

/// Rows of x picked by index (repeats allowed): out[i] = x[indices[i]].
template <class Scalar>
Var<Scalar> gather_rows(const Var<Scalar>& x, const std::vector<std::int64_t>& indices) {
  return detail::gather_rows(x, indices.data(), indices.size());
}

/// A tensor of `rows` rows, zero except out[indices[i]] += x[i] (the adjoint of gather_rows).
template <class Scalar>
Var<Scalar> scatter_add_rows(const Var<Scalar>& x, const std::vector<std::int64_t>& indices,
                             std::int64_t rows) {
  return detail::scatter_add_rows(x, indices.data(), indices.size(), rows);
}

namespace detail {

template <class Scalar>
void reshape_backward(BackwardContext<Scalar>& c) {
  c.grad_inputs[0] = reshape(c.grad_output, c.input(0).shape());
}
template <class Scalar>
void slice_backward(BackwardContext<Scalar>& c) {
  const std::int64_t rows = c.input(0).shape()[0];
  const RowRange r = attrs_of<RowRange>(c);
  c.grad_inputs[0] = pad_rows(c.grad_output, r.begin, rows - r.end);
}
template <class Scalar>
void pad_rows_backward(BackwardContext<Scalar>& c) {
  const std::int64_t before = attrs_of<RowPadding>(c).before;
  c.grad_inputs[0] = slice(c.grad_output, before, before + c.input(0).shape()[0]);
}
template <class Scalar>
void concat_backward(BackwardContext<Scalar>& c) {
  std::int64_t begin = 0;
  for (std::int32_t k = 0; k < c.node().n_inputs; ++k) {
    const std::int64_t rows = c.input(k).shape()[0];
    if (c.needed(k)) c.grad_inputs[k] = slice(c.grad_output, begin, begin + rows);
    begin += rows;
  }
}
template <class Scalar>
void gather_rows_backward(BackwardContext<Scalar>& c) {
  const RowIndices r = attrs_of<RowIndices>(c);  // stored, checked once
  c.grad_inputs[0] = scatter_add_rows_trusted(
      c.grad_output, r.indices, static_cast<std::size_t>(r.count), c.input(0).shape()[0]);
}
template <class Scalar>
void scatter_add_rows_backward(BackwardContext<Scalar>& c) {
  c.grad_inputs[0] = gather_rows_trusted(c.grad_output, attrs_of<RowIndices>(c).indices,
                                         static_cast<std::size_t>(c.input(0).shape()[0]));
}

}  // namespace detail
}  // namespace metalearn
