// Layers, Sequential, builders and initialisers: shapes, values, errors, and first- and
// second-order gradient checks in double (with respect to parameters and inputs).
#include <cmath>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/errors.hpp"
#include "support/gradcheck.hpp"
#include "support/seed.hpp"

namespace ml = metalearn;
namespace nn = metalearn::nn;
using ml::Shape;
using ml::Tensor;
using Vars = std::vector<ml::Var<double>>;

namespace {
// Checks a whole model: inputs are the parameters followed by x; f runs the forward pass.
void check_model(nn::Sequential<double>& net, const Tensor<double>& x,
                 nn::Mode mode = nn::Mode::train) {
  std::vector<Tensor<double>> inputs = net.parameters().values();
  inputs.push_back(x);
  auto f = [&net, mode](const Vars& v) {
    const Vars params(v.begin(), v.end() - 1);
    return net.forward(params, v.back(), mode);
  };
  ml::test::check_gradients(f, inputs);
  ml::test::check_second_order(f, inputs);
}
}  // namespace

TEST_CASE("Linear: forward values, shapes and gradients", "[nn][grad][second-order]") {
  auto rng = ml::test::make_rng(40);
  nn::Sequential<double> net{nn::Linear<double>(3, 2, rng), nn::Tanh<double>{}};
  check_model(net, ml::test::uniform(rng, {4, 3}));
  nn::Linear<double> layer(3, 2, rng);
  ml::Tape<double> tape;
  const auto w = tape.leaf(layer.weight()), b = tape.leaf(layer.bias());
  const Vars p{w, b};
  const auto x = ml::test::uniform(rng, {4, 3});
  const Eigen::MatrixXd expected =
      (x.matrix() * layer.weight().matrix()).rowwise() + layer.bias().matrix().row(0);
  const Eigen::MatrixXd got =
      layer.forward(p.data(), tape.constant(x), nn::Mode::train).value().matrix();
  CHECK((got - expected).cwiseAbs().maxCoeff() < 1e-12);
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        (void)layer.forward(p.data(), tape.constant(Tensor<double>(Shape{4, 5})), nn::Mode::train);
      },
      {"metalearn::nn::Linear::forward", "[4, 5]", "[N, 3]"});
  ml::test::check_throws<ml::InvalidArgument>([&] { nn::Linear<double>(0, 2, rng); },
                                              {"metalearn::nn::Linear", "positive"});
}

TEST_CASE("Conv2d, pooling and Flatten layers: shapes and gradients", "[nn][grad][second-order]") {
  auto rng = ml::test::make_rng(41);
  nn::Conv2dOptions same;
  same.padding = 1;
  nn::Sequential<double> net{nn::Conv2d<double>(2, 3, rng, same), nn::Tanh<double>{},
                             nn::MaxPool2d<double>(2), nn::Flatten<double>{},
                             nn::Linear<double>(3 * 2 * 2, 2, rng)};
  check_model(net, ml::test::uniform(rng, {2, 2, 4, 5}));
  nn::Sequential<double> avg{nn::Conv2d<double>(1, 2, rng), nn::AvgPool2d<double>(2),
                             nn::GlobalAvgPool2d<double>{}};
  check_model(avg, ml::test::uniform(rng, {2, 1, 6, 6}));
  ml::Tape<double> tape;
  const auto w = tape.leaves(net.parameters().views());
  CHECK(net.forward(w, tape.constant(ml::test::uniform(rng, {5, 2, 4, 5}))).shape() == Shape{5, 2});
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        (void)net.forward(w, tape.constant(Tensor<double>(Shape{1, 3, 4, 4})));
      },
      {"metalearn::nn::Conv2d::forward", "[1, 3, 4, 4]"});
}

