// Distributed meta-training, run under mpirun with 1, 2 and 4 ranks (tests/CMakeLists.txt).
// Every rank runs every test case in the same order; checks come after the collectives, so
// a failed check on one rank never leaves another waiting. The serial reference is
// computed in the same process: equal bits to it on every rank, for every rank count, is
// "bit-identical for any number of ranks".
#if defined(METALEARN_CATCH3)
#include <catch2/catch_session.hpp>
#else
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#endif
#include <cstdio>
#include <cstring>
#include <metalearn/distributed/distributed.hpp>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

namespace ml = metalearn;
namespace meta = metalearn::meta;
namespace data = metalearn::data;
namespace nn = metalearn::nn;
using ml::Tensor;

namespace {

const ml::distributed::Communicator* world = nullptr;

bool same_bits(const ml::ParameterList<float>& a, const ml::ParameterList<float>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].shape() != b[i].shape() ||
        std::memcmp(a[i].data(), b[i].data(), sizeof(float) * a[i].numel()) != 0)
      return false;
  return true;
}

// A small clustered image-free dataset for the metric learner: 12 classes of 8-vectors.
data::ClassDataset<float> clusters(ml::Rng& rng) {
  Tensor<float> x(ml::Shape{12 * 6, 8});
  std::vector<std::int64_t> labels;
  for (std::int64_t c = 0; c < 12; ++c)
    for (std::int64_t i = 0; i < 6; ++i) {
      for (std::int64_t k = 0; k < 8; ++k)
        x.data()[(c * 6 + i) * 8 + k] =
            static_cast<float>((k == c % 8 ? 2.0 : 0.0) + 0.3 * ml::normal(rng));
      labels.push_back(c);
    }
  return data::ClassDataset<float>(std::move(x), std::move(labels));
}

// `steps` meta-steps of `learner` from the same start, alone (group null) or shared.
template <class Learner, class Optimizer, class Sampler>
ml::ParameterList<float> steps_of(Learner& learner, nn::Sequential<float>& net, Optimizer& outer,
                                  const Sampler& batches, int steps,
                                  const meta::ProcessGroup* group) {
  ml::Rng rng(5);
  for (int s = 0; s < steps; ++s) {
    const auto batch = batches.sample(rng);
    if (group == nullptr)
      learner.meta_step(net, outer, batch);
    else
      ml::distributed::meta_step(*group, learner, net, outer, batch);
  }
  return learner.meta_parameters(net);
}

// Trains a fresh copy alone and a fresh copy shared among the ranks, `threads` threads
// each, and returns whether the two end with the same bits.
template <class Learner, class MakeNet, class MakeOuter, class Sampler>
bool shared_equals_alone(Learner learner, MakeNet make_net, MakeOuter make_outer,
                         const Sampler& batches) {
  auto alone = make_net();
  auto outer_alone = make_outer(learner, alone);
  const auto a = steps_of(learner, alone, outer_alone, batches, 20, nullptr);
  auto shared = make_net();
  auto outer_shared = make_outer(learner, shared);
  ml::distributed::broadcast_parameters(*world, learner.meta_parameters(shared));
  const auto b = steps_of(learner, shared, outer_shared, batches, 20, world);
  return same_bits(a, b);
}

const auto sine_net = [] {
  ml::Rng init(3);
  return nn::mlp<float>({1, 40, 40, 1}, init);
};
const auto adam = [](auto& learner, nn::Sequential<float>& net) {
  return ml::optim::Adam<float>(learner.meta_parameters(net), {1e-3});
};

}  // namespace

TEST_CASE("MAML: 20 meta-steps shared among the ranks give the bits of one process",
          "[distributed]") {
  const data::SineTasks<float> tasks(data::SineOptions{});
  const data::MetaBatchSampler<data::SineTasks<float>> batches(tasks, 7);
  // Tasks one by one (7 outcomes: 4 ranks hold 1, 2, 2, 2) and in groups of 3 (3 outcomes:
  // one rank of 4 holds none).
  for (const int threads : {1, 2}) {
    meta::GradientLearnerOptions o;
    o.inner_steps = 2;
    o.threads = threads;
    o.tasks_per_group = threads == 1 ? 1 : 3;
    INFO(world->size() << " ranks, " << threads << " threads each");
    CHECK(shared_equals_alone(meta::Maml(o), sine_net, adam, batches));
  }
}

TEST_CASE("Reptile: 20 meta-steps shared among the ranks give the bits of one process",
          "[distributed]") {
  const data::SineTasks<float> tasks(data::SineOptions{});
  const data::MetaBatchSampler<data::SineTasks<float>> batches(tasks, 5);
  meta::GradientLearnerOptions o;
  o.inner_steps = 3;
  o.tasks_per_group = 1;  // 5 outcomes to share (the default groups of 7 would be one)
  const auto sgd = [](auto& learner, nn::Sequential<float>& net) {
    return ml::optim::Sgd<float>(learner.meta_parameters(net), {0.5});
  };
  CHECK(shared_equals_alone(meta::Reptile(o), sine_net, sgd, batches));
}

TEST_CASE("ProtoNet: 20 meta-steps shared among the ranks give the bits of one process",
          "[distributed]") {
  ml::Rng rng(11);
  const auto all = clusters(rng);
  // 3 episodes per step: with 4 ranks one rank has none and still takes the step.
  const data::MetaBatchSampler<data::EpisodeSampler<float>> batches(
      data::EpisodeSampler<float>(all, {4, 1, 3}), 3);
  const auto net = [] {
    ml::Rng init(4);
    return nn::mlp<float>({8, 32, 16}, init);
  };
  CHECK(shared_equals_alone(meta::ProtoNet<>(), net, adam, batches));
}

