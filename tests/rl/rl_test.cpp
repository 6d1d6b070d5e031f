// Meta-reinforcement learning: distributions, returns and GAE by hand, the baseline, the
// environments' formulas and determinism, the policy-gradient surrogate against the
// likelihood-ratio estimator and a bandit's closed-form gradient, MAML-RL's meta-gradient
// against central differences, TRPO's trust region, and training through the trainer.
#include <cmath>
#include <cstdio>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/errors.hpp"
#include "support/seed.hpp"

namespace ml = metalearn;
namespace nn = metalearn::nn;
namespace meta = metalearn::meta;
namespace rl = metalearn::rl;
using ml::Shape;
using ml::Tensor;
using ml::Var;

namespace {

// A categorical policy that ignores its input: its one parameter is the K logits.
struct LogitsPolicy {
  using distribution = rl::Categorical;
  Tensor<double> logits;
  ml::ParameterList<double> parameters() {
    ml::ParameterList<double> p;
    p.add("logits", logits);
    return p;
  }
  ml::ParameterList<double> buffers() { return {}; }
  Var<double> forward(const std::vector<Var<double>>& params, const Var<double>& x) {
    const std::int64_t k = logits.numel();
    return ml::broadcast_to(ml::reshape(params[0], Shape{1, k}), Shape{x.shape()[0], k});
  }
};

using Gaussian = rl::GaussianPolicy<nn::Sequential<double>>;

Gaussian small_gaussian(std::uint64_t seed) {
  ml::Rng rng(seed);
  rl::GaussianPolicyOptions o;
  o.init_std = 0.5;
  return Gaussian(nn::mlp<double>({2, 6, 2}, rng, nn::Activation::tanh), 2, o);
}

// The small meta-gradient checks' options: `steps` inner steps at 0.3, 3 episodes, 1 thread.
rl::MamlRlOptions small_options(int steps) {
  rl::MamlRlOptions o;
  o.inner_lr = 0.3;
  o.inner_steps = steps;
  o.episodes = 3;
  o.threads = 1;
  return o;
}

rl::Navigation2D short_navigation() {
  rl::Navigation2DOptions o;
  o.horizon = 4;
  return rl::Navigation2D(o);
}

Tensor<double> gaussian_outputs(ml::Rng& rng, std::int64_t n, std::int64_t a) {
  Tensor<double> t(Shape{2 * n, a});
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = ml::uniform(rng, -0.8, 0.8);  // log-stds in the lower half as well
  return t;
}

}  // namespace

TEST_CASE(
    "DiagGaussian and Categorical: log-probabilities and KL by formula, derivatives "
    "against finite differences to second order",
    "[rl]") {
  auto rng = ml::test::make_rng(900);
  const Tensor<double> out = gaussian_outputs(rng, 3, 2), old = gaussian_outputs(rng, 3, 2);
  const Tensor<double> act = ml::test::uniform(rng, Shape{3, 2});
  ml::Tape<double> tape;
  const auto lp = rl::DiagGaussian::log_prob(ml::constant(out), act).to_tensor();
  const auto kl = rl::DiagGaussian::kl(old, ml::constant(out)).item();
  double kl_hand = 0;
  for (std::int64_t i = 0; i < 3; ++i) {
    double l = 0;
    for (std::int64_t j = 0; j < 2; ++j) {
      const double mu = out.matrix()(i, j), ls = out.matrix()(3 + i, j);
      const double z = (act.matrix()(i, j) - mu) / std::exp(ls);
      l += -0.5 * z * z - ls - 0.5 * std::log(2 * M_PI);
      const double mo = old.matrix()(i, j), so = std::exp(old.matrix()(3 + i, j)),
                   sn = std::exp(ls);
      kl_hand += std::log(sn / so) + (so * so + (mo - mu) * (mo - mu)) / (2 * sn * sn) - 0.5;
    }
    CHECK(lp.data()[i] == Approx(l).epsilon(1e-12));
  }
  CHECK(kl == Approx(kl_hand / 3).epsilon(1e-12));
  CHECK(rl::DiagGaussian::kl(out, ml::constant(out)).item() == Approx(0).margin(1e-14));

  const auto gauss = [&](const std::vector<Var<double>>& x) {
    return rl::DiagGaussian::log_prob(x[0], act) + rl::DiagGaussian::kl(old, x[0]);
  };
  ml::GradcheckOptions second;
  second.step = 1e-5;
  CHECK(ml::gradcheck(gauss, {out}));
  CHECK(ml::gradgradcheck(gauss, {out}, second));

  const Tensor<double> logits = ml::test::uniform(rng, Shape{4, 3});
  const Tensor<double> old_logits = ml::test::uniform(rng, Shape{4, 3});
  const Tensor<double> arms(Shape{4, 1}, std::vector<double>{0, 2, 1, 2});
  const auto clp = rl::Categorical::log_prob(ml::constant(logits), arms).to_tensor();
  double ckl = 0;
  for (std::int64_t i = 0; i < 4; ++i) {
    const auto row = logits.matrix().row(i).array();
    const double lse = std::log(row.exp().sum());
    CHECK(
        clp.data()[i] ==
        Approx(logits.matrix()(i, static_cast<std::int64_t>(arms.data()[i])) - lse).epsilon(1e-12));
    const auto orow = old_logits.matrix().row(i).array();
    const double olse = std::log(orow.exp().sum());
    for (std::int64_t k = 0; k < 3; ++k)
      ckl += std::exp(orow[k] - olse) * ((orow[k] - olse) - (row[k] - lse));
  }
  CHECK(rl::Categorical::kl(old_logits, ml::constant(logits)).item() ==
        Approx(ckl / 4).epsilon(1e-12));
  const auto cat = [&](const std::vector<Var<double>>& x) {
    return rl::Categorical::log_prob(x[0], arms) + rl::Categorical::kl(old_logits, x[0]);
  };
  CHECK(ml::gradcheck(cat, {logits}));
  CHECK(ml::gradgradcheck(cat, {logits}, second));
}

