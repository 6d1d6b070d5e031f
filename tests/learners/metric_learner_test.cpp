// Metric learners: distances, pair and triplet losses against hand-computed values and
// finite differences (first and second order), ProtoNet's logits by hand, convergence on a
// synthetic clustered dataset, thread independence and errors.
#include <cmath>
#include <metalearn/metalearn.hpp>
#include <vector>

#include "support/catch.hpp"
#include "support/errors.hpp"
#include "support/gradcheck.hpp"
#include "support/seed.hpp"

namespace ml = metalearn;
namespace nn = metalearn::nn;
namespace meta = metalearn::meta;
namespace data = metalearn::data;
using ml::Shape;
using ml::Tensor;
using Vars = std::vector<ml::Var<double>>;
using Catch::Matchers::WithinAbs;

namespace {

template <class F>
void check_both(F f, const std::vector<Tensor<double>>& inputs) {
  ml::test::check_gradients(f, inputs);
  ml::test::check_second_order(f, inputs);
}

Tensor<double> rows(std::vector<double> v, std::int64_t n) {
  const auto d = static_cast<std::int64_t>(v.size()) / n;
  return Tensor<double>(Shape{n, d}, std::move(v));
}

// Clusters that an embedding must learn to see: the class lives in the first 4 of `dim`
// coordinates (centres uniform in [-2, 2], noise 0.1); the other coordinates are noise of
// standard deviation `nuisance`, the same for every class. Raw distances are dominated by
// the nuisance coordinates, so high accuracy means the learner learned to ignore them.
data::ClassDataset<float> clusters(ml::Rng& rng, std::int64_t classes, std::int64_t per_class,
                                   std::int64_t dim, double nuisance) {
  const std::int64_t informative = 4;
  Tensor<float> x(Shape{classes * per_class, dim});
  std::vector<std::int64_t> labels;
  for (std::int64_t c = 0; c < classes; ++c) {
    std::vector<double> centre(static_cast<std::size_t>(informative));
    for (auto& v : centre) v = ml::uniform(rng, -2.0, 2.0);
    for (std::int64_t i = 0; i < per_class; ++i) {
      const std::int64_t r = c * per_class + i;
      for (std::int64_t k = 0; k < dim; ++k)
        x.data()[r * dim + k] = static_cast<float>(
            k < informative ? centre[static_cast<std::size_t>(k)] + 0.1 * ml::normal(rng)
                            : nuisance * ml::normal(rng));
      labels.push_back(c);
    }
  }
  return data::ClassDataset<float>(std::move(x), std::move(labels));
}

}  // namespace

TEST_CASE("distances: hand values, pairwise agrees with rowwise", "[learners][metric]") {
  const auto a = rows({0, 0, 3, 4}, 2), b = rows({3, 4, 3, 5}, 2);
  ml::Tape<double> tape;
  const auto va = tape.constant(a), vb = tape.constant(b);
  CHECK_THAT(meta::SquaredEuclidean::rowwise(va, vb).value()[0], WithinAbs(25.0, 1e-12));
  CHECK_THAT(meta::Euclidean::rowwise(va, vb).value()[0], WithinAbs(5.0, 1e-9));
  CHECK_THAT(meta::Euclidean::rowwise(va, vb).value()[1], WithinAbs(1.0, 1e-9));
  CHECK_THAT(meta::L1::rowwise(va, vb).value()[0], WithinAbs(7.0, 1e-12));
  CHECK_THAT(meta::Cosine::rowwise(vb, vb).value()[0], WithinAbs(0.0, 1e-9));
  CHECK_THAT(meta::Cosine::rowwise(tape.constant(rows({1, 0}, 1)), tape.constant(rows({0, 2}, 1)))
                 .value()[0],
             WithinAbs(1.0, 1e-9));
  const auto check_pairwise = [&](auto distance) {
    using D = decltype(distance);
    const auto p = D::pairwise(va, vb).to_tensor();
    REQUIRE(p.shape() == Shape{2, 2});
    const auto r = D::rowwise(va, vb).to_tensor();
    CHECK_THAT(p.data()[0], WithinAbs(r.data()[0], 1e-9));  // (0, 0)
    CHECK_THAT(p.data()[3], WithinAbs(r.data()[1], 1e-9));  // (1, 1)
  };
  check_pairwise(meta::SquaredEuclidean{});
  check_pairwise(meta::Euclidean{});
  check_pairwise(meta::Cosine{});
  check_pairwise(meta::L1{});
}

TEST_CASE("distances: first and second derivatives", "[learners][metric][second-order]") {
  auto rng = ml::test::make_rng(80);
  const auto a = ml::test::uniform(rng, {3, 4}), b = ml::test::uniform(rng, {5, 4});
  const auto c = ml::test::uniform(rng, {3, 4});
  check_both([](const Vars& x) { return meta::SquaredEuclidean::pairwise(x[0], x[1]); }, {a, b});
  check_both([](const Vars& x) { return meta::Euclidean::pairwise(x[0], x[1]); }, {a, b});
  check_both([](const Vars& x) { return meta::Cosine::pairwise(x[0], x[1]); }, {a, b});
  ml::test::check_gradients([](const Vars& x) { return meta::L1::pairwise(x[0], x[1]); }, {a, b});
  check_both([](const Vars& x) { return meta::SquaredEuclidean::rowwise(x[0], x[1]); }, {a, c});
  check_both([](const Vars& x) { return meta::Euclidean::rowwise(x[0], x[1]); }, {a, c});
  check_both([](const Vars& x) { return meta::Cosine::rowwise(x[0], x[1]); }, {a, c});
  ml::test::check_gradients([](const Vars& x) { return meta::L1::rowwise(x[0], x[1]); }, {a, c});
}

