// MAML and first-order MAML: meta-gradients against finite differences, the first-order
// formula, thread-count independence, and a short deterministic convergence run.
#include <cmath>
#include <metalearn/metalearn.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/catch.hpp"
#include "support/errors.hpp"
#include "support/meta_gradient.hpp"
#include "support/seed.hpp"

namespace ml = metalearn;
namespace nn = metalearn::nn;
namespace meta = metalearn::meta;
namespace data = metalearn::data;
using ml::Tensor;

namespace {

using ml::test::max_mismatch;
using ml::test::numeric_meta_gradient;
using ml::test::sine_episode;

}  // namespace

TEST_CASE("Maml: the meta-gradient matches finite differences for 1 and 2 inner steps",
          "[learners][second-order]") {
  auto rng = ml::test::make_rng(70);
  auto net = nn::mlp<double>({1, 8, 8, 1}, rng, nn::Activation::tanh);
  const auto e = sine_episode(rng);
  for (int steps : {1, 2}) {
    INFO("inner steps: " << steps);
    meta::GradientLearnerOptions o;
    o.inner_lr = 0.05;
    o.inner_steps = steps;
    meta::BasicMaml<double> maml(o);
    meta::BasicFomaml<double> fomaml(o);
    std::vector<Tensor<double>> exact, first;
    maml.meta_gradient(net, {e}, exact);
    fomaml.meta_gradient(net, {e}, first);
    const auto numeric = numeric_meta_gradient(maml, net, e, steps);
    CHECK(max_mismatch(exact, numeric) < 1.0);
    // First-order MAML drops the second-order term: on a nonlinear net it must differ.
    CHECK(max_mismatch(first, numeric) > 10.0);
  }
}

TEST_CASE("Maml: a conv net with large activations: the meta-gradient along random directions",
          "[learners][second-order][memory]") {
  // conv -> batch norm -> max-pool -> relu -> linear on activations of 64 KiB and more, so
  // every memory path runs: counted blocks, the activations Sequential frees, batch norm's
  // gradient ops recorded in the inner steps, results written over consumed cotangents in
  // the last sweep. Checked along 3 random directions v: <meta-gradient, v> against
  // central differences of theta -> L_query(adapt(theta)) along v (evaluate() adapts).
  ml::Rng rng{81};
  nn::Conv2dOptions same;
  same.padding = 1;
  nn::Sequential<double> net{nn::Conv2d<double>(1, 16, rng, same),
                             nn::BatchNorm<double>(16),
                             nn::MaxPool2d<double>(2),
                             nn::Relu<double>{},
                             nn::Flatten<double>{},
                             nn::Linear<double>(16 * 12 * 12, 3, rng)};
  auto data_rng = ml::test::make_rng(81);
  data::Episode<double> e;  // 3-way 2-shot, 24x24 images: conv outputs 432 KiB on 6 images
  e.ways = 3;
  e.shots = 2;
  e.queries = 2;
  e.support_inputs = Tensor<double>(ml::Shape{6, 1, 24, 24});
  e.query_inputs = Tensor<double>(ml::Shape{6, 1, 24, 24});
  for (auto* t : {&e.support_inputs, &e.query_inputs})
    for (std::int64_t i = 0; i < t->numel(); ++i) t->data()[i] = ml::normal(data_rng);
  for (int i = 0; i < 6; ++i) {
    e.support_labels.push_back(i / 2);
    e.query_labels.push_back(i / 2);
  }
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.02;
  o.inner_steps = 2;
  meta::BasicMaml<double> maml(o);
  meta::BasicFomaml<double> fomaml(o);
  std::vector<Tensor<double>> exact, first;
  maml.meta_gradient(net, {e}, exact);
  fomaml.meta_gradient(net, {e}, first);
  auto params = maml.meta_parameters(net);
  for (int trial = 0; trial < 3; ++trial) {
    std::vector<Tensor<double>> v;
    double along = 0, along_first = 0;
    double norm = 0;
    for (std::size_t p = 0; p < params.size(); ++p) {
      v.push_back(ml::test::uniform(data_rng, params[p].shape(), -1.0, 1.0));
      for (std::int64_t i = 0; i < v[p].numel(); ++i) norm += v[p].data()[i] * v[p].data()[i];
    }
    for (std::size_t p = 0; p < params.size(); ++p)  // a unit direction
      for (std::int64_t i = 0; i < v[p].numel(); ++i) {
        v[p].data()[i] /= std::sqrt(norm);
        along += exact[p].data()[i] * v[p].data()[i];
        along_first += first[p].data()[i] * v[p].data()[i];
      }
    const double h = 1e-6;
    const auto loss_at = [&](double t) {
      for (std::size_t p = 0; p < params.size(); ++p)
        for (std::int64_t i = 0; i < v[p].numel(); ++i) params[p].data()[i] += t * v[p].data()[i];
      const double l = maml.evaluate(net, e, o.inner_steps).loss;
      for (std::size_t p = 0; p < params.size(); ++p)
        for (std::int64_t i = 0; i < v[p].numel(); ++i) params[p].data()[i] -= t * v[p].data()[i];
      return l;
    };
    const double numeric = (loss_at(h) - loss_at(-h)) / (2 * h);
    INFO("direction " << trial << ": analytic " << along << ", numeric " << numeric
                      << ", first-order " << along_first);
    CHECK(std::abs(along - numeric) < 1e-6 + 1e-5 * std::abs(numeric));
    CHECK(std::abs(along_first - numeric) > 1e-3 * std::abs(numeric));  // second order matters
  }
}

