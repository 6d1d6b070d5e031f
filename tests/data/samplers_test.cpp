// Episodes and samplers: shapes, ranges, statistics, determinism for 1 and 2 threads, errors.
#include <algorithm>
#include <cmath>
#include <map>
#include <metalearn/metalearn.hpp>
#include <set>
#include <tuple>
#include <vector>

#include "support/catch.hpp"
#include "support/errors.hpp"
#include "support/seed.hpp"

namespace ml = metalearn;
namespace data = metalearn::data;
using ml::Shape;
using ml::Tensor;

namespace {
// `classes` classes with `per_class` examples each; example value = class id * 1000 + index,
// so a test can read each example's class back from its value.
data::ClassDataset<float> labelled(std::int64_t classes, std::int64_t per_class,
                                   std::int64_t id_offset = 0) {
  Tensor<float> x(Shape{classes * per_class, 1});
  std::vector<std::int64_t> labels;
  for (std::int64_t c = 0; c < classes; ++c)
    for (std::int64_t k = 0; k < per_class; ++k) {
      x.data()[c * per_class + k] = static_cast<float>((c + id_offset) * 1000 + k);
      labels.push_back(c + id_offset);
    }
  return data::ClassDataset<float>(x, labels);
}
std::int64_t class_of(float v) { return static_cast<std::int64_t>(v) / 1000; }
}  // namespace

TEST_CASE("SineTasks: Finn et al.'s ranges, targets and determinism", "[data]") {
  auto rng = ml::test::make_rng(60);
  data::SineTasks<double> tasks;
  for (int t = 0; t < 500; ++t) {
    const auto task = tasks.sample_task(rng);
    CHECK((task.amplitude >= 0.1 && task.amplitude <= 5.0));
    CHECK((task.phase >= 0.0 && task.phase <= 3.1415927));
    const auto e = tasks.episode(task, rng);
    REQUIRE(e.support_inputs.shape() == Shape{10, 1});
    REQUIRE(e.query_targets.shape() == Shape{10, 1});
    CHECK_FALSE(e.is_classification());
    for (int i = 0; i < 10; ++i) {
      const double x = e.support_inputs.data()[i];
      CHECK((x >= -5.0 && x <= 5.0));
      CHECK_THAT(e.support_targets.data()[i],
                 WithinAbs(task.amplitude * std::sin(x - task.phase), 1e-12));
    }
  }
  ml::Rng a{7}, b{7};
  CHECK(tasks.sample(a).query_inputs.array().isApprox(tasks.sample(b).query_inputs.array()));
  data::LineTasks<double> lines;
  const auto line = lines.sample_task(rng);
  const auto e = lines.episode(line, rng);
  CHECK_THAT(e.query_targets.data()[3],
             WithinAbs(line.slope * e.query_inputs.data()[3] + line.intercept, 1e-12));
  data::SineOptions bad;
  bad.amplitude = {5.0, 0.1};
  ml::test::check_throws<ml::InvalidArgument>([&] { data::SineTasks<double>{bad}; },
                                              {"metalearn::data::SineTasks", "amplitude"});
}

TEST_CASE("EpisodeSampler: N-way K-shot episodes, labels and no duplicates", "[data]") {
  const auto ds = labelled(20, 8, 100);
  data::EpisodeSampler<float> sampler(ds, {5, 2, 3});
  auto rng = ml::test::make_rng(61);
  std::map<std::int64_t, int> used;
  const int episodes = 2000;
  for (int t = 0; t < episodes; ++t) {
    const auto e = sampler.sample(rng);
    REQUIRE(e.support_inputs.shape() == Shape{10, 1});
    REQUIRE(e.query_inputs.shape() == Shape{15, 1});
    REQUIRE(e.classes.size() == 5);
    std::set<float> seen;
    for (int i = 0; i < 10; ++i) {
      CHECK(e.support_labels[i] == i / 2);  // class-major
      CHECK(class_of(e.support_inputs.data()[i]) == e.classes[e.support_labels[i]]);
      seen.insert(e.support_inputs.data()[i]);
    }
    for (int i = 0; i < 15; ++i) {
      CHECK(class_of(e.query_inputs.data()[i]) == e.classes[e.query_labels[i]]);
      seen.insert(e.query_inputs.data()[i]);
    }
    CHECK(seen.size() == 25);  // no example twice within an episode
    CHECK(std::set<std::int64_t>(e.classes.begin(), e.classes.end()).size() == 5);
    for (auto c : e.classes) ++used[c];
  }
  // Each class is used 5/20 of the time: 500 expected, binomial sd ~19; allow 5 sd.
  REQUIRE(used.size() == 20);
  for (const auto& [c, n] : used) CHECK(std::abs(n - 500) < 100);
}

