// Every op: forward values against closed forms, and first- and second-order gradients
// against central finite differences in double.
#include <cmath>
#include <metalearn/autodiff/autodiff.hpp>
#include <vector>

#include "support/catch.hpp"
#include "support/errors.hpp"
#include "support/gradcheck.hpp"
#include "support/seed.hpp"

namespace ml = metalearn;
using ml::Shape;
using ml::Tensor;
using Vars = std::vector<ml::Var<double>>;
using ml::test::check_gradients;
using ml::test::check_second_order;
using ml::test::uniform;

namespace {
// Both checks in one line, as STYLE.md §7 asks.
template <class F>
void check_both(F f, const std::vector<Tensor<double>>& inputs) {
  check_gradients(f, inputs);
  check_second_order(f, inputs);
}
}  // namespace

TEST_CASE("add/sub/mul/div: same-shape gradients", "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(1);
  const auto a = uniform(rng, {3, 4}), b = uniform(rng, {3, 4}, 0.5, 2.0);
  check_both([](const Vars& x) { return x[0] + x[1]; }, {a, b});
  check_both([](const Vars& x) { return x[0] - x[1]; }, {a, b});
  check_both([](const Vars& x) { return x[0] * x[1]; }, {a, b});
  check_both([](const Vars& x) { return x[0] / x[1]; }, {a, b});
}

TEST_CASE("add/sub/mul/div: broadcasting gradients", "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(2);
  const auto m = uniform(rng, {3, 4}), row = uniform(rng, {4}, 0.5, 2.0),
             col = uniform(rng, {3, 1}, 0.5, 2.0), s = uniform(rng, {}, 0.5, 2.0);
  SECTION("row") {
    check_both([](const Vars& x) { return x[0] * x[1]; }, {m, row});
    check_both([](const Vars& x) { return x[0] / x[1]; }, {m, row});
  }
  SECTION("column") {
    check_both([](const Vars& x) { return x[0] + x[1]; }, {m, col});
    check_both([](const Vars& x) { return x[1] / x[0]; }, {uniform(rng, {3, 4}, 0.5, 2.0), col});
  }
  SECTION("scalar") {
    check_both([](const Vars& x) { return x[0] - x[1]; }, {m, s});
    check_both([](const Vars& x) { return x[1] * x[0]; }, {m, s});
  }
  SECTION("general NumPy rules up to rank 4") {
    check_both([](const Vars& x) { return x[0] * x[1]; },
               {uniform(rng, {2, 1, 3, 1}), uniform(rng, {4, 1, 2})});
    check_both([](const Vars& x) { return x[0] / x[1]; },
               {uniform(rng, {2, 3, 1}), uniform(rng, {1, 4}, 0.5, 2.0)});
  }
}

TEST_CASE("broadcasting: forward values and shapes", "[autodiff][shape]") {
  ml::Tape<double> tape;
  const auto a = tape.constant(Tensor<double>(Shape{2, 1}, {1, 2}));
  const auto b = tape.constant(Tensor<double>(Shape{3}, {10, 20, 30}));
  const auto c = a + b;
  REQUIRE(c.shape() == Shape{2, 3});
  CHECK(c.to_tensor().at(1, 2) == 32.0);
  CHECK(ml::broadcast_shapes("t", Shape{5, 1, 3}, Shape{4, 1}) == Shape{5, 4, 3});
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        (void)(a + tape.constant(Tensor<double>(Shape{3, 2})));
      },
      {"metalearn::add", "[2, 1]", "[3, 2]"});
  CHECK(ml::sum_to(c, Shape{3}).to_tensor().at(2) == 31.0 + 32.0);
}

TEST_CASE("neg, scale, add_scalar and number operators", "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(3);
  const auto a = uniform(rng, {2, 3}, 0.5, 2.0);
  check_both([](const Vars& x) { return -x[0] * 3.0 + 2.0; }, {a});
  check_both([](const Vars& x) { return 1.0 - x[0] / 4.0; }, {a});
  check_both([](const Vars& x) { return 2.0 * x[0] - 1.0; }, {a});
}

TEST_CASE("exp, log, sqrt, square, pow: values and gradients", "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(4);
  const auto x = uniform(rng, {3, 2}), pos = uniform(rng, {3, 2}, 0.3, 3.0);
  check_both([](const Vars& v) { return ml::exp(v[0]); }, {x});
  check_both([](const Vars& v) { return ml::log(v[0]); }, {pos});
  check_both([](const Vars& v) { return ml::sqrt(v[0]); }, {pos});
  check_both([](const Vars& v) { return ml::square(v[0]); }, {x});
  check_both([](const Vars& v) { return ml::pow(v[0], 2.5); }, {pos});
  check_both([](const Vars& v) { return ml::pow(v[0], -1.5); }, {pos});
  ml::Tape<double> tape;
  const auto t = tape.constant(pos);
  for (std::int64_t i = 0; i < pos.numel(); ++i) {
    const double p = pos.data()[i];
    CHECK_THAT(ml::pow(t, 2.5).value()[i], WithinRel(std::pow(p, 2.5), 1e-12));
    CHECK_THAT(ml::log(t).value()[i], WithinRel(std::log(p), 1e-12));
  }
}