TEST_CASE("Fomaml: equals the query gradient at the adapted weights", "[learners]") {
  auto rng = ml::test::make_rng(71);
  auto net = nn::mlp<double>({1, 8, 1}, rng, nn::Activation::tanh);
  const auto e = sine_episode(rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.1;
  o.inner_steps = 2;
  meta::BasicFomaml<double> fomaml(o);
  std::vector<Tensor<double>> grads;
  fomaml.meta_gradient(net, {e}, grads);
  // By hand: two plain SGD steps, then the query gradient at the result.
  ml::Tape<double> tape;
  auto w = tape.leaves(net.parameters().views());
  for (int k = 0; k < 2; ++k) {
    const auto g = ml::grad(
        ml::mse(net.forward(w, tape.constant(e.support_inputs)), tape.constant(e.support_targets)),
        w);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = tape.leaf((w[i] - g[i] * 0.1).to_tensor());
  }
  const auto expected = ml::grad(
      ml::mse(net.forward(w, tape.constant(e.query_inputs)), tape.constant(e.query_targets)), w);
  for (std::size_t p = 0; p < grads.size(); ++p)
    for (std::int64_t i = 0; i < grads[p].numel(); ++i)
      CHECK_THAT(grads[p].data()[i], WithinAbs(expected[p].value()[i], 1e-12));
}

TEST_CASE("Maml: meta-steps are bit-identical for 1 and 2 threads", "[learners][threads]") {
  auto rng = ml::test::make_rng(72);
  const auto net0 = nn::mlp<float>({1, 16, 16, 1}, rng);
  std::vector<data::Episode<float>> batch;
  data::SineTasks<float> tasks;
  for (int t = 0; t < 7; ++t) batch.push_back(tasks.sample(rng));
  std::vector<std::vector<Tensor<float>>> results;
  for (int threads : {1, 2}) {
    auto net = net0;
    meta::GradientLearnerOptions o;
    o.threads = threads;
    meta::Maml maml(o);
    ml::optim::Adam<float> adam(net.parameters());
    for (int s = 0; s < 3; ++s) maml.meta_step(net, adam, batch);
    results.push_back(net.parameters().values());
  }
  for (std::size_t p = 0; p < results[0].size(); ++p)
    CHECK((results[0][p].array() == results[1][p].array()).all());
}

TEST_CASE("run_tasks: persistent workers, nested and concurrent calls, errors in task order",
          "[learners][threads]") {
  const auto square_all = [](std::size_t tasks, std::size_t threads) {
    return meta::run_tasks<std::size_t>(tasks, threads, [](std::size_t t) { return t * t; });
  };
  for (int round = 0; round < 3; ++round)  // the pool's threads are reused across calls
    for (std::size_t threads : {std::size_t{1}, std::size_t{2}, std::size_t{3}}) {
      const auto out = square_all(7, threads);
      for (std::size_t t = 0; t < 7; ++t) CHECK(out[t] == t * t);
    }
  // A task that runs tasks of its own (on the pool's threads or the caller's) and two user
  // threads running meta-steps at once: neither waits for the other or for itself.
  const auto nested = meta::run_tasks<std::size_t>(4, 2, [&](std::size_t t) {
    std::size_t sum = 0;
    for (const std::size_t v : square_all(5, 2)) sum += v;
    return sum + t;
  });
  for (std::size_t t = 0; t < 4; ++t) CHECK(nested[t] == 30 + t);
  std::vector<std::size_t> a, b;
  std::thread other([&] { a = square_all(9, 2); });
  b = square_all(9, 2);
  other.join();
  CHECK(a == b);
  CHECK(a.size() == 9);
  // The first failing task in task order is the one reported, after all have run.
  std::vector<int> ran(6, 0);
  try {
    (void)meta::run_tasks<int>(6, 2, [&](std::size_t t) {
      ran[t] = 1;
      if (t == 3 || t == 4) throw ml::InvalidArgument("task " + std::to_string(t));
      return 0;
    });
    FAIL("no exception");
  } catch (const ml::InvalidArgument& e) {
    CHECK(std::string(e.what()) == "task 3");
  }
  CHECK(ran == std::vector<int>(6, 1));
  // A plan's threads: tasks at once, the rest to each task's ops; one task at a time when
  // the tasks may not run together.
  const auto budgets = [](std::size_t tasks, meta::ThreadPlan plan) {
    return meta::run_tasks<std::size_t>(tasks, plan,
                                        [](std::size_t) { return ml::intra_op_threads(); });
  };
  CHECK(budgets(2, {4}) == std::vector<std::size_t>(2, 2));
  CHECK(budgets(1, {3}) == std::vector<std::size_t>(1, 3));
  CHECK(budgets(5, {2}) == std::vector<std::size_t>(5, 1));
  CHECK(budgets(5, {2, false}) == std::vector<std::size_t>(5, 2));
  CHECK(ml::intra_op_threads() == 1);
}

TEST_CASE("Maml: classification episodes, accuracy, and errors", "[learners][error]") {
  auto rng = ml::test::make_rng(73);
  // Two well-separated Gaussian classes in 2-D, per episode.
  data::Episode<float> e;
  e.ways = 2;
  e.shots = 4;
  e.queries = 4;
  e.support_inputs = Tensor<float>(ml::Shape{8, 2});
  e.query_inputs = Tensor<float>(ml::Shape{8, 2});
  for (int i = 0; i < 8; ++i) {
    const int label = i / 4;
    for (int d = 0; d < 2; ++d) {
      e.support_inputs.at(i, d) = static_cast<float>((label ? 2.0 : -2.0) + 0.3 * ml::normal(rng));
      e.query_inputs.at(i, d) = static_cast<float>((label ? 2.0 : -2.0) + 0.3 * ml::normal(rng));
    }
    e.support_labels.push_back(label);
    e.query_labels.push_back(label);
  }
  e.classes = {0, 1};
  auto net = nn::mlp<float>({2, 8, 2}, rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.5;
  meta::Maml maml(o);
  const auto r = maml.evaluate(net, e, 20);
  CHECK(r.accuracy == 1.0);
  CHECK(std::isnan(r.mse));
  std::vector<Tensor<float>> grads;
  CHECK(maml.meta_gradient(net, {e}, grads).tasks == 1);
  ml::test::check_throws<ml::InvalidArgument>(
      [&] { (void)maml.meta_gradient(net, {}, grads); },
      {"metalearn::meta::GradientLearner::meta_gradient", "empty"});
  o.inner_lr = -1;
  ml::test::check_throws<ml::InvalidArgument>([&] { meta::Maml bad(o); }, {"inner_lr"});
  auto wrong = nn::mlp<float>({3, 2}, rng);  // input width 3, data has 2
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)maml.meta_gradient(wrong, {e}, grads); },
                                              {"metalearn::nn::Linear::forward", "[8, 2]"});
}

