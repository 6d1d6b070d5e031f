// Determinism: for every learner, the same seed gives bit-identical parameters across runs,
// across 1 and 2 threads and whatever the heap layout; every sampler gives the same draws
// for the same seed.
#include <cstdlib>
#include <memory>
#include <metalearn/metalearn.hpp>
#include <vector>

#include "support/catch.hpp"
#include "support/seed.hpp"

namespace ml = metalearn;
namespace nn = metalearn::nn;
namespace data = metalearn::data;
namespace meta = metalearn::meta;
using ml::Shape;
using ml::Tensor;

namespace {

bool identical(const std::vector<Tensor<float>>& a, const std::vector<Tensor<float>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t p = 0; p < a.size(); ++p)
    if (a[p].shape() != b[p].shape() || !(a[p].array() == b[p].array()).all()) return false;
  return true;
}

// A small labelled set: 6 classes of 8 random 8-dimensional examples.
data::ClassDataset<float> labelled(std::uint64_t seed) {
  ml::Rng rng(seed);
  Tensor<float> x(Shape{48, 8});
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(ml::normal(rng));
  for (int i = 0; i < 48; ++i) labels.push_back(i / 8);
  return data::ClassDataset<float>(std::move(x), std::move(labels));
}

// Three training steps of `learner` from seed 31 on `threads` threads; the final meta-parameters.
template <class Learner, class Sampler>
std::vector<Tensor<float>> run(Learner learner, const Sampler& sampler,
                               std::vector<std::int64_t> sizes) {
  ml::Rng rng(31);
  auto net = nn::mlp<float>(sizes, rng, nn::Activation::tanh);
  ml::optim::Adam<float> adam(learner.meta_parameters(net), {1e-2});
  for (int step = 0; step < 3; ++step) learner.meta_step(net, adam, sampler.sample(rng));
  return learner.meta_parameters(net).values();
}

// The same run with heap blocks of odd sizes held before it, so every later allocation
// (parameters, optimizer state, data) lands at other addresses: results that depend on
// alignment (vectorised reductions peel by address) differ here.
template <class Learner, class Sampler>
std::vector<Tensor<float>> run_shifted(Learner learner, const Sampler& sampler,
                                       std::vector<std::int64_t> sizes, std::uint64_t salt) {
  ml::Rng rng(salt);
  std::vector<std::unique_ptr<char[]>> held;
  for (int k = 0; k < 8; ++k) held.emplace_back(new char[16 + 16 * ml::uniform_index(rng, 40)]);
  return run(std::move(learner), sampler, std::move(sizes));
}

template <class Learner, class Options, class Sampler>
void check_learner(Options o, const Sampler& sampler, std::vector<std::int64_t> sizes) {
  o.threads = 1;
  const auto a = run(Learner(o), sampler, sizes);
  const auto b = run(Learner(o), sampler, sizes);
  o.threads = 2;
  const auto c = run(Learner(o), sampler, sizes);
  CHECK(identical(a, b));                            // across runs
  CHECK(identical(a, c));                            // across thread counts
  for (std::uint64_t salt = 1; salt <= 3; ++salt) {  // across heap layouts, 2 and 1 threads
    CHECK(identical(a, run_shifted(Learner(o), sampler, sizes, salt)));
    o.threads = 1;
    CHECK(identical(a, run_shifted(Learner(o), sampler, sizes, salt)));
    o.threads = 2;
  }
}

}  // namespace

TEST_CASE("determinism: every gradient learner, across runs and thread counts",
          "[reliability][threads]") {
  const data::MetaBatchSampler<data::SineTasks<float>> sine({}, 4);
  meta::GradientLearnerOptions o;
  o.inner_steps = 2;
  check_learner<meta::Maml>(o, sine, {1, 8, 8, 1});
  check_learner<meta::Fomaml>(o, sine, {1, 8, 8, 1});
  check_learner<meta::Anil>(o, sine, {1, 8, 8, 1});
  check_learner<meta::Reptile>(o, sine, {1, 8, 8, 1});
  check_learner<meta::MetaSgd>(o, sine, {1, 8, 8, 1});
}

TEST_CASE("determinism: every metric learner, across runs and thread counts",
          "[reliability][threads]") {
  const auto set = labelled(5);
  const data::MetaBatchSampler<data::EpisodeSampler<float>> episodes(
      data::EpisodeSampler<float>(set, {3, 2, 2}), 3);
  check_learner<meta::ProtoNet<>>(meta::ProtoNetOptions{}, episodes, {8, 6});
  check_learner<meta::Triplet<>>(meta::TripletOptions{}, episodes, {8, 6});
  // Siamese trains on one pair batch per step, on the calling thread: across runs only.
  const data::PairSampler<float> pairs(set, 6);
  const auto a = run(meta::Siamese<>(), pairs, {8, 6});
  const auto b = run(meta::Siamese<>(), pairs, {8, 6});
  CHECK(identical(a, b));
  for (std::uint64_t salt = 1; salt <= 3; ++salt)
    CHECK(identical(a, run_shifted(meta::Siamese<>(), pairs, {8, 6}, salt)));
}