TEST_CASE("EpisodeSampler: bad configurations name the problem", "[data][error]") {
  const auto ds = labelled(4, 3);
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        data::EpisodeSampler<float>(ds, {5, 1, 1});
      },
      {"metalearn::data::EpisodeSampler", "5 ways", "4 classes"});
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        data::EpisodeSampler<float>(ds, {2, 2, 2});
      },
      {"class 0", "3 examples", "shots + queries = 4"});
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        data::EpisodeSampler<float>(ds, {0, 1, 1});
      },
      {"ways >= 1"});
  ml::test::check_throws<ml::InvalidArgument>(
      [] {
        data::ClassDataset<float>(Tensor<float>(Shape{3, 2}), {1, 2});
      },
      {"metalearn::data::ClassDataset", "2 labels", "[3, 2]"});
}

TEST_CASE("MetaBatchSampler: same episodes for 1 and 2 threads", "[data][threads]") {
  const auto ds = labelled(30, 6);
  data::EpisodeSampler<float> episodes(ds, {5, 1, 2});
  data::MetaBatchSampler<data::EpisodeSampler<float>> one(episodes, 16, 1), two(episodes, 16, 2);
  ml::Rng r1{99}, r2{99};
  const auto a = one.sample(r1), b = two.sample(r2);
  REQUIRE(a.size() == 16);
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].classes == b[i].classes);
    CHECK((a[i].support_inputs.array() == b[i].support_inputs.array()).all());
    CHECK((a[i].query_inputs.array() == b[i].query_inputs.array()).all());
  }
  CHECK(r1() == r2());  // the caller's generator advanced alike
  data::MetaBatchSampler<data::SineTasks<float>> sines(data::SineTasks<float>{}, 25, 2);
  ml::Rng r3{1};
  CHECK(sines.sample(r3).size() == 25);
}

TEST_CASE("Class splits: disjoint, complete, deterministic, by group", "[data]") {
  ml::Rng rng{5};
  const auto s = data::split_classes(100, 60, 15, rng);
  CHECK(s.train.size() == 60);
  CHECK(s.validation.size() == 15);
  CHECK(s.test.size() == 25);
  std::set<std::int64_t> all(s.train.begin(), s.train.end());
  all.insert(s.validation.begin(), s.validation.end());
  all.insert(s.test.begin(), s.test.end());
  CHECK(all.size() == 100);
  ml::Rng again{5};
  CHECK(data::split_classes(100, 60, 15, again).train == s.train);
  // 12 classes in 4 groups of 3: whole groups go to one split.
  std::vector<std::int64_t> group_of{0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3};
  const auto g = data::split_by_group(group_of, 2, 1, rng);
  CHECK(g.train.size() == 6);
  CHECK(g.validation.size() == 3);
  CHECK(g.test.size() == 3);
  std::map<std::int64_t, std::set<int>> splits_of_group;
  int k = 0;
  for (const auto* part : {&g.train, &g.validation, &g.test}) {
    for (std::int64_t c : *part) splits_of_group[group_of[c]].insert(k);
    ++k;
  }
  for (const auto& [group, splits] : splits_of_group) CHECK(splits.size() == 1);
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)data::split_classes(10, 8, 3, rng); },
                                              {"metalearn::data::split_classes", "out of 10"});
}

