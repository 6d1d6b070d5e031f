// Meta-gradient checks for the learner tests: central differences of any objective over a
// learner's meta-parameters, and the mismatch measure the learner tolerances use.
#pragma once

#include <algorithm>
#include <cmath>
#include <metalearn/metalearn.hpp>
#include <vector>

#include "support/catch.hpp"

namespace metalearn::test {

/// A sinusoid regression episode with k support and k query points.
inline data::Episode<double> sine_episode(Rng& rng, std::int64_t k = 6) {
  data::SineOptions o;
  o.shots = k;
  o.queries = k;
  return data::SineTasks<double>(o).sample(rng);
}

/// Central differences of `objective()` over every element of `params` (step 1e-6 scaled
/// by max(1, |x|)); each element is restored after its two evaluations.
template <class F>
std::vector<Tensor<double>> numeric_gradient(ParameterList<double> params, F objective) {
  std::vector<Tensor<double>> out;
  for (std::size_t p = 0; p < params.size(); ++p) {
    Tensor<double> g(params[p].shape());
    for (std::int64_t i = 0; i < g.numel(); ++i) {
      double& x = params[p].data()[i];
      const double x0 = x, h = 1e-6 * std::max(1.0, std::abs(x0));
      x = x0 + h;
      const double up = objective();
      x = x0 - h;
      const double down = objective();
      x = x0;
      g.data()[i] = (up - down) / (2 * h);
    }
    out.push_back(g);
  }
  return out;
}

/// The worst |a - b| / (1e-6 + 1e-4 max(|a|, |b|)) over all elements: > 1 fails the
/// meta-gradient tolerance.
inline double max_mismatch(const std::vector<Tensor<double>>& a,
                           const std::vector<Tensor<double>>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (std::size_t p = 0; p < a.size(); ++p) {
    REQUIRE(a[p].shape() == b[p].shape());
    for (std::int64_t i = 0; i < a[p].numel(); ++i) {
      const double x = a[p].data()[i], y = b[p].data()[i];
      worst = std::max(worst, std::abs(x - y) / (1e-6 + 1e-4 * std::max(std::abs(x), std::abs(y))));
    }
  }
  return worst;
}

/// Central differences of theta -> L_query(adapt(theta)) over the learner's meta-parameters
/// (the model's, and its own: Meta-SGD's step sizes), by evaluate() with `steps` inner steps
/// (it adapts a copy of the parameters) at perturbed values.
template <class Learner, class Model>
std::vector<Tensor<double>> numeric_meta_gradient(Learner& learner, Model& net,
                                                  const data::Episode<double>& e, int steps) {
  return numeric_gradient(learner.meta_parameters(net),
                          [&] { return learner.evaluate(net, e, steps).loss; });
}

}  // namespace metalearn::test
