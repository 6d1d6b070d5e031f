// What the training examples share: choosing a gradient learner by name, the outer
// optimizer each one uses, the flags of STYLE.md §9 mapped onto the trainer, and the
// Omniglot runs (data::split_omniglot of --data, --test-data, --augment, the test scores).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <metalearn/metalearn.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "common/args.hpp"
#include "common/curve_svg.hpp"
#include "common/ranks.hpp"

namespace examples {

namespace ml = metalearn;
namespace meta = metalearn::meta;
namespace data = metalearn::data;

/// The gradient learners the examples offer; CAVIA needs a model with context parameters,
/// which only maml_sinusoid builds.
inline const std::vector<std::string> gradient_algorithms{"maml", "fomaml", "reptile", "metasgd",
                                                          "anil", "maml++", "imaml",   "pretrain"};
inline const std::vector<std::string> gradient_algorithms_with_context{
    "maml", "fomaml", "reptile", "metasgd", "anil", "maml++", "imaml", "pretrain", "cavia"};

/// The options of the algorithm-specific policies, from their flags (defaults: the
/// policies' own): --msl-anneal-steps N --first-order-steps N (MAML++), --imaml-lambda X
/// --cg-steps N --cg-damping X (iMAML).
struct PolicyOptions {
  meta::MultiStepLossOptions multi_step;
  meta::ImplicitGradientOptions implicit;
};
inline PolicyOptions policy_options(const Args& args) {
  PolicyOptions p;
  p.multi_step.anneal_meta_steps =
      args.get_int("msl-anneal-steps", p.multi_step.anneal_meta_steps, 0, 100000000);
  p.multi_step.first_order_meta_steps =
      args.get_int("first-order-steps", p.multi_step.first_order_meta_steps, 0, 100000000);
  p.implicit.lambda = args.get_double("imaml-lambda", p.implicit.lambda, 1e-9, 1e9);
  p.implicit.cg_steps = static_cast<int>(args.get_int("cg-steps", p.implicit.cg_steps, 1, 10000));
  p.implicit.damping = args.get_double("cg-damping", p.implicit.damping, 0.0, 1e9);
  return p;
}

/// Call f(learner) with the gradient learner named by `algorithm`.
template <class F>
void with_gradient_learner(const std::string& algorithm, const meta::GradientLearnerOptions& o,
                           const PolicyOptions& p, F&& f) {
  if (algorithm == "maml") {
    meta::Maml l(o);
    f(l);
  } else if (algorithm == "fomaml") {
    meta::Fomaml l(o);
    f(l);
  } else if (algorithm == "reptile") {
    meta::Reptile l(o);
    f(l);
  } else if (algorithm == "metasgd") {
    meta::MetaSgd l(o);
    f(l);
  } else if (algorithm == "anil") {
    meta::Anil l(o);
    f(l);
  } else if (algorithm == "maml++") {
    meta::MamlPlusPlus l(o, meta::MultiStepLoss(p.multi_step));
    f(l);
  } else if (algorithm == "imaml") {
    meta::Imaml l(o, meta::ImplicitGradient(p.implicit));
    f(l);
  } else if (algorithm == "cavia") {
    meta::Cavia l(o);
    f(l);
  } else if (algorithm == "pretrain") {  // Finn et al.'s baseline: joint training, fine-tuned
    meta::Pretrained l(o);
    f(l);
  } else {
    throw ml::InvalidArgument("unknown algorithm '" + algorithm + "'");
  }
}

/// Call f(optimizer) with the outer optimizer of `learner`: plain SGD with learning rate
/// epsilon for Reptile (which makes the update theta + epsilon (theta' - theta) exactly),
/// Adam for everything else (Finn et al. 2017; Snell et al. 2017).
template <class Learner, class F>
void with_outer_optimizer(Learner& learner, ml::nn::Sequential<float>& net, double lr, F&& f) {
  if constexpr (std::is_same_v<Learner, meta::Reptile>) {
    ml::optim::Sgd<float> sgd(learner.meta_parameters(net), {lr});
    f(sgd);
  } else {
    ml::optim::AdamOptions o;
    o.lr = lr;
    ml::optim::Adam<float> adam(learner.meta_parameters(net), o);
    f(adam);
  }
}

/// The trainer's options from the common flags (--steps --minutes --log-every
/// --validate-every --checkpoint --csv --quiet, and --lr-schedule constant|cosine where an
/// example accepts it; `default_schedule` when it is not given), on the run's ranks.
inline meta::TrainerOptions trainer_options(const Args& args, long default_steps,
                                            long default_log_every,
                                            const std::string& default_schedule = "constant") {
  meta::TrainerOptions o;
  o.steps = args.get_int("steps", default_steps, 0, 100000000);
  o.minutes = args.get_double("minutes", 0.0, 0.0, 1e7);
  o.log_every = args.get_int("log-every", default_log_every, 1, 100000000);
  o.validate_every = args.get_int("validate-every", 10 * o.log_every, 0, 100000000);
  o.checkpoint = args.get_string("checkpoint", "");
  o.csv = args.get_string("csv", "");
  o.log = args.has("quiet") ? nullptr : &std::cout;
  const bool cosine =
      args.get_choice("lr-schedule", default_schedule, {"constant", "cosine"}) == "cosine";
  if (cosine) o.lr_schedule = ml::optim::CosineLr{std::max<std::int64_t>(1, o.steps)};
  o.group = ranks().group;
  // The run's configuration, recorded in the checkpoint: a resume with other options fails
  // naming the first flag that differs. The budget (--steps, --minutes; unless the cosine
  // schedule spans --steps), the output flags and --threads (which never changes a bit)
  // may change between a run and its resume.
  std::vector<std::string> free{"minutes",    "log-every",      "csv",  "quiet",     "threads",
                                "checkpoint", "eval-episodes",  "runs", "test-data", "export",
                                "evaluate",   "validate-every", "svg",  "tta"};
  if (!cosine) free.push_back("steps");
  o.config = args.config(free);
  if (cosine) o.config += "--steps " + std::to_string(o.steps) + "\n";
  return o;
}

/// MAML++ anneals the outer learning rate by a cosine (Antoniou et al. 2019, §4); the
/// others keep it constant.
template <class Learner>
std::string default_schedule() {
  return std::is_same_v<Learner, meta::MamlPlusPlus> ? "cosine" : "constant";
}

/// A stand-in for Omniglot generated in-process (`--data synthetic`, for smoke tests and
/// trying the examples without the data): `alphabets` x `characters` classes of 28x28
/// images, each class a few random strokes, each drawing shifted by up to a pixel and
/// noisy.
inline data::ImageFolder synthetic_characters(int alphabets, int characters, int drawings,
                                              std::uint64_t seed) {
  ml::Rng rng(seed);
  const int n = 28, classes = alphabets * characters;
  ml::Tensor<float> images(ml::Shape{classes * drawings, 1, n, n}, 0.f);
  std::vector<std::int64_t> labels;
  data::ImageFolder f{
      data::ClassDataset<float>(ml::Tensor<float>(ml::Shape{1, 1}), {0}), {}, {}, {}};
  for (int a = 0; a < alphabets; ++a) f.group_names.push_back("alphabet" + std::to_string(a));
  for (int c = 0; c < classes; ++c) {
    std::vector<float> glyph(static_cast<std::size_t>(n * n), 0.f);
    for (int stroke = 0; stroke < 3; ++stroke) {  // a random walk of 12 steps
      double y = ml::uniform(rng, 6, 22), x = ml::uniform(rng, 6, 22);
      const double dy = ml::uniform(rng, -1.5, 1.5), dx = ml::uniform(rng, -1.5, 1.5);
      for (int t = 0; t < 12; ++t, y += dy, x += dx) {
        const int yi = static_cast<int>(y), xi = static_cast<int>(x);
        if (yi >= 1 && yi < n - 1 && xi >= 1 && xi < n - 1)
          glyph[static_cast<std::size_t>(yi * n + xi)] = 1.f;
      }
    }
    for (int d = 0; d < drawings; ++d) {
      const auto sy = static_cast<int>(ml::uniform_index(rng, 3)) - 1,
                 sx = static_cast<int>(ml::uniform_index(rng, 3)) - 1;
      float* img = images.data() + static_cast<std::int64_t>(c * drawings + d) * n * n;
      for (int y = 0; y < n; ++y)
        for (int x = 0; x < n; ++x) {
          const int yy = y - sy, xx = x - sx;
          const float v = yy >= 0 && yy < n && xx >= 0 && xx < n
                              ? glyph[static_cast<std::size_t>(yy * n + xx)]
                              : 0.f;
          img[y * n + x] = v + static_cast<float>(0.1 * ml::uniform(rng, 0.0, 1.0));
        }
      labels.push_back(c);
    }
    f.class_names.push_back("alphabet" + std::to_string(c / characters) + "/character" +
                            std::to_string(c % characters));
    f.group_of.push_back(c / characters);
  }
  f.data = data::ClassDataset<float>(std::move(images), std::move(labels));
  return f;
}

/// The default --data: the shared Omniglot background set beside the source tree.
inline std::string default_omniglot_dir() {
#ifdef EXAMPLES_DEFAULT_DATA
  return EXAMPLES_DEFAULT_DATA;
#else
  return "../shared/data/omniglot/images_background";
#endif
}

/// The image folder of --data or --test-data: `dir`, or generated characters for
/// "synthetic"; `cache` names the decoded-image cache beside the working directory (the data
/// folder may be read-only; it is checked against the folder and rebuilt when stale).
inline data::ImageFolder load_characters(const std::string& dir, const std::string& cache,
                                         std::uint64_t seed) {
  if (dir == "synthetic") return synthetic_characters(6, 8, 20, seed);
  data::ImageFolderOptions o;
  o.size = 28;
  o.cache = cache;
  return data::load_image_folder(dir, o);
}

/// --data DIR (default: the shared background set) prepared as the literature does
/// (data::split_omniglot: rotations as classes; 5 alphabets held out for validation and 5
/// for test, 1 and 1 for the small synthetic set).
inline data::Omniglot load_omniglot(const Args& args, std::uint64_t seed) {
  const std::string dir = args.get_string("data", default_omniglot_dir());
  const std::int64_t held_out = dir == "synthetic" ? 1 : 5;
  ml::Rng rng(seed);
  data::Omniglot og = data::split_omniglot(
      load_characters(dir, "omniglot-28.metalearn-cache", seed), {held_out, held_out}, rng);
  if (!args.has("quiet"))
    std::cout << "omniglot: " << og.data.examples().shape()[0] << " images, " << og.alphabets.size()
              << " alphabets; classes (with rotations): " << og.train.size() << " train, "
              << og.validation.size() << " validation, " << og.test.size() << " test\n";
  return og;
}

/// Write the prepared dataset and its split as raw little-endian files, for a peer
/// implementation to train on exactly the same data (benchmarks/python/
/// protonet_omniglot_torch.py): images.f32 [M, 28, 28], labels.i64 [M] (class ids, equal to
/// ordinals here), and train.i64 / validation.i64 / test.i64 (class ordinals).
inline void export_omniglot(const data::Omniglot& og, const std::string& dir) {
  std::filesystem::create_directories(dir);
  const auto write = [&](const std::string& name, const void* p, std::size_t bytes) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out.write(static_cast<const char*>(p), static_cast<std::streamsize>(bytes));
    if (!out) throw ml::IoError("cannot write '" + dir + "/" + name + "'");
  };
  const auto& x = og.data.examples();
  write("images.f32", x.data(), sizeof(float) * static_cast<std::size_t>(x.numel()));
  write("labels.i64", og.data.labels().data(), sizeof(std::int64_t) * og.data.labels().size());
  write("train.i64", og.train.data(), sizeof(std::int64_t) * og.train.size());
  write("validation.i64", og.validation.data(), sizeof(std::int64_t) * og.validation.size());
  write("test.i64", og.test.data(), sizeof(std::int64_t) * og.test.size());
}

