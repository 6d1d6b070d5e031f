// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/var.hpp
/// `Var`: a handle to one value recorded on a tape.
#pragma once

#include <cstdint>
#include <metalearn/autodiff/detail/tape_storage.hpp>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/error.hpp>
#include <string>
#include <utility>

namespace metalearn {

/// A value recorded on a tape: (tape, epoch, index). Cheap to copy. Using a Var after its
/// Tape was reset or ended throws StateError, in every build (the check is one compare).
///
/// A Var is also what keeps its value alive (the one lifetime rule, docs/autodiff.md
/// "Memory"): a large value lives while a Var, a later backward rule that reads it, or a
/// sweep's adjoint refers to it, and is freed when the last of them lets go. Hold any Var
/// as long as you like; the memory follows.
template <class Scalar = float>
class Var {
 public:
  using value_type = Scalar;

  /// An empty Var; using it throws StateError.
  Var() = default;
  Var(detail::TapeStorage<Scalar>* tape, std::int32_t index, std::uint64_t epoch)
      : tape_(tape), index_(index), epoch_(epoch), counted_(tape != nullptr && tape->hold(index)) {}
  Var(const Var& o) noexcept
      : tape_(o.tape_), index_(o.index_), epoch_(o.epoch_), counted_(o.counted_) {
    if (counted_) counted_ = tape_->hold_again(index_, epoch_);
  }
  /// A moved-from Var is empty (is_assigned() is false).
  Var(Var&& o) noexcept : tape_(o.tape_), index_(o.index_), epoch_(o.epoch_), counted_(o.counted_) {
    o.release_handle();
  }
  Var& operator=(const Var& o) noexcept {
    if (this == &o) return *this;
    const bool hold = o.counted_ && o.tape_->hold_again(o.index_, o.epoch_);  // before the drop
    if (counted_) tape_->drop(index_, epoch_);
    tape_ = o.tape_;
    index_ = o.index_;
    epoch_ = o.epoch_;
    counted_ = hold;
    return *this;
  }
  Var& operator=(Var&& o) noexcept {
    if (this == &o) return *this;
    if (counted_) tape_->drop(index_, epoch_);
    tape_ = o.tape_;
    index_ = o.index_;
    epoch_ = o.epoch_;
    counted_ = o.counted_;
    o.release_handle();
    return *this;
  }
  ~Var() {
    if (counted_) tape_->drop(index_, epoch_);
  }

  /// The tape storage, after checking this Var is still live.
  detail::TapeStorage<Scalar>& tape() const {
    if (tape_ == nullptr) throw StateError("metalearn::Var: used before being assigned a value");
    if (!tape_->valid(index_, epoch_))
      throw StateError("metalearn::Var: used after its Tape was reset or ended (node " +
                       std::to_string(index_) + ")");
    return *tape_;
  }

  /// By value: a reference into the tape would dangle when the next op grows the tape.
  Shape shape() const { return node().shape; }
  int rank() const { return shape().rank(); }
  std::int64_t numel() const { return shape().numel(); }
  /// Read-only view of the value, valid while the tape scope lives. Throws StateError if the
  /// value was freed (only a backward rule reading an input it did not declare can see one).
  TensorView<Scalar> value() const {
    const detail::TapeStorage<Scalar>& t = tape();
    return TensorView<Scalar>(t.value_data(index_), t.node(index_).shape);
  }
  /// The value of a one-element Var.
  Scalar item() const { return value().item(); }
  /// An owning copy of the value, which outlives the tape.
  Tensor<Scalar> to_tensor() const { return Tensor<Scalar>(value()); }
  /// True for leaves and for values computed from leaves while recording.
  bool requires_grad() const { return node().requires_grad(); }
  /// The op that made this value ("leaf", "constant", "matmul", ...).
  const char* op() const { return node().op; }

  std::int32_t index() const noexcept { return index_; }
  std::uint64_t epoch() const noexcept { return epoch_; }
  bool is_assigned() const noexcept { return tape_ != nullptr; }
  detail::TapeStorage<Scalar>* storage() const noexcept { return tape_; }

 private:
  const detail::Node<Scalar>& node() const { return tape().node(index_); }

  void release_handle() noexcept {
    tape_ = nullptr;
    index_ = -1;
    epoch_ = 0;
    counted_ = false;
  }

  detail::TapeStorage<Scalar>* tape_ = nullptr;
  std::int32_t index_ = -1;
  std::uint64_t epoch_ = 0;
  bool counted_ = false;  // this Var holds a count on its value's block
};

namespace detail {

/// What a backward rule sees: its node's inputs and output, the output's cotangent, and
/// where to put each input's cotangent (only for inputs that lead to a requested x).
template <class Scalar>
struct BackwardContext {
  TapeStorage<Scalar>& tape;
  std::int32_t index;        // the node being differentiated
  Var<Scalar> grad_output;   // cotangent of its output, same shape
  Var<Scalar>* grad_inputs;  // one slot per input, filled by the rule when needed(k)
  const Reach* reaches;      // per node from `first`: see Reach
  std::int32_t first;        // lowest node index that can lead to a requested input

  const Node<Scalar>& node() const { return tape.node(index); }
  Var<Scalar> output() const { return Var<Scalar>(&tape, index, node().epoch); }
  Var<Scalar> input(int k) const {
    const std::int32_t i = node().inputs[k];
    return Var<Scalar>(&tape, i, tape.node(i).epoch);
  }
  bool needed(int k) const {
    const std::int32_t i = node().inputs[k];
    return i >= first && reaches[i - first] != Reach::unreached;
  }
  const NodeAttrs& attrs() const { return node().attrs; }
};

/// The attributes node c's op stored, as the type it stored them (NodeAttrs::of).
template <class T, class Scalar>
T attrs_of(const BackwardContext<Scalar>& c) {
  return c.attrs().template as<T>(c.node().op);
}

}  // namespace detail
}  // namespace metalearn
