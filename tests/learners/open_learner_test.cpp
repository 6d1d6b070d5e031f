// The open gradient learner: the public inner loop (adapt) with a user loss to second
// order, any model (nested Sequential, two heads), each policy replaced alone, and the new
// algorithms (MAML++, CAVIA, iMAML) against central differences or closed forms.
#include <Eigen/Dense>
#include <cmath>
#include <metalearn/metalearn.hpp>
#include <string>
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
using ml::Var;

namespace {

using ml::test::max_mismatch;
using ml::test::numeric_gradient;
using ml::test::sine_episode;

// The learner's meta-gradient for one episode against central differences of
// theta -> evaluate(net, e, steps).loss (the query loss after adapting a copy).
template <class Learner, class Model>
double meta_gradient_mismatch(Learner& learner, Model& net, const data::Episode<double>& e) {
  std::vector<Tensor<double>> exact;
  learner.meta_gradient(net, {e}, exact);
  return max_mismatch(
      exact, ml::test::numeric_meta_gradient(learner, net, e, learner.options().inner_steps));
}

// Pseudo-Huber loss delta^2 (sqrt(1 + (r / delta)^2) - 1), mean over the rows: a user loss
// the library does not ship, smooth so that finite differences apply.
template <class Scalar>
Var<Scalar> pseudo_huber(const Var<Scalar>& out, const Tensor<Scalar>& target, double delta) {
  const Scalar d = static_cast<Scalar>(delta);
  const Var<Scalar> r = (out - ml::constant(target)) * (Scalar(1) / d);
  return mean(ml::sqrt(square(r) + Scalar(1)) - Scalar(1)) * (d * d);
}

// A task-loss policy written by a user: pseudo-Huber on regression episodes.
struct HuberLoss {
  double delta = 0.5;
  template <class Scalar>
  Var<Scalar> operator()(const Var<Scalar>& out, const data::Episode<Scalar>& e,
                         meta::Split s) const {
    return pseudo_huber(out, s == meta::Split::support ? e.support_targets : e.query_targets,
                        delta);
  }
};

// An inner update written by a user: SGD whose step halves at every inner step.
struct HalvingSgd {
  template <class Scalar>
  std::vector<meta::MetaTensor> meta_tensors(const ml::ParameterList<Scalar>&,
                                             const std::vector<std::size_t>&,
                                             const meta::InnerSetup&) const {
    return {};
  }
  template <class Scalar>
  Var<Scalar> step(const Var<Scalar>& w, const Var<Scalar>& g, std::size_t, int k,
                   const std::vector<Var<Scalar>>&, const meta::InnerSetup& s) const {
    return w - g * static_cast<Scalar>(s.inner_lr * std::pow(0.5, k));
  }
};

// An adaptation set written by a user: the biases only.
struct AdaptBiases {
  template <class Scalar>
  static std::vector<std::size_t> select(const ml::ParameterList<Scalar>& params) {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < params.size(); ++i)
      if (params.name(i).size() >= 4 && params.name(i).substr(params.name(i).size() - 4) == "bias")
        out.push_back(i);
    return out;
  }
};

// A meta-objective that forgets to give a gradient.
struct NoGradient {
  template <class Task>
  void operator()(Task& task) const {
    task.query(task.start());
  }
};

// A meta-objective written by a user: the mean of the query loss before and after the
// inner steps (a model that is good without adaptation too).
struct BeforeAndAfter {
  template <class Task>
  void operator()(Task& task) const {
    auto fast = task.start();
    const auto before = task.query(fast);
    task.adapt(fast, task.inner_steps(), meta::Order::second);
    task.differentiate((before + task.query(fast)) * 0.5);
  }
};