TEST_CASE("abs, relu, leaky_relu: gradients away from the kink", "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(5);
  const auto x = ml::test::uniform_away_from_zero(rng, {4, 3});
  check_both([](const Vars& v) { return ml::abs(v[0]) * v[0]; }, {x});
  check_both([](const Vars& v) { return ml::relu(v[0]) * v[0]; }, {x});
  check_both([](const Vars& v) { return ml::leaky_relu(v[0], 0.2) * ml::square(v[0]); }, {x});
  ml::Tape<double> tape;
  const auto t = tape.constant(Tensor<double>(Shape{3}, {-2.0, 0.0, 3.0}));
  CHECK(ml::relu(t).to_tensor().at(0) == 0.0);
  CHECK(ml::leaky_relu(t, 0.1).to_tensor().at(0) == Approx(-0.2));
  CHECK(ml::abs(t).to_tensor().at(0) == 2.0);
}

TEST_CASE("tanh, sigmoid, softplus: values, stability and gradients",
          "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(6);
  const auto x = uniform(rng, {3, 3}, -3.0, 3.0);
  check_both([](const Vars& v) { return ml::tanh(v[0]); }, {x});
  check_both([](const Vars& v) { return ml::sigmoid(v[0]); }, {x});
  check_both([](const Vars& v) { return ml::softplus(v[0]); }, {x});
  ml::Tape<double> tape;
  const auto big = tape.constant(Tensor<double>(Shape{2}, {-800.0, 800.0}));
  CHECK(ml::sigmoid(big).to_tensor().at(0) == 0.0);
  CHECK(ml::sigmoid(big).to_tensor().at(1) == 1.0);
  CHECK(ml::softplus(big).to_tensor().at(1) == 800.0);
  CHECK(std::isfinite(ml::softplus(big).to_tensor().at(0)));
}

TEST_CASE("matmul: 2-D, fused transposes and batched", "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(7);
  SECTION("2-D with every transpose combination") {
    check_both([](const Vars& v) { return ml::matmul(v[0], v[1]); },
               {uniform(rng, {3, 4}), uniform(rng, {4, 2})});
    check_both([](const Vars& v) { return ml::matmul(v[0], v[1], true, false); },
               {uniform(rng, {4, 3}), uniform(rng, {4, 2})});
    check_both([](const Vars& v) { return ml::matmul(v[0], v[1], false, true); },
               {uniform(rng, {3, 4}), uniform(rng, {2, 4})});
    check_both([](const Vars& v) { return ml::matmul(v[0], v[1], true, true); },
               {uniform(rng, {4, 3}), uniform(rng, {2, 4})});
  }
  SECTION("batched, and a rank-2 right operand shared by the batch") {
    // tanh makes the second derivative non-trivial (a bilinear map's HVP is too easy).
    check_both([](const Vars& v) { return ml::tanh(ml::matmul(v[0], v[1])); },
               {uniform(rng, {2, 3, 4}), uniform(rng, {2, 4, 2})});
    check_both([](const Vars& v) { return ml::tanh(ml::matmul(v[0], v[1], true, true)); },
               {uniform(rng, {2, 4, 3}), uniform(rng, {2, 2, 4})});
    check_both([](const Vars& v) { return ml::tanh(ml::matmul(v[0], v[1])); },
               {uniform(rng, {2, 3, 4}), uniform(rng, {4, 2})});
    check_both([](const Vars& v) { return ml::tanh(ml::matmul(v[0], v[1], true, true)); },
               {uniform(rng, {2, 4, 3}), uniform(rng, {2, 4})});
  }
  SECTION("values against Eigen") {
    const auto a = uniform(rng, {3, 4}), b = uniform(rng, {4, 2});
    ml::Tape<double> tape;
    const Eigen::MatrixXd expected = a.matrix() * b.matrix();
    const Eigen::MatrixXd got = ml::matmul(tape.constant(a), tape.constant(b)).value().matrix();
    CHECK((got - expected).cwiseAbs().maxCoeff() < 1e-12);
  }
  SECTION("inner dimension 1 (outer products), every transpose combination and batched") {
    ml::Tape<double> tape;
    const auto a = uniform(rng, {2, 3, 1}), b = uniform(rng, {2, 1, 4});
    for (const bool ta : {false, true})
      for (const bool tb : {false, true}) {
        // The same values stored as [3, 1] or [1, 3] (and [1, 4] or [4, 1]).
        const auto av = tape.constant(ta ? a.reshaped(Shape{2, 1, 3}) : a);
        const auto bv = tape.constant(tb ? b.reshaped(Shape{2, 4, 1}) : b);
        const Tensor<double> got = ml::matmul(av, bv, ta, tb).to_tensor();
        REQUIRE(got.shape() == Shape{2, 3, 4});
        for (std::int64_t n = 0; n < 2; ++n)
          for (std::int64_t i = 0; i < 3; ++i)
            for (std::int64_t j = 0; j < 4; ++j)
              CHECK(got.at(n, i, j) == a.at(n, i, 0) * b.at(n, 0, j));
      }
    check_both([](const Vars& v) { return ml::tanh(ml::matmul(v[0], v[1])); },
               {uniform(rng, {5, 1}), uniform(rng, {1, 3})});
    check_both([](const Vars& v) { return ml::tanh(ml::matmul(v[0], v[1], true, true)); },
               {uniform(rng, {1, 5}), uniform(rng, {3, 1})});
  }
  SECTION("small products (register blocks, no packing): values, column tails, gradients") {
    // Shapes around the blocks: rows 1, 4 + 3 and 10; columns 8, 13 = 8 + 4 + 1 and
    // 40 = 16 + 16 + 8; A plain or transposed; one batched case.
    for (const std::int64_t n : {1, 7, 10})
      for (const std::int64_t m : {8, 13, 40})
        for (const bool ta : {false, true}) {
          const std::int64_t k = 6, batch = n == 7 ? 2 : 1;
          INFO("n " << n << " m " << m << " transposed A " << ta);
          REQUIRE(ml::detail::use_small_product(n, k, m, false));
          const auto a = uniform(rng, ta ? Shape{batch, k, n} : Shape{batch, n, k});
          const auto b = uniform(rng, {batch, k, m});
          for (const bool as_float : {false, true}) {
            Tensor<double> got;
            if (as_float) {
              ml::Tape<float> tf;
              got = ml::matmul(tf.constant(a.cast<float>()), tf.constant(b.cast<float>()), ta)
                        .to_tensor()
                        .cast<double>();
            } else {
              ml::Tape<double> td;
              got = ml::matmul(td.constant(a), td.constant(b), ta).to_tensor();
            }
            REQUIRE(got.shape() == Shape{batch, n, m});
            double worst = 0;
            for (std::int64_t t = 0; t < batch; ++t)
              for (std::int64_t i = 0; i < n; ++i)
                for (std::int64_t j = 0; j < m; ++j) {
                  double sum = 0;
                  for (std::int64_t p = 0; p < k; ++p)
                    sum += (ta ? a.at(t, p, i) : a.at(t, i, p)) * b.at(t, p, j);
                  worst = std::max(worst, std::abs(got.at(t, i, j) - sum));
                }
            CHECK(worst < (as_float ? 1e-5 : 1e-13));
          }
        }
    check_both([](const Vars& v) { return ml::tanh(ml::matmul(v[0], v[1])); },
               {uniform(rng, {5, 3}), uniform(rng, {3, 9})});
    check_both([](const Vars& v) { return ml::tanh(ml::matmul(v[0], v[1], true, false)); },
               {uniform(rng, {2, 3, 5}), uniform(rng, {2, 3, 9})});
  }
  SECTION("shape errors name the op and both shapes") {
    ml::Tape<double> tape;
    const auto a = tape.constant(Tensor<double>(Shape{2, 3})),
               b = tape.constant(Tensor<double>(Shape{2, 3}));
    ml::test::check_throws<ml::InvalidArgument>(
        [&] { (void)ml::matmul(a, b); }, {"metalearn::matmul", "[2, 3]", "inner dimensions"});
    const auto v = tape.constant(Tensor<double>(Shape{3}));
    ml::test::check_throws<ml::InvalidArgument>([&] { (void)ml::matmul(a, v); },
                                                {"metalearn::matmul", "[3]"});
  }
}

