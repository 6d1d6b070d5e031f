// SPDX-License-Identifier: MIT
/// @file metalearn/mtl/synthetic.hpp
/// A synthetic multi-task regression with the two difficulties of real task sets: losses
/// of very different scales and tasks that partly conflict.
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/error.hpp>
#include <metalearn/mtl/batch.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <vector>

namespace metalearn::mtl {

/// Options of synthetic_regression().
struct SyntheticRegressionOptions {
  std::int64_t examples = 1000;
  std::int64_t inputs = 8;     ///< x in [-1, 1]^inputs
  std::int64_t features = 16;  ///< shared features h = tanh(x W)
  /// One entry per task: y_t = scale_t h v_t + noise. {1, 10}: squared losses 100x apart.
  std::vector<double> scales = {1.0, 10.0};
  /// Cosine between consecutive tasks' read-outs v_t: negative, the tasks partly conflict.
  double correlation = -0.5;
  double noise = 0.05;  ///< standard deviation of the noise, relative to the task's scale
};

/// Inputs [examples, inputs] and one regression target [examples, 1] per task: the tasks
/// share the features h (so a shared trunk helps), their read-outs v_t have cosine
/// `correlation` (v_{t+1} = c v_t + sqrt(1 - c^2) u with u a fresh direction orthogonal to
/// v_t), and their scales differ. Deterministic in `rng`.
template <class Scalar = float>
MultiTaskDataset<Scalar> synthetic_regression(const SyntheticRegressionOptions& o, Rng& rng) {
  if (o.examples < 1 || o.inputs < 1 || o.features < 2 || o.scales.empty() ||
      !(o.correlation >= -1 && o.correlation <= 1) || !(o.noise >= 0))
    throw InvalidArgument(
        "metalearn::mtl::synthetic_regression: need examples, inputs >= 1, features >= 2, a "
        "scale per task, correlation in [-1, 1] and noise >= 0");
  const std::int64_t n = o.examples, d = o.inputs, m = o.features;
  std::vector<double> W(static_cast<std::size_t>(d * m));
  for (double& w : W) w = normal(rng) / std::sqrt(static_cast<double>(d)) * 2.0;
  // Read-outs: unit vectors with the given cosine between consecutive tasks.
  std::vector<std::vector<double>> v;
  const auto unit = [&](std::vector<double> u) {
    double norm = 0;
    for (double x : u) norm += x * x;
    for (double& x : u) x /= std::sqrt(norm);
    return u;
  };
  const auto fresh = [&] {
    std::vector<double> u(static_cast<std::size_t>(m));
    for (double& x : u) x = normal(rng);
    return u;
  };
  v.push_back(unit(fresh()));
  for (std::size_t t = 1; t < o.scales.size(); ++t) {
    std::vector<double> u = fresh();
    double dot = 0;
    for (std::int64_t i = 0; i < m; ++i) dot += u[i] * v.back()[i];
    for (std::int64_t i = 0; i < m; ++i) u[i] -= dot * v.back()[i];
    u = unit(u);
    std::vector<double> next(static_cast<std::size_t>(m));
    const double c = o.correlation, s = std::sqrt(1 - c * c);
    for (std::int64_t i = 0; i < m; ++i) next[i] = c * v.back()[i] + s * u[i];
    v.push_back(next);
  }
  Tensor<Scalar> x(Shape{n, d});
  std::vector<Tensor<Scalar>> y(o.scales.size(), Tensor<Scalar>(Shape{n, 1}));
  std::vector<double> h(static_cast<std::size_t>(m));
  for (std::int64_t r = 0; r < n; ++r) {
    for (std::int64_t i = 0; i < d; ++i)
      x.data()[r * d + i] = static_cast<Scalar>(uniform(rng, -1, 1));
    for (std::int64_t j = 0; j < m; ++j) {
      double z = 0;
      for (std::int64_t i = 0; i < d; ++i) z += double(x.data()[r * d + i]) * W[i * m + j];
      h[j] = std::tanh(z);
    }
    for (std::size_t t = 0; t < o.scales.size(); ++t) {
      double out = 0;
      for (std::int64_t j = 0; j < m; ++j) out += h[j] * v[t][j];
      y[t].data()[r] = static_cast<Scalar>(o.scales[t] * (out + o.noise * normal(rng)));
    }
  }
  std::vector<TaskTargets<Scalar>> tasks;
  for (auto& t : y) tasks.push_back(TaskTargets<Scalar>::regression(std::move(t)));
  return MultiTaskDataset<Scalar>(std::move(x), std::move(tasks));
}

}  // namespace metalearn::mtl