TEST_CASE("contrastive losses: hand values and the margin edge", "[learners][metric]") {
  ml::Tape<double> tape;
  // Same pair at distance 0.5; different pairs at 0.25, at exactly the margin, and beyond.
  const auto d = tape.constant(Tensor<double>(Shape{4}, {0.5, 0.25, 1.0, 1.5}));
  const auto y = tape.constant(Tensor<double>(Shape{4}, {0, 1, 1, 1}));
  // (0.5 + (1 - 0.25) + 0 + 0) / 4
  CHECK_THAT(meta::Contrastive::loss(d, y, 1.0).item(), WithinAbs(1.25 / 4, 1e-12));
  // (0.5 * 0.25 + 0.5 * 0.75^2) / 4
  CHECK_THAT(meta::SquaredContrastive::loss(d, y, 1.0).item(),
             WithinAbs((0.125 + 0.28125) / 4, 1e-12));
  // At the margin the different pair contributes nothing, and no gradient.
  const auto at = tape.leaf(Tensor<double>(Shape{1}, {1.0}));
  const auto g = ml::grad(
      meta::Contrastive::loss(at, tape.constant(Tensor<double>(Shape{1}, {1})), 1.0), {at});
  CHECK(g[0].value()[0] == 0.0);
}

TEST_CASE("contrastive losses: first and second derivatives through a Siamese encoder",
          "[learners][metric][second-order]") {
  auto rng = ml::test::make_rng(81);
  const auto a = ml::test::uniform(rng, {4, 3}), b = ml::test::uniform(rng, {4, 3});
  const auto w = ml::test::uniform(rng, {3, 3});
  const Tensor<double> y(Shape{4}, {0, 1, 0, 1});
  const auto pair_loss = [&](auto loss) {
    return [=](const Vars& x) {
      using L = decltype(loss);
      const auto d = meta::Euclidean::rowwise(ml::tanh(ml::matmul(x[0], x[2])),
                                              ml::tanh(ml::matmul(x[1], x[2])));
      return L::loss(d, ml::constant(y), 2.0);
    };
  };
  check_both(pair_loss(meta::Contrastive{}), {a, b, w});
  check_both(pair_loss(meta::SquaredContrastive{}), {a, b, w});
}

TEST_CASE("triplet loss: hand values for batch-hard and batch-all", "[learners][metric]") {
  // Points on a line: labels 0, 0, 1 at x = 0, 1, 3. Euclidean distances:
  // d(0,1) = 1, d(0,2) = 3, d(1,2) = 2.
  ml::Tape<double> tape;
  const auto x = tape.constant(rows({0, 1, 3}, 3));
  const auto d = meta::Euclidean::pairwise(x, x);
  const std::vector<std::int64_t> labels{0, 0, 1};
  // Anchors 0 and 1 have a positive and a negative; anchor 2 has no positive.
  // margin 2.5: anchor 0: max(0, 2.5 + 1 - 3) = 0.5; anchor 1: max(0, 2.5 + 1 - 2) = 1.5.
  CHECK_THAT(meta::triplet_loss(d, labels, 2.5, meta::Mining::hard).item(), WithinAbs(1.0, 1e-6));
  // One triplet per anchor here, so batch-all is the same.
  CHECK_THAT(meta::triplet_loss(d, labels, 2.5, meta::Mining::all).item(), WithinAbs(1.0, 1e-6));
  // Margin edge: at m = 1 anchor 1 sits exactly on it (1 + 1 - 2 = 0); anchor 0 is inside.
  CHECK_THAT(meta::triplet_loss(d, labels, 1.0, meta::Mining::hard).item(), WithinAbs(0.0, 1e-6));
  // Four points, two per class: batch-hard picks the extreme pair per anchor, batch-all
  // averages all 8 valid triplets.
  const auto x4 = tape.constant(rows({0, 2, 3, 4}, 4));
  const auto d4 = meta::Euclidean::pairwise(x4, x4);
  const std::vector<std::int64_t> l4{0, 0, 1, 1};
  // hard, m = 1: a0: pos 2, neg min(3,4)=3 -> 0; a1: pos 2, neg 1 -> 2; a2: pos 1, neg 1 -> 1;
  // a3: pos 1, neg 2 -> 0. Mean 3/4.
  CHECK_THAT(meta::triplet_loss(d4, l4, 1.0, meta::Mining::hard).item(), WithinAbs(0.75, 1e-6));
  // all, m = 1: a0: (2,3)->0, (2,4)->0; a1: (2,1)->2, (2,2)->1; a2: (1,3)->0, (1,1)->1;
  // a3: (1,4)->0, (1,2)->0. Sum 4 over 8.
  CHECK_THAT(meta::triplet_loss(d4, l4, 1.0, meta::Mining::all).item(), WithinAbs(0.5, 1e-6));
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        meta::triplet_loss(d, {0, 1, 2}, 1.0, meta::Mining::hard);
      },
      {"triplet_loss", "anchor"});
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        meta::triplet_loss(d, {0, 1}, 1.0, meta::Mining::hard);
      },
      {"triplet_loss", "[3, 3]"});
}

TEST_CASE("triplet loss: first and second derivatives", "[learners][metric][second-order]") {
  auto rng = ml::test::make_rng(82);
  const auto x = ml::test::uniform(rng, {6, 3});
  const std::vector<std::int64_t> labels{0, 0, 1, 1, 2, 2};
  for (auto mining : {meta::Mining::hard, meta::Mining::all})
    check_both(
        [&](const Vars& v) {
          return meta::triplet_loss(meta::SquaredEuclidean::pairwise(v[0], v[0]), labels, 3.0,
                                    mining);
        },
        {x});
}