TEST_CASE("Discounted returns and GAE match a hand computation", "[rl]") {
  rl::Matrix r(3, 2), v(3, 2);
  r << 1, 0,  //
      2, 1,   //
      3, -1;
  v << 0.5, 0.1,  //
      1.0, 0.2,   //
      1.5, 0.3;
  const double g = 0.9, l = 0.8;
  const rl::Matrix ret = rl::discounted_returns(r, g);
  CHECK(ret(2, 0) == Approx(3));
  CHECK(ret(1, 0) == Approx(2 + 0.9 * 3));
  CHECK(ret(0, 0) == Approx(1 + 0.9 * 2 + 0.81 * 3));
  CHECK(ret(0, 1) == Approx(0 + 0.9 * 1 + 0.81 * -1));
  // Column 0 by hand: deltas d2 = 3 - 1.5, d1 = 2 + 0.9*1.5 - 1, d0 = 1 + 0.9*1 - 0.5.
  const double d2 = 1.5, d1 = 2.35, d0 = 1.4;
  const rl::Matrix a = rl::gae(r, v, g, l);
  CHECK(a(2, 0) == Approx(d2));
  CHECK(a(1, 0) == Approx(d1 + 0.72 * d2));
  CHECK(a(0, 0) == Approx(d0 + 0.72 * d1 + 0.72 * 0.72 * d2));
  // lambda = 1: the returns minus the values.
  const rl::Matrix mc = rl::gae(r, v, g, 1.0);
  CHECK((mc - (ret - v)).cwiseAbs().maxCoeff() < 1e-12);
  ml::test::check_throws<ml::InvalidArgument>([&] { rl::gae(r, rl::Matrix(2, 2), g, l); },
                                              {"metalearn::rl::gae", "[2, 2]", "[3, 2]"});
}

TEST_CASE("LinearFeatureBaseline: returns linear in its features are fitted exactly", "[rl]") {
  const std::int64_t h = 5, e = 3;
  rl::Matrix obs(h * e, 1), ret(h, e);
  for (std::int64_t t = 0; t < h; ++t)
    for (std::int64_t k = 0; k < e; ++k) {
      const double s = 0.1 * static_cast<double>(k + 1) + 0.05 * static_cast<double>(t);
      const double u = static_cast<double>(t) / 100.0;
      obs(t * e + k, 0) = s;
      ret(t, k) = 2.0 - 3.0 * s + 0.5 * s * s + 40.0 * u;
    }
  rl::LinearFeatureBaseline b(1e-12);
  b.fit(obs, ret);
  CHECK((b.predict(obs, h, e) - ret).cwiseAbs().maxCoeff() < 1e-6);
}

