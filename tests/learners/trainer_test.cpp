// The shared trainer: resuming gives the uninterrupted run's parameters, even after the
// process is killed in the middle of writing a checkpoint; best checkpoints, the CSV log,
// the time limit, and non-finite steps (stop with the step and the parameter, or skip).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <metalearn/metalearn.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/catch.hpp"
#include "support/seed.hpp"

namespace ml = metalearn;
namespace nn = metalearn::nn;
namespace meta = metalearn::meta;
namespace data = metalearn::data;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("metalearn_trainer_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Everything a sinusoid MAML run needs; `seed` decides the initial weights and the batches.
struct SineRun {
  explicit SineRun(std::uint64_t seed) : rng(seed), net(nn::mlp<float>({1, 16, 1}, rng)) {
    meta::GradientLearnerOptions mo;
    mo.threads = 1;
    maml = meta::Maml(mo);
    ml::Rng val_rng(99);
    for (int i = 0; i < 8; ++i) validation.push_back(tasks.sample(val_rng));
  }
  meta::TrainResult train(meta::TrainerOptions o) {
    ml::optim::Adam<float> adam(maml.meta_parameters(net), {1e-3});
    return meta::train(maml, net, adam, batches, validation, rng, o);
  }
  std::vector<ml::Tensor<float>> params() { return net.parameters().values(); }

  ml::Rng rng;
  nn::Sequential<float> net;
  meta::Maml maml;
  data::SineTasks<float> tasks;
  data::MetaBatchSampler<data::SineTasks<float>> batches{tasks, 4};
  std::vector<data::Episode<float>> validation;
};

bool same(const std::vector<ml::Tensor<float>>& a, const std::vector<ml::Tensor<float>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t p = 0; p < a.size(); ++p)
    for (std::int64_t i = 0; i < a[p].numel(); ++i)
      if (a[p].data()[i] != b[p].data()[i]) return false;
  return true;
}

// The optimizer is rebuilt by each call of SineRun::train, so its moments must come back
// from the checkpoint for a resumed run to match: this test fails if they are not saved.
meta::TrainerOptions options(const fs::path& dir, std::int64_t steps) {
  meta::TrainerOptions o;
  o.steps = steps;
  o.validate_every = 5;
  o.log_every = 0;
  o.checkpoint = (dir / "best.ckpt").string();
  o.csv = (dir / "curve.csv").string();
  return o;
}

}  // namespace

TEST_CASE("train: a resumed run ends with the uninterrupted run's parameters",
          "[learners][trainer]") {
  const auto dir_a = fresh_dir("uninterrupted"), dir_b = fresh_dir("resumed");
  SineRun a(5);
  const auto ra = a.train(options(dir_a, 20));
  CHECK(ra.steps == 20);
  CHECK(ra.first_step == 1);

  SineRun b(5);
  CHECK(b.train(options(dir_b, 10)).steps == 10);
  SineRun c(777);  // other weights and generator: everything must come from the checkpoint
  const auto rc = c.train(options(dir_b, 20));
  CHECK(rc.first_step == 11);
  CHECK(rc.steps == 20);
  CHECK(same(a.params(), c.params()));
  CHECK(rc.best.mean == ra.best.mean);
  CHECK(rc.best_step == ra.best_step);

  // The CSV has a header and, with log_every 0, the validation rows only (steps 5, 10, 15,
  // 20), the resumed run's appended. (It had one row per step before issue 19 asked for
  // rows every log_every steps.)
  std::ifstream csv(dir_b / "curve.csv");
  std::string line;
  int lines = 0;
  while (std::getline(csv, line)) ++lines;
  CHECK(lines == 5);
  // The best checkpoint holds the model that scored the best validation.
  SineRun d(1);
  meta::load_model(d.maml, d.net, (dir_a / "best.ckpt").string());
  CHECK(meta::validate(d.maml, d.net, d.validation).mean == ra.best.mean);
}

