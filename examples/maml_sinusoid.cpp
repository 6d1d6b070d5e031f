// examples/maml_sinusoid.cpp
//
// Second-order MAML on sine-wave regression (Finn et al. 2017, §5.1): an MLP 1-40-40-1 with
// ReLU, K = 10 support and 10 query points, meta-batch 25, one inner SGD step with
// alpha = 0.01, Adam 1e-3 outside. Shows: episode sampling, meta-training with Maml,
// evaluation after adaptation, a plot and a learning curve.
//
//   ./maml_sinusoid --steps 20000 --seed 1 --threads 2
//
// Prints a progress line every --log-every steps, then the MSE on --test-tasks fresh tasks
// before adaptation and after 1 and 10 inner steps, each with a 95% confidence interval,
// then one summary line:
//   final: mse_pre=<x> mse_pre_ci=<x> mse_1=<x> mse_1_ci=<x> mse_10=<x> mse_10_ci=<x> steps=<n>
//   seconds=<t>
// Writes --svg (true curve, support points, prediction before and after 10 steps, for 3
// tasks) and --csv (step, meta_loss, support_loss) unless given empty paths.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

#include "common/args.hpp"

namespace ml = metalearn;
namespace data = metalearn::data;
namespace meta = metalearn::meta;

namespace {

struct MeanCi {
  double mean, ci95;
};

MeanCi mean_ci(const std::vector<double>& v) {
  double m = 0, s = 0;
  for (double x : v) m += x / static_cast<double>(v.size());
  for (double x : v) s += (x - m) * (x - m);
  const double sd = v.size() > 1 ? std::sqrt(s / static_cast<double>(v.size() - 1)) : 0.0;
  return {m, 1.96 * sd / std::sqrt(static_cast<double>(v.size()))};
}

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

}  // namespace

int main(int argc, char** argv) try {
  const examples::Args args{
      argc,
      argv,
      "usage: maml_sinusoid [--steps N] [--meta-batch N] [--inner-lr X] [--inner-steps N]\n"
      "                     [--outer-lr X] [--threads N] [--seed N] [--test-tasks N]\n"
      "                     [--algorithm maml|fomaml] [--svg FILE] [--csv FILE]\n"
      "                     [--log-every N] [--quiet]\n",
      {"steps", "meta-batch", "inner-lr", "inner-steps", "outer-lr", "threads", "seed",
       "test-tasks", "algorithm", "svg", "csv", "log-every"},
      {"quiet"}};
  const long steps = args.get_int("steps", 20000, 1, 100000000);
  const long batch = args.get_int("meta-batch", 25, 1, 100000);
  const long test_tasks = args.get_int("test-tasks", 1000, 2, 10000000);
  const long log_every = args.get_int("log-every", 1000, 1, 100000000);
  const long seed = args.get_int("seed", 1, 0, 1L << 62);
  const std::string algorithm = args.get_string("algorithm", "maml");
  if (algorithm != "maml" && algorithm != "fomaml") {
    std::cerr << "error in flags: --algorithm must be maml or fomaml, got '" << algorithm << "'\n";
    return 2;
  }
  meta::MamlOptions o;
  o.inner_lr = args.get_double("inner-lr", 0.01, 0.0, 10.0);
  o.inner_steps = static_cast<int>(args.get_int("inner-steps", 1, 0, 1000));
  o.threads = static_cast<int>(args.get_int("threads", 0, 0, 1024));
  ml::optim::AdamOptions adam_options;
  adam_options.lr = args.get_double("outer-lr", 1e-3, 1e-12, 10.0);
  const std::string svg_path = args.get_string("svg", "maml_sinusoid.svg");
  const std::string csv_path = args.get_string("csv", "maml_sinusoid.csv");
  const bool quiet = args.has("quiet");

  const auto start = std::chrono::steady_clock::now();
  ml::Rng rng(static_cast<std::uint64_t>(seed));
  auto net = ml::nn::mlp<float>({1, 40, 40, 1}, rng);
  ml::optim::Adam<float> adam(net.parameters(), adam_options);
  const data::SineTasks<float> tasks;
  const data::MetaBatchSampler<data::SineTasks<float>> batches(tasks, batch);
  const meta::Maml maml(o);
  const meta::Fomaml fomaml(o);
  std::ofstream csv;
  if (!csv_path.empty()) {
    csv.open(csv_path);
    csv << "step,meta_loss,support_loss\n";
  }

  for (long step = 1; step <= steps; ++step) {
    const auto episodes = batches.sample(rng);
    const meta::StepStats s = algorithm == "maml" ? maml.meta_step(net, adam, episodes)
                                                  : fomaml.meta_step(net, adam, episodes);
    if (!s.finite) {
      std::cerr << "error: non-finite meta-loss at step " << step << " (query loss " << s.query_loss
                << ", gradient norm " << s.grad_norm << "); stopping\n";
      return 3;
    }
    if (csv) csv << step << ',' << s.query_loss << ',' << s.support_loss << '\n';
    if (!quiet && (step % log_every == 0 || step == steps)) {
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("step %6ld/%ld  meta_loss %8.4f  support_loss %8.4f  %8.0f tasks/s\n", step,
                  steps, s.query_loss, s.support_loss, static_cast<double>(step * batch) / secs);
    }
  }

  // Meta-test on fresh tasks from a separate stream.
  ml::Rng test_rng(static_cast<std::uint64_t>(seed) + 1000003);
  std::vector<double> pre, one, ten;
  for (long t = 0; t < test_tasks; ++t) {
    const auto e = tasks.sample(test_rng);
    pre.push_back(maml.evaluate(net, e, 0).mse);
    one.push_back(maml.evaluate(net, e, 1).mse);
    ten.push_back(maml.evaluate(net, e, 10).mse);
  }
  const MeanCi a = mean_ci(pre), b = mean_ci(one), c = mean_ci(ten);
  if (!quiet)
    std::printf(
        "meta-test on %ld tasks: MSE before adaptation %.4f +- %.4f, after 1 step %.4f +- %.4f, "
        "after 10 "
        "steps %.4f +- %.4f (95%% CI)\n",
        test_tasks, a.mean, a.ci95, b.mean, b.ci95, c.mean, c.ci95);

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
      after.push_back(predict(maml, net, shown_episodes.back(), 10, grid));
    }
    write_svg(svg_path, shown, shown_episodes, before, after, grid);
  }

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "final: mse_pre=%.6g mse_pre_ci=%.3g mse_1=%.6g mse_1_ci=%.3g mse_10=%.6g mse_10_ci=%.3g "
      "steps=%ld "
      "seconds=%.2f\n",
      a.mean, a.ci95, b.mean, b.ci95, c.mean, c.ci95, steps, seconds);
  return std::isfinite(b.mean) && std::isfinite(c.mean) ? 0 : 3;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << '\n';
  return 1;
}
