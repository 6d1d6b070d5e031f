// SPDX-License-Identifier: MIT
/// @file metalearn/data/regression.hpp
/// Regression task families: sine waves (Finn et al. 2017, §5.1), lines and quadratics
/// (the other modes of multimodal MAML, Vuorio et al. 2019), and a mixture of families.
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/data/episode.hpp>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <tuple>
#include <utility>

namespace metalearn::data {

/// A closed interval [lo, hi] to draw from uniformly.
struct Range {
  double lo, hi;
};

namespace detail {
inline void check_range(const char* who, const char* what, Range r) {
  if (!(r.lo <= r.hi) || !std::isfinite(r.lo) || !std::isfinite(r.hi))
    throw InvalidArgument(std::string(who) + ": " + what + " range [" + std::to_string(r.lo) +
                          ", " + std::to_string(r.hi) + "] is not a finite interval");
}
inline void check_counts(const char* who, std::int64_t shots, std::int64_t queries) {
  if (shots < 1 || queries < 0)
    throw InvalidArgument(std::string(who) + ": need shots >= 1 and queries >= 0, got " +
                          std::to_string(shots) + " and " + std::to_string(queries));
}

/// Checks shared by every 1-D function family's options.
template <class Options>
void check_function_options(const char* who, const Options& o) {
  check_counts(who, o.shots, o.queries);
  check_range(who, "x", o.x);
  if (!(o.noise >= 0)) throw InvalidArgument(std::string(who) + ": noise must be >= 0");
}

/// K points of task f with x ~ U[range] and optional Gaussian noise on y, as [K, 1].
template <class Scalar, class F>
void draw_points(Rng& rng, std::int64_t k, Range x_range, double noise, F f, Tensor<Scalar>& x,
                 Tensor<Scalar>& y) {
  x = Tensor<Scalar>(Shape{k, 1});
  y = Tensor<Scalar>(Shape{k, 1});
  for (std::int64_t i = 0; i < k; ++i) {
    const double xi = uniform(rng, x_range.lo, x_range.hi);
    x.data()[i] = static_cast<Scalar>(xi);
    y.data()[i] = static_cast<Scalar>(f(xi) + (noise > 0 ? noise * normal(rng) : 0.0));
  }
}
/// An episode of task f: shots support and queries query points, x ~ U[o.x].
template <class Scalar, class Options, class F>
Episode<Scalar> function_episode(const Options& o, const F& f, Rng& rng) {
  Episode<Scalar> e;
  draw_points(rng, o.shots, o.x, o.noise, f, e.support_inputs, e.support_targets);
  draw_points(rng, o.queries, o.x, o.noise, f, e.query_inputs, e.query_targets);
  e.shots = o.shots;
  e.queries = o.queries;
  return e;
}
}  // namespace detail

/// Options of FunctionTasks.
struct FunctionTaskOptions {
  std::int64_t shots = 10;    ///< K support points
  std::int64_t queries = 10;  ///< query points
  Range x{-5.0, 5.0};         ///< inputs drawn uniformly from here
  double noise = 0.0;         ///< standard deviation of Gaussian noise on the targets
};

/// Your own regression task family: `draw(rng)` returns one task, any callable
/// `double(double)`; an episode is `shots` support and `queries` query points with
/// x ~ U[x] and y = task(x) (+ noise). Deterministic given the Rng, like every sampler.
///
/// ```
/// auto tasks = metalearn::data::function_tasks<float>([](metalearn::Rng& rng) {
///   const double slope = metalearn::uniform(rng, -2.0, 2.0);
///   return [slope](double x) { return slope * x * x; };
/// });
/// ```
template <class Scalar, class Draw>
class FunctionTasks {
 public:
  explicit FunctionTasks(Draw draw, FunctionTaskOptions o = {}) : draw_(std::move(draw)), o_(o) {
    detail::check_function_options("metalearn::data::FunctionTasks", o_);
  }
  Episode<Scalar> sample(Rng& rng) const {
    const auto task = draw_(rng);
    return detail::function_episode<Scalar>(o_, task, rng);
  }
  const FunctionTaskOptions& options() const noexcept { return o_; }

 private:
  Draw draw_;
  FunctionTaskOptions o_;
};

/// FunctionTasks<Scalar, Draw> without naming Draw.
template <class Scalar = float, class Draw>
FunctionTasks<Scalar, Draw> function_tasks(Draw draw, FunctionTaskOptions o = {}) {
  return FunctionTasks<Scalar, Draw>(std::move(draw), o);
}

/// Options of SineTasks; the defaults are Finn et al. 2017's.
struct SineOptions {
  std::int64_t shots = 10;    ///< K support points
  std::int64_t queries = 10;  ///< query points
  Range amplitude{0.1, 5.0};
  Range phase{0.0, 3.14159265358979323846};
  Range x{-5.0, 5.0};
  double noise = 0.0;  ///< standard deviation of Gaussian noise on the targets
};

/// y = A sin(x - phase): one task per (A, phase).
struct SineTask {
  double amplitude, phase;
  double operator()(double x) const { return amplitude * std::sin(x - phase); }
};

/// Sine-wave regression tasks (Finn et al. 2017, §5.1): amplitude U[0.1, 5], phase U[0, pi],
/// x U[-5, 5], K support and Q query points of the same wave.
template <class Scalar = float>
class SineTasks {
 public:
  SineTasks() : SineTasks(SineOptions{}) {}
  explicit SineTasks(SineOptions options) : o_(options) {
    detail::check_function_options("metalearn::data::SineTasks", o_);
    detail::check_range("metalearn::data::SineTasks", "amplitude", o_.amplitude);
    detail::check_range("metalearn::data::SineTasks", "phase", o_.phase);
  }

