// Checkpoints: round trip, and every kind of bad file rejected with nothing changed.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/errors.hpp"
#include "support/seed.hpp"

namespace ml = metalearn;
namespace nn = metalearn::nn;
namespace fs = std::filesystem;
using ml::Shape;
using ml::Tensor;

namespace {

fs::path temp_file(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("metalearn_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

std::vector<char> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const fs::path& p, const std::vector<char>& b) {
  std::ofstream out(p, std::ios::binary);
  out.write(b.data(), static_cast<std::streamsize>(b.size()));
}

// A model, an optimizer that has taken steps, a step counter and an RNG: a training run.
struct Run {
  ml::Rng rng;
  nn::Sequential<float> net;
  ml::optim::Adam<float> adam;
  std::int64_t step = 0;
  explicit Run(std::uint64_t seed, std::vector<std::int64_t> sizes = {2, 8, 1})
      : rng(seed), net(nn::mlp<float>(sizes, rng)), adam(net.parameters()) {}
  void train(int steps) {
    for (int s = 0; s < steps; ++s, ++step) {
      ml::Tape<float> tape;
      Tensor<float> x(Shape{4, 2});
      for (std::int64_t i = 0; i < x.numel(); ++i)
        x.data()[i] = static_cast<float>(ml::uniform(rng, -1, 1));
      const auto w = tape.leaves(net.parameters().views());
      adam.step(ml::grad(ml::mean(ml::square(net.forward(w, tape.constant(x)))), w));
    }
  }
  ml::io::Checkpoint<float> checkpoint() {
    ml::io::Checkpoint<float> c;
    c.tensors("model", net.parameters())
        .tensors("optimizer", adam.state())
        .counter("step", step)
        .counter("optimizer.steps", adam.step_counter())
        .rng(rng);
    return c;
  }
  std::vector<Tensor<float>> snapshot() {
    auto v = net.parameters().values();
    for (auto& t : adam.state().values()) v.push_back(t);
    return v;
  }
};

bool same(const std::vector<Tensor<float>>& a, const std::vector<Tensor<float>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].shape() != b[i].shape() || !(a[i].array() == b[i].array()).all()) return false;
  return true;
}

}  // namespace

TEST_CASE("Checkpoint: a resumed run continues exactly like the uninterrupted one", "[io]") {
  const fs::path path = temp_file("resume.ckpt");
  Run original(5);
  original.train(3);
  original.checkpoint().save(path.string());
  original.train(4);

  Run resumed(99);  // different seed: everything must come from the file
  resumed.checkpoint().load(path.string());
  CHECK(resumed.step == 3);
  CHECK(resumed.adam.steps() == 3);
  resumed.train(4);
  CHECK(same(resumed.snapshot(), original.snapshot()));
  CHECK(resumed.rng() == original.rng());
  CHECK_FALSE(fs::exists(path.string() + ".tmp"));
}

TEST_CASE("Checkpoint: bad files are rejected and change nothing", "[io][error]") {
  const fs::path path = temp_file("bad.ckpt");
  Run source(6);
  source.train(2);
  source.checkpoint().save(path.string());
  const std::vector<char> good = read_bytes(path);

  Run target(7);
  target.train(1);
  const auto before = target.snapshot();
  const std::int64_t step_before = target.step;
  const auto expect_rejected = [&](std::initializer_list<const char*> fragments) {
    auto c = target.checkpoint();
    ml::test::check_throws<ml::IoError>([&] { c.load(path.string()); }, fragments);
    CHECK(same(target.snapshot(), before));
    CHECK(target.step == step_before);
  };

  SECTION("missing file") {
    fs::remove(path);
    expect_rejected({"metalearn::io::Checkpoint::load", "bad.ckpt", "cannot be opened"});
  }
  SECTION("truncated") {
    write_bytes(path,
                std::vector<char>(good.begin(), good.begin() + static_cast<long>(good.size() / 2)));
    expect_rejected({"checksum"});
    write_bytes(path, std::vector<char>(good.begin(), good.begin() + 10));
    expect_rejected({"truncated"});
  }
  SECTION("one corrupt byte") {
    auto bad = good;
    bad[bad.size() / 2] ^= 0x10;
    write_bytes(path, bad);
    expect_rejected({"checksum", "corrupt"});
  }
  SECTION("not a checkpoint") {
    write_bytes(path, std::vector<char>(200, 'x'));
    expect_rejected({"not a metalearn checkpoint"});
  }
  SECTION("newer format version") {
    auto bad = good;
    // The version field follows the 8-byte magic; one more than this build writes.
    bad[8] = static_cast<char>(ml::io::checkpoint_format_version + 1);
    write_bytes(path, bad);
    expect_rejected(
        {("format version " + std::to_string(ml::io::checkpoint_format_version + 1)).c_str(),
         "newer"});
  }
  SECTION("other scalar type") {
    Run wide(8);
    nn::Sequential<double> dnet = nn::mlp<double>({2, 8, 1}, wide.rng);
    ml::io::Checkpoint<double> c;
    c.tensors("model", dnet.parameters());
    c.save(path.string());
    expect_rejected({"8-byte values", "4-byte"});
  }
  SECTION("other model shape") {
    Run other(9, {2, 16, 1});
    other.checkpoint().save(path.string());
    expect_rejected({"entry 'model.0.weight'", "[2, 16]", "[2, 8]"});
  }
  SECTION("a smaller file (missing entries)") {
    ml::io::Checkpoint<float> partial;
    partial.tensors("model", source.net.parameters());
    partial.save(path.string());
    expect_rejected({"has no entry 'optimizer."});
  }
}

