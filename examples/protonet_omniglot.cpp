// examples/protonet_omniglot.cpp
//
// Prototypical Networks on Omniglot (Snell et al. 2017, §3.1): the conv4 embedding (64
// filters, no head), squared Euclidean distance, trained on 60-way 1-shot episodes with 5
// queries per class and Adam 1e-3, scored on 5-way and 20-way 1-shot episodes of held-out
// alphabets (rotations as classes).
//
//   ./protonet_omniglot --data DIR --minutes 30 --checkpoint proto.ckpt
//   ./protonet_omniglot --evaluate --checkpoint proto.ckpt --runs DIR_OF_LAKE_RUNS
//   ./protonet_omniglot --data synthetic --steps 20
//   ./protonet_omniglot --test-data DIR_OF_images_evaluation --augment affine --minutes 30
//
// DIR defaults to ../shared/data/omniglot/images_background beside the source tree.
// --test-data DIR scores every alphabet of DIR instead of the held-out ones; --augment
// none|affine|crop-flip distorts the training images; --evaluate --runs DIR alone loads no
// Omniglot folder.
//
// Prints progress and validation lines, the test accuracy with a 95% CI, then
//   final: acc=<x> ci=<x> acc_5w1s=<x> ci_5w1s=<x> acc_20w1s=<x> ci_20w1s=<x>
//          [lake_style_acc=<x> lake_style_ci=<x>] [lake_acc=<x> lake_ci=<x>] steps=<n>
//          seconds=<t>
// (acc is 5-way at --shots; --distance cosine switches the distance; --method matching trains
// Matching Networks (Vinyals et al. 2016) on the same episodes instead, with the cosine
// attention sharpened by --temperature, 10 by default: the library's default is the paper's 1,
// under which a 60-way episode's attention starts almost uniform; --fce adds the full-context
// embeddings, --fce-steps K attention steps for a query). --export DIR writes
// the prepared images and the alphabet split for benchmarks/python/protonet_omniglot_torch.py
// and exits.
#include <algorithm>
#include <iostream>
#include <map>
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
        "usage: protonet_omniglot [--data DIR|synthetic] [--test-data DIR|synthetic]\n"
        "                         [--augment none|affine|crop-flip] [--ways N] [--shots N] "
        "[--queries N]\n"
        "                         [--meta-batch N] [--method protonet|matching] [--temperature X]\n"
        "                         [--fce] [--fce-steps K] [--episodes random|alphabet]\n"
        "                         [--distance squared_euclidean|cosine] [--outer-lr X]\n"
        "                         [--steps N] [--minutes M] [--threads N] [--seed N]\n"
        "                         [--lr-schedule constant|cosine] [--filters N]\n"
        "                         [--validation standard|lake-style]\n"
        "                         [--checkpoint FILE] [--evaluate] [--runs DIR] [--csv FILE]\n"
        "                         [--log-every N] [--validate-every N] [--val-episodes N]\n"
        "                         [--eval-episodes N] [--export DIR] [--svg FILE] [--tta N] "
        "[--quiet]\n",
        {"test-data",    "augment",       "meta-batch", "data",        "ways",
         "shots",        "queries",       "method",     "temperature", "distance",
         "outer-lr",     "steps",         "minutes",    "threads",     "seed",
         "checkpoint",   "runs",          "csv",        "log-every",   "validate-every",
         "val-episodes", "eval-episodes", "export",     "fce-steps",   "episodes",
         "svg",          "lr-schedule",   "tta",        "filters",     "validation"},
        {"quiet", "evaluate", "fce"}};
    const data::EpisodeOptions train_shape{args.get_int("ways", 60, 2, 10000),
                                           args.get_int("shots", 1, 1, 100),
                                           args.get_int("queries", 5, 1, 100)};
    const std::string distance =
        args.get_choice("distance", "squared_euclidean", {"squared_euclidean", "cosine"});
    const std::string episodes = args.get_choice("episodes", "random", {"random", "alphabet"});
    const std::string method = args.get_choice("method", "protonet", {"protonet", "matching"});
    ml::nn::Conv4Options c;
    c.embedding_only = true;
    c.filters = args.get_int("filters", 64, 1, 4096);
    meta::MatchingNetOptions mo;
    mo.temperature = args.get_double("temperature", 10.0, 1e-6, 1e6);
    if (args.has("fce") || args.has("fce-steps")) {  // full-context embeddings over conv4's
      if (method != "matching" || !args.has("fce"))
        args.bad("--fce and --fce-steps go with --method matching --fce");
      mo.full_context.dim = ml::nn::conv4_features(c);
      mo.full_context.processing_steps = static_cast<int>(args.get_int("fce-steps", 1, 1, 100));
    }
    meta::ProtoNetOptions o;
    o.threads = static_cast<int>(args.get_int("threads", examples::ranks().threads, 0, 1024));
    mo.threads = o.threads;
    const double outer_lr = args.get_double("outer-lr", 1e-3, 1e-12, 10.0);
    const auto seed = static_cast<std::uint64_t>(args.get_int("seed", 1, 0, 1L << 62));
    const long meta_batch = args.get_int("meta-batch", 1, 1, 10000);
    if (args.has("export")) {  // the same data and split for a peer implementation; no training
      const data::Omniglot og = examples::load_omniglot(args, seed);
      if (examples::ranks().lead) examples::export_omniglot(og, args.get_string("export", ""));
      std::cout << "exported to " << args.get_string("export", "") << '\n';
      return 0;
    }
    ml::Rng init(seed);
    mo.full_context.seed = seed ^ 0x9e3779b97f4a7c15ULL;  // not the network's stream
    auto net = ml::nn::conv4<float>(c, init);
    const auto batches = [&](const data::Omniglot& og, const examples::Augmentation& augment) {
      // Train ways cannot exceed the training classes (the synthetic set is small).
      data::EpisodeOptions shape = train_shape;
      shape.ways = std::min<std::int64_t>(shape.ways, static_cast<std::int64_t>(og.train.size()));
      if (episodes == "alphabet") {  // Lake's runs: every class of an episode from one alphabet
        std::map<std::int64_t, std::int64_t> per_alphabet;
        for (const std::int64_t k : og.train)
          ++per_alphabet[og.alphabet_of[static_cast<std::size_t>(k)]];
        std::int64_t largest = 0;
        for (const auto& [alphabet, classes] : per_alphabet) largest = std::max(largest, classes);
        shape.ways = std::min(shape.ways, largest);
        return data::MetaBatchSampler<data::AnySampler<data::Episode<float>>>(
            augment(data::GroupEpisodeSampler<float>(og.data, og.alphabet_of, shape, og.train)),
            meta_batch);
      }
      return data::MetaBatchSampler<data::AnySampler<data::Episode<float>>>(
          augment(data::EpisodeSampler<float>(og.data, shape, og.train)), meta_batch);
    };
    // Validation and the headline score: 5-way at the training shots, 15 queries per class.
    const data::EpisodeOptions eval_shape{5, train_shape.shots, 15};
    const auto run = [&](auto learner) {
      return examples::run_omniglot(args, learner, net, batches, eval_shape, 0, outer_lr, 5000,
                                    seed);
    };
    if (method == "matching") return run(meta::MatchingNet<>(mo));
    return distance == "cosine" ? run(meta::ProtoNet<meta::Cosine>(o)) : run(meta::ProtoNet<>(o));
  });
}
