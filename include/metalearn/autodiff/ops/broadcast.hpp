// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/ops/broadcast.hpp
/// NumPy broadcasting: the shape rule, `broadcast_to` and its adjoint `sum_to`.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <metalearn/autodiff/detail/op_support.hpp>
#include <string>

namespace metalearn {

namespace detail {

using Dims4 = std::array<std::int64_t, 4>;

/// Dimensions right-aligned into four slots, padded with ones in front.
inline Dims4 pad4(const Shape& s) {
  Dims4 d{1, 1, 1, 1};
  for (int i = 0; i < s.rank(); ++i) d[4 - s.rank() + i] = s[i];
  return d;
}

/// Element strides of `s` read as a tensor of shape `out` (0 along broadcast axes).
inline Dims4 broadcast_strides(const Shape& s, const Dims4& out) {
  const Dims4 d = pad4(s);
  Dims4 st{};
  std::int64_t stride = 1;
  for (int i = 3; i >= 0; --i) {
    st[i] = (d[i] == 1 && out[i] != 1) ? 0 : stride;
    stride *= d[i];
  }
  return st;
}

/// True if `from` broadcasts to exactly `to`.
inline bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.rank() > to.rank()) return false;
  for (int i = 1; i <= from.rank(); ++i) {
    const std::int64_t f = from[from.rank() - i], t = to[to.rank() - i];
    if (f != t && f != 1) return false;
  }
  return true;
}

/// Merges neighbouring axes that every operand walks as one (contiguously, or repeated along
/// both), dropping size-1 axes, so the inner loops run long: a bias [1, F, 1, 1] against
/// [N, F, H, W] becomes [N, F, H W]. `od` is the loop shape (contiguous), `st` the strides of
/// the other operands in it; both are rewritten, right-aligned.
inline void coalesce(Dims4& od, std::initializer_list<Dims4*> st) {
  Dims4 nd{1, 1, 1, 1};
  std::array<Dims4, 2> ns{};
  int out = 3;
  bool started = false;
  for (int i = 3; i >= 0; --i) {
    if (od[i] == 1) continue;
    bool merge = started;
    int k = 0;
    for (const Dims4* s : st) merge = merge && (*s)[i] == ns[k++][out] * nd[out];
    if (merge) {
      nd[out] *= od[i];
      continue;
    }
    if (started) --out;
    started = true;
    nd[out] = od[i];
    k = 0;
    for (const Dims4* s : st) ns[k++][out] = (*s)[i];
  }
  od = nd;
  int k = 0;
  for (Dims4* s : st) *s = ns[k++];
}

/// out[i] = f(a[i'], b[i'']) over the broadcast shape `so`. The innermost loop is
/// specialised on whether each operand is contiguous or repeated along the last axis.
template <class Scalar, class F>
void broadcast_apply(const Scalar* a, const Shape& sa, const Scalar* b, const Shape& sb,
                     Scalar* out, const Shape& so, F f) {
  Dims4 od = pad4(so), as = broadcast_strides(sa, od), bs = broadcast_strides(sb, od);
  coalesce(od, {&as, &bs});
  const std::int64_t n = od[3];
  for (std::int64_t i0 = 0; i0 < od[0]; ++i0)
    for (std::int64_t i1 = 0; i1 < od[1]; ++i1)
      for (std::int64_t i2 = 0; i2 < od[2]; ++i2) {
        const Scalar* pa = a + i0 * as[0] + i1 * as[1] + i2 * as[2];
        const Scalar* pb = b + i0 * bs[0] + i1 * bs[1] + i2 * bs[2];
        Scalar* po = out + ((i0 * od[1] + i1) * od[2] + i2) * n;
        if (as[3] != 0 && bs[3] != 0) {
          for (std::int64_t k = 0; k < n; ++k) po[k] = f(pa[k], pb[k]);
        } else if (as[3] != 0) {
          const Scalar vb = *pb;
          for (std::int64_t k = 0; k < n; ++k) po[k] = f(pa[k], vb);
        } else if (bs[3] != 0) {
          const Scalar va = *pa;
          for (std::int64_t k = 0; k < n; ++k) po[k] = f(va, pb[k]);
        } else {
          const Scalar v = f(*pa, *pb);
          for (std::int64_t k = 0; k < n; ++k) po[k] = v;
        }
      }
}

