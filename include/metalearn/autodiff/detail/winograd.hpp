// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/detail/winograd.hpp
/// 3x3 "same" convolutions by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016,
/// "Fast Algorithms for Convolutional Neural Networks", section 4): every 2x2 output tile is
/// A^T [(G g G^T) . (B^T d B)] A for the 4x4 input patch d around it, so the channel sums
/// become 16 GEMMs of [tiles, C] x [C, F] with 16 multiplications per tile instead of 36:
/// 2.25x fewer FLOPs than im2col on the 64-channel layers of conv4. Channels are the
/// innermost dimension of the transformed data (each image is transposed to [H, W, C]), so
/// the transforms are vector operations over channels.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <metalearn/autodiff/tensor.hpp>

namespace metalearn::detail {

/// Channels per step of the transforms: held in local arrays, which the compiler knows
/// alias nothing, so each step is a few vector instructions.
constexpr std::int64_t kLanes = 16;

/// lanes[0, len) = src[0, len), the rest zero; a fixed-length copy when len == kLanes (the
/// usual case: channel counts are multiples of 16).
template <class Scalar>
void load_lanes(const Scalar* src, std::int64_t len, Scalar* lanes) {
  if (len == kLanes) {
    std::copy_n(src, kLanes, lanes);
    return;
  }
  std::copy_n(src, len, lanes);
  std::fill(lanes + len, lanes + kLanes, Scalar(0));
}
template <class Scalar>
void store_lanes(const Scalar* lanes, std::int64_t len, Scalar* dst) {
  if (len == kLanes)
    std::copy_n(lanes, kLanes, dst);
  else
    std::copy_n(lanes, len, dst);
}

/// Sizes of a 3x3, stride 1, padding 1 convolution of [N, C, H, W] into [N, F, H, W],
/// tiled into TY x TX tiles of 2x2 outputs (the last row or column cropped for odd sizes).
struct WinogradDims {
  std::int64_t n, c, f, h, w;
  std::int64_t ty() const { return (h + 1) / 2; }
  std::int64_t tx() const { return (w + 1) / 2; }
  std::int64_t tiles() const { return ty() * tx(); }
  /// Zero-padded [PH, PW, C] image holding every tile's 4x4 patch: one row and column of
  /// padding before the image, the rest after.
  std::int64_t ph() const { return 2 * ty() + 2; }
  std::int64_t pw() const { return 2 * tx() + 2; }
  /// Images transformed together: about 128 tiles, so the transformed inputs and products
  /// of a 64-channel layer (16 x 128 x 64 floats each) stay in L2.
  std::int64_t group() const {
    return std::max<std::int64_t>(1, std::min<std::int64_t>(n, 128 / tiles()));
  }
  /// Scratch values winograd_conv3x3 needs: transformed inputs, products, the padded
  /// input image and an input or output image, all channels-last.
  std::int64_t scratch() const {
    return 16 * (c + f) * group() * tiles() + ph() * pw() * c + h * w * std::max(c, f);
  }
};

/// The kernel transform as a 16 x 9 matrix: row 4 i + j, column 3 a + b holds
/// G[i][a] G[j][b], so u = G k G^T is T times the 9 taps of k (row-major), with
/// G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. `adjoint`: the taps of k rotated by
/// 180 degrees (the kernels of the transposed convolution).
template <class Scalar>
Eigen::Matrix<Scalar, 16, 9> winograd_kernel_transform(bool adjoint) {
  const Scalar h = Scalar(0.5);
  const Scalar g[4][3] = {{1, 0, 0}, {h, h, h}, {h, -h, h}, {0, 0, 1}};
  Eigen::Matrix<Scalar, 16, 9> t;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b)
          t(i * 4 + j, adjoint ? (2 - a) * 3 + 2 - b : a * 3 + b) = g[i][a] * g[j][b];
  return t;
}

/// u = G k G^T for each of the F x C 3x3 kernels k [F, C, 3, 3], stored u[16][F][C]: one
/// small GEMM. With `adjoint`, the kernels rotated by 180 degrees, for the transposed
/// convolution (the input gradient).
template <class Scalar>
void winograd_kernels(const Scalar* k, std::int64_t f, std::int64_t c, bool adjoint, Scalar* u) {
  Eigen::Map<RowMatrix<Scalar>>(u, 16, f * c).noalias() =
      winograd_kernel_transform<Scalar>(adjoint) *
      Eigen::Map<const RowMatrix<Scalar>>(k, f * c, 9).transpose();
}