TEST_CASE("transpose and permute", "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(8);
  check_both([](const Vars& v) { return ml::square(ml::transpose(v[0])); }, {uniform(rng, {3, 4})});
  check_both(
      [](const Vars& v) {
        return ml::square(ml::permute(v[0], {2, 0, 3, 1}));
      },
      {uniform(rng, {2, 3, 2, 2})});
  ml::Tape<double> tape;
  const auto x = tape.constant(uniform(rng, {2, 3, 4}));
  const auto y = ml::permute(x, {2, 0, 1, 0});
  REQUIRE(y.shape() == Shape{4, 2, 3});
  CHECK(y.to_tensor().at(3, 1, 2) == x.to_tensor().at(1, 2, 3));
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        (void)ml::permute(x, {0, 0, 1, 0});
      },
      {"metalearn::permute", "[2, 3, 4]"});
}

TEST_CASE("reshape, flatten, slice, pad_rows, concat", "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(9);
  check_both(
      [](const Vars& v) {
        return ml::square(ml::reshape(v[0], Shape{3, 4}));
      },
      {uniform(rng, {2, 6})});
  check_both([](const Vars& v) { return ml::square(ml::flatten(v[0])); },
             {uniform(rng, {2, 2, 3})});
  check_both([](const Vars& v) { return ml::square(ml::slice(v[0], 1, 3)); },
             {uniform(rng, {4, 3})});
  check_both([](const Vars& v) { return ml::square(ml::pad_rows(v[0], 1, 2)); },
             {uniform(rng, {2, 3})});
  check_both(
      [](const Vars& v) {
        return ml::square(ml::concat(Vars{v[0], v[1], v[0]}));
      },
      {uniform(rng, {2, 3}), uniform(rng, {1, 3})});
  ml::Tape<double> tape;
  const auto x = tape.constant(Tensor<double>(Shape{3, 2}, {1, 2, 3, 4, 5, 6}));
  CHECK(ml::slice(x, 1, 2).to_tensor().at(0, 1) == 4.0);
  CHECK(ml::concat(Vars{x, x}).shape() == Shape{6, 2});
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        (void)ml::reshape(x, Shape{4, 2});
      },
      {"metalearn::reshape", "[3, 2]", "[4, 2]"});
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)ml::slice(x, 2, 4); },
                                              {"metalearn::slice", "[3, 2]"});
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        (void)ml::concat(Vars{x, tape.constant(Tensor<double>(Shape{3, 3}))});
      },
      {"metalearn::concat", "[3, 2]", "[3, 3]"});
}

