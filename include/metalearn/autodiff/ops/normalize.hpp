// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/ops/normalize.hpp
/// Per-channel standardisation over a batch: the core of batch normalisation (Ioffe &
/// Szegedy 2015), fused so the forward pass reads the input twice instead of six times.
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/detail/channel_stats.hpp>
#include <metalearn/autodiff/ops/arithmetic.hpp>
#include <metalearn/autodiff/ops/elementwise.hpp>
#include <string>
#include <vector>

namespace metalearn {

template <class Scalar>
Var<Scalar> channel_normalize(const Var<Scalar>& x, Scalar eps = Scalar(1e-5));

namespace detail {
template <class Scalar>
void bn_input_grad_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void bn_input_grad_fused_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void bn_gamma_grad_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void bn_gamma_grad_fused_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void channel_normalize_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void batch_norm_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void batch_norm_fused_backward(BackwardContext<Scalar>& c);

// Each keeps x's statistics (mean, 1/std) in the arena, computed once by the forward pass.
template <class Scalar>
inline const OpRule<Scalar> bn_input_grad_rule{"bn_input_grad", &bn_input_grad_backward<Scalar>,
                                               reads_input(0) | reads_input(1) | reads_input(2),
                                               &bn_input_grad_fused_backward<Scalar>};
template <class Scalar>
inline const OpRule<Scalar> bn_gamma_grad_rule{"bn_gamma_grad", &bn_gamma_grad_backward<Scalar>,
                                               reads_input(0) | reads_input(1),
                                               &bn_gamma_grad_fused_backward<Scalar>};
template <class Scalar>
inline const OpRule<Scalar> channel_normalize_rule{
    "channel_normalize", &channel_normalize_backward<Scalar>, reads_input(0)};
// Not y: a pool after batch norm may let it go.
template <class Scalar>
inline const OpRule<Scalar> batch_norm_rule{"batch_norm", &batch_norm_backward<Scalar>,
                                            reads_input(0) | reads_input(1),
                                            &batch_norm_fused_backward<Scalar>};

}  // namespace detail

/// Per-channel mean and biased variance of x ([N, C] or [N, C, H, W]) over the batch and,
/// for images, height and width: the statistics the normalisation ops use (two passes, no
/// cancellation for large means). For running averages (nn::BatchNorm).
template <class Scalar>
void channel_moments(const TensorView<Scalar>& x, std::vector<Scalar>& mean,
                     std::vector<double>& var) {
  const detail::ChannelDims d = detail::channel_dims(x.shape());
  mean.resize(static_cast<std::size_t>(d.c));
  var.resize(static_cast<std::size_t>(d.c));
  detail::channel_statistics(x.data(), d, mean.data(), var.data());
}

/// The gradients of batch normalisation as ops of their own, so a recorded backward pass
/// (create_graph: second-order MAML) keeps one value per gradient instead of the dozen
/// full-size intermediates of the formula written in elementwise ops. With x normalised
/// per channel to xhat = (x - mean) s, s = 1/sqrt(var + eps), M values per channel, and
/// P(a) = a - mean_c(a) - xhat mean_c(a xhat) (the projection the normalisation's Jacobian
/// applies, Ioffe & Szegedy 2015, section 3):
///   bn_input_grad(x, gamma, g) = gamma s P(g)   (dL/dx of batch norm for dL/dy = g)
///   bn_gamma_grad(x, g)        = sum_c(g xhat)  (dL/dgamma)
/// Their own backward rules are closed in the family (plus elementwise ops when recorded),
/// so any order works. `stats` are x's (channel_stats); null computes them.
template <class Scalar>
Var<Scalar> bn_input_grad(const Var<Scalar>& x, const Var<Scalar>& gamma, const Var<Scalar>& g,
                          Scalar eps, const Scalar* stats = nullptr) {
  const Shape s = x.shape();
  const detail::ChannelDims d = detail::channel_dims(s);
  if (g.shape() != s || gamma.shape() != Shape{d.c})
    throw InvalidArgument("metalearn::bn_input_grad: x " + s.to_string() + ", gamma " +
                          gamma.shape().to_string() + " and g " + g.shape().to_string() +
                          " must be x's shape, [C], x's shape");
  if (stats == nullptr) stats = detail::channel_stats(x, d, eps);
  auto out = detail::record(detail::bn_input_grad_rule<Scalar>, s, {x, gamma, g},
                            detail::stats_attrs(stats, static_cast<double>(eps)));
  detail::bn_grad_passes(d, stats, x.value().data(), g.value().data(), gamma.value().data(),
                         out.data, static_cast<Scalar*>(nullptr), static_cast<Scalar*>(nullptr));
  return out.var;
}

template <class Scalar>
Var<Scalar> bn_gamma_grad(const Var<Scalar>& x, const Var<Scalar>& g, Scalar eps,
                          const Scalar* stats = nullptr) {
  const Shape s = x.shape();
  const detail::ChannelDims d = detail::channel_dims(s);
  if (g.shape() != s)
    throw InvalidArgument(
        detail::shapes_message("bn_gamma_grad", "g must have x's shape", s, g.shape()));
  if (stats == nullptr) stats = detail::channel_stats(x, d, eps);
  auto out = detail::record(detail::bn_gamma_grad_rule<Scalar>, Shape{d.c}, {x, g},
                            detail::stats_attrs(stats, static_cast<double>(eps)));
  detail::bn_grad_passes(d, stats, x.value().data(), g.value().data(),
                         static_cast<const Scalar*>(nullptr), static_cast<Scalar*>(nullptr),
                         static_cast<Scalar*>(nullptr), out.data);
  for (std::int64_t ch = 0; ch < d.c; ++ch) out.data[ch] *= stats[d.c + ch];
  return out.var;
}

namespace detail {

template <class Scalar>
Var<Scalar> ones_of(const Var<Scalar>& like, std::int64_t n) {
  auto one = record_constant(like, Shape{n});
  std::fill(one.data, one.data + n, Scalar(1));
  return one.var;
}

// bn_input_grad's backward for cotangent u. Per channel, with gbar, ubar the means of g
// and u, m = mean(g xhat), ux = mean(u xhat) and cov = mean(u g) - ubar gbar:
//   dg     = gamma s P(u)                                     (h is linear and P symmetric)
//   dgamma = s M (cov - ux m)
//   dx     = gamma s^2 (xhat (3 m ux - cov) - ux (g - gbar) - m (u - ubar))
// (dx from d xhat_i/d x_k = s (delta_ik - 1/M - xhat_i xhat_k / M) and
// d s/d x_k = -s^2 xhat_k / M.) Both rules start with dg, the same op again; true if dx or
// dgamma is needed too.
template <class Scalar>
bool bn_input_grad_dg(BackwardContext<Scalar>& c) {
  if (c.needed(2))
    c.grad_inputs[2] = bn_input_grad(c.input(0), c.input(1), c.grad_output, eps_of(c), stats_of(c));
  return c.needed(0) || c.needed(1);
}

// Fused (sweeps that are not recorded): dx and dgamma in plain loops, two passes a channel.
template <class Scalar>
void bn_input_grad_fused_backward(BackwardContext<Scalar>& c) {
  if (!bn_input_grad_dg(c)) return;
  const Var<Scalar> x = c.input(0), gamma = c.input(1), g = c.input(2);
  const Var<Scalar>& u = c.grad_output;
  const ChannelDims d = channel_dims(x.shape());
  const auto* stats = stats_of(c);
  const Scalar m_count = static_cast<Scalar>(d.count()), inv_m = Scalar(1) / m_count;
  {
    Output<Scalar> dx{}, dgamma{};
    if (c.needed(0)) dx = record_constant(x, x.shape());
    if (c.needed(1)) dgamma = record_constant(x, Shape{d.c});
    const Scalar *px = x.value().data(), *pg = g.value().data(), *pu = u.value().data(),
                 *pgamma = gamma.value().data();
    using A = ArrayMap<Scalar>;
    for_channels(d, [&](std::int64_t ch) {
      Scalar sg = 0, su = 0, sgx = 0, sux = 0, sug = 0;  // sums; x as x - mean
      channel_blocks(d, stats, ch, [&](std::int64_t at, Scalar mean, Scalar) {
        const auto xc = A(px + at, d.inner) - mean;
        const A gb(pg + at, d.inner), ub(pu + at, d.inner);
        sg += gb.sum();
        su += ub.sum();
        sgx += (gb * xc).sum();
        sux += (ub * xc).sum();
        sug += (ub * gb).sum();
      });
      const Scalar is = stats[d.c + ch], gbar = sg * inv_m, ubar = su * inv_m;
      const Scalar m = sgx * is * inv_m, ux = sux * is * inv_m, cov = sug * inv_m - ubar * gbar;
      if (c.needed(1)) dgamma.data[ch] = is * m_count * (cov - ux * m);
      if (!c.needed(0)) return;
      const Scalar k = pgamma[ch] * is * is, slope = (3 * m * ux - cov) * is;
      channel_blocks(d, stats, ch, [&](std::int64_t at, Scalar mean, Scalar) {
        MutableArrayMap<Scalar>(dx.data + at, d.inner) =
            k * ((A(px + at, d.inner) - mean) * slope - ux * (A(pg + at, d.inner) - gbar) -
                 m * (A(pu + at, d.inner) - ubar));
      });
    });
    if (c.needed(0)) c.grad_inputs[0] = dx.var;
    if (c.needed(1)) c.grad_inputs[1] = dgamma.var;
  }
}

// Recorded (third order and up): the formulas above in differentiable ops of x, gamma, g, u.
template <class Scalar>
void bn_input_grad_backward(BackwardContext<Scalar>& c) {
  if (!bn_input_grad_dg(c)) return;
  const Var<Scalar> x = c.input(0), gamma = c.input(1), g = c.input(2);
  const Var<Scalar>& u = c.grad_output;
  const Shape s = x.shape();
  const ChannelDims d = channel_dims(s);
  const Scalar eps = eps_of(c);
  const Scalar m_count = static_cast<Scalar>(d.count()), inv_m = Scalar(1) / m_count;
  const Shape pc = d.per_channel(s.rank());
  const auto mean_c = [&](const Var<Scalar>& a) { return scale(sum_to(a, pc), inv_m); };
  const Var<Scalar> xhat = channel_normalize(x, eps), is = channel_inv_std(x, d, eps);
  const Var<Scalar> gbar = mean_c(g), ubar = mean_c(u), m = mean_c(g * xhat), ux = mean_c(u * xhat),
                    cov = mean_c(u * g) - ubar * gbar;
  if (c.needed(1)) c.grad_inputs[1] = reshape(scale(is * (cov - ux * m), m_count), Shape{d.c});
  if (c.needed(0))
    c.grad_inputs[0] = reshape(gamma, pc) * square(is) *
                       (xhat * (scale(m * ux, Scalar(3)) - cov) - ux * (g - gbar) - m * (u - ubar));
}

// bn_gamma_grad's backward for cotangent w [C]: dg = w_c xhat, dx = w_c s P(g).
template <class Scalar>
void bn_gamma_grad_backward(BackwardContext<Scalar>& c) {
  const Var<Scalar> x = c.input(0), g = c.input(1);
  const Var<Scalar>& w = c.grad_output;
  const Scalar eps = eps_of(c);
  const auto* stats = stats_of(c);
  if (c.needed(0)) c.grad_inputs[0] = bn_input_grad(x, w, g, eps, stats);
  if (c.needed(1))
    c.grad_inputs[1] =
        channel_normalize(x, eps) * reshape(w, channel_dims(x.shape()).per_channel(x.rank()));
}
// dg = w_c xhat in one pass.
template <class Scalar>
void bn_gamma_grad_fused_backward(BackwardContext<Scalar>& c) {
  const Var<Scalar> x = c.input(0), g = c.input(1);
  const Var<Scalar>& w = c.grad_output;
  const Scalar eps = eps_of(c);
  const auto* stats = stats_of(c);
  if (c.needed(0)) c.grad_inputs[0] = bn_input_grad(x, w, g, eps, stats);
  if (!c.needed(1)) return;
  const ChannelDims d = channel_dims(x.shape());
  auto dg = record_constant(x, x.shape());
  const Scalar *px = x.value().data(), *pw = w.value().data();
  for_channels(d, [&](std::int64_t ch) {
    channel_blocks(d, stats, ch, [&](std::int64_t at, Scalar mean, Scalar is) {
      MutableArrayMap<Scalar>(dg.data + at, d.inner) =
          (ArrayMap<Scalar>(px + at, d.inner) - mean) * (is * pw[ch]);
    });
  });
  c.grad_inputs[1] = dg.var;
}

}  // namespace detail

/// (x - mean_c) / sqrt(var_c + eps), with the mean and (biased) variance of each channel c
/// taken over the batch and, for images, over height and width. x is [N, C] or
/// [N, C, H, W]. Any order (its gradient is bn_input_grad with gamma = 1).
template <class Scalar>
Var<Scalar> channel_normalize(const Var<Scalar>& x, Scalar eps) {
  const Shape s = x.shape();
  const detail::ChannelDims d = detail::channel_dims(s);
  const Scalar* stats = detail::channel_stats(x, d, eps);
  auto out = detail::record(detail::channel_normalize_rule<Scalar>, s, {x},
                            detail::stats_attrs(stats, static_cast<double>(eps)));
  const Scalar* px = x.value().data();
  detail::for_channels(d, [&](std::int64_t c) {
    detail::channel_blocks(d, stats, c, [&](std::int64_t at, Scalar mean, Scalar is) {
      detail::MutableArrayMap<Scalar>(out.data + at, d.inner) =
          (detail::ArrayMap<Scalar>(px + at, d.inner) - mean) * is;
    });
  });
  return out.var;
}

/// Batch normalisation with a per-channel scale and shift, fused:
/// channel_normalize(x, eps) * gamma_c + beta_c, with gamma and beta of shape [C]. The
/// forward pass reads x three times (two for the statistics) and writes y once; the
/// backward pass, when not recorded, makes two passes for all three gradients, and when
/// recorded is bn_input_grad, bn_gamma_grad and a channel sum.
template <class Scalar>
Var<Scalar> batch_norm(const Var<Scalar>& x, const Var<Scalar>& gamma, const Var<Scalar>& beta,
                       Scalar eps = Scalar(1e-5)) {
  const Shape s = x.shape();
  const detail::ChannelDims d = detail::channel_dims(s);
  if (gamma.shape() != Shape{d.c} || beta.shape() != Shape{d.c})
    throw InvalidArgument("metalearn::batch_norm: gamma " + gamma.shape().to_string() +
                          " and beta " + beta.shape().to_string() + " must both be [" +
                          std::to_string(d.c) + "] for input " + s.to_string());
  const Scalar* stats = detail::channel_stats(x, d, eps);
  auto out = detail::record(detail::batch_norm_rule<Scalar>, s, {x, gamma, beta},
                            detail::stats_attrs(stats, static_cast<double>(eps)));
  const Scalar* px = x.value().data();
  const Scalar *pg = gamma.value().data(), *pb = beta.value().data();
  detail::for_channels(d, [&](std::int64_t c) {
    const Scalar a = stats[d.c + c] * pg[c], b = pb[c] - stats[c] * a;  // y = a x + b
    detail::for_channel_blocks<Scalar>(d, c, [&](std::int64_t at) {
      detail::MutableArrayMap<Scalar>(out.data + at, d.inner) =
          detail::ArrayMap<Scalar>(px + at, d.inner) * a + b;
    });
  });
  return out.var;
}

namespace detail {

template <class Scalar>
void channel_normalize_backward(BackwardContext<Scalar>& c) {
  const Var<Scalar> x = c.input(0);
  c.grad_inputs[0] =
      bn_input_grad(x, ones_of(x, x.shape()[1]), c.grad_output, eps_of(c), stats_of(c));
}

// y = xhat gamma + beta: dgamma = sum_c(g xhat), dbeta = sum_c(g), dx = bn_input_grad.
template <class Scalar>
void batch_norm_backward(BackwardContext<Scalar>& c) {
  const Var<Scalar> x = c.input(0), gamma = c.input(1);
  const Var<Scalar>& g = c.grad_output;  // not a copy: result_over_grad_output counts holders
  const Shape s = x.shape();
  const ChannelDims d = channel_dims(s);
  const Scalar eps = eps_of(c);
  const auto* stats = stats_of(c);
  if (c.needed(0)) c.grad_inputs[0] = bn_input_grad(x, gamma, g, eps, stats);
  if (c.needed(1)) c.grad_inputs[1] = bn_gamma_grad(x, g, eps, stats);
  if (c.needed(2)) c.grad_inputs[2] = reshape(sum_to(g, d.per_channel(s.rank())), Shape{d.c});
}
// Not recorded (first order, or the last sweep of a meta-gradient): all three in two passes
// over x and g.
template <class Scalar>
void batch_norm_fused_backward(BackwardContext<Scalar>& c) {
  const Var<Scalar> x = c.input(0), gamma = c.input(1);
  const Var<Scalar>& g = c.grad_output;  // not a copy: result_over_grad_output counts holders
  const Shape s = x.shape();
  const ChannelDims d = channel_dims(s);
  const auto* stats = stats_of(c);
  auto dgamma = record_constant(x, Shape{d.c});
  auto dbeta = record_constant(x, Shape{d.c});
  Output<Scalar> dx{};
  if (c.needed(0)) dx = result_over_grad_output(c);
  bn_grad_passes(d, stats, x.value().data(), g.value().data(), gamma.value().data(), dx.data,
                 dbeta.data, dgamma.data);
  for (std::int64_t ch = 0; ch < d.c; ++ch) dgamma.data[ch] *= stats[d.c + ch];
  if (c.needed(0)) c.grad_inputs[0] = dx.var;
  c.grad_inputs[1] = dgamma.var;
  c.grad_inputs[2] = dbeta.var;
}

}  // namespace detail
}  // namespace metalearn