TEST_CASE("ProtoNet: logits are minus squared distances to the class means", "[learners][metric]") {
  auto rng = ml::test::make_rng(83);
  auto net = nn::mlp<double>({2, 3}, rng);  // one linear layer: f(x) = x W^T + b
  data::Episode<double> e;
  e.ways = 2;
  e.shots = 2;
  e.queries = 1;
  e.support_inputs = rows({0, 0, 2, 0, 0, 4, 0, 2}, 4);
  e.support_labels = {0, 0, 1, 1};
  e.query_inputs = rows({1, 1, 3, 3}, 2);
  e.query_labels = {0, 1};
  const meta::ProtoNet<meta::SquaredEuclidean, double> proto;
  ml::Tape<double> tape;
  const auto params = tape.leaves(net.parameters().views());
  const auto z = proto.logits(net, params, e).to_tensor();
  const auto f = [&](double x0, double x1) {
    return net.forward(params, tape.constant(rows({x0, x1}, 1))).to_tensor();
  };
  const auto c0a = f(0, 0), c0b = f(2, 0), c1a = f(0, 4), c1b = f(0, 2);
  for (int q = 0; q < 2; ++q) {
    const auto fq = q == 0 ? f(1, 1) : f(3, 3);
    for (int k = 0; k < 2; ++k) {
      double d = 0;
      for (int j = 0; j < 3; ++j) {
        const double c =
            k == 0 ? (c0a.data()[j] + c0b.data()[j]) / 2 : (c1a.data()[j] + c1b.data()[j]) / 2;
        d += (fq.data()[j] - c) * (fq.data()[j] - c);
      }
      CHECK_THAT(z.data()[q * 2 + k], WithinAbs(-d, 1e-9));
    }
  }
}

TEST_CASE("ProtoNet: the episode loss is twice differentiable in the weights",
          "[learners][metric][second-order]") {
  auto rng = ml::test::make_rng(84);
  auto net = nn::mlp<double>({3, 4, 2}, rng, nn::Activation::tanh);
  const auto data = [&] {
    Tensor<double> x = ml::test::uniform(rng, {12, 3});
    std::vector<std::int64_t> l;
    for (int i = 0; i < 12; ++i) l.push_back(i / 4);
    return data::ClassDataset<double>(x, l);
  }();
  const auto e = data::EpisodeSampler<double>(data, {3, 2, 2}).sample(rng);
  const auto inputs = net.parameters().values();
  for (bool cosine : {false, true})
    check_both(
        [&](const Vars& w) {
          if (cosine)
            return ml::cross_entropy(meta::ProtoNet<meta::Cosine, double>().logits(net, w, e),
                                     e.query_labels);
          return ml::cross_entropy(
              meta::ProtoNet<meta::SquaredEuclidean, double>().logits(net, w, e), e.query_labels);
        },
        inputs);
}

TEST_CASE("ProtoNet: learns a clustered dataset; 1 and 2 threads agree bit for bit",
          "[learners][metric][convergence]") {
  auto rng = ml::test::make_rng(85);
  const auto all = clusters(rng, 40, 20, 16, 1.5);
  const auto split = data::split_classes(all.num_classes(), 30, 0, rng);
  const auto& train_classes = split.train;
  const auto& test_classes = split.test;
  const data::EpisodeSampler<float> train(all, {5, 1, 5}, train_classes);
  const data::EpisodeSampler<float> test(all, {5, 1, 5}, test_classes);
  auto net = nn::mlp<float>({16, 64, 32}, rng);
  const meta::ProtoNet<> proto;
  const auto score = [&](ml::Rng r) {
    double acc = 0;
    for (int i = 0; i < 100; ++i) acc += proto.evaluate(net, test.sample(r)).accuracy / 100;
    return acc;
  };
  const double before = score(ml::Rng(7));
  ml::optim::Adam<float> adam(proto.meta_parameters(net), {1e-3});
  for (int step = 0; step < 300; ++step) proto.meta_step(net, adam, {train.sample(rng)});
  const double after = score(ml::Rng(7));
  INFO("5-way 1-shot accuracy on held-out classes: before " << before << ", after " << after);
  CHECK(after > 0.9);
  CHECK(after > before);

  // Bit-identical meta-gradients for 1 and 2 threads over a meta-batch of 4 episodes.
  std::vector<data::Episode<float>> batch;
  for (int i = 0; i < 4; ++i) batch.push_back(train.sample(rng));
  ml::optim::Sgd<float> outer(net.parameters(), {0.0});
  (void)outer;
  std::vector<Tensor<float>> g1, g2;
  meta::ProtoNetOptions o1, o2;
  o1.threads = 1;
  o2.threads = 2;
  meta::ProtoNet<>(o1).meta_gradient(net, batch, g1);
  meta::ProtoNet<>(o2).meta_gradient(net, batch, g2);
  for (std::size_t p = 0; p < g1.size(); ++p)
    for (std::int64_t i = 0; i < g1[p].numel(); ++i) REQUIRE(g1[p].data()[i] == g2[p].data()[i]);
}

TEST_CASE("MatchingNet: log P(y | x, S) by hand (Vinyals et al. Eqs. 1-2)", "[learners][metric]") {
  // 2-way, classes with 2 and 1 support examples (unbalanced, so a mean would differ from
  // the attention sum), embeddings x itself (identity Linear, no bias).
  nn::Sequential<double> net;
  ml::Rng rng{1};
  net.add(nn::Linear<double>(2, 2, rng, false));
  net.parameters()[0].matrix().setIdentity();
  data::Episode<double> e;
  e.ways = 2;
  e.shots = 1;
  e.queries = 1;
  e.support_inputs = rows({1, 0, 2, 1, 0, 1}, 3);
  e.support_labels = {0, 0, 1};
  e.query_inputs = rows({1, 1}, 1);
  e.query_labels = {1};
  meta::MatchingNetOptions o;
  o.temperature = 2.0;
  const meta::MatchingNet<double> matching(o);
  ml::Tape<double> tape;
  const auto lp = matching.log_probabilities(net, tape.leaves(net.parameters().views()), e);
  const double c[3] = {1 / std::sqrt(2.0), 3 / std::sqrt(10.0), 1 / std::sqrt(2.0)};
  const double z = std::exp(2 * c[0]) + std::exp(2 * c[1]) + std::exp(2 * c[2]);
  CHECK_THAT(lp.value()[0],
             WithinAbs(std::log((std::exp(2 * c[0]) + std::exp(2 * c[1])) / z), 1e-12));
  CHECK_THAT(lp.value()[1], WithinAbs(std::log(std::exp(2 * c[2]) / z), 1e-12));
  const auto r = matching.evaluate(net, e);
  CHECK(r.accuracy == 0.0);  // class 0 has more attention mass
  CHECK_THAT(r.loss, WithinAbs(-lp.value()[1], 1e-12));
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        meta::MatchingNetOptions bad;
        bad.temperature = 0;
        meta::MatchingNet<double> m(bad);
      },
      {"MatchingNet", "temperature"});
}