TEST_CASE("Checkpoint: a failed save keeps the previous file", "[io][error]") {
  const fs::path path = temp_file("keep.ckpt");
  Run run(10);
  run.checkpoint().save(path.string());
  const auto good = read_bytes(path);
  // A directory where the temp file should go makes the write fail.
  fs::create_directories(path.string() + ".tmp");
  run.train(1);
  ml::test::check_throws<ml::IoError>([&] { run.checkpoint().save(path.string()); },
                                      {"metalearn::io::Checkpoint::save", "keep.ckpt"});
  fs::remove_all(path.string() + ".tmp");
  CHECK(read_bytes(path) == good);
  std::int64_t step = 0;
  ml::io::Checkpoint<float> twice;
  twice.counter("step", step);
  ml::test::check_throws<ml::InvalidArgument>([&] { twice.counter("step", step); },
                                              {"entry 'step' registered twice"});
}

// Found by tests/fuzz/fuzz_checkpoint: loading an empty tensor passed a null pointer to
// memcpy (undefined behaviour, reported by UBSan).
TEST_CASE("Checkpoint: empty tensors round-trip", "[io][fuzz-regression]") {
  Tensor<float> empty(Shape{0, 3}), scalar(Shape{}, 2.5f);
  nn::ParameterList<float> list;
  list.add("empty", empty);
  list.add("scalar", scalar);
  const auto path = temp_file("empty.ckpt").string();
  ml::io::Checkpoint<float>().tensors("model", list).save(path);
  Tensor<float> empty2(Shape{0, 3}), scalar2(Shape{}, 0.f);
  nn::ParameterList<float> back;
  back.add("empty", empty2);
  back.add("scalar", scalar2);
  ml::io::Checkpoint<float>().tensors("model", back).load(path);
  CHECK(empty2.numel() == 0);
  CHECK(scalar2.data()[0] == 2.5f);
}

TEST_CASE("load_model is strict about the model and names what a trainer file holds besides",
          "[io][checkpoint]") {
  // A trainer checkpoint of conv4 with running batch-norm statistics (train() writes these
  // groups and counters).
  ml::Rng rng(3);
  nn::Conv4Options with_stats;
  with_stats.filters = 4;
  with_stats.batch_norm.running_stats = true;
  auto trained = nn::conv4<float>(with_stats, rng);
  ml::meta::Maml maml;
  ml::optim::Adam<float> adam(maml.meta_parameters(trained), {1e-3});
  std::vector<ml::Tensor<float>> g;
  for (const auto& p : trained.parameters().values())
    g.push_back(ml::Tensor<float>(p.shape(), 0.5f));
  adam.step(g);  // moments exist
  std::int64_t step = 7;
  const fs::path path = temp_file("trainer.ckpt");
  ml::io::Checkpoint<float> ckpt;
  ckpt.tensors("model", maml.meta_parameters(trained))
      .tensors("buffers", trained.buffers())
      .tensors("optimizer", adam.state())
      .counter("step", step)
      .counter("optimizer_steps", adam.step_counter());
  ckpt.save(path.string());

  // The same model: loads, buffers and all.
  auto same = nn::conv4<float>(with_stats, rng);
  ml::meta::load_model(maml, same, path.string());
  CHECK(same.parameters()[0].data()[0] == trained.parameters()[0].data()[0]);

  // Without running statistics: an error naming the buffers, not a silent drop.
  nn::Conv4Options without = with_stats;
  without.batch_norm.running_stats = false;
  auto other = nn::conv4<float>(without, rng);
  const float before = other.parameters()[0].data()[0];
  ml::test::check_throws<ml::IoError>([&] { ml::meta::load_model(maml, other, path.string()); },
                                      {"not registered here: 8 in 'buffers'", "(first: 'buffers."});
  CHECK(other.parameters()[0].data()[0] == before);  // all-or-nothing

  // Into a bare parameter list: what is extra, and how to load it.
  auto bare = nn::conv4<float>(with_stats, rng);
  ml::io::Checkpoint<float> params_only;
  params_only.tensors("model", bare.parameters());
  ml::test::check_throws<ml::IoError>(
      [&] { params_only.load(path.string()); },
      {"in 'optimizer' (optimizer state)", "counters optimizer_steps, step", "meta::load_model",
       "Unregistered::training_state"});
  // training_state skips the optimizer and counters but not the buffers.
  ml::test::check_throws<ml::IoError>(
      [&] { params_only.load(path.string(), ml::io::Unregistered::training_state); },
      {"8 in 'buffers'"});
  params_only.tensors("buffers", bare.buffers());
  params_only.load(path.string(), ml::io::Unregistered::training_state);
  CHECK(bare.parameters()[0].data()[0] == trained.parameters()[0].data()[0]);
}

