// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/ops/reduce.hpp
/// Reductions: sum and mean (of all elements or along an axis), max and min along an axis.
#pragma once

#include <cstdint>
#include <limits>
#include <metalearn/autodiff/detail/op_support.hpp>
#include <metalearn/autodiff/ops/arithmetic.hpp>
#include <metalearn/autodiff/ops/broadcast.hpp>
#include <metalearn/autodiff/ops/shape_ops.hpp>

namespace metalearn {

namespace detail {

/// x's shape with `axis` set to 1 (keepdim form) or removed.
inline Shape reduced_shape(const Shape& s, int axis, bool keepdim) {
  std::array<std::int64_t, 4> d{};
  int r = 0;
  for (int i = 0; i < s.rank(); ++i) {
    if (i != axis)
      d[r++] = s[i];
    else if (keepdim)
      d[r++] = 1;
  }
  return Shape::from_array(d, r);
}

template <class Scalar>
void extremum_backward(BackwardContext<Scalar>& c);

struct ReducedAxis {  // max, min
  int axis;
};

// The gradient goes to the first extremal element: found again from x and the output.
template <class Scalar>
inline const OpRule<Scalar> max_rule{"max", &extremum_backward<Scalar>,
                                     reads_input(0) | reads_output};
template <class Scalar>
inline const OpRule<Scalar> min_rule{"min", &extremum_backward<Scalar>,
                                     reads_input(0) | reads_output};

/// max (is_max) or min along `axis`, keeping the axis. Ties: the first extremal element
/// gets the whole gradient, so the derivative is a valid subgradient.
template <class Scalar>
Var<Scalar> extremum(const Var<Scalar>& x, int axis, bool keepdim, bool is_max) {
  const OpRule<Scalar>& rule = is_max ? max_rule<Scalar> : min_rule<Scalar>;
  const char* op = rule.name;
  const Shape sx = x.shape();
  const int a = sx.normalize_axis(axis, (std::string("metalearn::") + op).c_str());
  if (sx[a] == 0)
    throw InvalidArgument(std::string("metalearn::") + op + ": empty axis " + std::to_string(axis) +
                          " of shape " + sx.to_string());
  const NodeAttrs attrs = NodeAttrs::of(ReducedAxis{a});
  const Shape kept = reduced_shape(sx, a, true);
  auto out = record(rule, kept, {x}, attrs);
  std::int64_t outer = 1, inner = 1;
  for (int i = 0; i < a; ++i) outer *= sx[i];
  for (int i = a + 1; i < sx.rank(); ++i) inner *= sx[i];
  const Scalar* px = x.value().data();
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) {
      const Scalar* p = px + o * sx[a] * inner + i;
      Scalar best = p[0];
      for (std::int64_t k = 1; k < sx[a]; ++k) {
        const Scalar v = p[k * inner];
        if (is_max ? v > best : v < best) best = v;
      }
      out.data[o * inner + i] = best;
    }
  return keepdim ? out.var : reshape(out.var, reduced_shape(sx, a, false));
}

}  // namespace detail

/// Sum of all elements, as a rank-0 tensor.
template <class Scalar>
Var<Scalar> sum(const Var<Scalar>& x) {
  return sum_to(x, Shape{});
}

/// Sum along `axis` (negative counts from the end); `keepdim` keeps it with size 1.
template <class Scalar>
Var<Scalar> sum(const Var<Scalar>& x, int axis, bool keepdim = false) {
  const Shape sx = x.shape();
  const int a = sx.normalize_axis(axis, "metalearn::sum");
  const Var<Scalar> kept = sum_to(x, detail::reduced_shape(sx, a, true));
  return keepdim ? kept : reshape(kept, detail::reduced_shape(sx, a, false));
}

/// Mean of all elements, as a rank-0 tensor. Throws InvalidArgument for an empty tensor.
template <class Scalar>
Var<Scalar> mean(const Var<Scalar>& x) {
  if (x.numel() == 0) throw InvalidArgument("metalearn::mean: empty tensor");
  return scale(sum(x), Scalar(1) / static_cast<Scalar>(x.numel()));
}

/// Mean along `axis`.
template <class Scalar>
Var<Scalar> mean(const Var<Scalar>& x, int axis, bool keepdim = false) {
  const Shape sx = x.shape();
  const int a = sx.normalize_axis(axis, "metalearn::mean");
  if (sx[a] == 0) throw InvalidArgument("metalearn::mean: empty axis of shape " + sx.to_string());
  return scale(sum(x, a, keepdim), Scalar(1) / static_cast<Scalar>(sx[a]));
}

/// Largest element along `axis`. The gradient goes to the first largest element.
template <class Scalar>
Var<Scalar> max(const Var<Scalar>& x, int axis, bool keepdim = false) {
  return detail::extremum(x, axis, keepdim, true);
}

/// Smallest element along `axis`. The gradient goes to the first smallest element.
template <class Scalar>
Var<Scalar> min(const Var<Scalar>& x, int axis, bool keepdim = false) {
  return detail::extremum(x, axis, keepdim, false);
}

namespace detail {

// d max = g at the (first) arg-max, 0 elsewhere: g broadcast back times a constant one-hot.
template <class Scalar>
void extremum_backward(BackwardContext<Scalar>& c) {
  const Var<Scalar> x = c.input(0);
  const Shape sx = x.shape();
  const int a = attrs_of<ReducedAxis>(c).axis;
  auto mask = record_constant(x, sx);
  std::fill(mask.data, mask.data + sx.numel(), Scalar(0));
  std::int64_t outer = 1, inner = 1;
  for (int i = 0; i < a; ++i) outer *= sx[i];
  for (int i = a + 1; i < sx.rank(); ++i) inner *= sx[i];
  const Scalar* px = x.value().data();
  const Scalar* pv = c.output().value().data();
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) {
      const std::int64_t base = o * sx[a] * inner + i;
      for (std::int64_t k = 0; k < sx[a]; ++k)
        if (px[base + k * inner] == pv[o * inner + i]) {
          mask.data[base + k * inner] = Scalar(1);
          break;
        }
    }
  c.grad_inputs[0] = mul(broadcast_to(c.grad_output, sx), mask.var);
}

}  // namespace detail
}  // namespace metalearn
