// examples/maml_navigation.cpp
//
// MAML for reinforcement learning (Finn et al. 2017, §5.3): a Gaussian MLP policy (2-64-64-2,
// tanh, learned state-independent log-std) meta-trained on 2-D navigation so that one
// policy-gradient step on 20 episodes of a new goal reaches it. Inner step: REINFORCE with
// the linear feature baseline, alpha = 0.1; outer step over meta-batches of 20 tasks: the
// surrogate's meta-gradient with Adam 0.003 (the default: it meets the quality bar,
// docs/rl.md), or TRPO as Finn et al. (--outer trpo: max KL 0.01, 10 conjugate-gradient
// iterations, backtracking line search; its meta-training degrades after about 50 steps,
// docs/rl.md), through the shared trainer (progress line, validation, checkpoints, resume).
// The pretrained baseline (one policy trained on all tasks, no inner step, the same outer
// update) and the random initialisation are adapted and scored the same way.
//
//   ./maml_navigation --steps 300 --threads 2
//   ./maml_navigation --env bandit            # Bernoulli bandits, 5 arms, 10 pulls per task
//   ./maml_navigation --env point-mass        # a point mass whose mass and friction change
//   ./maml_navigation --outer trpo --first-order
//   ./maml_navigation --minutes 10 --checkpoint nav.ckpt   # resumable; --evaluate scores it
//
// Prints the mean return over --test-tasks fresh tasks before adaptation and after 1, 2 and
// 3 steps with 95% confidence intervals, for MAML, the pretrained policy and the random
// initialisation; writes --svg (trajectories of 4 test tasks before and after one step)
// and --csv (MAML's learning curve); last line:
//   final: ret_0=<x> ret_1=<x> ret_2=<x> ret_3=<x> ret_1_ci=<x> pretrained_1=<x>
//   pretrained_1_ci=<x> random_1=<x> random_1_ci=<x> steps=<n> seconds=<t>
// Exit codes: 0 ok, 1 error, 2 bad flags, 3 non-finite result.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <metalearn/metalearn.hpp>
#include <metalearn/rl/rl.hpp>
#include <string>
#include <vector>

#include "common/args.hpp"
#include "common/ranks.hpp"
#include "common/training.hpp"

namespace ml = metalearn;
namespace meta = metalearn::meta;
namespace nn = metalearn::nn;
namespace rl = metalearn::rl;

