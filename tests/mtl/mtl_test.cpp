// Multi-task learning: the aggregators against their papers' equations on cases small
// enough to do by hand (and a brute-force search), the weightings' updates against their
// formulas, the models' gradients to first and second order, the learner's gradient
// against central differences in double, and training through the shared trainer.
#include <Eigen/Dense>
#include <cmath>
#include <filesystem>
#include <metalearn/metalearn.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "support/catch.hpp"
#include "support/errors.hpp"
#include "support/gradcheck.hpp"
#include "support/meta_gradient.hpp"
#include "support/seed.hpp"

namespace ml = metalearn;
namespace mtl = metalearn::mtl;
namespace nn = metalearn::nn;
using Catch::Matchers::WithinAbs;
using ml::Shape;
using ml::Tensor;
using Vars = std::vector<ml::Var<double>>;

namespace {
// Gradients as the rows of a matrix; G = rows rows^T.
Eigen::MatrixXd gram(const Eigen::MatrixXd& rows) { return rows * rows.transpose(); }
Eigen::VectorXd combine(const std::vector<double>& a, const Eigen::MatrixXd& rows) {
  Eigen::VectorXd d = Eigen::VectorXd::Zero(rows.cols());
  for (Eigen::Index t = 0; t < rows.rows(); ++t)
    d += a[static_cast<std::size_t>(t)] * rows.row(t).transpose();
  return d;
}

// A two-task model in double: a tanh trunk, a 3-class head and a 2-output regression head.
mtl::HardSharing<double> two_task_model(ml::Rng& rng) {
  return mtl::HardSharing<double>(
      nn::Sequential<double>{nn::Linear<double>(3, 5, rng), nn::Tanh<double>{}},
      {nn::Sequential<double>{nn::Linear<double>(5, 3, rng)},
       nn::Sequential<double>{nn::Linear<double>(5, 2, rng)}});
}
mtl::MultiTaskBatch<double> two_task_batch(ml::Rng& rng, std::int64_t n = 6) {
  mtl::MultiTaskBatch<double> b;
  b.inputs = ml::test::uniform(rng, {n, 3});
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < n; ++i) labels.push_back(i % 3);
  b.tasks.push_back(mtl::TaskTargets<double>::classification(labels, 3));
  b.tasks.push_back(mtl::TaskTargets<double>::regression(ml::test::uniform(rng, {n, 2})));
  return b;
}
// The task losses at the model's current parameters.
template <class Model>
std::vector<double> task_losses(Model& net, const mtl::MultiTaskBatch<double>& b) {
  ml::Tape<double> tape;
  const auto out =
      net.forward_tasks(tape.leaves(net.parameters().views()), tape.constant(b.inputs));
  return {ml::cross_entropy(out[0], b.tasks[0].labels).item(),
          ml::mse(out[1], tape.constant(b.tasks[1].values)).item()};
}
}  // namespace

TEST_CASE("PcGrad: two conflicting gradients projected by hand", "[mtl]") {
  ml::Rng rng(1);
  Eigen::MatrixXd g(2, 2);
  g << 1, 0, -1, 1;  // g1 . g2 = -1: they conflict
  // g1' = g1 - (g1.g2 / |g2|^2) g2 = (0.5, 0.5); g2' = g2 - (g2.g1 / |g1|^2) g1 = (0, 1).
  const auto a = mtl::PcGrad{}.weights(gram(g), rng);
  const Eigen::VectorXd d = combine(a, g);
  CHECK_THAT(d(0), WithinAbs(0.5, 1e-12));
  CHECK_THAT(d(1), WithinAbs(1.5, 1e-12));
  CHECK_THAT(a[0], WithinAbs(2.0, 1e-12));
  CHECK_THAT(a[1], WithinAbs(1.5, 1e-12));
  // No conflict: the plain sum.
  g << 1, 0, 1, 1;
  const auto same = mtl::PcGrad{}.weights(gram(g), rng);
  CHECK(same == std::vector<double>{1.0, 1.0});
  // Three tasks: every projected gradient no longer conflicts with the last one it was
  // projected against, and the result depends on the drawn order only through the rng.
  Eigen::MatrixXd three(3, 4);
  three << 1, 0.5, -1, 0, -1, 1, 0, 0.3, 0.2, -1, 1, 1;
  ml::Rng r1(7), r2(7);
  CHECK(mtl::PcGrad{}.weights(gram(three), r1) == mtl::PcGrad{}.weights(gram(three), r2));
}