TEST_CASE("MatchingNet: the episode loss is twice differentiable in the weights",
          "[learners][metric][second-order]") {
  auto rng = ml::test::make_rng(87);
  auto net = nn::mlp<double>({3, 4, 2}, rng, nn::Activation::tanh);
  Tensor<double> x = ml::test::uniform(rng, {12, 3});
  std::vector<std::int64_t> l;
  for (int i = 0; i < 12; ++i) l.push_back(i / 4);
  const data::ClassDataset<double> d(x, l);
  const auto e = data::EpisodeSampler<double>(d, {3, 2, 2}).sample(rng);
  meta::MatchingNetOptions o;
  o.temperature = 3.0;
  check_both(
      [&](const Vars& w) {
        return ml::cross_entropy(meta::MatchingNet<double>(o).log_probabilities(net, w, e),
                                 e.query_labels);
      },
      net.parameters().values());
}

namespace {
// Matching Networks with options `o` (threads aside) trained 300 steps on 5-way 1-shot
// episodes of the clustered set; must beat 0.9 on held-out classes, and a meta-batch's
// gradient (the network's and the learner's own tensors, `own` of them) must be the same
// bits on 1 and 2 threads.
void check_matching_learns(meta::MatchingNetOptions o, std::uint64_t seed, std::size_t own) {
  auto rng = ml::test::make_rng(seed);
  const auto all = clusters(rng, 40, 20, 16, 1.5);
  const auto split = data::split_classes(all.num_classes(), 30, 0, rng);
  const data::EpisodeSampler<float> train(all, {5, 1, 5}, split.train);
  const data::EpisodeSampler<float> test(all, {5, 1, 5}, split.test);
  auto net = nn::mlp<float>({16, 64, 32}, rng);
  meta::MatchingNet<float> matching(o);
  const auto score = [&](ml::Rng r) {
    double acc = 0;
    for (int i = 0; i < 100; ++i) acc += matching.evaluate(net, test.sample(r)).accuracy / 100;
    return acc;
  };
  const double before = score(ml::Rng(7));
  ml::optim::Adam<float> adam(matching.meta_parameters(net), {1e-3});
  for (int step = 0; step < 300; ++step) matching.meta_step(net, adam, {train.sample(rng)});
  const double after = score(ml::Rng(7));
  INFO("5-way 1-shot accuracy on held-out classes: before " << before << ", after " << after);
  CHECK(after > 0.9);
  CHECK(after > before);
  std::vector<data::Episode<float>> batch;
  for (int i = 0; i < 4; ++i) batch.push_back(train.sample(rng));
  std::vector<Tensor<float>> g1, g2;
  o.threads = 1;
  meta::MatchingNet<float>(o).meta_gradient(net, batch, g1);
  o.threads = 2;
  meta::MatchingNet<float>(o).meta_gradient(net, batch, g2);
  REQUIRE(g1.size() == net.parameters().size() + own);
  for (std::size_t p = 0; p < g1.size(); ++p)
    for (std::int64_t i = 0; i < g1[p].numel(); ++i) REQUIRE(g1[p].data()[i] == g2[p].data()[i]);
}
}  // namespace

TEST_CASE("MatchingNet: learns a clustered dataset; 1 and 2 threads agree bit for bit",
          "[learners][metric][convergence]") {
  meta::MatchingNetOptions o;
  o.temperature = 10.0;
  check_matching_learns(o, 88, 0);
}

namespace {
// A 3-way 2-shot episode of 4-d points and an MLP embedding them in 3 dimensions.
struct FullContextCase {
  ml::Rng rng = ml::test::make_rng(89);
  nn::Sequential<double> net = nn::mlp<double>({4, 5, 3}, rng, nn::Activation::tanh);
  data::Episode<double> episode;
  FullContextCase() {
    Tensor<double> x = ml::test::uniform(rng, {18, 4});
    std::vector<std::int64_t> l;
    for (int i = 0; i < 18; ++i) l.push_back(i / 6);
    const data::ClassDataset<double> d(x, l);
    episode = data::EpisodeSampler<double>(d, {3, 2, 2}).sample(rng);
  }
};
}  // namespace

namespace {
// Appendix A of Vinyals et al. in plain loops, the reference of the test below. One LSTM
// step with the pre-activations sum_k W_k x_k + b (W_k row-major [4d, in], gates i, f, g, o).
void reference_lstm(const std::vector<std::pair<const Tensor<double>*, std::vector<double>>>& in,
                    const Tensor<double>& bias, std::vector<double>& h, std::vector<double>& c) {
  const std::size_t d = c.size();
  std::vector<double> gates(bias.data(), bias.data() + 4 * d);
  for (const auto& [w, x] : in)
    for (std::size_t r = 0; r < 4 * d; ++r)
      for (std::size_t j = 0; j < x.size(); ++j) gates[r] += w->data()[r * x.size() + j] * x[j];
  const auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  for (std::size_t u = 0; u < d; ++u) {
    c[u] = sig(gates[d + u]) * c[u] + sig(gates[u]) * std::tanh(gates[2 * d + u]);
    h[u] = sig(gates[3 * d + u]) * std::tanh(c[u]);
  }
}
std::vector<double> row(const Tensor<double>& m, std::int64_t i) {
  const std::int64_t d = m.shape()[1];
  return std::vector<double>(m.data() + i * d, m.data() + (i + 1) * d);
}
}  // namespace