TEST_CASE("Environments: dynamics by formula; rollouts the same bits for the same seed", "[rl]") {
  const rl::Navigation2D nav;
  const rl::Navigation2D::task_type goal{0.3, -0.2};
  ml::Rng rng(1);
  rl::Matrix obs = nav.reset(goal, 2, rng), act(2, 2);
  act << 0.05, 0.5,  //
      -1.0, 0.02;
  const auto r = nav.step(goal, obs, act, rng);
  CHECK(obs(0, 0) == 0.05);
  CHECK(obs(0, 1) == 0.1);  // clipped
  CHECK(obs(1, 0) == -0.1);
  CHECK(r[0] == Approx(-std::hypot(0.05 - 0.3, 0.1 + 0.2)));
  ml::test::check_throws<ml::InvalidArgument>([&] { nav.step(goal, obs, rl::Matrix(2, 3), rng); },
                                              {"Navigation2D::step", "[2, 3]"});

  const rl::PointMass pm;
  const rl::PointMass::task_type heavy{2.0, 0.5};
  rl::Matrix s = pm.reset(heavy, 1, rng), f(1, 2);
  f << 1.0, -3.0;
  pm.step(heavy, s, f, rng);
  CHECK(s(0, 2) == Approx(0.1 * 0.5));   // v = dt F/m
  CHECK(s(0, 3) == Approx(0.1 * -0.5));  // force clipped to -1
  CHECK(s(0, 0) == Approx(0.1 * 0.05));

  const rl::BernoulliBandit bandit;
  const rl::BernoulliBandit::task_type sure{{0.0, 1.0, 0.0, 0.0, 0.0}};
  rl::Matrix o = bandit.reset(sure, 2, rng), arm(2, 1);
  arm << 1, 0;
  const auto pay = bandit.step(sure, o, arm, rng);
  CHECK(pay[0] == 1.0);
  CHECK(pay[1] == 0.0);
  arm << 5, 0;
  ml::test::check_throws<ml::InvalidArgument>([&] { bandit.step(sure, o, arm, rng); },
                                              {"BernoulliBandit::step", "out of range"});

  auto policy = small_gaussian(3);
  const auto run = [&](std::uint64_t seed) {
    ml::Rng g(seed);
    ml::Tape<double> tape;
    meta::Adapted<Gaussian, double> fast(policy, tape.leaves(policy.parameters().views()));
    return rl::rollout<rl::DiagGaussian, double>(
        nav, goal, [&](const Tensor<double>& x) { return fast.predict(x); }, 3, g);
  };
  const auto a = run(5), b = run(5), c = run(6);
  CHECK(a.actions.shape() == Shape{300, 2});
  CHECK((a.actions.array() == b.actions.array()).all());
  CHECK((a.rewards.array() == b.rewards.array()).all());
  CHECK(!(a.actions.array() == c.actions.array()).all());
  CHECK(a.mean_return() == Approx(a.rewards.sum() / 3));
}

TEST_CASE(
    "reinforce_loss: its gradient is the likelihood-ratio estimator, whose mean is the "
    "bandit's closed-form policy gradient",
    "[rl]") {
  const std::vector<double> p{0.2, 0.9, 0.5};
  const rl::BernoulliBandit bandit(rl::BanditOptions{3});
  const rl::BernoulliBandit::task_type task{p};
  LogitsPolicy policy;
  policy.logits = Tensor<double>(Shape{3}, std::vector<double>{0.3, -0.4, 0.1});
  const std::int64_t n = 20000;
  ml::Rng rng(11);
  ml::Tape<double> tape;
  const auto theta = tape.leaves(policy.parameters().views());
  meta::Adapted<LogitsPolicy, double> fast(policy, theta);
  auto r = rl::rollout<rl::Categorical, double>(
      bandit, task, [&](const Tensor<double>& x) { return fast.predict(x); }, n, rng);
  r.advantages = Tensor<double>(Shape{n});  // the raw rewards: E[-grad L] = grad J exactly
  for (std::int64_t i = 0; i < n; ++i) r.advantages.data()[i] = r.rewards(0, i);
  const auto g =
      ml::grad(rl::reinforce_loss<rl::Categorical>(fast.forward(ml::constant(r.observations)), r),
               theta)[0]
          .to_tensor();

  const Eigen::Array3d logits(0.3, -0.4, 0.1);
  const Eigen::Array3d pi = logits.exp() / logits.exp().sum();
  const Eigen::Array3d means(p[0], p[1], p[2]);
  const Eigen::Array3d closed = pi * (means - (pi * means).sum());  // dJ/dlogits
  Eigen::Array3d lr = Eigen::Array3d::Zero(), sq = Eigen::Array3d::Zero();
  for (std::int64_t i = 0; i < n; ++i) {
    Eigen::Array3d term = -pi * r.rewards(0, i);
    term[static_cast<int>(r.actions.data()[i])] += r.rewards(0, i);  // R (e_a - pi)
    lr += term;
    sq += term * term;
  }
  lr /= static_cast<double>(n);
  const Eigen::Array3d se =
      ((sq / static_cast<double>(n) - lr * lr) / static_cast<double>(n)).sqrt();
  for (int k = 0; k < 3; ++k) {
    INFO("logit " << k);
    CHECK(-g.data()[k] == Approx(lr[k]).epsilon(1e-10));  // the estimator, sample by sample
    CHECK(std::abs(lr[k] - closed[k]) < 4 * se[k]);       // and its Monte-Carlo mean
  }
}

