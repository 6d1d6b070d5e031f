// SPDX-License-Identifier: MIT
/// @file metalearn/mtl/aggregators.hpp
/// Gradient aggregators: how the task gradients of the shared parameters become one
/// update. Every one is a function of the K x K Gramian G_ij = g_i . g_j of the task
/// gradients (TorchJD's view): it returns coefficients a and the shared update is
/// sum_t a_t g_t. The learner computes the K gradients and G once; a method is then a
/// small dense computation, O(K^2) to O(K^3), whatever the parameter count.
///
/// An aggregator has `static constexpr const char* name`, `static constexpr bool
/// uses_gramian` and `std::vector<double> weights(const Eigen::MatrixXd& G, Rng& rng)
/// const` (rng: for the methods that draw, PCGrad's task order). G must be finite and
/// square (else InvalidArgument). A method with no solution for a G (Nash-MTL's system
/// when the gradients are linearly dependent) returns NaN coefficients: MtlLearner then
/// reports a non-finite step, which train() stops on or skips (OnNonFinite).
#pragma once

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <numeric>
#include <string>
#include <vector>

namespace metalearn::mtl {

/// No aggregation: the gradient of the sum of the (weighted) task losses, one backward
/// pass, no task gradients. The loss weightings use it.
struct SumGradients {
  static constexpr const char* name = "sum";
  static constexpr bool uses_gramian = false;
  std::vector<double> weights(const Eigen::MatrixXd& G, Rng& /*rng*/) const {
    return std::vector<double>(static_cast<std::size_t>(G.rows()), 1.0);
  }
};

namespace detail {
// The minimiser over gamma in [0, 1] of |gamma u + (1 - gamma) v|^2, from u.u, u.v, v.v
// (Sener & Koltun 2018, Algorithm 1's line search).
inline double min_norm_segment(double uu, double uv, double vv) {
  const double denom = uu - 2 * uv + vv;
  if (!(denom > 0)) return uv < vv ? 1.0 : 0.0;  // u == v: any point; keep the shorter
  return std::clamp((vv - uv) / denom, 0.0, 1.0);
}

inline void require_gramian(const Eigen::MatrixXd& G, const char* who) {
  if (G.rows() < 1 || G.rows() != G.cols() || !G.allFinite())
    throw InvalidArgument(std::string("metalearn::mtl::") + who +
                          ": the Gramian must be a finite, square, non-empty matrix, got " +
                          std::to_string(G.rows()) + "x" + std::to_string(G.cols()));
}
}  // namespace detail

/// Options of Mgda.
struct MgdaOptions {
  int max_iterations = 250;  ///< Frank-Wolfe iterations (the authors' MinNormSolver: 250)
  double tolerance = 1e-5;   ///< stop when an iteration moves the weights less than this
};

/// MGDA (Sener & Koltun 2018): the minimum-norm point of the convex hull of the task
/// gradients, min_{a in simplex} a^T G a (Eq. 3), by Frank-Wolfe with exact line search
/// (Algorithm 2), started at the best pair (the two-task closed form, Algorithm 1), on the
/// gradients of the shared parameters, or with MtlLearnerOptions::gramian_of =
/// representation on those of the shared representation (MGDA-UB, §3.3). The
/// task-specific parameters take their plain gradients, as LibMTL.
struct Mgda {
  static constexpr const char* name = "mgda";
  static constexpr bool uses_gramian = true;
  MgdaOptions options;

  Mgda() = default;
  explicit Mgda(MgdaOptions o) : options(o) {}

