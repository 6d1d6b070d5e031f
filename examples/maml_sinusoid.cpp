// examples/maml_sinusoid.cpp
//
// Second-order MAML on sine-wave regression (Finn et al. 2017, §5.1): an MLP 1-40-40-1 with
// ReLU, K = 10 support and 10 query points, meta-batch 25, one inner SGD step with
// alpha = 0.01, Adam 1e-3 outside. Shows: episode sampling, meta-training with any gradient
// learner (--algorithm maml|fomaml|reptile|metasgd|anil|maml++|imaml|pretrain|cavia; Reptile's
// outer step is SGD with --outer-lr as epsilon; CAVIA's net takes 4 context values beside x)
// through the shared trainer, evaluation after adaptation, a plot
// and a learning curve.
//
//   ./maml_sinusoid --steps 20000 --seed 1 --threads 2
//   ./maml_sinusoid --minutes 5 --checkpoint sine.ckpt      # stop after 5 minutes; resumable
//   ./maml_sinusoid --evaluate --checkpoint sine.ckpt       # score the best model only
//
// Prints a progress line every --log-every steps, then the MSE on --test-tasks fresh tasks
// before adaptation and after 1 and 10 inner steps, each with a 95% confidence interval,
// then one summary line:
//   final: mse_pre=<x> mse_pre_ci=<x> mse_1=<x> mse_1_ci=<x> mse_10=<x> mse_10_ci=<x> steps=<n>
//   seconds=<t>
// Writes --svg (true curve, support points, prediction before and after 10 steps, for 3
// tasks) and --csv (the trainer's learning curve: step, seconds, loss, support_loss,
// metric, grad_norm, validation, validation_ci) unless given empty paths. Exit codes: 0 ok,
// 1 error, 2 bad flags, 3 non-finite result.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

#include "common/args.hpp"
#include "common/ranks.hpp"
#include "common/training.hpp"

namespace ml = metalearn;
namespace data = metalearn::data;
namespace meta = metalearn::meta;

