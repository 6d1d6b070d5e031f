// Multi-task learning on Multi-Fashion (two Fashion-MNIST items per image; tasks: the
// left item's class and the right one's), with any of the ten weighting and aggregation
// methods, against single-task baselines trained with the same budget.
//
//   mtl_multifashion --method pcgrad --minutes 5
//
// Last line: final: acc_left=... acc_right=... delta_m=... steps=... seconds=...
// (delta_m: Maninis et al.'s mean relative change against the baselines, in percent;
// negative is better).
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

#include "common/args.hpp"
#include "common/ranks.hpp"
#include "common/training.hpp"

namespace ml = metalearn;
namespace mtl = metalearn::mtl;
namespace nn = metalearn::nn;

namespace {

const std::vector<std::string> methods{"ew",   "uw",     "dwa",    "gradnorm", "rlw",
                                       "mgda", "pcgrad", "cagrad", "imtl",     "nash"};

// Call f(learner) with the learner of `method`.
template <class F>
void with_mtl_learner(const std::string& method, mtl::MtlLearnerOptions o, F&& f) {
  using namespace mtl;
  if (method == "ew") {
    MtlLearner<EqualWeighting, SumGradients> l(o);
    f(l);
  } else if (method == "uw") {
    MtlLearner<UncertaintyWeighting, SumGradients> l(o);
    f(l);
  } else if (method == "dwa") {
    MtlLearner<Dwa, SumGradients> l(o);
    f(l);
  } else if (method == "gradnorm") {
    MtlLearner<GradNorm, SumGradients> l(o);
    f(l);
  } else if (method == "rlw") {
    MtlLearner<RandomLossWeighting, SumGradients> l(o);
    f(l);
  } else if (method == "mgda") {
    MtlLearner<EqualWeighting, Mgda> l(o);
    f(l);
  } else if (method == "pcgrad") {
    MtlLearner<EqualWeighting, PcGrad> l(o);
    f(l);
  } else if (method == "cagrad") {
    MtlLearner<EqualWeighting, CaGrad> l(o);
    f(l);
  } else if (method == "imtl") {
    MtlLearner<EqualWeighting, ImtlG> l(o);
    f(l);
  } else {  // nash; its authors clip the shared parameters' update at norm 1
    if (o.clip_shared_norm == 0) o.clip_shared_norm = 1.0;
    MtlLearner<EqualWeighting, NashMtl> l(o);
    f(l);
  }
}

// A stand-in for Fashion-MNIST generated in-process (--data synthetic): 10 classes, each
// a random blocky pattern, every item of it noisy and shifted by up to two pixels.
ml::data::ClassDataset<float> synthetic_items(std::int64_t count, std::uint64_t seed) {
  ml::Rng rng(seed);
  const int n = 28;
  std::vector<std::vector<float>> patterns(10, std::vector<float>(n * n, 0.f));
  for (auto& p : patterns)
    for (int b = 0; b < 6; ++b) {
      const int y = 4 + static_cast<int>(ml::uniform_index(rng, 16)),
                x = 4 + static_cast<int>(ml::uniform_index(rng, 16));
      for (int dy = 0; dy < 5; ++dy)
        for (int dx = 0; dx < 5; ++dx) p[(y + dy) * n + x + dx] = 1.f;
    }
  ml::Tensor<float> images(ml::Shape{count, 1, n, n}, 0.f);
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < count; ++i) {
    const auto c = static_cast<std::int64_t>(i % 10);
    const int sy = static_cast<int>(ml::uniform_index(rng, 5)) - 2,
              sx = static_cast<int>(ml::uniform_index(rng, 5)) - 2;
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) {
        const int yy = y - sy, xx = x - sx;
        const float v = yy >= 0 && yy < n && xx >= 0 && xx < n ? patterns[c][yy * n + xx] : 0.f;
        images.data()[i * n * n + y * n + x] = v * static_cast<float>(ml::uniform(rng, 0.6, 1.0));
      }
    labels.push_back(c);
  }
  return ml::data::ClassDataset<float>(std::move(images), std::move(labels));
}

// The batch with only task t: what a single-task baseline trains on.
mtl::MultiTaskBatch<float> only_task(mtl::MultiTaskBatch<float> b, std::size_t t) {
  b.tasks = {b.tasks[t]};
  return b;
}

