// Optimizers against their textbook update formulas, clipping, schedules, groups, errors.
#include <cmath>
#include <metalearn/metalearn.hpp>
#include <vector>

#include "support/catch.hpp"
#include "support/errors.hpp"

namespace ml = metalearn;
namespace nn = metalearn::nn;
namespace optim = metalearn::optim;
using ml::Shape;
using ml::Tensor;

namespace {
// Two parameters owned by the test, and their ParameterList.
struct Toy {
  Tensor<double> a{Shape{2}, std::vector<double>{1.0, -2.0}};
  Tensor<double> b{Shape{1}, std::vector<double>{0.5}};
  nn::ParameterList<double> list() {
    nn::ParameterList<double> p;
    p.add("a", a);
    p.add("b", b);
    return p;
  }
};
const std::vector<Tensor<double>> g1{Tensor<double>(Shape{2}, {0.3, -0.1}),
                                     Tensor<double>(Shape{1}, {2.0})};
const std::vector<Tensor<double>> g2{Tensor<double>(Shape{2}, {-0.2, 0.4}),
                                     Tensor<double>(Shape{1}, {1.0})};
}  // namespace

TEST_CASE("Sgd: plain, momentum, Nesterov, weight decay match the formulas", "[optim]") {
  SECTION("plain") {
    Toy t;
    optim::Sgd<double> sgd(t.list(), {0.1});
    sgd.step(g1);
    CHECK_THAT(t.a.at(0), WithinAbs(1.0 - 0.1 * 0.3, 1e-15));
    CHECK_THAT(t.b.at(0), WithinAbs(0.5 - 0.1 * 2.0, 1e-15));
    CHECK(sgd.steps() == 1);
  }
  SECTION("momentum and weight decay") {
    Toy t;
    optim::SgdOptions o;
    o.lr = 0.1;
    o.momentum = 0.9;
    o.weight_decay = 0.01;
    optim::Sgd<double> sgd(t.list(), o);
    double p = 1.0, buf = 0;
    sgd.step(g1);
    double d = 0.3 + 0.01 * p;
    buf = d;  // first step: the buffer is the gradient
    p -= 0.1 * buf;
    sgd.step(g2);
    d = -0.2 + 0.01 * p;
    buf = 0.9 * buf + d;
    p -= 0.1 * buf;
    CHECK_THAT(t.a.at(0), WithinAbs(p, 1e-15));
  }
  SECTION("Nesterov") {
    Toy t;
    optim::SgdOptions o;
    o.lr = 0.1;
    o.momentum = 0.5;
    o.nesterov = true;
    optim::Sgd<double> sgd(t.list(), o);
    sgd.step(g1);
    sgd.step(g2);
    double p = 1.0, buf = 0.3;
    p -= 0.1 * (0.3 + 0.5 * buf);
    buf = 0.5 * buf + -0.2;
    p -= 0.1 * (-0.2 + 0.5 * buf);
    CHECK_THAT(t.a.at(0), WithinAbs(p, 1e-15));
  }
}

TEST_CASE("Adam and AdamW match Kingma & Ba / Loshchilov & Hutter", "[optim]") {
  const auto reference = [](bool decoupled, double wd) {
    double p = -2.0, m = 0, v = 0;  // parameter a[1]
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const double gs[2] = {-0.1, 0.4};
    for (int t = 1; t <= 2; ++t) {
      double g = gs[t - 1];
      if (decoupled)
        p *= 1 - lr * wd;
      else
        g += wd * p;
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g * g;
      p -= lr * (m / (1 - std::pow(b1, t))) / (std::sqrt(v / (1 - std::pow(b2, t))) + eps);
    }
    return p;
  };
  optim::AdamOptions o;
  o.lr = 0.01;
  o.weight_decay = 0.1;
  Toy t1, t2;
  optim::Adam<double> adam(t1.list(), o);
  optim::AdamW<double> adamw(t2.list(), o);
  for (const auto* g : {&g1, &g2}) {
    adam.step(*g);
    adamw.step(*g);
  }
  CHECK_THAT(t1.a.at(1), WithinAbs(reference(false, 0.1), 1e-14));
  CHECK_THAT(t2.a.at(1), WithinAbs(reference(true, 0.1), 1e-14));
  CHECK(adam.state().size() == 4);
  CHECK(adam.state().name(0) == "exp_avg.a");
}