namespace {

// Predictions of the model adapted to `e` with `steps` inner steps, on a grid of x values.
template <class Learner>
std::vector<double> predict(const Learner& learner, ml::nn::Sequential<float>& net,
                            const data::Episode<float>& e, int steps,
                            const std::vector<double>& xs) {
  data::Episode<float> probe = e;  // the same support set; the grid as queries
  probe.query_inputs = ml::Tensor<float>(ml::Shape{static_cast<std::int64_t>(xs.size()), 1});
  probe.query_targets = ml::Tensor<float>(ml::Shape{static_cast<std::int64_t>(xs.size()), 1});
  for (std::size_t i = 0; i < xs.size(); ++i)
    probe.query_inputs.data()[i] = static_cast<float>(xs[i]);
  const ml::Tensor<float> y = learner.predict(net, probe, steps);
  return std::vector<double>(y.data(), y.data() + y.numel());
}

void write_svg(const std::string& path, const std::vector<data::SineTask>& tasks,
               const std::vector<data::Episode<float>>& episodes,
               const std::vector<std::vector<double>>& before,
               const std::vector<std::vector<double>>& after, const std::vector<double>& grid) {
  std::ofstream svg(path);
  const double w = 300, h = 220, pad = 10;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << 3 * w << "' height='" << h + 30
      << "'>\n"
      << "<style>text{font:12px sans-serif}</style>\n";
  const auto px = [&](std::size_t panel, double x) {
    return panel * w + pad + (x + 5.0) / 10.0 * (w - 2 * pad);
  };
  const auto py = [&](double y) { return pad + (5.5 - y) / 11.0 * (h - 2 * pad); };
  const auto line = [&](std::size_t panel, const std::vector<double>& ys, const char* colour,
                        const char* dash) {
    svg << "<polyline fill='none' stroke='" << colour << "' stroke-width='2' stroke-dasharray='"
        << dash << "' points='";
    for (std::size_t i = 0; i < grid.size(); ++i)
      svg << px(panel, grid[i]) << ',' << py(ys[i]) << ' ';
    svg << "'/>\n";
  };
  for (std::size_t t = 0; t < tasks.size(); ++t) {
    svg << "<rect x='" << t * w + 2 << "' y='2' width='" << w - 4 << "' height='" << h - 4
        << "' fill='none' stroke='#ccc'/>\n";
    std::vector<double> truth;
    for (double x : grid) truth.push_back(tasks[t](x));
    line(t, truth, "#222", "0");
    line(t, before[t], "#1f77b4", "6,4");
    line(t, after[t], "#d62728", "0");
    const auto& e = episodes[t];
    for (std::int64_t i = 0; i < e.support_inputs.numel(); ++i)
      svg << "<circle cx='" << px(t, e.support_inputs.data()[i]) << "' cy='"
          << py(e.support_targets.data()[i]) << "' r='4' fill='#2ca02c'/>\n";
  }
  svg << "<text x='10' y='" << h + 20
      << "'>black: true sine; green: the 10 support points; blue dashed: MAML before adaptation; "
         "red: after 10 inner steps</text>\n</svg>\n";
}

// What the meta-test reports and where.
struct MetaTest {
  long tasks = 1000;    ///< fresh test tasks
  int long_steps = 10;  ///< the longer adaptation scored beside 1 step
  std::uint64_t seed = 1;
  std::string svg_path;
  std::int64_t trained_steps = 0;  ///< for the final line
  std::chrono::steady_clock::time_point start;
  bool quiet = false;
};

// Meta-test on fresh tasks from a separate stream: MSE before adaptation and after 1 and
// long_steps inner steps, the SVG, and the final line. Returns the exit code.
template <class Learner>
int meta_test(const Learner& maml, ml::nn::Sequential<float>& net,
              const data::SineTasks<float>& tasks, const MetaTest& test) {
  const long test_tasks = test.tasks;
  const int long_steps = test.long_steps;
  const std::uint64_t seed = test.seed;
  const std::string& svg_path = test.svg_path;
  const std::int64_t steps = test.trained_steps;
  const auto start = test.start;
  const bool quiet = test.quiet;
  // Meta-test on fresh tasks from a separate stream.
  ml::Rng test_rng(seed + 1000003);
  std::vector<double> pre, one, ten;
  for (long t = 0; t < test_tasks; ++t) {
    const auto e = tasks.sample(test_rng);
    pre.push_back(maml.evaluate(net, e, 0).mse);
    one.push_back(maml.evaluate(net, e, 1).mse);
    ten.push_back(maml.evaluate(net, e, long_steps).mse);
  }
  const meta::MeanCi a = meta::mean_ci(pre), b = meta::mean_ci(one), c = meta::mean_ci(ten);
  if (!quiet)
    std::printf(
        "meta-test on %ld tasks: MSE before adaptation %.4f +- %.4f, after 1 step %.4f +- %.4f, "
        "after %d steps %.4f +- %.4f (95%% CI)\n",
        test_tasks, a.mean, a.ci95, b.mean, b.ci95, long_steps, c.mean, c.ci95);

  if (!svg_path.empty()) {
    std::vector<double> grid;
    for (int i = 0; i <= 100; ++i) grid.push_back(-5.0 + 0.1 * i);
    std::vector<data::SineTask> shown;
    std::vector<data::Episode<float>> shown_episodes;
    std::vector<std::vector<double>> before, after;
    for (int t = 0; t < 3; ++t) {
      shown.push_back(tasks.sample_task(test_rng));
      shown_episodes.push_back(tasks.episode(shown.back(), test_rng));
      before.push_back(predict(maml, net, shown_episodes.back(), 0, grid));
      after.push_back(predict(maml, net, shown_episodes.back(), long_steps, grid));
    }
    write_svg(svg_path, shown, shown_episodes, before, after, grid);
  }

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "final: mse_pre=%.6g mse_pre_ci=%.3g mse_1=%.6g mse_1_ci=%.3g mse_%d=%.6g mse_%d_ci=%.3g "
      "steps=%lld "
      "seconds=%.2f\n",
      a.mean, a.ci95, b.mean, b.ci95, long_steps, c.mean, long_steps, c.ci95,
      static_cast<long long>(steps), seconds);
  return std::isfinite(b.mean) && std::isfinite(c.mean) ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::with_ranks(argc, argv, [&]() -> int {
    const examples::Args args{
        argc,
        argv,
        "usage: maml_sinusoid [--algorithm "
        "maml|fomaml|reptile|metasgd|anil|maml++|imaml|pretrain|cavia]\n"
        "                     [--steps N]"
        "\n"
        "                     [--minutes M] [--meta-batch N] [--shots N] [--queries N]\n"
        "                     [--inner-lr X] [--inner-steps N] [--outer-lr X] [--threads N]\n"
        "                     [--seed N] [--test-tasks N] [--checkpoint FILE] [--evaluate]\n"
        "                     [--svg FILE] [--csv FILE] [--log-every N] [--validate-every N]\n"
        "                     [--lr-schedule constant|cosine]\n"
        "                     [--msl-anneal-steps N] [--first-order-steps N] [--imaml-lambda X]\n"
        "                     [--cg-steps N] [--cg-damping X] [--quiet]\n",
        {"algorithm",
         "steps",
         "minutes",
         "meta-batch",
         "shots",
         "queries",
         "inner-lr",
         "inner-steps",
         "outer-lr",
         "threads",
         "seed",
         "test-tasks",
         "checkpoint",
         "svg",
         "csv",
         "log-every",
         "validate-every",
         "lr-schedule",
         "msl-anneal-steps",
         "first-order-steps",
         "imaml-lambda",
         "cg-steps",
         "cg-damping"},
        {"quiet", "evaluate"}};
    const std::string algorithm =
        args.get_choice("algorithm", "maml", examples::gradient_algorithms_with_context);
    const long batch = args.get_int("meta-batch", 25, 1, 100000);
    const long test_tasks = args.get_int("test-tasks", 1000, 2, 10000000);
    const long seed = args.get_int("seed", 1, 0, 1L << 62);
    data::SineOptions sine;
    sine.shots = args.get_int("shots", 10, 1, 100000);
    sine.queries = args.get_int("queries", 10, 1, 100000);
    meta::GradientLearnerOptions o;
    // CAVIA adapts 4 context values, with a step of 1 (Zintgraf et al. 2019, sinusoid).
    const bool cavia = algorithm == "cavia";
    o.inner_lr = args.get_double("inner-lr", cavia ? 1.0 : 0.01, 0.0, 10.0);
    // Reptile (Nichol et al. 2018) takes several inner steps and a large outer step epsilon.
    const bool reptile = algorithm == "reptile";
    o.inner_steps = static_cast<int>(args.get_int("inner-steps", reptile ? 5 : 1, 0, 1000));
    o.threads = static_cast<int>(args.get_int("threads", examples::ranks().threads, 0, 1024));
    // MAML++'s per-step rates exist for the trained steps only: validate and test with those.
    const bool per_step_rates = algorithm == "maml++";
    if (per_step_rates) o.eval_inner_steps = std::max(1, o.inner_steps);
    const double outer_lr = args.get_double("outer-lr", reptile ? 1.0 : 1e-3, 1e-12, 10.0);
    meta::TrainerOptions trainer =
        examples::trainer_options(args, 20000, 1000, algorithm == "maml++" ? "cosine" : "constant");
    trainer.csv = args.get_string("csv", "maml_sinusoid.csv");
    const std::string svg_path = args.get_string("svg", "maml_sinusoid.svg");
    const bool quiet = args.has("quiet");

    const auto start = std::chrono::steady_clock::now();
    ml::Rng rng(static_cast<std::uint64_t>(seed));
    auto net = cavia ? ml::nn::Sequential<float>{ml::nn::Context<float>(4),
                                                 ml::nn::mlp<float>({5, 40, 40, 1}, rng)}
                     : ml::nn::mlp<float>({1, 40, 40, 1}, rng);
    const data::SineTasks<float> tasks(sine);
    const data::MetaBatchSampler<data::SineTasks<float>> batches(tasks, batch);
    // Validation (MSE after 10 inner steps) on 100 tasks of a stream of their own.
    const auto validation = data::fixed_episodes(tasks, 100, static_cast<std::uint64_t>(seed) + 7);
    int code = 0;
    examples::with_gradient_learner(
        algorithm, o, examples::policy_options(args), [&](auto& learner) {
          std::int64_t steps_done = 0;
          if (args.has("evaluate")) {
            if (trainer.checkpoint.empty())
              throw ml::InvalidArgument("--evaluate needs --checkpoint FILE");
            meta::load_model(learner, net, trainer.checkpoint);
          } else {
            examples::with_outer_optimizer(learner, net, outer_lr, [&](auto& outer) {
              const meta::TrainResult r =
                  meta::train(learner, net, outer, batches, validation, rng, trainer);
              steps_done = r.steps;
              if (r.non_finite) {
                std::cerr << "error: " << r.message << '\n';
                code = 3;
              }
            });
            if (code != 0) return;
          }
          if (!examples::ranks().lead) return;  // rank 0 alone tests, prints and plots
          MetaTest t;
          t.tasks = test_tasks;
          t.long_steps = per_step_rates ? o.eval_inner_steps : 10;
          t.seed = static_cast<std::uint64_t>(seed);
          t.svg_path = svg_path;
          t.trained_steps = steps_done;
          t.start = start;
          t.quiet = quiet;
          code = meta_test(learner, net, tasks, t);
        });
    return code;
  });
}
