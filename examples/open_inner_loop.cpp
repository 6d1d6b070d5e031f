// examples/open_inner_loop.cpp
//
// The inner loop written by hand with meta::adapt: a loss the library does not ship
// (pseudo-Huber), a step schedule of our own, second-order MAML's meta-gradient taken with
// grad() through the adapted weights, and the adapted model kept and adapted further. The
// same result as a GradientLearner with these policies, without writing one. Quoted in
// docs/learners.md ("The open inner loop").
//
//   ./open_inner_loop --steps 2000 --seed 1
//
// Last line: final: mse_pre=<x> mse_adapted=<x> steps=<n>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

#include "common/args.hpp"

namespace ml = metalearn;
namespace meta = metalearn::meta;
namespace data = metalearn::data;

namespace {
// Pseudo-Huber loss delta^2 (sqrt(1 + (r / delta)^2) - 1), averaged: robust to outliers.
ml::Var<float> pseudo_huber(const ml::Var<float>& out, const ml::Tensor<float>& target) {
  const float delta = 1.0f;
  const ml::Var<float> r = (out - ml::constant(target)) * (1.0f / delta);
  return ml::mean(ml::sqrt(ml::square(r) + 1.0f) - 1.0f) * (delta * delta);
}
}  // namespace

int main(int argc, char** argv) try {
  const examples::Args args{
      argc, argv, "usage: open_inner_loop [--steps N] [--seed N]\n", {"steps", "seed"}, {}};
  const long steps = args.get_int("steps", 2000, 1, 10000000);
  ml::Rng rng(static_cast<std::uint64_t>(args.get_int("seed", 1, 0, 1L << 62)));
  auto net = ml::nn::mlp<float>({1, 40, 40, 1}, rng);
  ml::optim::Adam<float> outer(net.parameters(), {1e-3});
  const data::SineTasks<float> tasks;
  // A rule of our own: the step halves after each inner step.
  const auto halving = [](const ml::Var<float>& w, const ml::Var<float>& g, std::size_t, int k) {
    return w - g * static_cast<float>(0.02 * std::pow(0.5, k));
  };
  meta::AdaptOptions inner;
  inner.steps = 2;  // Order::second by default: the steps stay differentiable

  for (long step = 0; step < steps; ++step) {
    std::vector<ml::Tensor<float>> meta_grad;
    for (int t = 0; t < 10; ++t) {  // a meta-batch of 10 tasks, summed
      const data::Episode<float> e = tasks.sample(rng);
      ml::Tape<float> tape;
      const auto theta = tape.leaves(net.parameters().views());
      const auto xs = tape.constant(e.support_inputs);
      const auto support = [&](const auto& model) {
        return pseudo_huber(model.forward(xs), e.support_targets);
      };
      const auto fast = meta::adapt(net, theta, support, halving, inner);
      const auto query = pseudo_huber(fast.forward(tape.constant(e.query_inputs)), e.query_targets);
      const auto g = ml::grad(query, theta);  // through both inner steps
      for (std::size_t i = 0; i < g.size(); ++i) {
        if (t == 0)
          meta_grad.push_back(g[i].to_tensor());
        else
          meta_grad[i].array() += g[i].value().array();
      }
    }
    outer.step(meta_grad);
  }

  // Keep an adapted model: adapt it with two steps, then five more without a graph.
  double pre = 0, adapted = 0;
  for (int t = 0; t < 100; ++t) {
    const data::Episode<float> e = tasks.sample(rng);
    ml::Tape<float> tape;
    const auto xs = tape.constant(e.support_inputs);
    const auto support = [&](const auto& model) {
      return pseudo_huber(model.forward(xs), e.support_targets);
    };
    auto fast = meta::adapt(net, tape.leaves(net.parameters().views()), support, halving, inner);
    pre +=
        ml::mse(net.forward(tape.leaves(net.parameters().views()), tape.constant(e.query_inputs)),
                tape.constant(e.query_targets))
            .item() /
        100;
    fast.adapt(support, meta::sgd_step(0.005), 5, meta::Order::none);
    const ml::Tensor<float> y = fast.predict(e.query_inputs);
    adapted += (y.array() - e.query_targets.array()).square().mean() / 100;
  }
  std::printf("final: mse_pre=%.6g mse_adapted=%.6g steps=%ld\n", pre, adapted, steps);
  return std::isfinite(adapted) ? 0 : 3;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << '\n';
  return 1;
}