TEST_CASE("FullContextEmbedding: g and f against Appendix A's equations in plain loops",
          "[learners][metric]") {
  // d = 2, S = 3 support and Q = 2 query embeddings (S != Q: a transposed product would not
  // fit), K = 2 attention steps, the drawn weights.
  using FCE = meta::FullContextEmbedding<double>;
  meta::FullContextEmbeddingOptions o;
  o.dim = 2;
  o.processing_steps = 2;
  o.seed = 3;
  FCE fce(o);
  ml::ParameterList<double> list;
  fce.add_to(list);
  REQUIRE(list.size() == FCE::weight_count);
  auto rng = ml::test::make_rng(91);
  const Tensor<double> gp = ml::test::uniform(rng, {3, 2}), fp = ml::test::uniform(rng, {2, 2});
  ml::Tape<double> tape;
  const auto w = tape.leaves(list.views());
  const auto g = fce.support(w.data(), tape.constant(gp.view()));
  const auto f = fce.query(w.data(), tape.constant(fp.view()), g);
  // g_i = h_forward_i + h_backward_i + g'_i.
  std::vector<std::vector<double>> fwd(3), bwd(3), ref_g(3);
  for (const bool backward : {false, true}) {
    const std::size_t base = backward ? FCE::support_backward_input : FCE::support_forward_input;
    std::vector<double> h(2, 0.0), c(2, 0.0);
    for (int n = 0; n < 3; ++n) {
      const int i = backward ? 2 - n : n;
      reference_lstm({{&list[base], row(gp, i)}, {&list[base + 1], h}}, list[base + 2], h, c);
      (backward ? bwd : fwd)[static_cast<std::size_t>(i)] = h;
    }
  }
  for (int i = 0; i < 3; ++i)
    for (int u = 0; u < 2; ++u) {
      const auto k = static_cast<std::size_t>(i);
      ref_g[k].push_back(fwd[k][static_cast<std::size_t>(u)] + bwd[k][static_cast<std::size_t>(u)] +
                         gp.data()[i * 2 + u]);
      CHECK_THAT(g.value()[i * 2 + u], WithinAbs(ref_g[k].back(), 1e-12));
    }
  // f: h_k = LSTM(f', [h_{k-1}, r_{k-1}], c_{k-1}) + f', r = sum_i softmax_i(h . g_i) g_i.
  for (int q = 0; q < 2; ++q) {
    const auto x = row(fp, q);
    std::vector<double> h(2, 0.0), c(2, 0.0);
    for (int k = 0; k < 2; ++k) {
      std::vector<double> a(3), r(2, 0.0);
      double z = 0;
      for (std::size_t i = 0; i < 3; ++i)
        z += a[i] = std::exp(h[0] * ref_g[i][0] + h[1] * ref_g[i][1]);
      for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t u = 0; u < 2; ++u) r[u] += a[i] / z * ref_g[i][u];
      reference_lstm({{&list[FCE::query_input], x},
                      {&list[FCE::query_recurrent], h},
                      {&list[FCE::query_readout], r}},
                     list[FCE::query_bias], h, c);
      for (std::size_t u = 0; u < 2; ++u) h[u] += x[u];
    }
    for (int u = 0; u < 2; ++u)
      CHECK_THAT(f.value()[q * 2 + u], WithinAbs(h[static_cast<std::size_t>(u)], 1e-12));
  }
}

TEST_CASE("MatchingNet: full-context embeddings with zero LSTM weights are the plain ones",
          "[learners][metric][error]") {
  // Zero weights: every gate is sigmoid(0) = 1/2 and the candidate tanh(0) = 0, so the
  // cells and hidden states stay 0 and g = g', f = f' (Appendix A): the plain model's
  // log P, bit for bit up to rounding.
  FullContextCase fc;
  meta::MatchingNetOptions o;
  o.temperature = 3.0;
  const auto plain = meta::MatchingNet<double>(o);
  o.full_context.dim = 3;
  o.full_context.processing_steps = 2;
  meta::MatchingNet<double> full(o);
  auto all = full.meta_parameters(fc.net);
  REQUIRE(all.size() == fc.net.parameters().size() + 10);
  CHECK(all.name(all.size() - 1) == "fce.query.bias");
  ml::Tape<double> tape;
  const auto expected =
      plain.log_probabilities(fc.net, tape.leaves(fc.net.parameters().views()), fc.episode);
  const auto random_weights =
      full.log_probabilities(fc.net, tape.leaves(all.views()), fc.episode).to_tensor();
  for (std::size_t i = fc.net.parameters().size(); i < all.size(); ++i) all[i].array() = 0;
  const auto lp = full.log_probabilities(fc.net, tape.leaves(all.views()), fc.episode);
  double moved = 0;
  for (std::int64_t i = 0; i < lp.value().numel(); ++i) {
    CHECK_THAT(lp.value()[i], WithinAbs(expected.value()[i], 1e-12));
    moved = std::max(moved, std::abs(random_weights.data()[i] - expected.value()[i]));
  }
  CHECK(moved > 1e-3);  // the drawn LSTM weights do change the embeddings
  ml::test::check_throws<ml::InvalidArgument>(
      [&] { full.log_probabilities(fc.net, tape.leaves(fc.net.parameters().views()), fc.episode); },
      {"MatchingNet", "full-context", "meta_parameters(net)"});
  o.full_context.dim = 4;  // the network's output is 3 wide
  meta::MatchingNet<double> wrong(o);
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        wrong.log_probabilities(fc.net, tape.leaves(wrong.meta_parameters(fc.net).views()),
                                fc.episode);
      },
      {"FullContextEmbedding", "[n, 4]", "dim"});
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        meta::FullContextEmbeddingOptions bad;
        bad.dim = 3;
        bad.processing_steps = 0;
        meta::FullContextEmbedding<double> f(bad);
      },
      {"FullContextEmbedding", "processing_steps"});
}