TEST_CASE("determinism: samplers give the same draws for the same seed", "[reliability]") {
  const auto set = labelled(6);
  const auto twice = [](const auto& sampler, auto same) {
    ml::Rng r1(77), r2(77);
    for (int i = 0; i < 3; ++i) CHECK(same(sampler.sample(r1), sampler.sample(r2)));
  };
  const auto same_episode = [](const data::Episode<float>& x, const data::Episode<float>& y) {
    return identical({x.support_inputs, x.query_inputs, x.support_targets, x.query_targets},
                     {y.support_inputs, y.query_inputs, y.support_targets, y.query_targets}) &&
           x.support_labels == y.support_labels && x.query_labels == y.query_labels &&
           x.classes == y.classes;
  };
  twice(data::SineTasks<float>(), same_episode);
  twice(data::LineTasks<float>(), same_episode);
  twice(data::EpisodeSampler<float>(set, {3, 2, 2}), same_episode);
  twice(data::PairSampler<float>(set, 5), [](const auto& x, const auto& y) {
    return identical({x.first, x.second, x.different}, {y.first, y.second, y.different});
  });
  twice(data::TripletSampler<float>(set, 5), [](const auto& x, const auto& y) {
    return identical({x.anchor, x.positive, x.negative}, {y.anchor, y.positive, y.negative});
  });
}

namespace {

// 6 classes of 6 random 1x16x16 images.
data::ClassDataset<float> images(std::uint64_t seed) {
  ml::Rng rng(seed);
  Tensor<float> x(Shape{36, 1, 16, 16});
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(ml::normal(rng));
  for (int i = 0; i < 36; ++i) labels.push_back(i / 6);
  return data::ClassDataset<float>(std::move(x), std::move(labels));
}

// conv4 with 16 filters on 16x16 images: an im2col first layer, Winograd in the second and
// third (16 channels in and out), im2col on the 2x2 map of the last; batch norm in each.
nn::Sequential<float> small_conv4(ml::Rng& rng) {
  nn::Conv4Options o;
  o.filters = 16;
  o.image_size = 16;
  o.embedding_only = true;
  return nn::conv4<float>(o, rng);
}

// Two steps of `learner` with conv4 from seed 41: the final parameters and buffers.
template <class Learner, class Sampler>
std::vector<Tensor<float>> conv_run(Learner learner, const Sampler& sampler) {
  ml::Rng rng(41);
  auto net = small_conv4(rng);
  ml::optim::Adam<float> adam(learner.meta_parameters(net), {1e-2});
  for (int step = 0; step < 2; ++step) learner.meta_step(net, adam, sampler.sample(rng));
  auto out = learner.meta_parameters(net).values();
  for (const auto& b : net.buffers().values()) out.push_back(b);
  return out;
}

}  // namespace

TEST_CASE("determinism: intra-op threads give the same bits for 1, 2 and 3 threads",
          "[reliability][threads]") {
  ml::Rng rng(7);
  auto net = small_conv4(rng);
  Tensor<float> x(Shape{40, 1, 16, 16});  // 40 first-layer groups: 4 partial weight sums
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(ml::normal(rng));
  // conv4 forward, backward, and second order through the backward (a MAML-style sweep).
  const auto sweep = [&](std::size_t threads) {
    const ml::IntraOpThreads ops(threads);
    CHECK(ml::intra_op_threads() == threads);
    ml::Tape<float> tape;
    const auto params = tape.leaves(net.parameters().views());
    const auto input = tape.leaf(x.view());
    const auto y = net.forward(params, input, nn::Mode::train);
    auto all = params;
    all.push_back(input);
    const auto g = ml::grad(ml::sum(y * y), all, ml::GradOptions{true});
    ml::Var<float> norm = ml::sum(g[0] * g[0]);
    for (std::size_t p = 1; p < g.size(); ++p) norm = norm + ml::sum(g[p] * g[p]);
    std::vector<Tensor<float>> out{y.to_tensor()};
    for (const auto& v : g) out.push_back(v.to_tensor());
    for (const auto& v : ml::grad(norm, all)) out.push_back(v.to_tensor());
    return out;
  };
  const auto one = sweep(1);
  CHECK(identical(one, sweep(2)));
  CHECK(identical(one, sweep(3)));
  CHECK(ml::intra_op_threads() == 1);  // the guards restored the budget

  // The learners spend their threads on one episode's ops (batch norm's running statistics
  // keep the episodes one at a time) and on a Siamese pair batch.
  const auto set = images(9);
  const data::MetaBatchSampler<data::EpisodeSampler<float>> episodes(
      data::EpisodeSampler<float>(set, {5, 2, 3}), 1);
  const data::PairSampler<float> pairs(set, 24);
  std::vector<std::vector<Tensor<float>>> proto, siamese;
  for (int threads : {1, 2, 3}) {
    meta::ProtoNetOptions po;
    po.threads = threads;
    proto.push_back(conv_run(meta::ProtoNet<>(po), episodes));
    meta::SiameseOptions so;
    so.threads = threads;
    siamese.push_back(conv_run(meta::Siamese<>(so), pairs));
  }
  CHECK(identical(proto[0], proto[1]));
  CHECK(identical(proto[0], proto[2]));
  CHECK(identical(siamese[0], siamese[1]));
  CHECK(identical(siamese[0], siamese[2]));
}