TEST_CASE("gather_rows and scatter_add_rows", "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(10);
  check_both(
      [](const Vars& v) {
        return ml::square(ml::gather_rows(v[0], {2, 0, 2, 1}));
      },
      {uniform(rng, {3, 2})});
  check_both(
      [](const Vars& v) {
        return ml::square(ml::scatter_add_rows(v[0], {1, 1, 0}, 3));
      },
      {uniform(rng, {3, 2})});
  ml::Tape<double> tape;
  const auto x = tape.constant(Tensor<double>(Shape{3, 1}, {1, 2, 3}));
  CHECK(ml::gather_rows(x, {2, 2}).to_tensor().at(1, 0) == 3.0);
  CHECK(ml::scatter_add_rows(x, {1, 1, 0}, 2).to_tensor().at(1, 0) == 3.0);
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        (void)ml::gather_rows(x, {0, 3});
      },
      {"metalearn::gather_rows", "index 3", "3 rows"});
}

TEST_CASE("sum and mean: all and per axis", "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(11);
  const auto x = uniform(rng, {2, 3, 4});
  check_both([](const Vars& v) { return ml::square(ml::sum(v[0])); }, {x});
  check_both([](const Vars& v) { return ml::square(ml::mean(v[0])); }, {x});
  for (int axis : {0, 1, 2, -1}) {
    check_both([axis](const Vars& v) { return ml::square(ml::sum(v[0], axis)); }, {x});
    check_both([axis](const Vars& v) { return ml::square(ml::mean(v[0], axis, true)); }, {x});
  }
  ml::Tape<double> tape;
  const auto t = tape.constant(Tensor<double>(Shape{2, 3}, {1, 2, 3, 4, 5, 6}));
  CHECK(ml::sum(t).item() == 21.0);
  CHECK(ml::sum(t, 0).shape() == Shape{3});
  CHECK(ml::sum(t, 1, true).shape() == Shape{2, 1});
  CHECK(ml::mean(t, 1).to_tensor().at(1) == 5.0);
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)ml::sum(t, 2); },
                                              {"metalearn::sum", "axis 2", "[2, 3]"});
}

TEST_CASE("max and min along an axis", "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(12);
  const auto x = uniform(rng, {3, 4});  // continuous draws: no ties
  for (int axis : {0, 1}) {
    check_both([axis](const Vars& v) { return ml::square(ml::max(v[0], axis)); }, {x});
    check_both([axis](const Vars& v) { return ml::square(ml::min(v[0], axis, true)); }, {x});
  }
  ml::Tape<double> tape;
  const auto t = tape.leaf(Tensor<double>(Shape{2, 3}, {1, 5, 5, -1, -2, 0}));
  const auto m = ml::max(t, 1);
  CHECK(m.to_tensor().at(0) == 5.0);
  CHECK(ml::min(t, 1).to_tensor().at(1) == -2.0);
  // A tie sends the whole gradient to the first maximum.
  const auto g = ml::grad(ml::sum(m), {t})[0].to_tensor();
  CHECK(g.at(0, 1) == 1.0);
  CHECK(g.at(0, 2) == 0.0);
}

TEST_CASE("softmax and log_softmax: values, stability, gradients",
          "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(13);
  const auto x = uniform(rng, {3, 5});
  check_both([](const Vars& v) { return ml::softmax(v[0]); }, {x});
  check_both([](const Vars& v) { return ml::log_softmax(v[0]); }, {x});
  check_both([](const Vars& v) { return ml::softmax(v[0]); }, {uniform(rng, {2, 2, 3})});
  ml::Tape<double> tape;
  const auto big = tape.constant(Tensor<double>(Shape{1, 3}, {1000.0, 1000.0, -1000.0}));
  const auto p = ml::softmax(big).to_tensor();
  CHECK_THAT(p.at(0, 0), WithinAbs(0.5, 1e-12));  // 1000 + log 2 keeps ~13 digits of log 2
  CHECK(p.at(0, 2) == 0.0);
  CHECK_THAT(ml::log_softmax(big).to_tensor().at(0, 1), WithinAbs(-std::log(2.0), 1e-12));
}

TEST_CASE("losses: mse, cross_entropy, binary_cross_entropy_with_logits",
          "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(14);
  const auto p = uniform(rng, {4, 2}), t = uniform(rng, {4, 2});
  check_both([](const Vars& v) { return ml::mse(v[0], v[1]); }, {p, t});
  check_both(
      [](const Vars& v) {
        return ml::cross_entropy(v[0], {1, 0, 2, 2});
      },
      {uniform(rng, {4, 3})});
  check_both(
      [](const Vars& v) { return ml::binary_cross_entropy_with_logits(v[0], ml::sigmoid(v[1])); },
      {uniform(rng, {3, 2}), uniform(rng, {3, 2})});

  ml::Tape<double> tape;
  SECTION("closed forms") {
    const auto logits = tape.constant(Tensor<double>(Shape{2, 2}, {0.0, 0.0, 3.0, 1.0}));
    const double expected = 0.5 * (std::log(2.0) + (std::log(std::exp(3.0) + std::exp(1.0)) - 1.0));
    CHECK_THAT(ml::cross_entropy(logits, {0, 1}).item(), WithinRel(expected, 1e-12));
    const auto z = tape.constant(Tensor<double>(Shape{2}, {2.0, -1.0}));
    const auto y = tape.constant(Tensor<double>(Shape{2}, {1.0, 0.0}));
    const double bce = 0.5 * (std::log1p(std::exp(-2.0)) + std::log1p(std::exp(-1.0)));
    CHECK_THAT(ml::binary_cross_entropy_with_logits(z, y).item(), WithinRel(bce, 1e-12));
  }
  SECTION("huge logits stay finite") {
    const auto logits = tape.constant(Tensor<double>(Shape{1, 2}, {1e4, -1e4}));
    CHECK_THAT(ml::cross_entropy(logits, {1}).item(), WithinRel(2e4, 1e-12));
    const auto z = tape.constant(Tensor<double>(Shape{1}, {-1e4}));
    CHECK_THAT(ml::binary_cross_entropy_with_logits(z, tape.scalar(1.0) + z * 0.0).item(),
               WithinRel(1e4, 1e-12));
  }
  SECTION("bad labels and shapes") {
    const auto logits = tape.constant(Tensor<double>(Shape{2, 3}));
    ml::test::check_throws<ml::InvalidArgument>(
        [&] {
          (void)ml::cross_entropy(logits, {0, 3});
        },
        {"metalearn::cross_entropy", "label 3", "row 1"});
    ml::test::check_throws<ml::InvalidArgument>([&] { (void)ml::cross_entropy(logits, {0}); },
                                                {"metalearn::cross_entropy", "1 labels", "[2, 3]"});
    const auto col = tape.constant(Tensor<double>(Shape{3, 1}));
    const auto vec = tape.constant(Tensor<double>(Shape{3}));
    ml::test::check_throws<ml::InvalidArgument>([&] { (void)ml::mse(col, vec); },
                                                {"metalearn::mse", "[3, 1]", "[3]"});
  }
}

