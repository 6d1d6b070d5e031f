// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/gradcheck.hpp
/// Finite-difference checks of first and second derivatives, for your own ops and models.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/grad.hpp>
#include <metalearn/autodiff/ops/arithmetic.hpp>
#include <metalearn/autodiff/tape.hpp>
#include <metalearn/random.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace metalearn {

/// Tolerances and steps of gradcheck / gradgradcheck. An element passes when
/// |analytic - numeric| <= abs_tol + rel_tol * max(|analytic|, |numeric|).
struct GradcheckOptions {
  double step = 1e-6;  ///< central-difference step, scaled by max(1, |x_i|)
  double rel_tol = 1e-5;
  double abs_tol = 1e-7;
  int directions = 3;      ///< random directions v for gradgradcheck's H v
  std::uint64_t seed = 0;  ///< seeds the output cotangent and the directions
};

/// Outcome of a check; `message` names the worst element when it failed.
struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  std::string message;
  explicit operator bool() const noexcept { return ok; }
};

namespace detail {

/// Records the worst element-wise disagreement of an analytic and a numeric value.
class Comparison {
 public:
  Comparison(const GradcheckOptions& o, const char* what) : o_(o), what_(what) {}
  void add(double analytic, double numeric, const std::string& where) {
    const double err = std::abs(analytic - numeric);
    const double bound = o_.abs_tol + o_.rel_tol * std::max(std::abs(analytic), std::abs(numeric));
    const bool finite = std::isfinite(analytic) && std::isfinite(numeric);
    r_.max_abs_error = std::max(r_.max_abs_error, finite ? err : INFINITY);
    const double excess = finite ? err / bound : INFINITY;
    if ((!finite || err > bound) && excess > worst_) {
      worst_ = excess;
      std::ostringstream s;
      s.precision(12);
      s << what_ << ": " << where << ": analytic " << analytic << " vs numeric " << numeric
        << " (|diff| " << err << " > tolerance " << bound << ")";
      r_.ok = false;
      r_.message = s.str();
    }
  }
  GradcheckResult result() const { return r_; }

 private:
  GradcheckOptions o_;
  const char* what_;
  GradcheckResult r_;
  double worst_ = 0.0;
};

/// L(x) = sum(w * f(x)) for a fixed random w: reduces any output shape to a scalar
/// without symmetries that a plain sum could hide.
template <class F>
Var<double> weighted_output(F& f, const std::vector<Var<double>>& xs, Tape<double>& tape,
                            std::uint64_t seed) {
  const Var<double> y = f(xs);
  Tensor<double> w(y.shape());
  Rng rng{seed ^ 0x9e3779b97f4a7c15ULL};
  for (std::int64_t i = 0; i < w.numel(); ++i)
    w.data()[i] = uniform(rng, 0.5, 1.5) * (i % 2 ? -1 : 1);
  return sum_to(mul(y, tape.constant(w)), Shape{});
}

inline std::string element_name(std::size_t input, std::int64_t i) {
  return "input " + std::to_string(input) + " element " + std::to_string(i);
}

}  // namespace detail

/// Compares grad() of `f` at `inputs` with central finite differences, element by element,
/// through both backward paths of every op: the sweep that is not recorded (each op's fused
/// rule where it has one) and the recorded one (create_graph: the differentiable rules).
/// `f` maps `const std::vector<Var<double>>&` to a Var of any shape (a non-scalar output
/// is reduced with fixed random weights). Double precision only: in float, rounding
/// swamps the differences.
template <class F>
GradcheckResult gradcheck(F f, const std::vector<Tensor<double>>& inputs,
                          const GradcheckOptions& options = {}) {
  Tape<double> tape;
  const auto loss_at = [&](const std::vector<Tensor<double>>& at) {
    Tape<double> inner;
    return detail::weighted_output(f, inner.leaves(at), inner, options.seed).item();
  };
  const auto xs = tape.leaves(inputs);
  GradOptions go;
  go.allow_unused = true;
  const auto loss = detail::weighted_output(f, xs, tape, options.seed);
  const auto g = grad(loss, xs, go);
  go.create_graph = true;
  const auto g_recorded = grad(loss, xs, go);
  detail::Comparison cmp(options, "gradcheck");
  std::vector<Tensor<double>> at = inputs;
  for (std::size_t k = 0; k < inputs.size(); ++k)
    for (std::int64_t i = 0; i < inputs[k].numel(); ++i) {
      const double x = inputs[k].data()[i], h = options.step * std::max(1.0, std::abs(x));
      at[k].data()[i] = x + h;
      const double up = loss_at(at);
      at[k].data()[i] = x - h;
      const double down = loss_at(at);
      at[k].data()[i] = x;
      const double numeric = (up - down) / (2 * h);
      cmp.add(g[k].value().data()[i], numeric, detail::element_name(k, i));
      cmp.add(g_recorded[k].value().data()[i], numeric,
              detail::element_name(k, i) + " (recorded sweep)");
    }
  return cmp.result();
}

/// Checks second derivatives: the Hessian-vector product H v, computed by differentiating
/// a recorded gradient (grad with create_graph), against central differences of the
/// gradient along v, for `options.directions` random directions v. Use a step near 1e-5
/// (the default GradcheckOptions step is tuned for first derivatives).
template <class F>
GradcheckResult gradgradcheck(F f, const std::vector<Tensor<double>>& inputs,
                              GradcheckOptions options = {}) {
  const auto grad_at = [&](const std::vector<Tensor<double>>& at) {
    Tape<double> inner;
    const auto xs = inner.leaves(at);
    GradOptions go;
    go.allow_unused = true;
    const auto g = grad(detail::weighted_output(f, xs, inner, options.seed), xs, go);
    std::vector<Tensor<double>> out;
    for (const auto& gi : g) out.push_back(gi.to_tensor());
    return out;
  };
  detail::Comparison cmp(options, "gradgradcheck");
  Rng rng{options.seed + 12345};
  for (int d = 0; d < options.directions; ++d) {
    std::vector<Tensor<double>> v;
    for (const auto& x : inputs) {
      Tensor<double> vi(x.shape());
      for (std::int64_t i = 0; i < vi.numel(); ++i) vi.data()[i] = uniform(rng, -1.0, 1.0);
      v.push_back(vi);
    }
    Tape<double> tape;
    const auto xs = tape.leaves(inputs);
    std::vector<Var<double>> vs;
    for (const auto& vi : v) vs.push_back(tape.constant(vi));
    GradOptions go;
    go.allow_unused = true;  // a piecewise-linear f has a zero Hessian
    const auto hv = hvp(detail::weighted_output(f, xs, tape, options.seed), xs, vs, go);

    double scale = 1.0;
    for (const auto& x : inputs) scale = std::max(scale, x.array().abs().maxCoeff());
    const double h = options.step * scale;
    std::vector<Tensor<double>> up = inputs, down = inputs;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      up[k].array() += h * v[k].array();
      down[k].array() -= h * v[k].array();
    }
    const auto gu = grad_at(up), gd = grad_at(down);
    for (std::size_t k = 0; k < inputs.size(); ++k)
      for (std::int64_t i = 0; i < inputs[k].numel(); ++i)
        cmp.add(hv[k].value().data()[i], (gu[k].data()[i] - gd[k].data()[i]) / (2 * h),
                "direction " + std::to_string(d) + ", " + detail::element_name(k, i));
  }
  return cmp.result();
}

}  // namespace metalearn