TEST_CASE("with_rotations: four classes per class, rotated images", "[data]") {
  Tensor<float> img(Shape{1, 2, 2}, {1, 2, 3, 4});  // [[1, 2], [3, 4]]
  const data::ClassDataset<float> ds(img, {7});
  const auto rot = data::with_rotations(ds);
  REQUIRE(rot.num_classes() == 4);
  CHECK(rot.class_id(1) == 7 * 4 + 1);
  const auto& x = rot.examples();
  // 90 degrees counter-clockwise: [[2, 4], [1, 3]]; 180: [[4, 3], [2, 1]].
  CHECK(std::vector<float>(x.data() + 4, x.data() + 8) == std::vector<float>{2, 4, 1, 3});
  CHECK(std::vector<float>(x.data() + 8, x.data() + 12) == std::vector<float>{4, 3, 2, 1});
  CHECK(std::vector<float>(x.data() + 12, x.data() + 16) == std::vector<float>{3, 1, 4, 2});
  ml::test::check_throws<ml::InvalidArgument>(
      [] {
        (void)data::with_rotations(data::ClassDataset<float>(Tensor<float>(Shape{1, 2, 3}), {0}));
      },
      {"with_rotations", "square"});
}

TEST_CASE("PairSampler and TripletSampler: balanced, labelled as the contrastive loss expects",
          "[data]") {
  const auto ds = labelled(10, 4);
  data::PairSampler<float> pairs(ds, 64);
  data::TripletSampler<float> triplets(ds, 32);
  auto rng = ml::test::make_rng(62);
  const auto p = pairs.sample(rng);
  int different = 0;
  for (int i = 0; i < 64; ++i) {
    const bool diff = class_of(p.first.data()[i]) != class_of(p.second.data()[i]);
    CHECK(p.different.data()[i] == (diff ? 1.0f : 0.0f));
    CHECK(p.first.data()[i] != p.second.data()[i]);  // never an example paired with itself
    different += diff;
  }
  CHECK(different == 32);
  const auto t = triplets.sample(rng);
  for (int i = 0; i < 32; ++i) {
    CHECK(class_of(t.anchor.data()[i]) == class_of(t.positive.data()[i]));
    CHECK(t.anchor.data()[i] != t.positive.data()[i]);
    CHECK(class_of(t.anchor.data()[i]) != class_of(t.negative.data()[i]));
  }
  ml::test::check_throws<ml::InvalidArgument>([] { data::PairSampler<float>(labelled(3, 1), 4); },
                                              {"metalearn::data::PairSampler", "fewer than 2"});
}

TEST_CASE("Prefetcher: draws ahead on a thread, same sequence as direct sampling",
          "[data][threads]") {
  const auto ds = labelled(12, 5);
  data::EpisodeSampler<float> sampler(ds, {3, 1, 2});
  data::Prefetcher<data::EpisodeSampler<float>> ahead(sampler, 42);
  ml::Rng direct{42};
  for (int i = 0; i < 20; ++i) {
    const auto a = ahead.next(), b = sampler.sample(direct);
    CHECK(a.classes == b.classes);
    CHECK((a.query_inputs.array() == b.query_inputs.array()).all());
  }
}

TEST_CASE("Episode::regression and Episode::classification build checked episodes",
          "[data][episode]") {
  using E = data::Episode<float>;
  const E r = E::regression(ml::Tensor<float>(ml::Shape{5, 2}), ml::Tensor<float>(ml::Shape{5, 1}),
                            ml::Tensor<float>(ml::Shape{3, 2}), ml::Tensor<float>(ml::Shape{3, 1}));
  CHECK_FALSE(r.is_classification());
  CHECK(r.shots == 5);
  CHECK(r.queries == 3);
  ml::test::check_throws<ml::InvalidArgument>(
      [] {
        E::regression(ml::Tensor<float>(ml::Shape{5, 2}), ml::Tensor<float>(ml::Shape{4, 1}),
                      ml::Tensor<float>(ml::Shape{3, 2}), ml::Tensor<float>(ml::Shape{3, 1}));
      },
      {"Episode::regression", "support inputs have shape [5, 2]", "4 rows"});

  const E c = E::classification(ml::Tensor<float>(ml::Shape{6, 3}), {0, 0, 1, 1, 2, 2},
                                ml::Tensor<float>(ml::Shape{3, 3}), {2, 0, 1});
  CHECK(c.is_classification());
  CHECK(c.ways == 3);
  CHECK(c.shots == 2);
  CHECK(c.queries == 1);
  CHECK(c.classes == std::vector<std::int64_t>{0, 1, 2});
  ml::test::check_throws<ml::InvalidArgument>(
      [] {
        E::classification(ml::Tensor<float>(ml::Shape{4, 3}), {0, 1, 0, 1},
                          ml::Tensor<float>(ml::Shape{2, 3}), {0, 1});
      },
      {"class-major", "row 1 has label 1, 0 expected"});
  ml::test::check_throws<ml::InvalidArgument>(
      [] {
        E::classification(ml::Tensor<float>(ml::Shape{2, 3}), {0, 1},
                          ml::Tensor<float>(ml::Shape{2, 3}), {0, 2});
      },
      {"query label 2 is not one of the support set's 0..1"});
  ml::test::check_throws<ml::InvalidArgument>(
      [] {
        E::classification(ml::Tensor<float>(ml::Shape{2, 3}), {0, 1},
                          ml::Tensor<float>(ml::Shape{3, 3}), {0, 1, 1});
      },
      {"same count of every label"});
}

