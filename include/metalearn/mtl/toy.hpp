// SPDX-License-Identifier: MIT
/// @file metalearn/mtl/toy.hpp
/// The two-objective toy problem of CAGrad (Liu et al. 2021, Fig. 1) in the form Nash-MTL's
/// authors use (Navon et al. 2022, Fig. 1: the first loss scaled by 0.1), and plain
/// gradient descent on it with any gradient aggregator (metalearn/mtl/aggregators.hpp): the
/// picture of how a method moves when two objectives conflict and differ in scale.
#pragma once

#include <Eigen/Dense>
#include <array>
#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/parameter_list.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <utility>
#include <vector>

namespace metalearn::mtl {

/// A point of the toy's parameter plane, (x1, x2).
using ToyPoint = std::array<double, 2>;

/// The toy problem. On x2 < 0 both losses are tanh(-x2/2) times a shifted quadratic
/// ((x1 -+ 7)^2 + 0.1 (x2 + 8)^2) / 10 - 20, whose minima in x1 sit at +7 and -7: the Pareto
/// set is the segment x1 in [-7, 7] at x2 near -8.4. On x2 > 0 they are tanh(x2/2) times
/// log-valleys, log max(|.|, 5e-6) + 6, that trap methods following one task's gradient.
struct TwoObjectiveToy {
  /// The factor on the first loss (Nash-MTL's toy: 0.1; CAGrad's original: 1). The Pareto
  /// set does not depend on it; methods that are not scale-invariant do.
  double first_scale = 0.1;

  /// The five starting points of Nash-MTL's figure.
  static std::vector<ToyPoint> starts() {
    return {{-8.5, 7.5}, {0.0, 0.0}, {9.0, 9.0}, {-7.5, -0.5}, {9.0, -1.0}};
  }

  /// The two losses at x (a Var of shape {2}), differentiable to any order. The clamps
  /// are max(v, c) = v + relu(c - v): gradient 1 where v >= c, as torch.clamp's (at the
  /// start (0, 0) both gates are exactly 0 and only that convention lets a method move).
  template <class Scalar>
  std::vector<Var<Scalar>> losses(const Var<Scalar>& x) const {
    if (x.shape() != Shape{2})
      throw InvalidArgument(
          "metalearn::mtl::TwoObjectiveToy::losses: expected x of shape [2], got " +
          x.shape().to_string());
    const auto c = [](double v) { return static_cast<Scalar>(v); };
    const auto at_least = [&](const Var<Scalar>& v, double floor) {
      return v + relu(add_scalar(-v, c(floor)));
    };
    const Var<Scalar> x1 = slice(x, 0, 1), x2 = slice(x, 1, 2);
    const Var<Scalar> t = tanh(-x2);
    const auto log_valley = [&](const Var<Scalar>& u) {  // log max(|u|, 5e-6) + 6
      return add_scalar(log(at_least(abs(u), lower)), c(6));
    };
    const Var<Scalar> v1 = log_valley(scale(add_scalar(-x1, c(-7)), c(0.5)) - t);
    const Var<Scalar> v2 = log_valley(add_scalar(scale(add_scalar(-x1, c(3)), c(0.5)) + t, c(2)));
    const Var<Scalar> upper = at_least(tanh(scale(x2, c(0.5))), 0);
    const Var<Scalar> lower_gate = at_least(tanh(scale(x2, c(-0.5))), 0);
    const Var<Scalar> bowl = scale(square(add_scalar(x2, c(8))), c(0.1));
    const Var<Scalar> q1 = add_scalar(scale(square(add_scalar(x1, c(-7))) + bowl, c(0.1)), c(-20));
    const Var<Scalar> q2 = add_scalar(scale(square(add_scalar(x1, c(7))) + bowl, c(0.1)), c(-20));
    return {scale(v1 * upper + q1 * lower_gate, c(first_scale)), v2 * upper + q2 * lower_gate};
  }

  /// The two losses' values at a point.
  ToyPoint values(const ToyPoint& p) const {
    Tape<double> tape;
    const auto l = losses(tape.leaf(Tensor<double>(Shape{2}, std::vector<double>{p[0], p[1]})));
    return {l[0].item(), l[1].item()};
  }

