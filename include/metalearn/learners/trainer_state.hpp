// SPDX-License-Identifier: MIT
/// @file metalearn/learners/trainer_state.hpp
/// What meta::train carries from step to step besides the model: the means of the step
/// statistics for the next CSV row, a counting learner's meta-steps in the checkpoint,
/// doubles kept bit for bit in checkpoint counters, and the clock text of the progress line.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <metalearn/error.hpp>
#include <metalearn/learners/learner.hpp>
#include <metalearn/learners/results.hpp>
#include <string>
#include <vector>

namespace metalearn::meta::detail {

inline std::string clock_text(double seconds) {
  const auto s = static_cast<long>(seconds < 0 ? 0 : seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  return buf;
}
// A double kept in a checkpoint counter, bit for bit.
inline std::int64_t double_bits(double x) {
  std::int64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}
inline double bits_double(std::int64_t b) {
  double x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}
/// A counting learner's meta-steps (a schedule reads them) in the checkpoint, as the
/// counter "learner_meta_steps"; nothing for other learners.
template <class Learner>
class MetaStepCount {
 public:
  template <class Checkpoint>
  MetaStepCount(Learner& learner, Checkpoint& ckpt) : learner_(learner) {
    if constexpr (counts) {
      count_ = learner.meta_steps();
      ckpt.counter("learner_meta_steps", count_);
    }
  }
  void store() {  // before a save
    if constexpr (counts) count_ = learner_.meta_steps();
  }
  void restore() {  // after a load
    if constexpr (counts) learner_.set_meta_steps(count_);
  }
  void tick() {
    if constexpr (counts) learner_.on_meta_step();
  }

 private:
  static constexpr bool counts = counts_meta_steps<Learner>::value;
  Learner& learner_;
  std::int64_t count_ = 0;
};

/// Means of the step statistics over the steps since the last CSV row.
struct PeriodMeans {
  double loss = 0, support_loss = 0, metric = 0, grad_norm = 0;
  std::int64_t steps = 0;
  void add(const StepStats& s) {
    loss += s.query_loss;
    support_loss += s.support_loss;
    metric += s.query_metric;
    grad_norm += s.grad_norm;
    ++steps;
  }
  double mean(double sum) const { return steps > 0 ? sum / static_cast<double>(steps) : 0.0; }
};

/// A resumed run's CSV: keeps the header and the rows up to `step`, the checkpoint's, and
/// drops any written after it by the interrupted run (which the resumed run writes again),
/// so the curve has each step once. Rows are flushed as they are written.
inline void keep_csv_rows_through(const std::string& path, std::int64_t step) {
  std::ifstream in(path);
  if (!in) return;  // no curve yet: the resumed run starts one
  std::vector<std::string> kept;
  std::string line;
  while (std::getline(in, line)) {
    char* end = nullptr;
    const long long row_step = std::strtoll(line.c_str(), &end, 10);
    if (kept.empty() || end == line.c_str() || row_step <= step) kept.push_back(line);
  }
  in.close();
  std::ofstream out(path, std::ios::trunc);
  for (const auto& l : kept) out << l << '\n';
  if (!out) throw IoError("metalearn::meta::train: cannot rewrite '" + path + "' on resume");
}

}  // namespace metalearn::meta::detail