TEST_CASE(
    "MamlRl: the meta-gradient matches central differences of the post-adaptation "
    "surrogate on fixed rollouts; first order does not",
    "[rl][second-order]") {
  const auto env = short_navigation();
  const auto tasks = rl::fixed_tasks(env, 1, 21);
  for (int steps : {1, 2}) {
    INFO("inner steps: " << steps);
    auto policy = small_gaussian(4);
    const rl::MamlRlOptions o = small_options(steps);
    rl::MamlPolicyGradient<rl::Navigation2D, double> maml(o);
    const auto kept = maml.sample(policy, tasks[0]);
    REQUIRE(kept.support.size() == static_cast<std::size_t>(steps));
    std::vector<Tensor<double>> exact, first;
    {
      ml::Tape<double> tape;
      const auto theta = tape.leaves(policy.parameters().views());
      for (const auto& g :
           ml::grad(maml.query_surrogate(policy, theta, kept, meta::Order::second), theta))
        exact.push_back(g.to_tensor());
      for (const auto& g :
           ml::grad(maml.query_surrogate(policy, theta, kept, meta::Order::first), theta))
        first.push_back(g.to_tensor());
    }
    // The learner's own meta-gradient is this one (its rollouts are the same draws).
    std::vector<Tensor<double>> learner;
    maml.meta_gradient(policy, tasks, learner);
    auto params = policy.parameters();
    double worst = 0, worst_first = 0;
    for (std::size_t i = 0; i < params.size(); ++i) {
      CHECK((learner[i].array() - exact[i].array()).abs().maxCoeff() < 1e-12);
      for (std::int64_t j = 0; j < params[i].numel(); ++j) {
        const double h = 1e-6, x = params[i].data()[j];
        const auto value = [&] {
          ml::Tape<double> tape;
          const auto theta = tape.leaves(params.views());
          return maml.query_surrogate(policy, theta, kept, meta::Order::none).item();
        };
        params[i].data()[j] = x + h;
        const double up = value();
        params[i].data()[j] = x - h;
        const double down = value();
        params[i].data()[j] = x;
        const double numeric = (up - down) / (2 * h);
        worst =
            std::max(worst, std::abs(numeric - exact[i].data()[j]) / (1e-6 + std::abs(numeric)));
        worst_first = std::max(worst_first, std::abs(numeric - first[i].data()[j]));
      }
    }
    CHECK(worst < 1e-5);
    CHECK(worst_first > 1e-4);  // the second-order terms matter here
  }
}

