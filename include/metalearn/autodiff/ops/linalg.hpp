// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/ops/linalg.hpp
/// Matrix products (2-D and batched, with fused transposes), transpose and permute.
#pragma once

#include <array>
#include <cstdint>
#include <metalearn/autodiff/detail/op_support.hpp>
#include <metalearn/autodiff/ops/shape_ops.hpp>
#include <string>

namespace metalearn {

namespace detail {

template <class Scalar>
void matmul_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void permute_backward(BackwardContext<Scalar>& c);

struct Transposes {  // matmul
  bool a, b;
};
struct Permutation {  // permute: output axis i is input axis axes[i]
  std::array<int, 4> axes;
};

template <class Scalar>
inline const OpRule<Scalar> matmul_rule{"matmul", &matmul_backward<Scalar>,
                                        reads_input(0) | reads_input(1)};
template <class Scalar>
inline const OpRule<Scalar> permute_rule{"permute", &permute_backward<Scalar>, reads_nothing};

/// Rows and columns of op(X) for the last two axes of a rank-2 or rank-3 shape.
inline std::array<std::int64_t, 2> op_dims(const Shape& s, bool transposed) {
  const std::int64_t r = s[s.rank() - 2], c = s[s.rank() - 1];
  return transposed ? std::array<std::int64_t, 2>{c, r} : std::array<std::int64_t, 2>{r, c};
}

/// Products small enough for small_product: Eigen's GEMM packs both operands into panels
/// before its kernel runs, a large part of a product as small as the sinusoid MLP's 10x40
/// by 40x40. Measured (-O3 -march=native, float): 10x40x40 0.50 us vs Eigen's 0.80, A^T B
/// 40x10x40 0.37 vs 0.84, equal at 50x40x40 and slower beyond, so the bound sits below that
/// (32,768 multiply-adds); a single output column stays with Eigen's matrix-vector product.
/// Sinusoid MAML meta-step 386 -> 360 us (A/B).
inline bool use_small_product(std::int64_t n, std::int64_t k, std::int64_t m, bool transpose_b) {
  return !transpose_b && m >= 8 && n * k * m <= 32768;
}

/// R rows of C (row stride m) from R rows of op(A) and W columns of B, accumulated in
/// registers: each row of B is loaded once per step of the inner dimension and reused R
/// times. op(A)(r, p) is a[r * row_step + p * inner_step].
template <int W, int R, class Scalar>
void small_product_block(const Scalar* a, std::int64_t row_step, std::int64_t inner_step,
                         const Scalar* b, std::int64_t k, std::int64_t m, Scalar* c) {
  using Row = Eigen::Matrix<Scalar, 1, W>;
  Row acc[R];
  for (auto& r : acc) r.setZero();
  for (std::int64_t p = 0; p < k; ++p) {
    const Row bp = Eigen::Map<const Row>(b + p * m);
    for (int r = 0; r < R; ++r) acc[r] += a[r * row_step + p * inner_step] * bp;
  }
  for (int r = 0; r < R; ++r) Eigen::Map<Row>(c + r * m) = acc[r];
}

template <int W, class Scalar>
void small_product_columns(const Scalar* a, std::int64_t row_step, std::int64_t inner_step,
                           const Scalar* b, std::int64_t n, std::int64_t k, std::int64_t m,
                           Scalar* c) {
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    small_product_block<W, 4>(a + i * row_step, row_step, inner_step, b, k, m, c + i * m);
  for (; i < n; ++i)
    small_product_block<W, 1>(a + i * row_step, row_step, inner_step, b, k, m, c + i * m);
}

/// C [n, m] = op(A) B for row-major A ([n, k], or [k, n] when transpose_a) and B [k, m],
/// without packing: column blocks of 16, then 8, 4 and 1.
template <class Scalar>
void small_product(const Scalar* a, bool transpose_a, const Scalar* b, std::int64_t n,
                   std::int64_t k, std::int64_t m, Scalar* c) {
  const std::int64_t row_step = transpose_a ? 1 : k, inner_step = transpose_a ? n : 1;
  std::int64_t j = 0;
  for (; j + 16 <= m; j += 16)
    small_product_columns<16>(a, row_step, inner_step, b + j, n, k, m, c + j);
  for (; j + 8 <= m; j += 8)
    small_product_columns<8>(a, row_step, inner_step, b + j, n, k, m, c + j);
  for (; j + 4 <= m; j += 4)
    small_product_columns<4>(a, row_step, inner_step, b + j, n, k, m, c + j);
  for (; j < m; ++j) small_product_columns<1>(a, row_step, inner_step, b + j, n, k, m, c + j);
}

}  // namespace detail

/// op(a) · op(b), where op transposes when the flag is set. Shapes: [n, k] x [k, m] ->
/// [n, m]; batched [B, n, k] x [B, k, m] -> [B, n, m]; and [B, n, k] x [k, m] (b shared by
/// the batch). The transposes are fused into the Eigen product (no copies), and the
/// backward rule is itself made of such products, so it is differentiable again.
template <class Scalar>
Var<Scalar> matmul(const Var<Scalar>& a, const Var<Scalar>& b, bool transpose_a = false,
                   bool transpose_b = false) {
  const Shape sa = a.shape(), sb = b.shape();
  const bool ranks_ok = (sa.rank() == 2 && sb.rank() == 2) || (sa.rank() == 3 && sb.rank() == 3) ||
                        (sa.rank() == 3 && sb.rank() == 2);
  if (!ranks_ok)
    throw InvalidArgument(detail::shapes_message(
        "matmul", "expected rank-2 x rank-2, rank-3 x rank-3 or rank-3 x rank-2 operands", sa, sb));
  const auto da = detail::op_dims(sa, transpose_a), db = detail::op_dims(sb, transpose_b);
  if (da[1] != db[0])
    throw InvalidArgument(detail::shapes_message("matmul", "inner dimensions differ", sa, sb));
  if (sa.rank() == 3 && sb.rank() == 3 && sa[0] != sb[0])
    throw InvalidArgument(detail::shapes_message("matmul", "batch sizes differ", sa, sb));
  const std::int64_t batch = sa.rank() == 3 ? sa[0] : 1;
  const Shape so = sa.rank() == 3 ? Shape{batch, da[0], db[1]} : Shape{da[0], db[1]};
  auto out = detail::record(detail::matmul_rule<Scalar>, so, {a, b},
                            detail::NodeAttrs::of(detail::Transposes{transpose_a, transpose_b}));

  using Map = Eigen::Map<const detail::RowMatrix<Scalar>>;
  const Scalar* pa = a.value().data();
  const Scalar* pb = b.value().data();
  const std::int64_t ar = sa[sa.rank() - 2], ac = sa[sa.rank() - 1];
  const std::int64_t br = sb[sb.rank() - 2], bc = sb[sb.rank() - 1];
  const std::int64_t b_step = sb.rank() == 3 ? br * bc : 0;
  using Vector = Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, 1>>;
  const bool small = detail::use_small_product(da[0], da[1], db[1], transpose_b);
  for (std::int64_t i = 0; i < batch; ++i) {
    Map A(pa + i * ar * ac, ar, ac), B(pb + i * b_step, br, bc);
    Eigen::Map<detail::RowMatrix<Scalar>> O(out.data + i * da[0] * db[1], da[0], db[1]);
    if (small && da[1] > 1)
      detail::small_product(A.data(), transpose_a, B.data(), da[0], da[1], db[1], O.data());
    else if (da[1] == 1)  // an outer product (the first layer of the sinusoid MLP, 1 input):
      // both operands are contiguous vectors whatever the transposes, and Eigen's GEMM
      // would pack them first (10x40 took 190 ns instead of 20)
      O.noalias() = Vector(A.data(), da[0]) * Vector(B.data(), db[1]).transpose();
    else if (!transpose_a && !transpose_b)
      O.noalias() = A * B;
    else if (transpose_a && !transpose_b)
      O.noalias() = A.transpose() * B;
    else if (!transpose_a && transpose_b)
      O.noalias() = A * B.transpose();
    else
      O.noalias() = A.transpose() * B.transpose();
  }
  return out.var;
}

/// Reorder the axes: output axis i is input axis perm[i] (perm has one entry per axis).
template <class Scalar>
Var<Scalar> permute(const Var<Scalar>& x, const std::array<int, 4>& perm) {
  const Shape sx = x.shape();
  const int r = sx.rank();
  std::array<bool, 4> seen{};
  std::array<std::int64_t, 4> dims{};
  for (int i = 0; i < r; ++i) {
    if (perm[i] < 0 || perm[i] >= r || seen[perm[i]])
      throw InvalidArgument("metalearn::permute: the permutation is not one of the " +
                            std::to_string(r) + " axes of shape " + sx.to_string());
    seen[perm[i]] = true;
    dims[i] = sx[perm[i]];
  }
  const Shape so = Shape::from_array(dims, r);
  auto out = detail::record(detail::permute_rule<Scalar>, so, {x},
                            detail::NodeAttrs::of(detail::Permutation{perm}));
  const Scalar* px = x.value().data();
  if (r == 2 && perm[0] == 1) {
    Eigen::Map<detail::RowMatrix<Scalar>>(out.data, so[0], so[1]) =
        Eigen::Map<const detail::RowMatrix<Scalar>>(px, sx[0], sx[1]).transpose();
    return out.var;
  }
  // Input strides (padded to 4 axes), read in output order.
  std::array<std::int64_t, 4> in_stride{}, od{1, 1, 1, 1}, st{0, 0, 0, 0};
  std::int64_t s = 1;
  for (int i = r - 1; i >= 0; --i) {
    in_stride[i] = s;
    s *= sx[i];
  }
  for (int i = 0; i < r; ++i) {
    od[4 - r + i] = so[i];
    st[4 - r + i] = in_stride[perm[i]];
  }
  Scalar* po = out.data;
  for (std::int64_t i0 = 0; i0 < od[0]; ++i0)
    for (std::int64_t i1 = 0; i1 < od[1]; ++i1)
      for (std::int64_t i2 = 0; i2 < od[2]; ++i2) {
        const Scalar* p = px + i0 * st[0] + i1 * st[1] + i2 * st[2];
        for (std::int64_t i3 = 0; i3 < od[3]; ++i3) *po++ = p[i3 * st[3]];
      }
  return out.var;
}

/// Swap the last two axes (rank 2 or more; a rank-1 tensor is returned as is).
template <class Scalar>
Var<Scalar> transpose(const Var<Scalar>& x) {
  const int r = x.rank();
  if (r < 2) return x;
  std::array<int, 4> perm{0, 1, 2, 3};
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return permute(x, perm);
}

namespace detail {

// C = op(A) op(B). With G = dC:
//   dA = G op(B)^T          (or its transpose when A was transposed),
//   dB = op(A)^T G          (or its transpose when B was transposed),
// each again a fused-transpose matmul. For a B shared by the batch, dB sums over the batch,
// which is one product of the batch-stacked rows.
template <class Scalar>
void matmul_backward(BackwardContext<Scalar>& c) {
  const auto [ta, tb] = attrs_of<Transposes>(c);
  const Var<Scalar> a = c.input(0), b = c.input(1), g = c.grad_output;
  const bool shared_b = a.rank() == 3 && b.rank() == 2;
  if (c.needed(0))
    c.grad_inputs[0] = !ta        ? matmul(g, b, false, !tb)
                       : shared_b ? transpose(matmul(g, b, false, !tb))
                                  : matmul(b, g, tb, true);
  if (c.needed(1)) {
    if (shared_b) {
      // Stack the batch: [B, n, k] rows (op(A) is [n, k] per batch).
      const Shape sa = a.shape(), sg = g.shape();
      const Var<Scalar> g2 = reshape(g, Shape{sg[0] * sg[1], sg[2]});
      const Var<Scalar> a2 = ta ? reshape(transpose(a), Shape{sa[0] * sa[2], sa[1]})
                                : reshape(a, Shape{sa[0] * sa[1], sa[2]});
      c.grad_inputs[1] = tb ? matmul(g2, a2, true, false) : matmul(a2, g2, true, false);
    } else {
      c.grad_inputs[1] = tb ? matmul(g, a, true, ta) : matmul(a, g, !ta, false);
    }
  }
}

template <class Scalar>
void permute_backward(BackwardContext<Scalar>& c) {
  std::array<int, 4> inverse{0, 1, 2, 3};
  const int r = c.grad_output.rank();
  const std::array<int, 4> perm = attrs_of<Permutation>(c).axes;
  for (int i = 0; i < r; ++i) inverse[perm[i]] = i;
  c.grad_inputs[0] = permute(c.grad_output, inverse);
}

}  // namespace detail
}  // namespace metalearn
