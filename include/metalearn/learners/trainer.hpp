// SPDX-License-Identifier: MIT
/// @file metalearn/learners/trainer.hpp
/// The meta-training loop shared by every learner: progress line, periodic validation with
/// a 95% confidence interval, best and latest checkpoints, resuming, a CSV learning curve,
/// a wall-time limit, and a clean stop on a non-finite loss or gradient.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <metalearn/data/episode.hpp>
#include <metalearn/error.hpp>
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/learners/learner.hpp>
#include <metalearn/learners/load_model.hpp>
#include <metalearn/learners/process_group.hpp>
#include <metalearn/learners/results.hpp>
#include <metalearn/learners/scoring.hpp>
#include <metalearn/learners/task_pool.hpp>
#include <metalearn/learners/trainer_state.hpp>
#include <metalearn/learners/validate.hpp>
#include <metalearn/nn/model.hpp>
#include <metalearn/random.hpp>
#include <ostream>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace metalearn::meta {

/// What the trainer does when a step's loss or gradient is NaN or infinite.
enum class OnNonFinite {
  stop,  ///< stop training, report the step and the parameter (the default)
  skip,  ///< skip that step's update and go on (counted in TrainResult::skipped)
};

/// Options of train().
struct TrainerOptions {
  std::int64_t steps = 1000;  ///< the step count to reach (a resumed run counts on)
  double minutes = 0;         ///< stop after this much wall time (0: no limit)
  /// Period in steps of the progress line and of the CSV's rows (0: neither; the CSV then
  /// has the validation rows only).
  std::int64_t log_every = 100;
  std::int64_t validate_every = 500;  ///< validation period in steps (0: only at the end)
  /// The best model so far (by validation) is saved here; the latest state goes to
  /// `checkpoint + ".last"`, which a new run resumes from. Empty: no checkpoints.
  std::string checkpoint;
  bool resume = true;  ///< continue from `checkpoint + ".last"` when it exists
  /// Learning curve: a row every `log_every` steps (the means over those steps) and one at
  /// each validation; appended to when resuming.
  std::string csv;
  OnNonFinite on_non_finite = OnNonFinite::stop;
  /// Outer learning-rate factor by step (steps taken so far, counted on across a resume),
  /// set with `outer.set_lr_factor` before each step; empty: constant. E.g.
  /// `optim::CosineLr{steps}` (MAML++'s cosine annealing, Antoniou et al. 2019, §4).
  std::function<double(std::int64_t)> lr_schedule;
  /// Progress lines go here (standard output by default; null: quiet): step, loss, metric,
  /// rate in the learner's unit (tasks/s, episodes/s, ...), time left, validation.
  std::ostream* log = &std::cout;
  /// Train on several processes (a distributed::Communicator; null or one rank: alone).
  /// Every rank calls train() with the same arguments; the ranks share each meta-batch's
  /// tasks (learners/process_group.hpp), so the parameters are the same bits as one
  /// process. Rank 0 validates, logs and writes the checkpoints and the CSV; every rank
  /// starts from rank 0's state (its resumed checkpoint, or its initial parameters).
  const ProcessGroup* group = nullptr;
  /// With a group: the ranks compare a checksum of their parameters every this many steps
  /// and at the end (0: only at the end); a difference stops every rank naming the first.
  std::int64_t check_every = 100;
  /// The run's configuration as text (the examples pass their flags, less the budget and
  /// output ones): written into the checkpoints, so resuming a run of another configuration
  /// fails naming the first line that differs; with a group, every rank must have the same.
  std::string config;
};

/// The outcome of train().
struct TrainResult {
  std::int64_t first_step = 1;  ///< 1, or the step after the one resumed from
  std::int64_t steps = 0;       ///< the last step taken
  double seconds = 0;           ///< wall time of this call
  bool non_finite = false;      ///< stopped on a non-finite loss or gradient
  std::int64_t skipped = 0;     ///< steps skipped as non-finite (OnNonFinite::skip)
  bool out_of_time = false;     ///< stopped by TrainerOptions::minutes
  std::string message;          ///< why training stopped early (empty otherwise)
  /// The last validation (accuracy, or MSE for regression); on rank 0 only when training
  /// on several ranks (count 0 on the others).
  MeanCi validation;
  MeanCi best;  ///< the best validation
  std::int64_t best_step = 0;
};

