// benchmarks/torch/bench_maml_libtorch.cpp
//
// libtorch (PyTorch's C++ API) peer of bench_maml's BM_Maml_Sinusoid and
// BM_Fomaml_Sinusoid: Finn et al.'s sinusoid setup (MLP 1-40-40-1, ReLU, K = 10 support and
// 10 query points, one inner SGD step with alpha = 0.01, meta-batch 25, Adam 1e-3 outside),
// all 25 tasks at once: each layer is one torch::baddbmm (product and bias in one call)
// over per-task copies of the weights, the fastest formulation PyTorch offers (no Python,
// no per-task loop; benchmarks/python/bench_maml_torch.py's batched case is the same
// meta-step with bmm and an add). Arg: the
// intra-op thread count (torch::set_num_threads), as bench_maml's threads.
//
// Built only with -DMETALEARN_BUILD_BENCHMARKS=ON -DMETALEARN_WITH_LIBTORCH=ON (e.g.
// `cmake --preset bench -DMETALEARN_WITH_LIBTORCH=ON`; Debian's libtorch-dev); see
// docs/benchmarks.md, "MAML on the sinusoid", for the side-by-side run.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace {
constexpr int64_t kTasks = 25, kPoints = 10;
constexpr double kInnerLr = 0.01;

// theta = {w1 [1,40], b1 [40], w2 [40,40], b2 [40], w3 [40,1], b3 [1]}, uniform in
// +-1/sqrt(fan_in) as nn::mlp and torch.nn.Linear draw them.
std::vector<torch::Tensor> make_params() {
  torch::manual_seed(5);
  const int64_t sizes[] = {1, 40, 40, 1};
  std::vector<torch::Tensor> p;
  for (int i = 0; i < 3; ++i) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(sizes[i]));
    p.push_back(((torch::rand({sizes[i], sizes[i + 1]}) * 2 - 1) * bound).requires_grad_());
    p.push_back(((torch::rand({sizes[i + 1]}) * 2 - 1) * bound).requires_grad_());
  }
  return p;
}

// x [T, K, 1]; p holds per-task weights [T, in, out] and biases [T, out].
torch::Tensor forward(const std::vector<torch::Tensor>& p, const torch::Tensor& x) {
  auto h = torch::relu(torch::baddbmm(p[1].unsqueeze(1), x, p[0]));
  h = torch::relu(torch::baddbmm(p[3].unsqueeze(1), h, p[2]));
  return torch::baddbmm(p[5].unsqueeze(1), h, p[4]);
}

void meta_steps(benchmark::State& state, bool second_order) {
  torch::set_num_threads(static_cast<int>(state.range(0)));
  auto params = make_params();
  torch::optim::Adam adam(params, torch::optim::AdamOptions(1e-3));
  // The same batch each time, as bench_maml: amplitude in [0.1, 5], phase in [0, pi], x in [-5, 5].
  const auto amplitude = torch::rand({kTasks, 1, 1}) * 4.9 + 0.1;
  const auto phase = torch::rand({kTasks, 1, 1}) * 3.14159265;
  const auto xs = torch::rand({kTasks, kPoints, 1}) * 10 - 5;
  const auto xq = torch::rand({kTasks, kPoints, 1}) * 10 - 5;
  const auto ys = amplitude * torch::sin(xs - phase);
  const auto yq = amplitude * torch::sin(xq - phase);

  auto meta_step = [&] {
    adam.zero_grad();
    std::vector<torch::Tensor> per_task;  // theta expanded to [T, ...]: one gradient per task
    for (const auto& w : params) {
      std::vector<int64_t> shape{kTasks};
      for (auto d : w.sizes()) shape.push_back(d);
      per_task.push_back(w.unsqueeze(0).expand(shape));
    }
    // Sum over tasks of each task's mean squared error: the gradient w.r.t. task t's copy
    // is task t's own gradient.
    const auto inner = (forward(per_task, xs) - ys).pow(2).mean({1, 2}).sum();
    const auto grads = torch::autograd::grad({inner}, per_task, {},
                                             /*retain_graph=*/second_order,
                                             /*create_graph=*/second_order);
    std::vector<torch::Tensor> fast;
    for (size_t i = 0; i < per_task.size(); ++i) fast.push_back(per_task[i] - kInnerLr * grads[i]);
    const auto outer = (forward(fast, xq) - yq).pow(2).mean();
    outer.backward();
    adam.step();
    return outer.item<float>();
  };
  meta_step();  // warm-up: first-call allocations
  for (auto _ : state) benchmark::DoNotOptimize(meta_step());
  state.counters["meta-steps/s"] =
      benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tasks/s"] =
      benchmark::Counter(kTasks, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Maml_Sinusoid_Libtorch(benchmark::State& state) { meta_steps(state, true); }
void BM_Fomaml_Sinusoid_Libtorch(benchmark::State& state) { meta_steps(state, false); }
}  // namespace

BENCHMARK(BM_Maml_Sinusoid_Libtorch)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(BM_Fomaml_Sinusoid_Libtorch)->Arg(1)->Arg(2)->UseRealTime();
