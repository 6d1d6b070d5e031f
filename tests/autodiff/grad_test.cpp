// grad(), vjp, jvp, hvp, higher orders, allow_unused, and the gradcheck helpers themselves.
#include <cmath>
#include <metalearn/autodiff/autodiff.hpp>
#include <vector>

#include "support/catch.hpp"
#include "support/errors.hpp"
#include "support/seed.hpp"
#include "support/tolerances.hpp"

namespace ml = metalearn;
using ml::Shape;
using ml::Tensor;
using Vars = std::vector<ml::Var<double>>;

TEST_CASE("grad: functional, repeatable, nothing accumulates", "[autodiff][grad]") {
  ml::Tape<double> tape;
  const auto x = tape.leaf(Tensor<double>(Shape{2}, {1.0, -2.0}));
  const auto y = ml::sum(ml::square(x) * 3.0);
  const auto g1 = ml::grad(y, {x})[0].to_tensor();
  const auto g2 = ml::grad(y, {x})[0].to_tensor();
  CHECK(g1.at(0) == 6.0);
  CHECK(g1.at(1) == -12.0);
  CHECK(g2.at(1) == -12.0);  // a second call gives the same, not twice as much
}

TEST_CASE("grad: a path that reaches an input twice sums both contributions", "[autodiff][grad]") {
  ml::Tape<double> tape;
  const auto x = tape.leaf(Tensor<double>::scalar(1.5));
  const auto a = ml::exp(x), b = ml::tanh(x);
  const auto y = a * b + a;
  const double ex = std::exp(1.5), t = std::tanh(1.5);
  CHECK_THAT(ml::grad(y, {x})[0].item(), WithinRel(ex * t + ex * (1 - t * t) + ex, 1e-12));
}

TEST_CASE("grad: unused inputs are an error unless allowed", "[autodiff][grad][error]") {
  ml::Tape<double> tape;
  const auto x = tape.leaf(Tensor<double>::scalar(1.0));
  const auto unused = tape.leaf(Tensor<double>(Shape{3, 2}));
  const auto y = x * x;
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        (void)ml::grad(y, {x, unused});
      },
      {"metalearn::grad", "input 1", "[3, 2]", "allow_unused"});
  ml::GradOptions options;
  options.allow_unused = true;
  const auto g = ml::grad(y, {x, unused}, options);
  CHECK(g[0].item() == 2.0);
  CHECK(g[1].shape() == Shape{3, 2});
  CHECK(g[1].value().array().abs().maxCoeff() == 0.0);
}

TEST_CASE("grad: non-scalar outputs need a cotangent (vjp)", "[autodiff][grad][error]") {
  ml::Tape<double> tape;
  const auto x = tape.leaf(Tensor<double>(Shape{3}, {1, 2, 3}));
  const auto y = ml::square(x);
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)ml::grad(y, {x}); },
                                              {"metalearn::grad", "[3]", "cotangent"});
  const auto v = tape.constant(Tensor<double>(Shape{3}, {1, 0, -1}));
  const auto g = ml::vjp(y, {x}, v)[0].to_tensor();
  CHECK(g.at(0) == 2.0);
  CHECK(g.at(1) == 0.0);
  CHECK(g.at(2) == -6.0);
  ml::test::check_throws<ml::InvalidArgument>(
      [&] { (void)ml::vjp(y, {x}, tape.constant(Tensor<double>(Shape{2}))); },
      {"metalearn::vjp", "[3]", "[2]"});
}

