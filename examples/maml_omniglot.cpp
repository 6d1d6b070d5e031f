// examples/maml_omniglot.cpp
//
// Few-shot classification of Omniglot characters with the gradient-based learners (Finn et
// al. 2017, §5.2): the conv4 network (64 filters, batch norm with batch statistics), inner
// SGD with alpha = 0.4, 1 inner step in training and 3 at test, meta-batch 32, Adam 1e-3.
// Rotations by 90 degrees are classes of their own; alphabets are held out for validation
// and test.
//
//   ./maml_omniglot --data DIR --ways 5 --shots 1 --minutes 30 --checkpoint maml5.ckpt
//   ./maml_omniglot --evaluate --checkpoint maml5.ckpt --runs DIR_OF_LAKE_RUNS
//   ./maml_omniglot --data synthetic --steps 20     # no data needed: generated characters
//   ./maml_omniglot --test-data DIR_OF_images_evaluation --augment crop-flip
//
// DIR defaults to ../shared/data/omniglot/images_background beside the source tree.
// --test-data DIR scores every alphabet of DIR instead of the held-out ones; --augment
// none|affine|crop-flip distorts the training images; --evaluate --runs DIR alone loads no
// Omniglot folder.
//
// Prints a progress line every --log-every steps and the validation accuracy, then the
// accuracy on the test alphabets with a 95% CI, then one summary line:
//   final: acc=<x> ci=<x> [lake_acc=<x> lake_ci=<x>] steps=<n> seconds=<t>
// Exit codes: 0 ok, 1 error, 2 bad flags, 3 non-finite loss.
#include <iostream>
#include <metalearn/metalearn.hpp>
#include <string>

#include "common/args.hpp"
#include "common/ranks.hpp"
#include "common/training.hpp"

namespace ml = metalearn;
namespace meta = metalearn::meta;
namespace data = metalearn::data;

int main(int argc, char** argv) {
  return examples::with_ranks(argc, argv, [&]() -> int {
    const examples::Args args{
        argc,
        argv,
        "usage: maml_omniglot [--data DIR|synthetic] [--test-data DIR|synthetic]\n"
        "                     [--augment none|affine|crop-flip]\n"
        "                     [--algorithm "
        "maml|fomaml|reptile|metasgd|anil|maml++|imaml|pretrain]\n"
        "                     [--ways N] [--shots N] [--queries N] [--meta-batch N]\n"
        "                     [--inner-lr X] [--inner-steps N] [--eval-inner-steps N]\n"
        "                     [--outer-lr X] [--steps N] [--minutes M] [--threads N] [--seed N]\n"
        "                     [--checkpoint FILE] [--evaluate] [--runs DIR] [--csv FILE]\n"
        "                     [--log-every N] [--validate-every N] [--val-episodes N]\n"
        "                     [--eval-episodes N] [--lr-schedule constant|cosine]\n"
        "                     [--msl-anneal-steps N] [--first-order-steps N] [--imaml-lambda X]\n"
        "                     [--cg-steps N] [--cg-damping X] [--per-step-bn on|off] [--svg FILE]\n"
        "                     [--quiet]\n",
        {"data",
         "test-data",
         "augment",
         "algorithm",
         "ways",
         "shots",
         "queries",
         "meta-batch",
         "inner-lr",
         "inner-steps",
         "eval-inner-steps",
         "outer-lr",
         "steps",
         "minutes",
         "threads",
         "seed",
         "checkpoint",
         "runs",
         "csv",
         "svg",
         "log-every",
         "validate-every",
         "val-episodes",
         "eval-episodes",
         "lr-schedule",
         "msl-anneal-steps",
         "first-order-steps",
         "imaml-lambda",
         "cg-steps",
         "cg-damping",
         "per-step-bn"},
        {"quiet", "evaluate"}};
    const std::string algorithm =
        args.get_choice("algorithm", "maml", examples::gradient_algorithms);
    const data::EpisodeOptions shape{args.get_int("ways", 5, 2, 1000),
                                     args.get_int("shots", 1, 1, 100),
                                     args.get_int("queries", 5, 1, 100)};
    const long meta_batch = args.get_int("meta-batch", 32, 1, 10000);
    meta::GradientLearnerOptions o;
    o.inner_lr = args.get_double("inner-lr", 0.4, 0.0, 100.0);
    // Reptile (Nichol et al. 2018) takes several inner steps and a large outer step epsilon.
    const bool reptile = algorithm == "reptile";
    o.inner_steps = static_cast<int>(args.get_int("inner-steps", reptile ? 5 : 1, 0, 1000));
    // MAML++'s per-step rates exist for the trained steps only: evaluate with those.
    o.eval_inner_steps = static_cast<int>(args.get_int(
        "eval-inner-steps", algorithm == "maml++" ? std::max(1, o.inner_steps) : 3, 0, 1000));
    o.threads = static_cast<int>(args.get_int("threads", examples::ranks().threads, 0, 1024));
    const double outer_lr = args.get_double("outer-lr", reptile ? 1.0 : 1e-3, 1e-12, 10.0);
    const auto seed = static_cast<std::uint64_t>(args.get_int("seed", 1, 0, 1L << 62));
    ml::Rng init(seed);
    ml::nn::Conv4Options c;
    c.outputs = shape.ways;
    // MAML++'s per-step batch-norm weights (BNWB), one row per inner step count.
    if (args.get_choice("per-step-bn", algorithm == "maml++" ? "on" : "off", {"on", "off"}) == "on")
      c.per_step_batch_norm = std::max(o.inner_steps, o.eval_inner_steps);
    auto net = ml::nn::conv4<float>(c, init);
    const auto batches = [&](const data::Omniglot& og, const examples::Augmentation& augment) {
      return data::MetaBatchSampler<data::AnySampler<data::Episode<float>>>(
          augment(data::EpisodeSampler<float>(og.data, shape, og.train)), meta_batch);
    };
    int code = 0;
    examples::with_gradient_learner(
        algorithm, o, examples::policy_options(args), [&](auto& learner) {
          code = examples::run_omniglot(args, learner, net, batches, shape, shape.ways, outer_lr,
                                        2000, seed);
        });
    return code;
  });
}
