// benchmarks/learners/bench_maml.cpp
//
// Meta-steps of every gradient learner on Finn et al.'s sinusoid setup (MLP 1-40-40-1,
// K = 10 support and 10 query points, one inner step, meta-batch 25, Adam outside), on 1
// and 2 threads, and the inner loop alone (adapt + predict). Counters: meta-steps/s, tasks/s.
#include <benchmark/benchmark.h>

#include <metalearn/metalearn.hpp>
#include <thread>
#include <vector>

namespace ml = metalearn;
namespace data = metalearn::data;
namespace meta = metalearn::meta;

namespace {
template <class Learner>
void meta_steps(benchmark::State& state, meta::GradientLearnerOptions o = {}) {
  ml::Rng rng{5};
  auto net = ml::nn::mlp<float>({1, 40, 40, 1}, rng);
  ml::optim::Adam<float> adam(net.parameters());
  o.threads = static_cast<int>(state.range(0));
  Learner learner(o);
  ml::optim::Adam<float> outer(learner.meta_parameters(net));  // Meta-SGD adds step sizes
  const data::MetaBatchSampler<data::SineTasks<float>> tasks({}, 25);
  const auto batch = tasks.sample(rng);  // the same batch each time: measures the learner only
  (void)adam;
  for (auto _ : state) benchmark::DoNotOptimize(learner.meta_step(net, outer, batch).query_loss);
  state.counters["meta-steps/s"] =
      benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tasks/s"] = benchmark::Counter(25, benchmark::Counter::kIsIterationInvariantRate);
}
}  // namespace

static void BM_Maml_Sinusoid(benchmark::State& state) { meta_steps<meta::Maml>(state); }
BENCHMARK(BM_Maml_Sinusoid)->Arg(1)->Arg(2)->UseRealTime();

// MAML's meta-step by group size (args: threads, tasks_per_group): how the batched groups
// trade per-operation overhead (fewer, larger groups) against balance over the threads.
static void BM_Maml_SinusoidGroups(benchmark::State& state) {
  meta::GradientLearnerOptions o;
  o.tasks_per_group = static_cast<int>(state.range(1));
  meta_steps<meta::Maml>(state, o);
}
BENCHMARK(BM_Maml_SinusoidGroups)->ArgsProduct({{1, 2}, {1, 2, 3, 4, 5, 7, 13, 25}})->UseRealTime();
static void BM_Fomaml_Sinusoid(benchmark::State& state) { meta_steps<meta::Fomaml>(state); }
BENCHMARK(BM_Fomaml_Sinusoid)->Arg(1)->Arg(2)->UseRealTime();
static void BM_Anil_Sinusoid(benchmark::State& state) { meta_steps<meta::Anil>(state); }
BENCHMARK(BM_Anil_Sinusoid)->Arg(1)->Arg(2)->UseRealTime();
static void BM_Reptile_Sinusoid(benchmark::State& state) { meta_steps<meta::Reptile>(state); }
BENCHMARK(BM_Reptile_Sinusoid)->Arg(1)->Arg(2)->UseRealTime();
static void BM_MetaSgd_Sinusoid(benchmark::State& state) { meta_steps<meta::MetaSgd>(state); }
BENCHMARK(BM_MetaSgd_Sinusoid)->Arg(1)->Arg(2)->UseRealTime();

namespace {
// The open learners against MAML at 1 and 5 inner steps (args: threads, inner steps).
// CAVIA's network takes its 4 context values beside the input (Zintgraf et al.'s sinusoid
// setup: 1+4 inputs, 40-40 hidden).
template <class Learner>
void meta_steps_at(benchmark::State& state, bool context = false) {
  ml::Rng rng{5};
  ml::nn::Sequential<float> net;
  if (context) net.add(ml::nn::Context<float>(4));
  net.add(ml::nn::Linear<float>(context ? 5 : 1, 40, rng)).add(ml::nn::Relu<float>{});
  net.add(ml::nn::Linear<float>(40, 40, rng)).add(ml::nn::Relu<float>{});
  net.add(ml::nn::Linear<float>(40, 1, rng));
  meta::GradientLearnerOptions o;
  o.threads = static_cast<int>(state.range(0));
  o.inner_steps = static_cast<int>(state.range(1));
  Learner learner(o);
  ml::optim::Adam<float> outer(learner.meta_parameters(net));
  const data::MetaBatchSampler<data::SineTasks<float>> tasks({}, 25);
  const auto batch = tasks.sample(rng);
  for (auto _ : state) benchmark::DoNotOptimize(learner.meta_step(net, outer, batch).query_loss);
  state.counters["meta-steps/s"] =
      benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
}
}  // namespace

static void BM_Maml_SinusoidSteps(benchmark::State& state) { meta_steps_at<meta::Maml>(state); }
BENCHMARK(BM_Maml_SinusoidSteps)->Args({1, 1})->Args({1, 5})->UseRealTime();
static void BM_MamlPlusPlus_Sinusoid(benchmark::State& state) {
  meta_steps_at<meta::MamlPlusPlus>(state);
}
BENCHMARK(BM_MamlPlusPlus_Sinusoid)->Args({1, 1})->Args({1, 5})->UseRealTime();
static void BM_Cavia_Sinusoid(benchmark::State& state) { meta_steps_at<meta::Cavia>(state, true); }
BENCHMARK(BM_Cavia_Sinusoid)->Args({1, 1})->Args({1, 5})->UseRealTime();
static void BM_Imaml_Sinusoid(benchmark::State& state) { meta_steps_at<meta::Imaml>(state); }
BENCHMARK(BM_Imaml_Sinusoid)->Args({1, 1})->Args({1, 5})->UseRealTime();

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

