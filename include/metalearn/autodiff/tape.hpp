// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/tape.hpp
/// `Tape`: an RAII scope that records operations on this thread's tape.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/autodiff/var.hpp>
#include <vector>

namespace metalearn {

/// Records every op on Vars made inside its lifetime, on the calling thread's tape for
/// `Scalar`. Ending the scope (or `reset()`) frees all recorded values at once and makes
/// their Vars stale; the memory stays with the thread for the next tape, so a loop that
/// builds the same graph every step does not call malloc once warm.
///
/// Tapes nest: an inner Tape records after the outer one's nodes, may use the outer Vars,
/// and drops only its own nodes when it ends. Each thread has its own tape, so tasks on
/// different threads never share one.
///
/// ```
/// metalearn::Tape<double> tape;
/// auto x = tape.leaf(metalearn::Tensor<double>::scalar(2.0));
/// auto y = x * x;
/// double dy = metalearn::grad(y, {x})[0].item();  // 4
/// ```
template <class Scalar = float>
class Tape {
 public:
  Tape() : storage_(&detail::thread_tape<Scalar>()) {
    storage_->begin_scope();
    depth_ = depth();
  }
  ~Tape() { storage_->end_scope(); }
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  /// A leaf that gradients can be taken with respect to; the value is copied onto the
  /// tape, so the tensor may change afterwards (an optimizer step) without harm.
  Var<Scalar> leaf(const TensorView<Scalar>& value) { return record("leaf", value, true); }

  /// Leaves for a list of tensors or views (e.g. `model.parameters().views()`), in order.
  template <class Range>
  std::vector<Var<Scalar>> leaves(const Range& values) {
    std::vector<Var<Scalar>> out;
    leaves(values, out);
    return out;
  }
  /// Same, reusing `out`'s capacity (no allocation in a warm loop).
  template <class Range>
  void leaves(const Range& values, std::vector<Var<Scalar>>& out) {
    out.clear();
    for (const auto& v : values) out.push_back(leaf(TensorView<Scalar>(v)));
  }

  /// A constant: gradients never flow into it.
  Var<Scalar> constant(const TensorView<Scalar>& value) { return record("constant", value, false); }
  /// A constant from an Eigen matrix or expression (rank 2).
  template <class Derived, detail::Requires<detail::is_eigen_v<Derived>> = 0>
  Var<Scalar> constant(const Eigen::EigenBase<Derived>& m) {
    const std::int32_t i = storage_->push_constant("constant", Shape{m.rows(), m.cols()});
    Eigen::Map<detail::RowMatrix<Scalar>>(storage_->node(i).data, m.rows(), m.cols()) =
        m.derived().template cast<Scalar>();
    return Var<Scalar>(storage_, i, storage_->epoch());
  }
  /// A constant scalar (rank 0).
  Var<Scalar> scalar(Scalar v) {
    const Tensor<Scalar> t = Tensor<Scalar>::scalar(v);
    return constant(t);
  }

  /// Drop everything recorded in this scope; its Vars become stale. Only the innermost
  /// live Tape of the thread may reset.
  void reset() {
    if (depth() != depth_)
      throw StateError("metalearn::Tape::reset: an inner Tape is still active on this thread");
    storage_->reset_scope();
  }

  /// Nodes recorded on this thread's tape (all nested scopes).
  std::int32_t size() const { return storage_->size(); }
  /// Bytes the thread's arena holds from the system.
  std::size_t bytes_reserved() const { return storage_->arena().capacity(); }
  /// The most bytes the thread's tape ever had in use at once (node values in the arena
  /// and in blocks, op scratch, free blocks kept for reuse): the memory a workload touched,
  /// where bytes_reserved rounds up to doubling chunks.
  std::size_t bytes_peak() const { return storage_->peak_bytes(); }
  /// Start bytes_peak again from the bytes in use now (e.g. to measure a warm loop's step).
  void reset_peak() { storage_->reset_peak(); }
  /// Chunks the thread's arena ever requested from the system; constant in a warm loop.
  std::size_t arena_allocations() const { return storage_->arena().system_allocations(); }

 private:
  std::size_t depth() const { return storage_->depth(); }
  Var<Scalar> record(const char* op, const TensorView<Scalar>& value, bool is_leaf) {
    const std::int32_t i = storage_->push_constant(op, value.shape());
    auto& n = storage_->node(i);
    n.is_leaf = is_leaf;
    std::copy(value.data(), value.data() + value.numel(), n.data);
    return Var<Scalar>(storage_, i, storage_->epoch());
  }

  detail::TapeStorage<Scalar>* storage_;
  std::size_t depth_ = 0;
};

/// A constant on the calling thread's active tape for `Scalar` (for code that has Vars but
/// not the Tape object, e.g. a model's forward). Throws StateError when no Tape is active.
template <class Scalar>
Var<Scalar> constant(const TensorView<Scalar>& value) {
  detail::TapeStorage<Scalar>& t = detail::thread_tape<Scalar>();
  const std::int32_t i = t.push_constant("constant", value.shape());
  std::copy(value.data(), value.data() + value.numel(), t.node(i).data);
  return Var<Scalar>(&t, i, t.epoch());
}
template <class Scalar>
Var<Scalar> constant(const Tensor<Scalar>& value) {
  return constant(value.view());
}

/// A leaf on the calling thread's active tape (see `constant`): gradients can be taken with
/// respect to it, as with Tape::leaf.
template <class Scalar>
Var<Scalar> leaf(const TensorView<Scalar>& value) {
  detail::TapeStorage<Scalar>& t = detail::thread_tape<Scalar>();
  const std::int32_t i = t.push_constant("leaf", value.shape());
  t.node(i).is_leaf = true;
  std::copy(value.data(), value.data() + value.numel(), t.node(i).data);
  return Var<Scalar>(&t, i, t.epoch());
}

/// Turns recording off in its scope on this thread: ops still compute values, but record
/// no backward rules (evaluation, optimizer updates).
template <class Scalar = float>
class NoGradGuard {
 public:
  NoGradGuard() : storage_(&detail::thread_tape<Scalar>()), was_(storage_->recording()) {
    storage_->set_recording(false);
  }
  ~NoGradGuard() { storage_->set_recording(was_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  detail::TapeStorage<Scalar>* storage_;
  bool was_;
};

}  // namespace metalearn
