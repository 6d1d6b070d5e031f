// Bad input, end to end: a table of malformed inputs across the tensor API, the loaders, the
// samplers, the learners and the trainer. Each must throw the documented exception type
// with a message naming the function and the problem; none may crash or return garbage.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/errors.hpp"
#include "support/seed.hpp"

namespace ml = metalearn;
namespace nn = metalearn::nn;
namespace data = metalearn::data;
namespace meta = metalearn::meta;
namespace fs = std::filesystem;
using ml::Shape;
using ml::Tensor;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("metalearn_bad_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

fs::path file_with(const std::string& name, const std::vector<unsigned char>& bytes) {
  const fs::path p = scratch(name);
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  return p;
}

enum class Kind { invalid_argument, io_error, state_error };

struct Case {
  const char* what;
  Kind kind;
  std::function<void()> run;
  std::vector<const char*> fragments;
};

void check_case(const Case& c) {
  INFO("case: " << c.what);
  try {
    c.run();
  } catch (const ml::Error& e) {
    const std::string message = e.what();
    const bool right_type =
        (c.kind == Kind::invalid_argument && dynamic_cast<const ml::InvalidArgument*>(&e)) ||
        (c.kind == Kind::io_error && dynamic_cast<const ml::IoError*>(&e)) ||
        (c.kind == Kind::state_error && dynamic_cast<const ml::StateError*>(&e));
    INFO("message: " << message);
    CHECK(right_type);
    for (const char* f : c.fragments) {
      INFO("expected fragment: " << f);
      CHECK(message.find(f) != std::string::npos);
    }
    return;
  } catch (const std::exception& e) {
    FAIL("threw a non-metalearn exception: " << e.what());
  }
  FAIL("threw nothing");
}

}  // namespace

