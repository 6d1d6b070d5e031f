// benchmarks/autodiff/bench_autodiff.cpp
//
// The autodiff core: per-node overhead on tiny tensors, matmul forward+backward next to
// the same products in plain Eigen, and the loss / gradient / Hessian-vector product of
// Finn et al.'s sinusoid MLP (1-40-40-1 on 10 points).
#include <benchmark/benchmark.h>

#include <cmath>
#include <metalearn/metalearn.hpp>
#include <vector>

namespace ml = metalearn;

namespace {

template <class S>
ml::Tensor<S> random_tensor(ml::Rng& rng, ml::Shape shape, double bound = 1.0) {
  ml::Tensor<S> t(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = static_cast<S>(ml::uniform(rng, -bound, bound));
  return t;
}

template <class S>
std::vector<ml::Tensor<S>> mlp_params(ml::Rng& rng) {
  const std::vector<std::int64_t> sizes{1, 40, 40, 1};
  std::vector<ml::Tensor<S>> p;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(sizes[l]));
    p.push_back(random_tensor<S>(rng, ml::Shape{sizes[l], sizes[l + 1]}, bound));
    p.push_back(random_tensor<S>(rng, ml::Shape{sizes[l + 1]}, bound));
  }
  return p;
}

template <class S>
ml::Var<S> mlp_loss(const std::vector<ml::Var<S>>& w, const ml::Var<S>& x, const ml::Var<S>& y) {
  auto h = ml::relu(ml::matmul(x, w[0]) + w[1]);
  h = ml::relu(ml::matmul(h, w[2]) + w[3]);
  return ml::mse(ml::matmul(h, w[4]) + w[5], y);
}

}  // namespace

// Per-node cost of the tape on 1-element tensors: a chain of 100 muls and adds recorded,
// then swept backward. items = recorded nodes (forward) + backward rules run.
static void BM_Tape_TinyOps_ForwardBackward(benchmark::State& state) {
  const ml::Tensor<float> one = ml::Tensor<float>::scalar(1.0001f);
  ml::Tape<float> tape;
  std::vector<ml::Var<float>> g;
  for (auto _ : state) {
    tape.reset();
    const auto x = tape.leaf(one);
    auto y = x;
    for (int i = 0; i < 50; ++i) y = y * x + x;
    ml::grad(y, {x}, g);
    benchmark::DoNotOptimize(g[0].value().data());
  }
  state.SetItemsProcessed(state.iterations() * 100);
  state.counters["ns/op"] = benchmark::Counter(
      100, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Tape_TinyOps_ForwardBackward);

// Forward recording only, same chain.
static void BM_Tape_TinyOps_Forward(benchmark::State& state) {
  const ml::Tensor<float> one = ml::Tensor<float>::scalar(1.0001f);
  ml::Tape<float> tape;
  for (auto _ : state) {
    tape.reset();
    const auto x = tape.leaf(one);
    auto y = x;
    for (int i = 0; i < 50; ++i) y = y * x + x;
    benchmark::DoNotOptimize(y.value().data());
  }
  state.SetItemsProcessed(state.iterations() * 100);
  state.counters["ns/op"] = benchmark::Counter(
      100, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Tape_TinyOps_Forward);

// C = A B with A [n, k], B [k, m], then dA = G B^T and dB = A^T G through grad().
static void BM_Matmul_ForwardBackward(benchmark::State& state) {
  const auto n = state.range(0), k = state.range(1), m = state.range(2);
  ml::Rng rng{1};
  const auto a = random_tensor<float>(rng, ml::Shape{n, k}),
             b = random_tensor<float>(rng, ml::Shape{k, m});
  const auto gout = random_tensor<float>(rng, ml::Shape{n, m});
  ml::Tape<float> tape;
  for (auto _ : state) {
    tape.reset();
    const auto A = tape.leaf(a), B = tape.leaf(b);
    const auto g = ml::vjp(ml::matmul(A, B), {A, B}, tape.constant(gout));
    benchmark::DoNotOptimize(g[1].value().data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(6.0 * n * k * m * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Matmul_ForwardBackward)->Args({10, 40, 40})->Args({256, 256, 256});

// Baseline: the same three products in plain Eigen into preallocated outputs.
static void BM_Matmul_ForwardBackward_EigenOnly(benchmark::State& state) {
  const auto n = state.range(0), k = state.range(1), m = state.range(2);
  using M = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const M a = M::Random(n, k), b = M::Random(k, m), g = M::Random(n, m);
  M c(n, m), da(n, k), db(k, m);
  for (auto _ : state) {
    c.noalias() = a * b;
    da.noalias() = g * b.transpose();
    db.noalias() = a.transpose() * g;
    benchmark::DoNotOptimize(c.data());
    benchmark::DoNotOptimize(da.data());
    benchmark::DoNotOptimize(db.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(6.0 * n * k * m * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Matmul_ForwardBackward_EigenOnly)->Args({10, 40, 40})->Args({256, 256, 256});

// MLP 1-40-40-1 on 10 points: loss value only.
static void BM_Mlp_Loss(benchmark::State& state) {
  ml::Rng rng{2};
  const auto params = mlp_params<float>(rng);
  const auto x = random_tensor<float>(rng, ml::Shape{10, 1}, 5.0),
             y = random_tensor<float>(rng, ml::Shape{10, 1});
  ml::Tape<float> tape;
  std::vector<ml::Var<float>> w;
  for (auto _ : state) {
    tape.reset();
    tape.leaves(params, w);
    benchmark::DoNotOptimize(mlp_loss(w, tape.constant(x), tape.constant(y)).item());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Mlp_Loss);

// Loss and gradient with respect to all six parameter tensors.
static void BM_Mlp_Gradient(benchmark::State& state) {
  ml::Rng rng{2};
  const auto params = mlp_params<float>(rng);
  const auto x = random_tensor<float>(rng, ml::Shape{10, 1}, 5.0),
             y = random_tensor<float>(rng, ml::Shape{10, 1});
  ml::Tape<float> tape;
  std::vector<ml::Var<float>> w, g;
  for (auto _ : state) {
    tape.reset();
    tape.leaves(params, w);
    ml::grad(mlp_loss(w, tape.constant(x), tape.constant(y)), w, g);
    benchmark::DoNotOptimize(g[0].value().data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Mlp_Gradient);

// Gradient of the gradient: Hessian-vector product along a fixed direction.
static void BM_Mlp_HessianVectorProduct(benchmark::State& state) {
  ml::Rng rng{2};
  const auto params = mlp_params<float>(rng);
  const auto dirs = mlp_params<float>(rng);
  const auto x = random_tensor<float>(rng, ml::Shape{10, 1}, 5.0),
             y = random_tensor<float>(rng, ml::Shape{10, 1});
  ml::Tape<float> tape;
  std::vector<ml::Var<float>> w, v;
  for (auto _ : state) {
    tape.reset();
    tape.leaves(params, w);
    v.clear();
    for (const auto& d : dirs) v.push_back(tape.constant(d));
    const auto hv = ml::hvp(mlp_loss(w, tape.constant(x), tape.constant(y)), w, v);
    benchmark::DoNotOptimize(hv[0].value().data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Mlp_HessianVectorProduct);