namespace {

// What one run needs beyond the learner's options.
struct Run {
  std::string outer = "adam";
  double outer_lr = 0.003;  // Adam's
  rl::TrustRegionOptions trust;
  long meta_batch = 20;
  long test_tasks = 40;
  long validation_tasks = 10;
  std::uint64_t seed = 1;
  std::string svg;
  bool evaluate = false;
  bool quiet = false;
  meta::TrainerOptions trainer;
  std::chrono::steady_clock::time_point start;
};

using Mlp = nn::Sequential<float>;

// The policy for each environment: Gaussian for continuous actions, categorical for arms.
template <class Env>
auto make_policy(const Env& env, ml::Rng& rng) {
  const std::int64_t obs = env.observation_size(), act = env.action_size();
  if constexpr (rl::discrete_actions_v<Env>)
    return rl::CategoricalPolicy<Mlp>(nn::mlp<float>({obs, 32, 32, act}, rng));
  else
    return rl::GaussianPolicy<Mlp>(nn::mlp<float>({obs, 64, 64, act}, rng, nn::Activation::tanh),
                                   act);
}

// Train `policy` with `learner` (TRPO: Sgd with lr 1; else Adam), on the run's trainer.
template <class Learner, class Policy, class Env>
meta::TrainResult train(Learner& learner, Policy& policy, const Env& env, const Run& run,
                        const meta::TrainerOptions& options, ml::Rng& rng) {
  const rl::EnvTaskSampler<Env> batches(env, run.meta_batch);
  const auto validation = rl::fixed_tasks(env, run.validation_tasks, run.seed + 7);
  auto params = learner.meta_parameters(policy);
  if constexpr (std::is_same_v<Learner, rl::MamlTrpo<Env>>) {
    ml::optim::SgdOptions o;
    o.lr = 1.0;  // TRPO chose the step (rl::TrustRegion)
    ml::optim::Sgd<float> sgd(params, o);
    return meta::train(learner, policy, sgd, batches, validation, rng, options);
  } else {
    ml::optim::AdamOptions o;
    o.lr = run.outer_lr;
    ml::optim::Adam<float> adam(params, o);
    return meta::train(learner, policy, adam, batches, validation, rng, options);
  }
}

// Mean returns after 0..3 steps over the test tasks, one MeanCi per step count.
template <class Learner, class Policy, class Env>
std::vector<meta::MeanCi> curve(const Learner& learner, Policy& policy,
                                const std::vector<rl::EnvTask<Env>>& tasks) {
  std::vector<std::vector<double>> by_step(4);
  for (const auto& t : tasks) {
    const auto r = learner.adaptation_returns(policy, t, 3);
    for (std::size_t k = 0; k < 4; ++k) by_step[k].push_back(r[k]);
  }
  std::vector<meta::MeanCi> out;
  for (const auto& v : by_step) out.push_back(meta::mean_ci(v));
  return out;
}

// One episode's positions (the first two observation columns) under `fast`.
template <class Env, class Fast>
std::vector<std::pair<double, double>> path(const rl::EnvTask<Env>& task, const Fast& fast,
                                            std::uint64_t seed) {
  using D = typename std::decay_t<decltype(fast.model())>::distribution;
  ml::Rng rng(seed);
  const auto r = rl::rollout<D, float>(
      task.env, task.task, [&](const ml::Tensor<float>& x) { return fast.predict(x); }, 1, rng);
  std::vector<std::pair<double, double>> p{{0.0, 0.0}};
  for (std::int64_t t = 1; t < r.horizon; ++t)
    p.emplace_back(r.observations.matrix()(t, 0), r.observations.matrix()(t, 1));
  return p;
}

// Trajectories of 4 test tasks before (blue) and after one inner step (red), goals marked.
// `goal_of(task)` gives the goal; the view is `span` wide around (cx, cy).
template <class Learner, class Policy, class Env, class GoalOf>
void write_svg(const std::string& file, const Learner& learner, Policy& policy,
               const std::vector<rl::EnvTask<Env>>& tasks, GoalOf goal_of, double cx, double cy,
               double span) {
  std::ofstream svg(file);
  const double w = 240, pad = 10;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << 4 * w << "' height='" << w + 30
      << "'>\n<style>text{font:12px sans-serif}</style>\n";
  for (std::size_t k = 0; k < 4 && k < tasks.size(); ++k) {
    const auto px = [&](double x) {
      return k * w + pad + (x - cx + span / 2) / span * (w - 2 * pad);
    };
    const auto py = [&](double y) { return pad + (cy + span / 2 - y) / span * (w - 2 * pad); };
    svg << "<rect x='" << k * w + 2 << "' y='2' width='" << w - 4 << "' height='" << w - 4
        << "' fill='none' stroke='#ccc'/>\n";
    ml::Tape<float> tape;
    const auto before = learner.adapt(policy, tasks[k], 0);
    const auto after = learner.adapt(policy, tasks[k], 1);
    const auto line = [&](const std::vector<std::pair<double, double>>& p, const char* colour) {
      svg << "<polyline fill='none' stroke='" << colour << "' stroke-width='1.5' points='";
      for (const auto& [x, y] : p) svg << px(x) << ',' << py(y) << ' ';
      svg << "'/>\n";
    };
    line(path(tasks[k], before, tasks[k].seed + 1), "#1f77b4");
    line(path(tasks[k], after, tasks[k].seed + 1), "#d62728");
    const auto [gx, gy] = goal_of(tasks[k]);
    svg << "<circle cx='" << px(gx) << "' cy='" << py(gy) << "' r='5' fill='#2ca02c'/>\n";
  }
  svg << "<text x='10' y='" << w + 20
      << "'>green: the goal; blue: one episode of the meta-trained policy; red: after one "
         "policy-gradient step on 20 episodes</text>\n</svg>\n";
}

template <class Env>
int run_env(const Env& env, const rl::MamlRlOptions& options, const Run& run) {
  ml::Rng rng(run.seed);
  auto policy = make_policy(env, rng);
  ml::Rng other(run.seed + 1);
  auto pretrained = make_policy(env, other);
  ml::Rng random_rng(run.seed + 2);
  auto random = make_policy(env, random_rng);
  rl::MamlRlOptions pre = options;
  pre.inner_steps = 0;  // Finn et al.'s pretrained baseline: no inner step while training
  std::int64_t steps = 0;
  int code = 0;
  const auto body = [&](auto& maml, auto& baseline) {
    meta::TrainerOptions quiet_trainer = run.trainer;
    quiet_trainer.csv = "";
    quiet_trainer.log = nullptr;
    if (!run.trainer.checkpoint.empty())
      quiet_trainer.checkpoint = run.trainer.checkpoint + ".pretrained";
    if (run.evaluate) {
      if (run.trainer.checkpoint.empty())
        throw ml::InvalidArgument("--evaluate needs --checkpoint FILE");
      meta::load_model(maml, policy, run.trainer.checkpoint);
      meta::load_model(baseline, pretrained, quiet_trainer.checkpoint);
    } else {
      const auto r = train(maml, policy, env, run, run.trainer, rng);
      steps = r.steps;
      if (!run.quiet) std::cout << "training the pretrained baseline (same steps, no inner step)\n";
      const auto p = train(baseline, pretrained, env, run, quiet_trainer, other);
      if (r.non_finite || p.non_finite) {
        std::cerr << "error: " << (r.non_finite ? r.message : p.message) << '\n';
        code = 3;
        return;
      }
      if (!run.trainer.checkpoint.empty()) {  // the best by validation
        meta::load_model(maml, policy, run.trainer.checkpoint);
        meta::load_model(baseline, pretrained, quiet_trainer.checkpoint);
      }
    }
    if (!examples::ranks().lead) return;
    const auto tasks = rl::fixed_tasks(env, run.test_tasks, run.seed + 1000003);
    // Every policy is adapted with MAML's inner step (the learners differ in training only).
    const auto m = curve(maml, policy, tasks), b = curve(maml, pretrained, tasks),
               z = curve(maml, random, tasks);
    if (!run.quiet) {
      std::printf("mean return on %ld test tasks (95%% CI), by policy-gradient steps:\n",
                  run.test_tasks);
      std::printf("%-12s %18s %18s %18s %18s\n", "", "0 steps", "1 step", "2 steps", "3 steps");
      const auto row = [](const char* name, const std::vector<meta::MeanCi>& c) {
        std::printf("%-12s", name);
        for (const auto& x : c) std::printf(" %10.3f +- %5.3f", x.mean, x.ci95);
        std::printf("\n");
      };
      row("MAML", m);
      row("pretrained", b);
      row("random init", z);
    }
    if (!run.svg.empty()) {
      if constexpr (std::is_same_v<Env, rl::Navigation2D>)
        write_svg(
            run.svg, maml, policy, tasks,
            [](const auto& t) { return std::pair<double, double>(t.task.goal_x, t.task.goal_y); },
            0.0, 0.0, 1.4);
      else if constexpr (std::is_same_v<Env, rl::PointMass>)
        write_svg(
            run.svg, maml, policy, tasks,
            [&](const auto&) {
              return std::pair<double, double>(env.options().goal_x, env.options().goal_y);
            },
            0.5 * env.options().goal_x, 0.5 * env.options().goal_y, 2.0);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - run.start).count();
    std::printf(
        "final: ret_0=%.4f ret_1=%.4f ret_2=%.4f ret_3=%.4f ret_1_ci=%.3f pretrained_1=%.4f "
        "pretrained_1_ci=%.3f random_1=%.4f random_1_ci=%.3f steps=%lld seconds=%.1f\n",
        m[0].mean, m[1].mean, m[2].mean, m[3].mean, m[1].ci95, b[1].mean, b[1].ci95, z[1].mean,
        z[1].ci95, static_cast<long long>(steps), seconds);
    if (!std::isfinite(m[1].mean)) code = 3;
  };
  if (run.outer == "trpo") {
    rl::MamlTrpo<Env> maml(options, rl::TrustRegion(run.trust)),
        baseline(pre, rl::TrustRegion(run.trust));
    body(maml, baseline);
  } else {
    rl::MamlPolicyGradient<Env> maml(options), baseline(pre);
    body(maml, baseline);
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::with_ranks(argc, argv, [&]() -> int {
    const examples::Args args{
        argc,
        argv,
        "usage: maml_navigation [--env navigation|bandit|point-mass] [--outer adam|trpo]\n"
        "                       [--steps N] [--minutes M] [--meta-batch N] [--episodes N]\n"
        "                       [--inner-lr X] [--inner-steps N] [--first-order] [--outer-lr X]\n"
        "                       [--max-kl X] [--cg-damping X] [--arms N] [--threads N] [--seed N]\n"
        "                       [--test-tasks N] [--checkpoint FILE] [--evaluate] [--svg FILE]\n"
        "                       [--csv FILE] [--log-every N] [--validate-every N] [--quiet]\n",
        {"env",        "outer",    "steps",       "minutes",   "meta-batch",
         "episodes",   "inner-lr", "inner-steps", "outer-lr",  "max-kl",
         "cg-damping", "arms",     "threads",     "seed",      "test-tasks",
         "checkpoint", "svg",      "csv",         "log-every", "validate-every"},
        {"first-order", "evaluate", "quiet"}};
    const std::string env =
        args.get_choice("env", "navigation", {"navigation", "bandit", "point-mass"});
    Run run;
    run.start = std::chrono::steady_clock::now();
    run.outer = args.get_choice("outer", "adam", {"adam", "trpo"});
    run.outer_lr = args.get_double("outer-lr", 0.003, 1e-9, 10.0);
    run.trust.max_kl = args.get_double("max-kl", 0.01, 1e-9, 10.0);
    run.trust.cg_damping = args.get_double("cg-damping", 1e-5, 0.0, 1e6);
    run.meta_batch = args.get_int("meta-batch", 20, 1, 100000);
    run.test_tasks = args.get_int("test-tasks", 40, 2, 1000000);
    run.seed = static_cast<std::uint64_t>(args.get_int("seed", 1, 0, 1L << 62));
    run.svg = args.get_string("svg", env == "bandit" ? "" : "maml_navigation.svg");
    run.evaluate = args.has("evaluate");
    run.quiet = args.has("quiet");
    run.trainer = examples::trainer_options(args, 300, 10);
    run.trainer.csv = args.get_string("csv", "maml_navigation.csv");
    rl::MamlRlOptions o;
    const bool bandit = env == "bandit";
    // pytorch-maml-rl's settings: 2-D navigation 20 episodes, alpha 0.1, gamma 0.99;
    // bandits 10 pulls, alpha 0.5, gamma 0.95.
    o.episodes = args.get_int("episodes", bandit ? 10 : 20, 1, 100000);
    o.inner_lr = args.get_double("inner-lr", bandit ? 0.5 : 0.1, 0.0, 100.0);
    o.inner_steps = static_cast<int>(args.get_int("inner-steps", 1, 0, 100));
    o.inner_order = args.has("first-order") ? meta::Order::first : meta::Order::second;
    o.advantages.gamma = bandit ? 0.95 : 0.99;
    o.threads = static_cast<int>(args.get_int("threads", examples::ranks().threads, 0, 1024));
    if (env == "navigation") return run_env(rl::Navigation2D(), o, run);
    if (env == "point-mass") return run_env(rl::PointMass(), o, run);
    rl::BanditOptions b;
    b.arms = args.get_int("arms", 5, 2, 1000);
    return run_env(rl::BernoulliBandit(b), o, run);
  });
}
