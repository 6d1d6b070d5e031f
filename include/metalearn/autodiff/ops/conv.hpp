// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/ops/conv.hpp
/// 2-D convolution (NCHW, cross-correlation as in every deep-learning library) and its two
/// adjoints. The three ops form a closed family: each one's backward rule is made of the
/// others, so convolutions can be differentiated to any order (second-order MAML on conv4).
/// Each is computed as im2col + GEMMs over groups of images, or, for 3x3 "same" convolutions
/// with 16+ channels (conv4's inner layers), by Winograd F(2x2, 3x3) (detail/winograd.hpp).
/// The groups are the chunks of intra-op threading (parallel.hpp); a weight gradient sums
/// them in a fixed number of partial sums set by the shapes (detail/partial_sums.hpp), so the bits
/// do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <metalearn/autodiff/detail/im2col.hpp>
#include <metalearn/autodiff/detail/op_support.hpp>
#include <metalearn/autodiff/detail/partial_sums.hpp>
#include <metalearn/autodiff/detail/winograd.hpp>
#include <metalearn/autodiff/ops/broadcast.hpp>
#include <metalearn/autodiff/ops/shape_ops.hpp>
#include <metalearn/autodiff/parallel.hpp>
#include <string>

namespace metalearn {

/// Stride and zero padding of a convolution (the same along height and width).
struct Conv2dGeometry {
  std::int64_t stride = 1;
  std::int64_t padding = 0;
};

namespace detail {

template <class Scalar>
void conv2d_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void conv2d_input_grad_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void conv2d_weight_grad_backward(BackwardContext<Scalar>& c);

// The three are bilinear in their two tensor operands, and each rule reads both.
template <class Scalar>
inline const OpRule<Scalar> conv2d_rule{"conv2d", &conv2d_backward<Scalar>,
                                        reads_input(0) | reads_input(1)};
template <class Scalar>
inline const OpRule<Scalar> conv2d_input_grad_rule{
    "conv2d_input_grad", &conv2d_input_grad_backward<Scalar>, reads_input(0) | reads_input(1)};
template <class Scalar>
inline const OpRule<Scalar> conv2d_weight_grad_rule{
    "conv2d_weight_grad", &conv2d_weight_grad_backward<Scalar>, reads_input(0) | reads_input(1)};

inline ConvDims conv_dims(const char* op, const Shape& x, const Shape& w, Conv2dGeometry g) {
  if (x.rank() != 4 || w.rank() != 4 || x[1] != w[1])
    throw InvalidArgument(shapes_message(
        op, "expected input [N, C, H, W] and weight [F, C, KH, KW] with equal C", x, w));
  if (g.stride < 1 || g.padding < 0)
    throw InvalidArgument(std::string("metalearn::") + op + ": stride " + std::to_string(g.stride) +
                          " and padding " + std::to_string(g.padding) + " must be >= 1 and >= 0");
  ConvDims d{x[0], x[1], x[2], x[3], w[0], w[2], w[3], 0, 0, g.stride, g.padding};
  const std::int64_t hp = d.h + 2 * d.pad - d.kh, wp = d.w + 2 * d.pad - d.kw;
  if (hp < 0 || wp < 0)
    throw InvalidArgument(shapes_message(op, "kernel larger than the padded input", x, w));
  d.oh = hp / d.stride + 1;
  d.ow = wp / d.stride + 1;
  return d;
}

/// Whether a convolution runs as Winograd F(2x2, 3x3) (winograd.hpp): 3x3 "same" at stride 1
/// with at least 16 channels in and out (below that the GEMMs are too thin to gain), and
/// tiles that mostly lie inside the image (7x7 maps: 49 of 64 outputs; 3x3: 9 of 16, no).
inline bool use_winograd(const ConvDims& d) {
  return d.kh == 3 && d.kw == 3 && d.pad == 1 && is_same_stride1(d) && d.c >= 16 && d.f >= 16 &&
         4 * d.p() >= 3 * 4 * ((d.oh + 1) / 2) * ((d.ow + 1) / 2);
}

/// x [N, C, H, W] convolved with 3x3 kernels g [F, C, 3, 3] (or, `adjoint`, the transposed
/// convolution of x [N, F, H, W] into [N, C, H, W]) by Winograd F(2x2, 3x3), a group of
/// images per chunk, with scratch from the tape's arena.
template <class Scalar>
void winograd_conv(const Var<Scalar>& like, const Scalar* x, const Scalar* g, const Scalar* bias,
                   const ConvDims& d, bool adjoint, Scalar* out) {
  const WinogradDims wd{d.n, adjoint ? d.f : d.c, adjoint ? d.c : d.f, d.h, d.w};
  const auto chunks = static_cast<std::size_t>(winograd_groups(wd));
  const std::int64_t each = per_worker<Scalar>(wd.scratch());
  ConvScratch<Scalar> memory(like);
  Scalar* u = memory.values(16 * d.f * d.c);
  Scalar* scratch = memory.values(each * static_cast<std::int64_t>(chunk_workers(chunks)));
  winograd_kernels(g, d.f, d.c, adjoint, u);
  parallel_chunks(chunks, [&](std::size_t i, std::size_t p) {
    winograd_conv3x3(x, u, adjoint, bias, wd, static_cast<std::int64_t>(i) * wd.group(), out,
                     scratch + static_cast<std::int64_t>(p) * each);
  });
}

/// conv_weight_grad(x, g) into dw by Winograd F(2x2, 3x3): the groups of images summed in
/// reduction_slots partial transformed gradients, scratch from the tape's arena.
template <class Scalar>
void winograd_weight_grad(const Var<Scalar>& x, const Var<Scalar>& g, const ConvDims& d,
                          Scalar* dw) {
  const WinogradDims wd{d.n, d.c, d.f, d.h, d.w};
  const std::int64_t chunks = winograd_groups(wd), slots = reduction_slots(chunks);
  const std::int64_t size = 16 * d.f * d.c, each = per_worker<Scalar>(wd.scratch());
  ConvScratch<Scalar> memory(x);
  Scalar* du = memory.values(per_worker<Scalar>(size) * slots);
  Scalar* scratch = memory.values(
      each * static_cast<std::int64_t>(chunk_workers(static_cast<std::size_t>(slots))));
  parallel_chunks(static_cast<std::size_t>(slots), [&](std::size_t s, std::size_t p) {
    Scalar* partial = du + static_cast<std::int64_t>(s) * per_worker<Scalar>(size);
    std::fill(partial, partial + size, Scalar(0));
    const auto [first, last] = slot_range(static_cast<std::int64_t>(s), slots, chunks);
    for (std::int64_t i = first; i < last; ++i)
      winograd_weight_grad3x3(x.value().data(), g.value().data(), wd, i * wd.group(), partial,
                              scratch + static_cast<std::int64_t>(p) * each);
  });
  add_slots(du, du + per_worker<Scalar>(size), slots, size);
  winograd_weight_taps(du, wd, dw);
}

/// Images per GEMM: small feature maps are batched side by side into one wide column
/// matrix (about 256 columns: large enough for an efficient GEMM, small enough that the
/// column matrix of a 64-channel layer stays in L2; 512 measured 5-10% slower), so late
/// conv4 layers (7x7, 3x3 maps) still run large GEMMs.
inline std::int64_t images_per_gemm(const ConvDims& d) {
  const std::int64_t g = (256 + d.p() - 1) / std::max<std::int64_t>(d.p(), 1);
  return std::max<std::int64_t>(1, std::min(g, d.n));
}

template <class Scalar>
using MatMap = Eigen::Map<RowMatrix<Scalar>>;
template <class Scalar>
using ConstMatMap = Eigen::Map<const RowMatrix<Scalar>>;

inline NodeAttrs conv_attrs(Conv2dGeometry g) { return NodeAttrs::of(g); }
template <class Scalar>
Conv2dGeometry geometry_of(const BackwardContext<Scalar>& c) {
  return attrs_of<Conv2dGeometry>(c);
}

/// The groups of images (images_per_gemm) an im2col convolution splits into: its chunks.
inline std::size_t group_chunks(const ConvDims& d) {
  const std::int64_t group = images_per_gemm(d);
  return static_cast<std::size_t>((d.n + group - 1) / group);
}

/// Each participant's scratch for one group: its column matrix [CKK, group P] and, when a
/// group holds several images, an [F, group P] matrix of their output maps (or gradients).
template <class Scalar>
class GroupScratch {
 public:
  GroupScratch(const Var<Scalar>& like, const ConvDims& d, std::size_t chunks, bool outputs)
      : memory_(like),
        ld_(images_per_gemm(d) * d.p()),
        columns_(per_worker<Scalar>(d.ckk() * ld_)),
        outputs_(outputs && images_per_gemm(d) > 1 ? per_worker<Scalar>(d.f * ld_) : 0),
        base_(memory_.values((columns_ + outputs_) *
                             static_cast<std::int64_t>(chunk_workers(chunks)))) {}
  Scalar* columns(std::size_t p) const {
    return base_ + static_cast<std::int64_t>(p) * (columns_ + outputs_);
  }
  /// Null when a group is one image (its maps are contiguous in the tensor already).
  Scalar* outputs(std::size_t p) const { return outputs_ == 0 ? nullptr : columns(p) + columns_; }

