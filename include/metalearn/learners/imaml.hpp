// SPDX-License-Identifier: MIT
/// @file metalearn/learners/imaml.hpp
/// iMAML (Rajeswaran et al. 2019): a meta-objective whose gradient comes from the implicit
/// function theorem instead of back-propagation through the inner loop, so its memory does
/// not grow with the inner steps.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <metalearn/learners/adapt.hpp>
#include <metalearn/learners/task_loss.hpp>
#include <string>
#include <vector>

namespace metalearn::meta {

/// Options of ImplicitGradient.
struct ImplicitGradientOptions {
  double lambda =
      1.0;           ///< proximal strength: the inner loop minimises L + lambda/2 |phi - theta|^2
  int cg_steps = 5;  ///< conjugate-gradient iterations for the implicit linear system
  /// Added to the Hessian in that system (H + damping I), for a support loss that is not
  /// convex at phi; 0: none.
  double damping = 0.0;
};

/// The implicit meta-gradient (Rajeswaran et al. 2019). The inner loop takes inner_steps
/// steps of the inner update on the proximal objective L_support(phi) + lambda/2 |phi -
/// theta|^2 (Eq. 3), each on its own scratch tape (nothing is kept between steps). At its
/// minimiser, d phi / d theta = (I + H / lambda)^-1 with H the Hessian of L_support at phi
/// (Lemma 1), so the meta-gradient is g = (I + (H + damping I) / lambda)^-1 grad L_query(phi)
/// (Eq. 7), solved by cg_steps iterations of conjugate gradient on Hessian-vector products
/// (Algorithm 2, §3.1). Exact when the inner loop converges and cg_steps reaches the
/// number of adapted values; approximate otherwise, by design. Where the system is not
/// positive definite along a CG direction (a support loss not convex at phi, common for
/// ReLU nets on MSE), CG is truncated there (Dembo & Steihaug 1983): the iterate so far, or
/// the query gradient itself at the first iteration; raise damping to reach further.
///
/// Requires every parameter adapted (AdaptAll) and an inner update without tensors of its
/// own (InnerSgd): neither a fixed part nor learned step sizes get an implicit gradient.
/// evaluate() and adapt() run the same proximal inner loop (adapt_for_evaluation).
struct ImplicitGradient {
  /// The joint system of stacked tasks would couple their CG iterations: run one at a time.
  static constexpr bool batches_tasks = false;

  ImplicitGradientOptions options;

  ImplicitGradient() = default;
  explicit ImplicitGradient(ImplicitGradientOptions o) : options(o) {
    if (!(o.lambda > 0) || !std::isfinite(o.lambda) || o.cg_steps < 1 || !(o.damping >= 0))
      throw InvalidArgument(
          "metalearn::meta::ImplicitGradient: need a finite lambda > 0, cg_steps >= 1 and "
          "damping >= 0, got lambda = " +
          std::to_string(o.lambda) + ", cg_steps = " + std::to_string(o.cg_steps) +
          ", damping = " + std::to_string(o.damping));
  }

  template <class Task>
  void operator()(Task& task) const {
    using S = typename Task::scalar_type;
    using Fast = typename Task::Fast;
    const Fast start = task.start();
    check(task, start);
    const std::vector<Tensor<S>> phi = proximal_steps(task, start, task.inner_steps());

    std::vector<Var<S>> w;
    for (const auto& p : phi) w.push_back(leaf(p.view()));
    const Fast at(start.model(), w, start.adapted(), task.inner_steps());
    const std::vector<Tensor<S>> b = tensors(grad(task.query(at), w));
    GradOptions second;
    second.create_graph = true;
    const std::vector<Var<S>> gs = grad(task.loss(at, Split::support), w, second);
    const auto apply = [&](const std::vector<Tensor<S>>& v) {  // (I + (H + damping) / lambda) v
      Var<S> dot;
      for (std::size_t i = 0; i < v.size(); ++i) {
        const Var<S> term = sum(gs[i] * constant(v[i]));
        dot = i == 0 ? term : dot + term;
      }
      std::vector<Tensor<S>> out = tensors(grad(dot, w));
      const S scale_h = static_cast<S>(1 / options.lambda);
      const S scale_v = static_cast<S>(1 + options.damping / options.lambda);
      for (std::size_t i = 0; i < v.size(); ++i)
        out[i].array() = out[i].array() * scale_h + v[i].array() * scale_v;
      return out;
    };
    task.set_gradient(conjugate_gradient(apply, b, options.cg_steps));
  }