TEST_CASE("train: a resumed run's CSV has each step once", "[learners][trainer]") {
  // A run killed after its last checkpoint (step 10) may have written rows beyond it; the
  // resumed run writes them again, so the resume drops them first.
  const auto dir = fresh_dir("csv_resume");
  SineRun b(5);
  b.train(options(dir, 10));
  { std::ofstream(dir / "curve.csv", std::ios::app) << "15,1.0,0.5,0.5,0.5,1.0,0.4,0.1\n"; }
  SineRun c(5);
  c.train(options(dir, 20));
  std::ifstream csv(dir / "curve.csv");
  std::string line;
  std::vector<std::string> steps;
  while (std::getline(csv, line)) steps.push_back(line.substr(0, line.find(',')));
  CHECK(steps == std::vector<std::string>{"step", "5", "10", "15", "20"});
}

TEST_CASE("train: SIGKILL while a checkpoint is being written loses nothing",
          "[learners][trainer][fork]") {
  const auto dir_full = fresh_dir("full"), dir = fresh_dir("killed");
  SineRun full(6);
  full.train(options(dir_full, 20));

  const fs::path marker = dir / "paused";
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Pause inside the fourth checkpoint write (best and last at step 5, then at step 10):
    // the parent kills us there.
    static int writes = 0;
    static std::string marker_path;
    marker_path = marker.string();
    ml::io::detail::checkpoint_write_hook = [](const std::string&) {
      if (++writes == 4) {
        std::ofstream(marker_path) << "paused\n";
        for (;;) ::pause();
      }
    };
    SineRun run(6);
    run.train(options(dir, 20));
    ::_exit(0);  // not reached when killed
  }
  for (int i = 0; i < 6000 && !fs::exists(marker); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(fs::exists(marker));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);

  // The half-written temporary file is there; the checkpoints from step 5 are intact.
  CHECK((fs::exists(dir / "best.ckpt.last.tmp") || fs::exists(dir / "best.ckpt.tmp")));
  SineRun resumed(12345);
  const auto r = resumed.train(options(dir, 20));
  CHECK(r.first_step == 6);
  CHECK(same(full.params(), resumed.params()));
}