TEST_CASE("MatchingNet: the full-context episode loss is twice differentiable in every weight",
          "[learners][metric][grad][second-order]") {
  // The network's and the three LSTMs' weights, against central differences, first and
  // second order (the bidirectional support LSTM and K = 2 attention steps).
  FullContextCase fc;
  meta::MatchingNetOptions o;
  o.temperature = 2.0;
  o.full_context.dim = 3;
  o.full_context.processing_steps = 2;
  o.full_context.seed = 5;
  meta::MatchingNet<double> full(o);
  const auto all = full.meta_parameters(fc.net);
  check_both(
      [&](const Vars& w) {
        return ml::cross_entropy(full.log_probabilities(fc.net, w, fc.episode),
                                 fc.episode.query_labels);
      },
      all.values());
}

TEST_CASE("MatchingNet: full-context embeddings learn a clustered dataset; 1 and 2 threads agree",
          "[learners][metric][convergence]") {
  meta::MatchingNetOptions o;
  o.temperature = 10.0;
  o.full_context.dim = 32;
  check_matching_learns(o, 90, meta::FullContextEmbedding<float>::weight_count);
}

TEST_CASE("Siamese: learns a clustered dataset; verification and one-shot classification",
          "[learners][metric][convergence]") {
  auto rng = ml::test::make_rng(86);
  const auto all = clusters(rng, 40, 20, 16, 1.5);
  const auto split = data::split_classes(all.num_classes(), 30, 0, rng);
  const auto& train_classes = split.train;
  const auto& test_classes = split.test;
  const data::PairSampler<float> pairs(all, 64, train_classes);
  const data::PairSampler<float> test_pairs(all, 400, test_classes);
  const data::EpisodeSampler<float> test(all, {5, 1, 5}, test_classes);
  auto net = nn::mlp<float>({16, 64, 32}, rng);
  meta::SiameseOptions o;
  o.margin = 2.0;
  meta::Siamese<> siamese(o);
  ml::optim::Adam<float> adam(siamese.meta_parameters(net), {1e-3});
  for (int step = 0; step < 300; ++step) siamese.meta_step(net, adam, pairs.sample(rng));
  ml::Rng eval_rng(9);
  const auto v = siamese.verify(net, test_pairs.sample(eval_rng));
  double acc = 0;
  for (int i = 0; i < 100; ++i) acc += siamese.evaluate(net, test.sample(eval_rng)).accuracy / 100;
  INFO("held-out verification accuracy " << v.accuracy << ", AUC " << v.auc
                                         << ", 5-way 1-shot accuracy " << acc);
  CHECK(v.auc > 0.95);
  CHECK(v.accuracy > 0.85);
  CHECK(acc > 0.85);
}