  /// The adaptation evaluate() and adapt() use: the same proximal inner loop (the paper's
  /// inner algorithm at meta-test time too), its result as fresh leaves.
  template <class Task, class Fast>
  void adapt_for_evaluation(Task& task, Fast& fast, int steps) const {
    check(task, fast);
    std::vector<Var<typename Task::scalar_type>> w;
    for (const auto& p : proximal_steps(task, fast, steps)) w.push_back(leaf(p.view()));
    fast = Fast(fast.model(), std::move(w), fast.adapted(), fast.steps() + steps);
  }

 private:
  template <class Task, class Fast>
  static void check(const Task& task, const Fast& start) {
    if (start.adapted().size() != task.model_parameters() ||
        task.leaves().size() != task.model_parameters())
      throw InvalidArgument(
          "metalearn::meta::ImplicitGradient: iMAML needs every parameter adapted (AdaptAll) "
          "and an inner update without learned tensors (InnerSgd)");
  }

  // `steps` steps of the inner update on L_support(phi) + lambda/2 |phi - theta|^2 from
  // theta = start, each on its own scratch tape (nothing is kept between steps).
  template <class Task, class Fast>
  std::vector<Tensor<typename Task::scalar_type>> proximal_steps(Task& task, const Fast& start,
                                                                 int steps) const {
    using S = typename Task::scalar_type;
    std::vector<Tensor<S>> theta, phi;
    for (const auto& v : start.parameters()) theta.push_back(v.to_tensor());
    phi = theta;
    const S half_lambda = static_cast<S>(options.lambda / 2);
    for (int k = 0; k < steps; ++k) {
      Tape<S> scratch;
      Fast f(start.model(), scratch.leaves(phi), start.adapted(), start.steps() + k);
      f.step(
          [&](const Fast& a) {
            Var<S> l = task.loss(a, Split::support);
            for (std::size_t i = 0; i < theta.size(); ++i)
              l = l + sum(square(a.parameters()[i] - constant(theta[i]))) * half_lambda;
            return l;
          },
          task.rule(), Order::none);
      for (std::size_t i = 0; i < phi.size(); ++i) phi[i] = f.parameters()[i].to_tensor();
    }
    return phi;
  }

  template <class S>
  static std::vector<Tensor<S>> tensors(const std::vector<Var<S>>& vs) {
    std::vector<Tensor<S>> out;
    for (const auto& v : vs) out.push_back(v.to_tensor());
    return out;
  }
  template <class S>
  static double dot(const std::vector<Tensor<S>>& a, const std::vector<Tensor<S>>& b) {
    double d = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
      d += (a[i].array().template cast<double>() * b[i].array().template cast<double>()).sum();
    return d;
  }

  // x with A x = b for a symmetric A given as a product, starting at 0 (truncated where A is
  // not positive definite along a search direction).
  template <class S, class Apply>
  static std::vector<Tensor<S>> conjugate_gradient(const Apply& apply,
                                                   const std::vector<Tensor<S>>& b, int steps) {
    std::vector<Tensor<S>> x, r = b, p = b;
    for (const auto& t : b) x.push_back(Tensor<S>(t.shape(), S(0)));
    double rr = dot(r, r);
    for (int k = 0; k < steps && rr > 0; ++k) {
      const std::vector<Tensor<S>> ap = apply(p);
      const double pap = dot(p, ap);
      if (!std::isfinite(pap)) {  // a diverged inner loop: report it as a non-finite step
        for (auto& t : x) t.array() = std::numeric_limits<S>::quiet_NaN();
        return x;
      }
      // Non-positive curvature along p (a support loss not convex at phi): stop, as truncated
      // CG does (Dembo & Steihaug 1983), with the iterate so far, or with b itself (the
      // query gradient: first order) when it happens at the first iteration.
      if (!(pap > 0)) return k == 0 ? b : x;
      const S alpha = static_cast<S>(rr / pap);
      for (std::size_t i = 0; i < x.size(); ++i) {
        x[i].array() += alpha * p[i].array();
        r[i].array() -= alpha * ap[i].array();
      }
      const double next = dot(r, r);
      const S beta = static_cast<S>(next / rr);
      for (std::size_t i = 0; i < p.size(); ++i) p[i].array() = r[i].array() + beta * p[i].array();
      rr = next;
    }
    return x;
  }
};

}  // namespace metalearn::meta