TEST_CASE("run_tasks: a child process after fork() runs its tasks without the parent's workers",
          "[learners][fork]") {
  const auto squares = [] {
    return meta::run_tasks<std::size_t>(6, 2, [](std::size_t t) { return t * t; });
  };
  REQUIRE(squares()[5] == 25);  // the parent's pool now has a worker thread
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::alarm(30);  // a child stuck waiting for the parent's (absent) workers dies here
    const auto out = squares();
    ::_exit(out.size() == 6 && out[5] == 25 ? 0 : 1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(squares()[4] == 16);  // and the parent's pool still works
}

TEST_CASE("train: a non-finite step stops with its step and parameter, or is skipped",
          "[learners][trainer]") {
  // A sampler that poisons the targets of its third batch.
  struct Poisoned {
    data::MetaBatchSampler<data::SineTasks<float>> inner{data::SineTasks<float>(), 2};
    mutable int calls = 0;
    std::vector<data::Episode<float>> sample(ml::Rng& rng) const {
      auto b = inner.sample(rng);
      if (++calls == 3) b[0].query_targets.data()[0] = std::numeric_limits<float>::quiet_NaN();
      return b;
    }
  };
  const auto dir = fresh_dir("nan");
  ml::Rng rng(3);
  auto net = nn::mlp<float>({1, 8, 1}, rng);
  meta::Maml maml;
  ml::optim::Adam<float> adam(net.parameters(), {1e-3});
  std::vector<data::Episode<float>> validation{data::SineTasks<float>().sample(rng)};
  meta::TrainerOptions o;
  o.steps = 10;
  o.validate_every = 1;
  o.log_every = 0;
  o.checkpoint = (dir / "best.ckpt").string();
  std::ostringstream log;
  o.log = &log;
  const Poisoned poisoned;
  const auto r = meta::train(maml, net, adam, poisoned, validation, rng, o);
  CHECK(r.non_finite);
  CHECK(r.steps == 2);
  CHECK_THAT(r.message,
             Catch::Matchers::Contains("step 3") && Catch::Matchers::Contains("'0.weight'"));
  CHECK_THAT(log.str(), Catch::Matchers::Contains("non-finite"));
  for (const auto& p : net.parameters().values()) CHECK(p.array().isFinite().all());
  // The latest checkpoint is step 2's: finite, and equal to the parameters now.
  auto other = nn::mlp<float>({1, 8, 1}, rng);
  meta::load_model(maml, other, (dir / "best.ckpt.last").string());
  const auto now = net.parameters().values(), saved = other.parameters().values();
  for (std::size_t p = 0; p < now.size(); ++p)
    for (std::int64_t i = 0; i < now[p].numel(); ++i) CHECK(saved[p].data()[i] == now[p].data()[i]);

  const Poisoned poisoned_again;
  o.on_non_finite = meta::OnNonFinite::skip;
  o.checkpoint.clear();
  const auto s = meta::train(maml, net, adam, poisoned_again, validation, rng, o);
  CHECK(!s.non_finite);
  CHECK(s.skipped == 1);
  CHECK(s.steps == 10);
  for (const auto& p : net.parameters().values()) CHECK(p.array().isFinite().all());
}

TEST_CASE("train: a non-finite validation never becomes the best nor writes its checkpoint",
          "[learners][trainer]") {
  const auto dir = fresh_dir("nan_validation");
  SineRun run(8);
  for (auto& e : run.validation) e.query_targets.data()[0] = std::nanf("");
  meta::TrainerOptions o;
  o.steps = 4;
  o.validate_every = 2;
  o.log_every = 0;
  o.checkpoint = (dir / "best.ckpt").string();
  std::ostringstream log;
  o.log = &log;
  const auto r = run.train(o);
  CHECK(std::isnan(r.validation.mean));  // it was measured, and reported as it is
  CHECK(std::isnan(r.best.mean));        // but nothing became the best
  CHECK(r.best_step == 0);
  CHECK_FALSE(fs::exists(dir / "best.ckpt"));
  CHECK_THAT(log.str(), Catch::Matchers::Contains("validation at step 2 is not finite"));
}

TEST_CASE("train: progress by default, the rate in the learner's unit, ETA from the time limit",
          "[learners][trainer]") {
  const meta::TrainerOptions defaults;
  CHECK(defaults.log == &std::cout);  // quiet is the opt-in: log = nullptr

  const auto dir = fresh_dir("progress");
  SineRun run(4);
  meta::TrainerOptions o;
  o.steps = 12;
  o.log_every = 4;
  o.validate_every = 6;
  o.minutes = 0.5;  // 12 steps take far less: the ETA counts the steps
  o.csv = (dir / "curve.csv").string();
  std::ostringstream log;
  o.log = &log;
  run.train(o);
  const std::string text = log.str();
  CHECK_THAT(text, Catch::Matchers::Contains("step       4/12") &&
                       Catch::Matchers::Contains("tasks/s") && Catch::Matchers::Contains("val "));
  // Rows at 4, 8, 12 (log_every) and 6, 12 (validation; 12 is both): header + 4.
  std::ifstream csv(dir / "curve.csv");
  std::vector<std::string> rows;
  for (std::string line; std::getline(csv, line);) rows.push_back(line);
  REQUIRE(rows.size() == 5);
  CHECK(rows[1].rfind("4,", 0) == 0);
  CHECK(rows[2].rfind("6,", 0) == 0);
  CHECK(rows[4].rfind("12,", 0) == 0);

  // A time limit shorter than the steps: the ETA is the time left, not the steps' (a run
  // of 1e9 steps would otherwise say hours).
  o.steps = 1000000000;
  o.minutes = 0.02;  // 1.2 s
  o.csv.clear();
  o.log_every = 50;
  o.validate_every = 0;
  log.str("");
  SineRun(5).train(o);
  CHECK_THAT(log.str(),
             Catch::Matchers::Contains("ETA 0m01s") || Catch::Matchers::Contains("ETA 0m00s"));

  // A metric learner counts episodes.
  ml::Rng rng(3);
  auto net = nn::mlp<float>({4, 8}, rng);
  const meta::ProtoNet<> proto;
  ml::optim::Adam<float> adam(proto.meta_parameters(net), {1e-3});
  ml::Tensor<float> x(ml::Shape{40, 4});
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < 40; ++i) {
    for (std::int64_t k = 0; k < 4; ++k) x.data()[i * 4 + k] = static_cast<float>(ml::normal(rng));
    labels.push_back(i % 4);
  }
  const data::ClassDataset<float> all(std::move(x), std::move(labels));
  const data::MetaBatchSampler<data::EpisodeSampler<float>> episodes(
      data::EpisodeSampler<float>(all, {4, 1, 2}), 2);
  meta::TrainerOptions p;
  p.steps = 2;
  p.log_every = 1;
  p.validate_every = 0;
  log.str("");
  p.log = &log;
  meta::train(proto, net, adam, episodes, std::vector<data::Episode<float>>{}, rng, p);
  CHECK_THAT(log.str(), Catch::Matchers::Contains("episodes/s"));
}