TEST_CASE("Mgda: the min-norm point, closed form for two, brute force for three", "[mtl]") {
  ml::Rng rng(2);
  Eigen::MatrixXd g(2, 2);
  g << 1, 0, 0, 2;
  // Sener & Koltun's Algorithm 1: a1 = [(g2 - g1).g2 / |g1 - g2|^2] clipped = 4/5.
  auto a = mtl::Mgda{}.weights(gram(g), rng);
  CHECK_THAT(a[0], WithinAbs(0.8, 1e-9));
  CHECK_THAT(a[1], WithinAbs(0.2, 1e-9));
  // One gradient inside the other's half-line: the shorter one alone.
  g << 1, 0, 3, 0;
  a = mtl::Mgda{}.weights(gram(g), rng);
  CHECK_THAT(a[0], WithinAbs(1.0, 1e-9));

  Eigen::MatrixXd three(3, 4);
  three << 1, 0.5, -1, 0, -1, 1, 0, 0.3, 0.2, -1, 1, 1;
  const Eigen::MatrixXd G = gram(three);
  const auto w = mtl::Mgda{}.weights(G, rng);
  const Eigen::Map<const Eigen::VectorXd> wv(w.data(), 3);
  CHECK_THAT(wv.sum(), WithinAbs(1.0, 1e-9));
  CHECK((wv.array() >= 0).all());
  double best = 1e300;
  Eigen::Vector3d arg = Eigen::Vector3d::Zero();
  const int n = 1000;
  for (int i = 0; i <= n; ++i)
    for (int j = 0; i + j <= n; ++j) {
      const Eigen::Vector3d p(double(i) / n, double(j) / n, double(n - i - j) / n);
      const double v = p.dot(G * p);
      if (v < best) {
        best = v;
        arg = p;
      }
    }
  INFO("mgda " << wv.transpose() << " brute force " << arg.transpose());
  CHECK(wv.dot(G * wv) <= best + 1e-5);
  CHECK((wv - arg).cwiseAbs().maxCoeff() < 5e-3);
}

TEST_CASE("CaGrad: the symmetric case by hand, and the primal optimum", "[mtl]") {
  ml::Rng rng(3);
  Eigen::MatrixXd g(2, 2);
  g << 1, 0, 0, 1;
  // w = (1/2, 1/2) by symmetry; d = (1 + c) g0, divided by 1 + c^2: a_t = (1 + c) / (2 (1 + c^2)).
  mtl::CaGradOptions o;
  o.c = 0.5;
  const auto a = mtl::CaGrad(o).weights(gram(g), rng);
  CHECK_THAT(a[0], WithinAbs(0.6, 1e-6));
  CHECK_THAT(a[1], WithinAbs(0.6, 1e-6));
  // Liu et al. Eq. 3: d maximises min_t g_t . d over the ball |d - g0| <= c |g0|. The
  // unrescaled update beats every point of the ball's boundary we try.
  o.rescale = false;
  Eigen::MatrixXd three(3, 4);
  three << 1, 0.5, -1, 0, -1, 1, 0, 0.3, 0.2, -1, 1, 1;
  const auto w = mtl::CaGrad(o).weights(gram(three), rng);
  const Eigen::VectorXd d = combine(w, three);
  const Eigen::VectorXd g0 = three.colwise().mean().transpose();
  const double radius = o.c * g0.norm();
  CHECK((d - g0).norm() <= radius * (1 + 1e-6));
  const auto worst = [&](const Eigen::VectorXd& x) { return (three * x).minCoeff(); };
  ml::Rng probe(4);
  double best = -1e300;
  for (int i = 0; i < 20000; ++i) {
    Eigen::VectorXd u(4);
    for (int j = 0; j < 4; ++j) u(j) = ml::normal(probe);
    best = std::max(best, worst(g0 + radius * u.normalized()));
  }
  INFO("cagrad " << worst(d) << ", best sampled " << best);
  CHECK(worst(d) >= best - 1e-4);
}

TEST_CASE("ImtlG: equal projections on every task direction", "[mtl]") {
  ml::Rng rng(5);
  Eigen::MatrixXd g(2, 2);
  g << 1, 0, 0, 2;
  // d = a1 g1 + a2 g2, a1 + a2 = 1, d.u1 = a1 = d.u2 = 2 a2: a = (2/3, 1/3).
  const auto a = mtl::ImtlG{}.weights(gram(g), rng);
  CHECK_THAT(a[0], WithinAbs(2.0 / 3, 1e-12));
  CHECK_THAT(a[1], WithinAbs(1.0 / 3, 1e-12));
  Eigen::MatrixXd three(3, 4);
  three << 1, 0.5, -1, 0, -1, 1, 0, 0.3, 0.2, -1, 1, 1;
  const auto w = mtl::ImtlG{}.weights(gram(three), rng);
  CHECK_THAT(w[0] + w[1] + w[2], WithinAbs(1.0, 1e-12));
  const Eigen::VectorXd d = combine(w, three);
  const double p0 = d.dot(three.row(0).normalized());
  for (int t = 1; t < 3; ++t) CHECK_THAT(d.dot(three.row(t).normalized()), WithinAbs(p0, 1e-10));
  // A zero gradient has no direction: that task gets 0, the other alone gets 1.
  Eigen::MatrixXd zero(2, 2);
  zero << 1, 0, 0, 0;
  CHECK(mtl::ImtlG{}.weights(gram(zero), rng) == std::vector<double>{1.0, 0.0});
  // Coinciding directions: a singular system, equal weights.
  Eigen::MatrixXd same(2, 2);
  same << 1, 1, 2, 2;
  CHECK(mtl::ImtlG{}.weights(gram(same), rng) == std::vector<double>{0.5, 0.5});
}

