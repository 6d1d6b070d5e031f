// benchmarks/learners/bench_maml.cpp
//
// Meta-steps of MAML and first-order MAML on Finn et al.'s sinusoid setup (MLP 1-40-40-1,
// K = 10 support and 10 query points, one inner step, meta-batch 25, Adam outside), on 1
// and 2 threads, and the inner loop alone (adapt + predict). Counters: meta-steps/s, tasks/s.
#include <benchmark/benchmark.h>

#include <metalearn/metalearn.hpp>
#include <vector>

namespace ml = metalearn;
namespace data = metalearn::data;
namespace meta = metalearn::meta;

namespace {
template <class Learner>
void meta_steps(benchmark::State& state) {
  ml::Rng rng{5};
  auto net = ml::nn::mlp<float>({1, 40, 40, 1}, rng);
  ml::optim::Adam<float> adam(net.parameters());
  meta::MamlOptions o;
  o.threads = static_cast<int>(state.range(0));
  const Learner learner(o);
  const data::MetaBatchSampler<data::SineTasks<float>> tasks({}, 25);
  const auto batch = tasks.sample(rng);  // the same batch each time: measures the learner only
  for (auto _ : state) benchmark::DoNotOptimize(learner.meta_step(net, adam, batch).query_loss);
  state.counters["meta-steps/s"] =
      benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tasks/s"] = benchmark::Counter(25, benchmark::Counter::kIsIterationInvariantRate);
}
}  // namespace

static void BM_Maml_Sinusoid(benchmark::State& state) { meta_steps<meta::Maml>(state); }
BENCHMARK(BM_Maml_Sinusoid)->Arg(1)->Arg(2)->UseRealTime();
static void BM_Fomaml_Sinusoid(benchmark::State& state) { meta_steps<meta::Fomaml>(state); }
BENCHMARK(BM_Fomaml_Sinusoid)->Arg(1)->Arg(2)->UseRealTime();

// Adaptation only: one inner step on the support set, then predictions on the queries.
static void BM_Maml_Sinusoid_AdaptOnly(benchmark::State& state) {
  ml::Rng rng{6};
  auto net = ml::nn::mlp<float>({1, 40, 40, 1}, rng);
  const meta::Maml maml;
  const auto e = data::SineTasks<float>{}.sample(rng);
  for (auto _ : state) benchmark::DoNotOptimize(maml.predict(net, e, 1).data());
  state.counters["tasks/s"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Maml_Sinusoid_AdaptOnly);