TEST_CASE("function_tasks: a regression family from a callable; fixed_episodes repeat",
          "[data][regression]") {
  data::FunctionTaskOptions o;
  o.shots = 4;
  o.queries = 6;
  o.x = {1.0, 2.0};
  const auto tasks = data::function_tasks<double>(
      [](ml::Rng& rng) {
        const double slope = ml::uniform(rng, -2.0, 2.0);
        return [slope](double x) { return slope * x * x; };
      },
      o);
  ml::Rng rng(4);
  const auto e = tasks.sample(rng);
  REQUIRE(e.support_inputs.shape() == ml::Shape{4, 1});
  REQUIRE(e.query_inputs.shape() == ml::Shape{6, 1});
  // One slope per episode: y / x^2 is the same for every point, support and query alike.
  const double slope = e.support_targets.data()[0] / std::pow(e.support_inputs.data()[0], 2);
  for (const auto* pair : {&e.support_inputs, &e.query_inputs}) {
    const auto& x = *pair;
    const auto& y = pair == &e.support_inputs ? e.support_targets : e.query_targets;
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      CHECK(x.data()[i] >= 1.0);
      CHECK(x.data()[i] <= 2.0);
      CHECK(y.data()[i] == Approx(slope * x.data()[i] * x.data()[i]).epsilon(1e-12));
    }
  }
  const auto a = data::fixed_episodes(tasks, 3, 9), b = data::fixed_episodes(tasks, 3, 9);
  REQUIRE(a.size() == 3);
  for (std::size_t i = 0; i < 3; ++i)
    CHECK(a[i].query_targets.data()[0] == b[i].query_targets.data()[0]);
  CHECK(a[0].query_targets.data()[0] != a[1].query_targets.data()[0]);
  o.x = {2.0, 1.0};
  ml::test::check_throws<ml::InvalidArgument>(
      [&] { data::function_tasks<float>([](ml::Rng&) { return [](double) { return 0.0; }; }, o); },
      {"FunctionTasks", "x range [2.000000, 1.000000]"});
}

TEST_CASE("warp_affine moves pixels as the affine formulas say", "[data][transforms]") {
  // One bright pixel at (row 5, column 7) of an 11x11 image: 2 px right of the centre.
  ml::Tensor<double> img(ml::Shape{1, 1, 11, 11}, 0.0);
  const auto at = [](const ml::Tensor<double>& t, int r, int c) { return t.data()[r * 11 + c]; };
  img.data()[5 * 11 + 7] = 1.0;
  // Translation by (1, -2): column + 1, row - 2.
  CHECK(at(data::warp_affine(img, data::Affine::translation(1, -2)), 3, 8) == Approx(1.0));
  // 90 degrees counter-clockwise on the screen: right of the centre goes above it,
  // (x, y) -> (x cos t + y sin t, -x sin t + y cos t) = (0, -2).
  const auto r = data::warp_affine(img, data::Affine::rotation(90));
  CHECK(at(r, 3, 5) == Approx(1.0).margin(1e-9));
  CHECK(at(r, 5, 7) == Approx(0.0).margin(1e-9));
  // Scale 2 about the centre: offset 2 -> 4 (column 9); column 8 reads offset 1.5, between
  // the dark column 6 and the bright column 7: bilinear gives 0.5.
  const auto s = data::warp_affine(img, data::Affine::scale(2, 2));
  CHECK(at(s, 5, 9) == Approx(1.0));
  CHECK(at(s, 5, 8) == Approx(0.5));
  // Shear x by 0.5: (x, y) -> (x + 0.5 y, y); a pixel 2 below the centre moves 1 right.
  ml::Tensor<double> low(ml::Shape{1, 1, 11, 11}, 0.0);
  low.data()[7 * 11 + 5] = 1.0;
  CHECK(at(data::warp_affine(low, data::Affine::shear(0.5, 0)), 7, 6) == Approx(1.0));
  // Composition: translate after rotate is (rotate, then add t).
  const auto both = data::Affine::translation(1, 0).after(data::Affine::rotation(90));
  CHECK(at(data::warp_affine(img, both), 3, 6) == Approx(1.0).margin(1e-9));
  ml::test::check_throws<ml::InvalidArgument>(
      [&] { data::warp_affine(img, data::Affine::scale(0, 1)); }, {"not invertible"});
}