TEST_CASE("train: the time limit stops the run and still validates", "[learners][trainer]") {
  SineRun run(8);
  meta::TrainerOptions o;
  o.steps = 1000000;
  o.minutes = 1e-9;
  o.log_every = 0;
  const auto r = run.train(o);
  CHECK(r.out_of_time);
  CHECK(r.steps < 1000000);
  CHECK(r.validation.count == 8);
  CHECK_THAT(r.message, Catch::Matchers::Contains("time limit"));
}

TEST_CASE("train: MAML++ resumes its meta-step count; a cosine learning-rate schedule",
          "[learners][trainer]") {
  // MAML++'s weights and derivative order depend on the meta-steps taken, and the schedule
  // on the trainer's step: a resumed run matches the uninterrupted one only if both count on.
  struct Run {
    explicit Run(std::uint64_t seed) : rng(seed), net(nn::mlp<float>({1, 16, 1}, rng)) {
      meta::GradientLearnerOptions o;
      o.threads = 1;
      o.inner_steps = 2;
      meta::MultiStepLossOptions mo;
      mo.anneal_meta_steps = 12;
      mo.first_order_meta_steps = 6;
      learner = meta::MamlPlusPlus(o, meta::MultiStepLoss(mo));
      ml::Rng val_rng(99);
      for (int i = 0; i < 4; ++i) validation.push_back(tasks.sample(val_rng));
    }
    meta::TrainResult train(meta::TrainerOptions o) {
      ml::optim::Adam<float> adam(learner.meta_parameters(net), {1e-2});
      o.lr_schedule = ml::optim::CosineLr{20};
      const auto r = meta::train(learner, net, adam, batches, validation, rng, o);
      factor = adam.lr() / 1e-2;
      return r;
    }
    ml::Rng rng;
    nn::Sequential<float> net;
    meta::MamlPlusPlus learner;
    data::SineTasks<float> tasks;
    data::MetaBatchSampler<data::SineTasks<float>> batches{tasks, 3};
    std::vector<data::Episode<float>> validation;
    double factor = 1;
  };
  const auto dir_a = fresh_dir("mamlpp_uninterrupted"), dir_b = fresh_dir("mamlpp_resumed");
  Run a(6);
  a.train(options(dir_a, 20));
  CHECK(a.learner.meta_steps() == 20);
  CHECK_THAT(a.factor,
             Catch::Matchers::WithinRel(ml::optim::CosineLr{20}(19), 1e-12));  // last step
  Run b(6);
  b.train(options(dir_b, 10));
  Run c(778);
  c.train(options(dir_b, 20));
  CHECK(c.learner.meta_steps() == 20);
  CHECK(same(a.learner.meta_parameters(a.net).values(), c.learner.meta_parameters(c.net).values()));
}

TEST_CASE("validate: mean and 95% CI over a set, after a given count of inner steps",
          "[learners][trainer]") {
  SineRun run(12);
  double sum = 0;
  for (const auto& e : run.validation) sum += run.maml.evaluate(run.net, e, 3).mse;
  const meta::MeanCi v3 = meta::validate(run.maml, run.net, run.validation, 3);
  CHECK(v3.count == run.validation.size());
  CHECK(v3.mean == Approx(sum / static_cast<double>(run.validation.size())).epsilon(1e-12));
  CHECK(v3.ci95 > 0);
  // More steps on the support set fit a sine better than none.
  CHECK(meta::validate(run.maml, run.net, run.validation, 0).mean != v3.mean);
  CHECK_THROWS_AS(meta::validate(run.maml, run.net, run.validation, -1), ml::InvalidArgument);
}