TEST_CASE("BatchNorm: batch statistics, gradients, running statistics",
          "[nn][grad][second-order]") {
  auto rng = ml::test::make_rng(42);
  SECTION("normalises each channel over batch (and space)") {
    nn::BatchNorm<double> bn(3);
    ml::Tape<double> tape;
    const auto p = tape.leaves(
        std::vector<Tensor<double>>{Tensor<double>(Shape{3}, 1.0), Tensor<double>(Shape{3}, 0.0)});
    const auto x = ml::test::uniform(rng, {4, 3, 2, 2}, -3.0, 5.0);
    const auto y = bn.forward(p.data(), tape.constant(x), nn::Mode::train).to_tensor();
    for (int c = 0; c < 3; ++c) {
      double m = 0, v = 0;
      for (int n = 0; n < 4; ++n)
        for (int i = 0; i < 4; ++i) m += y.data()[(n * 3 + c) * 4 + i] / 16;
      for (int n = 0; n < 4; ++n)
        for (int i = 0; i < 4; ++i) v += std::pow(y.data()[(n * 3 + c) * 4 + i] - m, 2) / 16;
      CHECK_THAT(m, WithinAbs(0.0, 1e-12));
      CHECK_THAT(v, WithinAbs(1.0, 1e-4));  // eps = 1e-5 shrinks it slightly
    }
  }
  SECTION("gradients, dense and image inputs") {
    nn::Sequential<double> dense{nn::Linear<double>(3, 4, rng), nn::BatchNorm<double>(4),
                                 nn::Tanh<double>{}};
    check_model(dense, ml::test::uniform(rng, {5, 3}));
    nn::Sequential<double> image{nn::Conv2d<double>(1, 2, rng), nn::BatchNorm<double>(2),
                                 nn::Tanh<double>{}};
    check_model(image, ml::test::uniform(rng, {3, 1, 4, 4}));
  }
  SECTION("running statistics: PyTorch's update rule, used in eval mode") {
    nn::BatchNormOptions o;
    o.running_stats = true;
    o.momentum = 0.5;
    nn::Sequential<double> net{nn::BatchNorm<double>(2, o)};
    REQUIRE(net.buffers().size() == 2);
    CHECK(net.buffers().name(0) == "0.running_mean");
    const Tensor<double> x(Shape{3, 2}, {1, 10, 2, 20, 6, 30});
    ml::Tape<double> tape;
    const auto w = tape.leaves(net.parameters().views());
    (void)net.forward(w, tape.constant(x), nn::Mode::train);
    const auto& rm = net.buffers()[0];
    const auto& rv = net.buffers()[1];
    CHECK_THAT(rm.at(0), WithinAbs(0.5 * 0 + 0.5 * 3.0, 1e-12));
    CHECK_THAT(rv.at(0), WithinAbs(0.5 * 1 + 0.5 * 7.0, 1e-12));  // unbiased variance of 1, 2, 6
    const auto y = net.forward(w, tape.constant(x), nn::Mode::eval).to_tensor();
    CHECK_THAT(y.at(2, 0), WithinAbs((6 - 1.5) / std::sqrt(4.0 + 1e-5), 1e-12));
    check_model(net, x, nn::Mode::eval);
  }
}

TEST_CASE("PerStepBatchNorm: the row of the inner step, gradients, errors",
          "[nn][grad][second-order]") {
  auto rng = ml::test::make_rng(48);
  nn::PerStepBatchNorm<double> per_step(3, 2);
  CHECK(per_step.steps() == 2);
  nn::Sequential<double> net{nn::Linear<double>(2, 3, rng), per_step, nn::Tanh<double>{}};
  auto params = net.parameters();
  REQUIRE(params.size() == 4);
  CHECK(params.name(2) == "1.weight");
  CHECK(params[2].shape() == Shape{3, 3});  // steps 0, 1, 2
  for (std::size_t p : {2, 3})
    for (std::int64_t i = 0; i < 9; ++i) params[p].data()[i] = ml::uniform(rng, -1.0, 2.0);
  const auto x = ml::test::uniform(rng, {5, 2});
  SECTION("step k uses row k; steps past the last use the last row") {
    for (int step : {0, 1, 2, 5}) {
      const ml::nn::InnerStepGuard at(step);
      CHECK(nn::inner_step() == step);
      const std::int64_t row = std::min(step, 2);
      nn::Sequential<double> plain{nn::Linear<double>(2, 3, rng), nn::BatchNorm<double>(3),
                                   nn::Tanh<double>{}};
      auto pp = plain.parameters();
      pp[0] = params[0];
      pp[1] = params[1];
      for (std::int64_t c = 0; c < 3; ++c) {
        pp[2].data()[c] = params[2].at(row, c);
        pp[3].data()[c] = params[3].at(row, c);
      }
      ml::Tape<double> tape;
      const auto got = net.forward(tape.leaves(params.views()), tape.constant(x)).to_tensor();
      const auto want = plain.forward(tape.leaves(pp.views()), tape.constant(x)).to_tensor();
      for (std::int64_t i = 0; i < got.numel(); ++i)
        CHECK_THAT(got.data()[i], WithinAbs(want.data()[i], 1e-12));
    }
    CHECK(nn::inner_step() == 0);  // the guard restores
  }
  SECTION("gradients at step 1") {
    const ml::nn::InnerStepGuard at(1);
    check_model(net, x);
    nn::Sequential<double> image{nn::Conv2d<double>(1, 2, rng), nn::PerStepBatchNorm<double>(2, 3),
                                 nn::Tanh<double>{}};
    check_model(image, ml::test::uniform(rng, {3, 1, 4, 4}));
  }
  SECTION("errors") {
    ml::test::check_throws<ml::InvalidArgument>([] { nn::PerStepBatchNorm<double>(3, 0); },
                                                {"PerStepBatchNorm", "steps", "got 0"});
    nn::BatchNormOptions running;
    running.running_stats = true;
    ml::test::check_throws<ml::InvalidArgument>(
        [&] { nn::PerStepBatchNorm<double>(3, 2, running); },
        {"PerStepBatchNorm", "running_stats"});
    ml::Tape<double> tape;
    const auto w = tape.leaves(params.views());
    ml::test::check_throws<ml::InvalidArgument>(
        [&] {
          (void)per_step.forward(w.data() + 2, tape.constant(Tensor<double>(Shape{4, 2})),
                                 nn::Mode::train);
        },
        {"PerStepBatchNorm::forward", "[4, 2]", "[N, 3]"});
  }
}