TEST_CASE("pairwise distances: values and gradients", "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(15);
  const auto a = uniform(rng, {3, 4}), b = uniform(rng, {2, 4});
  check_both([](const Vars& v) { return ml::pairwise_squared_euclidean(v[0], v[1]); }, {a, b});
  check_both([](const Vars& v) { return ml::pairwise_euclidean(v[0], v[1]); }, {a, b});
  check_both([](const Vars& v) { return ml::pairwise_cosine_distance(v[0], v[1]); }, {a, b});
  ml::Tape<double> tape;
  const auto A = tape.constant(a), B = tape.constant(b);
  const auto d2 = ml::pairwise_squared_euclidean(A, B).to_tensor();
  const auto d = ml::pairwise_euclidean(A, B).to_tensor();
  const auto cs = ml::pairwise_cosine_similarity(A, B).to_tensor();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j) {
      const Eigen::VectorXd ai = a.matrix().row(i).transpose(), bj = b.matrix().row(j).transpose();
      CHECK_THAT(d2.at(i, j), WithinAbs((ai - bj).squaredNorm(), 1e-12));
      CHECK_THAT(d.at(i, j), WithinAbs((ai - bj).norm(), 1e-12));
      CHECK_THAT(cs.at(i, j), WithinAbs(ai.dot(bj) / (ai.norm() * bj.norm()), 1e-12));
    }
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        (void)ml::pairwise_euclidean(A, tape.constant(Tensor<double>(Shape{2, 3})));
      },
      {"metalearn::pairwise_euclidean", "[3, 4]", "[2, 3]"});
}

TEMPLATE_TEST_CASE("ops: float matches double", "[autodiff][float]", float) {
  auto rng = ml::test::make_rng(16);
  const auto a = uniform(rng, {5, 4}), b = uniform(rng, {4, 3});
  const auto run = [&](auto tag) {
    using S = decltype(tag);
    ml::Tape<S> tape;
    const auto x = tape.leaf(a.cast<S>()), w = tape.leaf(b.cast<S>());
    const auto loss = ml::cross_entropy(ml::tanh(ml::matmul(x, w)), {0, 1, 2, 1, 0});
    const auto g = ml::grad(loss, {w});
    return std::make_pair(static_cast<double>(loss.item()),
                          g[0].to_tensor().template cast<double>());
  };
  const auto [lf, gf] = run(TestType{});
  const auto [ld, gd] = run(double{});
  CHECK_THAT(lf, WithinAbs(ld, 1e-5) || WithinRel(ld, 1e-4));
  for (std::int64_t i = 0; i < gd.numel(); ++i)
    CHECK_THAT(gf.data()[i], WithinAbs(gd.data()[i], 1e-5) || WithinRel(gd.data()[i], 1e-4));
}