// A sampler's batches with only task t.
template <class Sampler>
struct OnlyTask {
  const Sampler* sampler;
  std::size_t task;
  mtl::MultiTaskBatch<float> sample(ml::Rng& rng) const {
    return only_task(sampler->sample(rng), task);
  }
};

struct Outcome {
  std::vector<double> test;  // per-task accuracy on the test set
  std::int64_t steps = 0;
};

}  // namespace

int main(int argc, char** argv) {
  return examples::with_ranks(argc, argv, [&]() -> int {
    const examples::Args args{
        argc,
        argv,
        "usage: mtl_multifashion [--data DIR|synthetic] [--method "
        "ew|uw|dwa|gradnorm|rlw|mgda|pcgrad|cagrad|imtl|nash]\n"
        "                        [--gramian parameters|representation]\n"
        "                        [--arch hps|mmoe] [--experts N] [--batch N] [--lr X]\n"
        "                        [--train-examples N] [--val-examples N] [--test-examples N]\n"
        "                        [--steps N] [--minutes M] [--seed N] [--checkpoint FILE]\n"
        "                        [--csv FILE] [--log-every N] [--validate-every N]\n"
        "                        [--baselines FILE|none] [--quiet]\n",
        {"data", "method", "gramian", "arch", "experts", "batch", "lr", "train-examples",
         "val-examples", "test-examples", "steps", "minutes", "seed", "checkpoint", "csv",
         "log-every", "validate-every", "baselines"},
        {"quiet"}};
    const std::string method = args.get_choice("method", "ew", methods);
    const std::string arch = args.get_choice("arch", "hps", {"hps", "mmoe"});
    const std::string dir = args.get_string("data", mtl::default_fashion_mnist_dir());
    const auto seed = static_cast<std::uint64_t>(args.get_int("seed", 1, 0, 1L << 62));
    const long batch = args.get_int("batch", 256, 1, 100000);
    const double lr = args.get_double("lr", 1e-3, 1e-12, 10.0);
    const long experts = args.get_int("experts", 3, 1, 64);
    const bool quiet = args.has("quiet");
    const auto start = std::chrono::steady_clock::now();

    // The items, then Multi-Fashion built from them (training items for training and
    // validation, test items for the test set).
    const bool synthetic = dir == "synthetic";
    const auto train_items =
        synthetic ? synthetic_items(600, seed) : mtl::load_fashion_mnist<float>(dir, true);
    const auto test_items =
        synthetic ? synthetic_items(200, seed + 1) : mtl::load_fashion_mnist<float>(dir, false);
    mtl::MultiFashionOptions mo;
    mo.examples = args.get_int("train-examples", 0, 0, 10000000);
    ml::Rng make(seed);
    const auto all = mtl::multi_fashion(train_items, mo, make);
    mo.examples = args.get_int("test-examples", 0, 0, 10000000);
    const auto test = mtl::multi_fashion(test_items, mo, make);
    const long val_n = args.get_int("val-examples", synthetic ? 100 : 5000, 1, all.size() - batch);
    std::vector<std::int64_t> train_rows, val_rows;
    for (std::int64_t i = 0; i < all.size(); ++i)
      (i < all.size() - val_n ? train_rows : val_rows).push_back(i);
    auto train_part = all.rows(train_rows), val_part = all.rows(val_rows);
    const mtl::MultiTaskDataset<float> train(std::move(train_part.inputs),
                                             std::move(train_part.tasks));
    const mtl::MultiTaskDataset<float> validation_set(std::move(val_part.inputs),
                                                      std::move(val_part.tasks));
    const auto validation = mtl::fixed_batches(validation_set, 1000);
    const auto test_batches = mtl::fixed_batches(test, 1000);
    if (!quiet)
      std::cout << "multi-fashion: " << train.size() << " training, " << validation_set.size()
                << " validation, " << test.size() << " test images ("
                << (synthetic ? "synthetic" : dir) << ")\n";
    const mtl::MultiTaskSampler<float> sampler(train, batch);

    // Train `learner` on `net` with the shared trainer; the test accuracy of the best
    // validation checkpoint (the final model without one).
    const auto fit = [&](auto& learner, auto& net, const auto& batches, const auto& val,
                         const auto& tests, const std::string& checkpoint,
                         const std::string& title) {
      ml::optim::AdamOptions ao;
      ao.lr = lr;
      ml::optim::Adam<float> adam(learner.meta_parameters(net), ao);
      auto o = examples::trainer_options(args, 3000, 100);
      o.checkpoint = checkpoint;
      if (!checkpoint.empty() && checkpoint != args.get_string("checkpoint", "")) o.csv = "";
      if (!quiet) std::cout << title << "\n";
      ml::Rng rng(seed + 7);
      const auto r = ml::meta::train(learner, net, adam, batches, val, rng, o);
      if (r.non_finite) throw ml::StateError(r.message);
      if (!checkpoint.empty()) ml::meta::load_model(learner, net, checkpoint);
      return Outcome{mtl::task_metrics(learner, net, tests), r.steps};
    };

    Outcome result;
    const std::string checkpoint = args.get_string("checkpoint", "");
    ml::Rng init(seed);
    mtl::MtlLearnerOptions lo;
    lo.seed = seed;
    // MGDA-UB is `--method mgda --gramian representation`; any Gramian method takes it.
    if (args.get_choice("gramian", "parameters", {"parameters", "representation"}) ==
        "representation")
      lo.gramian_of = mtl::GramianOf::representation;
    with_mtl_learner(method, lo, [&](auto& learner) {
      if (arch == "hps") {
        mtl::HardSharing<float> net(
            mtl::lenet_trunk<float>(init),
            {mtl::lenet_head<float>(init, 10), mtl::lenet_head<float>(init, 10)});
        result = fit(learner, net, sampler, validation, test_batches, checkpoint,
                     method + " (hard sharing)");
      } else {
        std::vector<nn::Sequential<float>> ex;
        for (long e = 0; e < experts; ++e) ex.push_back(mtl::lenet_trunk<float>(init));
        mtl::Mmoe<float> net(ex,
                             {mtl::lenet_head<float>(init, 10), mtl::lenet_head<float>(init, 10)},
                             28 * 28, init);
        result =
            fit(learner, net, sampler, validation, test_batches, checkpoint, method + " (MMoE)");
      }
    });

    // Single-task baselines: the same network with one head, the same budget.
    const std::string baselines = args.get_string("baselines", "");
    std::vector<double> base;
    if (baselines != "none") {
      std::ifstream in(baselines);
      if (!baselines.empty() && in) {
        base.assign(2, 0.0);
        if (!(in >> base[0] >> base[1]))
          throw ml::IoError("mtl_multifashion: '" + baselines + "' does not hold two accuracies");
      } else {
        for (std::size_t t = 0; t < 2; ++t) {
          const OnlyTask<mtl::MultiTaskSampler<float>> only{&sampler, t};
          std::vector<mtl::MultiTaskBatch<float>> val1, test1;
          for (const auto& b : validation) val1.push_back(only_task(b, t));
          for (const auto& b : test_batches) test1.push_back(only_task(b, t));
          mtl::MtlLearner<mtl::EqualWeighting, mtl::SumGradients> single(lo);
          ml::Rng init1(seed);
          mtl::HardSharing<float> net(mtl::lenet_trunk<float>(init1),
                                      {mtl::lenet_head<float>(init1, 10)});
          const std::string ck =
              checkpoint.empty() ? "" : checkpoint + ".single" + std::to_string(t);
          base.push_back(fit(single, net, only, val1, test1, ck,
                             std::string("single-task baseline: ") + (t == 0 ? "left" : "right"))
                             .test[0]);
        }
        if (!baselines.empty() && examples::ranks().lead) {  // one rank writes
          std::ofstream out(baselines);
          out << base[0] << ' ' << base[1] << '\n';
          if (!out) throw ml::IoError("mtl_multifashion: cannot write '" + baselines + "'");
        }
      }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "test accuracy: left " << result.test[0] << ", right " << result.test[1];
    if (!base.empty()) std::cout << " (single-task " << base[0] << ", " << base[1] << ")";
    std::cout << "\nfinal: acc_left=" << result.test[0] << " acc_right=" << result.test[1];
    if (!base.empty()) std::cout << " delta_m=" << mtl::delta_m(result.test, base, {true, true});
    std::cout << " steps=" << result.steps << " seconds=" << seconds << "\n";
    return 0;
  });
}