namespace {
data::Episode<float> omniglot_like_episode(ml::Rng& rng) {
  data::Episode<float> e;  // 5-way 1-shot, 15 queries per class, random 28x28 images
  e.ways = 5;
  e.shots = 1;
  e.queries = 15;
  e.support_inputs = ml::Tensor<float>(ml::Shape{5, 1, 28, 28});
  e.query_inputs = ml::Tensor<float>(ml::Shape{75, 1, 28, 28});
  for (auto* t : {&e.support_inputs, &e.query_inputs})
    for (std::int64_t i = 0; i < t->numel(); ++i)
      t->data()[i] = static_cast<float>(ml::uniform01(rng));
  for (std::int64_t c = 0; c < 5; ++c) {
    e.support_labels.push_back(c);
    for (int k = 0; k < 15; ++k) e.query_labels.push_back(c);
  }
  return e;
}
}  // namespace

// Second-order MAML on Omniglot-shaped tasks with conv4 (Finn et al.: alpha 0.4, one inner
// step, meta-batch 32), 1 and 2 threads. About 167 GFLOP a meta-step (issue #5).
static void BM_Maml_Omniglot(benchmark::State& state) {
  ml::Rng rng{7};
  auto net = ml::nn::conv4<float>({}, rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.4;
  o.threads = static_cast<int>(state.range(0));
  meta::Maml maml(o);
  ml::optim::Adam<float> adam(maml.meta_parameters(net));
  std::vector<data::Episode<float>> batch;
  for (int t = 0; t < 32; ++t) batch.push_back(omniglot_like_episode(rng));
  for (auto _ : state) benchmark::DoNotOptimize(maml.meta_step(net, adam, batch).query_loss);
  state.counters["meta-steps/s"] =
      benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tasks/s"] = benchmark::Counter(32, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Maml_Omniglot)->Arg(1)->Arg(2)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

// Adaptation only on one Omniglot-shaped task: 3 inner steps (Finn's test setting), then
// predictions on the 75 queries.
static void BM_Maml_Omniglot_AdaptOnly(benchmark::State& state) {
  ml::Rng rng{8};
  auto net = ml::nn::conv4<float>({}, rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.4;
  const meta::Maml maml(o);
  const auto e = omniglot_like_episode(rng);
  for (auto _ : state) benchmark::DoNotOptimize(maml.predict(net, e, 3).data());
  state.counters["tasks/s"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Maml_Omniglot_AdaptOnly)->Unit(benchmark::kMillisecond);

// Memory of second-order MAML: the most bytes the tape had in use at once (peak_MiB, the
// first task on a fresh thread; steady_MiB, over 5 tasks on that thread, as in training,
// where blocks freed by one task wait on free lists for the next) and what the arena alone
// reserved (tape_MiB), for the meta-gradient of one Omniglot-shaped conv4 task with 1, 5
// and 10 inner steps (the graph of every inner step is kept for the meta-gradient, so
// memory grows with the steps), and with the bound differentiated_steps = 1 (args: inner
// steps, differentiated steps; 0 = all).
static void BM_Maml_Omniglot_TapeMemory(benchmark::State& state) {
  ml::Rng rng{9};
  auto net = ml::nn::conv4<float>({}, rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.4;
  o.inner_steps = static_cast<int>(state.range(0));
  o.differentiated_steps = static_cast<int>(state.range(1));
  o.threads = 1;
  meta::Maml maml(o);
  const std::vector<data::Episode<float>> batch{omniglot_like_episode(rng)};
  double bytes = 0, first = 0, steady = 0;
  for (auto _ : state) {
    std::thread worker([&] {
      std::vector<ml::Tensor<float>> grads;
      for (int task = 0; task < 5; ++task) {
        maml.meta_gradient(net, batch, grads);
        const ml::Tape<float> probe;  // this thread's storage: its high-water marks
        if (task == 0) first = static_cast<double>(probe.bytes_peak());
        steady = static_cast<double>(probe.bytes_peak());
        bytes = static_cast<double>(probe.bytes_reserved());
      }
    });
    worker.join();
  }
  state.counters["tape_MiB"] = bytes / (1024.0 * 1024.0);
  state.counters["peak_MiB"] = first / (1024.0 * 1024.0);
  state.counters["steady_MiB"] = steady / (1024.0 * 1024.0);
}
// iMAML's memory for the same task: the inner steps run on scratch tapes, one per step,
// and the implicit gradient needs the graph of one support gradient (args: inner steps).
static void BM_Imaml_Omniglot_TapeMemory(benchmark::State& state) {
  ml::Rng rng{9};
  auto net = ml::nn::conv4<float>({}, rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.4;
  o.inner_steps = static_cast<int>(state.range(0));
  o.threads = 1;
  meta::Imaml imaml(o);
  const std::vector<data::Episode<float>> batch{omniglot_like_episode(rng)};
  double first = 0;
  for (auto _ : state) {
    std::thread worker([&] {
      std::vector<ml::Tensor<float>> grads;
      imaml.meta_gradient(net, batch, grads);
      const ml::Tape<float> probe;
      first = static_cast<double>(probe.bytes_peak());
    });
    worker.join();
  }
  state.counters["peak_MiB"] = first / (1024.0 * 1024.0);
}
BENCHMARK(BM_Imaml_Omniglot_TapeMemory)
    ->Arg(1)
    ->Arg(5)
    ->Arg(10)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

BENCHMARK(BM_Maml_Omniglot_TapeMemory)
    ->Args({1, 0})
    ->Args({5, 0})
    ->Args({10, 0})
    ->Args({5, 1})
    ->Args({10, 1})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