TEST_CASE("Siamese on episodes: mined pairs by hand, derivatives, learning",
          "[learners][metric][second-order]") {
  // A 1-d identity encoder (weight 1, bias 0), so the embeddings are the inputs: support
  // x = 0 (class 0), 3 (class 1), queries 2, 4, 0.5 (classes 0, 1, 0); the labelled set is
  // [0, 3, 2, 4, 0.5] with labels [0, 1, 0, 1, 0]. Class 0 has three examples, so the
  // farthest positive differs from the nearest one.
  auto rng = ml::test::make_rng(91);
  auto net = nn::mlp<double>({1, 1}, rng);
  auto params = net.parameters();
  params[0] = Tensor<double>(Shape{1, 1}, {1.0});
  params[1] = Tensor<double>(Shape{1}, {0.0});
  data::Episode<double> e;
  e.ways = 2;
  e.support_inputs = rows({0, 3}, 2);
  e.support_labels = {0, 1};
  e.query_inputs = rows({2, 4, 0.5}, 3);
  e.query_labels = {0, 1, 0};
  meta::SiameseOptions o;
  o.margin = 1.5;
  std::vector<Tensor<double>> g;
  // Hard: per anchor its farthest positive and nearest negative. Anchor 0: pos 2 (D 2),
  // neg 3 (D 3, loss 0); anchor 3: pos 4 (1), neg 2 (1, loss 0.5); anchor 2: pos 0 (2),
  // neg 3 (1, 0.5); anchor 4: pos 3 (1), neg 2 (2, 0); anchor 0.5: pos 2 (1.5), neg 3
  // (2.5, 0). (mean(2, 1, 2, 1, 1.5) + mean(0, .5, .5, 0, 0)) / 2 = (1.5 + 0.2) / 2 (the
  // nearest positives would give (0.9 + 0.2) / 2). Euclidean is sqrt(D^2 + 1e-12): within
  // 1e-12 of D here.
  o.mining = meta::Mining::hard;
  const auto hard = meta::Siamese<meta::Euclidean, meta::Contrastive, double>(o).meta_gradient(
      net, std::vector<data::Episode<double>>{e}, g);
  CHECK_THAT(hard.query_loss, WithinAbs(0.85, 1e-10));
  // All: same pairs (0, 2), (0, 0.5), (3, 4), (2, 0.5) at D 2, 0.5, 1, 1.5, mean 1.25;
  // different pairs (0, 3), (0, 4), (3, 2), (3, 0.5), (2, 4), (4, 0.5) at D 3, 4, 1, 2.5,
  // 2, 3.5: losses 0, 0, 0.5, 0, 0, 0, mean 1/12. (1.25 + 1/12) / 2 = 2/3.
  o.mining = meta::Mining::all;
  const auto every = meta::Siamese<meta::Euclidean, meta::Contrastive, double>(o).meta_gradient(
      net, std::vector<data::Episode<double>>{e}, g);
  CHECK_THAT(every.query_loss, WithinAbs(2.0 / 3.0, 1e-10));
  // Verification of the scored pairs at the threshold m / 2 = 0.75: one same pair is below
  // it (D 0.5) and every different pair is above it (D >= 1): 7 of 10 right.
  CHECK_THAT(every.query_metric, WithinAbs(0.7, 1e-12));

  // Derivatives through a nonlinear encoder, both minings, the distance and Koch's head.
  auto enc = nn::mlp<double>({2, 4, 3}, rng);
  data::Episode<double> f;
  f.ways = 3;
  f.support_inputs = ml::test::uniform(rng, {3, 2});
  f.support_labels = {0, 1, 2};
  f.query_inputs = ml::test::uniform(rng, {3, 2});
  f.query_labels = {0, 1, 2};
  for (auto mining : {meta::Mining::hard, meta::Mining::all}) {
    o.mining = mining;
    const meta::Siamese<meta::Euclidean, meta::Contrastive, double> s(o);
    check_both([&](const Vars& v) { return s.mined_loss(enc, v, f); }, enc.parameters().values());
    o.head_features = 3;
    meta::Siamese<meta::L1, meta::KochHead, double> k(o);
    check_both([&](const Vars& v) { return k.mined_loss(enc, v, f); },
               k.meta_parameters(enc).values());
    o.head_features = 0;
  }

  // An episode without a same-class pair cannot be mined.
  f.query_inputs = Tensor<double>(Shape{0, 2});
  f.query_labels = {};
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        meta::Siamese<meta::Euclidean, meta::Contrastive, double>(o).meta_gradient(
            enc, std::vector<data::Episode<double>>{f}, g);
      },
      {"Siamese::mined_loss", "two examples of one class", "0 same-class", "3 different-class"});

  // Learning from episodes of the clustered set: one-shot accuracy on held-out classes.
  auto frng = ml::test::make_rng(92);
  const auto all = clusters(frng, 40, 20, 16, 1.5);
  const auto split = data::split_classes(all.num_classes(), 30, 0, frng);
  const data::EpisodeSampler<float> train(all, {8, 2, 2}, split.train);
  const data::EpisodeSampler<float> test(all, {5, 1, 5}, split.test);
  auto mlp = nn::mlp<float>({16, 64, 32}, frng);
  meta::SiameseOptions mo;
  mo.margin = 2.0;
  meta::Siamese<> learner(mo);
  ml::optim::Adam<float> adam(learner.meta_parameters(mlp), {1e-3});
  for (int step = 0; step < 300; ++step) learner.meta_step(mlp, adam, {train.sample(frng)});
  ml::Rng eval_rng(9);
  double acc = 0;
  for (int i = 0; i < 100; ++i) acc += learner.evaluate(mlp, test.sample(eval_rng)).accuracy / 100;
  INFO("mined pairs, 5-way 1-shot accuracy on held-out classes " << acc);
  CHECK(acc > 0.85);
}

TEST_CASE("Triplet: learns a clustered dataset with batch-hard mining",
          "[learners][metric][convergence]") {
  auto rng = ml::test::make_rng(87);
  const auto all = clusters(rng, 40, 20, 16, 1.5);
  const auto split = data::split_classes(all.num_classes(), 30, 0, rng);
  const auto& train_classes = split.train;
  const auto& test_classes = split.test;
  const data::EpisodeSampler<float> train(all, {8, 2, 4}, train_classes);
  const data::EpisodeSampler<float> test(all, {5, 1, 5}, test_classes);
  auto net = nn::mlp<float>({16, 64, 32}, rng);
  meta::TripletOptions o;
  o.margin = 1.0;
  const meta::Triplet<> triplet(o);
  ml::optim::Adam<float> adam(triplet.meta_parameters(net), {1e-3});
  for (int step = 0; step < 300; ++step) triplet.meta_step(net, adam, {train.sample(rng)});
  ml::Rng eval_rng(9);
  double acc = 0;
  for (int i = 0; i < 100; ++i) acc += triplet.evaluate(net, test.sample(eval_rng)).accuracy / 100;
  INFO("5-way 1-shot accuracy on held-out classes " << acc);
  CHECK(acc > 0.85);
}

TEST_CASE("metric learners: bad input is reported", "[learners][metric][error]") {
  auto rng = ml::test::make_rng(88);
  auto net = nn::mlp<float>({2, 4}, rng);
  const auto sine = data::SineTasks<float>().sample(rng);
  ml::test::check_throws<ml::InvalidArgument>([&] { meta::ProtoNet<>().evaluate(net, sine); },
                                              {"ProtoNet", "classification"});
  data::Episode<float> e;
  e.ways = 2;
  e.support_inputs = Tensor<float>(Shape{2, 2}, 0.f);
  e.support_labels = {0, 0};
  e.query_inputs = Tensor<float>(Shape{1, 2}, 0.f);
  e.query_labels = {1};
  ml::test::check_throws<ml::InvalidArgument>([&] { meta::ProtoNet<>().evaluate(net, e); },
                                              {"ProtoNet", "class 1 has no support"});
  e.support_labels = {0, 3};
  ml::test::check_throws<ml::InvalidArgument>([&] { meta::Triplet<>().evaluate(net, e); },
                                              {"Triplet", "label 3"});
  meta::SiameseOptions so;
  so.margin = 0;
  ml::test::check_throws<ml::InvalidArgument>([&] { meta::Siamese<> s(so); },
                                              {"Siamese", "margin"});
  data::PairBatch<float> p;
  p.first = Tensor<float>(Shape{3, 2}, 0.f);
  p.second = Tensor<float>(Shape{2, 2}, 0.f);
  p.different = Tensor<float>(Shape{3}, 0.f);
  std::vector<Tensor<float>> g;
  ml::test::check_throws<ml::InvalidArgument>([&] { meta::Siamese<>().meta_gradient(net, p, g); },
                                              {"Siamese", "[3, 2]", "[2, 2]"});
  meta::ProtoNetOptions po;
  po.threads = -1;
  ml::test::check_throws<ml::InvalidArgument>([&] { meta::ProtoNet<> bad(po); }, {"threads"});
}