namespace detail {
/// What the ranks of a group must agree on before training together.
inline std::string trainer_fingerprint(const TrainerOptions& o) {
  return "steps " + std::to_string(o.steps) + "\nminutes " + std::to_string(o.minutes) +
         "\nvalidate_every " + std::to_string(o.validate_every) + "\ncheck_every " +
         std::to_string(o.check_every) + "\nresume " + std::to_string(o.resume) +
         "\non_non_finite " + std::to_string(static_cast<int>(o.on_non_finite)) + "\nlr_schedule " +
         std::to_string(static_cast<bool>(o.lr_schedule)) + "\nconfig " + o.config + "\n";
}

/// Collective: throws on every rank when the parameters are not the same bits everywhere.
template <class Scalar>
void require_same_parameters(const ProcessGroup& group, const ParameterList<Scalar>& params,
                             std::int64_t step) {
  std::vector<std::uint64_t> sums;  // one per tensor, then one of them all
  for (std::size_t i = 0; i < params.size(); ++i)
    sums.push_back(io::detail::fnv1a(reinterpret_cast<const char*>(params[i].data()),
                                     sizeof(Scalar) * static_cast<std::size_t>(params[i].numel())));
  const std::uint64_t sum = io::detail::fnv1a(reinterpret_cast<const char*>(sums.data()),
                                              sizeof(std::uint64_t) * sums.size());
  require_same_on_all_ranks(
      group, "checksum " + std::to_string(sum) + "\n",
      "metalearn::meta::train: after step " + std::to_string(step) + ", the parameters");
}
}  // namespace detail