  std::vector<double> weights(const Eigen::MatrixXd& G, Rng& /*rng*/) const {
    detail::require_gramian(G, "Mgda");
    const Eigen::Index k = G.rows();
    Eigen::VectorXd a = Eigen::VectorXd::Zero(k);
    if (k == 1) return {1.0};
    // Best pair: the two-task solution with the smallest norm.
    double best = std::numeric_limits<double>::infinity();
    for (Eigen::Index i = 0; i < k; ++i)
      for (Eigen::Index j = i + 1; j < k; ++j) {
        const double g = detail::min_norm_segment(G(i, i), G(i, j), G(j, j));
        const double norm =
            g * g * G(i, i) + 2 * g * (1 - g) * G(i, j) + (1 - g) * (1 - g) * G(j, j);
        if (norm < best) {
          best = norm;
          a.setZero();
          a(i) = g;
          a(j) = 1 - g;
        }
      }
    for (int it = 0; it < options.max_iterations; ++it) {
      const Eigen::VectorXd Ga = G * a;
      Eigen::Index t = 0;
      Ga.minCoeff(&t);  // the vertex most opposed to the current point
      // Line search between the current point v = sum a g and the vertex g_t.
      const double g = detail::min_norm_segment(G(t, t), Ga(t), a.dot(Ga));
      Eigen::VectorXd next = (1 - g) * a;
      next(t) += g;
      const double moved = (next - a).cwiseAbs().sum();
      a = next;
      if (moved < options.tolerance) break;
    }
    return {a.data(), a.data() + k};
  }
};

/// PCGrad (Yu et al. 2020, Algorithm 1): each task gradient, in turn, is projected onto the
/// normal plane of every other task's gradient it conflicts with (negative dot product),
/// in a random order per task; the update is the sum of the projected gradients. In
/// coefficients: the projected g_i is c_i^T g, and c_i -= (c_i^T G e_j / G_jj) e_j.
struct PcGrad {
  static constexpr const char* name = "pcgrad";
  static constexpr bool uses_gramian = true;

  std::vector<double> weights(const Eigen::MatrixXd& G, Rng& rng) const {
    detail::require_gramian(G, "PcGrad");
    const Eigen::Index k = G.rows();
    Eigen::VectorXd total = Eigen::VectorXd::Zero(k);
    std::vector<Eigen::Index> order(static_cast<std::size_t>(k));
    for (Eigen::Index i = 0; i < k; ++i) {
      Eigen::VectorXd c = Eigen::VectorXd::Unit(k, i);
      std::iota(order.begin(), order.end(), Eigen::Index(0));
      shuffle(order, rng);
      for (Eigen::Index j : order) {
        if (j == i || !(G(j, j) > 0)) continue;
        const double dot = c.dot(G.col(j));  // (projected g_i) . g_j
        if (dot < 0) c(j) -= dot / G(j, j);
      }
      total += c;
    }
    return {total.data(), total.data() + k};
  }

 private:
  template <class T>
  static void shuffle(std::vector<T>& v, Rng& rng) {  // Fisher-Yates, from our Rng
    for (std::size_t i = v.size(); i > 1; --i)
      std::swap(v[i - 1], v[static_cast<std::size_t>(uniform_index(rng, i))]);
  }
};

/// Options of CaGrad.
struct CaGradOptions {
  double c = 0.5;        ///< radius factor of the ball around the mean gradient (c in [0, 1))
  bool rescale = true;   ///< divide the update by 1 + c^2 (the authors' default rescale=1)
  int iterations = 200;  ///< projected-gradient iterations of the dual problem
};

/// CAGrad (Liu et al. 2021, Eq. 4 and its dual): with g0 the mean gradient, the weights w
/// minimise w^T G a0 + c |g0| sqrt(w^T G w) over the simplex (a0 = 1/K), and the update is
/// g0 + (c |g0| / |g_w|) g_w, divided by 1 + c^2 when rescaling. Solved by projected
/// gradient descent with backtracking (the problem is convex in w).
struct CaGrad {
  static constexpr const char* name = "cagrad";
  static constexpr bool uses_gramian = true;
  CaGradOptions options;

  CaGrad() = default;
  explicit CaGrad(CaGradOptions o) : options(o) {
    if (!(o.c >= 0 && o.c < 1) || o.iterations < 1)
      throw InvalidArgument("metalearn::mtl::CaGrad: need c in [0, 1) and iterations >= 1");
  }

