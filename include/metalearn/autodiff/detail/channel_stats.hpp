// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/detail/channel_stats.hpp
/// What the per-channel normalisation ops share: the channel layout of [N, C] and
/// [N, C, H, W], the per-channel statistics (two passes), the attributes that carry them,
/// and batch norm's two-pass gradient.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/detail/op_support.hpp>
#include <metalearn/autodiff/ops/arithmetic.hpp>
#include <metalearn/autodiff/ops/elementwise.hpp>
#include <metalearn/autodiff/parallel.hpp>
#include <string>
#include <vector>

namespace metalearn::detail {

/// Channel layout of [N, C] or [N, C, H, W]: C channels, each N blocks of `inner` values.
struct ChannelDims {
  std::int64_t n, c, inner;
  std::int64_t count() const { return n * inner; }
  Shape per_channel(int rank) const { return rank == 4 ? Shape{1, c, 1, 1} : Shape{1, c}; }
};

inline ChannelDims channel_dims(const Shape& s) {
  if (!(s.rank() == 2 || s.rank() == 4) || s[0] * (s.rank() == 4 ? s[2] * s[3] : 1) < 2)
    throw InvalidArgument(
        "metalearn::channel_normalize: expected [N, C] or [N, C, H, W] with at "
        "least 2 values per channel, got " +
        s.to_string());
  return {s[0], s[1], s.rank() == 4 ? s[2] * s[3] : 1};
}

/// body(c) for every channel c, the channels split among this thread's intra-op threads
/// (each channel's work is its own).
template <class Body>
void for_channels(const ChannelDims& d, Body&& body) {
  parallel_ranges(d.c, grain_for(d.count()), [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t c = first; c < last; ++c) body(c);
  });
}

/// Calls f(c, block) for every contiguous block of channel c.
template <class Scalar, class F>
void for_channel_blocks(const ChannelDims& d, std::int64_t c, F f) {
  for (std::int64_t n = 0; n < d.n; ++n) f((n * d.c + c) * d.inner);
}

/// Per-channel mean and biased variance of x, two passes: the mean, then squared deviations
/// (no cancellation for large means); vectorised sums per block, accumulated across blocks
/// in double. Shared by the normalisation ops and batch norm's running averages. The
/// channels split among this thread's intra-op threads.
template <class Scalar>
void channel_statistics(const Scalar* px, const ChannelDims& d, Scalar* mean, double* var) {
  using Block = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
  for_channels(d, [&](std::int64_t c) {
    double sum = 0, sq = 0;
    for_channel_blocks<Scalar>(d, c,
                               [&](std::int64_t at) { sum += Block(px + at, d.inner).sum(); });
    const Scalar m = static_cast<Scalar>(sum / static_cast<double>(d.count()));
    for_channel_blocks<Scalar>(
        d, c, [&](std::int64_t at) { sq += (Block(px + at, d.inner) - m).square().sum(); });
    mean[c] = m;
    var[c] = sq / static_cast<double>(d.count());
  });
}

/// Per-channel mean and 1/sqrt(var + eps) of x.
template <class Scalar>
void channel_statistics(const Scalar* px, const ChannelDims& d, double eps, Scalar* mean,
                        Scalar* inv_std) {
  std::vector<double> var(static_cast<std::size_t>(d.c));
  channel_statistics(px, d, mean, var.data());
  for (std::int64_t c = 0; c < d.c; ++c)
    inv_std[c] = static_cast<Scalar>(1.0 / std::sqrt(var[static_cast<std::size_t>(c)] + eps));
}

/// 1/sqrt(var_c(x) + eps) as differentiable ops of x, shaped [1, C(, 1, 1)].
template <class Scalar>
Var<Scalar> channel_inv_std(const Var<Scalar>& x, const ChannelDims& d, Scalar eps) {
  const Shape pc = d.per_channel(x.rank());
  const Scalar inv_m = Scalar(1) / static_cast<Scalar>(d.count());
  const Var<Scalar> centered = x - scale(sum_to(x, pc), inv_m);
  return pow(add_scalar(scale(sum_to(square(centered), pc), inv_m), eps), Scalar(-0.5));
}