TEST_CASE("conv2d and its adjoints: values and gradients", "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(17);
  SECTION("padding 1, stride 1") {
    check_both(
        [](const Vars& v) {
          return ml::tanh(ml::conv2d(v[0], v[1], {1, 1}));
        },
        {uniform(rng, {2, 2, 5, 4}), uniform(rng, {3, 2, 3, 3})});
  }
  SECTION("stride 2, no padding, non-square kernel") {
    check_both(
        [](const Vars& v) {
          return ml::tanh(ml::conv2d(v[0], v[1], {2, 0}));
        },
        {uniform(rng, {2, 2, 5, 5}), uniform(rng, {3, 2, 3, 2})});
  }
  SECTION("the adjoints are differentiable too (closed family)") {
    check_both(
        [](const Vars& v) {
          return ml::tanh(ml::conv2d_input_grad(v[0], v[1], Shape{2, 2, 5, 4}, {1, 1}));
        },
        {uniform(rng, {2, 3, 5, 4}), uniform(rng, {3, 2, 3, 3})});
    check_both(
        [](const Vars& v) {
          return ml::tanh(ml::conv2d_weight_grad(v[0], v[1], Shape{3, 2, 3, 3}, {1, 1}));
        },
        {uniform(rng, {2, 2, 5, 4}), uniform(rng, {2, 3, 5, 4})});
  }
  SECTION("bias: one op, gradients of x, w and b to second order") {
    check_both(
        [](const Vars& v) {
          return ml::tanh(ml::conv2d(v[0], v[1], v[2], {1, 1}));
        },
        {uniform(rng, {2, 2, 5, 4}), uniform(rng, {3, 2, 3, 3}), uniform(rng, {3})});
  }
  SECTION("Winograd path (16+ channels): gradients to second order") {
    REQUIRE(ml::detail::use_winograd(
        ml::detail::conv_dims("conv2d", Shape{1, 16, 3, 4}, Shape{16, 16, 3, 3}, {1, 1})));
    check_both(
        [](const Vars& v) {
          return ml::tanh(ml::conv2d(v[0], v[1], v[2], {1, 1}));
        },
        {uniform(rng, {1, 16, 3, 4}), uniform(rng, {16, 16, 3, 3}), uniform(rng, {16})});
    check_both(
        [](const Vars& v) {
          return ml::tanh(ml::conv2d_input_grad(v[0], v[1], Shape{1, 16, 3, 4}, {1, 1}));
        },
        {uniform(rng, {1, 16, 3, 4}), uniform(rng, {16, 16, 3, 3})});
    check_both(
        [](const Vars& v) {
          return ml::tanh(ml::conv2d_weight_grad(v[0], v[1], Shape{16, 16, 3, 3}, {1, 1}));
        },
        {uniform(rng, {1, 16, 3, 4}), uniform(rng, {1, 16, 3, 4})});
  }
  SECTION("values against a direct loop, and the adjoints against <conv(x, w), g>") {
    // Geometries through both im2col paths: the "same" stride-1 one (contiguous shifted
    // copies, with images small enough that whole window rows fall outside) and the
    // general one (strided, or an output of another size).
    struct Case {
      Shape x, w;
      ml::Conv2dGeometry g;
    };
    const Case cases[] = {
        {{2, 3, 6, 5}, {4, 3, 3, 3}, {2, 1}},
        {{3, 2, 6, 5}, {4, 2, 3, 3}, {1, 1}},
        {{2, 2, 7, 6}, {3, 2, 5, 5}, {1, 2}},
        {{2, 2, 4, 4}, {3, 2, 1, 1}, {1, 0}},
        {{5, 2, 1, 1}, {3, 2, 3, 3}, {1, 1}},
        {{4, 1, 2, 2}, {2, 1, 3, 3}, {1, 1}},
        {{2, 2, 5, 4}, {3, 2, 3, 1}, {1, 1}},
        {{2, 1, 6, 6}, {2, 1, 3, 3}, {1, 0}},
        // Winograd F(2x2, 3x3) (3x3 "same", 16+ channels): even and odd sizes (cropped edge
        // tiles), channel counts that are not multiples of 16, several image groups with a
        // partial last one (9 images of 49 tiles), a single tile.
        {{2, 16, 7, 7}, {16, 16, 3, 3}, {1, 1}},
        {{3, 17, 6, 5}, {20, 17, 3, 3}, {1, 1}},
        {{9, 16, 14, 14}, {16, 16, 3, 3}, {1, 1}},
        {{2, 16, 2, 3}, {18, 16, 3, 3}, {1, 1}}};
    for (const Case& k : cases) {
      CAPTURE(k.x.to_string(), k.w.to_string(), k.g.stride, k.g.padding);
      const auto x = uniform(rng, {k.x[0], k.x[1], k.x[2], k.x[3]});
      const auto w = uniform(rng, {k.w[0], k.w[1], k.w[2], k.w[3]});
      const auto b = uniform(rng, {k.w[0]});
      ml::Tape<double> tape;
      const auto y = ml::conv2d(tape.constant(x), tape.constant(w), tape.constant(b), k.g);
      const Tensor<double> yt = y.to_tensor();
      const std::int64_t oh = yt.shape()[2], ow = yt.shape()[3], s = k.g.stride, p = k.g.padding;
      REQUIRE(oh == (k.x[2] + 2 * p - k.w[2]) / s + 1);
      REQUIRE(ow == (k.x[3] + 2 * p - k.w[3]) / s + 1);
      for (std::int64_t n = 0; n < k.x[0]; ++n)
        for (std::int64_t f = 0; f < k.w[0]; ++f)
          for (std::int64_t r = 0; r < oh; ++r)
            for (std::int64_t q = 0; q < ow; ++q) {
              double sum = b.at(f);
              for (std::int64_t c = 0; c < k.x[1]; ++c)
                for (std::int64_t i = 0; i < k.w[2]; ++i)
                  for (std::int64_t j = 0; j < k.w[3]; ++j) {
                    const std::int64_t yy = r * s - p + i, xx = q * s - p + j;
                    if (yy >= 0 && yy < k.x[2] && xx >= 0 && xx < k.x[3])
                      sum += x.at(n, c, yy, xx) * w.at(f, c, i, j);
                  }
              CHECK_THAT(yt.at(n, f, r, q), WithinAbs(sum, 1e-12));
            }
      // <conv(x, w), g> = <x, conv_input_grad(g, w)> = <w, conv_weight_grad(x, g)>
      const auto g = uniform(rng, {k.x[0], k.w[0], oh, ow});
      const auto gv = tape.constant(g);
      const double lhs = ml::sum(ml::conv2d(tape.constant(x), tape.constant(w), k.g) * gv).item();
      const double via_x =
          ml::sum(ml::conv2d_input_grad(gv, tape.constant(w), k.x, k.g) * tape.constant(x)).item();
      const double via_w =
          ml::sum(ml::conv2d_weight_grad(tape.constant(x), gv, k.w, k.g) * tape.constant(w)).item();
      CHECK_THAT(via_x, WithinAbs(lhs, 1e-10));
      CHECK_THAT(via_w, WithinAbs(lhs, 1e-10));
    }
  }
  SECTION("bad shapes") {
    ml::Tape<double> tape;
    const auto x = tape.constant(Tensor<double>(Shape{1, 2, 5, 5}));
    ml::test::check_throws<ml::InvalidArgument>(
        [&] {
          (void)ml::conv2d(x, tape.constant(Tensor<double>(Shape{4, 3, 3, 3})));
        },
        {"metalearn::conv2d", "[1, 2, 5, 5]", "[4, 3, 3, 3]"});
    ml::test::check_throws<ml::InvalidArgument>(
        [&] {
          (void)ml::conv2d(x, tape.constant(Tensor<double>(Shape{4, 2, 7, 7})));
        },
        {"metalearn::conv2d", "kernel larger"});
    ml::test::check_throws<ml::InvalidArgument>(
        [&] {
          (void)ml::conv2d(x, tape.constant(Tensor<double>(Shape{4, 2, 3, 3})),
                           tape.constant(Tensor<double>(Shape{3})));
        },
        {"metalearn::conv2d", "bias", "[3]", "[4, 2, 3, 3]"});
  }
}

