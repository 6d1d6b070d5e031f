// benchmarks/learners/bench_mtl.cpp
//
// Multi-task learning steps: the Multi-Fashion recipe (Sener & Koltun's LeNet, hard
// parameter sharing, two 10-class heads, batch 256 of 1x28x28 random images, Adam) with
// equal weighting (one backward pass), with PCGrad and MGDA (two task gradients and their
// Gramian) and with MGDA-UB (the Gramian of the representation's gradients), and the aggregators'
// own cost on a K x K Gramian for K = 2, 5, 10 (what a step adds for the combination once the task
// gradients exist). Counters: steps/s, images/s.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <metalearn/metalearn.hpp>
#include <vector>

namespace ml = metalearn;
namespace nn = metalearn::nn;
namespace mtl = metalearn::mtl;

namespace {

mtl::HardSharing<float> lenet(ml::Rng& rng) {
  nn::Sequential<float> trunk = mtl::lenet_trunk<float>(rng);
  return mtl::HardSharing<float>(
      std::move(trunk), {mtl::lenet_head<float>(rng, 10), mtl::lenet_head<float>(rng, 10)});
}

mtl::MultiTaskBatch<float> random_batch(std::int64_t n, ml::Rng& rng) {
  mtl::MultiTaskBatch<float> b;
  b.inputs = ml::Tensor<float>(ml::Shape{n, 1, 28, 28});
  for (std::int64_t i = 0; i < b.inputs.numel(); ++i)
    b.inputs.data()[i] = static_cast<float>(ml::uniform01(rng));
  for (int t = 0; t < 2; ++t) {
    std::vector<std::int64_t> labels;
    for (std::int64_t i = 0; i < n; ++i)
      labels.push_back(static_cast<std::int64_t>(ml::uniform_index(rng, 10)));
    b.tasks.push_back(mtl::TaskTargets<float>::classification(labels, 10));
  }
  return b;
}

template <class Learner, mtl::GramianOf Of = mtl::GramianOf::shared_parameters>
void BM_MultiFashionStep(benchmark::State& state) {
  ml::Rng rng(1);
  auto net = lenet(rng);
  mtl::MtlLearnerOptions o;
  o.gramian_of = Of;
  Learner learner(o);
  ml::optim::Adam<float> adam(learner.meta_parameters(net), {1e-3});
  const auto batch = random_batch(256, rng);
  for (auto _ : state) benchmark::DoNotOptimize(ml::meta::meta_step(learner, net, adam, batch));
  state.counters["steps/s"] =
      benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["images/s"] =
      benchmark::Counter(256.0 * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK_TEMPLATE(BM_MultiFashionStep, mtl::MtlLearner<mtl::EqualWeighting, mtl::SumGradients>)
    ->Name("MultiFashionStep/ew")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_MultiFashionStep, mtl::MtlLearner<mtl::EqualWeighting, mtl::PcGrad>)
    ->Name("MultiFashionStep/pcgrad")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_MultiFashionStep, mtl::MtlLearner<mtl::EqualWeighting, mtl::Mgda>)
    ->Name("MultiFashionStep/mgda")
    ->Unit(benchmark::kMillisecond);
// MGDA-UB: the two task gradients through the heads only, one backward pass of the trunk.
BENCHMARK_TEMPLATE(BM_MultiFashionStep, mtl::MtlLearner<mtl::EqualWeighting, mtl::Mgda>,
                   mtl::GramianOf::representation)
    ->Name("MultiFashionStep/mgda_ub")
    ->Unit(benchmark::kMillisecond);

// The aggregator alone on the Gramian of K random gradients of the LeNet trunk's size.
template <class Aggregator>
void BM_Aggregate(benchmark::State& state) {
  const auto k = static_cast<Eigen::Index>(state.range(0));
  ml::Rng rng(2);
  Eigen::MatrixXd g(k, 64);
  for (Eigen::Index i = 0; i < g.size(); ++i) g.data()[i] = ml::normal(rng);
  const Eigen::MatrixXd G = g * g.transpose();
  const Aggregator a;
  for (auto _ : state) benchmark::DoNotOptimize(a.weights(G, rng));
}
BENCHMARK_TEMPLATE(BM_Aggregate, mtl::Mgda)->Name("Aggregate/mgda")->Arg(2)->Arg(5)->Arg(10);
BENCHMARK_TEMPLATE(BM_Aggregate, mtl::PcGrad)->Name("Aggregate/pcgrad")->Arg(2)->Arg(5)->Arg(10);
BENCHMARK_TEMPLATE(BM_Aggregate, mtl::CaGrad)->Name("Aggregate/cagrad")->Arg(2)->Arg(5)->Arg(10);
BENCHMARK_TEMPLATE(BM_Aggregate, mtl::ImtlG)->Name("Aggregate/imtl")->Arg(2)->Arg(5)->Arg(10);
BENCHMARK_TEMPLATE(BM_Aggregate, mtl::NashMtl)->Name("Aggregate/nash")->Arg(2)->Arg(5)->Arg(10);

}  // namespace