TEST_CASE("NashMtl: the bargaining solution satisfies G a = 1/a", "[mtl]") {
  ml::Rng rng(6);
  Eigen::MatrixXd three(3, 4);
  three << 1, 0.5, -1, 0, -1, 1, 0, 0.3, 0.2, -1, 1, 1;
  const Eigen::MatrixXd G = gram(three);
  const auto a = mtl::NashMtl{}.weights(G, rng);
  const Eigen::Map<const Eigen::VectorXd> av(a.data(), 3);
  CHECK((av.array() > 0).all());
  const Eigen::VectorXd residual = G * av - av.cwiseInverse();  // the paper's Eq. 3, raw G
  CHECK(residual.norm() < 1e-6 * av.cwiseInverse().norm());
  CHECK_THAT(combine(a, three).squaredNorm(), WithinRel(3.0, 1e-6));  // |d|^2 = K
  // One task: a = 1 / |g|, the unit gradient.
  Eigen::MatrixXd one(1, 2);
  one << 3, 4;
  CHECK_THAT(mtl::NashMtl{}.weights(gram(one), rng)[0], WithinRel(0.2, 1e-9));
  // Opposite gradients: no positive solution (a^T G a / 2 - sum log a is unbounded below),
  // NaN coefficients, which the learner reports as a non-finite step.
  Eigen::MatrixXd opposite(2, 2);
  opposite << 1, 0, -1, 0;
  CHECK(std::isnan(mtl::NashMtl{}.weights(gram(opposite), rng)[0]));
}

TEST_CASE("NashMtl: nearly opposite gradients (cosine -1 + 1.3e-6) still solve G a = 1/a",
          "[mtl]") {
  // Met on the toy problem near its Pareto set: a ~ 4,000, and Armijo's backtracking on f
  // stalled at |G a - 1/a| ~ 4e-6 |1/a|, below f's rounding (the learner saw a NaN step).
  ml::Rng rng(6);
  Eigen::MatrixXd rows(2, 2);
  rows << -0.2058935976281332, -0.0002375257435044996, 0.73973053645112496, 0.0020236494373606379;
  const Eigen::MatrixXd G = gram(rows);
  const auto a = mtl::NashMtl{}.weights(G, rng);
  const Eigen::Map<const Eigen::VectorXd> av(a.data(), 2);
  REQUIRE(av.allFinite());
  CHECK((av.array() > 0).all());
  // For two tasks the solution is closed: p a1^2 = q a2^2 and a1^2 (p + r sqrt(p / q)) = 1.
  const double p = G(0, 0), q = G(1, 1), r = G(0, 1);
  const double a1 = 1 / std::sqrt(p + r * std::sqrt(p / q));
  CHECK_THAT(a[0], WithinRel(a1, 1e-6));
  CHECK_THAT(a[1], WithinRel(a1 * std::sqrt(p / q), 1e-6));
  CHECK_THAT(combine(a, rows).squaredNorm(), WithinRel(2.0, 1e-6));
}

TEST_CASE(
    "TwoObjectiveToy: the losses by formula, gradients to second order; Nash-MTL reaches the "
    "Pareto set from all five starts (Navon et al. 2022, Fig. 1), the plain sum not from (9, 9)",
    "[mtl]") {
  const mtl::TwoObjectiveToy toy;
  // Nash-MTL's experiments/toy/problem.py written out in plain doubles.
  const auto by_formula = [](double x1, double x2) {
    const double lower = 5e-6;
    const double f1 = std::log(std::max(std::abs(0.5 * (-x1 - 7) - std::tanh(-x2)), lower)) + 6;
    const double f2 = std::log(std::max(std::abs(0.5 * (-x1 + 3) + std::tanh(-x2) + 2), lower)) + 6;
    const double c1 = std::max(std::tanh(x2 * 0.5), 0.0), c2 = std::max(std::tanh(-x2 * 0.5), 0.0);
    const double s1 = ((-x1 + 7) * (-x1 + 7) + 0.1 * (-x2 - 8) * (-x2 - 8)) / 10 - 20;
    const double s2 = ((-x1 - 7) * (-x1 - 7) + 0.1 * (-x2 - 8) * (-x2 - 8)) / 10 - 20;
    return mtl::ToyPoint{0.1 * (f1 * c1 + s1 * c2), f2 * c1 + s2 * c2};
  };
  for (const mtl::ToyPoint& x : {mtl::ToyPoint{1, 2}, mtl::ToyPoint{2, -3},
                                 mtl::ToyPoint{-8.5, 7.5}, mtl::ToyPoint{-4, -8.4}}) {
    INFO("x = (" << x[0] << ", " << x[1] << ")");
    const auto l = toy.values(x), want = by_formula(x[0], x[1]);
    CHECK_THAT(l[0], WithinRel(want[0], 1e-12));
    CHECK_THAT(l[1], WithinRel(want[1], 1e-12));
    const std::vector<Tensor<double>> at{Tensor<double>(Shape{2}, std::vector<double>{x[0], x[1]})};
    const auto both = [&](const Vars& v) {
      const auto ls = toy.losses(v[0]);
      return ls[0] + ml::scale(ls[1], 0.3);
    };
    ml::test::check_gradients(both, at);
    ml::test::check_second_order(both, at);
  }

  for (const auto& start : toy.starts()) {
    INFO("from (" << start[0] << ", " << start[1] << ")");
    const auto path = mtl::toy_descent(toy, mtl::NashMtl{}, start);
    CHECK(path.front() == start);
    INFO("ends at (" << path.back()[0] << ", " << path.back()[1] << ")");
    CHECK(mtl::TwoObjectiveToy::on_pareto_set(path.back()));
  }
  // The plain sum is caught in the log-valleys above x2 = 0 (the papers' failure case).
  const auto summed = mtl::toy_descent(toy, mtl::SumGradients{}, {9.0, 9.0});
  CHECK(summed.back()[1] > 0);
  CHECK_FALSE(mtl::TwoObjectiveToy::on_pareto_set(summed.back()));

  mtl::ToyDescentOptions bad;
  bad.record_every = 0;
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        mtl::toy_descent(toy, mtl::Mgda{}, {0.0, 0.0}, bad);
      },
      {"toy_descent", "record_every >= 1"});
  ml::Tape<double> tape;
  ml::test::check_throws<ml::InvalidArgument>(
      [&] { toy.losses(tape.leaf(Tensor<double>(Shape{3}, 0.0))); },
      {"TwoObjectiveToy::losses", "shape [2]"});
}

