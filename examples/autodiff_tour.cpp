// examples/autodiff_tour.cpp
//
// Reverse-mode autodiff of any order on the sinusoid network of Finn et al. 2017 (§5.1):
// an MLP 1-40-40-1 with ReLU. Shows: parameters as leaves on a Tape, grad() in a training
// loop that reuses the tape's memory, a second-order meta-gradient through one inner SGD
// step (grad with create_graph, as in MAML) checked against finite differences, and a
// Hessian-vector product.
//
//   ./autodiff_tour --steps 2000 --lr 0.01 --seed 1
//
// Prints a progress line every --log-every steps, then one summary line:
//   final: loss_first=<x> loss_last=<x> meta_grad_max_rel_error=<x> hvp_norm=<x> steps=<n>
//   seconds=<t>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <metalearn/metalearn.hpp>
#include <tuple>
#include <vector>

#include "common/args.hpp"

namespace ml = metalearn;
using Params = std::vector<ml::Tensor<double>>;
using Vars = std::vector<ml::Var<double>>;

namespace {

// PyTorch's default Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
Params init_mlp(const std::vector<std::int64_t>& sizes, ml::Rng& rng) {
  Params p;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(sizes[l]));
    ml::Tensor<double> w(ml::Shape{sizes[l], sizes[l + 1]}), b(ml::Shape{sizes[l + 1]});
    for (std::int64_t i = 0; i < w.numel(); ++i) w.data()[i] = ml::uniform(rng, -bound, bound);
    for (std::int64_t i = 0; i < b.numel(); ++i) b.data()[i] = ml::uniform(rng, -bound, bound);
    p.push_back(w);
    p.push_back(b);
  }
  return p;
}

// The same forward code runs on the parameters and on MAML's adapted "fast weights".
ml::Var<double> mlp(const Vars& w, const ml::Var<double>& x) {
  auto h = x;
  for (std::size_t l = 0; l < w.size(); l += 2) {
    h = ml::matmul(h, w[l]) + w[l + 1];
    if (l + 2 < w.size()) h = ml::relu(h);
  }
  return h;
}

struct SineTask {
  double amplitude, phase;
  // K points with x ~ U[-5, 5], as [K, 1] inputs and targets.
  std::pair<ml::Tensor<double>, ml::Tensor<double>> sample(ml::Rng& rng, std::int64_t k) const {
    ml::Tensor<double> x(ml::Shape{k, 1}), y(ml::Shape{k, 1});
    for (std::int64_t i = 0; i < k; ++i) {
      x.data()[i] = ml::uniform(rng, -5.0, 5.0);
      y.data()[i] = amplitude * std::sin(x.data()[i] - phase);
    }
    return {x, y};
  }
};

SineTask random_task(ml::Rng& rng) {
  return {ml::uniform(rng, 0.1, 5.0), ml::uniform(rng, 0.0, 3.14159265358979)};
}

// L_query(theta - alpha * grad L_support(theta)): MAML's objective for one task (Eq. 1).
ml::Var<double> adapted_query_loss(const Vars& theta, const ml::Tensor<double>& xs,
                                   const ml::Tensor<double>& ys, const ml::Tensor<double>& xq,
                                   const ml::Tensor<double>& yq, double alpha) {
  const auto support = ml::mse(mlp(theta, ml::constant(xs)), ml::constant(ys));
  ml::GradOptions keep;
  keep.create_graph = true;  // keep the second-order term of the meta-gradient
  const Vars g = ml::grad(support, theta, keep);
  Vars fast;
  for (std::size_t i = 0; i < theta.size(); ++i) fast.push_back(theta[i] - g[i] * alpha);
  return ml::mse(mlp(fast, ml::constant(xq)), ml::constant(yq));
}

}  // namespace