TEST_CASE("scoring: ROC AUC and confidence intervals by hand", "[learners][metric]") {
  CHECK(meta::roc_auc({0.9, 0.8, 0.3, 0.1}, {1, 1, 0, 0}) == 1.0);
  CHECK(meta::roc_auc({0.1, 0.3, 0.8, 0.9}, {1, 1, 0, 0}) == 0.0);
  // One tie between a positive and a negative counts half: (1 + 0.5 + 1 + 1) / 4.
  CHECK(meta::roc_auc({0.9, 0.5, 0.5, 0.1}, {1, 1, 0, 0}) == 0.875);
  ml::test::check_throws<ml::InvalidArgument>(
      [] {
        meta::roc_auc({0.1, 0.2}, {1, 1});
      },
      {"roc_auc", "negative"});
  const auto m = meta::mean_ci({1, 2, 3, 4});
  CHECK(m.mean == 2.5);
  CHECK_THAT(m.ci95, WithinAbs(1.96 * std::sqrt(5.0 / 3.0) / 2.0, 1e-12));
}

TEST_CASE("Siamese with Koch et al.'s head: loss by hand, derivatives, learning",
          "[learners][metric][second-order]") {
  auto rng = ml::test::make_rng(89);
  // One-layer encoder f(x) = x W^T + b on 2-d inputs, 3 features; head alpha, beta.
  auto net = nn::mlp<double>({2, 3}, rng);
  meta::SiameseOptions o;
  o.head_features = 3;
  meta::Siamese<meta::L1, meta::KochHead, double> koch(o);
  auto params = koch.meta_parameters(net);
  REQUIRE(params.size() == 4);
  CHECK(params.name(2) == "head.alpha");
  params[2] = Tensor<double>(Shape{3}, {0.5, -1.0, 2.0});
  params[3] = Tensor<double>(Shape{1}, {0.25});
  data::PairBatch<double> pairs;
  pairs.first = rows({1, 2, -1, 0.5}, 2);
  pairs.second = rows({0, 1, 2, 2}, 2);
  pairs.different = Tensor<double>(Shape{2}, {0, 1});
  std::vector<Tensor<double>> g;
  const auto s = koch.meta_gradient(net, pairs, g);
  // By hand: z_i = alpha . |f(x1_i) - f(x2_i)| + beta; loss = mean BCE(z, same).
  ml::Tape<double> tape;
  const auto w = tape.leaves(net.parameters().views());
  const auto f1 = net.forward(w, tape.constant(pairs.first)).to_tensor();
  const auto f2 = net.forward(w, tape.constant(pairs.second)).to_tensor();
  double loss = 0;
  for (int i = 0; i < 2; ++i) {
    double z = 0.25;
    for (int k = 0; k < 3; ++k)
      z += params[2].data()[k] * std::abs(f1.data()[i * 3 + k] - f2.data()[i * 3 + k]);
    const double same = i == 0 ? 1.0 : 0.0;
    loss += (std::log1p(std::exp(-std::abs(z))) + std::max(z, 0.0) - z * same) / 2;
  }
  CHECK_THAT(s.query_loss, WithinAbs(loss, 1e-12));
  REQUIRE(g.size() == 4);
  check_both(
      [&](const Vars& v) {
        const auto e1 = ml::matmul(v[0], v[2]), e2 = ml::matmul(v[1], v[2]);
        const auto z =
            ml::reshape(ml::matmul(ml::abs(e1 - e2), ml::reshape(v[3], Shape{3, 1})), Shape{2});
        return meta::KochHead::loss(-z, ml::constant(pairs.different), 0.0);
      },
      {pairs.first, pairs.second, ml::test::uniform(rng, {2, 3}), params[2]});
  // Without meta_parameters first, it says what to do.
  meta::Siamese<meta::L1, meta::KochHead, double> fresh(o);
  ml::test::check_throws<ml::StateError>([&] { fresh.meta_gradient(net, pairs, g); },
                                         {"KochHead", "meta_parameters"});
  o.head_features = 0;
  ml::test::check_throws<ml::InvalidArgument>(
      [&] { meta::Siamese<meta::L1, meta::KochHead, double> bad(o); }, {"head_features"});

  // Learning: one-shot accuracy on held-out classes of the clustered set.
  auto frng = ml::test::make_rng(90);
  const auto all = clusters(frng, 40, 20, 16, 1.5);
  const auto split = data::split_classes(all.num_classes(), 30, 0, frng);
  const data::PairSampler<float> train(all, 64, split.train);
  const data::EpisodeSampler<float> test(all, {5, 1, 5}, split.test);
  auto enc = nn::mlp<float>({16, 64, 32}, frng);
  meta::SiameseOptions ko;
  ko.head_features = 32;
  meta::Siamese<meta::L1, meta::KochHead> learner(ko);
  ml::optim::Adam<float> adam(learner.meta_parameters(enc), {1e-3});
  for (int step = 0; step < 300; ++step) learner.meta_step(enc, adam, train.sample(frng));
  ml::Rng eval_rng(9);
  double acc = 0;
  for (int i = 0; i < 100; ++i) acc += learner.evaluate(enc, test.sample(eval_rng)).accuracy / 100;
  INFO("Koch head, 5-way 1-shot accuracy on held-out classes " << acc);
  CHECK(acc > 0.85);
}