TEST_CASE("Reports: delta m and mean rank by hand", "[mtl]") {
  // Accuracies 0.9 and 0.8 against baselines 1.0 and 0.8: mean relative drop 5%.
  CHECK_THAT(mtl::delta_m({0.9, 0.8}, {1.0, 0.8}, {true, true}), WithinAbs(5.0, 1e-12));
  // An MSE (lower is better) of 0.5 against 1.0 is a 50% gain: -50.
  CHECK_THAT(mtl::delta_m({0.5}, {1.0}, {false}), WithinAbs(-50.0, 1e-12));
  ml::test::check_throws<ml::InvalidArgument>([] { (void)mtl::delta_m({1.0}, {0.0}, {true}); },
                                              {"delta_m", "baseline of task 0"});
  // Three methods, two tasks (accuracy); ties share their mean rank.
  const auto r = mtl::mean_rank({{0.9, 0.7}, {0.8, 0.7}, {0.7, 0.9}}, {true, true});
  CHECK_THAT(r[0], WithinAbs((1 + 2.5) / 2, 1e-12));
  CHECK_THAT(r[1], WithinAbs((2 + 2.5) / 2, 1e-12));
  CHECK_THAT(r[2], WithinAbs((3 + 1) / 2.0, 1e-12));
}

TEST_CASE("Weightings: uncertainty, DWA, GradNorm and RLW against their formulas", "[mtl]") {
  auto rng = ml::test::make_rng(60);
  auto net = two_task_model(rng);
  const auto batch = two_task_batch(rng);
  const auto L = task_losses(net, batch);
  SECTION("uncertainty weighting: l_t = exp(-s_t) L_t / 2 + s_t / 2") {
    mtl::MtlLearner<mtl::UncertaintyWeighting, mtl::SumGradients, double> learner;
    auto params = learner.meta_parameters(net);
    REQUIRE(params.name(params.size() - 1) == "uw.log_var");
    Tensor<double>& s = params[params.size() - 1];
    s.data()[0] = 0.3;
    s.data()[1] = -0.2;
    std::vector<Tensor<double>> g;
    const auto stats = learner.meta_gradient(net, batch, g);
    for (int t = 0; t < 2; ++t)
      CHECK_THAT(g.back().data()[t], WithinAbs(0.5 - 0.5 * std::exp(-s.data()[t]) * L[t], 1e-12));
    CHECK_THAT(
        stats.query_loss,
        WithinAbs(0.5 * (std::exp(-0.3) * L[0] + 0.3) + 0.5 * (std::exp(0.2) * L[1] - 0.2), 1e-12));
    // The same through an aggregator's per-task path (UW with PCGrad).
    mtl::MtlLearner<mtl::UncertaintyWeighting, mtl::PcGrad, double> with_pcgrad;
    auto p2 = with_pcgrad.meta_parameters(net);
    p2[p2.size() - 1] = s;
    std::vector<Tensor<double>> g2;
    with_pcgrad.meta_gradient(net, batch, g2);
    for (int t = 0; t < 2; ++t)
      CHECK_THAT(g2.back().data()[t], WithinAbs(g.back().data()[t], 1e-12));
  }
  SECTION("DWA: K softmax(r / T) of the last two windows' mean losses") {
    mtl::DwaOptions o;
    o.window = 2;
    const mtl::Dwa dwa(o);
    std::vector<Tensor<double>> state{Tensor<double>(dwa.state(2)[0].shape, 0.0)};
    const double nan = std::nan("");
    // Step 3 was skipped (non-finite): the second window's mean is of step 2 alone.
    const std::vector<std::vector<double>> losses{{4, 1}, {4, 1}, {2, 0.75}, {nan, nan}};
    for (std::int64_t step = 0; step < 4; ++step) {
      CHECK(dwa.weights(state[0], step) == std::vector<double>{1.0, 1.0});  // first two windows
      dwa.after_step(losses[static_cast<std::size_t>(step)], state, step);
    }
    // r = (2/4, 0.75/1): w_t = 2 exp(r_t / 2) / (exp(0.25) + exp(0.375)).
    const auto w = dwa.weights(state[0], 4);
    const double z = std::exp(0.25) + std::exp(0.375);
    CHECK_THAT(w[0], WithinAbs(2 * std::exp(0.25) / z, 1e-12));
    CHECK_THAT(w[1], WithinAbs(2 * std::exp(0.375) / z, 1e-12));
  }
  SECTION("GradNorm: the gradient of L_grad through w = K softmax(z)") {
    // Norms |w_t g_t| = (2, 1), equal loss ratios, w = (1, 1): target 1.5 for both, so
    // dL/dw = (+2, -1); through the softmax, dz = w (dw - mean(w dw)) = (1.5, -1.5).
    const mtl::GradNorm gn;
    Eigen::MatrixXd G(2, 2);
    G << 4, 0.5, 0.5, 1;
    std::vector<Tensor<double>> learned{Tensor<double>(Shape{2}, 0.0)};
    std::vector<Tensor<double>> state{Tensor<double>(Shape{2}, {1.0, 1.0})};
    std::vector<Tensor<double>> grads(1);
    gn.learned_gradient(G, {1.0, 1.0}, learned, state, grads);
    CHECK_THAT(grads[0].data()[0], WithinAbs(1.5, 1e-12));
    CHECK_THAT(grads[0].data()[1], WithinAbs(-1.5, 1e-12));
    // Through the learner: the logits' gradient is L_grad's, the model's sum_t w_t grad L_t.
    mtl::MtlLearner<mtl::GradNorm, mtl::SumGradients, double> learner;
    auto params = learner.meta_parameters(net);
    params[params.size() - 1].data()[0] = 0.4;
    std::vector<Tensor<double>> g;
    learner.meta_gradient(net, batch, g);
    const auto w = mtl::GradNorm::weights(params[params.size() - 1]);
    CHECK_THAT(w[0] + w[1], WithinAbs(2.0, 1e-12));
    const auto numeric = ml::test::numeric_gradient(net.parameters(), [&] {
      const auto l = task_losses(net, batch);
      return w[0] * l[0] + w[1] * l[1];
    });
    std::vector<Tensor<double>> model_part(g.begin(), g.end() - 1);
    CHECK(ml::test::max_mismatch(model_part, numeric) < 1.0);
    CHECK(std::abs(g.back().data()[0]) > 0);
    CHECK_THAT(g.back().data()[0] + g.back().data()[1], WithinAbs(0.0, 1e-12));  // softmax
  }
  SECTION("RLW: softmax of standard normal draws, fixed by seed and step") {
    ml::Rng a(9), b(9);
    const auto w = mtl::RandomLossWeighting::draw(3, a);
    CHECK_THAT(w[0] + w[1] + w[2], WithinAbs(1.0, 1e-12));
    CHECK(w == mtl::RandomLossWeighting::draw(3, b));
  }
}