/// Scratch buffers of one call, carved from d.scratch() values.
template <class Scalar>
struct WinogradScratch {
  Scalar* v;       // [16][group * tiles][C]: transformed input patches
  Scalar* m;       // [16][group * tiles][F]: products, or transformed output gradients
  Scalar* padded;  // [PH][PW][C]: the image being transformed, zero border
  Scalar* image;   // [H][W][C or F]: an image transposed to channels-last
  WinogradScratch(Scalar* scratch, const WinogradDims& d)
      : v(scratch),
        m(v + 16 * d.c * d.group() * d.tiles()),
        padded(m + 16 * d.f * d.group() * d.tiles()),
        image(padded + d.ph() * d.pw() * d.c) {
    std::fill(padded, padded + d.ph() * d.pw() * d.c, Scalar(0));
  }
};

/// One image [K, H, W] at `src` transposed into `image` as [H, W, K]: one transpose of
/// the whole image (row by row is several times slower).
template <class Scalar>
void channels_last(const Scalar* src, std::int64_t k, const WinogradDims& d, Scalar* image) {
  Eigen::Map<RowMatrix<Scalar>>(image, d.h * d.w, k) =
      Eigen::Map<const RowMatrix<Scalar>>(src, k, d.h * d.w).transpose();
}

/// Input transform of images [n0, n0 + count) into s.v: V = B^T p B for each tile's 4x4
/// patch p, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], over 16 channels at a time.
template <class Scalar>
void winograd_inputs(const Scalar* x, const WinogradDims& d, std::int64_t n0, std::int64_t count,
                     WinogradScratch<Scalar>& s) {
  const std::int64_t c = d.c, tiles = d.tiles(), tx = d.tx(), pw = d.pw();
  const std::int64_t step = count * tiles * c;  // between the 16 transformed matrices
  for (std::int64_t k = 0; k < count; ++k) {
    channels_last(x + (n0 + k) * c * d.h * d.w, c, d, s.image);
    for (std::int64_t y = 0; y < d.h; ++y)
      std::copy_n(s.image + y * d.w * c, d.w * c, s.padded + ((y + 1) * pw + 1) * c);
    for (std::int64_t ty = 0; ty < d.ty(); ++ty)
      for (std::int64_t q = 0; q < tx; ++q) {
        const Scalar* p = s.padded + (2 * ty * pw + 2 * q) * c;
        Scalar* dst = s.v + (k * tiles + ty * tx + q) * c;
        for (std::int64_t c0 = 0; c0 < c; c0 += kLanes) {
          const std::int64_t len = std::min(kLanes, c - c0);
          Scalar in[4][4][kLanes], res[16][kLanes];
          for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 4; ++j) load_lanes(p + (i * pw + j) * c + c0, len, in[i][j]);
          for (int j = 0; j < 4; ++j)
            for (std::int64_t l = 0; l < kLanes; ++l) {  // B^T p, column j
              const Scalar p0 = in[0][j][l], p1 = in[1][j][l], p2 = in[2][j][l], p3 = in[3][j][l];
              in[0][j][l] = p0 - p2;
              in[1][j][l] = p1 + p2;
              in[2][j][l] = p2 - p1;
              in[3][j][l] = p1 - p3;
            }
          for (int i = 0; i < 4; ++i)
            for (std::int64_t l = 0; l < kLanes; ++l) {  // (B^T p) B, row i
              res[4 * i + 0][l] = in[i][0][l] - in[i][2][l];
              res[4 * i + 1][l] = in[i][1][l] + in[i][2][l];
              res[4 * i + 2][l] = in[i][2][l] - in[i][1][l];
              res[4 * i + 3][l] = in[i][1][l] - in[i][3][l];
            }
          for (int r = 0; r < 16; ++r) store_lanes(res[r], len, dst + r * step + c0);
        }
      }
  }
}