TEST_CASE("Maml: a short sinusoid run improves post-adaptation MSE", "[learners][convergence]") {
  ml::Rng rng{ml::test::base_seed() + 74};
  auto net = nn::mlp<float>({1, 40, 40, 1}, rng);
  data::SineTasks<float> tasks;
  meta::GradientLearnerOptions o;
  o.threads = 1;
  meta::Maml maml(o);
  ml::optim::AdamOptions fast_adam;
  fast_adam.lr = 3e-3;  // a few hundred steps instead of Finn's 70,000 at 1e-3
  ml::optim::Adam<float> adam(net.parameters(), fast_adam);
  const auto test_mse = [&] {
    ml::Rng eval_rng{123};
    double total = 0;
    for (int t = 0; t < 50; ++t) total += maml.evaluate(net, tasks.sample(eval_rng), 1).mse;
    return total / 50;
  };
  const double before = test_mse();
  for (int step = 0; step < 400; ++step) {
    std::vector<data::Episode<float>> batch;
    for (int t = 0; t < 10; ++t) batch.push_back(tasks.sample(rng));
    REQUIRE(maml.meta_step(net, adam, batch).finite);
  }
  const double after = test_mse();
  INFO("MSE after one inner step: before " << before << ", after " << after);
  CHECK(after < 0.6 * before);
}