TEST_CASE("MtlLearner: gradients against central differences in double", "[mtl][grad]") {
  auto rng = ml::test::make_rng(61);
  auto net = two_task_model(rng);
  const auto batch = two_task_batch(rng);
  SECTION("equal weighting: the gradient of the sum of the task losses") {
    mtl::MtlLearner<mtl::EqualWeighting, mtl::SumGradients, double> learner;
    std::vector<Tensor<double>> g;
    const auto s = learner.meta_gradient(net, batch, g);
    CHECK(s.finite);
    const auto numeric = ml::test::numeric_gradient(learner.meta_parameters(net), [&] {
      const auto l = task_losses(net, batch);
      return l[0] + l[1];
    });
    CHECK(ml::test::max_mismatch(g, numeric) < 1.0);
  }
  SECTION("an aggregator: sum a_t g_t on the trunk, the summed gradient on the heads") {
    mtl::MtlLearner<mtl::EqualWeighting, mtl::ImtlG, double> learner;
    std::vector<Tensor<double>> g;
    learner.meta_gradient(net, batch, g);
    std::vector<std::vector<Tensor<double>>> per_task;
    for (int t = 0; t < 2; ++t)
      per_task.push_back(
          ml::test::numeric_gradient(net.parameters(), [&] { return task_losses(net, batch)[t]; }));
    const std::size_t shared = net.num_shared();
    REQUIRE(shared == 2);
    Eigen::MatrixXd rows(2, 0);
    for (std::size_t p = 0; p < shared; ++p) {
      const auto n = per_task[0][p].numel();
      rows.conservativeResize(2, rows.cols() + n);
      for (int t = 0; t < 2; ++t)
        for (std::int64_t i = 0; i < n; ++i)
          rows(t, rows.cols() - n + i) = per_task[t][p].data()[i];
    }
    ml::Rng unused(0);
    const auto a = mtl::ImtlG{}.weights(gram(rows), unused);
    std::vector<Tensor<double>> expected;
    for (std::size_t p = 0; p < per_task[0].size(); ++p) {
      Tensor<double> e(per_task[0][p].shape(), 0.0);
      for (int t = 0; t < 2; ++t)
        e.array() += per_task[t][p].array() * (p < shared ? a[static_cast<std::size_t>(t)] : 1.0);
      expected.push_back(e);
    }
    CHECK(ml::test::max_mismatch(g, expected) < 1.0);
  }
  SECTION("errors name the problem") {
    mtl::MtlLearner<mtl::UncertaintyWeighting, mtl::SumGradients, double> fresh;
    std::vector<Tensor<double>> g;
    ml::test::check_throws<ml::StateError>([&] { fresh.meta_gradient(net, batch, g); },
                                           {"meta_parameters(net)"});
    mtl::MtlLearner<mtl::EqualWeighting, mtl::SumGradients, double> learner;
    auto wrong = batch;
    wrong.tasks[0].labels[2] = 7;
    ml::test::check_throws<ml::InvalidArgument>([&] { learner.meta_gradient(net, wrong, g); },
                                                {"task 0", "label 7", "0..2"});
    auto short_batch = batch;
    short_batch.tasks[1].values = Tensor<double>(Shape{2, 2});
    ml::test::check_throws<ml::InvalidArgument>([&] { learner.meta_gradient(net, short_batch, g); },
                                                {"task 1", "2 targets for 6 input rows"});
    auto one = batch;
    one.tasks.pop_back();
    ml::test::check_throws<ml::InvalidArgument>([&] { learner.meta_gradient(net, one, g); },
                                                {"1 tasks, the model 2"});
  }
}

