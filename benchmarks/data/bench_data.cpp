// benchmarks/data/bench_data.cpp
//
// Episode sampling from an in-memory Omniglot-sized dataset (1,600 classes x 20 images of
// 28x28), and loading ../shared/data/omniglot cold (decode + resize every PNG) and from the
// binary cache.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <metalearn/metalearn.hpp>
#include <string>

namespace ml = metalearn;
namespace data = metalearn::data;

namespace {
const data::ClassDataset<float>& omniglot_sized() {
  static const data::ClassDataset<float> ds = [] {
    const std::int64_t classes = 1600, per_class = 20;
    ml::Tensor<float> x(ml::Shape{classes * per_class, 1, 28, 28});
    ml::Rng rng{1};
    for (std::int64_t i = 0; i < x.numel(); ++i)
      x.data()[i] = static_cast<float>(ml::uniform01(rng));
    std::vector<std::int64_t> labels;
    for (std::int64_t i = 0; i < classes * per_class; ++i) labels.push_back(i / per_class);
    return data::ClassDataset<float>(std::move(x), std::move(labels));
  }();
  return ds;
}

std::string omniglot_dir() {
  return (std::filesystem::path(METALEARN_SOURCE_DIR) / ".." / "shared" / "data" / "omniglot" /
          "images_background")
      .string();
}
}  // namespace

// Args: ways, shots, queries. items = episodes.
static void BM_Data_EpisodeSampling(benchmark::State& state) {
  data::EpisodeSampler<float> sampler(omniglot_sized(),
                                      {state.range(0), state.range(1), state.range(2)});
  ml::Rng rng{2};
  for (auto _ : state) {
    auto e = sampler.sample(rng);
    benchmark::DoNotOptimize(e.support_inputs.data());
  }
  state.counters["episodes/s"] =
      benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Data_EpisodeSampling)->Args({5, 1, 15})->Args({60, 5, 5});

// A meta-batch of 32 5-way 1-shot episodes on 1 and 2 threads. Arg: threads.
static void BM_Data_MetaBatch(benchmark::State& state) {
  data::EpisodeSampler<float> sampler(omniglot_sized(), {5, 1, 15});
  data::MetaBatchSampler<data::EpisodeSampler<float>> batches(sampler, 32,
                                                              static_cast<int>(state.range(0)));
  ml::Rng rng{3};
  for (auto _ : state) {
    auto b = batches.sample(rng);
    benchmark::DoNotOptimize(b.data());
  }
  state.counters["episodes/s"] =
      benchmark::Counter(32, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Data_MetaBatch)->Arg(1)->Arg(2)->UseRealTime();

// Loading the Omniglot background set (19,280 PNGs, 105x105 -> 28x28): Arg 0 cold (decode
// everything), Arg 1 from the binary cache.
static void BM_Data_LoadOmniglot(benchmark::State& state) {
  const std::string dir = omniglot_dir();
  if (!std::filesystem::is_directory(dir)) {
    state.SkipWithError(("no Omniglot at " + dir).c_str());
    return;
  }
  data::ImageFolderOptions o;
  const std::string cache =
      (std::filesystem::temp_directory_path() / "metalearn_bench_omniglot.cache").string();
  if (state.range(0) == 1) {
    o.cache = cache;
    (void)data::load_image_folder(dir, o);  // make sure the cache exists
  }
  for (auto _ : state) {
    auto f = data::load_image_folder(dir, o);
    benchmark::DoNotOptimize(f.data.examples().data());
  }
}
BENCHMARK(BM_Data_LoadOmniglot)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(1);