TEST_CASE("RandomCrop and RandomFlip move pixels as their formulas say", "[data][transforms]") {
  // One bright pixel at (row 2, column 5) of a 6x7 image, two channels (the second dimmer).
  ml::Tensor<double> img(ml::Shape{1, 2, 6, 7}, 0.0);
  img.data()[2 * 7 + 5] = 1.0;
  img.data()[42 + 2 * 7 + 5] = 0.5;
  const auto at = [](const ml::Tensor<double>& t, int ch, int r, int c) {
    return t.data()[ch * 42 + r * 7 + c];
  };
  const data::RandomCrop crop(2);
  // out(y, x) = in(y + dy, x + dx): the pixel moves to (2 - dy, 5 - dx).
  const auto moved = crop.apply(img, {1, -1});
  CHECK(at(moved, 0, 1, 6) == 1.0);
  CHECK(at(moved, 1, 1, 6) == 0.5);
  double total = 0;
  for (std::int64_t i = 0; i < moved.numel(); ++i) total += moved.data()[i];
  CHECK(total == 1.5);
  // Shifted out of the image: zeros.
  const auto gone = crop.apply(img, {0, 2});
  CHECK(at(gone, 0, 2, 3) == 1.0);
  const auto off = data::RandomCrop(3).apply(img, {-3, -2});
  for (std::int64_t i = 0; i < off.numel(); ++i) CHECK(off.data()[i] == 0.0);
  // Draws cover [-padding, padding] on both axes, and nothing outside.
  ml::Rng rng(3);
  std::set<std::int64_t> dys, dxs;
  for (int k = 0; k < 400; ++k) {
    const auto d = crop.draw(rng);
    dys.insert(d.dy);
    dxs.insert(d.dx);
  }
  CHECK(dys == std::set<std::int64_t>{-2, -1, 0, 1, 2});
  CHECK(dxs == std::set<std::int64_t>{-2, -1, 0, 1, 2});
  // The mirror: column x reads column W - 1 - x.
  const data::RandomFlip flip(0.5);
  const auto mirrored = flip.apply(img, true);
  CHECK(at(mirrored, 0, 2, 1) == 1.0);
  CHECK(at(mirrored, 1, 2, 1) == 0.5);
  CHECK(at(mirrored, 0, 2, 5) == 0.0);
  CHECK(flip.apply(img, false).data()[2 * 7 + 5] == 1.0);
  int flips = 0;
  for (int k = 0; k < 1000; ++k) flips += flip.draw(rng) ? 1 : 0;
  CHECK(flips > 420);
  CHECK(flips < 580);
  ml::Rng r0(1);
  CHECK_FALSE(data::RandomFlip(0.0).draw(r0));
  CHECK(data::RandomFlip(1.0).draw(r0));
  ml::test::check_throws<ml::InvalidArgument>([] { data::RandomCrop(-1); },
                                              {"RandomCrop", "padding", "-1"});
  ml::test::check_throws<ml::InvalidArgument>([] { data::RandomFlip(1.5); },
                                              {"RandomFlip", "probability"});
  data::AffineOptions bad;
  bad.scale = {1.2, 0.8};
  ml::test::check_throws<ml::InvalidArgument>([&] { data::RandomAffine{bad}; },
                                              {"RandomAffine", "scale.lo <= scale.hi"});
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        crop.apply(ml::Tensor<double>(ml::Shape{3, 4}), {0, 0});
      },
      {"RandomCrop", "[N, C, H, W]"});
}