/// The groups of images (WinogradDims::group) a call splits into: each group is one unit
/// of work, for one thread.
inline std::int64_t winograd_groups(const WinogradDims& d) {
  return (d.n + d.group() - 1) / d.group();
}

/// Images [n0, n0 + group) of out [N, F, H, W] = conv3x3(x [N, C, H, W]) (+ bias[f]) from
/// kernels transformed by winograd_kernels into u [16][F][C]; with `adjoint`, u is
/// [16][C][F] (the kernels of the convolution whose adjoint this is). `scratch` holds
/// d.scratch() values.
template <class Scalar>
void winograd_conv3x3(const Scalar* x, const Scalar* u, bool adjoint, const Scalar* bias,
                      const WinogradDims& d, std::int64_t n0, Scalar* out, Scalar* scratch) {
  using Matrix = RowMatrix<Scalar>;
  const std::int64_t c = d.c, f = d.f, tiles = d.tiles(), tx = d.tx(), plane = d.h * d.w;
  WinogradScratch<Scalar> s(scratch, d);
  const std::int64_t count = std::min(d.group(), d.n - n0), cols = count * tiles;
  const std::int64_t mstep = cols * f;
  winograd_inputs(x, d, n0, count, s);
  for (int k = 0; k < 16; ++k) {
    const Eigen::Map<const Matrix> v(s.v + k * cols * c, cols, c);
    Eigen::Map<Matrix> m(s.m + k * mstep, cols, f);
    if (adjoint)
      m.noalias() = v * Eigen::Map<const Matrix>(u + k * c * f, c, f);
    else
      m.noalias() = v * Eigen::Map<const Matrix>(u + k * c * f, f, c).transpose();
  }
  // Output transform Y = A^T M A per tile, A^T = [1 1 1 0; 0 1 -1 -1], into a
  // channels-last image (cropped to H x W), then transposed into [F, H, W].
  for (std::int64_t k = 0; k < count; ++k) {
    for (std::int64_t ty = 0; ty < d.ty(); ++ty)
      for (std::int64_t q = 0; q < tx; ++q) {
        const Scalar* src = s.m + (k * tiles + ty * tx + q) * f;
        // Outputs (2 ty + a, 2 q + b); the second row or column of an edge tile of an odd
        // size is computed but not stored.
        const bool right = 2 * q + 1 < d.w, below = 2 * ty + 1 < d.h;
        Scalar* y0 = s.image + (2 * ty * d.w + 2 * q) * f;
        Scalar* y1 = y0 + d.w * f;
        for (std::int64_t c0 = 0; c0 < f; c0 += kLanes) {
          const std::int64_t len = std::min(kLanes, f - c0);
          Scalar in[16][kLanes], t[2][4][kLanes], res[4][kLanes];
          for (int r = 0; r < 16; ++r) load_lanes(src + r * mstep + c0, len, in[r]);
          for (int j = 0; j < 4; ++j)
            for (std::int64_t l = 0; l < kLanes; ++l) {  // A^T M, column j
              t[0][j][l] = in[j][l] + in[4 + j][l] + in[8 + j][l];
              t[1][j][l] = in[4 + j][l] - in[8 + j][l] - in[12 + j][l];
            }
          for (int i = 0; i < 2; ++i)
            for (std::int64_t l = 0; l < kLanes; ++l) {  // (A^T M) A, row i
              res[2 * i][l] = t[i][0][l] + t[i][1][l] + t[i][2][l];
              res[2 * i + 1][l] = t[i][1][l] - t[i][2][l] - t[i][3][l];
            }
          if (bias != nullptr)
            for (int r = 0; r < 4; ++r)
              for (std::int64_t l = 0; l < len; ++l) res[r][l] += bias[c0 + l];
          store_lanes(res[0], len, y0 + c0);
          if (right) store_lanes(res[1], len, y0 + f + c0);
          if (below) store_lanes(res[2], len, y1 + c0);
          if (right && below) store_lanes(res[3], len, y1 + f + c0);
        }
      }
    Eigen::Map<Matrix>(out + (n0 + k) * f * plane, f, plane) =
        Eigen::Map<const Matrix>(s.image, plane, f).transpose();
  }
}