TEST_CASE("pooling: max, average, global average", "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(18);
  const auto x = uniform(rng, {2, 2, 5, 4});  // continuous draws: no ties within a window
  check_both([](const Vars& v) { return ml::square(ml::max_pool2d(v[0], 2, 2)); }, {x});
  check_both([](const Vars& v) { return ml::square(ml::max_pool2d(v[0], 3, 1)); }, {x});
  check_both([](const Vars& v) { return ml::square(ml::avg_pool2d(v[0], 2, 2)); }, {x});
  check_both([](const Vars& v) { return ml::square(ml::global_avg_pool2d(v[0])); }, {x});
  ml::Tape<double> tape;
  const auto t = tape.constant(Tensor<double>(Shape{1, 1, 2, 3}, {1, 5, 2, 4, 3, 9}));
  const auto m = ml::max_pool2d(t, 2, 1).to_tensor();
  REQUIRE(m.shape() == Shape{1, 1, 1, 2});
  CHECK(m.at(0, 0, 0, 0) == 5.0);
  CHECK(m.at(0, 0, 0, 1) == 9.0);
  CHECK(ml::avg_pool2d(t, 2, 1).to_tensor().at(0, 0, 0, 1) == Approx((5 + 2 + 3 + 9) / 4.0));
  CHECK(ml::global_avg_pool2d(t).to_tensor().at(0, 0) == Approx(4.0));
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)ml::max_pool2d(t, 3, 1); },
                                              {"metalearn::max_pool2d", "[1, 1, 2, 3]"});
  const auto wide = tape.constant(Tensor<double>(Shape{1, 1, 257, 257}));
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)ml::max_pool2d(wide, 257, 1); },
                                              {"metalearn::max_pool2d", "kernel 257", "256"});
  // 2x2 stride 2 (conv4's pooling, its own loop): the maximum in each of the four window
  // positions, a tie sends the gradient to the first maximum in row-major order, and the
  // odd last row and column are dropped (floor).
  const auto u = tape.leaf(Tensor<double>(Shape{1, 1, 3, 9}, {9, 1, 1, 1, 1, 1, 2, 2, 7,  //
                                                              1, 1, 9, 1, 1, 9, 2, 2, 7,  //
                                                              8, 8, 8, 8, 8, 8, 8, 8, 8}));
  const auto pooled = ml::max_pool2d(u, 2, 2);
  REQUIRE(pooled.shape() == Shape{1, 1, 1, 4});
  const Tensor<double> pv = pooled.to_tensor();
  CHECK(std::vector<double>(pv.data(), pv.data() + 4) == std::vector<double>{9, 9, 9, 2});
  const Tensor<double> du = ml::grad(ml::sum(pooled), {u})[0].to_tensor();
  std::vector<double> expected(27, 0.0);
  for (const int at : {0, 11, 14, 6}) expected[static_cast<std::size_t>(at)] = 1.0;
  CHECK(std::vector<double>(du.data(), du.data() + 27) == expected);
}

TEST_CASE("channel_normalize: values, gradients, fused and recorded backward agree",
          "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(19);
  const auto img = uniform(rng, {3, 2, 2, 3}, -1.0, 4.0), dense = uniform(rng, {5, 3});
  check_both([](const Vars& v) { return ml::tanh(ml::channel_normalize(v[0])); }, {img});
  check_both([](const Vars& v) { return ml::tanh(ml::channel_normalize(v[0])); }, {dense});
  ml::Tape<double> tape;
  const auto x = tape.leaf(img);
  const auto y = ml::channel_normalize(x, 0.0);
  const auto t = y.to_tensor();
  double mean = 0, sq = 0;
  for (int n = 0; n < 3; ++n)  // channel 1: 3 images x 6 pixels
    for (int i = 0; i < 6; ++i) mean += t.data()[(n * 2 + 1) * 6 + i] / 18;
  for (int n = 0; n < 3; ++n)
    for (int i = 0; i < 6; ++i) sq += std::pow(t.data()[(n * 2 + 1) * 6 + i] - mean, 2) / 18;
  CHECK_THAT(mean, WithinAbs(0.0, 1e-12));
  CHECK_THAT(sq, WithinAbs(1.0, 1e-12));
  // The fused (not recorded) and the recorded backward compute the same gradient.
  const auto loss =
      ml::sum(ml::tanh(ml::channel_normalize(x)) * ml::constant(uniform(rng, {3, 2, 2, 3})));
  ml::GradOptions keep;
  keep.create_graph = true;
  const auto fused = ml::grad(loss, {x})[0].to_tensor();
  const auto recorded = ml::grad(loss, {x}, keep)[0].to_tensor();
  for (std::int64_t i = 0; i < fused.numel(); ++i)
    CHECK_THAT(fused.data()[i], WithinAbs(recorded.data()[i], 1e-12));
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        (void)ml::channel_normalize(tape.constant(Tensor<double>(Shape{1, 3})));
      },
      {"metalearn::channel_normalize", "[1, 3]"});
}