  std::vector<double> weights(const Eigen::MatrixXd& G, Rng& /*rng*/) const {
    detail::require_gramian(G, "CaGrad");
    const Eigen::Index k = G.rows();
    const Eigen::VectorXd a0 = Eigen::VectorXd::Constant(k, 1.0 / static_cast<double>(k));
    const Eigen::VectorXd b = G * a0;  // w^T b = g_w . g0
    const double radius = options.c * std::sqrt(std::max(a0.dot(b), 0.0) + 1e-8);
    const auto objective = [&](const Eigen::VectorXd& w) {
      return w.dot(b) + radius * std::sqrt(std::max(w.dot(G * w), 0.0) + 1e-8);
    };
    Eigen::VectorXd w = a0;
    double f = objective(w), step = 1.0 / (G.diagonal().cwiseAbs().maxCoeff() + 1e-12);
    for (int it = 0; it < options.iterations; ++it) {
      const double norm = std::sqrt(std::max(w.dot(G * w), 0.0) + 1e-8);
      const Eigen::VectorXd grad = b + radius * (G * w) / norm;
      bool moved = false;
      for (int tries = 0; tries < 30; ++tries, step *= 0.5) {
        const Eigen::VectorXd next = project_simplex(w - step * grad);
        const double fn = objective(next);
        if (fn <= f - 1e-4 * grad.dot(w - next)) {
          moved = (next - w).cwiseAbs().sum() > 1e-12;
          w = next;
          f = fn;
          step *= 2;  // try a longer step next time
          break;
        }
      }
      if (!moved) break;
    }
    const double gw = std::sqrt(std::max(w.dot(G * w), 0.0) + 1e-8);
    Eigen::VectorXd a = a0 + (radius / gw) * w;
    if (options.rescale) a /= 1 + options.c * options.c;
    return {a.data(), a.data() + k};
  }

  /// Euclidean projection onto the probability simplex (Duchi et al. 2008).
  static Eigen::VectorXd project_simplex(const Eigen::VectorXd& v) {
    std::vector<double> u(v.data(), v.data() + v.size());
    std::sort(u.begin(), u.end(), std::greater<double>());
    double sum = 0, theta = 0;
    for (std::size_t j = 0; j < u.size(); ++j) {
      sum += u[j];
      const double t = (sum - 1) / static_cast<double>(j + 1);
      if (u[j] - t > 0) theta = t;
    }
    return (v.array() - theta).cwiseMax(0.0).matrix();
  }
};

/// IMTL-G (Liu et al. 2021, "Towards impartial multi-task learning", §3.2): the update
/// d = sum a_t g_t with sum a_t = 1 whose projections onto every unit task gradient u_t
/// are equal: a_{2..K} = g_1 U^T (D U^T)^{-1}, D rows g_1 - g_t, U rows u_1 - u_t.
/// All are inner products, so it is a (K-1)-square solve on the Gramian. Tasks with a zero
/// gradient get 0; when the system is singular (coinciding directions) the weights are
/// equal.
struct ImtlG {
  static constexpr const char* name = "imtl";
  static constexpr bool uses_gramian = true;