TEST_CASE("train() on the ranks: the serial run's parameters, and a resume matches it",
          "[distributed]") {
  const data::SineTasks<float> tasks(data::SineOptions{});
  const data::MetaBatchSampler<data::SineTasks<float>> batches(tasks, 6);
  ml::Rng vrng(9);
  std::vector<data::Episode<float>> validation;
  for (int i = 0; i < 4; ++i) validation.push_back(tasks.sample(vrng));
  meta::GradientLearnerOptions lo;
  const auto run = [&](std::int64_t steps, const meta::ProcessGroup* group,
                       const std::string& checkpoint, nn::Sequential<float>& net) {
    meta::Maml learner(lo);
    ml::optim::Adam<float> outer(learner.meta_parameters(net), {1e-3});
    ml::Rng rng(21);
    meta::TrainerOptions o;
    o.steps = steps;
    o.validate_every = 5;
    o.check_every = 3;
    o.group = group;
    o.checkpoint = checkpoint;
    return meta::train(learner, net, outer, batches, validation, rng, o);
  };
  auto alone = sine_net();
  run(20, nullptr, "", alone);

  // Interrupted after 10 steps (what a kill of every rank leaves: the checkpoints of
  // step 10), then resumed by a new set of ranks up to 20.
  const std::string ckpt = "mpi_test_" + std::to_string(world->size()) + ".ckpt";
  std::remove((ckpt + ".last").c_str());
  auto first = sine_net();
  const meta::TrainResult r1 = run(10, world, ckpt, first);
  auto resumed = sine_net();  // fresh parameters: everything comes from the checkpoint
  const meta::TrainResult r2 = run(20, world, ckpt, resumed);
  auto straight = sine_net();
  const meta::TrainResult r3 = run(20, world, "", straight);
  world->barrier();
  if (world->rank() == 0) {
    std::remove(ckpt.c_str());
    std::remove((ckpt + ".last").c_str());
  }
  CHECK(r1.steps == 10);
  CHECK(r2.first_step == 11);
  CHECK(r2.steps == 20);
  CHECK(r3.steps == 20);
  CHECK(same_bits(alone.parameters(), straight.parameters()));
  CHECK(same_bits(alone.parameters(), resumed.parameters()));
  // Rank 0 validates; the others leave it to rank 0.
  CHECK(r3.validation.count == (world->rank() == 0 ? 4u : 0u));
}

TEST_CASE("A failing task stops the meta-step on every rank with its message", "[distributed]") {
  const data::SineTasks<float> tasks(data::SineOptions{});
  ml::Rng rng(2);
  std::vector<data::Episode<float>> batch;
  for (int i = 0; i < 4; ++i) batch.push_back(tasks.sample(rng));
  // The last task (the last rank's) has a query set of the wrong width.
  batch.back().query_inputs = Tensor<float>(ml::Shape{10, 3});
  meta::GradientLearnerOptions one_by_one;
  one_by_one.tasks_per_group = 1;  // outcome t is task t
  meta::Maml learner(one_by_one);
  auto net = sine_net();
  ml::optim::Adam<float> outer(learner.meta_parameters(net), {1e-3});
  std::string message;
  try {
    ml::distributed::meta_step(*world, learner, net, outer, batch);
  } catch (const std::exception& e) {
    message = e.what();
  }
  INFO(message);
  CHECK(!message.empty());
  if (world->size() > 1 && world->rank() != world->size() - 1)
    CHECK(message.find("task outcome 3 of the meta-batch failed on rank " +
                       std::to_string(world->size() - 1)) != std::string::npos);
  // Every rank is still in step: the next shared step works.
  batch.pop_back();
  CHECK(ml::distributed::meta_step(*world, learner, net, outer, batch).finite);
}

TEST_CASE("Ranks that disagree are stopped at the start, naming the difference", "[distributed]") {
  if (world->size() == 1) return;
  const data::SineTasks<float> tasks(data::SineOptions{});
  const data::MetaBatchSampler<data::SineTasks<float>> batches(tasks, 4);
  meta::Maml learner;
  auto net = sine_net();
  ml::optim::Adam<float> outer(learner.meta_parameters(net), {1e-3});
  ml::Rng rng(1);
  meta::TrainerOptions o;
  o.steps = 3;
  o.group = world;
  o.config = world->rank() == 1 ? "--inner-lr 0.1" : "--inner-lr 0.01";
  std::string message;
  try {
    meta::train(learner, net, outer, batches, std::vector<data::Episode<float>>{}, rng, o);
  } catch (const ml::InvalidArgument& e) {
    message = e.what();
  }
  CHECK(message.find("rank 1 has 'config --inner-lr 0.1' where rank 0 has 'config --inner-lr "
                     "0.01'") != std::string::npos);

  // Parameters that drifted apart are found by the checksum.
  auto other = sine_net();
  if (world->rank() == world->size() - 1) other.parameters()[0].data()[0] += 1e-7f;
  message.clear();
  try {
    meta::detail::require_same_parameters(*world, other.parameters(), 40);
  } catch (const ml::InvalidArgument& e) {
    message = e.what();
  }
  CHECK(message.find("after step 40, the parameters differ between ranks: rank " +
                     std::to_string(world->size() - 1)) != std::string::npos);
}

int main(int argc, char* argv[]) {
  ml::distributed::Communicator comm(&argc, &argv);
  world = &comm;
  Catch::Session session;
  if (const int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  const int failed = session.run();
  // Every rank's verdict: the job fails when any rank's checks did.
  ml::meta::Bytes mine(1, static_cast<char>(failed != 0));
  int any = 0;
  for (const auto& b : comm.all_gather(mine)) any |= b[0];
  return any;
}