 private:
  ConvScratch<Scalar> memory_;
  std::int64_t ld_, columns_, outputs_;
  Scalar* base_;
};

/// Copy images [n0, n0 + g) of a [N, F, P] tensor into a [F, g P] matrix, or back (adding).
template <class Scalar>
void gather_images(const Scalar* src, const ConvDims& d, std::int64_t n0, std::int64_t g,
                   Scalar* dst) {
  for (std::int64_t k = 0; k < g; ++k)
    for (std::int64_t f = 0; f < d.f; ++f)
      std::copy(src + ((n0 + k) * d.f + f) * d.p(), src + ((n0 + k) * d.f + f + 1) * d.p(),
                dst + f * g * d.p() + k * d.p());
}
/// Images [n0, n0 + count) of a gradient [N, F, P] as one [F, count P] matrix: in place
/// for a single image, gathered into `buffer` for several.
template <class Scalar>
const Scalar* gradient_block(const Scalar* g, const ConvDims& d, std::int64_t n0,
                             std::int64_t count, Scalar* buffer) {
  if (buffer == nullptr) return g + n0 * d.f * d.p();  // one image per GEMM: already contiguous
  gather_images(g, d, n0, count, buffer);
  return buffer;
}
template <class Scalar>
void scatter_images(const Scalar* src, const ConvDims& d, std::int64_t n0, std::int64_t g,
                    Scalar* dst) {
  for (std::int64_t k = 0; k < g; ++k)
    for (std::int64_t f = 0; f < d.f; ++f)
      std::copy(src + f * g * d.p() + k * d.p(), src + f * g * d.p() + (k + 1) * d.p(),
                dst + ((n0 + k) * d.f + f) * d.p());
}

}  // namespace detail

namespace detail {

/// out = conv(x, w) (+ bias[f] on every output of filter f when `bias` is not null): im2col
/// of a group of images, then one GEMM.
template <class Scalar>
void conv2d_compute(const Var<Scalar>& x, const Var<Scalar>& w, const Scalar* bias,
                    const ConvDims& d, Scalar* out) {
  if (use_winograd(d))
    return winograd_conv(x, x.value().data(), w.value().data(), bias, d, false, out);
  const std::int64_t group = images_per_gemm(d);
  const std::size_t chunks = group_chunks(d);
  const GroupScratch<Scalar> memory(x, d, chunks, true);
  const Scalar* px = x.value().data();
  const ConstMatMap<Scalar> W(w.value().data(), d.f, d.ckk());
  parallel_chunks(chunks, [&](std::size_t i, std::size_t p) {
    Scalar* col = memory.columns(p);
    Scalar* tmp = memory.outputs(p);
    const std::int64_t n0 = static_cast<std::int64_t>(i) * group;
    const std::int64_t count = std::min(group, d.n - n0);
    for (std::int64_t k = 0; k < count; ++k)
      im2col(px + (n0 + k) * d.c * d.h * d.w, d, col + k * d.p(), count * d.p());
    MatMap<Scalar> y(group == 1 ? out + n0 * d.f * d.p() : tmp, d.f, count * d.p());
    const ConstMatMap<Scalar> cols(col, d.ckk(), count * d.p());
    if (bias != nullptr) {  // the GEMM accumulates onto the bias instead of onto zeros
      y.colwise() = Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, 1>>(bias, d.f);
      y.noalias() += W * cols;
    } else {
      y.noalias() = W * cols;
    }
    if (group > 1) scatter_images(tmp, d, n0, count, out);
  });
}

}  // namespace detail

/// y = conv(x, w): x [N, C, H, W], w [F, C, KH, KW] -> [N, F, OH, OW] with
/// OH = (H + 2 padding - KH) / stride + 1. Cross-correlation.
template <class Scalar>
Var<Scalar> conv2d(const Var<Scalar>& x, const Var<Scalar>& w, Conv2dGeometry g = {}) {
  const detail::ConvDims d = detail::conv_dims("conv2d", x.shape(), w.shape(), g);
  auto out = detail::record(detail::conv2d_rule<Scalar>, Shape{d.n, d.f, d.oh, d.ow}, {x, w},
                            detail::conv_attrs(g));
  detail::conv2d_compute(x, w, static_cast<const Scalar*>(nullptr), d, out.data);
  return out.var;
}

/// y = conv(x, w) + b with b [F] added to every output of filter f: one op, so the bias
/// costs no extra pass over the output (the bias gradient is one reduction of g).
template <class Scalar>
Var<Scalar> conv2d(const Var<Scalar>& x, const Var<Scalar>& w, const Var<Scalar>& b,
                   Conv2dGeometry g = {}) {
  const detail::ConvDims d = detail::conv_dims("conv2d", x.shape(), w.shape(), g);
  if (b.shape() != Shape{d.f})
    throw InvalidArgument(detail::shapes_message(
        "conv2d", "bias must be [F] for weight [F, C, KH, KW]", b.shape(), w.shape()));
  auto out = detail::record(detail::conv2d_rule<Scalar>, Shape{d.n, d.f, d.oh, d.ow}, {x, w, b},
                            detail::conv_attrs(g));
  detail::conv2d_compute(x, w, b.value().data(), d, out.data);
  return out.var;
}

/// The input gradient of conv2d: given g [N, F, OH, OW] and w, the x-shaped
/// sum over windows of w^T g (a transposed convolution). `input_shape` is x's shape.
template <class Scalar>
Var<Scalar> conv2d_input_grad(const Var<Scalar>& g, const Var<Scalar>& w, const Shape& input_shape,
                              Conv2dGeometry geo = {}) {
  const detail::ConvDims d = detail::conv_dims("conv2d_input_grad", input_shape, w.shape(), geo);
  if (g.shape() != Shape{d.n, d.f, d.oh, d.ow})
    throw InvalidArgument(detail::shapes_message("conv2d_input_grad",
                                                 "gradient does not match the convolution's output",
                                                 g.shape(), Shape{d.n, d.f, d.oh, d.ow}));
  auto out = detail::record(detail::conv2d_input_grad_rule<Scalar>, input_shape, {g, w},
                            detail::conv_attrs(geo));
  if (detail::use_winograd(d)) {
    detail::winograd_conv(g, g.value().data(), w.value().data(),
                          static_cast<const Scalar*>(nullptr), d, true, out.data);
    return out.var;
  }
  const std::int64_t group = detail::images_per_gemm(d);
  const std::size_t chunks = detail::group_chunks(d);
  const detail::GroupScratch<Scalar> memory(g, d, chunks, true);
  const detail::ConstMatMap<Scalar> W(w.value().data(), d.f, d.ckk());
  const Scalar* pg = g.value().data();
  detail::parallel_chunks(chunks, [&](std::size_t i, std::size_t p) {
    Scalar* col = memory.columns(p);
    const std::int64_t n0 = static_cast<std::int64_t>(i) * group;
    const std::int64_t k_count = std::min(group, d.n - n0);
    const Scalar* gk = detail::gradient_block(pg, d, n0, k_count, memory.outputs(p));
    detail::MatMap<Scalar>(col, d.ckk(), k_count * d.p()).noalias() =
        W.transpose() * detail::ConstMatMap<Scalar>(gk, d.f, k_count * d.p());
    for (std::int64_t k = 0; k < k_count; ++k)
      detail::col2im(col + k * d.p(), d, out.data + (n0 + k) * d.c * d.h * d.w, k_count * d.p());
  });
  return out.var;
}

/// The weight gradient of conv2d: given x and g [N, F, OH, OW], the w-shaped
/// sum over images of g col(x)^T. `weight_shape` is w's shape.
template <class Scalar>
Var<Scalar> conv2d_weight_grad(const Var<Scalar>& x, const Var<Scalar>& g,
                               const Shape& weight_shape, Conv2dGeometry geo = {}) {
  const detail::ConvDims d = detail::conv_dims("conv2d_weight_grad", x.shape(), weight_shape, geo);
  if (g.shape() != Shape{d.n, d.f, d.oh, d.ow})
    throw InvalidArgument(detail::shapes_message("conv2d_weight_grad",
                                                 "gradient does not match the convolution's output",
                                                 g.shape(), Shape{d.n, d.f, d.oh, d.ow}));
  auto out = detail::record(detail::conv2d_weight_grad_rule<Scalar>, weight_shape, {x, g},
                            detail::conv_attrs(geo));
  if (detail::use_winograd(d)) {
    detail::winograd_weight_grad(x, g, d, out.data);
    return out.var;
  }
  // Each slot sums its groups into its own partial (slot 0 into dw), then the partials
  // are added in slot order.
  const std::int64_t group = detail::images_per_gemm(d);
  const auto chunks = static_cast<std::int64_t>(detail::group_chunks(d));
  const std::int64_t slots = detail::reduction_slots(chunks), size = d.f * d.ckk();
  const detail::GroupScratch<Scalar> memory(x, d, static_cast<std::size_t>(slots), true);
  detail::ConvScratch<Scalar> sums(x);
  Scalar* partials =
      slots > 1 ? sums.values(detail::per_worker<Scalar>(size) * (slots - 1)) : nullptr;
  const Scalar* px = x.value().data();
  const Scalar* pg = g.value().data();
  detail::parallel_chunks(static_cast<std::size_t>(slots), [&](std::size_t s, std::size_t p) {
    Scalar* col = memory.columns(p);
    detail::MatMap<Scalar> dW(
        s == 0 ? out.data
               : partials + static_cast<std::int64_t>(s - 1) * detail::per_worker<Scalar>(size),
        d.f, d.ckk());
    dW.setZero();
    const auto [first, last] = detail::slot_range(static_cast<std::int64_t>(s), slots, chunks);
    for (std::int64_t i = first; i < last; ++i) {
      const std::int64_t n0 = i * group, k_count = std::min(group, d.n - n0);
      for (std::int64_t k = 0; k < k_count; ++k)
        detail::im2col(px + (n0 + k) * d.c * d.h * d.w, d, col + k * d.p(), k_count * d.p());
      const Scalar* gk = detail::gradient_block(pg, d, n0, k_count, memory.outputs(p));
      const detail::ConstMatMap<Scalar> G(gk, d.f, k_count * d.p());
      const detail::ConstMatMap<Scalar> cols(col, d.ckk(), k_count * d.p());
      if (d.ckk() <= 16)  // a first layer (1-channel 3x3: 9 rows): F x CKK dot products of
        dW.noalias() += G.lazyProduct(cols.transpose());  // long rows beat a GEMM this thin
      else
        dW.noalias() += G * cols.transpose();
    }
  });
  detail::add_slots(out.data, partials, slots, size);
  return out.var;
}

namespace detail {

// y = conv(x, w) [+ b]: dx = conv_input_grad(g, w), dw = conv_weight_grad(x, g),
// db = g summed over images and positions.
template <class Scalar>
void conv2d_backward(BackwardContext<Scalar>& c) {
  const Conv2dGeometry geo = geometry_of(c);
  const Var<Scalar> x = c.input(0), w = c.input(1), g = c.grad_output;
  if (c.needed(0)) c.grad_inputs[0] = conv2d_input_grad(g, w, x.shape(), geo);
  if (c.needed(1)) c.grad_inputs[1] = conv2d_weight_grad(x, g, w.shape(), geo);
  if (c.node().n_inputs == 3 && c.needed(2)) {
    const std::int64_t f = w.shape()[0];
    c.grad_inputs[2] = reshape(sum_to(g, Shape{1, f, 1, 1}), Shape{f});
  }
}

// z = conv_input_grad(g, w) is bilinear with <gz, z> = <conv(gz, w), g>, so
// d/dg = conv(gz, w) and d/dw = conv_weight_grad(gz, g).
template <class Scalar>
void conv2d_input_grad_backward(BackwardContext<Scalar>& c) {
  const Conv2dGeometry geo = geometry_of(c);
  const Var<Scalar> g = c.input(0), w = c.input(1), gz = c.grad_output;
  if (c.needed(0)) c.grad_inputs[0] = conv2d(gz, w, geo);
  if (c.needed(1)) c.grad_inputs[1] = conv2d_weight_grad(gz, g, w.shape(), geo);
}

// z = conv_weight_grad(x, g) with <gz, z> = <g, conv(x, gz)>, so
// d/dx = conv_input_grad(g, gz) and d/dg = conv(x, gz).
template <class Scalar>
void conv2d_weight_grad_backward(BackwardContext<Scalar>& c) {
  const Conv2dGeometry geo = geometry_of(c);
  const Var<Scalar> x = c.input(0), g = c.input(1), gz = c.grad_output;
  if (c.needed(0)) c.grad_inputs[0] = conv2d_input_grad(g, gz, x.shape(), geo);
  if (c.needed(1)) c.grad_inputs[1] = conv2d(x, gz, geo);
}

}  // namespace detail
}  // namespace metalearn