TEST_CASE("bad input: every case throws the right error with a clear message",
          "[reliability][error]") {
  auto rng = ml::test::make_rng(90);
  const auto sine = data::SineTasks<float>().sample(rng);
  Tensor<float> ten(Shape{10, 1, 4, 4}, 0.5f);
  std::vector<std::int64_t> ten_labels{0, 0, 0, 1, 1, 1, 2, 2, 2, 2};
  const data::ClassDataset<float> small(ten, ten_labels);
  auto tiny_net = nn::mlp<float>({16, 4}, rng);
  const auto idx_header = [](std::uint8_t rank, std::vector<std::uint32_t> dims) {
    std::vector<unsigned char> b{0, 0, 0x08, rank};
    for (auto d : dims)
      for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(d >> s));
    return b;
  };
  Tensor<float> w(Shape{3, 2}), other_w(Shape{2, 2});
  nn::ParameterList<float> params, other;
  params.add("w", w);
  other.add("w", other_w);
  const fs::path good_ckpt = scratch("good.ckpt");
  ml::io::Checkpoint<float>().tensors("model", params).save(good_ckpt.string());

  const std::vector<Case> cases{
      // Tensor API
      {"tensor values of the wrong count",
       Kind::invalid_argument,
       [] {
         Tensor<float>(Shape{2, 2}, std::vector<float>{1, 2, 3});
       },
       {"Tensor", "3"}},
      {"negative dimension",
       Kind::invalid_argument,
       [] {
         Shape::from_array({2, -1, 0, 0}, 2);
       },
       {"Shape", "negative dimension -1"}},
      {"matmul inner dimensions",
       Kind::invalid_argument,
       [] {
         ml::Tape<float> t;
         ml::matmul(t.constant(Tensor<float>(Shape{2, 3})), t.constant(Tensor<float>(Shape{4, 5})));
       },
       {"matmul", "[2, 3]", "[4, 5]"}},
      {"broadcast of incompatible shapes",
       Kind::invalid_argument,
       [] {
         ml::Tape<float> t;
         ml::add(t.constant(Tensor<float>(Shape{2, 3})), t.constant(Tensor<float>(Shape{4})));
       },
       {"add", "[2, 3]", "[4]"}},
      {"reshape to another size",
       Kind::invalid_argument,
       [] {
         ml::Tape<float> t;
         ml::reshape(t.constant(Tensor<float>(Shape{2, 3})), Shape{4, 2});
       },
       {"reshape", "[2, 3]", "[4, 2]"}},
      {"gather_rows index out of range",
       Kind::invalid_argument,
       [] {
         ml::Tape<float> t;
         ml::gather_rows(t.constant(Tensor<float>(Shape{2, 3})), {0, 5});
       },
       {"gather_rows", "5"}},
      {"cross_entropy label out of range",
       Kind::invalid_argument,
       [] {
         ml::Tape<float> t;
         ml::cross_entropy(t.constant(Tensor<float>(Shape{2, 3})), {0, 3});
       },
       {"cross_entropy", "3"}},
      {"conv2d channel mismatch",
       Kind::invalid_argument,
       [] {
         ml::Tape<float> t;
         ml::conv2d(t.constant(Tensor<float>(Shape{1, 2, 5, 5})),
                    t.constant(Tensor<float>(Shape{4, 3, 3, 3})));
       },
       {"conv2d", "[1, 2, 5, 5]", "[4, 3, 3, 3]"}},
      {"grad of a non-scalar",
       Kind::invalid_argument,
       [] {
         ml::Tape<float> t;
         auto x = t.leaf(Tensor<float>(Shape{3}));
         ml::grad(x * 2.0f, {x});
       },
       {"grad", "scalar"}},
      {"grad with respect to an unused input",
       Kind::invalid_argument,
       [] {
         ml::Tape<float> t;
         auto x = t.leaf(Tensor<float>(Shape{3}));
         auto y = t.leaf(Tensor<float>(Shape{3}));
         ml::grad(ml::sum(x), {y});
       },
       {"grad", "unused"}},
      {"a Var used after its tape ended",
       Kind::state_error,
       [] {
         ml::Var<float> stale;
         {
           ml::Tape<float> t;
           stale = t.leaf(Tensor<float>(Shape{2}));
         }
         ml::Tape<float> t2;
         (void)ml::sum(stale);
       },
       {"Var"}},
      // Loaders
      {"IDX file missing",
       Kind::io_error,
       [] { data::load_idx_images<float>(scratch("nope.idx").string()); },
       {"load_idx_images", "nope.idx"}},
      {"IDX bad magic number",
       Kind::io_error,
       [&] {
         data::load_idx_images<float>(file_with("magic.idx", {1, 2, 3, 4, 5}).string());
       },
       {"load_idx_images", "magic number"}},
      {"IDX truncated payload",
       Kind::io_error,
       [&] {
         auto b = idx_header(3, {2, 2, 2});
         b.push_back(1);
         data::load_idx_images<float>(file_with("short.idx", b).string());
       },
       {"load_idx_images", "truncated"}},
      {"IDX header claiming 2^96 bytes",
       Kind::io_error,
       [&] {
         data::load_idx_images<float>(
             file_with("huge.idx", idx_header(3, {0xffffffffu, 0xffffffffu, 0xffffffffu}))
                 .string());
       },
       {"load_idx_images", "header says"}},
      {"IDX images and labels of different counts",
       Kind::io_error,
       [&] {
         auto images = idx_header(3, {2, 1, 1});
         images.push_back(0);
         images.push_back(0);
         auto labels = idx_header(1, {3});
         labels.insert(labels.end(), {0, 1, 2});
         data::load_idx<float>(file_with("i.idx", images).string(),
                               file_with("l.idx", labels).string());
       },
       {"load_idx", "2", "3"}},
      {"checkpoint missing",
       Kind::io_error,
       [&] {
         ml::io::Checkpoint<float>().tensors("model", params).load(scratch("none.ckpt").string());
       },
       {"Checkpoint::load", "cannot be opened"}},
      {"checkpoint that is not one",
       Kind::io_error,
       [&] {
         ml::io::Checkpoint<float>()
             .tensors("model", params)
             .load(file_with("junk.ckpt", std::vector<unsigned char>(64, 'x')).string());
       },
       {"Checkpoint::load", "not a metalearn checkpoint"}},
      {"checkpoint of another shape",
       Kind::io_error,
       [&] { ml::io::Checkpoint<float>().tensors("model", other).load(good_ckpt.string()); },
       {"Checkpoint::load", "model.w", "[3, 2]", "[2, 2]"}},
      {"checkpoint of another scalar type",
       Kind::io_error,
       [&] {
         Tensor<double> wd(Shape{3, 2});
         nn::ParameterList<double> pd;
         pd.add("w", wd);
         ml::io::Checkpoint<double>().tensors("model", pd).load(good_ckpt.string());
       },
       {"Checkpoint::load", "float vs double"}},
      {"checkpoint entry registered twice",
       Kind::invalid_argument,
       [&] { ml::io::Checkpoint<float>().tensors("model", params).tensors("model", params); },
       {"Checkpoint", "registered twice"}},
      {"an image file that is not an image",
       Kind::io_error,
       [&] {
         data::read_grey_image(file_with("text.png", {'h', 'e', 'l', 'l', 'o'}).string());
       },
       {"text.png"}},
      {"image folder missing",
       Kind::io_error,
       [] { data::load_image_folder(scratch("no_such_folder").string()); },
       {"no_such_folder"}},
      {"Lake runs folder missing",
       Kind::io_error,
       [] { data::load_lake_runs(scratch("no_runs").string()); },
       {"load_lake_runs", "no_runs"}},
      // Samplers
      {"zero ways",
       Kind::invalid_argument,
       [&] {
         data::EpisodeSampler<float>(small, {0, 1, 1});
       },
       {"EpisodeSampler", "ways >= 1"}},
      {"more ways than classes",
       Kind::invalid_argument,
       [&] {
         data::EpisodeSampler<float>(small, {4, 1, 1});
       },
       {"EpisodeSampler", "4 ways but only 3 classes"}},
      {"more shots and queries than examples",
       Kind::invalid_argument,
       [&] {
         data::EpisodeSampler<float>(small, {2, 3, 2});
       },
       {"EpisodeSampler", "examples"}},
      {"meta-batch of zero",
       Kind::invalid_argument,
       [] { data::MetaBatchSampler<data::SineTasks<float>>(data::SineTasks<float>(), 0); },
       {"MetaBatchSampler", "batch >= 1"}},
      {"sine tasks without support points",
       Kind::invalid_argument,
       [] {
         data::SineOptions o;
         o.shots = 0;
         data::SineTasks<float> t(o);
       },
       {"shots >= 1"}},
      {"pairs from one class",
       Kind::invalid_argument,
       [&] { data::PairSampler<float>(small, 4, {0}); },
       {"PairSampler", "at least 2 classes"}},
      // Learners and optimizers
      {"negative inner learning rate",
       Kind::invalid_argument,
       [] {
         meta::GradientLearnerOptions o;
         o.inner_lr = -0.1;
         meta::Maml m(o);
       },
       {"GradientLearner", "inner_lr"}},
      {"negative thread count",
       Kind::invalid_argument,
       [] {
         meta::GradientLearnerOptions o;
         o.threads = -2;
         meta::Maml m(o);
       },
       {"GradientLearner", "threads"}},
      {"model and data shapes disagree",
       Kind::invalid_argument,
       [&] {
         std::vector<Tensor<float>> g;
         meta::Maml().meta_gradient(tiny_net, {sine}, g);  // 16 inputs, sine has 1
       },
       {"Linear::forward", "[10, 1]"}},
      {"empty meta-batch",
       Kind::invalid_argument,
       [&] {
         std::vector<Tensor<float>> g;
         meta::Maml().meta_gradient(tiny_net, {}, g);
       },
       {"meta_gradient", "empty meta-batch"}},
      {"Meta-SGD used before its step sizes exist",
       Kind::state_error,
       [&] { meta::MetaSgd().evaluate(tiny_net, sine); },
       {"Meta-SGD", "meta_parameters"}},
      {"ProtoNet on a regression episode",
       Kind::invalid_argument,
       [&] { meta::ProtoNet<>().evaluate(tiny_net, sine); },
       {"ProtoNet", "classification"}},
      {"Siamese with a zero margin",
       Kind::invalid_argument,
       [] {
         meta::SiameseOptions o;
         o.margin = 0;
         meta::Siamese<> s(o);
       },
       {"Siamese", "margin"}},
      {"Triplet with a negative margin",
       Kind::invalid_argument,
       [] {
         meta::TripletOptions o;
         o.margin = -1;
         meta::Triplet<> t(o);
       },
       {"Triplet", "margin"}},
      {"Adam with a negative learning rate",
       Kind::invalid_argument,
       [&] { ml::optim::Adam<float>(tiny_net.parameters(), {-1e-3}); },
       {"Adam", "-0.001"}},
      {"optimizer step with too few gradients",
       Kind::invalid_argument,
       [&] {
         ml::optim::Sgd<float> sgd(tiny_net.parameters(), {0.1});
         sgd.step(std::vector<Tensor<float>>{Tensor<float>(Shape{4, 16})});
       },
       {"Sgd::step", "1 gradients for 2 parameters"}},
      {"trainer with negative steps",
       Kind::invalid_argument,
       [&] {
         meta::Maml m;
         ml::optim::Adam<float> adam(tiny_net.parameters());
         meta::TrainerOptions o;
         o.steps = -1;
         const data::MetaBatchSampler<data::SineTasks<float>> b(data::SineTasks<float>(), 2);
         meta::train(m, tiny_net, adam, b, std::vector<data::Episode<float>>{}, rng, o);
       },
       {"train", "steps"}},
  };
  CHECK(cases.size() >= 30);
  for (const auto& c : cases) check_case(c);
}
