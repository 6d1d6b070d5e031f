// examples/siamese_omniglot.cpp
//
// A Siamese network on Omniglot (Koch et al. 2015's task, Hadsell et al. 2006's loss): the
// conv4 embedding (64 filters, no head), Euclidean distance, the contrastive loss with
// margin 1, Adam 1e-3 (or --loss koch: Koch et al.'s learned weighted-L1 head with binary
// cross-entropy); one-shot classification of held-out alphabets by the nearest support
// example, and same/different verification. Each step embeds one set of --set-classes C
// classes of --set-images M images (64 x 4 by default, at most the training classes: the
// 256 images of 128 pairs) and scores the pairs among them (--mining hard: per image its
// farthest same-class and nearest other-class image; all: every pair). --mining none
// trains on --pairs N independent pairs instead (half same-class; --hard-negatives P: that
// share of the different pairs from one alphabet).
//
//   ./siamese_omniglot --data DIR --minutes 30 --checkpoint siamese.ckpt
//   ./siamese_omniglot --evaluate --checkpoint siamese.ckpt --runs DIR_OF_LAKE_RUNS
//   ./siamese_omniglot --data synthetic --steps 20
//   ./siamese_omniglot --test-data DIR_OF_images_evaluation --augment affine
//
// DIR defaults to ../shared/data/omniglot/images_background beside the source tree.
// --test-data DIR scores every alphabet of DIR instead of the held-out ones; --augment
// none|affine|crop-flip distorts the training images; --evaluate --runs DIR alone loads no
// Omniglot folder.
//
// Prints progress and validation lines, the test accuracy with a 95% CI, then
//   final: acc=<x> ci=<x> acc_20w1s=<x> ci_20w1s=<x> [lake_acc=<x> lake_ci=<x>] steps=<n>
//          seconds=<t>
#include <algorithm>
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
        "usage: siamese_omniglot [--data DIR|synthetic] [--test-data DIR|synthetic]\n"
        "                        [--augment none|affine|crop-flip] [--pairs N] [--margin X]\n"
        "                        [--loss contrastive|squared|koch] [--outer-lr X] [--steps N]\n"
        "                        [--minutes M] [--threads N] [--seed N] [--checkpoint FILE]\n"
        "                        [--evaluate] [--runs DIR] [--csv FILE] [--log-every N]\n"
        "                        [--validate-every N] [--val-episodes N] [--eval-episodes N]\n"
        "                        [--hard-negatives P] [--validation standard|lake-style]\n"
        "                        [--tta N] [--svg FILE] [--mining none|hard|all]\n"
        "                        [--set-classes C] [--set-images M]\n"
        "                        [--lr-schedule constant|cosine] [--quiet]\n",
        {"data",           "test-data",    "augment",       "pairs",       "margin",
         "loss",           "outer-lr",     "steps",         "minutes",     "threads",
         "seed",           "checkpoint",   "runs",          "csv",         "log-every",
         "validate-every", "val-episodes", "eval-episodes", "svg",         "hard-negatives",
         "validation",     "tta",          "mining",        "set-classes", "set-images",
         "lr-schedule"},
        {"quiet", "evaluate"}};
    const long pairs = args.get_int("pairs", 128, 2, 100000);
    const double hard_negatives = args.get_double("hard-negatives", 0.0, 0.0, 1.0);
    const std::string mining = args.get_choice("mining", "hard", {"none", "hard", "all"});
    const long set_classes = args.get_int("set-classes", 64, 2, 100000);
    const long set_images = args.get_int("set-images", 4, 2, 20);
    if (mining == "none" && (args.has("set-classes") || args.has("set-images")))
      args.bad("--set-classes and --set-images shape the episodes of --mining hard|all");
    if (mining != "none" && args.has("pairs"))
      args.bad("--pairs sizes PairSampler's batches (--mining none); sets are --set-classes");
    if (mining != "none" && args.has("hard-negatives"))
      args.bad("--hard-negatives shapes PairSampler's pairs; --mining pairs within episodes");
    meta::SiameseOptions o;
    o.margin = args.get_double("margin", 1.0, 1e-6, 1e6);
    o.threads = static_cast<int>(args.get_int("threads", examples::ranks().threads, 0, 1024));
    o.mining = mining == "all" ? meta::Mining::all : meta::Mining::hard;
    const std::string loss =
        args.get_choice("loss", "contrastive", {"contrastive", "squared", "koch"});
    o.head_features = 64;  // conv4's embedding size at 28x28 (used by --loss koch)
    const double outer_lr = args.get_double("outer-lr", 1e-3, 1e-12, 10.0);
    const auto seed = static_cast<std::uint64_t>(args.get_int("seed", 1, 0, 1L << 62));
    ml::Rng init(seed);
    ml::nn::Conv4Options c;
    c.embedding_only = true;
    auto net = ml::nn::conv4<float>(c, init);
    const auto pair_batches = [&](const data::Omniglot& og, const examples::Augmentation& augment) {
      // --hard-negatives P: that share of the different pairs from one alphabet.
      return augment(
          data::PairSampler<float>(og.data, pairs, og.train, {og.alphabet_of, hard_negatives}));
    };
    const auto episode_batches = [&](const data::Omniglot& og,
                                     const examples::Augmentation& augment) {
      const long classes = args.has("set-classes")
                               ? set_classes
                               : std::min(set_classes, static_cast<long>(og.train.size()));
      return data::MetaBatchSampler<data::AnySampler<data::Episode<float>>>(
          augment(data::EpisodeSampler<float>(og.data, {classes, 1, set_images - 1}, og.train)), 1);
    };
    const data::EpisodeOptions eval_shape{5, 1, 15};
    const auto run = [&](auto learner) {
      if (mining != "none")
        return examples::run_omniglot(args, learner, net, episode_batches, eval_shape, 0, outer_lr,
                                      5000, seed);
      return examples::run_omniglot(args, learner, net, pair_batches, eval_shape, 0, outer_lr, 5000,
                                    seed);
    };
    if (loss == "koch") return run(meta::Siamese<meta::L1, meta::KochHead>(o));
    return loss == "squared" ? run(meta::Siamese<meta::Euclidean, meta::SquaredContrastive>(o))
                             : run(meta::Siamese<>(o));
  });
}
