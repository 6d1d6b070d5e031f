// Heterogeneous task families (multimodal MAML's setting, Vuorio et al. 2019): regression
// tasks drawn from a mixture of sine waves, lines and quadratics, learned by one network
// with any gradient learner (--algorithm maml|metasgd|maml++|pretrain ...), then scored per
// family on fresh tasks after 1 and 10 inner steps.
//
//   maml_multimodal --algorithm maml --steps 20000
//
// Last line: final: sine_1=... line_1=... quad_1=... sine_N=... line_N=... quad_N=...
// worst_N=... steps=... seconds=... (MSE after 1 and N steps; N = 10, or the trained steps
// for the learned step sizes of Meta-SGD and MAML++; worst_N: the worst family).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <metalearn/metalearn.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "common/args.hpp"
#include "common/ranks.hpp"
#include "common/training.hpp"

namespace ml = metalearn;
namespace data = metalearn::data;
namespace meta = metalearn::meta;

int main(int argc, char** argv) {
  return examples::with_ranks(argc, argv, [&]() -> int {
    const examples::Args args{
        argc,
        argv,
        "usage: maml_multimodal [--algorithm "
        "maml|fomaml|reptile|metasgd|anil|maml++|imaml|pretrain]\n"
        "                       [--meta-batch N] [--shots N] [--inner-lr X] [--inner-steps N]\n"
        "                       [--outer-lr X] [--steps N] [--minutes M] [--test-tasks N]\n"
        "                       [--threads N] [--seed N] [--checkpoint FILE] [--csv FILE]\n"
        "                       [--log-every N] [--validate-every N] [--quiet]\n",
        {"algorithm",
         "meta-batch",
         "shots",
         "inner-lr",
         "inner-steps",
         "outer-lr",
         "steps",
         "minutes",
         "test-tasks",
         "threads",
         "seed",
         "checkpoint",
         "csv",
         "log-every",
         "validate-every",
         "msl-anneal-steps",
         "first-order-steps",
         "imaml-lambda",
         "cg-steps",
         "cg-damping"},
        {"quiet"}};
    const std::string algorithm =
        args.get_choice("algorithm", "maml", examples::gradient_algorithms);
    const long seed = args.get_int("seed", 1, 0, 1L << 62);
    const long shots = args.get_int("shots", 10, 1, 100000);
    const long test_tasks = args.get_int("test-tasks", 300, 2, 10000000);
    meta::GradientLearnerOptions o;
    o.inner_lr = args.get_double("inner-lr", 0.01, 0.0, 10.0);
    // Two inner steps: trained with one, MAML's adaptation diverges on some steep lines by
    // the 10th test step (the mean MSE becomes NaN); with two it stays stable.
    o.inner_steps = static_cast<int>(args.get_int("inner-steps", 2, 0, 1000));
    o.threads = static_cast<int>(args.get_int("threads", examples::ranks().threads, 0, 1024));
    // Learned step sizes exist for the trained steps (MAML++) or are tuned to them (Meta-SGD:
    // 10 steps at its learned rates diverge): score those at the trained step count.
    const bool learned_rates = algorithm == "maml++" || algorithm == "metasgd";
    if (learned_rates) o.eval_inner_steps = std::max(1, o.inner_steps);
    const bool reptile = algorithm == "reptile";
    const double outer_lr = args.get_double("outer-lr", reptile ? 1.0 : 1e-3, 1e-12, 10.0);
    meta::TrainerOptions trainer =
        examples::trainer_options(args, 20000, 1000, algorithm == "maml++" ? "cosine" : "constant");
    const auto start = std::chrono::steady_clock::now();

    // The three families, each with K support and K query points (Vuorio et al.'s ranges).
    data::SineOptions so;
    data::LineOptions lo;
    data::QuadraticOptions qo;
    so.shots = lo.shots = qo.shots = shots;
    so.queries = lo.queries = qo.queries = shots;
    const data::TaskMixture mixture{data::SineTasks<float>(so), data::LineTasks<float>(lo),
                                    data::QuadraticTasks<float>(qo)};
    const char* names[] = {"sine", "line", "quad"};
    const data::MetaBatchSampler<std::decay_t<decltype(mixture)>> batches(
        mixture, args.get_int("meta-batch", 25, 1, 100000));
    const auto validation =
        data::fixed_episodes(mixture, 150, static_cast<std::uint64_t>(seed) + 7);

    ml::Rng rng(static_cast<std::uint64_t>(seed));
    auto net = ml::nn::mlp<float>({1, 40, 40, 1}, rng);
    int code = 0;
    examples::with_gradient_learner(
        algorithm, o, examples::policy_options(args), [&](auto& learner) {
          std::int64_t steps_done = 0;
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
          if (!examples::ranks().lead) return;  // rank 0 alone tests and prints
          // Per family: fresh tasks from a stream of their own, MSE after 1 and 10 steps.
          const int long_steps = learned_rates ? o.eval_inner_steps : 10;
          double after1[3], after10[3], worst = 0;
          for (std::size_t k = 0; k < 3; ++k) {
            ml::Rng test_rng(static_cast<std::uint64_t>(seed) + 1000003 + k);
            std::vector<double> one, ten;
            for (long t = 0; t < test_tasks; ++t) {
              const auto e = mixture.sample_family(k, test_rng);
              one.push_back(learner.evaluate(net, e, 1).mse);
              ten.push_back(learner.evaluate(net, e, long_steps).mse);
            }
            const meta::MeanCi a = meta::mean_ci(one), b = meta::mean_ci(ten);
            after1[k] = a.mean;
            after10[k] = b.mean;
            worst = std::isnan(worst) || std::isnan(b.mean) ? NAN : std::max(worst, b.mean);
            if (!args.has("quiet"))
              std::printf(
                  "%s: MSE after 1 step %.4f +- %.4f, after %d steps %.4f +- %.4f (%ld tasks)\n",
                  names[k], a.mean, a.ci95, long_steps, b.mean, b.ci95, test_tasks);
          }
          const double seconds =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          std::printf(
              "final: sine_1=%.5g line_1=%.5g quad_1=%.5g sine_%d=%.5g line_%d=%.5g quad_%d=%.5g "
              "worst_%d=%.5g steps=%lld seconds=%.2f\n",
              after1[0], after1[1], after1[2], long_steps, after10[0], long_steps, after10[1],
              long_steps, after10[2], long_steps, worst, static_cast<long long>(steps_done),
              seconds);
          code = std::isfinite(worst) ? 0 : 3;
        });
    return code;
  });
}