TEST_CASE("Sequential: names, order, copies and errors", "[nn][shape][error]") {
  auto rng = ml::test::make_rng(43);
  auto net = nn::mlp<double>({1, 40, 40, 1}, rng);
  auto params = net.parameters();
  REQUIRE(params.size() == 6);
  CHECK(params.name(0) == "0.weight");
  CHECK(params.name(5) == "4.bias");
  CHECK(params.numel() == 40 + 40 + 1600 + 40 + 40 + 1);
  CHECK(params.select("4.").size() == 2);
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)params.select("9."); },
                                              {"select", "'9.'"});
  nn::Sequential<double> copy = net;
  copy.parameters()[0].data()[0] += 1.0;
  CHECK(copy.parameters()[0].data()[0] != net.parameters()[0].data()[0]);  // deep copy
  ml::Tape<double> tape;
  auto w = tape.leaves(params.views());
  w.pop_back();
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        (void)net.forward(w, tape.constant(Tensor<double>(Shape{2, 1})));
      },
      {"metalearn::nn::Sequential::forward", "5 parameters", "expected 6"});
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)nn::mlp<double>({3}, rng); },
                                              {"metalearn::nn::mlp"});
}

TEST_CASE("Sequential: frees the activations no backward rule reads, gradients unchanged",
          "[nn][memory][second-order]") {
  // conv -> batch norm -> max-pool -> relu with values of 64 KiB and more (blocks of their
  // own). The batch norm output (max-pool's backward reads no value) and the pool output
  // (relu reads its own output) are freed by forward; the conv output (batch norm reads
  // it) and the relu output stay.
  ml::Rng rng{31};
  nn::Conv2dOptions same;
  same.kernel = 3;
  same.padding = 1;
  nn::Sequential<double> net{nn::Conv2d<double>(2, 8, rng, same),
                             nn::BatchNorm<double>(8),
                             nn::MaxPool2d<double>(2),
                             nn::Relu<double>{},
                             nn::Flatten<double>{},
                             nn::Linear<double>(8 * 8 * 8, 3, rng)};
  auto data_rng = ml::test::make_rng(31);
  const auto x = ml::test::uniform(data_rng, {16, 2, 16, 16});  // conv output: 256 KiB
  ml::Tape<double> tape;
  const auto w = tape.leaves(net.parameters().views());
  const auto xs = tape.constant(x);
  const std::int32_t first = tape.size();
  const auto y = net.forward(w, xs);
  const auto& storage = ml::detail::thread_tape<double>();
  int freed = 0, kept = 0;
  for (std::int32_t i = first; i < tape.size(); ++i) {
    const std::string op = storage.node(i).op;
    if (op == "batch_norm" || op == "max_pool2d") freed += storage.value_freed(i);
    if (op == "conv2d" || op == "relu") kept += !storage.value_freed(i);
  }
  CHECK(freed == 2);
  CHECK(kept == 2);
  // First- and second-order gradients are those of the same layers applied one by one,
  // bit for bit.
  const auto manual = [&] {
    ml::Var<double> h = xs;
    std::size_t offset = 0;
    for (std::size_t l = 0; l < net.size(); ++l) {
      h = net[l].forward(w.data() + offset, h, nn::Mode::train);
      offset += net[l].num_parameters();
    }
    return h;
  }();
  const auto second_order = [&](const ml::Var<double>& out) {
    const auto g = ml::grad(ml::sum(ml::square(out)), w, {true});
    ml::Var<double> norm = ml::sum(ml::square(g[0]));
    for (std::size_t k = 1; k < g.size(); ++k) norm = norm + ml::sum(ml::square(g[k]));
    auto h = ml::grad(norm, w);
    h.insert(h.end(), g.begin(), g.end());
    return h;
  };
  // A sweep that is not recorded writes batch norm's and relu's input gradients over the
  // cotangents they consume (result_over_grad_output): the same values as the recorded
  // sweep, which keeps every value.
  const auto loss = ml::sum(ml::square(y));
  const auto pooled = ml::grad(loss, w), recorded = ml::grad(loss, w, {true});
  for (std::size_t k = 0; k < w.size(); ++k)
    for (std::int64_t i = 0; i < w[k].numel(); ++i)
      CHECK_THAT(pooled[k].value()[i], WithinAbs(recorded[k].value()[i], 1e-10));
  const auto ours = second_order(y), reference = second_order(manual);
  REQUIRE(ours.size() == reference.size());
  for (std::size_t k = 0; k < ours.size(); ++k)
    for (std::int64_t i = 0; i < ours[k].numel(); ++i)
      CHECK(ours[k].value()[i] == reference[k].value()[i]);
}