namespace {
// A multi-task model without the representation split: HardSharing's surface less
// shared_representation and task_outputs.
struct WithoutRepresentation {
  using scalar_type = double;
  mtl::HardSharing<double> inner;
  std::size_t num_tasks() const { return inner.num_tasks(); }
  std::size_t num_shared() const { return inner.num_shared(); }
  ml::ParameterList<double> parameters() { return inner.parameters(); }
  ml::ParameterList<double> buffers() { return inner.buffers(); }
  Vars forward_tasks(const Vars& p, const ml::Var<double>& x) { return inner.forward_tasks(p, x); }
  ml::Var<double> forward(const Vars& p, const ml::Var<double>& x) { return inner.forward(p, x); }
};

// The expected representation-Gramian gradient, from its definition with central
// differences: the task gradients dL_t/dz of the representation z, a = aggregator(G) with
// G their Gramian, then sum_t a_t dL_t/dtheta on the shared parameters (the chain rule
// makes that J^T sum_t a_t dL_t/dz) and sum_t dL_t/dtheta on the others.
template <class Model, class Aggregator>
std::vector<Tensor<double>> representation_gradient(Model& net,
                                                    const mtl::MultiTaskBatch<double>& b,
                                                    const Aggregator& aggregator) {
  const auto losses_from = [&](const std::vector<Tensor<double>>& z) {
    ml::Tape<double> tape;
    Vars rep;
    for (const auto& t : z) rep.push_back(tape.constant(t));
    const auto out =
        net.task_outputs(tape.leaves(net.parameters().views()), rep, tape.constant(b.inputs));
    return std::vector<double>{ml::cross_entropy(out[0], b.tasks[0].labels).item(),
                               ml::mse(out[1], tape.constant(b.tasks[1].values)).item()};
  };
  std::vector<Tensor<double>> z;
  {
    ml::Tape<double> tape;
    for (const auto& r :
         net.shared_representation(tape.leaves(net.parameters().views()), tape.constant(b.inputs)))
      z.push_back(r.to_tensor());
  }
  ml::ParameterList<double> zl;
  for (std::size_t j = 0; j < z.size(); ++j) zl.add("z" + std::to_string(j), z[j]);
  Eigen::MatrixXd rows(2, 0);
  for (int t = 0; t < 2; ++t) {
    const auto g = ml::test::numeric_gradient(zl, [&] { return losses_from(z)[t]; });
    Eigen::Index col = 0;
    for (const auto& gj : g) {
      if (t == 0) rows.conservativeResize(2, rows.cols() + gj.numel());
      for (std::int64_t i = 0; i < gj.numel(); ++i) rows(t, col++) = gj.data()[i];
    }
  }
  ml::Rng unused(0);
  const auto a = aggregator.weights(gram(rows), unused);
  const auto shared = ml::test::numeric_gradient(net.parameters(), [&] {
    return a[0] * task_losses(net, b)[0] + a[1] * task_losses(net, b)[1];
  });
  auto all = ml::test::numeric_gradient(net.parameters(), [&] {
    const auto l = task_losses(net, b);
    return l[0] + l[1];
  });
  for (std::size_t p = 0; p < net.num_shared(); ++p) all[p] = shared[p];
  return all;
}
}  // namespace

