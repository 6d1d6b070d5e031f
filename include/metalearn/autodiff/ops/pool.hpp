// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/ops/pool.hpp
/// Pooling over NCHW images: max, average, global average. Max pooling is a gather of the
/// window maxima and its adjoint a scatter back to them, a closed pair (each one's backward
/// is the other), so it is differentiable to any order; average pooling is built from
/// gather_rows.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <metalearn/autodiff/ops/arithmetic.hpp>
#include <metalearn/autodiff/ops/reduce.hpp>
#include <metalearn/autodiff/ops/shape_ops.hpp>
#include <metalearn/autodiff/parallel.hpp>
#include <string>
#include <vector>

namespace metalearn {

namespace detail {

struct PoolDims {
  std::int64_t n, c, h, w, k, stride, oh, ow;
};

inline PoolDims pool_dims(const char* op, const Shape& x, std::int64_t kernel,
                          std::int64_t stride) {
  if (x.rank() != 4)
    throw InvalidArgument(std::string("metalearn::") + op + ": expected [N, C, H, W], got " +
                          x.to_string());
  if (kernel < 1 || stride < 1 || kernel > x[2] || kernel > x[3])
    throw InvalidArgument(std::string("metalearn::") + op + ": kernel " + std::to_string(kernel) +
                          " and stride " + std::to_string(stride) + " do not fit input " +
                          x.to_string());
  return {x[0],
          x[1],
          x[2],
          x[3],
          kernel,
          stride,
          (x[2] - kernel) / stride + 1,
          (x[3] - kernel) / stride + 1};
}

/// Flat input index of window offset (i, j) for every output position, in output order.
template <class Scalar>
std::int64_t* window_indices(const Var<Scalar>& x, const PoolDims& d, std::int64_t i,
                             std::int64_t j) {
  const std::int64_t count = d.n * d.c * d.oh * d.ow;
  auto* idx = static_cast<std::int64_t*>(x.tape().allocate(sizeof(std::int64_t) * count));
  std::int64_t k = 0;
  for (std::int64_t nc = 0; nc < d.n * d.c; ++nc)
    for (std::int64_t oh = 0; oh < d.oh; ++oh)
      for (std::int64_t ow = 0; ow < d.ow; ++ow)
        idx[k++] = (nc * d.h + oh * d.stride + i) * d.w + ow * d.stride + j;
  return idx;
}

template <class Scalar>
void pool_gather_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void pool_scatter_backward(BackwardContext<Scalar>& c);

// Both ops keep the window offsets (arena) and the window geometry, and read no value:
// each one's backward is the other applied to the cotangent.
template <class Scalar>
inline const OpRule<Scalar> max_pool2d_rule{"max_pool2d", &pool_gather_backward<Scalar>,
                                            reads_nothing};
template <class Scalar>
inline const OpRule<Scalar> max_unpool2d_rule{"max_unpool2d", &pool_scatter_backward<Scalar>,
                                              reads_nothing};

/// Where each window's maximum lies, as its row and column inside the window packed in 2
/// bytes (row << 8 | column): a quarter of PyTorch's 8-byte flat indices, which for conv4's
/// first block on 75 queries are 7.5 MiB of a MAML task's graph.
using WindowOffset = std::uint16_t;
constexpr std::int64_t max_pool_kernel = 256;  // rows and columns fit in a byte each

/// What both ops keep: the window offsets (arena) and the window geometry.
struct PoolWindows {
  const WindowOffset* offsets;
  std::int64_t kernel, stride;
};
inline NodeAttrs pool_attrs(const WindowOffset* offsets, const PoolDims& d) {
  return NodeAttrs::of(PoolWindows{offsets, d.k, d.stride});
}

/// for_each_maximum over planes [first, last). `d` is taken by value here and in
/// max_pool_planes: through a reference, every int64 store in the loops (row_best) could
/// alias its fields, so GCC reloaded them and stopped vectorising (max pooling 1.7x slower).
template <class Plane, class F>
void for_each_maximum(const PoolDims d, const WindowOffset* offsets, std::int64_t first,
                      std::int64_t last, Plane& plane, F& f) {
  std::int64_t k = first * d.oh * d.ow;
  for (std::int64_t nc = first; nc < last; ++nc) {
    plane(nc);
    for (std::int64_t oh = 0; oh < d.oh; ++oh) {
      const std::int64_t top = (nc * d.h + oh * d.stride) * d.w;
      for (std::int64_t ow = 0; ow < d.ow; ++ow, ++k)
        f(k, top + ow * d.stride + (offsets[k] >> 8) * d.w + (offsets[k] & 0xff));
    }
  }
}

/// body(first, last) over the planes [0, N*C), the ranges split among this thread's
/// intra-op threads (each plane's writes are its own).
template <class Body>
void for_planes(const PoolDims& d, Body&& body) {
  parallel_ranges(d.n * d.c, grain_for(d.h * d.w), body);
}

/// Calls f(k, flat) for every output k and the flat input index of its window's maximum,
/// plane by plane, with plane(nc) before each plane's outputs, on the planes' threads.
template <class Plane, class F>
void for_each_maximum(const PoolDims& d, const WindowOffset* offsets, Plane plane, F f) {
  for_planes(d, [&](std::int64_t first, std::int64_t last) {
    for_each_maximum(d, offsets, first, last, plane, f);
  });
}

/// out [N, C, OH, OW] = x at the windows' maxima. The values are filled by the caller
/// (max_pool2d finds them with the offsets) or here (`fill`).
template <class Scalar>
Output<Scalar> pool_gather(const Var<Scalar>& x, const WindowOffset* offsets, const PoolDims& d,
                           bool fill) {
  auto out =
      record(max_pool2d_rule<Scalar>, Shape{d.n, d.c, d.oh, d.ow}, {x}, pool_attrs(offsets, d));
  if (fill) {
    const Scalar* px = x.value().data();
    for_each_maximum(
        d, offsets, [](std::int64_t) {},
        [&](std::int64_t k, std::int64_t at) { out.data[k] = px[at]; });
  }
  return out;
}

/// The adjoint of pool_gather: an input-shaped tensor, zero except at each window's
/// maximum, which gets the window's g (summed where windows overlap). Zeroed plane by plane
/// just before the plane's writes, so they land in cache lines just zeroed.
template <class Scalar>
Var<Scalar> pool_scatter(const Var<Scalar>& g, const WindowOffset* offsets, const PoolDims& d) {
  auto out =
      record(max_unpool2d_rule<Scalar>, Shape{d.n, d.c, d.h, d.w}, {g}, pool_attrs(offsets, d));
  const Scalar* pg = g.value().data();
  const std::int64_t plane = d.h * d.w;
  for_each_maximum(
      d, offsets,
      [&](std::int64_t nc) {
        std::fill(out.data + nc * plane, out.data + (nc + 1) * plane, Scalar(0));
      },
      [&](std::int64_t k, std::int64_t at) { out.data[at] += pg[k]; });
  return out.var;
}

/// Planes [first, last) of max_pool2d: each window's maximum into po, where it lies into
/// offsets.
template <class Scalar>
void max_pool_planes(const Scalar* px, const PoolDims d, std::int64_t first, std::int64_t last,
                     WindowOffset* offsets, Scalar* po) {
  std::vector<std::int64_t> row_best;
  std::int64_t k = first * d.oh * d.ow;
  for (std::int64_t nc = first; nc < last; ++nc)
    for (std::int64_t oh = 0; oh < d.oh; ++oh) {
      const std::int64_t top = (nc * d.h + oh * d.stride) * d.w;
      if (d.k == 2 && d.stride == 2) {  // conv4's pooling: the four candidates unrolled
        // Flat indices first, a row at a time, then packed: GCC vectorises this form; the
        // same search written with packed offsets or selects ran 1.6-3x slower.
        row_best.resize(static_cast<std::size_t>(d.ow));
        for (std::int64_t ow = 0; ow < d.ow; ++ow) {
          std::int64_t best = top + 2 * ow;
          for (const std::int64_t at : {best + 1, best + d.w, best + d.w + 1})
            if (px[at] > px[best]) best = at;
          row_best[static_cast<std::size_t>(ow)] = best;
          po[k + ow] = px[best];
        }
        for (std::int64_t ow = 0; ow < d.ow; ++ow, ++k) {
          const std::int64_t delta = row_best[static_cast<std::size_t>(ow)] - top - 2 * ow;
          const std::int64_t lower = delta >= d.w;
          offsets[k] = static_cast<WindowOffset>(lower << 8 | (delta - lower * d.w));
        }
        continue;
      }
      for (std::int64_t ow = 0; ow < d.ow; ++ow, ++k) {
        const Scalar* p = px + top + ow * d.stride;
        std::int64_t bi = 0, bj = 0;
        for (std::int64_t i = 0; i < d.k; ++i)
          for (std::int64_t j = 0; j < d.k; ++j)
            if (p[i * d.w + j] > p[bi * d.w + bj]) bi = i, bj = j;
        offsets[k] = static_cast<WindowOffset>(bi << 8 | bj);
        po[k] = p[bi * d.w + bj];
      }
    }
}

}  // namespace detail

/// Max over kernel x kernel windows (no padding; floor of the output size, as PyTorch),
/// kernel at most 256. The gradient goes to the first maximum of each window. One pass
/// finds each window's maximum and where it lies.
template <class Scalar>
Var<Scalar> max_pool2d(const Var<Scalar>& x, std::int64_t kernel, std::int64_t stride) {
  const detail::PoolDims d = detail::pool_dims("max_pool2d", x.shape(), kernel, stride);
  if (kernel > detail::max_pool_kernel)
    throw InvalidArgument("metalearn::max_pool2d: kernel " + std::to_string(kernel) +
                          " is larger than the supported " +
                          std::to_string(detail::max_pool_kernel));
  const std::int64_t count = d.n * d.c * d.oh * d.ow;
  auto* offsets = static_cast<detail::WindowOffset*>(
      x.tape().allocate(sizeof(detail::WindowOffset) * static_cast<std::size_t>(count)));
  auto out = detail::pool_gather(x, offsets, d, false);
  detail::for_planes(d, [&](std::int64_t first, std::int64_t last) {
    detail::max_pool_planes(x.value().data(), d, first, last, offsets, out.data);
  });
  return out.var;
}

namespace detail {

// y = x at the maxima: dx = scatter of gy to them; z = scatter(g): dg = gz at the maxima.
template <class Scalar>
void pool_gather_backward(BackwardContext<Scalar>& c) {
  const PoolWindows a = attrs_of<PoolWindows>(c);
  const PoolDims d = pool_dims("max_pool2d", c.input(0).shape(), a.kernel, a.stride);
  c.grad_inputs[0] = pool_scatter(c.grad_output, a.offsets, d);
}
template <class Scalar>
void pool_scatter_backward(BackwardContext<Scalar>& c) {
  const PoolWindows a = attrs_of<PoolWindows>(c);
  const PoolDims d = pool_dims("max_pool2d", c.node().shape, a.kernel, a.stride);
  c.grad_inputs[0] = pool_gather(c.grad_output, a.offsets, d, true).var;
}

}  // namespace detail

/// Mean over kernel x kernel windows (no padding).
template <class Scalar>
Var<Scalar> avg_pool2d(const Var<Scalar>& x, std::int64_t kernel, std::int64_t stride) {
  const detail::PoolDims d = detail::pool_dims("avg_pool2d", x.shape(), kernel, stride);
  const std::size_t count = static_cast<std::size_t>(d.n * d.c * d.oh * d.ow);
  const Var<Scalar> flat = reshape(x, Shape{x.numel(), 1});
  Var<Scalar> total;
  for (std::int64_t i = 0; i < d.k; ++i)
    for (std::int64_t j = 0; j < d.k; ++j) {
      const Var<Scalar> part =
          detail::gather_rows_trusted(flat, detail::window_indices(x, d, i, j), count);
      total = total.is_assigned() ? add(total, part) : part;
    }
  return reshape(scale(total, Scalar(1) / static_cast<Scalar>(d.k * d.k)),
                 Shape{d.n, d.c, d.oh, d.ow});
}

/// Mean over the whole image: [N, C, H, W] -> [N, C].
template <class Scalar>
Var<Scalar> global_avg_pool2d(const Var<Scalar>& x) {
  const Shape s = x.shape();
  if (s.rank() != 4)
    throw InvalidArgument("metalearn::global_avg_pool2d: expected [N, C, H, W], got " +
                          s.to_string());
  return mean(reshape(x, Shape{s[0], s[1], s[2] * s[3]}), 2);
}

}  // namespace metalearn