/// Meta-train `net` with `learner` and `outer` on batches from `batches` (anything with
/// `sample(Rng&)` returning the learner's batch: a MetaBatchSampler of episodes, a
/// PairSampler for Siamese nets), validating on `validation` (fixed held-out episodes).
/// Better validation means higher accuracy, lower MSE for regression, or what the learner
/// declares (`metric_name`, `higher_metric_is_better`: a reinforcement learner's return).
///
/// Checkpoints hold learner.meta_parameters(net), the model's buffers, the optimizer's
/// state, the step, the best validation and `rng`, so a resumed run draws the same batches
/// and ends with the same parameters as an uninterrupted one. A checkpoint is written only
/// after a finite step: a NaN never overwrites a good file.
template <class Learner, class Model, class Optimizer, class Sampler, class Episode>
TrainResult train(Learner& learner, Model& net, Optimizer& outer, const Sampler& batches,
                  const std::vector<Episode>& validation, Rng& rng, const TrainerOptions& o) {
  using Scalar = typename Learner::scalar_type;
  nn::require_model<Model, Scalar>();
  require_learner<Learner, Model, decltype(batches.sample(rng))>();
  if (o.steps < 0 || o.log_every < 0 || o.validate_every < 0 || !(o.minutes >= 0))
    throw InvalidArgument(
        "metalearn::meta::train: steps, log_every, validate_every and minutes "
        "must be >= 0");
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  auto params = learner.meta_parameters(net);
  const bool higher_better = detail::higher_is_better<Learner>(validation);
  const auto better = [&](double a, double b) { return higher_better ? a > b : a < b; };

  TrainResult result;
  std::int64_t step = 0;
  std::int64_t best_bits = detail::double_bits(std::numeric_limits<double>::quiet_NaN());
  std::int64_t best_step = 0;
  io::Checkpoint<Scalar> ckpt;
  ckpt.tensors("model", params)
      .tensors("buffers", net.buffers())
      .tensors("optimizer", outer.state());
  ckpt.counter("step", step)
      .counter("optimizer_steps", outer.step_counter())
      .counter("best_validation_bits", best_bits)
      .counter("best_step", best_step);
  if constexpr (detail::has_learner_state<Learner>::value)
    ckpt.tensors("learner_state", learner.learner_state());
  // What the checkpoint is of; a resume into another model or learner fails naming it.
  ckpt.text("architecture", detail::architecture_of(net))
      .text("learner", detail::type_name(typeid(Learner).name()));
  ckpt.text("config", o.config);
  detail::MetaStepCount<Learner> learner_count(learner, ckpt);
  ckpt.rng(rng);
  const ProcessGroup* group = o.group != nullptr && o.group->size() > 1 ? o.group : nullptr;
  const bool lead = group == nullptr || group->rank() == 0;  // validates, logs, saves
  std::ostream* const log = lead ? o.log : nullptr;
  const std::string last_path = o.checkpoint.empty() ? "" : o.checkpoint + ".last";
  bool resumed = false;
  std::string failure;  // rank 0's resume or CSV error, raised on every rank
  std::ofstream csv;
  if (lead) {
    try {
      if (!last_path.empty() && o.resume && std::ifstream(last_path).good()) {
        try {
          ckpt.load(last_path);
        } catch (const IoError& e) {  // say how to start afresh instead
          throw IoError(std::string(e.what()) + " (to start a new run, remove '" + last_path +
                        "' or write checkpoints elsewhere)");
        }
        learner_count.restore();
        resumed = true;
        if (log != nullptr) *log << "resumed from " << last_path << " at step " << step << "\n";
      }
      if (!o.csv.empty()) {
        if (resumed) detail::keep_csv_rows_through(o.csv, step);
        csv.open(o.csv, resumed ? std::ios::app : std::ios::trunc);
        if (!csv) throw IoError("metalearn::meta::train: cannot write '" + o.csv + "'");
        if (!resumed)
          csv << "step,seconds,loss,support_loss,metric,grad_norm,validation,validation_ci\n";
      }
    } catch (const std::exception& e) {
      if (group == nullptr) throw;
      failure = e.what();
    }
  }
  if (group != nullptr) {  // agree on the set-up, then start from rank 0's state
    raise_on_any_rank(*group, failure);
    require_same_on_all_ranks(*group,
                              std::string("learner ") + typeid(Learner).name() + "\nmodel " +
                                  typeid(Model).name() + "\n" + ckpt.layout() +
                                  detail::trainer_fingerprint(o),
                              "metalearn::meta::train: the models or options");
    if (!net.buffers().empty())
      throw InvalidArgument(
          "metalearn::meta::train: a model with buffers (batch norm's running statistics) "
          "cannot train on several ranks: each rank would update them with its own tasks "
          "only; use transductive batch norm (BatchNormOptions::running_stats = false)");
    Bytes state = lead ? ckpt.to_bytes() : Bytes();
    Bytes flag(1, static_cast<char>(resumed));
    group->broadcast(flag, 0);
    group->broadcast(state, 0);
    if (!lead) {
      ckpt.load_bytes(state, "rank 0's training state");
      learner_count.restore();
      resumed = flag[0] != 0;
    }
  }
  result.first_step = step + 1;
  result.best.mean = detail::bits_double(best_bits);
  result.best_step = best_step;

  const auto run_validation = [&] {
    learner_count.store();
    if (validation.empty() || !lead) return;
    result.validation = validate(learner, net, validation);
    if (!std::isfinite(result.validation.mean)) {  // never the best, never saved over it
      if (log != nullptr)
        *log << "validation at step " << step
             << " is not finite: the best model and its checkpoint are kept\n";
      return;
    }
    if (std::isnan(result.best.mean) || better(result.validation.mean, result.best.mean)) {
      result.best = result.validation;
      result.best_step = best_step = step;
      best_bits = detail::double_bits(result.best.mean);
      if (!o.checkpoint.empty()) ckpt.save(o.checkpoint);
    }
  };
  const auto save_last = [&] {
    learner_count.store();
    if (lead && !last_path.empty()) ckpt.save(last_path);
  };
  // What rank 0 alone does (validate, save); with a group, its failure (a full disk, a
  // validation episode that does not fit) is raised on every rank, so none waits for it.
  const auto on_lead = [&](auto&& work) {
    std::string error;
    if (lead) {
      try {
        work();
      } catch (const std::exception& e) {
        if (group == nullptr) throw;
        error = e.what();
      }
    }
    if (group != nullptr) raise_on_any_rank(*group, error);
  };

  std::vector<Tensor<Scalar>> grads;
  StepStats s;
  detail::PeriodMeans period;  // the steps since the last CSV row
  while (step < o.steps) {
    if (o.minutes > 0) {  // rank 0's clock stops every rank at the same step
      Bytes stop(1, static_cast<char>(lead && elapsed() > o.minutes * 60));
      if (group != nullptr) group->broadcast(stop, 0);
      result.out_of_time = stop[0] != 0;
    }
    if (result.out_of_time) {
      result.message = "stopped after " + detail::clock_text(elapsed()) + " (time limit)";
      break;
    }
    const auto batch = batches.sample(rng);
    {
      const ProcessGroupGuard share(group);  // the ranks split the batch's tasks
      s = learner.meta_gradient(net, batch, grads);
    }
    if (!s.finite) {
      std::string where = "the loss";
      for (std::size_t i = 0; i < grads.size() && i < params.size(); ++i)
        if (!grads[i].array().isFinite().all()) {
          where = "the gradient of '" + params.name(i) + "'";
          break;
        }
      if (o.on_non_finite == OnNonFinite::skip) {
        learner_count.tick();  // as meta_step counts it: schedules stay with `step`
        ++result.skipped;
        ++step;  // the batch is consumed; the parameters stay as they were
        continue;
      }
      result.non_finite = true;
      result.message = "non-finite value at step " + std::to_string(step + 1) + " in " + where +
                       " (loss " + std::to_string(s.query_loss) + ", gradient norm " +
                       std::to_string(s.grad_norm) + "); stopped, checkpoints left as they were";
      break;
    }
    if (o.lr_schedule) outer.set_lr_factor(o.lr_schedule(step));
    apply_meta_gradient(s, grads, learner.options().clip_norm, outer);
    learner_count.tick();
    ++step;
    const bool validate_now = o.validate_every > 0 && step % o.validate_every == 0;
    if (validate_now)
      on_lead([&] {
        run_validation();
        save_last();
      });
    if (group != nullptr && o.check_every > 0 && step % o.check_every == 0)
      detail::require_same_parameters(*group, params, step);
    period.add(s);
    const bool row_now = o.log_every > 0 && (step % o.log_every == 0 || step == o.steps);
    if (csv && (row_now || validate_now)) {
      csv << step << ',' << elapsed() << ',' << period.mean(period.loss) << ','
          << period.mean(period.support_loss) << ',' << period.mean(period.metric) << ','
          << period.mean(period.grad_norm) << ',';
      if (validate_now && !validation.empty())
        csv << result.validation.mean << ',' << result.validation.ci95;
      else
        csv << ',';
      csv << std::endl;  // flushed: a killed run keeps its curve up to here
      period = {};
    }
    if (log != nullptr && o.log_every > 0 && (step % o.log_every == 0 || step == o.steps)) {
      const double secs = elapsed();
      const double rate = static_cast<double>(step - result.first_step + 1) / secs;
      char line[256];
      double left = static_cast<double>(o.steps - step) / rate;  // the time limit may come first
      if (o.minutes > 0) left = std::min(left, o.minutes * 60 - secs);
      std::snprintf(line, sizeof line, "step %7lld/%lld  loss %8.4f  %s %7.4f  %7.1f %s/s  ETA %s",
                    static_cast<long long>(step), static_cast<long long>(o.steps), s.query_loss,
                    detail::metric_label<Learner>(validation), s.query_metric,
                    rate * static_cast<double>(s.tasks), detail::rate_unit<Learner>::value,
                    detail::clock_text(left).c_str());
      *log << line;
      if (validate_now && !validation.empty()) {
        std::snprintf(line, sizeof line, "  val %.4f +- %.4f", result.validation.mean,
                      result.validation.ci95);
        *log << line;
      }
      *log << "\n";
    }
  }
  result.steps = step;
  if (!result.non_finite) {
    const bool validated_here = o.validate_every > 0 && step > 0 && step % o.validate_every == 0;
    on_lead([&] {
      if (!validated_here) run_validation();
      save_last();
    });
  }
  // Last, so that every rank returns after rank 0's checkpoints are written.
  if (group != nullptr) detail::require_same_parameters(*group, params, step);
  result.seconds = elapsed();
  if (log != nullptr && !result.message.empty()) *log << result.message << "\n";
  return result;
}

}  // namespace metalearn::meta