/// The flag --augment none|affine|crop-flip as a sampler wrapper: Koch et al. 2015's random
/// affine distortions (data::AffineOptions, in pixels of the 28x28 images) or a random crop
/// of 2 pixels' padding and a horizontal flip, each image by its own draw. One sample type
/// whatever the choice (data::AnySampler), so the trainer is compiled once.
class Augmentation {
 public:
  explicit Augmentation(const Args& args)
      : kind_(args.get_choice("augment", "none", {"none", "affine", "crop-flip"})) {}
  template <class Sampler>
  auto operator()(Sampler sampler) const {
    using Sample = std::decay_t<decltype(sampler.sample(std::declval<ml::Rng&>()))>;
    if (kind_ == "affine")
      return data::AnySampler<Sample>(data::AffineAugmented<Sampler>(std::move(sampler), {}));
    if (kind_ == "crop-flip")
      return data::AnySampler<Sample>(
          data::Augmented<data::Augmented<Sampler, data::RandomCrop>, data::RandomFlip>(
              data::Augmented<Sampler, data::RandomCrop>(std::move(sampler), data::RandomCrop(2)),
              data::RandomFlip(0.5)));
    return data::AnySampler<Sample>(std::move(sampler));
  }

 private:
  std::string kind_;
};

/// Lake-style episodes (issue 19): 20-way 1-shot, the 20 upright characters of one
/// alphabet among `classes`, support and queries by different drawers; none when no
/// alphabet has 20 of them.
inline std::optional<data::GroupEpisodeSampler<float>> lake_style_sampler(
    const data::Omniglot& og, const std::vector<std::int64_t>& classes, std::int64_t queries) {
  std::vector<std::int64_t> upright;
  std::vector<std::int64_t> per_alphabet(og.alphabets.size(), 0);
  for (const std::int64_t c : classes)
    if (c % 4 == 0) {
      upright.push_back(c);
      ++per_alphabet[static_cast<std::size_t>(og.alphabet_of[static_cast<std::size_t>(c)])];
    }
  if (upright.empty() || *std::max_element(per_alphabet.begin(), per_alphabet.end()) < 20)
    return std::nullopt;
  return data::GroupEpisodeSampler<float>(og.data, og.alphabet_of, {20, 1, queries}, upright);
}