TEST_CASE("Anil: adapts the head only; its meta-gradient matches finite differences",
          "[learners][second-order]") {
  auto rng = ml::test::make_rng(75);
  auto net = nn::mlp<double>({1, 8, 8, 1}, rng, nn::Activation::tanh);
  const auto e = sine_episode(rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.05;
  o.inner_steps = 2;
  meta::BasicAnil<double> anil(o);
  CHECK(meta::AdaptHead::select(net.parameters()) == std::vector<std::size_t>{4, 5});
  std::vector<Tensor<double>> exact;
  anil.meta_gradient(net, {e}, exact);
  CHECK(max_mismatch(exact, numeric_meta_gradient(anil, net, e, 2)) < 1.0);
  // The body is not adapted: predictions after adaptation equal the body's features fed to
  // a head adapted by hand.
  ml::Tape<double> tape;
  auto w = tape.leaves(net.parameters().views());
  for (int k = 0; k < 2; ++k) {
    const std::vector<ml::Var<double>> head{w[4], w[5]};
    const auto g = ml::grad(
        ml::mse(net.forward(w, tape.constant(e.support_inputs)), tape.constant(e.support_targets)),
        head);
    w[4] = tape.leaf((w[4] - g[0] * 0.05).value());
    w[5] = tape.leaf((w[5] - g[1] * 0.05).value());
  }
  const auto expected = net.forward(w, tape.constant(e.query_inputs)).to_tensor();
  const auto got = anil.predict(net, e, 2);
  for (std::int64_t i = 0; i < got.numel(); ++i)
    CHECK_THAT(got.data()[i], WithinAbs(expected.data()[i], 1e-12));
}

TEST_CASE("Reptile: the update is epsilon (theta' - theta)", "[learners]") {
  auto rng = ml::test::make_rng(76);
  auto net = nn::mlp<double>({1, 8, 1}, rng, nn::Activation::tanh);
  const auto e = sine_episode(rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.02;
  o.inner_steps = 3;
  meta::BasicReptile<double> reptile(o);
  const auto theta = net.parameters().values();
  // theta' by hand: 3 SGD steps on the support set, then 3 on the query set.
  ml::Tape<double> tape;
  auto w = tape.leaves(net.parameters().views());
  for (const auto* set : {&e.support_inputs, &e.query_inputs})
    for (int k = 0; k < 3; ++k) {
      const auto& y = set == &e.support_inputs ? e.support_targets : e.query_targets;
      const auto g = ml::grad(ml::mse(net.forward(w, tape.constant(*set)), tape.constant(y)), w);
      for (std::size_t i = 0; i < w.size(); ++i) w[i] = tape.leaf((w[i] - g[i] * 0.02).value());
    }
  const double epsilon = 0.25;
  ml::optim::Sgd<double> outer(net.parameters(), {epsilon});
  reptile.meta_step(net, outer, {e});
  const auto updated = net.parameters().values();
  for (std::size_t p = 0; p < theta.size(); ++p)
    for (std::int64_t i = 0; i < theta[p].numel(); ++i)
      CHECK_THAT(
          updated[p].data()[i],
          WithinAbs(theta[p].data()[i] + epsilon * (w[p].value()[i] - theta[p].data()[i]), 1e-12));
}

TEST_CASE("MetaSgd: weight and step-size meta-gradients match finite differences",
          "[learners][second-order]") {
  auto rng = ml::test::make_rng(77);
  auto net = nn::mlp<double>({1, 8, 8, 1}, rng, nn::Activation::tanh);
  const auto e = sine_episode(rng);
  for (int steps : {1, 2}) {
    INFO("inner steps: " << steps);
    meta::GradientLearnerOptions o;
    o.inner_lr = 0.05;
    o.inner_steps = steps;
    meta::BasicMetaSgd<double> metasgd(o);
    ml::test::check_throws<ml::StateError>([&] { metasgd.evaluate(net, e, 1); },
                                           {"Meta-SGD", "meta_parameters"});
    auto params = metasgd.meta_parameters(net);
    REQUIRE(params.size() == 12);  // 6 weights, then 6 step sizes
    CHECK(params.name(6) == "step_size.0.weight");
    CHECK(params[11].shape() == params[5].shape());
    CHECK(params[7].data()[0] == 0.05);
    // Distinct step sizes per element, so a mix-up between elements would show.
    for (std::size_t p = 6; p < 12; ++p)
      for (std::int64_t i = 0; i < params[p].numel(); ++i)
        params[p].data()[i] =
            0.02 + 0.01 * static_cast<double>((i + static_cast<std::int64_t>(p)) % 5);
    std::vector<Tensor<double>> exact;
    metasgd.meta_gradient(net, {e}, exact);
    REQUIRE(exact.size() == 12);
    CHECK(max_mismatch(exact, numeric_meta_gradient(metasgd, net, e, steps)) < 1.0);
  }
}

TEST_CASE(
    "MetaSgd: the outer optimizer trains the step sizes; with them all equal to alpha it "
    "is MAML",
    "[learners]") {
  auto rng = ml::test::make_rng(78);
  auto net = nn::mlp<double>({1, 8, 1}, rng, nn::Activation::tanh);
  const auto e = sine_episode(rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.03;
  meta::BasicMetaSgd<double> metasgd(o);
  const meta::BasicMaml<double> maml(o);
  const auto params = metasgd.meta_parameters(net);
  std::vector<Tensor<double>> g_sgd, g_maml;
  metasgd.meta_gradient(net, {e}, g_sgd);
  maml.meta_gradient(net, {e}, g_maml);
  for (std::size_t p = 0; p < g_maml.size(); ++p)
    for (std::int64_t i = 0; i < g_maml[p].numel(); ++i)
      CHECK_THAT(g_sgd[p].data()[i], WithinAbs(g_maml[p].data()[i], 1e-12));
  const Tensor<double> alpha_before = params[4];
  ml::optim::Sgd<double> outer(metasgd.meta_parameters(net), {0.1});
  metasgd.meta_step(net, outer, {e});
  double moved = 0;
  for (std::int64_t i = 0; i < alpha_before.numel(); ++i)
    moved += std::abs(params[4].data()[i] - alpha_before.data()[i]);
  CHECK(moved > 0);
  // The same model keeps its step sizes: a second call does not reset them.
  CHECK(metasgd.meta_parameters(net)[4].data()[0] == params[4].data()[0]);
}

TEST_CASE("MetaSgd: an optimizer over net.parameters() is an error naming meta_parameters",
          "[learners][error]") {
  auto rng = ml::test::make_rng(79);
  auto net = nn::mlp<double>({1, 8, 1}, rng, nn::Activation::tanh);
  const auto e = sine_episode(rng);
  meta::BasicMetaSgd<double> metasgd;
  ml::optim::Adam<double> adam(net.parameters());  // the step sizes are missing
  // Before the step sizes exist (meta_parameters never called):
  ml::test::check_throws<ml::StateError>([&] { metasgd.meta_step(net, adam, {e}); },
                                         {"meta_gradient", "meta_parameters(net)"});
  (void)metasgd.meta_parameters(net);  // they exist now, but the optimizer lacks them
  const auto before = net.parameters().values();
  ml::test::check_throws<ml::InvalidArgument>(
      [&] { metasgd.meta_step(net, adam, {e}); },
      {"metalearn::meta::meta_step", "holds 4 tensors but the learner trains 8",
       "learner.meta_parameters(net)"});
  const auto after = net.parameters().values();
  for (std::size_t p = 0; p < before.size(); ++p)
    CHECK((before[p].array() == after[p].array()).all());  // nothing was updated
}

TEST_CASE("Maml: differentiated_steps bounds the graph to the last steps",
          "[learners][second-order]") {
  auto rng = ml::test::make_rng(79);
  auto net = nn::mlp<double>({1, 8, 8, 1}, rng, nn::Activation::tanh);
  const auto e = sine_episode(rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.05;
  o.inner_steps = 3;
  meta::BasicMaml<double> full(o);
  std::vector<Tensor<double>> exact, same, bounded;
  full.meta_gradient(net, {e}, exact);
  o.differentiated_steps = 3;  // all of them: the exact meta-gradient
  meta::BasicMaml<double>(o).meta_gradient(net, {e}, same);
  for (std::size_t p = 0; p < exact.size(); ++p)
    for (std::int64_t i = 0; i < exact[p].numel(); ++i)
      CHECK(same[p].data()[i] == exact[p].data()[i]);
  o.differentiated_steps = 1;
  meta::BasicMaml<double>(o).meta_gradient(net, {e}, bounded);

  // By hand: two first-order steps (values only), then theta + (theta_2 - theta) and one
  // recorded step; the meta-gradient through that last step only.
  ml::Tape<double> tape;
  const auto theta = tape.leaves(net.parameters().views());
  std::vector<Tensor<double>> w = net.parameters().values();
  for (int k = 0; k < 2; ++k) {
    ml::Tape<double> scratch;
    const auto wk = scratch.leaves(std::vector<Tensor<double>>(w));
    const auto g = ml::grad(ml::mse(net.forward(wk, scratch.constant(e.support_inputs)),
                                    scratch.constant(e.support_targets)),
                            wk);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = (wk[i] - g[i] * 0.05).to_tensor();
  }
  std::vector<ml::Var<double>> fast;
  for (std::size_t i = 0; i < w.size(); ++i) {
    Tensor<double> d = w[i];
    d.array() -= net.parameters()[i].array();
    fast.push_back(theta[i] + tape.constant(d));
  }
  const auto g = ml::grad(
      ml::mse(net.forward(fast, tape.constant(e.support_inputs)), tape.constant(e.support_targets)),
      fast, {true});
  for (std::size_t i = 0; i < fast.size(); ++i) fast[i] = fast[i] - g[i] * 0.05;
  const auto expected = ml::grad(
      ml::mse(net.forward(fast, tape.constant(e.query_inputs)), tape.constant(e.query_targets)),
      theta);
  double differs = 0;
  for (std::size_t p = 0; p < bounded.size(); ++p)
    for (std::int64_t i = 0; i < bounded[p].numel(); ++i) {
      CHECK_THAT(bounded[p].data()[i], WithinAbs(expected[p].value()[i], 1e-12));
      differs = std::max(differs, std::abs(bounded[p].data()[i] - exact[p].data()[i]));
    }
  CHECK(differs > 1e-6);  // not silently the full meta-gradient
}

namespace {

// Three-way classification tasks over 4-D points (class c near +-2 on axis c).
data::Episode<double> blob_episode(ml::Rng& rng) {
  data::Episode<double> e;
  e.ways = 3;
  e.shots = 2;
  e.queries = 2;
  e.support_inputs = Tensor<double>(ml::Shape{6, 4});
  e.query_inputs = Tensor<double>(ml::Shape{6, 4});
  for (int i = 0; i < 6; ++i) {
    const int label = i / 2;
    for (int d = 0; d < 4; ++d) {
      const double centre = d == label ? 2.0 : 0.0;
      e.support_inputs.at(i, d) = centre + ml::normal(rng);
      e.query_inputs.at(i, d) = centre + ml::normal(rng);
    }
    e.support_labels.push_back(label);
    e.query_labels.push_back(label);
  }
  return e;
}

// The meta-gradient and statistics with tasks run in stacked groups (`tasks_per_group` 3 on
// a 7-task batch: groups of 3, 2, 2) and one at a time agree to rounding.
template <class Learner>
void check_grouping_agrees(nn::Sequential<double> net,
                           const std::vector<data::Episode<double>>& batch,
                           meta::GradientLearnerOptions o) {
  std::vector<std::vector<Tensor<double>>> grads(2);
  std::vector<meta::StepStats> stats;
  for (int per_group : {1, 3}) {
    o.tasks_per_group = per_group;
    Learner learner(o);
    (void)learner.meta_parameters(net);  // Meta-SGD's step sizes
    stats.push_back(learner.meta_gradient(net, batch, grads[stats.size()]));
  }
  CHECK(stats[1].tasks == stats[0].tasks);
  CHECK_THAT(stats[1].support_loss, WithinRel(stats[0].support_loss, 1e-12));
  CHECK_THAT(stats[1].query_loss, WithinRel(stats[0].query_loss, 1e-12));
  CHECK_THAT(stats[1].query_metric, WithinRel(stats[0].query_metric, 1e-12));
  REQUIRE(grads[1].size() == grads[0].size());
  for (std::size_t p = 0; p < grads[0].size(); ++p) {
    REQUIRE(grads[1][p].shape() == grads[0][p].shape());
    for (std::int64_t i = 0; i < grads[0][p].numel(); ++i)
      CHECK_THAT(grads[1][p].data()[i], WithinAbs(grads[0][p].data()[i], 1e-12));
  }
}

}  // namespace

TEST_CASE("GradientLearner: tasks stacked in groups give the one-at-a-time meta-gradient",
          "[learners][second-order]") {
  auto rng = ml::test::make_rng(80);
  std::vector<data::Episode<double>> sines, blobs;
  for (int t = 0; t < 7; ++t) sines.push_back(sine_episode(rng));
  for (int t = 0; t < 7; ++t) blobs.push_back(blob_episode(rng));
  const auto mlp = nn::mlp<double>({1, 8, 8, 1}, rng, nn::Activation::tanh);
  const auto classifier = nn::mlp<double>({4, 8, 3}, rng, nn::Activation::tanh);
  REQUIRE(mlp.batches_tasks());
  REQUIRE(meta::stackable(sines));
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.05;
  o.threads = 1;
  for (int steps : {1, 2}) {
    INFO("inner steps: " << steps);
    o.inner_steps = steps;
    check_grouping_agrees<meta::BasicMaml<double>>(mlp, sines, o);
    check_grouping_agrees<meta::BasicMaml<double>>(classifier, blobs, o);
    check_grouping_agrees<meta::BasicFomaml<double>>(mlp, sines, o);
    check_grouping_agrees<meta::BasicReptile<double>>(mlp, sines, o);
    check_grouping_agrees<meta::BasicMetaSgd<double>>(mlp, sines, o);
    check_grouping_agrees<meta::BasicAnil<double>>(mlp, sines, o);
  }
  o.inner_steps = 3;
  o.differentiated_steps = 1;  // two first-order steps, then one recorded
  check_grouping_agrees<meta::BasicMaml<double>>(mlp, sines, o);
  check_grouping_agrees<meta::BasicMaml<double>>(classifier, blobs, o);
}

TEST_CASE("GradientLearner: which meta-batches and models are stacked", "[learners][error]") {
  auto rng = ml::test::make_rng(81);
  std::vector<data::Episode<double>> batch{sine_episode(rng, 5), sine_episode(rng, 5)};
  CHECK(meta::stackable(batch));
  batch.push_back(sine_episode(rng, 6));  // a different support size: run one at a time
  CHECK_FALSE(meta::stackable(batch));
  // Near-equal consecutive groups, the larger first, whatever the threads: 7 by 3 is 3, 2, 2;
  // 25 by 7 is 7, 6, 6, 6 (equal shares for 2 or 4 threads or ranks); 25 by 5 is five 5s.
  const auto sizes = [&](std::size_t tasks, std::size_t per_group) {
    std::vector<std::size_t> out;
    const std::vector<data::Episode<double>> same(tasks, batch[0]);
    for (const auto& g : meta::group_tasks(same, per_group)) out.push_back(g.tasks());
    return out;
  };
  CHECK(sizes(7, 3) == std::vector<std::size_t>{3, 2, 2});
  CHECK(sizes(25, 7) == std::vector<std::size_t>{7, 6, 6, 6});
  CHECK(sizes(25, 5) == std::vector<std::size_t>{5, 5, 5, 5, 5});
  CHECK(sizes(25, 13) == std::vector<std::size_t>{13, 12});
  CHECK(sizes(3, 7) == std::vector<std::size_t>{3});
  CHECK(sizes(2, 1) == std::vector<std::size_t>{1, 1});
  CHECK(sizes(0, 3).empty());
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)meta::group_tasks(batch, 0); },
                                              {"group_tasks", "per_group >= 1"});
  const auto groups =
      meta::group_tasks(std::vector<data::Episode<double>>(batch.begin(), batch.begin() + 2), 2);
  REQUIRE(groups.size() == 1);
  CHECK(groups[0].stacked());
  CHECK(groups[0].episode().support_inputs.shape() == ml::Shape{2, 5, 1});
  CHECK(groups[0].episode().query_targets.at(1, 4, 0) == batch[1].query_targets.at(4, 0));
  // Mixed sizes still give the exact meta-gradient (each task alone).
  auto net = nn::mlp<double>({1, 8, 1}, rng, nn::Activation::tanh);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.05;
  check_grouping_agrees<meta::BasicMaml<double>>(net, batch, o);
  // Convolutional models take no task axis.
  CHECK_FALSE(nn::conv4<double>({}, rng).batches_tasks());
  o.tasks_per_group = 0;
  ml::test::check_throws<ml::InvalidArgument>([&] { meta::Maml bad(o); }, {"tasks_per_group"});
  // Linear names both accepted layouts.
  nn::Sequential<double> layer{nn::Linear<double>(3, 2, rng)};
  ml::Tape<double> tape;
  const auto w = tape.leaves(layer.parameters().views());
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        (void)layer.forward(w, tape.constant(Tensor<double>(ml::Shape{2, 2, 2, 3})));
      },
      {"metalearn::nn::Linear::forward", "[tasks, N, 3]"});
}