TEST_CASE("batch_norm: fused scale and shift, gradients of x, gamma and beta",
          "[autodiff][grad][second-order]") {
  auto rng = ml::test::make_rng(20);
  const auto gamma = uniform(rng, {2}, 0.5, 2.0), beta = uniform(rng, {2});
  const auto f = [](const Vars& v) { return ml::tanh(ml::batch_norm(v[0], v[1], v[2])); };
  check_both(f, {uniform(rng, {3, 2, 2, 3}, -1.0, 4.0), gamma, beta});
  check_both(f, {uniform(rng, {5, 2}), gamma, beta});
  ml::Tape<double> tape;
  const auto x = tape.leaf(uniform(rng, {3, 2, 2, 3}));
  const auto g = tape.leaf(gamma), b = tape.leaf(beta);
  // Same values as normalize, then scale and shift.
  const auto fused = ml::batch_norm(x, g, b).to_tensor();
  const auto composed = (ml::channel_normalize(x) * ml::reshape(g, Shape{1, 2, 1, 1}) +
                         ml::reshape(b, Shape{1, 2, 1, 1}))
                            .to_tensor();
  for (std::int64_t i = 0; i < fused.numel(); ++i)
    CHECK_THAT(fused.data()[i], WithinAbs(composed.data()[i], 1e-12));
  // The fused (not recorded) and recorded backward rules agree.
  const auto loss =
      ml::sum(ml::tanh(ml::batch_norm(x, g, b)) * ml::constant(uniform(rng, {3, 2, 2, 3})));
  ml::GradOptions keep;
  keep.create_graph = true;
  const auto fast = ml::grad(loss, {x, g, b}), recorded = ml::grad(loss, {x, g, b}, keep);
  for (int k = 0; k < 3; ++k)
    for (std::int64_t i = 0; i < fast[k].numel(); ++i)
      CHECK_THAT(fast[k].value()[i], WithinAbs(recorded[k].value()[i], 1e-12));
  ml::test::check_throws<ml::InvalidArgument>(
      [&] { (void)ml::batch_norm(x, b, tape.leaf(uniform(rng, {3}))); },
      {"metalearn::batch_norm", "[3]", "[2]"});
}

TEST_CASE("batch norm's gradient ops: bn_input_grad and bn_gamma_grad to second order",
          "[autodiff][grad][second-order]") {
  // The recorded backward of batch_norm is made of these two ops, so second-order MAML
  // differentiates them: their fused backward (first order here) and their recorded one
  // (second order here) are both checked against finite differences.
  auto rng = ml::test::make_rng(23);
  const double eps = 1e-5;
  const auto in = [&](const Vars& v) { return ml::tanh(ml::bn_input_grad(v[0], v[1], v[2], eps)); };
  const auto gm = [&](const Vars& v) { return ml::tanh(ml::bn_gamma_grad(v[0], v[1], eps)); };
  for (const Shape& s : {Shape{3, 2, 2, 3}, Shape{5, 2}}) {
    const auto x = uniform(rng, s, -1.0, 4.0), g = uniform(rng, s), gamma = uniform(rng, {2});
    check_both(in, {x, gamma, g});
    check_both(gm, {x, g});
  }
  // Values: bn_input_grad is batch_norm's x-gradient, bn_gamma_grad its gamma-gradient.
  ml::Tape<double> tape;
  const auto x = tape.leaf(uniform(rng, {3, 2, 2, 3})), gamma = tape.leaf(uniform(rng, {2}));
  const auto beta = tape.leaf(uniform(rng, {2})), g = tape.constant(uniform(rng, {3, 2, 2, 3}));
  const auto expected = ml::vjp(ml::batch_norm(x, gamma, beta), {x, gamma}, g);
  const auto dx = ml::bn_input_grad(x, gamma, g, 1e-5).to_tensor();
  const auto dgamma = ml::bn_gamma_grad(x, g, 1e-5).to_tensor();
  for (std::int64_t i = 0; i < dx.numel(); ++i)
    CHECK_THAT(dx.data()[i], WithinAbs(expected[0].value()[i], 1e-12));
  for (std::int64_t i = 0; i < 2; ++i)
    CHECK_THAT(dgamma.data()[i], WithinAbs(expected[1].value()[i], 1e-12));
  ml::test::check_throws<ml::InvalidArgument>(
      [&] { (void)ml::bn_input_grad(x, gamma, beta, 1e-5); },
      {"metalearn::bn_input_grad", "[3, 2, 2, 3]", "[2]"});
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)ml::bn_gamma_grad(x, beta, 1e-5); },
                                              {"metalearn::bn_gamma_grad", "[2]"});
}