TEST_CASE("jvp: forward derivative along a direction", "[autodiff][grad]") {
  ml::Tape<double> tape;
  const auto a = tape.leaf(Tensor<double>(Shape{2, 2}, {1, 2, 3, 4}));
  const auto b = tape.leaf(Tensor<double>(Shape{2, 2}, {0.5, -1, 2, 1}));
  const auto y = ml::matmul(a, b);
  const auto ua = tape.constant(Tensor<double>(Shape{2, 2}, {1, 0, 0, 1}));
  const auto ub = tape.constant(Tensor<double>(Shape{2, 2}, {0, 1, 1, 0}));
  // d(AB) = dA B + A dB.
  const Eigen::MatrixXd expected =
      ua.value().matrix() * b.value().matrix() + a.value().matrix() * ub.value().matrix();
  const Eigen::MatrixXd got = ml::jvp(y, {a, b}, {ua, ub}).value().matrix();
  CHECK((got - expected).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("hvp: equals the closed-form Hessian times v", "[autodiff][grad][second-order]") {
  // f(x) = sum(exp(x)) * sum(x^2): H = diag(e^x) s2 + 2 e^x x^T + 2 x e^x^T + 2 s1 I.
  ml::Tape<double> tape;
  const Tensor<double> x0(Shape{3}, {0.3, -0.7, 1.1});
  const Tensor<double> v0(Shape{3}, {1.0, 2.0, -0.5});
  const auto x = tape.leaf(x0);
  const auto f = ml::sum(ml::exp(x)) * ml::sum(ml::square(x));
  const auto hv = ml::hvp(f, {x}, {tape.constant(v0)})[0].to_tensor();
  const Eigen::VectorXd xv = x0.matrix().transpose(), vv = v0.matrix().transpose();
  const Eigen::VectorXd e = xv.array().exp();
  const double s1 = e.sum(), s2 = xv.squaredNorm();
  const Eigen::MatrixXd H = Eigen::MatrixXd(e.asDiagonal()) * s2 + 2 * e * xv.transpose() +
                            2 * xv * e.transpose() + 2 * s1 * Eigen::MatrixXd::Identity(3, 3);
  const Eigen::VectorXd expected = H * vv;
  for (int i = 0; i < 3; ++i) CHECK_THAT(hv.at(i), WithinRel(expected(i), 1e-12));
}

TEST_CASE("grad: third and fourth derivatives match closed forms",
          "[autodiff][grad][third-order]") {
  ml::GradOptions keep;
  keep.create_graph = true;
  const auto derivatives = [&](auto f, double at, int order) {
    ml::Tape<double> tape;
    const auto x = tape.leaf(Tensor<double>::scalar(at));
    std::vector<double> out;
    auto y = f(x);
    for (int k = 0; k < order; ++k) {
      y = ml::grad(y, {x}, keep)[0];
      out.push_back(y.item());
    }
    return out;
  };
  const double x = 0.7;
  SECTION("tanh") {
    const double t = std::tanh(x), s = 1 - t * t;
    const auto d = derivatives([](const auto& v) { return ml::tanh(v); }, x, 3);
    CHECK_THAT(d[0], WithinRel(s, 1e-12));
    CHECK_THAT(d[1], WithinRel(-2 * t * s, 1e-12));
    CHECK_THAT(d[2], WithinRel(s * (6 * t * t - 2), 1e-12));
  }
  SECTION("sigmoid of a product chain") {
    // g(x) = sigmoid(2x): g''' = 8 s (1-s) (1 - 6 s + 6 s^2).
    const double s = 1 / (1 + std::exp(-2 * x));
    const auto d = derivatives([](const auto& v) { return ml::sigmoid(v * 2.0); }, x, 3);
    CHECK_THAT(d[2], WithinRel(8 * s * (1 - s) * (1 - 6 * s + 6 * s * s), 1e-12));
  }
  SECTION("log(1 + x^2) through div, square and log") {
    // d4/dx4 log(1 + x^2) = -12 (x^4 - 6 x^2 + 1) / (1 + x^2)^4.
    const auto d = derivatives([](const auto& v) { return ml::log(ml::square(v) + 1.0); }, x, 4);
    const double x2 = x * x;
    CHECK_THAT(d[0], WithinRel(2 * x / (1 + x2), 1e-12));
    CHECK_THAT(d[2], WithinRel(4 * x * (x2 - 3) / std::pow(1 + x2, 3), 1e-12));
    CHECK_THAT(d[3], WithinRel(-12 * (x2 * x2 - 6 * x2 + 1) / std::pow(1 + x2, 4), 1e-12));
  }
  SECTION("pow") {
    const auto d = derivatives([](const auto& v) { return ml::pow(v, 3.5); }, x, 3);
    CHECK_THAT(d[2], WithinRel(3.5 * 2.5 * 1.5 * std::pow(x, 0.5), 1e-12));
  }
}

TEST_CASE("grad: meta-gradient through inner SGD steps matches finite differences",
          "[autodiff][second-order]") {
  // theta -> L_query(adapt(theta, support)) with 1-3 inner SGD steps on a tanh model: the
  // double-backward meta-gradient matches central differences of this function, and the
  // first-order shortcut (no create_graph) must not (that would hide an ignored flag).
  auto rng = ml::test::make_rng(31);
  const auto xs = ml::test::uniform(rng, {6, 3}), ys = ml::test::uniform(rng, {6, 1});
  const auto xq = ml::test::uniform(rng, {5, 3}), yq = ml::test::uniform(rng, {5, 1});
  const auto theta = ml::test::uniform(rng, {3, 1}, -1.0, 1.0);
  const auto query_loss_after = [&](int steps, bool second_order) {
    return [&, steps, second_order](const Vars& w) {
      ml::GradOptions o;
      o.create_graph = second_order;
      const auto support_x = ml::constant(xs), support_y = ml::constant(ys);
      auto fast = w[0];
      for (int k = 0; k < steps; ++k) {
        const auto inner = ml::mse(ml::tanh(ml::matmul(support_x, fast)), support_y);
        fast = fast - ml::grad(inner, {fast}, o)[0] * 0.5;
      }
      return ml::mse(ml::tanh(ml::matmul(ml::constant(xq), fast)), ml::constant(yq));
    };
  };
  auto options = ml::test::second_order_options();
  options.step = 1e-6;
  for (int steps = 1; steps <= 3; ++steps) {
    INFO("inner steps: " << steps);
    const auto second = ml::gradcheck(query_loss_after(steps, true), {theta}, options);
    INFO(second.message);
    CHECK(second.ok);
    CHECK_FALSE(ml::gradcheck(query_loss_after(steps, false), {theta}, options).ok);
  }
}

TEST_CASE("gradcheck: catches a wrong derivative", "[autodiff][grad]") {
  auto rng = ml::test::make_rng(32);
  const auto x = ml::test::uniform(rng, {3, 2}, 0.5, 2.0);
  // x * detach(x) has value x^2 but derivative x: a stand-in for an op with a wrong rule.
  const auto wrong = [](const Vars& v) { return v[0] * ml::detach(v[0]); };
  const auto r = ml::gradcheck(wrong, {x});
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("input 0 element") != std::string::npos);
  // exp(detach(x)) * x - ... : right first derivative, wrong second.
  const auto wrong_second = [](const Vars& v) {
    return ml::detach(ml::square(v[0])) * 0.5 + (v[0] - ml::detach(v[0])) * ml::detach(v[0]);
  };
  CHECK(ml::gradcheck(wrong_second, {x}).ok);
  CHECK_FALSE(ml::gradgradcheck(wrong_second, {x}, ml::test::second_order_options()).ok);
}