// A model that is not a Sequential: a shared trunk and two heads, whose outputs are stacked
// along the rows ([2N, 1]: head a's rows, then head b's).
struct TwoHeads {
  nn::Sequential<double> trunk, head_a, head_b;
  ml::ParameterList<double> parameters() {
    ml::ParameterList<double> out;
    out.append(trunk.parameters(), "trunk.");
    out.append(head_a.parameters(), "a.");
    out.append(head_b.parameters(), "b.");
    return out;
  }
  ml::ParameterList<double> buffers() { return {}; }
  Var<double> forward(const std::vector<Var<double>>& p, const Var<double>& x) {
    const std::size_t t = trunk.num_parameters(), a = head_a.num_parameters();
    const std::vector<Var<double>> pt(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(t));
    const std::vector<Var<double>> pa(p.begin() + static_cast<std::ptrdiff_t>(t),
                                      p.begin() + static_cast<std::ptrdiff_t>(t + a));
    const std::vector<Var<double>> pb(p.begin() + static_cast<std::ptrdiff_t>(t + a), p.end());
    const Var<double> h = trunk.forward(pt, x);
    return ml::concat(std::vector<Var<double>>{head_a.forward(pa, h), head_b.forward(pb, h)});
  }
};

// Head a fits the targets, head b their negation.
struct TwoHeadLoss {
  template <class Scalar>
  Var<Scalar> operator()(const Var<Scalar>& out, const data::Episode<Scalar>& e,
                         meta::Split s) const {
    const Tensor<Scalar>& y = s == meta::Split::support ? e.support_targets : e.query_targets;
    Tensor<Scalar> both(ml::Shape{2 * y.shape()[0], 1});
    for (std::int64_t i = 0; i < y.numel(); ++i) {
      both.data()[i] = y.data()[i];
      both.data()[y.numel() + i] = -y.data()[i];
    }
    return mse(out, ml::constant(both));
  }
};

}  // namespace

TEST_CASE("adapt: a user loss through the open inner loop, differentiated to second order",
          "[learners][second-order]") {
  auto rng = ml::test::make_rng(90);
  auto net = nn::mlp<double>({1, 6, 1}, rng, nn::Activation::tanh);
  const auto e = sine_episode(rng, 5);
  // theta -> L_query(adapt(theta)): two second-order steps of SGD on the support loss.
  auto f = [&](const std::vector<Var<double>>& theta) {
    const auto xs = ml::constant(e.support_inputs);
    auto support = [&](const auto& model) {
      return pseudo_huber(model.forward(xs), e.support_targets, 0.5);
    };
    meta::AdaptOptions o;
    o.steps = 2;
    const auto fast = meta::adapt(net, theta, support, meta::sgd_step(0.3), o);
    CHECK(fast.steps() == 2);
    return pseudo_huber(fast.forward(ml::constant(e.query_inputs)), e.query_targets, 0.5);
  };
  const auto theta = net.parameters().values();
  const auto first = ml::gradcheck(f, theta);
  INFO(first.message);
  CHECK(first.ok);
  ml::GradcheckOptions o2;
  o2.step = 1e-5;
  const auto second = ml::gradgradcheck(f, theta, o2);
  INFO(second.message);
  CHECK(second.ok);

  // The adapted object is kept, called and adapted further.
  ml::Tape<double> tape;
  auto leaves = tape.leaves(net.parameters().views());
  auto loss = [&](const auto& model) {
    return pseudo_huber(model.forward(ml::constant(e.support_inputs)), e.support_targets, 0.5);
  };
  auto fast = meta::adapt(net, leaves, loss, meta::sgd_step(0.3));
  const double after_one = loss(fast).item();
  fast.adapt(loss, meta::sgd_step(0.3), 3, meta::Order::none);
  CHECK(fast.steps() == 4);
  CHECK(loss(fast).item() < after_one);
  const Tensor<double> y = fast.predict(e.query_inputs);
  CHECK(y.shape() == e.query_targets.shape());
  // A non-scalar support loss is an error naming the function.
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        fast.step([&](const auto& m) { return m.forward(ml::constant(e.support_inputs)); },
                  meta::sgd_step(0.1));
      },
      {"metalearn::meta::Adapted::step", "scalar"});
}