TEST_CASE("Optimizers: group learning rates, schedules, gradients as Vars", "[optim]") {
  Toy t;
  optim::Sgd<double> sgd(t.list(), {0.1});
  sgd.set_group_lr(t.list().select("b"), 1.0);
  sgd.set_lr_factor(optim::StepLr{10, 0.5}(25));  // 0.25
  sgd.step(g1);
  CHECK_THAT(t.a.at(0), WithinAbs(1.0 - 0.025 * 0.3, 1e-15));
  CHECK_THAT(t.b.at(0), WithinAbs(0.5 - 0.25 * 2.0, 1e-15));
  CHECK_THAT(optim::ExponentialLr{0.9}(2), WithinAbs(0.81, 1e-15));
  CHECK_THAT((optim::CosineLr{100, 0.1}(0)), WithinAbs(1.0, 1e-15));
  CHECK_THAT((optim::CosineLr{100, 0.1}(50)), WithinAbs(0.55, 1e-15));
  CHECK_THAT((optim::CosineLr{100, 0.1}(500)), WithinAbs(0.1, 1e-15));
  // Gradients straight off the tape.
  ml::Tape<double> tape;
  const auto w = tape.leaves(t.list().views());
  const auto loss = ml::sum(ml::square(w[0])) + ml::sum(w[1]);
  const double a0 = t.a.at(0);
  sgd.step(ml::grad(loss, w));
  CHECK_THAT(t.a.at(0), WithinAbs(a0 - 0.025 * 2 * a0, 1e-15));
}

TEST_CASE("Adam converges on a quadratic", "[optim][convergence]") {
  Tensor<double> x(Shape{3}, {4.0, -3.0, 2.0});
  nn::ParameterList<double> p;
  p.add("x", x);
  optim::AdamOptions o;
  o.lr = 0.1;
  optim::Adam<double> adam(p, o);
  for (int i = 0; i < 500; ++i) {
    ml::Tape<double> tape;
    const auto v = tape.leaves(p.views());
    adam.step(ml::grad(ml::sum(ml::square(v[0] - 1.0)), v));
  }
  CHECK(((x.array() - 1.0).abs() < 1e-3).all());
}

TEST_CASE("Clipping by value and by global norm", "[optim]") {
  std::vector<Tensor<double>> g{Tensor<double>(Shape{2}, {3.0, -4.0}),
                                Tensor<double>(Shape{1}, {12.0})};
  CHECK(optim::global_norm(g) == 13.0);
  CHECK(optim::clip_by_global_norm(g, 6.5) == 13.0);
  CHECK_THAT(g[1].at(0), WithinAbs(6.0, 1e-15));
  CHECK_THAT(optim::global_norm(g), WithinAbs(6.5, 1e-14));
  optim::clip_by_value(g, 1.0);
  CHECK(g[0].at(1) == -1.0);
  CHECK(g[0].at(0) == 1.0);
  std::vector<Tensor<double>> bad{Tensor<double>(Shape{1}, {NAN})};
  CHECK(std::isnan(optim::clip_by_global_norm(bad, 1.0)));
}

TEST_CASE("Optimizers: bad options and mismatched gradients", "[optim][error]") {
  Toy t;
  ml::test::check_throws<ml::InvalidArgument>([&] { optim::Sgd<double>(t.list(), {-0.1}); },
                                              {"metalearn::optim::Sgd", "learning rate", "-0.1"});
  optim::SgdOptions nesterov;
  nesterov.nesterov = true;
  ml::test::check_throws<ml::InvalidArgument>([&] { optim::Sgd<double>(t.list(), nesterov); },
                                              {"Nesterov needs momentum"});
  optim::AdamOptions beta;
  beta.beta1 = 1.0;
  ml::test::check_throws<ml::InvalidArgument>([&] { optim::Adam<double>(t.list(), beta); },
                                              {"metalearn::optim::Adam", "beta1"});
  optim::Sgd<double> sgd(t.list(), {0.1});
  ml::test::check_throws<ml::InvalidArgument>([&] { sgd.step(std::vector<Tensor<double>>{g1[0]}); },
                                              {"metalearn::optim::Sgd::step", "1 gradients for 2"});
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        sgd.step(std::vector<Tensor<double>>{g1[1], g1[0]});
      },
      {"gradient 0 ('a')", "[1]", "[2]"});
  ml::test::check_throws<ml::InvalidArgument>([&] { sgd.set_group_lr({7}, 0.1); }, {"index 7"});
}
