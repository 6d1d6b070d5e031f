// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/detail/im2col.hpp
/// The layout side of convolution: a convolution's sizes, im2col and its adjoint col2im
/// (with the contiguous "same" stride-1 path), and the per-call scratch they run in.
#pragma once

#include <algorithm>
#include <cstdint>
#include <metalearn/autodiff/var.hpp>
#include <metalearn/config.hpp>
#include <utility>

namespace metalearn::detail {

/// Sizes of one convolution: input [N, C, H, W], weight [F, C, KH, KW], output [N, F, OH, OW].
struct ConvDims {
  std::int64_t n, c, h, w, f, kh, kw, oh, ow, stride, pad;
  std::int64_t ckk() const { return c * kh * kw; }
  std::int64_t p() const { return oh * ow; }
};

/// Output columns [lo, hi) whose input column ow * stride - pad + j lies inside [0, w).
inline std::pair<std::int64_t, std::int64_t> valid_columns(const ConvDims& d, std::int64_t j) {
  const std::int64_t first = d.pad - j;  // ow * stride >= pad - j
  std::int64_t lo = first <= 0 ? 0 : (first + d.stride - 1) / d.stride;
  std::int64_t hi = (d.w - 1 + d.pad - j) < 0 ? 0 : (d.w - 1 + d.pad - j) / d.stride + 1;
  lo = std::min(lo, d.ow);
  hi = std::max(lo, std::min(hi, d.ow));
  return {lo, hi};
}

/// Output rows [lo, hi) whose input row oh * stride - pad + i lies inside [0, h).
inline std::pair<std::int64_t, std::int64_t> valid_rows(const ConvDims& d, std::int64_t i) {
  ConvDims t = d;  // the same arithmetic as for columns, with the roles of h and w swapped
  t.w = d.h;
  t.ow = d.oh;
  return valid_columns(t, i);
}

/// A "same" convolution at stride 1 (OH = H, OW = W): row (c, i, j) of the column matrix is
/// the image plane shifted by (i - pad) W + (j - pad), so it is one contiguous copy, plus
/// zeros where the window leaves the image (whole rows at the top or bottom, and the
/// wrapped-around entries between rows). Far fewer, longer copies than row by row: the
/// 14x14 maps of conv4 have rows of 14 floats.
inline bool is_same_stride1(const ConvDims& d) {
  return d.stride == 1 && d.oh == d.h && d.ow == d.w;
}

/// Zeroes the entries of a "same" stride-1 row image [OH, OW] that a contiguous shifted
/// copy filled with values wrapped around from the neighbouring image row: columns
/// [col_hi, OW) of every valid row but the last, [0, col_lo) of every valid row but the
/// first. Column by column, strided: a handful of stores, not a memset call per row.
template <class Scalar>
void zero_wrapped(Scalar* row, const ConvDims& d, std::int64_t row_lo, std::int64_t row_hi,
                  std::int64_t col_lo, std::int64_t col_hi) {
  for (std::int64_t q = col_hi; q < d.ow; ++q)
    for (std::int64_t oh = row_lo; oh + 1 < row_hi; ++oh) row[oh * d.ow + q] = Scalar(0);
  for (std::int64_t q = 0; q < col_lo; ++q)
    for (std::int64_t oh = row_lo + 1; oh < row_hi; ++oh) row[oh * d.ow + q] = Scalar(0);
}

/// The part of row (i, j) of a "same" stride-1 column matrix that is a contiguous copy of
/// the plane: columns [begin, end), source offset `shift`; empty when no row is valid.
struct ShiftedSpan {
  std::int64_t begin, end, shift, row_lo, row_hi, col_lo, col_hi;
};
inline ShiftedSpan shifted_span(const ConvDims& d, std::int64_t i, std::int64_t j) {
  const auto [row_lo, row_hi] = valid_rows(d, i);
  const auto [col_lo, col_hi] = valid_columns(d, j);
  ShiftedSpan s{0, 0, (i - d.pad) * d.w + (j - d.pad), row_lo, row_hi, col_lo, col_hi};
  if (row_lo < row_hi && col_lo < col_hi) {
    s.begin = row_lo * d.ow + col_lo;
    s.end = (row_hi - 1) * d.ow + col_hi;
  }
  return s;
}

/// Columns of one image [C, H, W] into rows of length OH*OW, row r starting at
/// col + r * ld (ld >= OH*OW lets several images share one wide matrix). Zero where the
/// window leaves the image. The valid span of each output row is found once, so the inner
/// loop is a plain (strided) copy.
template <class Scalar>
void im2col(const Scalar* x, const ConvDims& d, Scalar* col, std::int64_t ld) {
  const bool same = is_same_stride1(d);
  for (std::int64_t c = 0; c < d.c; ++c)
    for (std::int64_t i = 0; i < d.kh; ++i)
      for (std::int64_t j = 0; j < d.kw; ++j) {
        Scalar* row = col + ((c * d.kh + i) * d.kw + j) * ld;
        if (same) {
          const ShiftedSpan s = shifted_span(d, i, j);
          const Scalar* plane = x + c * d.h * d.w;
          std::fill(row, row + s.begin, Scalar(0));
          if (s.begin < s.end)
            std::copy(plane + (s.begin + s.shift), plane + (s.end + s.shift), row + s.begin);
          std::fill(row + s.end, row + d.p(), Scalar(0));
          zero_wrapped(row, d, s.row_lo, s.row_hi, s.col_lo, s.col_hi);
          continue;
        }
        const auto [lo, hi] = valid_columns(d, j);
        for (std::int64_t oh = 0; oh < d.oh; ++oh) {
          const std::int64_t y = oh * d.stride - d.pad + i;
          Scalar* out = row + oh * d.ow;
          if (y < 0 || y >= d.h) {
            std::fill(out, out + d.ow, Scalar(0));
            continue;
          }
          const Scalar* in = x + (c * d.h + y) * d.w - d.pad + j;
          std::fill(out, out + lo, Scalar(0));
          if (d.stride == 1) {
            std::copy(in + lo, in + hi, out + lo);
          } else {
            for (std::int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow * d.stride];
          }
          std::fill(out + hi, out + d.ow, Scalar(0));
        }
      }
}

/// The adjoint of im2col: image x [C, H, W] = the sum of each column entry at its image
/// position (x is overwritten). `col` is scratch. In the "same" stride-1 path the centre
/// tap covers every position with shift 0, so it is copied in first (no zero fill); each
/// other row has its wrapped-around entries zeroed and is added to the shifted plane in
/// one contiguous pass.
template <class Scalar>
void col2im(Scalar* col, const ConvDims& d, Scalar* x, std::int64_t ld) {
  const auto row_of = [&](std::int64_t c, std::int64_t i, std::int64_t j) {
    return col + ((c * d.kh + i) * d.kw + j) * ld;
  };
  if (is_same_stride1(d)) {
    for (std::int64_t c = 0; c < d.c; ++c) {
      Scalar* plane = x + c * d.h * d.w;
      const Scalar* centre = row_of(c, d.pad, d.pad);
      std::copy(centre, centre + d.p(), plane);
      for (std::int64_t i = 0; i < d.kh; ++i)
        for (std::int64_t j = 0; j < d.kw; ++j) {
          if (i == d.pad && j == d.pad) continue;
          Scalar* row = row_of(c, i, j);
          const ShiftedSpan s = shifted_span(d, i, j);
          zero_wrapped(row, d, s.row_lo, s.row_hi, s.col_lo, s.col_hi);
          for (std::int64_t q = s.begin; q < s.end; ++q) plane[q + s.shift] += row[q];
        }
    }
    return;
  }
  std::fill(x, x + d.c * d.h * d.w, Scalar(0));
  for (std::int64_t c = 0; c < d.c; ++c)
    for (std::int64_t i = 0; i < d.kh; ++i)
      for (std::int64_t j = 0; j < d.kw; ++j) {
        const Scalar* row = row_of(c, i, j);
        const auto [lo, hi] = valid_columns(d, j);
        for (std::int64_t oh = 0; oh < d.oh; ++oh) {
          const std::int64_t y = oh * d.stride - d.pad + i;
          if (y < 0 || y >= d.h) continue;
          Scalar* out = x + (c * d.h + y) * d.w - d.pad + j;
          const Scalar* in = row + oh * d.ow;
          for (std::int64_t ow = lo; ow < hi; ++ow) out[ow * d.stride] += in[ow];
        }
      }
}

/// Scratch of one convolution call (column matrices, Winograd transforms): blocks of the
/// tape's pool that this object holds, like a Var holds its value, and lets go when the
/// call returns, so later values reuse them at once. Kept for the tape's life instead, it
/// tripled a second-order MAML task's memory (288 MiB for one conv4 task).
template <class Scalar>
class ConvScratch {
 public:
  explicit ConvScratch(const Var<Scalar>& like) : tape_(like.tape()) {}
  ConvScratch(const ConvScratch&) = delete;
  ConvScratch& operator=(const ConvScratch&) = delete;
  ~ConvScratch() {
    for (int k = 0; k < held_; ++k) tape_.release_scratch(blocks_[k]);
  }

  /// `count` values, valid until this object ends.
  Scalar* values(std::int64_t count) {
    METALEARN_ASSERT(held_ < max_blocks, "ConvScratch: more buffers than one call uses");
    const auto [block, data] = tape_.hold_scratch(sizeof(Scalar) * static_cast<std::size_t>(count));
    blocks_[held_++] = block;
    return static_cast<Scalar*>(data);
  }

 private:
  static constexpr int max_blocks = 4;  // a call takes two buffers at most
  TapeStorage<Scalar>& tape_;
  std::int32_t blocks_[max_blocks] = {};
  int held_ = 0;
};

}  // namespace metalearn::detail