  std::vector<double> weights(const Eigen::MatrixXd& G, Rng& /*rng*/) const {
    detail::require_gramian(G, "ImtlG");
    const Eigen::Index k = G.rows();
    // A task with a zero gradient has no direction: it gets 0 and the others are solved.
    std::vector<Eigen::Index> on;
    for (Eigen::Index i = 0; i < k; ++i)
      if (G(i, i) > 0) on.push_back(i);
    std::vector<double> a(static_cast<std::size_t>(k), 0.0);
    if (on.empty()) return a;
    if (on.size() == 1) {
      a[static_cast<std::size_t>(on[0])] = 1.0;
      return a;
    }
    const auto m = static_cast<Eigen::Index>(on.size()) - 1;
    const auto at = [&](Eigen::Index i) { return on[static_cast<std::size_t>(i)]; };
    const auto gu = [&](Eigen::Index i, Eigen::Index j) {  // g_i . u_j = G_ij / |g_j|
      return G(at(i), at(j)) / std::sqrt(G(at(j), at(j)));
    };
    Eigen::VectorXd rhs(m);  // (g_1 U^T)_j = g_1 . (u_1 - u_{j+1})
    Eigen::MatrixXd DU(m, m);
    for (Eigen::Index j = 0; j < m; ++j) {
      rhs(j) = gu(0, 0) - gu(0, j + 1);
      for (Eigen::Index i = 0; i < m; ++i)
        DU(i, j) = gu(0, 0) - gu(0, j + 1) - gu(i + 1, 0) + gu(i + 1, j + 1);
    }
    // Row vector a = rhs^T DU^{-1}, i.e. DU^T a^T = rhs. Directions that coincide make DU
    // singular; then every combination has equal projections and the weights are equal.
    const Eigen::FullPivLU<Eigen::MatrixXd> lu(DU.transpose());
    if (!lu.isInvertible()) {
      for (Eigen::Index i = 0; i <= m; ++i)
        a[static_cast<std::size_t>(at(i))] = 1.0 / static_cast<double>(m + 1);
      return a;
    }
    const Eigen::VectorXd rest = lu.solve(rhs);
    a[static_cast<std::size_t>(at(0))] = 1 - rest.sum();
    for (Eigen::Index j = 0; j < m; ++j) a[static_cast<std::size_t>(at(j + 1))] = rest(j);
    return a;
  }
};

/// Options of NashMtl.
struct NashMtlOptions {
  int max_iterations = 50;  ///< Newton iterations
  double tolerance = 1e-9;  ///< stop when |G a - 1/a| is below this (relative to |1/a|)
};

/// Nash-MTL (Navon et al. 2022, §3.2): the Nash bargaining solution, the a > 0 with
/// G a = 1/a elementwise (Eq. 3), so the update d = sum a_t g_t has |d|^2 = K whatever the
/// losses' scale. It is the stationary point of f(a) = a^T G a / 2 - sum log a_t, found by
/// damped Newton steps that keep a > 0 on G / |G|_F (for conditioning, as the authors'
/// code normalises) and rescaled by 1 / sqrt(|G|_F) (the authors put the factor back in
/// their constraint); they solve a sequence of convex problems with cvxpy instead. No
/// solution (linearly dependent gradients: f unbounded below) gives NaN coefficients. The
/// authors clip the shared update at norm 1: MtlLearnerOptions::clip_shared_norm (the
/// example sets it to 1).
struct NashMtl {
  static constexpr const char* name = "nash";
  static constexpr bool uses_gramian = true;
  NashMtlOptions options;

  NashMtl() = default;
  explicit NashMtl(NashMtlOptions o) : options(o) {}

  std::vector<double> weights(const Eigen::MatrixXd& G_in, Rng& /*rng*/) const {
    detail::require_gramian(G_in, "NashMtl");
    const Eigen::Index k = G_in.rows();
    const double scale = G_in.norm();
    if (!(scale > 0)) return std::vector<double>(static_cast<std::size_t>(k), std::nan(""));
    const Eigen::MatrixXd G = G_in / scale;
    const auto f = [&](const Eigen::VectorXd& a) {
      return 0.5 * a.dot(G * a) - a.array().log().sum();
    };
    Eigen::VectorXd a = Eigen::VectorXd::Ones(k);
    for (int it = 0; it < options.max_iterations; ++it) {
      const Eigen::VectorXd inv = a.cwiseInverse();
      const Eigen::VectorXd grad = G * a - inv;
      if (grad.norm() <= options.tolerance * inv.norm()) break;
      Eigen::MatrixXd H = G;
      H.diagonal() += inv.cwiseAbs2();
      const Eigen::VectorXd dir = -H.ldlt().solve(grad);
      double t = 1;
      while (((a + t * dir).array() <= 0).any()) t *= 0.5;  // stay positive
      const double f0 = f(a), slope = grad.dot(dir);
      // f is self-concordant (a convex quadratic plus a log barrier): once the Newton
      // decrement lambda^2 = -slope is below 1/16 the full step converges quadratically
      // (Boyd & Vandenberghe 2004, §9.6.4). Backtracking there would compare values of f
      // below its rounding (it stalled near |grad| ~ 1e-6 for nearly opposite task
      // gradients, where a is large).
      if (-slope > 0.0625)
        while (t > 1e-12 && f(a + t * dir) > f0 + 1e-4 * t * slope) t *= 0.5;
      a += t * dir;
    }
    const bool solved = a.allFinite() && (a.array() > 0).all() &&
                        (G * a - a.cwiseInverse()).norm() <= 1e-6 * a.cwiseInverse().norm();
    if (!solved) return std::vector<double>(static_cast<std::size_t>(k), std::nan(""));
    a /= std::sqrt(scale);
    return {a.data(), a.data() + k};
  }
};

}  // namespace metalearn::mtl