TEST_CASE("Augmented draws after the sample, image by image or once per sample",
          "[data][transforms]") {
  ml::Rng rng(1);
  ml::Tensor<float> x(ml::Shape{24, 1, 6, 6});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(ml::uniform01(rng));
  std::vector<std::int64_t> labels;
  for (int i = 0; i < 24; ++i) labels.push_back(i % 6);
  const data::ClassDataset<float> all(x, labels);
  const data::EpisodeSampler<float> plain(all, {3, 1, 2});
  const data::RandomCrop crop(1);
  const auto one = [](const ml::Tensor<float>& t, std::int64_t i) {
    ml::Tensor<float> o(ml::Shape{1, 1, 6, 6});
    std::copy(t.data() + i * 36, t.data() + (i + 1) * 36, o.data());
    return o;
  };
  const auto same_image = [&](const ml::Tensor<float>& got, std::int64_t i,
                              const ml::Tensor<float>& want) {
    for (std::int64_t k = 0; k < 36; ++k)
      if (got.data()[i * 36 + k] != want.data()[k]) return false;
    return true;
  };
  for (const auto every : {data::AugmentEvery::image, data::AugmentEvery::sample}) {
    const data::Augmented<data::EpisodeSampler<float>, data::RandomCrop> augmented(plain, crop,
                                                                                   every);
    ml::Rng a(7), replay(7);
    const auto e = augmented.sample(a);
    // The documented order: the episode, then one draw per image (support, then query), or
    // one draw for the whole sample.
    const auto raw = plain.sample(replay);
    CHECK(e.support_labels == raw.support_labels);
    CHECK(e.query_labels == raw.query_labels);
    data::RandomCrop::Draw d = crop.draw(replay);
    for (const auto* pair : {&raw.support_inputs, &raw.query_inputs}) {
      const auto& got = pair == &raw.support_inputs ? e.support_inputs : e.query_inputs;
      for (std::int64_t i = 0; i < pair->shape()[0]; ++i) {
        CHECK(same_image(got, i, crop.apply(one(*pair, i), d)));
        if (every == data::AugmentEvery::image) d = crop.draw(replay);
      }
    }
  }
  // Pair batches: both images of every pair moved, the labels kept.
  const data::PairSampler<float> pairs(all, 8);
  const data::Augmented<data::PairSampler<float>, data::RandomFlip> flipped(
      pairs, data::RandomFlip(1.0), data::AugmentEvery::sample);
  ml::Rng p(5), q(5);
  const auto fb = flipped.sample(p);
  const auto pb = pairs.sample(q);
  for (std::int64_t k = 0; k < fb.different.numel(); ++k)
    CHECK(fb.different.data()[k] == pb.different.data()[k]);
  CHECK(same_image(fb.first, 3, data::RandomFlip().apply(one(pb.first, 3), true)));
  CHECK(same_image(fb.second, 5, data::RandomFlip().apply(one(pb.second, 5), true)));
  // A sampler chosen at run time draws the same bits as the one it holds.
  const data::AnySampler<data::Episode<float>> any(
      data::Augmented<data::EpisodeSampler<float>, data::RandomCrop>(plain, crop));
  ml::Rng u(9), v(9);
  const auto e1 = any.sample(u);
  const auto e2 =
      data::Augmented<data::EpisodeSampler<float>, data::RandomCrop>(plain, crop).sample(v);
  for (std::int64_t k = 0; k < e1.query_inputs.numel(); ++k)
    CHECK(e1.query_inputs.data()[k] == e2.query_inputs.data()[k]);
}