template <class Scalar>
void broadcast_to_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void sum_to_backward(BackwardContext<Scalar>& c);

template <class Scalar>
inline const OpRule<Scalar> broadcast_to_rule{"broadcast_to", &broadcast_to_backward<Scalar>,
                                              reads_nothing};
template <class Scalar>
inline const OpRule<Scalar> sum_to_rule{"sum_to", &sum_to_backward<Scalar>, reads_nothing};

}  // namespace detail

/// The NumPy broadcast of two shapes (right-aligned; each pair of dimensions equal or one
/// of them 1). Throws InvalidArgument naming `op` and both shapes otherwise.
inline Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const int r = std::max(a.rank(), b.rank());
  std::array<std::int64_t, 4> d{};
  for (int i = 1; i <= r; ++i) {
    const std::int64_t x = i <= a.rank() ? a[a.rank() - i] : 1;
    const std::int64_t y = i <= b.rank() ? b[b.rank() - i] : 1;
    if (x != y && x != 1 && y != 1)
      throw InvalidArgument(detail::shapes_message(op, "cannot broadcast", a, b));
    d[r - i] = x == 1 ? y : x;
  }
  return Shape::from_array(d, r);
}

/// Repeat `x` along broadcast axes to `shape` (NumPy rules). Adjoint: sum_to.
template <class Scalar>
Var<Scalar> broadcast_to(const Var<Scalar>& x, const Shape& shape) {
  const Shape sx = x.shape();
  if (!detail::broadcasts_to(sx, shape))
    throw InvalidArgument(detail::shapes_message("broadcast_to", "cannot broadcast", sx, shape));
  if (sx == shape) return x;
  auto out = detail::record(detail::broadcast_to_rule<Scalar>, shape, {x});
  const Scalar* px = x.value().data();
  detail::broadcast_apply(px, sx, px, sx, out.data, shape, [](Scalar v, Scalar) { return v; });
  return out.var;
}

/// Sum `x` over the axes along which `shape` was broadcast to x's shape, giving `shape`
/// (the adjoint of broadcast_to; how broadcast operands receive their gradients).
template <class Scalar>
Var<Scalar> sum_to(const Var<Scalar>& x, const Shape& shape) {
  const Shape sx = x.shape();
  if (!detail::broadcasts_to(shape, sx))
    throw InvalidArgument(detail::shapes_message("sum_to", "cannot reduce", sx, shape));
  if (sx == shape) return x;
  auto out = detail::record(detail::sum_to_rule<Scalar>, shape, {x});
  const Scalar* px = x.value().data();
  Scalar* po = out.data;
  std::fill(po, po + shape.numel(), Scalar(0));
  detail::Dims4 xd = detail::pad4(sx), os = detail::broadcast_strides(shape, xd);
  detail::coalesce(xd, {&os});
  const std::int64_t n = xd[3];
  for (std::int64_t i0 = 0; i0 < xd[0]; ++i0)
    for (std::int64_t i1 = 0; i1 < xd[1]; ++i1)
      for (std::int64_t i2 = 0; i2 < xd[2]; ++i2) {
        Scalar* o = po + i0 * os[0] + i1 * os[1] + i2 * os[2];
        if (os[3] != 0) {
          for (std::int64_t k = 0; k < n; ++k) o[k] += px[k];
        } else {  // Eigen's vectorised sum: a scalar loop is one dependent add per element
          *o += Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>(px, n).sum();
        }
        px += n;
      }
  return out.var;
}

namespace detail {
template <class Scalar>
void broadcast_to_backward(BackwardContext<Scalar>& c) {
  c.grad_inputs[0] = sum_to(c.grad_output, c.input(0).shape());
}
template <class Scalar>
void sum_to_backward(BackwardContext<Scalar>& c) {
  c.grad_inputs[0] = broadcast_to(c.grad_output, c.input(0).shape());
}
}  // namespace detail

}  // namespace metalearn