TEST_CASE("MtlLearner: the representation Gramian (MGDA-UB) and shared clipping", "[mtl][grad]") {
  auto rng = ml::test::make_rng(63);
  const auto batch = two_task_batch(rng);
  mtl::MtlLearnerOptions o;
  o.gramian_of = mtl::GramianOf::representation;
  SECTION("hard sharing: MGDA on dL_t/dz, then one pass through the trunk") {
    auto net = two_task_model(rng);
    mtl::MtlLearner<mtl::EqualWeighting, mtl::Mgda, double> learner(o);
    std::vector<Tensor<double>> g;
    CHECK(learner.meta_gradient(net, batch, g).finite);
    CHECK(ml::test::max_mismatch(g, representation_gradient(net, batch, mtl::Mgda{})) < 1.0);
    // Not the shared parameters' Gramian: the two give different updates here.
    mtl::MtlLearner<mtl::EqualWeighting, mtl::Mgda, double> on_parameters;
    std::vector<Tensor<double>> gp;
    on_parameters.meta_gradient(net, batch, gp);
    CHECK(ml::test::max_mismatch(gp, g) > 10.0);
  }
  SECTION("MMoE: the representation is the experts' outputs") {
    std::vector<nn::Sequential<double>> experts, towers;
    for (int e = 0; e < 2; ++e)
      experts.push_back(nn::Sequential<double>{nn::Linear<double>(3, 4, rng), nn::Tanh<double>{}});
    towers.push_back(nn::Sequential<double>{nn::Linear<double>(4, 3, rng)});
    towers.push_back(nn::Sequential<double>{nn::Linear<double>(4, 2, rng)});
    mtl::Mmoe<double> net(experts, towers, 3, rng);
    mtl::MtlLearner<mtl::EqualWeighting, mtl::ImtlG, double> learner(o);
    std::vector<Tensor<double>> g;
    CHECK(learner.meta_gradient(net, batch, g).finite);
    CHECK(ml::test::max_mismatch(g, representation_gradient(net, batch, mtl::ImtlG{})) < 1.0);
  }
  SECTION("a model without shared_representation is refused, by name") {
    ml::Rng r2(5);
    WithoutRepresentation net{two_task_model(r2)};
    mtl::MtlLearner<mtl::EqualWeighting, mtl::Mgda, double> learner(o);
    std::vector<Tensor<double>> g;
    ml::test::check_throws<ml::InvalidArgument>(
        [&] { learner.meta_gradient(net, batch, g); },
        {"gramian_of = representation", "shared_representation(params, x)"});
    // Without the option it trains as before.
    mtl::MtlLearner<mtl::EqualWeighting, mtl::Mgda, double> plain;
    CHECK(plain.meta_gradient(net, batch, g).finite);
  }
  SECTION("clip_shared_norm scales the shared update alone") {
    auto net = two_task_model(rng);
    mtl::MtlLearner<mtl::EqualWeighting, mtl::NashMtl, double> free;
    std::vector<Tensor<double>> g;
    const auto s = free.meta_gradient(net, batch, g);
    double shared_norm = 0;
    for (std::size_t p = 0; p < net.num_shared(); ++p) shared_norm += g[p].array().square().sum();
    shared_norm = std::sqrt(shared_norm);
    REQUIRE(shared_norm > 0.02);
    mtl::MtlLearnerOptions c;
    c.clip_shared_norm = 0.01;
    mtl::MtlLearner<mtl::EqualWeighting, mtl::NashMtl, double> clipped(c);
    std::vector<Tensor<double>> gc;
    const auto sc = clipped.meta_gradient(net, batch, gc);
    CHECK_THAT(sc.grad_norm, WithinAbs(s.grad_norm, 1e-12));  // reported before clipping
    double clipped_norm = 0;
    for (std::size_t p = 0; p < g.size(); ++p) {
      const double scale = p < net.num_shared() ? 0.01 / shared_norm : 1.0;
      for (std::int64_t i = 0; i < g[p].numel(); ++i)
        CHECK_THAT(gc[p].data()[i], WithinAbs(g[p].data()[i] * scale, 1e-12));
      if (p < net.num_shared()) clipped_norm += gc[p].array().square().sum();
    }
    CHECK_THAT(std::sqrt(clipped_norm), WithinAbs(0.01, 1e-12));
    c.clip_shared_norm = -1;
    ml::test::check_throws<ml::InvalidArgument>(
        [&] { mtl::MtlLearner<mtl::EqualWeighting, mtl::NashMtl, double> bad(c); },
        {"clip_shared_norm must be >= 0"});
  }
}

TEST_CASE("HardSharing and Mmoe: names, shapes, gradients to second order",
          "[mtl][grad][second-order]") {
  auto rng = ml::test::make_rng(62);
  auto hps = two_task_model(rng);
  const auto names = hps.parameters().names();
  CHECK(names.front() == "trunk.0.weight");
  CHECK(names.back() == "head1.0.bias");
  nn::require_model<mtl::HardSharing<double>, double>();  // also a plain model
  const auto x = ml::test::uniform(rng, {4, 3});
  {
    ml::Tape<double> tape;
    CHECK(hps.forward(tape.leaves(hps.parameters().views()), tape.constant(x)).shape() ==
          Shape{4, 5});
  }
  std::vector<nn::Sequential<double>> experts, towers;
  for (int e = 0; e < 3; ++e)
    experts.push_back(nn::Sequential<double>{nn::Linear<double>(3, 4, rng), nn::Tanh<double>{}});
  for (int t = 0; t < 2; ++t)
    towers.push_back(nn::Sequential<double>{nn::Linear<double>(4, 2, rng)});
  mtl::Mmoe<double> mmoe(experts, towers, 3, rng);
  CHECK(mmoe.num_shared() == 6);
  CHECK(mmoe.parameters().name(6) == "gate0.weight");
  const auto check = [&x](auto& m) {
    std::vector<Tensor<double>> inputs = m.parameters().values();
    inputs.push_back(x);
    auto f = [&m](const Vars& v) { return m.forward(Vars(v.begin(), v.end() - 1), v.back()); };
    ml::test::check_gradients(f, inputs);
    ml::test::check_second_order(f, inputs);
  };
  check(hps);
  check(mmoe);
  // The gate mixes the experts: with one expert the gate is 1 and MMoE is that expert + tower.
  std::vector<nn::Sequential<double>> one{experts[0]};
  mtl::Mmoe<double> single(one, {towers[0]}, 3, rng);
  ml::Tape<double> tape;
  auto p = tape.leaves(single.parameters().views());
  const auto y = single.forward_tasks(p, tape.constant(x))[0].to_tensor();
  nn::Sequential<double> plain{experts[0], towers[0]};
  const auto want =
      plain.forward(tape.leaves(plain.parameters().views()), tape.constant(x)).to_tensor();
  for (std::int64_t i = 0; i < y.numel(); ++i)
    CHECK_THAT(y.data()[i], WithinAbs(want.data()[i], 1e-12));
}