/// Per-channel mean and 1/sqrt(var + eps) of x in tape memory: mean [C], then inv_std [C].
/// Kept in the attributes (ChannelStats) of every node of the family below, which share them.
template <class Scalar>
const Scalar* channel_stats(const Var<Scalar>& x, const ChannelDims& d, Scalar eps) {
  auto* stats =
      static_cast<Scalar*>(x.tape().allocate(sizeof(Scalar) * static_cast<std::size_t>(2 * d.c)));
  channel_statistics(x.value().data(), d, static_cast<double>(eps), stats, stats + d.c);
  return stats;
}

/// What every op of the family keeps: x's statistics (arena) and epsilon.
struct ChannelStats {
  const void* stats;
  double eps;
};
inline NodeAttrs stats_attrs(const void* stats, double eps) {
  return NodeAttrs::of(ChannelStats{stats, eps});
}
template <class Scalar>
Scalar eps_of(const BackwardContext<Scalar>& c) {
  return static_cast<Scalar>(attrs_of<ChannelStats>(c).eps);
}
template <class Scalar>
const Scalar* stats_of(const BackwardContext<Scalar>& c) {
  return static_cast<const Scalar*>(attrs_of<ChannelStats>(c).stats);
}

/// Calls f(at, n, mean, inv_std) for every contiguous block of n values of channel ch.
template <class Scalar, class F>
void channel_blocks(const ChannelDims& d, const Scalar* stats, std::int64_t ch, F f) {
  for_channel_blocks<Scalar>(d, ch, [&](std::int64_t at) { f(at, stats[ch], stats[d.c + ch]); });
}

template <class Scalar>
using ArrayMap = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
template <class Scalar>
using MutableArrayMap = Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>;

/// bn_grad_passes over channels [first, last).
template <class Scalar>
void bn_grad_passes(const ChannelDims& d, const Scalar* stats, const Scalar* px, const Scalar* pg,
                    const Scalar* pgamma, Scalar* dx, Scalar* sum_g, Scalar* sum_gx,
                    std::int64_t first, std::int64_t last) {
  const Scalar inv_m = Scalar(1) / static_cast<Scalar>(d.count());
  using A = ArrayMap<Scalar>;
  for (std::int64_t ch = first; ch < last; ++ch) {
    Scalar sg = 0, sgx = 0;
    channel_blocks(d, stats, ch, [&](std::int64_t at, Scalar mean, Scalar) {
      sg += A(pg + at, d.inner).sum();
      sgx += (A(pg + at, d.inner) * (A(px + at, d.inner) - mean)).sum();
    });
    if (sum_g != nullptr) sum_g[ch] = sg;
    if (sum_gx != nullptr) sum_gx[ch] = sgx;
    if (dx == nullptr) continue;
    const Scalar is = stats[d.c + ch];
    const Scalar k = pgamma[ch] * is, mg = sg * inv_m, slope = sgx * is * is * inv_m;
    channel_blocks(d, stats, ch, [&](std::int64_t at, Scalar mean, Scalar) {
      MutableArrayMap<Scalar>(dx + at, d.inner) =
          k * (A(pg + at, d.inner) - mg - (A(px + at, d.inner) - mean) * slope);
    });
  }
}

/// Batch norm's gradient, two passes per channel: the sums of g and of g (x - mean) into
/// sum_g[ch] and sum_gx[ch] (either may be null), then, if dx is not null,
/// dx = gamma s (g - sum_g/M - xhat (sum_gx s)/M) with xhat = (x - mean) s. dx may be g's
/// memory: each channel's sums are taken before its values are written. The channels split
/// among this thread's intra-op threads.
template <class Scalar>
void bn_grad_passes(const ChannelDims& d, const Scalar* stats, const Scalar* px, const Scalar* pg,
                    const Scalar* pgamma, Scalar* dx, Scalar* sum_g, Scalar* sum_gx) {
  parallel_ranges(d.c, grain_for(d.count()), [&](std::int64_t first, std::int64_t last) {
    bn_grad_passes(d, stats, px, pg, pgamma, dx, sum_g, sum_gx, first, last);
  });
}

}  // namespace metalearn::detail