  /// Whether p lies on the Pareto set: x1 in [-7, 7] (to 0.05) and x2 within 0.15 of the
  /// set's x2, which runs from -8.43 (x1 = -7) to -8.36 (x1 = 0) and -8.39 (x1 = 4.6); see
  /// docs/mtl.md.
  static bool on_pareto_set(const ToyPoint& p) {
    return std::abs(p[0]) <= 7.05 && std::abs(p[1] + 8.39) <= 0.15;
  }

  /// A point of the Pareto front the figures draw (x2 = -8.3552, Nash-MTL's plot), for
  /// x1 in [-7, 7].
  static constexpr double front_x2 = -8.3552;

 private:
  static constexpr double lower = 5e-6;
};

/// Options of toy_descent (Nash-MTL's toy: Adam at 1e-3 for 35,000 steps).
struct ToyDescentOptions {
  std::int64_t steps = 35000;
  double lr = 1e-3;
  /// Keep every n-th point of the trajectory (the first and the last are always kept).
  std::int64_t record_every = 100;
  /// Seed of the per-step draws (PCGrad's order): step n draws from Rng(seed + n).
  std::uint64_t seed = 1;
};

/// Adam from `start` on the toy's two losses, each step's direction sum_t a_t g_t with the
/// aggregator's a on the Gramian of the two task gradients (as MtlLearner combines the
/// shared parameters' gradients; here x is all there is). A run ends early where the
/// aggregator finds no direction and the two gradients are opposite (cosine below
/// -1 + 1e-6: Pareto-stationary; Nash-MTL's bargaining has no solution there). Returns the
/// recorded points, the start and the last point included.
template <class Aggregator>
std::vector<ToyPoint> toy_descent(const TwoObjectiveToy& toy, const Aggregator& aggregator,
                                  const ToyPoint& start, const ToyDescentOptions& o = {}) {
  if (o.steps < 0 || o.record_every < 1 || !(o.lr > 0))
    throw InvalidArgument(
        "metalearn::mtl::toy_descent: need steps >= 0, record_every >= 1 and "
        "lr > 0, got " +
        std::to_string(o.steps) + ", " + std::to_string(o.record_every) + " and " +
        std::to_string(o.lr));
  Tensor<double> x(Shape{2}, std::vector<double>{start[0], start[1]});
  ParameterList<double> params;
  params.add("x", x);
  optim::AdamOptions ao;
  ao.lr = o.lr;
  optim::Adam<double> adam(params, ao);
  std::vector<ToyPoint> path{start};
  for (std::int64_t n = 0; n < o.steps; ++n) {
    Eigen::Matrix2d J;  // row t: the gradient of loss t
    {
      Tape<double> tape;
      const Var<double> xv = tape.leaf(x.view());
      const auto l = toy.losses(xv);
      for (int t = 0; t < 2; ++t) {
        const auto g = grad(l[static_cast<std::size_t>(t)], {xv})[0].to_tensor();
        J.row(t) << g.data()[0], g.data()[1];
      }
    }
    Rng rng(o.seed + static_cast<std::uint64_t>(n));
    const Eigen::Matrix2d G = J * J.transpose();
    const std::vector<double> a = aggregator.weights(Eigen::MatrixXd(G), rng);
    const Eigen::Vector2d d = J.transpose() * Eigen::Vector2d(a[0], a[1]);
    if (!d.allFinite()) {
      // No direction where the task gradients are opposite (Nash-MTL: G a = 1/a has no
      // positive solution): x is Pareto-stationary and the run ends there.
      const double cosine = G(0, 1) / std::sqrt(G(0, 0) * G(1, 1));
      if (cosine < -1 + 1e-6) break;
      throw Error(
          "metalearn::mtl::toy_descent: the aggregator gave a non-finite direction at "
          "step " +
          std::to_string(n) + " (x = " + std::to_string(x.data()[0]) + ", " +
          std::to_string(x.data()[1]) + ", cosine of the task gradients " + std::to_string(cosine) +
          ")");
    }
    adam.step(
        std::vector<Tensor<double>>{Tensor<double>(Shape{2}, std::vector<double>{d[0], d[1]})});
    if ((n + 1) % o.record_every == 0) path.push_back({x.data()[0], x.data()[1]});
  }
  if (path.back() != ToyPoint{x.data()[0], x.data()[1]}) path.push_back({x.data()[0], x.data()[1]});
  return path;
}

}  // namespace metalearn::mtl