namespace {
// A layer that keeps its input Var for later (here: for a loss term on it), which the old
// Sequential forbade: it freed the activations between layers by hand.
template <class Scalar>
class Tap : public nn::detail::Cloneable<Tap<Scalar>, Scalar> {
 public:
  std::string describe() const override { return "Tap"; }
  ml::Var<Scalar> forward(const ml::Var<Scalar>*, const ml::Var<Scalar>& x, nn::Mode) override {
    kept = x;
    return x * Scalar(1);
  }
  ml::Var<Scalar> kept;
};
}  // namespace

TEST_CASE("Sequential: a layer may keep its input Var; values and gradients stay right",
          "[nn][memory][second-order]") {
  ml::Rng rng{32};
  nn::Conv2dOptions same;
  same.kernel = 3;
  same.padding = 1;
  nn::Sequential<double> net{nn::Conv2d<double>(2, 8, rng, same),
                             nn::BatchNorm<double>(8),
                             Tap<double>{},
                             nn::MaxPool2d<double>(2),
                             nn::Relu<double>{},
                             nn::Flatten<double>{},
                             nn::Linear<double>(8 * 8 * 8, 3, rng)};
  auto data_rng = ml::test::make_rng(32);
  const auto x = ml::test::uniform(data_rng, {16, 2, 16, 16});  // values of 256 KiB
  ml::Tape<double> tape;
  const auto w = tape.leaves(net.parameters().views());
  const auto xs = tape.constant(x);
  const auto y = net.forward(w, xs);
  // The batch norm output, which only max-pool consumes and which the old Sequential freed,
  // is held by the Tap layer: readable, and part of the loss.
  const ml::Var<double> tapped = static_cast<Tap<double>&>(net[2]).kept;
  const std::size_t conv_params = net[0].num_parameters();
  const auto bn = net[1].forward(w.data() + conv_params,
                                 net[0].forward(w.data(), xs, nn::Mode::train), nn::Mode::train);
  for (std::int64_t i = 0; i < bn.numel(); i += 97) CHECK(tapped.value()[i] == bn.value()[i]);
  const auto loss = ml::sum(ml::square(y)) + ml::sum(ml::square(tapped));
  const auto g = ml::grad(loss, w, {true});
  const auto g_plain = ml::grad(loss, w);
  // The same loss written without Sequential (every value held to the end).
  ml::Var<double> h = xs;
  std::size_t offset = 0;
  std::vector<ml::Var<double>> all;
  for (std::size_t l = 0; l < net.size(); ++l) {
    h = net[l].forward(w.data() + offset, h, nn::Mode::train);
    all.push_back(h);
    offset += net[l].num_parameters();
  }
  const auto reference = ml::grad(ml::sum(ml::square(h)) + ml::sum(ml::square(all[1])), w);
  for (std::size_t k = 0; k < w.size(); ++k)
    for (std::int64_t i = 0; i < w[k].numel(); ++i) {
      CHECK(g_plain[k].value()[i] == reference[k].value()[i]);
      CHECK_THAT(g[k].value()[i], WithinAbs(reference[k].value()[i], 1e-10));
    }
}

