// benchmarks/distributed/bench_distributed.cpp
//
// Strong scaling of distributed meta-steps: run it as `mpirun -np 1 bench_distributed`
// and `mpirun -np 2 bench_distributed` (one thread per rank) and compare the times. Each
// meta-step is shared among the ranks (distributed::meta_step); the counter comm_fraction
// is the share of the step spent in the all-gather of the task outcomes (which includes
// waiting for the slowest rank), comm_MB the bytes each rank receives per step.
// Workloads: the sinusoid (MLP 1-40-40-1, meta-batch 25; argument: tasks_per_group, which
// sets how many outcomes there are to share: 25 / it, rounded up), Omniglot-shaped conv4 MAML
// (5-way 1-shot, 15 queries, meta-batch 32), conv4 ProtoNet 60-way 1-shot 5-query
// (2 episodes per step). Iteration counts are fixed: every rank must run the same steps.
#include <benchmark/benchmark.h>

#include <chrono>
#include <metalearn/distributed/distributed.hpp>
#include <metalearn/metalearn.hpp>
#include <vector>

namespace ml = metalearn;
namespace data = metalearn::data;
namespace meta = metalearn::meta;

namespace {

const ml::distributed::Communicator* world = nullptr;

// The world, timing its all-gathers.
class TimedGroup final : public meta::ProcessGroup {
 public:
  int rank() const override { return world->rank(); }
  int size() const override { return world->size(); }
  std::vector<meta::Bytes> all_gather(const meta::Bytes& mine) const override {
    const auto t0 = std::chrono::steady_clock::now();
    auto all = world->all_gather(mine);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (const auto& b : all) bytes += static_cast<double>(b.size());
    return all;
  }
  void broadcast(meta::Bytes& b, int root) const override { world->broadcast(b, root); }
  mutable double seconds = 0, bytes = 0;
};

data::Episode<float> images_episode(ml::Rng& rng, std::int64_t ways, std::int64_t queries) {
  data::Episode<float> e;
  e.ways = ways;
  e.shots = 1;
  e.queries = queries;
  e.support_inputs = ml::Tensor<float>(ml::Shape{ways, 1, 28, 28});
  e.query_inputs = ml::Tensor<float>(ml::Shape{ways * queries, 1, 28, 28});
  for (auto* t : {&e.support_inputs, &e.query_inputs})
    for (std::int64_t i = 0; i < t->numel(); ++i)
      t->data()[i] = static_cast<float>(ml::uniform01(rng));
  for (std::int64_t c = 0; c < ways; ++c) {
    e.support_labels.push_back(c);
    for (std::int64_t k = 0; k < queries; ++k) e.query_labels.push_back(c);
  }
  return e;
}

template <class Learner, class Batch>
void shared_steps(benchmark::State& state, Learner& learner, ml::nn::Sequential<float>& net,
                  const Batch& batch) {
  ml::optim::Adam<float> outer(learner.meta_parameters(net));
  TimedGroup group;
  ml::distributed::meta_step(group, learner, net, outer, batch);  // warm-up: tapes, pages
  group.seconds = group.bytes = 0;
  double total = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(ml::distributed::meta_step(group, learner, net, outer, batch));
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  state.counters["ranks"] = world->size();
  state.counters["comm_fraction"] = total > 0 ? group.seconds / total : 0;
  state.counters["comm_MB"] =
      group.bytes / 1e6 /
      static_cast<double>(std::max<benchmark::IterationCount>(1, state.iterations()));
  state.counters["meta-steps/s"] =
      benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

static void BM_Sinusoid_Maml(benchmark::State& state) {
  ml::Rng rng{5};
  auto net = ml::nn::mlp<float>({1, 40, 40, 1}, rng);
  meta::GradientLearnerOptions o;
  o.threads = 1;
  o.tasks_per_group = static_cast<int>(state.range(0));  // 7 (default): 4 outcomes to share
  meta::Maml learner(o);
  const auto batch = data::MetaBatchSampler<data::SineTasks<float>>({}, 25).sample(rng);
  shared_steps(state, learner, net, batch);
}
BENCHMARK(BM_Sinusoid_Maml)
    ->Arg(7)
    ->Arg(13)
    ->Arg(25)
    ->Arg(5)
    ->Arg(1)
    ->Iterations(2000)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

static void BM_Omniglot_Maml(benchmark::State& state) {
  ml::Rng rng{7};
  auto net = ml::nn::conv4<float>({}, rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.4;
  o.threads = 1;
  meta::Maml learner(o);
  std::vector<data::Episode<float>> batch;
  for (int t = 0; t < 32; ++t) batch.push_back(images_episode(rng, 5, 15));
  shared_steps(state, learner, net, batch);
}
BENCHMARK(BM_Omniglot_Maml)->Iterations(4)->UseRealTime()->Unit(benchmark::kSecond);

static void BM_Omniglot_ProtoNet60(benchmark::State& state) {
  ml::Rng rng{9};
  ml::nn::Conv4Options c;
  c.embedding_only = true;
  auto net = ml::nn::conv4<float>(c, rng);
  meta::ProtoNetOptions o;
  o.threads = 1;
  meta::ProtoNet<> learner(o);
  std::vector<data::Episode<float>> batch;
  for (int t = 0; t < 2; ++t) batch.push_back(images_episode(rng, 60, 5));
  shared_steps(state, learner, net, batch);
}
BENCHMARK(BM_Omniglot_ProtoNet60)->Iterations(20)->UseRealTime()->Unit(benchmark::kMillisecond);

namespace {
class Silent : public benchmark::BenchmarkReporter {  // ranks other than 0
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};
}  // namespace

int main(int argc, char** argv) {
  ml::distributed::Communicator comm(&argc, &argv);
  world = &comm;
  benchmark::Initialize(&argc, argv);
  if (comm.rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    Silent silent;
    benchmark::RunSpecifiedBenchmarks(&silent);
  }
  benchmark::Shutdown();
  return 0;
}