int main(int argc, char** argv) try {
  const examples::Args args{argc,
                            argv,
                            "usage: autodiff_tour [--steps N] [--lr X] [--inner-lr X] [--seed N]\n"
                            "                     [--log-every N] [--quiet]\n",
                            {"steps", "lr", "inner-lr", "seed", "log-every"},
                            {"quiet"}};
  const long steps = args.get_int("steps", 2000, 1, 100000000);
  const double lr = args.get_double("lr", 0.01, 1e-12, 10.0);
  const double alpha = args.get_double("inner-lr", 0.01, 0.0, 10.0);
  const long seed = args.get_int("seed", 1, 0, 1L << 62);
  const long log_every = args.get_int("log-every", 500, 1, 100000000);
  const bool quiet = args.has("quiet");
  const auto start = std::chrono::steady_clock::now();

  ml::Rng rng(static_cast<std::uint64_t>(seed));
  Params params = init_mlp({1, 40, 40, 1}, rng);
  const SineTask task = random_task(rng);

  // 1. Plain training with SGD on one sine wave. One Tape for the loop; reset() each step
  //    frees the step's nodes at once and the next step reuses the memory.
  double loss_first = 0, loss_last = 0;
  {
    ml::Tape<double> tape;
    Vars w, g;
    for (long step = 1; step <= steps; ++step) {
      tape.reset();
      const auto [x, y] = task.sample(rng, 10);
      tape.leaves(params, w);
      const auto loss = ml::mse(mlp(w, tape.constant(x)), tape.constant(y));
      ml::grad(loss, w, g);
      for (std::size_t i = 0; i < params.size(); ++i)
        params[i].array() -= lr * g[i].value().array();
      loss_last = loss.item();
      if (step == 1) loss_first = loss_last;
      if (!quiet && (step % log_every == 0 || step == steps))
        std::printf("step %6ld/%ld  loss %9.5f\n", step, steps, loss_last);
    }
  }

  // 2. A second-order meta-gradient on a fresh task, checked against central differences
  //    of the adapted query loss on a few coordinates.
  const SineTask fresh = random_task(rng);
  // Plain references, not structured bindings: a lambda below captures them (C++20 only).
  const auto support_points = fresh.sample(rng, 10);
  const auto query_points = fresh.sample(rng, 10);
  const auto& xs = std::get<0>(support_points);
  const auto& ys = std::get<1>(support_points);
  const auto& xq = std::get<0>(query_points);
  const auto& yq = std::get<1>(query_points);
  double worst = 0;
  double hvp_norm = 0;
  {
    ml::Tape<double> tape;
    const Vars theta = tape.leaves(params);
    const Vars meta = ml::grad(adapted_query_loss(theta, xs, ys, xq, yq, alpha), theta);
    for (int probe = 0; probe < 6; ++probe) {
      const std::size_t t = ml::uniform_index(rng, params.size());
      const std::int64_t i = static_cast<std::int64_t>(ml::uniform_index(rng, params[t].numel()));
      const double h = 1e-6, x0 = params[t].data()[i];
      const auto value_at = [&](double x) {
        Params p = params;
        p[t].data()[i] = x;
        ml::Tape<double> inner;
        return adapted_query_loss(inner.leaves(p), xs, ys, xq, yq, alpha).item();
      };
      const double numeric = (value_at(x0 + h) - value_at(x0 - h)) / (2 * h);
      const double analytic = meta[t].value()[i];
      worst = std::max(worst, std::abs(analytic - numeric) / std::max(1e-3, std::abs(numeric)));
    }
    // 3. Hessian-vector product of the support loss along a random direction.
    Vars v;
    for (const auto& p : params) {
      ml::Tensor<double> d(p.shape());
      for (std::int64_t i = 0; i < d.numel(); ++i) d.data()[i] = ml::normal(rng);
      v.push_back(tape.constant(d));
    }
    const auto support = ml::mse(mlp(theta, tape.constant(xs)), tape.constant(ys));
    for (const auto& hv : ml::hvp(support, theta, v)) hvp_norm += hv.value().array().square().sum();
    hvp_norm = std::sqrt(hvp_norm);
  }

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "final: loss_first=%.6g loss_last=%.6g meta_grad_max_rel_error=%.3g hvp_norm=%.6g "
      "steps=%ld seconds=%.3f\n",
      loss_first, loss_last, worst, hvp_norm, steps, seconds);
  return std::isfinite(loss_last) && std::isfinite(hvp_norm) ? 0 : 3;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << '\n';
  return 1;
}
