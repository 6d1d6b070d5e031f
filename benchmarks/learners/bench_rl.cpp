// benchmarks/learners/bench_rl.cpp
//
// Meta-reinforcement learning: one MAML-TRPO meta-iteration on 2-D navigation with
// pytorch-maml-rl's recipe (Gaussian MLP 2-64-64-2 tanh, 20 tasks, 20 episodes of 100
// steps for the support and the query rollouts, linear baseline, one inner step alpha 0.1,
// TRPO with 10 conjugate-gradient iterations and a line search) on 1 and 2 threads, the
// same with the plain surrogate gradient (no TRPO), and one rollout of 20 episodes
// (environment steps/s). Peer: benchmarks/python/bench_rl_torch.py.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <metalearn/metalearn.hpp>
#include <vector>

namespace ml = metalearn;
namespace nn = metalearn::nn;
namespace rl = metalearn::rl;

namespace {

using Policy = rl::GaussianPolicy<nn::Sequential<float>>;

Policy navigation_policy() {
  ml::Rng rng(1);
  return Policy(nn::mlp<float>({2, 64, 64, 2}, rng, nn::Activation::tanh), 2);
}

template <class Learner>
void BM_MetaIteration(benchmark::State& state) {
  auto policy = navigation_policy();
  rl::MamlRlOptions o;
  o.threads = static_cast<int>(state.range(0));
  Learner maml(o);
  ml::optim::SgdOptions so;
  so.lr = 1.0;
  ml::optim::Sgd<float> sgd(maml.meta_parameters(policy), so);
  const rl::EnvTaskSampler<rl::Navigation2D> tasks(rl::Navigation2D(), 20);
  ml::Rng rng(2);
  for (auto _ : state) benchmark::DoNotOptimize(maml.meta_step(policy, sgd, tasks.sample(rng)));
  // Environment steps simulated per meta-iteration: support and query, 20 x 20 x 100 each.
  state.counters["env_steps/s"] = benchmark::Counter(
      2 * 20 * 20 * 100.0 * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK_TEMPLATE(BM_MetaIteration, rl::MamlTrpo<rl::Navigation2D>)
    ->Name("MamlTrpo_Navigation")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_MetaIteration, rl::MamlPolicyGradient<rl::Navigation2D>)
    ->Name("MamlPolicyGradient_Navigation")
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_Rollout(benchmark::State& state) {
  auto policy = navigation_policy();
  const rl::Navigation2D env;
  const rl::Navigation2D::task_type goal{0.2, -0.3};
  ml::Rng rng(3);
  ml::Tape<float> tape;
  ml::meta::Adapted<Policy, float> fast(policy, tape.leaves(policy.parameters().views()));
  for (auto _ : state)
    benchmark::DoNotOptimize(rl::rollout<rl::DiagGaussian, float>(
        env, goal, [&](const ml::Tensor<float>& x) { return fast.predict(x); }, 20, rng));
  state.counters["env_steps/s"] =
      benchmark::Counter(20 * 100.0 * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Rollout)->Name("Rollout_Navigation")->Unit(benchmark::kMillisecond);

}  // namespace