TEST_CASE("GradientLearner: each policy replaced alone, the meta-gradient still exact",
          "[learners][second-order]") {
  auto rng = ml::test::make_rng(91);
  auto net = nn::mlp<double>({1, 8, 8, 1}, rng, nn::Activation::tanh);
  const auto e = sine_episode(rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.05;
  o.inner_steps = 2;
  using meta::AdaptAll;
  using meta::EpisodeLoss;
  using meta::FinalQueryLoss;
  using meta::InnerSgd;
  using meta::Order;
  SECTION("task loss") {
    meta::GradientLearner<InnerSgd, FinalQueryLoss<Order::second>, AdaptAll, HuberLoss, double>
        learner(o, HuberLoss{0.3});
    CHECK(meta_gradient_mismatch(learner, net, e) < 1.0);
  }
  SECTION("inner update") {
    meta::GradientLearner<HalvingSgd, FinalQueryLoss<Order::second>, AdaptAll, EpisodeLoss, double>
        learner(o);
    CHECK(meta_gradient_mismatch(learner, net, e) < 1.0);
    // It is not plain SGD: the second step is half as long.
    std::vector<Tensor<double>> halving, plain;
    learner.meta_gradient(net, {e}, halving);
    meta::BasicMaml<double>(o).meta_gradient(net, {e}, plain);
    CHECK(max_mismatch(halving, plain) > 10.0);
  }
  SECTION("adaptation set") {
    meta::GradientLearner<InnerSgd, FinalQueryLoss<Order::second>, AdaptBiases, EpisodeLoss, double>
        learner(o);
    CHECK(meta_gradient_mismatch(learner, net, e) < 1.0);
  }
  SECTION("meta-objective") {
    meta::GradientLearner<InnerSgd, BeforeAndAfter, AdaptAll, EpisodeLoss, double> learner(o);
    std::vector<Tensor<double>> exact;
    learner.meta_gradient(net, {e}, exact);
    const auto numeric = numeric_gradient(net.parameters(), [&] {
      return 0.5 * (learner.evaluate(net, e, 0).loss + learner.evaluate(net, e, 2).loss);
    });
    CHECK(max_mismatch(exact, numeric) < 1.0);
    meta::GradientLearner<InnerSgd, NoGradient, AdaptAll, EpisodeLoss, double> forgetful(o);
    ml::test::check_throws<ml::StateError>([&] { forgetful.meta_gradient(net, {e}, exact); },
                                           {"without a gradient", "task.differentiate"});
  }
}

TEST_CASE("GradientLearner: any model: a nested Sequential and a two-head model",
          "[learners][second-order]") {
  auto rng = ml::test::make_rng(92);
  const auto e = sine_episode(rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.05;
  o.inner_steps = 2;
  o.threads = 1;
  meta::BasicMaml<double> maml(o);

  // Nested: the same layers as a flat net give the same meta-gradient, bit for bit.
  auto flat = nn::mlp<double>({1, 8, 8, 1}, rng, nn::Activation::tanh);
  nn::Sequential<double> trunk;
  trunk.add(flat[0]).add(flat[1]).add(flat[2]).add(flat[3]);
  nn::Sequential<double> nested{trunk, flat[4]};
  REQUIRE(nested.parameters().size() == flat.parameters().size());
  CHECK(nested.parameters().name(0) == "0.0.weight");
  CHECK(nested.parameters().name(4) == "1.weight");
  CHECK(nested.describe() == "0: Sequential\n  0: " + flat[0].describe() +
                                 "\n  1: Tanh\n  2: " + flat[2].describe() +
                                 "\n  3: Tanh\n1: " + flat[4].describe() + "\n");
  CHECK(nested.batches_tasks());
  std::vector<Tensor<double>> g_flat, g_nested;
  maml.meta_gradient(flat, {e, e}, g_flat);
  maml.meta_gradient(nested, {e, e}, g_nested);
  for (std::size_t p = 0; p < g_flat.size(); ++p)
    CHECK((g_flat[p].array() == g_nested[p].array()).all());
  // A lone Sequential argument copies; it does not nest.
  const nn::Sequential<double> copy{trunk};
  CHECK(copy.size() == trunk.size());
  // ANIL's head is the innermost last layer, also when nested.
  nn::Sequential<double> wrapped;
  wrapped.add(flat);
  CHECK(wrapped.parameters().name(5) == "0.4.bias");
  CHECK(meta::AdaptHead::select(wrapped.parameters()) == std::vector<std::size_t>{4, 5});

  // Two heads on a shared trunk, with a user loss over both: exact meta-gradient, and MAML
  // training lowers the post-adaptation query loss.
  TwoHeads model{nn::Sequential<double>{nn::Linear<double>(1, 8, rng), nn::Tanh<double>{}},
                 nn::mlp<double>({8, 1}, rng), nn::mlp<double>({8, 1}, rng)};
  meta::GradientLearner<meta::InnerSgd, meta::FinalQueryLoss<meta::Order::second>, meta::AdaptAll,
                        TwoHeadLoss, double>
      two(o);
  CHECK(meta_gradient_mismatch(two, model, e) < 1.0);
  o.inner_lr = 0.2;  // a faster learner for the training run
  meta::GradientLearner<meta::InnerSgd, meta::FinalQueryLoss<meta::Order::second>, meta::AdaptAll,
                        TwoHeadLoss, double>
      trained(o);
  ml::optim::Adam<double> adam(trained.meta_parameters(model), {0.01});
  data::SineOptions so;
  so.shots = so.queries = 6;
  data::SineTasks<double> tasks(so);
  auto task_rng = ml::test::make_rng(93);
  std::vector<data::Episode<double>> held;
  for (int i = 0; i < 8; ++i) held.push_back(tasks.sample(task_rng));
  const auto score = [&] {
    double s = 0;
    for (const auto& h : held) s += trained.evaluate(model, h, 2).loss;
    return s / held.size();
  };
  const double before = score();
  for (int step = 0; step < 300; ++step) {
    std::vector<data::Episode<double>> batch;
    for (int t = 0; t < 4; ++t) batch.push_back(tasks.sample(task_rng));
    REQUIRE(trained.meta_step(model, adam, batch).finite);
  }
  const double after = score();
  INFO("before " << before << ", after " << after);
  CHECK(after < 0.75 * before);
}

TEST_CASE("MamlPlusPlus: multi-step loss and per-step rates, meta-gradient to central differences",
          "[learners][second-order]") {
  auto rng = ml::test::make_rng(94);
  auto net = nn::mlp<double>({1, 8, 8, 1}, rng, nn::Activation::tanh);
  const auto e = sine_episode(rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.05;
  o.inner_steps = 3;
  meta::MultiStepLossOptions mo;
  mo.anneal_meta_steps = 10;
  mo.first_order_meta_steps = 2;
  meta::BasicMamlPlusPlus<double> learner(o, meta::MultiStepLoss(mo));

  // The weights: uniform at first, annealed toward the last step, always summing to 1
  // (Antoniou et al.'s get_per_step_loss_importance_vector with our meta-step clock).
  const auto& msl = learner.objective();
  for (double w : msl.weights(3, 0)) CHECK_THAT(w, Catch::Matchers::WithinAbs(1.0 / 3, 1e-15));
  const auto late = msl.weights(3, 10);
  CHECK_THAT(late[0], Catch::Matchers::WithinAbs(0.01, 1e-12));
  CHECK_THAT(late[2], Catch::Matchers::WithinAbs(0.98, 1e-12));
  // Half way: non-final max(1/3 - 5/30, 0.01) = 1/6, final min(1/3 + 5 * 2/30, 0.98) = 2/3.
  const auto mid = msl.weights(3, 5);
  CHECK_THAT(mid[0], Catch::Matchers::WithinAbs(1.0 / 6, 1e-12));
  CHECK_THAT(mid[1], Catch::Matchers::WithinAbs(1.0 / 6, 1e-12));
  CHECK_THAT(mid[2], Catch::Matchers::WithinAbs(2.0 / 3, 1e-12));
  for (std::int64_t at : {0, 3, 9, 10, 50}) {
    double total = 0;
    for (double w : msl.weights(3, at)) total += w;
    CHECK_THAT(total, Catch::Matchers::WithinAbs(1.0, 1e-12));
  }

  ml::test::check_throws<ml::StateError>([&] { learner.evaluate(net, e); },
                                         {"meta_parameters(net)"});
  auto params = learner.meta_parameters(net);
  REQUIRE(params.size() == 12);  // 6 weights, then 6 per-step rate vectors
  CHECK(params.name(6) == "step_rates.0.weight");
  CHECK(params[6].shape() == ml::Shape{3});
  for (std::size_t p = 6; p < 12; ++p)
    for (std::int64_t k = 0; k < 3; ++k)
      params[p].data()[k] =
          0.02 + 0.01 * static_cast<double>((k + static_cast<std::int64_t>(p)) % 4);

  // sum_k w_k L_query(theta_k), from the learner's own adapt (values only).
  const auto objective = [&] {
    const auto w = msl.weights(3, learner.meta_steps());
    double total = 0;
    for (int k = 1; k <= 3; ++k) {
      ml::Tape<double> tape;
      const auto fast = learner.adapt(net, e, k);
      total +=
          w[static_cast<std::size_t>(k - 1)] *
          mse(fast.forward(ml::constant(e.query_inputs)), ml::constant(e.query_targets)).item();
    }
    return total;
  };
  learner.set_meta_steps(5);  // past derivative-order annealing, weights not uniform
  std::vector<Tensor<double>> exact;
  learner.meta_gradient(net, {e}, exact);
  CHECK(max_mismatch(exact, numeric_gradient(params, objective)) < 1.0);
  // Derivative-order annealing: the first meta-steps are first order, so not exact.
  learner.set_meta_steps(1);
  std::vector<Tensor<double>> early;
  learner.meta_gradient(net, {e}, early);
  CHECK(max_mismatch(early, numeric_gradient(params, objective)) > 10.0);
  // meta_step counts; the outer optimizer trains the rates.
  ml::optim::Sgd<double> outer(learner.meta_parameters(net), {0.01});
  const double rate = params[6].data()[0];
  learner.meta_step(net, outer, {e});
  CHECK(learner.meta_steps() == 2);
  CHECK(params[6].data()[0] != rate);

  // Stacked groups give the one-at-a-time meta-gradient (the sinusoid default path).
  std::vector<data::Episode<double>> three{sine_episode(rng), sine_episode(rng), e};
  REQUIRE(meta::stackable(three));
  REQUIRE(net.batches_tasks());
  std::vector<std::vector<Tensor<double>>> per_group(2);
  for (int group : {1, 3}) {
    o.tasks_per_group = group;
    meta::BasicMamlPlusPlus<double> g(o, meta::MultiStepLoss(mo));
    auto gp = g.meta_parameters(net);
    for (std::size_t p = 6; p < 12; ++p) gp[p] = params[p];
    g.set_meta_steps(5);
    g.meta_gradient(net, three, per_group[group == 1 ? 0 : 1]);
  }
  for (std::size_t p = 0; p < per_group[0].size(); ++p)
    for (std::int64_t i = 0; i < per_group[0][p].numel(); ++i)
      CHECK_THAT(per_group[1][p].data()[i],
                 Catch::Matchers::WithinAbs(per_group[0][p].data()[i], 1e-12));
  // Learned rates and a bounded graph do not mix: the early steps' rates would get no
  // gradient. Nor does the multi-step loss, which differentiates every step.
  o.tasks_per_group = 1;
  o.differentiated_steps = 1;
  meta::BasicMamlPlusPlus<double> bounded(o);
  (void)bounded.meta_parameters(net);
  std::vector<Tensor<double>> unused;
  ml::test::check_throws<ml::InvalidArgument>([&] { bounded.meta_gradient(net, {e}, unused); },
                                              {"MultiStepLoss", "differentiated_steps"});
  meta::BasicMetaSgd<double> bounded_sgd(o);
  (void)bounded_sgd.meta_parameters(net);
  ml::test::check_throws<ml::InvalidArgument>([&] { bounded_sgd.meta_gradient(net, {e}, unused); },
                                              {"differentiated_steps", "Meta-SGD"});
}

TEST_CASE("MamlPlusPlus with per-step batch norm: meta-gradient to central differences",
          "[learners][second-order]") {
  auto rng = ml::test::make_rng(97);
  nn::Sequential<double> net{nn::Linear<double>(1, 8, rng), nn::PerStepBatchNorm<double>(8, 2),
                             nn::Tanh<double>{}, nn::Linear<double>(8, 1, rng)};
  for (std::size_t p : {2, 3})
    for (std::int64_t i = 0; i < net.parameters()[p].numel(); ++i)
      net.parameters()[p].data()[i] = ml::uniform(rng, 0.5, 1.5);
  const auto e = sine_episode(rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.05;
  o.inner_steps = 2;
  meta::MultiStepLossOptions mo;
  mo.anneal_meta_steps = 10;
  meta::BasicMamlPlusPlus<double> learner(o, meta::MultiStepLoss(mo));
  auto params = learner.meta_parameters(net);
  learner.set_meta_steps(5);
  const auto& msl = learner.objective();
  const auto objective = [&] {
    const auto w = msl.weights(2, learner.meta_steps());
    double total = 0;
    for (int k = 1; k <= 2; ++k) {
      ml::Tape<double> tape;
      const auto fast = learner.adapt(net, e, k);
      total +=
          w[static_cast<std::size_t>(k - 1)] *
          mse(fast.forward(ml::constant(e.query_inputs)), ml::constant(e.query_targets)).item();
    }
    return total;
  };
  std::vector<Tensor<double>> exact;
  learner.meta_gradient(net, {e}, exact);
  CHECK(max_mismatch(exact, numeric_gradient(params, objective)) < 1.0);
  // Every row gets a meta-gradient: row k is read at step k (support) and after k steps
  // (query).
  for (std::int64_t row = 0; row < 3; ++row) CHECK(std::abs(exact[2].at(row, 0)) > 1e-8);
  // The rows are not adapted in effect: adapting them too changes no output.
  ml::Tape<double> tape;
  const auto theta = tape.leaves(net.parameters().views());
  const auto support = [&](const auto& m) {
    return mse(m.forward(tape.constant(e.support_inputs)), tape.constant(e.support_targets));
  };
  meta::AdaptOptions all, all_but_norm;
  all.steps = all_but_norm.steps = 2;
  all_but_norm.adapted = {0, 1, 4, 5};
  const auto a = meta::adapt(net, theta, support, meta::sgd_step(0.05), all);
  const auto b = meta::adapt(net, theta, support, meta::sgd_step(0.05), all_but_norm);
  const auto ya = a.forward(tape.constant(e.query_inputs)).to_tensor();
  const auto yb = b.forward(tape.constant(e.query_inputs)).to_tensor();
  for (std::int64_t i = 0; i < ya.numel(); ++i)
    CHECK_THAT(ya.data()[i], Catch::Matchers::WithinAbs(yb.data()[i], 1e-12));
}

TEST_CASE("Pretrained: the joint loss at theta, no inner steps, fine-tuned when evaluated",
          "[learners]") {
  auto rng = ml::test::make_rng(98);
  auto net = nn::mlp<double>({1, 8, 1}, rng, nn::Activation::tanh);
  const auto e = sine_episode(rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.05;
  o.inner_steps = 3;  // ignored in training: the baseline does not adapt
  meta::BasicPretrained<double> learner(o);
  std::vector<Tensor<double>> exact;
  const auto s = learner.meta_gradient(net, {e}, exact);
  const auto joint = [&] {
    ml::Tape<double> tape;
    const auto w = tape.leaves(net.parameters().views());
    const double support =
        mse(net.forward(w, tape.constant(e.support_inputs)), tape.constant(e.support_targets))
            .item();
    const double query =
        mse(net.forward(w, tape.constant(e.query_inputs)), tape.constant(e.query_targets)).item();
    return 0.5 * (support + query);
  };
  CHECK(max_mismatch(exact, numeric_gradient(learner.meta_parameters(net), joint)) < 1.0);
  // The reported query loss is at theta itself; evaluation fine-tunes with SGD.
  ml::Tape<double> tape;
  const auto w = tape.leaves(net.parameters().views());
  const double at_theta =
      mse(net.forward(w, tape.constant(e.query_inputs)), tape.constant(e.query_targets)).item();
  CHECK_THAT(s.query_loss, Catch::Matchers::WithinAbs(at_theta, 1e-12));
  CHECK(learner.evaluate(net, e, 0).loss == Approx(at_theta));
  CHECK(learner.evaluate(net, e, 5).loss != Approx(at_theta));
}

TEST_CASE("Cavia: only the context adapts, from zero; meta-gradient to central differences",
          "[learners][second-order]") {
  auto rng = ml::test::make_rng(95);
  nn::Sequential<double> net{nn::Context<double>(2), nn::Linear<double>(3, 8, rng),
                             nn::Tanh<double>{}, nn::Linear<double>(8, 1, rng)};
  const auto e = sine_episode(rng);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.5;
  o.inner_steps = 2;
  meta::BasicCavia<double> cavia(o);
  CHECK(meta::AdaptContext::select(net.parameters()) == std::vector<std::size_t>{0});
  CHECK(meta_gradient_mismatch(cavia, net, e) < 1.0);
  std::vector<Tensor<double>> g;
  cavia.meta_gradient(net, {e}, g);
  CHECK((g[0].array() == 0).all());  // the context's start is not meta-learned
  // Whatever the stored context holds, each task starts at zero.
  net.parameters()[0].array() = 3.0;
  std::vector<Tensor<double>> g_again;
  cavia.meta_gradient(net, {e}, g_again);
  for (std::size_t p = 0; p < g.size(); ++p) CHECK((g[p].array() == g_again[p].array()).all());
  // Adaptation moves the context and lowers the support loss.
  ml::Tape<double> tape;
  const auto fast = cavia.adapt(net, e, 5);
  CHECK(fast.parameters()[0].value().array().abs().sum() > 0);
  const auto support_mse = [&](const auto& model) {
    return mse(model.forward(ml::constant(e.support_inputs)), ml::constant(e.support_targets))
        .item();
  };
  CHECK(support_mse(fast) < support_mse(cavia.adapt(net, e, 0)));
  // Stacked tasks (Context batches tasks: one context row per task) give the one-at-a-time
  // meta-gradient.
  REQUIRE(net.batches_tasks());
  std::vector<data::Episode<double>> three{sine_episode(rng), sine_episode(rng), e};
  REQUIRE(meta::stackable(three));
  std::vector<std::vector<Tensor<double>>> per_group(2);
  for (int group : {1, 3}) {
    o.tasks_per_group = group;
    meta::BasicCavia<double>(o).meta_gradient(net, three, per_group[group == 1 ? 0 : 1]);
  }
  for (std::size_t p = 0; p < per_group[0].size(); ++p)
    for (std::int64_t i = 0; i < per_group[0][p].numel(); ++i)
      CHECK_THAT(per_group[1][p].data()[i],
                 Catch::Matchers::WithinAbs(per_group[0][p].data()[i], 1e-12));
  // A model without context parameters is an error naming the fix.
  auto plain = nn::mlp<double>({1, 8, 1}, rng);
  ml::test::check_throws<ml::InvalidArgument>([&] { cavia.evaluate(plain, e); },
                                              {"AdaptContext", "nn::Context"});
}

TEST_CASE("Imaml: the implicit meta-gradient equals the closed form on a quadratic",
          "[learners][second-order]") {
  // y = x w (no bias), MSE: L_s(w) = 1/n |X w - y|^2 with Hessian H = 2/n X^T X. The proximal
  // minimiser is w* = (H + lambda I)^-1 (2/n X^T y + lambda theta), d w*/d theta = lambda
  // (H + lambda I)^-1, so the meta-gradient is lambda (H + lambda I)^-1 grad L_q(w*).
  auto rng = ml::test::make_rng(96);
  nn::Sequential<double> net{nn::Linear<double>(3, 1, rng, false)};
  data::Episode<double> e;
  e.support_inputs = ml::test::uniform(rng, ml::Shape{6, 3}, -1.0, 1.0);
  e.support_targets = ml::test::uniform(rng, ml::Shape{6, 1}, -1.0, 1.0);
  e.query_inputs = ml::test::uniform(rng, ml::Shape{5, 3}, -1.0, 1.0);
  e.query_targets = ml::test::uniform(rng, ml::Shape{5, 1}, -1.0, 1.0);
  meta::GradientLearnerOptions o;
  o.inner_lr = 0.1;
  o.inner_steps = 400;  // converged to rounding
  meta::ImplicitGradientOptions io;
  io.lambda = 2.0;
  io.cg_steps = 3;  // the number of adapted values: CG is exact
  meta::BasicImaml<double> imaml(o, meta::ImplicitGradient(io));
  std::vector<Tensor<double>> g;
  imaml.meta_gradient(net, {e}, g);

  const Eigen::MatrixXd X = e.support_inputs.matrix(), Xq = e.query_inputs.matrix();
  const Eigen::VectorXd y = e.support_targets.matrix(), yq = e.query_targets.matrix();
  const Eigen::VectorXd theta = net.parameters()[0].matrix();
  const Eigen::MatrixXd A = 2.0 / 6 * X.transpose() * X + 2.0 * Eigen::MatrixXd::Identity(3, 3);
  const Eigen::VectorXd w = A.ldlt().solve(2.0 / 6 * X.transpose() * y + 2.0 * theta);
  const Eigen::VectorXd gq = 2.0 / 5 * Xq.transpose() * (Xq * w - yq);
  const Eigen::VectorXd expected = 2.0 * A.ldlt().solve(gq);
  for (int i = 0; i < 3; ++i)
    CHECK_THAT(g[0].data()[i], Catch::Matchers::WithinAbs(expected(i), 1e-10));
  // evaluate() and adapt() run the same proximal inner loop: it reaches w*.
  {
    ml::Tape<double> tape;
    const auto adapted = imaml.adapt(net, e, 400);
    for (int i = 0; i < 3; ++i)
      CHECK_THAT(adapted.parameters()[0].value()[i], Catch::Matchers::WithinAbs(w(i), 1e-10));
  }
  // It is not MAML's gradient through the steps of the unregularised loss.
  std::vector<Tensor<double>> maml;
  meta::BasicMaml<double>(o).meta_gradient(net, {e}, maml);
  CHECK(std::abs(maml[0].data()[0] - g[0].data()[0]) > 1e-4);
  // Learned step sizes get no implicit gradient: refused, naming the fix.
  meta::GradientLearner<meta::LearnedStepSizes, meta::ImplicitGradient, meta::AdaptAll,
                        meta::EpisodeLoss, double>
      bad(o);
  (void)bad.meta_parameters(net);
  ml::test::check_throws<ml::InvalidArgument>([&] { bad.meta_gradient(net, {e}, g); },
                                              {"ImplicitGradient", "InnerSgd"});
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        meta::ImplicitGradientOptions zero;
        zero.lambda = 0;
        meta::ImplicitGradient bad_lambda(zero);
      },
      {"lambda"});
}
