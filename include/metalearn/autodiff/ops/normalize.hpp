// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/ops/normalize.hpp
/// Per-channel standardisation over a batch: the core of batch normalisation (Ioffe &
/// Szegedy 2015), fused so the forward pass reads the input twice instead of six times.
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/ops/arithmetic.hpp>
#include <metalearn/autodiff/ops/elementwise.hpp>
#include <string>
#include <vector>

namespace metalearn {

namespace detail {

template <class Scalar>
void channel_normalize_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void batch_norm_backward(BackwardContext<Scalar>& c);

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

/// Calls f(c, block) for every contiguous block of channel c.
template <class Scalar, class F>
void for_channel_blocks(const ChannelDims& d, std::int64_t c, F f) {
  for (std::int64_t n = 0; n < d.n; ++n) f((n * d.c + c) * d.inner);
}

/// Per-channel mean and biased variance of x, two passes: the mean, then squared deviations
/// (no cancellation for large means); vectorised sums per block, accumulated across blocks
/// in double. Shared by the normalisation ops and batch norm's running averages.
template <class Scalar>
void channel_statistics(const Scalar* px, const ChannelDims& d, Scalar* mean, double* var) {
  using Block = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
  for (std::int64_t c = 0; c < d.c; ++c) {
    double sum = 0, sq = 0;
    for_channel_blocks<Scalar>(d, c,
                               [&](std::int64_t at) { sum += Block(px + at, d.inner).sum(); });
    const Scalar m = static_cast<Scalar>(sum / static_cast<double>(d.count()));
    for_channel_blocks<Scalar>(
        d, c, [&](std::int64_t at) { sq += (Block(px + at, d.inner) - m).square().sum(); });
    mean[c] = m;
    var[c] = sq / static_cast<double>(d.count());
  }
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

}  // namespace detail

/// (x - mean_c) / sqrt(var_c + eps), with the mean and (biased) variance of each channel c
/// taken over the batch and, for images, over height and width. x is [N, C] or
/// [N, C, H, W]. Any order: the backward rule is fused when it is not recorded, and made of
/// differentiable ops when it is (create_graph).
template <class Scalar>
Var<Scalar> channel_normalize(const Var<Scalar>& x, Scalar eps = Scalar(1e-5)) {
  const Shape s = x.shape();
  const detail::ChannelDims d = detail::channel_dims(s);
  detail::NodeAttrs attrs;
  attrs.real[0] = static_cast<double>(eps);
  auto* inv_std =
      static_cast<Scalar*>(x.tape().allocate(sizeof(Scalar) * static_cast<std::size_t>(d.c)));
  attrs.extra = inv_std;
  auto out = detail::record("channel_normalize", s, {x},
                            &detail::channel_normalize_backward<Scalar>, attrs);
  const Scalar* px = x.value().data();
  auto* mean =
      static_cast<Scalar*>(x.tape().allocate(sizeof(Scalar) * static_cast<std::size_t>(d.c)));
  detail::channel_statistics(px, d, static_cast<double>(eps), mean, inv_std);
  using Block = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
  for (std::int64_t c = 0; c < d.c; ++c)
    detail::for_channel_blocks<Scalar>(d, c, [&](std::int64_t at) {
      Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(out.data + at, d.inner) =
          (Block(px + at, d.inner) - mean[c]) * inv_std[c];
    });
  return out.var;
}

namespace detail {

// With y = normalize(x), s = 1/sqrt(var + eps) and M values per channel:
//   dx = s (g - mean_c(g) - y mean_c(g y)).
template <class Scalar>
void channel_normalize_backward(BackwardContext<Scalar>& c) {
  const Var<Scalar> x = c.input(0), y = c.output(), g = c.grad_output;
  const Shape s = x.shape();
  const ChannelDims d = channel_dims(s);
  const Scalar inv_m = Scalar(1) / static_cast<Scalar>(d.count());
  if (!c.tape.recording()) {
    // Not recorded (no create_graph): one fused pass for the two sums, one for dx.
    const auto* inv_std = static_cast<const Scalar*>(c.attrs().extra);
    auto dx = record_constant(x, s);
    const Scalar *pg = g.value().data(), *py = y.value().data();
    using Block = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
    for (std::int64_t ch = 0; ch < d.c; ++ch) {
      Scalar sg = 0, sgy = 0;
      for_channel_blocks<Scalar>(d, ch, [&](std::int64_t at) {
        sg += Block(pg + at, d.inner).sum();
        sgy += (Block(pg + at, d.inner) * Block(py + at, d.inner)).sum();
      });
      const Scalar mg = sg * inv_m, mgy = sgy * inv_m, is = inv_std[ch];
      for_channel_blocks<Scalar>(d, ch, [&](std::int64_t at) {
        Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(dx.data + at, d.inner) =
            is * (Block(pg + at, d.inner) - mg - Block(py + at, d.inner) * mgy);
      });
    }
    c.grad_inputs[0] = dx.var;
    return;
  }
  // Recorded: the same formula in differentiable ops, with s as a function of x, so the
  // result can be differentiated again.
  const Shape pc = d.per_channel(s.rank());
  const Scalar eps = static_cast<Scalar>(c.attrs().real[0]);
  const Var<Scalar> centered = x - scale(sum_to(x, pc), inv_m);
  const Var<Scalar> inv_std =
      pow(add_scalar(scale(sum_to(square(centered), pc), inv_m), eps), Scalar(-0.5));
  const Var<Scalar> mg = scale(sum_to(g, pc), inv_m), mgy = scale(sum_to(g * y, pc), inv_m);
  c.grad_inputs[0] = inv_std * (g - mg - y * mgy);
}

}  // namespace detail

/// Batch normalisation with a per-channel scale and shift, fused:
/// channel_normalize(x, eps) * gamma_c + beta_c, with gamma and beta of shape [C]. The
/// forward pass reads x three times (two for the statistics) and writes y once; the
/// backward pass, when not recorded, makes two passes for all three gradients.
template <class Scalar>
Var<Scalar> batch_norm(const Var<Scalar>& x, const Var<Scalar>& gamma, const Var<Scalar>& beta,
                       Scalar eps = Scalar(1e-5)) {
  const Shape s = x.shape();
  const detail::ChannelDims d = detail::channel_dims(s);
  if (gamma.shape() != Shape{d.c} || beta.shape() != Shape{d.c})
    throw InvalidArgument("metalearn::batch_norm: gamma " + gamma.shape().to_string() +
                          " and beta " + beta.shape().to_string() + " must both be [" +
                          std::to_string(d.c) + "] for input " + s.to_string());
  auto* stats =
      static_cast<Scalar*>(x.tape().allocate(sizeof(Scalar) * static_cast<std::size_t>(2 * d.c)));
  detail::NodeAttrs attrs;
  attrs.real[0] = static_cast<double>(eps);
  attrs.extra = stats;  // mean [C], then inv_std [C]
  auto out = detail::record("batch_norm", s, {x, gamma, beta}, &detail::batch_norm_backward<Scalar>,
                            attrs);
  const Scalar* px = x.value().data();
  detail::channel_statistics(px, d, static_cast<double>(eps), stats, stats + d.c);
  const Scalar *pg = gamma.value().data(), *pb = beta.value().data();
  using Block = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
  for (std::int64_t c = 0; c < d.c; ++c) {
    const Scalar a = stats[d.c + c] * pg[c], b = pb[c] - stats[c] * a;  // y = a x + b
    detail::for_channel_blocks<Scalar>(d, c, [&](std::int64_t at) {
      Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(out.data + at, d.inner) =
          Block(px + at, d.inner) * a + b;
    });
  }
  return out.var;
}

namespace detail {

// y = xhat gamma + beta with xhat = normalize(x), M values per channel, s = inv_std:
//   dgamma = sum_c(g xhat), dbeta = sum_c(g), dx = gamma s (g - mean_c(g) - xhat mean_c(g xhat)).
template <class Scalar>
void batch_norm_backward(BackwardContext<Scalar>& c) {
  const Var<Scalar> x = c.input(0), gamma = c.input(1), g = c.grad_output;
  const Shape s = x.shape();
  const ChannelDims d = channel_dims(s);
  const Scalar inv_m = Scalar(1) / static_cast<Scalar>(d.count());
  if (!c.tape.recording()) {
    const auto* stats = static_cast<const Scalar*>(c.attrs().extra);
    const Scalar *px = x.value().data(), *pg = g.value().data(), *pgamma = gamma.value().data();
    auto dgamma = record_constant(x, Shape{d.c});
    auto dbeta = record_constant(x, Shape{d.c});
    Output<Scalar> dx{};
    if (c.needed(0)) dx = record_constant(x, s);
    using Block = Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
    for (std::int64_t ch = 0; ch < d.c; ++ch) {
      const Scalar mean = stats[ch], is = stats[d.c + ch];
      Scalar sg = 0, sgx = 0;  // sum of g and of g (x - mean)
      for_channel_blocks<Scalar>(d, ch, [&](std::int64_t at) {
        sg += Block(pg + at, d.inner).sum();
        sgx += (Block(pg + at, d.inner) * (Block(px + at, d.inner) - mean)).sum();
      });
      dbeta.data[ch] = sg;
      dgamma.data[ch] = sgx * is;
      if (!c.needed(0)) continue;
      // dx = gamma s (g - sg/M - xhat (sgx s)/M) with xhat = (x - mean) s.
      const Scalar k = pgamma[ch] * is, mg = sg * inv_m, slope = sgx * is * is * inv_m;
      for_channel_blocks<Scalar>(d, ch, [&](std::int64_t at) {
        Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(dx.data + at, d.inner) =
            k * (Block(pg + at, d.inner) - mg - (Block(px + at, d.inner) - mean) * slope);
      });
    }
    if (c.needed(0)) c.grad_inputs[0] = dx.var;
    c.grad_inputs[1] = dgamma.var;
    c.grad_inputs[2] = dbeta.var;
    return;
  }
  // Recorded: the same gradients in differentiable ops of x, gamma and g.
  const Shape pc = d.per_channel(s.rank());
  const Scalar eps = static_cast<Scalar>(c.attrs().real[0]);
  const Var<Scalar> xhat = channel_normalize(x, eps);
  if (c.needed(1)) c.grad_inputs[1] = reshape(sum_to(g * xhat, pc), Shape{d.c});
  if (c.needed(2)) c.grad_inputs[2] = reshape(sum_to(g, pc), Shape{d.c});
  if (c.needed(0)) {
    const Var<Scalar> gx = g * reshape(gamma, pc);
    const Var<Scalar> mg = scale(sum_to(gx, pc), inv_m), mgx = scale(sum_to(gx * xhat, pc), inv_m);
    c.grad_inputs[0] = channel_inv_std(x, d, eps) * (gx - mg - xhat * mgx);
  }
}

}  // namespace detail
}  // namespace metalearn