TEST_CASE("conv4: the standard backbones have the published shapes", "[nn][shape]") {
  auto rng = ml::test::make_rng(44);
  ml::Tape<float> tape;
  const auto run = [&](nn::Sequential<float>& net, Shape in) {
    const auto w = tape.leaves(net.parameters().views());
    return net.forward(w, tape.constant(Tensor<float>(in, 0.5f))).shape();
  };
  nn::Conv4Options omniglot;  // 1x28x28, 64 filters, 5 ways
  auto a = nn::conv4<float>(omniglot, rng);
  CHECK(run(a, Shape{2, 1, 28, 28}) == Shape{2, 5});
  CHECK(a.parameters().numel() == (64 * 9 + 64) + 3 * (64 * 64 * 9 + 64) + 4 * 128 + 64 * 5 + 5);
  nn::Conv4Options mini;
  mini.in_channels = 3;
  mini.filters = 32;
  mini.image_size = 84;
  auto b = nn::conv4<float>(mini, rng);
  CHECK(run(b, Shape{1, 3, 84, 84}) == Shape{1, 5});
  CHECK(b.parameters()[b.parameters().size() - 2].shape() == Shape{32 * 5 * 5, 5});
  nn::Conv4Options strided = omniglot;
  strided.strided = true;
  strided.outputs = 20;
  auto c = nn::conv4<float>(strided, rng);
  CHECK(run(c, Shape{2, 1, 28, 28}) == Shape{2, 20});
  nn::Conv4Options embed = omniglot;
  embed.embedding_only = true;
  auto d = nn::conv4<float>(embed, rng);
  CHECK(run(d, Shape{3, 1, 28, 28}) == Shape{3, 64});
}

TEST_CASE("conv4: gradients and second order through the whole backbone",
          "[nn][grad][second-order]") {
  auto rng = ml::test::make_rng(45);
  nn::Conv4Options tiny;
  tiny.filters = 2;
  tiny.image_size = 16;
  tiny.outputs = 3;
  auto net = nn::conv4<double>(tiny, rng);
  check_model(net, ml::test::uniform(rng, {2, 1, 16, 16}));
}

TEST_CASE("init: reproducible draws with the documented statistics", "[nn]") {
  Tensor<double> a(Shape{200, 100}), b(Shape{200, 100});
  ml::Rng r1{7}, r2{7};
  nn::init::kaiming_normal(a, 100, r1);
  nn::init::kaiming_normal(b, 100, r2);
  CHECK(a.array().isApprox(b.array()));
  const double std = std::sqrt((a.array() - a.array().mean()).square().mean());
  CHECK_THAT(std, WithinRel(std::sqrt(2.0 / 100), 0.02));
  nn::init::xavier_uniform(a, 100, 300, r1);
  CHECK(a.array().abs().maxCoeff() <= std::sqrt(6.0 / 400));
  nn::init::truncated_normal(a, 1.0, 0.5, r1);
  CHECK(a.array().minCoeff() >= 0.0);
  CHECK(a.array().maxCoeff() <= 2.0);
  nn::init::constant(a, 3.0);
  CHECK(a.array().minCoeff() == 3.0);
  ml::test::check_throws<ml::InvalidArgument>([&] { nn::init::kaiming_uniform(a, 0.0, r1); },
                                              {"kaiming_uniform"});
}

TEST_CASE("nn::lstm_step: one step by hand, twice differentiable", "[nn][grad][second-order]") {
  // One hidden unit, two sequences (columns): gates rows i, f, g, o.
  const Tensor<double> gates(Shape{4, 2}, {0.3, -1.0, 0.5, 0.2, -0.4, 0.9, 1.2, -0.7});
  const Tensor<double> cell(Shape{1, 2}, {0.6, -0.2});
  ml::Tape<double> tape;
  const auto s = nn::lstm_step(tape.leaf(gates.view()), tape.leaf(cell.view()));
  const auto sig = [](double x) { return 1 / (1 + std::exp(-x)); };
  for (int n = 0; n < 2; ++n) {
    const double* g = gates.data();
    const double c = sig(g[2 + n]) * cell.data()[n] + sig(g[0 + n]) * std::tanh(g[4 + n]);
    CHECK_THAT(s.cell.value()[n], Catch::Matchers::WithinAbs(c, 1e-12));
    CHECK_THAT(s.hidden.value()[n],
               Catch::Matchers::WithinAbs(sig(g[6 + n]) * std::tanh(c), 1e-12));
  }
  for (const bool hidden : {true, false}) {
    const auto f = [hidden](const Vars& x) {
      const auto next = nn::lstm_step(x[0], x[1]);
      return hidden ? next.hidden : next.cell;
    };
    ml::test::check_gradients(f, {gates, cell});
    ml::test::check_second_order(f, {gates, cell});
  }
  ml::test::check_throws<ml::InvalidArgument>(
      [&] { nn::lstm_step(tape.leaf(gates.view()), tape.leaf(gates.view())); },
      {"lstm_step", "[4 h, n]"});
}