TEST_CASE("AffineAugmented is deterministic per seed; normalize_channels", "[data][transforms]") {
  ml::Rng rng(1);
  ml::Tensor<float> x(ml::Shape{24, 1, 10, 10});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(ml::uniform01(rng));
  std::vector<std::int64_t> labels;
  for (int i = 0; i < 24; ++i) labels.push_back(i % 6);
  const data::ClassDataset<float> all(x, labels);
  const data::EpisodeSampler<float> plain(all, {3, 1, 2});
  const data::AffineAugmented<data::EpisodeSampler<float>> augmented(plain, {});
  ml::Rng a(7), b(7), c(7);
  const auto e1 = augmented.sample(a), e2 = augmented.sample(b);
  const auto raw = plain.sample(c);
  bool moved = false;
  for (std::int64_t i = 0; i < e1.support_inputs.numel(); ++i) {
    CHECK(e1.support_inputs.data()[i] == e2.support_inputs.data()[i]);
    moved = moved || e1.support_inputs.data()[i] != raw.support_inputs.data()[i];
  }
  CHECK(moved);
  CHECK(e1.support_labels == raw.support_labels);  // the same episode, distorted
  data::AffineOptions never;
  never.probability = 0;
  ml::Rng d(7);
  const auto same = data::AffineAugmented<data::EpisodeSampler<float>>(plain, never).sample(d);
  for (std::int64_t i = 0; i < same.query_inputs.numel(); ++i)
    CHECK(same.query_inputs.data()[i] == Approx(raw.query_inputs.data()[i]).margin(1e-6));

  auto images = x;
  const auto [mean, sd] = data::channel_statistics(images);
  data::normalize_channels(images, mean, sd);
  const auto [m2, s2] = data::channel_statistics(images);
  CHECK(m2[0] == Approx(0.0).margin(1e-5));
  CHECK(s2[0] == Approx(1.0).epsilon(1e-4));
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        data::normalize_channels(images, {0.0, 0.0}, {1.0, 1.0});
      },
      {"1 channels but 2 means"});
}

TEST_CASE("PairSampler hard negatives: different pairs from one group; 0 draws as before",
          "[data]") {
  // 12 classes of 3 examples in 3 groups of 4; a class's group is ordinal / 4.
  ml::Tensor<float> x(ml::Shape{36, 1, 2, 2});
  std::vector<std::int64_t> labels;
  for (int i = 0; i < 36; ++i) {
    labels.push_back(i % 12);
    for (int k = 0; k < 4; ++k) x.data()[i * 4 + k] = static_cast<float>(i);  // image = its row
  }
  const data::ClassDataset<float> all(x, labels);
  std::vector<std::int64_t> group_of;
  for (std::int64_t c = 0; c < 12; ++c) group_of.push_back(c / 4);
  const auto class_of = [&](const ml::Tensor<float>& t, std::int64_t i) {
    return all.labels()[static_cast<std::size_t>(t.data()[i * 4])];  // ids are the ordinals
  };
  ml::Rng a(3), c(3);
  const auto hard = data::PairSampler<float>(all, 400, {}, {group_of, 1.0}).sample(a);
  std::vector<int> seen(12, 0);
  for (std::int64_t i = 1; i < 400; i += 2) {
    const std::int64_t c1 = class_of(hard.first, i), c2 = class_of(hard.second, i);
    CHECK(c1 != c2);
    CHECK(group_of[static_cast<std::size_t>(c1)] == group_of[static_cast<std::size_t>(c2)]);
    if (c1 == 0) ++seen[static_cast<std::size_t>(c2)];
  }
  CHECK(seen[1] > 0);  // every other class of group 0 is drawn
  CHECK(seen[2] > 0);
  CHECK(seen[3] > 0);
  // same_group 0 draws the sequence of the sampler before PairNegatives, replayed by hand:
  // same pair (class, two of it), different pair (two classes, one of each).
  const auto zero = data::PairSampler<float>(all, 64, {}, {group_of, 0.0}).sample(c);
  const std::vector<std::int64_t> every = all.all_classes();
  ml::Rng r(3);
  for (std::int64_t i = 0; i < 64; ++i) {
    std::int64_t first, second;
    if (i % 2 == 0) {
      const std::int64_t cls = every[ml::uniform_index(r, every.size())];
      std::tie(first, second) = data::detail::two_of(all, cls, r);
    } else {
      const auto [c1, c2] = data::detail::two_classes(every, r);
      first = data::detail::one_of(all, c1, r);
      second = data::detail::one_of(all, c2, r);
    }
    CHECK(zero.first.data()[i * 4] == static_cast<float>(first));
    CHECK(zero.second.data()[i * 4] == static_cast<float>(second));
  }
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        data::PairSampler<float>(all, 4, {}, {{0, 1}, 0.5});
      },
      {"PairSampler", "group_of has 2 entries for 12 classes"});
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        data::PairSampler<float>(all, 4, {}, {group_of, 1.5});
      },
      {"PairSampler", "same_group must be in [0, 1]"});
}