  /// A random task (amplitude, phase).
  SineTask sample_task(Rng& rng) const {
    const double a = uniform(rng, o_.amplitude.lo, o_.amplitude.hi);
    return {a, uniform(rng, o_.phase.lo, o_.phase.hi)};
  }
  /// An episode of a given task.
  Episode<Scalar> episode(const SineTask& task, Rng& rng) const {
    return detail::function_episode<Scalar>(o_, task, rng);
  }
  /// An episode of a random task.
  Episode<Scalar> sample(Rng& rng) const { return episode(sample_task(rng), rng); }
  const SineOptions& options() const { return o_; }

 private:
  SineOptions o_;
};

/// Options of LineTasks.
struct LineOptions {
  std::int64_t shots = 10;
  std::int64_t queries = 10;
  Range slope{-3.0, 3.0};
  Range intercept{-3.0, 3.0};
  Range x{-5.0, 5.0};
  double noise = 0.0;
};

/// y = slope x + intercept.
struct LineTask {
  double slope, intercept;
  double operator()(double x) const { return slope * x + intercept; }
};

/// Linear regression tasks, the second family of the sinusoid-and-line benchmarks.
template <class Scalar = float>
class LineTasks {
 public:
  LineTasks() : LineTasks(LineOptions{}) {}
  explicit LineTasks(LineOptions options) : o_(options) {
    detail::check_function_options("metalearn::data::LineTasks", o_);
    detail::check_range("metalearn::data::LineTasks", "slope", o_.slope);
    detail::check_range("metalearn::data::LineTasks", "intercept", o_.intercept);
  }
  LineTask sample_task(Rng& rng) const {
    const double s = uniform(rng, o_.slope.lo, o_.slope.hi);
    return {s, uniform(rng, o_.intercept.lo, o_.intercept.hi)};
  }
  Episode<Scalar> episode(const LineTask& task, Rng& rng) const {
    return detail::function_episode<Scalar>(o_, task, rng);
  }
  Episode<Scalar> sample(Rng& rng) const { return episode(sample_task(rng), rng); }
  const LineOptions& options() const { return o_; }

 private:
  LineOptions o_;
};

/// Options of QuadraticTasks (Vuorio et al. 2019's ranges).
struct QuadraticOptions {
  std::int64_t shots = 10;
  std::int64_t queries = 10;
  Range curvature{-0.15, 0.15};
  Range center{-3.0, 3.0};
  Range offset{-3.0, 3.0};
  Range x{-5.0, 5.0};
  double noise = 0.0;
};

/// y = curvature (x - center)^2 + offset.
struct QuadraticTask {
  double curvature, center, offset;
  double operator()(double x) const { return curvature * (x - center) * (x - center) + offset; }
};

/// Quadratic regression tasks, a mode of multimodal MAML's mixture.
template <class Scalar = float>
class QuadraticTasks {
 public:
  QuadraticTasks() : QuadraticTasks(QuadraticOptions{}) {}
  explicit QuadraticTasks(QuadraticOptions options) : o_(options) {
    const char* who = "metalearn::data::QuadraticTasks";
    detail::check_function_options(who, o_);
    detail::check_range(who, "curvature", o_.curvature);
    detail::check_range(who, "center", o_.center);
    detail::check_range(who, "offset", o_.offset);
  }
  QuadraticTask sample_task(Rng& rng) const {
    const double a = uniform(rng, o_.curvature.lo, o_.curvature.hi);
    const double c = uniform(rng, o_.center.lo, o_.center.hi);
    return {a, c, uniform(rng, o_.offset.lo, o_.offset.hi)};
  }
  Episode<Scalar> episode(const QuadraticTask& task, Rng& rng) const {
    return detail::function_episode<Scalar>(o_, task, rng);
  }
  Episode<Scalar> sample(Rng& rng) const { return episode(sample_task(rng), rng); }
  const QuadraticOptions& options() const { return o_; }

 private:
  QuadraticOptions o_;
};

/// Heterogeneous tasks: each episode from one of several families, chosen uniformly
/// (multimodal MAML's mixture, Vuorio et al. 2019), e.g.
/// `TaskMixture{SineTasks<float>(), LineTasks<float>(), QuadraticTasks<float>()}`.
/// `sample_family(k, rng)` draws from family k, for per-family metrics.
template <class... Families>
class TaskMixture {
  static_assert(sizeof...(Families) > 0, "TaskMixture: at least one family");

 public:
  explicit TaskMixture(Families... families) : families_(std::move(families)...) {}
  static constexpr std::size_t size() { return sizeof...(Families); }

  auto sample(Rng& rng) const {
    return sample_family(static_cast<std::size_t>(uniform_index(rng, size())), rng);
  }
  auto sample_family(std::size_t k, Rng& rng) const {
    if (k >= size())
      throw InvalidArgument("metalearn::data::TaskMixture::sample_family: family " +
                            std::to_string(k) + " of " + std::to_string(size()));
    return dispatch(k, rng, std::index_sequence_for<Families...>{});
  }

 private:
  template <std::size_t... I>
  auto dispatch(std::size_t k, Rng& rng, std::index_sequence<I...>) const {
    decltype(std::get<0>(families_).sample(rng)) out;
    ((k == I ? (out = std::get<I>(families_).sample(rng), 0) : 0), ...);
    return out;
  }
  std::tuple<Families...> families_;
};

}  // namespace metalearn::data