/// The weight gradient of winograd_conv3x3, the adjoint of its linear map w -> y: with
/// Y = A^T [U . V] A and U = G w G^T per tile, dU = sum over tiles of (A dY A^T) . V, one
/// GEMM over tiles per transform position, and dw = G^T dU G (winograd_weight_taps).
/// This adds the tiles of images [n0, n0 + group) of x [N, C, H, W] and g [N, F, H, W] to
/// du [16][F][C].
template <class Scalar>
void winograd_weight_grad3x3(const Scalar* x, const Scalar* g, const WinogradDims& d,
                             std::int64_t n0, Scalar* du, Scalar* scratch) {
  using Matrix = RowMatrix<Scalar>;
  const std::int64_t c = d.c, f = d.f, tiles = d.tiles(), tx = d.tx(), plane = d.h * d.w;
  WinogradScratch<Scalar> s(scratch, d);
  const std::int64_t count = std::min(d.group(), d.n - n0), cols = count * tiles;
  const std::int64_t mstep = cols * f;
  winograd_inputs(x, d, n0, count, s);
  // Gradient transform A dY A^T per 2x2 tile dY (zero outside the image),
  // A = [1 0; 1 1; 1 -1; 0 -1].
  for (std::int64_t k = 0; k < count; ++k) {
    channels_last(g + (n0 + k) * f * plane, f, d, s.image);
    for (std::int64_t ty = 0; ty < d.ty(); ++ty)
      for (std::int64_t q = 0; q < tx; ++q) {
        const bool right = 2 * q + 1 < d.w, below = 2 * ty + 1 < d.h;
        const Scalar* y0 = s.image + (2 * ty * d.w + 2 * q) * f;
        const Scalar* y1 = y0 + d.w * f;
        Scalar* dst = s.m + (k * tiles + ty * tx + q) * f;
        for (std::int64_t c0 = 0; c0 < f; c0 += kLanes) {
          const std::int64_t len = std::min(kLanes, f - c0);
          Scalar in[2][2][kLanes] = {}, t[4][2][kLanes], res[16][kLanes];
          load_lanes(y0 + c0, len, in[0][0]);
          if (right) load_lanes(y0 + f + c0, len, in[0][1]);
          if (below) load_lanes(y1 + c0, len, in[1][0]);
          if (right && below) load_lanes(y1 + f + c0, len, in[1][1]);
          for (int j = 0; j < 2; ++j)
            for (std::int64_t l = 0; l < kLanes; ++l) {  // A dY, column j
              t[0][j][l] = in[0][j][l];
              t[1][j][l] = in[0][j][l] + in[1][j][l];
              t[2][j][l] = in[0][j][l] - in[1][j][l];
              t[3][j][l] = -in[1][j][l];
            }
          for (int i = 0; i < 4; ++i)
            for (std::int64_t l = 0; l < kLanes; ++l) {  // (A dY) A^T, row i
              res[4 * i + 0][l] = t[i][0][l];
              res[4 * i + 1][l] = t[i][0][l] + t[i][1][l];
              res[4 * i + 2][l] = t[i][0][l] - t[i][1][l];
              res[4 * i + 3][l] = -t[i][1][l];
            }
          for (int r = 0; r < 16; ++r) store_lanes(res[r], len, dst + r * mstep + c0);
        }
      }
  }
  for (int k = 0; k < 16; ++k)  // dU_k [F, C] += M_k^T V_k
    Eigen::Map<Matrix>(du + k * c * f, f, c).noalias() +=
        Eigen::Map<const Matrix>(s.m + k * mstep, cols, f).transpose() *
        Eigen::Map<const Matrix>(s.v + k * cols * c, cols, c);
}

/// dw [F, C, 3, 3] = G^T dU G per kernel from du [16][F][C]: the adjoint of u = T taps,
/// taps = T^T u.
template <class Scalar>
void winograd_weight_taps(const Scalar* du, const WinogradDims& d, Scalar* dw) {
  using Matrix = RowMatrix<Scalar>;
  Eigen::Map<Matrix>(dw, d.f * d.c, 9).noalias() =
      Eigen::Map<const Matrix>(du, 16, d.f * d.c).transpose() *
      winograd_kernel_transform<Scalar>(false);
}

}  // namespace metalearn::detail
