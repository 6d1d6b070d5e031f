// benchmarks/nn/bench_conv4.cpp
//
// The conv4 backbone (4 x [conv 3x3 + batch norm + ReLU + max-pool 2], linear head) at the
// shapes of few-shot learning: Omniglot 1x28x28 with 64 filters at batch 5, 25, 80 and 300,
// and mini-ImageNet 3x84x84 with 32 filters. Forward + backward (all parameter gradients),
// and a second-order MAML step (inner gradient recorded, meta-gradient through it).
// GFLOP/s counts the multiply-adds of the convolutions and the head (2 FLOP each); a
// backward pass counts twice the forward (input and weight gradients).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <metalearn/metalearn.hpp>
#include <vector>

namespace ml = metalearn;
namespace nn = metalearn::nn;

namespace {

nn::Conv4Options options_for(std::int64_t side) {
  nn::Conv4Options o;
  o.image_size = side;
  o.in_channels = side == 84 ? 3 : 1;
  o.filters = side == 84 ? 32 : 64;
  o.outputs = 5;
  return o;
}

// Multiply-adds x 2 of one forward pass over a batch.
double forward_flop(const nn::Conv4Options& o, std::int64_t batch) {
  double flop = 0;
  std::int64_t side = o.image_size, channels = o.in_channels;
  for (int b = 0; b < 4; ++b) {
    flop += 2.0 * batch * o.filters * side * side * channels * 9;
    side /= 2;
    channels = o.filters;
  }
  return flop + 2.0 * batch * o.filters * side * side * o.outputs;
}

ml::Tensor<float> images(ml::Rng& rng, std::int64_t batch, const nn::Conv4Options& o) {
  ml::Tensor<float> x(ml::Shape{batch, o.in_channels, o.image_size, o.image_size});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(ml::uniform01(rng));
  return x;
}

std::vector<std::int64_t> labels(std::int64_t batch) {
  std::vector<std::int64_t> y(static_cast<std::size_t>(batch));
  for (std::int64_t i = 0; i < batch; ++i) y[static_cast<std::size_t>(i)] = i % 5;
  return y;
}

}  // namespace

// Cross-entropy loss and the gradient of every parameter. Args: image side, batch, threads
// (intra-op: the ops split over images or channels).
static void BM_Conv4_ForwardBackward(benchmark::State& state) {
  const ml::IntraOpThreads threads(static_cast<std::size_t>(state.range(2)));
  const auto o = options_for(state.range(0));
  const std::int64_t batch = state.range(1);
  ml::Rng rng{3};
  auto net = nn::conv4<float>(o, rng);
  const auto x = images(rng, batch, o);
  const auto y = labels(batch);
  const auto views = net.parameters().views();
  ml::Tape<float> tape;
  std::vector<ml::Var<float>> w, g;
  const auto step = [&] {
    tape.reset();
    tape.leaves(views, w);
    ml::grad(ml::cross_entropy(net.forward(w, tape.constant(x)), y), w, g);
  };
  step();  // warm-up: the arena reaches its steady size (first-touch page faults)
  for (auto _ : state) {
    step();
    benchmark::DoNotOptimize(g[0].value().data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(3 * forward_flop(o, batch) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Conv4_ForwardBackward)
    ->ArgsProduct({{28}, {5, 25, 80, 300}, {1, 2}})
    ->ArgsProduct({{84}, {5, 25}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// One task of second-order MAML: 5-way 1-shot support (5 images), one inner SGD step with
// create_graph, 15 queries per class (75 images), meta-gradient. Args: image side, threads.
static void BM_Conv4_MamlSecondOrder(benchmark::State& state) {
  const ml::IntraOpThreads threads(static_cast<std::size_t>(state.range(1)));
  const auto o = options_for(state.range(0));
  ml::Rng rng{4};
  auto net = nn::conv4<float>(o, rng);
  const auto xs = images(rng, 5, o), xq = images(rng, 75, o);
  const auto ys = labels(5), yq = labels(75);
  const auto views = net.parameters().views();
  ml::Tape<float> tape;
  ml::GradOptions keep;
  keep.create_graph = true;
  std::vector<ml::Var<float>> w, g, fast, meta;
  const auto step = [&] {
    tape.reset();
    tape.leaves(views, w);
    ml::grad(ml::cross_entropy(net.forward(w, tape.constant(xs)), ys), w, g, keep);
    fast.clear();
    for (std::size_t i = 0; i < w.size(); ++i) fast.push_back(w[i] - g[i] * 0.4f);
    ml::grad(ml::cross_entropy(net.forward(fast, tape.constant(xq)), yq), w, meta);
  };
  step();  // warm-up, as above
  for (auto _ : state) {
    step();
    benchmark::DoNotOptimize(meta[0].value().data());
  }
  // Support: forward + backward recorded (3x) and differentiated again (about 2x more);
  // query: forward + backward (3x).
  state.counters["GFLOP/s"] =
      benchmark::Counter((5 * forward_flop(o, 5) + 3 * forward_flop(o, 75)) * 1e-9,
                         benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Conv4_MamlSecondOrder)
    ->ArgsProduct({{28, 84}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