TEST_CASE(
    "TrustRegion: the TRPO step keeps the mean KL within max_kl and improves the "
    "surrogate; conjugate gradients solve a small system",
    "[rl][second-order]") {
  Eigen::MatrixXd a(4, 4);
  a << 4, 1, 0, 0.5,   //
      1, 3, 0.2, 0,    //
      0, 0.2, 2, 0.1,  //
      0.5, 0, 0.1, 1;
  const Eigen::VectorXd b = Eigen::Vector4d(1, -2, 0.5, 3);
  const Eigen::VectorXd x = rl::conjugate_gradient(
      [&](const Eigen::VectorXd& v) { return Eigen::VectorXd(a * v); }, b, 4);
  CHECK((x - a.ldlt().solve(b)).cwiseAbs().maxCoeff() < 1e-9);

  const auto env = short_navigation();
  const auto tasks = rl::fixed_tasks(env, 2, 31);
  auto policy = small_gaussian(5);
  rl::MamlRlOptions o;
  o.inner_lr = 0.3;
  o.episodes = 4;
  o.threads = 1;
  rl::TrustRegionOptions t;
  t.max_kl = 0.005;
  rl::MamlTrpo<rl::Navigation2D, double> trpo(o, rl::TrustRegion(t));
  std::vector<rl::TaskRollouts<double>> kept;
  for (const auto& task : tasks) kept.push_back(trpo.sample(policy, task));
  const auto mean_over_tasks = [&] {
    double loss = 0, kl = 0;
    ml::Tape<double> tape;
    const auto theta = tape.leaves(policy.parameters().views());
    for (const auto& k : kept) {
      loss += trpo.query_surrogate(policy, theta, k, meta::Order::none).item() / 2;
      kl += trpo.query_kl(policy, theta, k, meta::Order::none).item() / 2;
    }
    return std::pair<double, double>(loss, kl);
  };
  const auto before = mean_over_tasks();
  CHECK(before.second == Approx(0).margin(1e-12));
  std::vector<Tensor<double>> update;
  const meta::StepStats s = trpo.meta_gradient(policy, tasks, update);
  REQUIRE(s.finite);
  CHECK(s.grad_norm > 0);
  auto params = policy.parameters();
  for (std::size_t i = 0; i < params.size(); ++i) params[i].array() -= update[i].array();
  const auto after = mean_over_tasks();
  CHECK(after.first < before.first);
  CHECK(after.second <= t.max_kl);
  CHECK(after.second > 0.01 * t.max_kl);  // a real step, near the region's edge
}

namespace {
// An outer update that changes nothing and records, from the step it is given, the
// Fisher-vector products against second differences of the KL that `evaluate` returns
// (KL(theta) = 0 with zero gradient at theta, so KL(theta + h w) = h^2 w'Hw / 2 + O(h^3)).
struct FisherProbe {
  struct Seen {
    double worst_quadratic = -1, worst_symmetry = -1, smallest_quadratic = -1;
  };
  Seen* seen = nullptr;
  template <class S>
  std::vector<Tensor<S>> operator()(const rl::OuterStep<S>& step) const {
    ml::Rng rng(17);
    const auto random_like = [&] {
      std::vector<Tensor<S>> w;
      for (const auto& p : step.parameters) {
        Tensor<S> t(p.shape());
        for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = ml::uniform(rng, -1.0, 1.0);
        w.push_back(std::move(t));
      }
      return w;
    };
    const auto dot = [](const std::vector<Tensor<S>>& a, const std::vector<Tensor<S>>& b) {
      double d = 0;
      for (std::size_t i = 0; i < a.size(); ++i) d += (a[i].array() * b[i].array()).sum();
      return d;
    };
    const auto moved = [&](const std::vector<Tensor<S>>& w, double h) {
      std::vector<Tensor<S>> at = step.parameters;
      for (std::size_t i = 0; i < at.size(); ++i) at[i].array() += S(h) * w[i].array();
      return at;
    };
    const auto u = random_like(), v = random_like();
    const auto hu = step.fisher_product(u), hv = step.fisher_product(v);
    seen->worst_symmetry = std::abs(dot(u, hv) - dot(v, hu)) / std::abs(dot(u, hv));
    seen->worst_quadratic = 0;
    seen->smallest_quadratic = 1e300;
    const auto both = [&] {
      auto w = u;
      for (std::size_t i = 0; i < w.size(); ++i) w[i].array() += v[i].array();
      return w;
    }();
    for (const auto* w : {&u, &v, &both}) {
      const double h = 1e-4;
      const double kl_0 = step.evaluate(step.parameters).second;
      const double numeric =
          (step.evaluate(moved(*w, h)).second + step.evaluate(moved(*w, -h)).second - 2 * kl_0) /
          (h * h);  // = w'Hw + O(h^2)
      const double exact = dot(*w, step.fisher_product(*w));
      seen->worst_quadratic =
          std::max(seen->worst_quadratic, std::abs(numeric - exact) / std::abs(exact));
      seen->smallest_quadratic = std::min(seen->smallest_quadratic, exact);
    }
    std::vector<Tensor<S>> none;
    for (const auto& p : step.parameters) none.emplace_back(p.shape(), S(0));
    return none;
  }
};
}  // namespace