TEST_CASE("Multi-task data: datasets, samplers, fixed batches, synthetic regression",
          "[mtl][data]") {
  ml::Rng rng(63);
  mtl::SyntheticRegressionOptions o;
  o.examples = 50;
  const auto data = mtl::synthetic_regression<double>(o, rng);
  CHECK(data.size() == 50);
  CHECK(data.num_tasks() == 2);
  ml::Rng again(63);
  const auto same = mtl::synthetic_regression<double>(o, again);
  CHECK((same.all().tasks[1].values.array() == data.all().tasks[1].values.array()).all());
  // Task 1's targets are 10x task 0's in scale: squared losses about 100x apart.
  const double s0 = data.all().tasks[0].values.array().square().mean();
  const double s1 = data.all().tasks[1].values.array().square().mean();
  CHECK(s1 / s0 > 10);
  CHECK(s1 / s0 < 1000);
  const mtl::MultiTaskSampler<double> sampler(data, 8);
  ml::Rng a(1), b(1);
  const auto ba = sampler.sample(a);
  CHECK(ba.rows() == 8);
  CHECK((ba.inputs.array() == sampler.sample(b).inputs.array()).all());
  const auto batches = mtl::fixed_batches(data, 16);
  REQUIRE(batches.size() == 4);
  CHECK(batches.back().rows() == 2);
  CHECK(batches[1].tasks[0].values.at(0, 0) == data.all().tasks[0].values.at(16, 0));
  ml::test::check_throws<ml::InvalidArgument>([&] { mtl::MultiTaskSampler<double>(data, 51); },
                                              {"MultiTaskSampler", "1..50", "51"});
}

TEST_CASE("MtlLearner through the trainer: learns, and a resumed run is bit-identical",
          "[mtl][trainer]") {
  ml::Rng data_rng(64);
  mtl::SyntheticRegressionOptions so;
  so.examples = 200;
  const auto data = mtl::synthetic_regression<float>(so, data_rng);
  const mtl::MultiTaskSampler<float> sampler(data, 32);
  const auto validation = mtl::fixed_batches(data, 100);
  const auto make_net = [] {
    ml::Rng init(5);
    return mtl::HardSharing<float>(nn::mlp<float>({8, 32, 16}, init),
                                   {nn::mlp<float>({16, 1}, init), nn::mlp<float>({16, 1}, init)});
  };
  const std::string ckpt =
      (std::filesystem::temp_directory_path() / "metalearn_mtl_trainer.ckpt").string();
  const auto run = [&](std::int64_t steps, bool fresh) {
    if (fresh) {
      std::filesystem::remove(ckpt);
      std::filesystem::remove(ckpt + ".last");
    }
    auto net = make_net();
    mtl::DwaOptions d;
    d.window = 5;
    mtl::MtlLearner<mtl::Dwa, mtl::PcGrad> learner({}, mtl::Dwa(d));
    ml::optim::Adam<float> adam(learner.meta_parameters(net), {1e-2});
    const double before = ml::meta::validate(learner, net, validation).mean;
    ml::Rng rng(11);
    ml::meta::TrainerOptions o;
    o.steps = steps;
    o.validate_every = 10;
    o.checkpoint = ckpt;
    const auto r = ml::meta::train(learner, net, adam, sampler, validation, rng, o);
    return std::make_tuple(r, net.parameters().values(), before);
  };
  const auto [whole, whole_params, untrained] = run(40, true);
  INFO("validation MSE untrained " << untrained << ", best " << whole.best.mean);
  CHECK(whole.best.mean < 0.5 * untrained);
  (void)run(20, true);
  const auto [resumed, resumed_params, unused] = run(40, false);
  CHECK(resumed.first_step == 21);
  for (std::size_t p = 0; p < whole_params.size(); ++p)
    CHECK((whole_params[p].array() == resumed_params[p].array()).all());
}

TEST_CASE("MtlLearner: evaluation runs the model in eval mode", "[mtl]") {
  auto rng = ml::test::make_rng(65);
  nn::BatchNormOptions running;
  running.running_stats = true;
  mtl::HardSharing<double> net(
      nn::Sequential<double>{nn::Linear<double>(3, 5, rng), nn::BatchNorm<double>(5, running),
                             nn::Tanh<double>{}},
      {nn::Sequential<double>{nn::Linear<double>(5, 3, rng)},
       nn::Sequential<double>{nn::Linear<double>(5, 2, rng)}});
  const auto batch = two_task_batch(rng);
  mtl::MtlLearner<mtl::EqualWeighting, mtl::SumGradients, double> learner;
  REQUIRE(net.buffers().size() == 2);
  const Tensor<double> before = net.buffers()[0];
  (void)learner.evaluate(net, batch);
  (void)learner.task_metrics(net, batch);
  CHECK((net.buffers()[0].array() == before.array()).all());  // eval mode: kept, not updated
  std::vector<Tensor<double>> g;
  (void)learner.meta_gradient(net, batch, g);
  CHECK((net.buffers()[0].array() != before.array()).any());  // training updates them
}