namespace {
// A two-step MAML run on sine tasks checkpointing to a fresh temporary file (the file and
// its ".last" removed): what the tests of train's checkpoint texts resume and reload.
struct SineCheckpointRun {
  ml::Rng rng;
  ml::meta::Maml maml;
  const ml::data::MetaBatchSampler<ml::data::SineTasks<float>> batches{{}, 2};
  fs::path path;
  ml::meta::TrainerOptions options;

  SineCheckpointRun(std::uint64_t seed, const std::string& file)
      : rng(seed), path(temp_file(file)) {
    std::remove(path.string().c_str());
    std::remove((path.string() + ".last").c_str());
    options.steps = 2;
    options.log = nullptr;
    options.checkpoint = path.string();
  }
  template <class Learner, class Model, class Optimizer>
  ml::meta::TrainResult train(Learner& learner, Model& net, Optimizer& outer) {
    return ml::meta::train(learner, net, outer, batches, std::vector<ml::data::Episode<float>>{},
                           rng, options);
  }
};
}  // namespace

TEST_CASE("train's checkpoints name the model's layers; another architecture does not load",
          "[io][checkpoint]") {
  SineCheckpointRun run(5, "architecture.ckpt");
  ml::Rng& rng = run.rng;
  ml::meta::Maml& maml = run.maml;
  const fs::path& path = run.path;
  auto tanh_net = nn::mlp<float>({1, 8, 1}, rng, nn::Activation::tanh);
  ml::optim::Adam<float> adam(maml.meta_parameters(tanh_net), {1e-3});
  run.train(maml, tanh_net, adam);

  auto same = nn::mlp<float>({1, 8, 1}, rng, nn::Activation::tanh);
  ml::meta::load_model(maml, same, path.string() + ".last");
  CHECK(same.parameters()[0].data()[0] == tanh_net.parameters()[0].data()[0]);
  // Another learner may read the model (train with MAML, evaluate with another).
  ml::meta::Fomaml fomaml;
  ml::meta::load_model(fomaml, same, path.string() + ".last");

  auto relu_net = nn::mlp<float>({1, 8, 1}, rng, nn::Activation::relu);  // same shapes
  ml::test::check_throws<ml::IoError>(
      [&] { ml::meta::load_model(maml, relu_net, path.string() + ".last"); },
      {"is of another architecture", "the file has '1: Tanh' where this one has '1: Relu'"});
  // Resuming with another learner names it too.
  ml::optim::Adam<float> adam2(fomaml.meta_parameters(same), {1e-3});
  run.options.steps = 3;
  ml::test::check_throws<ml::IoError>([&] { run.train(fomaml, same, adam2); },
                                      {"is of another learner"});
}

TEST_CASE("train records its config; a resume with another config names the first difference",
          "[io][checkpoint]") {
  SineCheckpointRun run(6, "config.ckpt");
  auto net = nn::mlp<float>({1, 8, 1}, run.rng);
  ml::optim::Adam<float> adam(run.maml.meta_parameters(net), {1e-3});
  run.options.config = "--inner-lr 0.4\n--seed 1\n";
  run.train(run.maml, net, adam);
  // The same config resumes (a longer budget is not part of it).
  run.options.steps = 3;
  const auto resumed = run.train(run.maml, net, adam);
  CHECK(resumed.first_step == 3);
  run.options.steps = 4;
  run.options.config = "--inner-lr 0.1\n--seed 1\n";
  ml::test::check_throws<ml::IoError>(
      [&] { run.train(run.maml, net, adam); },
      {"is of another config", "the file has '--inner-lr 0.4' where this one has '--inner-lr 0.1'",
       "to start a new run, remove", "config.ckpt.last"});
}