TEST_CASE(
    "MamlRl: the Fisher-vector product TRPO uses is the Hessian of the post-adaptation KL "
    "(second differences of the KL, symmetric, positive), through 0, 1 and 2 inner steps",
    "[rl][second-order]") {
  const auto env = short_navigation();
  const auto tasks = rl::fixed_tasks(env, 2, 41);
  for (int steps : {0, 1, 2}) {
    INFO("inner steps: " << steps);
    auto policy = small_gaussian(6);
    const rl::MamlRlOptions o = small_options(steps);
    FisherProbe::Seen seen;
    rl::MamlRl<rl::Navigation2D, FisherProbe, double> maml(o, FisherProbe{&seen});
    std::vector<Tensor<double>> update;
    REQUIRE(maml.meta_gradient(policy, tasks, update).finite);
    CHECK(seen.worst_symmetry >= 0);
    CHECK(seen.worst_symmetry < 1e-10);
    CHECK(seen.worst_quadratic < 1e-5);
    CHECK(seen.smallest_quadratic > 0);
  }
}

TEST_CASE("MamlRl trains through the shared trainer: thread counts and a resume give the same bits",
          "[rl]") {
  const auto run = [](int threads, std::int64_t steps, const std::string& checkpoint) {
    rl::Navigation2DOptions no;
    no.horizon = 10;
    const rl::Navigation2D env(no);
    ml::Rng rng(3);
    rl::GaussianPolicy<nn::Sequential<float>> policy(
        nn::mlp<float>({2, 16, 2}, rng, nn::Activation::tanh), 2);
    rl::MamlRlOptions o;
    o.episodes = 5;
    o.threads = threads;
    rl::MamlTrpo<rl::Navigation2D> maml(o);
    ml::optim::SgdOptions so;
    so.lr = 1.0;
    ml::optim::Sgd<float> sgd(maml.meta_parameters(policy), so);
    meta::TrainerOptions t;
    t.steps = steps;
    t.log = nullptr;
    t.validate_every = 3;
    t.checkpoint = checkpoint;
    const auto validation = rl::fixed_tasks(env, 4, 8);
    const auto r = meta::train(maml, policy, sgd, rl::EnvTaskSampler<rl::Navigation2D>(env, 3),
                               validation, rng, t);
    std::vector<float> bits;
    for (const auto& v : policy.parameters().views())
      bits.insert(bits.end(), v.data(), v.data() + v.numel());
    return std::make_pair(r, bits);
  };
  const auto one = run(1, 6, "");
  const auto two = run(2, 6, "");
  CHECK(one.second == two.second);
  CHECK(std::isfinite(one.first.best.mean));
  const std::string ckpt = "rl_test_resume.ckpt";
  std::remove((ckpt + ".last").c_str());
  run(1, 3, ckpt);
  const auto resumed = run(1, 6, ckpt);
  CHECK(resumed.first.first_step == 4);
  CHECK(resumed.second == one.second);
  std::remove(ckpt.c_str());
  std::remove((ckpt + ".last").c_str());
}

TEST_CASE("rl: bad input is refused with a message naming the function", "[rl]") {
  ml::test::check_throws<ml::InvalidArgument>(
      [] { rl::EnvTaskSampler<rl::Navigation2D>(rl::Navigation2D(), 0); },
      {"EnvTaskSampler", "tasks >= 1"});
  rl::MamlRlOptions o;
  o.episodes = 0;
  ml::test::check_throws<ml::InvalidArgument>([&] { rl::MamlTrpo<rl::Navigation2D> m(o); },
                                              {"MamlRl", "episodes >= 1"});
  rl::TrustRegionOptions t;
  t.max_kl = 0;
  ml::test::check_throws<ml::InvalidArgument>([&] { rl::TrustRegion tr(t); },
                                              {"TrustRegion", "max_kl > 0"});
  ml::Tape<double> tape;
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        rl::DiagGaussian::log_prob(ml::constant(Tensor<double>(Shape{4, 2})),
                                   Tensor<double>(Shape{3, 2}));
      },
      {"DiagGaussian::log_prob", "[2, 2]", "[3, 2]"});
  rl::Rollouts<double> r;
  r.horizon = 1;
  r.envs = 2;
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        rl::reinforce_loss<rl::DiagGaussian>(ml::constant(Tensor<double>(Shape{4, 2})), r);
      },
      {"reinforce_loss", "compute_advantages"});
  auto policy = small_gaussian(1);
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        ml::Tape<double> inner;
        policy.forward(inner.leaves(policy.parameters().views()),
                       ml::constant(Tensor<double>(Shape{3, 5})));
      },
      {"Linear"});
}