/// The Omniglot examples' common part: train `net` with `learner` on the batches that
/// `make_batches(omniglot, augmentation)` builds from --data (unless --evaluate), keep the
/// best checkpoint by validation accuracy, then score the test classes on --eval-episodes
/// episodes of `shape` and of 5-way and 20-way 1-shot (when the model can: a gradient
/// learner's head has a fixed number of classes, `fixed_ways`, 0 for none), Lake-style
/// episodes, and Lake-format runs from --runs, and print the `final:` line. The test classes
/// are --data's held-out alphabets, or every alphabet of --test-data DIR (the standard
/// protocol: train on images_background, test on images_evaluation). `--evaluate --runs DIR`
/// alone loads no folder and scores the runs only. Returns the exit code.
template <class Learner, class MakeBatches>
int run_omniglot(const Args& args, Learner& learner, ml::nn::Sequential<float>& net,
                 const MakeBatches& make_batches, const data::EpisodeOptions& shape,
                 long fixed_ways, double outer_lr, long default_steps, std::uint64_t seed) {
  const auto start = std::chrono::steady_clock::now();
  const bool quiet = args.has("quiet"), evaluate = args.has("evaluate");
  const long eval_episodes = args.get_int("eval-episodes", 600, 2, 1000000);
  const long val_episodes = args.get_int("val-episodes", 100, 2, 1000000);
  const std::string checkpoint = args.get_string("checkpoint", "");
  ml::Rng rng(seed);
  meta::TrainResult trained;
  // The training folder is needed to train, and to score its held-out alphabets: with no
  // --test-data, unless --runs was asked for alone.
  const bool scores_held_out = !args.has("test-data") && (args.has("data") || !args.has("runs"));
  std::optional<data::Omniglot> og;
  if (args.has("svg") && !args.has("csv")) args.bad("--svg FILE plots --csv FILE: give both");
  if (!evaluate || scores_held_out) og = load_omniglot(args, seed);
  if (evaluate) {
    if (checkpoint.empty()) throw ml::InvalidArgument("--evaluate needs --checkpoint FILE");
    meta::load_model(learner, net, checkpoint);
  } else {
    // --validation lake-style: choose the best model by Lake-style episodes of the
    // validation alphabets (20-way 1-shot, 5 queries a class) instead of episodes of `shape`.
    std::vector<data::Episode<float>> validation;
    if (args.get_choice("validation", "standard", {"standard", "lake-style"}) == "lake-style") {
      const auto lake_style = lake_style_sampler(*og, og->validation, 5);
      if (fixed_ways != 0 || !lake_style)
        args.bad(
            "--validation lake-style needs a 20-way model and a validation alphabet of 20 "
            "characters");
      validation = data::fixed_episodes(*lake_style, val_episodes, seed + 17);
    } else {
      validation = data::fixed_episodes(
          data::EpisodeSampler<float>(og->data, shape, og->validation), val_episodes, seed + 17);
    }
    const meta::TrainerOptions o =
        trainer_options(args, default_steps, 100, default_schedule<Learner>());
    const auto batches = make_batches(*og, Augmentation(args));
    with_outer_optimizer(learner, net, outer_lr, [&](auto& outer) {
      trained = meta::train(learner, net, outer, batches, validation, rng, o);
    });
    if (trained.non_finite) {
      std::cerr << "error: " << trained.message << '\n';
      return 3;
    }
    if (!quiet)
      std::cout << "validation: best " << trained.best.mean << " +- " << trained.best.ci95
                << " at step " << trained.best_step << "\n";
    if (!ranks().lead) return 0;  // rank 0 alone tests and prints
    if (args.has("svg")) {
      write_learning_curve_svg(o.csv, args.get_string("svg", ""), "learning curve: " + o.csv,
                               args.get_string("validation", "standard") == "lake-style"
                                   ? "Lake-style 20-way 1-shot accuracy"
                                   : std::to_string(shape.ways) + "-way " +
                                         std::to_string(shape.shots) + "-shot accuracy");
      if (!quiet) std::cout << "wrote " << args.get_string("svg", "") << "\n";
    }
    if (!checkpoint.empty()) meta::load_model(learner, net, checkpoint);  // the best model
  }
  std::optional<data::Omniglot> test_folder;
  if (args.has("test-data")) {
    const std::string dir = args.get_string("test-data", "");
    test_folder = data::omniglot_test_set(
        load_characters(dir, "omniglot-28-test.metalearn-cache", seed + 1000));
    if (!quiet)
      std::cout << "test data: " << test_folder->alphabets.size() << " alphabets, "
                << test_folder->test.size() << " classes (with rotations) from " << dir << "\n";
  }
  const data::Omniglot* test = test_folder ? &*test_folder : (og ? &*og : nullptr);
  const std::string where = test_folder ? "test data" : "test alphabets";

  std::string line = "final:";
  const auto add = [&](const std::string& key, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " %s=%.4f", key.c_str(), v);
    line += buf;
  };
  bool finite = true;
  // --tta N: test-time augmentation, N distorted copies of every support image.
  const int tta = static_cast<int>(args.get_int("tta", 0, 0, 100));
  const auto scored = [&](std::vector<data::Episode<float>> episodes, std::uint64_t stream) {
    ml::Rng draws(seed + stream + 5000);
    if (tta > 0)
      for (auto& e : episodes) e = data::augment_support(e, tta, draws);
    return meta::validate(learner, net, episodes);
  };
  if (test != nullptr) {
    const auto test_score = [&](data::EpisodeOptions e, std::uint64_t stream) {
      return scored(data::fixed_episodes(data::EpisodeSampler<float>(test->data, e, test->test),
                                         eval_episodes, seed + stream),
                    stream);
    };
    const meta::MeanCi main_score = test_score(shape, 101);
    finite = std::isfinite(main_score.mean);
    add("acc", main_score.mean);
    add("ci", main_score.ci95);
    if (!quiet)
      std::cout << where << ", " << shape.ways << "-way " << shape.shots
                << "-shot: " << main_score.mean << " +- " << main_score.ci95 << " (95% CI, "
                << eval_episodes << " episodes)\n";
    for (const long ways : {5L, 20L}) {
      if ((fixed_ways != 0 && fixed_ways != ways) || (ways == shape.ways && shape.shots == 1))
        continue;
      if (ways > static_cast<long>(test->test.size())) continue;
      const meta::MeanCi m =
          test_score({ways, 1, shape.queries}, 200 + static_cast<std::uint64_t>(ways));
      add("acc_" + std::to_string(ways) + "w1s", m.mean);
      add("ci_" + std::to_string(ways) + "w1s", m.ci95);
      if (!quiet)
        std::cout << where << ", " << ways << "-way 1-shot: " << m.mean << " +- " << m.ci95 << "\n";
    }
    if (fixed_ways == 0 || fixed_ways == 20) {
      if (const auto lake_style = lake_style_sampler(*test, test->test, 1)) {
        const meta::MeanCi m =
            scored(data::fixed_episodes(*lake_style, eval_episodes, seed + 300), 300);
        add("lake_style_acc", m.mean);
        add("lake_style_ci", m.ci95);
        if (!quiet)
          std::cout << where
                    << ", Lake-style 20-way 1-shot (one alphabet, other drawers): " << m.mean
                    << " +- " << m.ci95 << "\n";
      }
    }
  }
  if (args.has("runs")) {
    const auto runs = data::load_lake_runs(args.get_string("runs", ""));
    std::vector<data::Episode<float>> episodes;
    for (const auto& r : runs)
      if (fixed_ways == 0 || r.episode.ways == fixed_ways) episodes.push_back(r.episode);
    if (episodes.empty())
      throw ml::InvalidArgument("no Lake run in --runs has the model's " +
                                std::to_string(fixed_ways) + " classes");
    const meta::MeanCi lake = scored(episodes, 400);
    finite = finite && std::isfinite(lake.mean);
    add("lake_acc", lake.mean);
    add("lake_ci", lake.ci95);
    if (!quiet)
      std::cout << "Lake runs (" << episodes.size() << "): " << lake.mean << " +- " << lake.ci95
                << "\n";
  }
  line += " steps=" + std::to_string(trained.steps);
  add("seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  std::cout << line << '\n';
  return finite ? 0 : 3;
}

}  // namespace examples