TEST_CASE("augment_support: the support set and its distorted copies, the queries untouched",
          "[data][transforms]") {
  ml::Rng rng(3);
  ml::Tensor<float> x(ml::Shape{24, 1, 6, 6});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(ml::uniform01(rng));
  std::vector<std::int64_t> labels;
  for (int i = 0; i < 24; ++i) labels.push_back(i % 6);
  const data::ClassDataset<float> all(x, labels);
  ml::Rng er(4);
  const auto e = data::EpisodeSampler<float>(all, {3, 2, 2}).sample(er);
  const data::RandomCrop crop(1);
  ml::Rng a(8), replay(8);
  const auto t = data::augment_support(e, 2, a, crop);
  CHECK(t.shots == 6);
  CHECK(t.ways == 3);
  REQUIRE(t.support_inputs.shape() == ml::Shape{18, 1, 6, 6});
  REQUIRE(t.support_labels.size() == 18);
  for (std::int64_t k = 0; k < t.query_inputs.numel(); ++k)
    CHECK(t.query_inputs.data()[k] == e.query_inputs.data()[k]);
  CHECK(t.query_labels == e.query_labels);
  // Each original row, then its 2 copies (a draw each, in order): class-major order kept.
  ml::Tensor<float> one(ml::Shape{1, 1, 6, 6});
  for (std::int64_t row = 0; row < 18; ++row) {
    const std::int64_t i = row / 3;
    CHECK(t.support_labels[static_cast<std::size_t>(row)] ==
          e.support_labels[static_cast<std::size_t>(i)]);
    std::copy(e.support_inputs.data() + i * 36, e.support_inputs.data() + (i + 1) * 36, one.data());
    const auto want = row % 3 == 0 ? one : crop.apply(one, crop.draw(replay));
    for (std::int64_t k = 0; k < 36; ++k)
      CHECK(t.support_inputs.data()[row * 36 + k] == want.data()[k]);
  }
  CHECK(std::is_sorted(t.support_labels.begin(), t.support_labels.end()));  // class-major
  const auto same = data::augment_support(e, 0, a);
  CHECK(same.support_labels == e.support_labels);
  CHECK(same.shots == e.shots);
  ml::test::check_throws<ml::InvalidArgument>([&] { data::augment_support(e, -1, a); },
                                              {"augment_support", "copies must be >= 0"});
}

TEST_CASE("GroupEpisodeSampler: Lake-style episodes, one group, other drawers for the queries",
          "[data][episode]") {
  // 3 groups of 5 classes, 6 examples each; example value = 100 * class + position.
  ml::Tensor<float> x(ml::Shape{15 * 6, 1});
  std::vector<std::int64_t> labels, group_of;
  for (std::int64_t c = 0; c < 15; ++c) {
    group_of.push_back(c / 5);
    for (std::int64_t p = 0; p < 6; ++p) {
      x.data()[c * 6 + p] = static_cast<float>(100 * c + p);
      labels.push_back(c);
    }
  }
  const data::ClassDataset<float> all(x, labels);
  const data::GroupEpisodeSampler<float> lake(all, group_of, {4, 1, 2});
  ml::Rng rng(3);
  std::set<std::int64_t> groups_seen;
  for (int i = 0; i < 50; ++i) {
    const auto e = lake.sample(rng);
    REQUIRE(e.ways == 4);
    std::set<std::int64_t> groups, support_positions, query_positions;
    for (const auto id : e.classes) groups.insert(id / 5);
    CHECK(groups.size() == 1);  // every class from one alphabet
    groups_seen.insert(*groups.begin());
    for (std::int64_t r = 0; r < 4; ++r) {
      const auto v = static_cast<std::int64_t>(e.support_inputs.data()[r]);
      CHECK(v / 100 == e.classes[static_cast<std::size_t>(e.support_labels[r])]);
      support_positions.insert(v % 100);
    }
    for (std::int64_t r = 0; r < 8; ++r)
      query_positions.insert(static_cast<std::int64_t>(e.query_inputs.data()[r]) % 100);
    CHECK(support_positions.size() == 1);  // one drawer for the support set
    CHECK(query_positions.size() == 2);    // two others for the queries
    CHECK(query_positions.count(*support_positions.begin()) == 0);
  }
  CHECK(groups_seen.size() == 3);
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        data::GroupEpisodeSampler<float>(all, group_of, {6, 1, 1});
      },
      {"no group has 6 classes"});
}
