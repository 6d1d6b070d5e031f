// benchmarks/learners/bench_metric.cpp
//
// Training steps of the metric learners on the conv4 embedding (64 filters, batch norm,
// 1x28x28 Omniglot-sized random images, Adam): Prototypical Networks at 60-way 5-shot
// 5-query (Snell et al.'s Omniglot training shape) and 5-way 5-shot 15-query, and a Siamese
// net (Euclidean, contrastive loss) on 128 pairs. Counters: episodes/s or steps/s, images/s
// and GFLOP/s (convolutions, forward x 3 for forward + backward).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <metalearn/metalearn.hpp>
#include <vector>

namespace ml = metalearn;
namespace nn = metalearn::nn;
namespace data = metalearn::data;
namespace meta = metalearn::meta;

namespace {

nn::Sequential<float> embedding(ml::Rng& rng) {
  nn::Conv4Options o;
  o.embedding_only = true;
  return nn::conv4<float>(o, rng);
}

ml::Tensor<float> random_images(std::int64_t n, ml::Rng& rng) {
  ml::Tensor<float> x(ml::Shape{n, 1, 28, 28});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(ml::uniform01(rng));
  return x;
}

// Forward FLOP of conv4 (64 filters, 28x28) per image: 2 x multiply-adds of the four convs.
double conv4_flop_per_image() {
  double flop = 0;
  std::int64_t side = 28, channels = 1;
  for (int b = 0; b < 4; ++b) {
    flop += 2.0 * 64 * side * side * channels * 9;
    side /= 2;
    channels = 64;
  }
  return flop;
}

data::Episode<float> random_episode(std::int64_t ways, std::int64_t shots, std::int64_t queries,
                                    ml::Rng& rng) {
  data::Episode<float> e;
  e.ways = ways;
  e.shots = shots;
  e.queries = queries;
  e.support_inputs = random_images(ways * shots, rng);
  e.query_inputs = random_images(ways * queries, rng);
  for (std::int64_t c = 0; c < ways; ++c) {
    for (std::int64_t k = 0; k < shots; ++k) e.support_labels.push_back(c);
    for (std::int64_t k = 0; k < queries; ++k) e.query_labels.push_back(c);
  }
  return e;
}

void set_counters(benchmark::State& state, double images) {
  state.counters["images/s"] =
      benchmark::Counter(images, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(3 * images * conv4_flop_per_image() * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

// Args: ways, shots, queries, threads (one episode: its ops on the threads).
static void BM_ProtoNet_Train(benchmark::State& state) {
  ml::Rng rng{11};
  auto net = embedding(rng);
  meta::ProtoNetOptions o;
  o.threads = static_cast<int>(state.range(3));
  const meta::ProtoNet<> proto(o);
  ml::optim::Adam<float> adam(proto.meta_parameters(net));
  const std::vector<data::Episode<float>> batch{
      random_episode(state.range(0), state.range(1), state.range(2), rng)};
  for (auto _ : state) benchmark::DoNotOptimize(proto.meta_step(net, adam, batch).query_loss);
  state.counters["episodes/s"] =
      benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
  set_counters(state, static_cast<double>(state.range(0) * (state.range(1) + state.range(2))));
}
BENCHMARK(BM_ProtoNet_Train)
    ->Args({60, 5, 5, 1})
    ->Args({60, 5, 5, 2})
    ->Args({5, 5, 15, 1})
    ->Args({5, 5, 15, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Args: pairs, threads.
static void BM_Siamese_Train(benchmark::State& state) {
  ml::Rng rng{12};
  auto net = embedding(rng);
  meta::SiameseOptions o;
  o.threads = static_cast<int>(state.range(1));
  meta::Siamese<> siamese(o);
  ml::optim::Adam<float> adam(siamese.meta_parameters(net));
  const std::int64_t pairs = state.range(0);
  data::PairBatch<float> batch;
  batch.first = random_images(pairs, rng);
  batch.second = random_images(pairs, rng);
  batch.different = ml::Tensor<float>(ml::Shape{pairs});
  for (std::int64_t i = 0; i < pairs; ++i) batch.different.data()[i] = static_cast<float>(i % 2);
  for (auto _ : state) benchmark::DoNotOptimize(siamese.meta_step(net, adam, batch).query_loss);
  state.counters["steps/s"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
  set_counters(state, static_cast<double>(2 * pairs));
}
BENCHMARK(BM_Siamese_Train)
    ->Args({128, 1})
    ->Args({128, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
