// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/detail/tape_storage.hpp
/// The per-thread record of nodes behind every Tape: nodes in order, values in an arena.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <metalearn/autodiff/detail/arena.hpp>
#include <metalearn/autodiff/detail/block_pool.hpp>
#include <metalearn/autodiff/shape.hpp>
#include <metalearn/error.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn {
template <class Scalar>
class Var;
}  // namespace metalearn

namespace metalearn::detail {

template <class Scalar>
struct BackwardContext;

/// What a reverse sweep knows of a node between the output and the requested inputs.
enum class Reach : unsigned char {
  unreached,  ///< no path from a requested input: its rule is skipped
  on_path,    ///< on a path from a requested input to the output
  requested,  ///< a requested input: its adjoint is a result, never consumed
};

/// Backward rule of an op: reads the output's cotangent and writes the inputs' cotangents.
template <class Scalar>
using BackwardFn = void (*)(BackwardContext<Scalar>&);

/// Which values an op's backward rules read (OpRule::reads): reads_input(k) for input k
/// (k < 31), reads_output for the op's own value. What no rule reads is freed as soon as no
/// Var holds it; a rule that reads anything else throws StateError (the sweep seals it).
using Reads = std::uint32_t;
constexpr Reads reads_nothing = 0;
constexpr Reads reads_output = Reads{1} << 31;
constexpr Reads reads_input(int k) { return Reads{1} << k; }
constexpr bool reads_has_input(Reads r, int k) { return k < 31 && (r & reads_input(k)) != 0; }

/// Everything the tape knows of an op, one per op (an `inline const` variable template
/// beside the op). `backward` is required and written in differentiable ops, so a sweep
/// with create_graph records it and any order works; `fused` is an optional second entry
/// computing the same gradient in plain loops, which the sweep runs instead when it is not
/// recorded. The op body never tests which sweep it is in. gradcheck checks both.
template <class Scalar>
struct OpRule {
  const char* name;
  BackwardFn<Scalar> backward;         ///< required: differentiable
  Reads reads;                         ///< required: the values both rules read
  BackwardFn<Scalar> fused = nullptr;  ///< optional: same gradient, for sweeps not recorded
};

/// A node's attributes, typed: an op stores one small trivially copyable struct of its own
/// (`NodeAttrs::of(RowRange{begin, end})`) and its rules read that type back
/// (`attrs_of<RowRange>(c)`); reading another type throws StateError, in every build.
class NodeAttrs {
 public:
  NodeAttrs() = default;
  template <class T>
  static NodeAttrs of(const T& value) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= capacity && alignof(T) <= 8,
                  "node attributes are a small trivially copyable struct (at most 48 bytes)");
    NodeAttrs a;
    std::memcpy(a.bytes_, &value, sizeof(T));
    a.type_ = &type_tag<T>;
    return a;
  }
  template <class T>
  T as(const char* op) const {
    if (type_ != &type_tag<T>)
      throw StateError(std::string("metalearn::") + op +
                       ": a backward rule read attributes of another type than its op stored");
    T value;
    std::memcpy(&value, bytes_, sizeof(T));
    return value;
  }

 private:
  template <class T>
  static constexpr char type_tag = 0;  // one address per type
  static constexpr std::size_t capacity = 48;
  alignas(8) unsigned char bytes_[capacity] = {};
  const void* type_ = nullptr;
};

/// One recorded operation: its value (in the arena or a block), inputs and rule.
template <class Scalar>
struct Node {
  Scalar* data = nullptr;
  Shape shape;
  const char* op = "";
  const std::int32_t* inputs = nullptr;
  std::int32_t n_inputs = 0;
  const OpRule<Scalar>* rule = nullptr;  // null: constant, leaf, or recorded without grad
  std::uint64_t epoch = 0;
  bool is_leaf = false;
  bool sealed = false;      // while a rule that does not declare reading it runs
  std::int32_t block = -1;  // the pool block holding the value; -1: in the arena
  NodeAttrs attrs;

  bool requires_grad() const noexcept { return is_leaf || rule != nullptr; }
};

/// The nodes and arena of one thread and scalar type. Tape scopes nest on it: a scope
/// remembers where it began, and ending it drops everything recorded after that. Each scope
/// (and each reset) records under a fresh epoch; a Var carries the epoch of its node, so a
/// Var whose scope ended or was reset no longer matches and throws StateError.
template <class Scalar>
class TapeStorage {
 public:
  TapeStorage() = default;
  TapeStorage(const TapeStorage&) = delete;
  TapeStorage& operator=(const TapeStorage&) = delete;

  void begin_scope() {
    scopes_.push_back({nodes_.size(), arena_.mark(), pool_.mark(), epoch_});
    epoch_ = ++epoch_counter_;
  }

  void end_scope() {
    const Scope s = scopes_.back();
    scopes_.pop_back();
    rewind_to(s);
    epoch_ = scopes_.empty() ? ++epoch_counter_ : s.outer_epoch;
  }

  /// Drop the innermost scope's nodes and start it again under a new epoch.
  void reset_scope() {
    rewind_to(scopes_.back());
    epoch_ = ++epoch_counter_;
  }

  bool active() const noexcept { return !scopes_.empty(); }
  std::size_t depth() const noexcept { return scopes_.size(); }
  std::uint64_t epoch() const noexcept { return epoch_; }
  bool recording() const noexcept { return recording_; }
  void set_recording(bool on) noexcept { recording_ = on; }

  std::int32_t size() const noexcept { return static_cast<std::int32_t>(nodes_.size()); }
  const Node<Scalar>& node(std::int32_t i) const noexcept { return nodes_[i]; }
  Node<Scalar>& node(std::int32_t i) noexcept { return nodes_[i]; }

  /// True if (index, epoch) names a live node of this storage.
  bool valid(std::int32_t index, std::uint64_t epoch) const noexcept {
    return index >= 0 && index < size() && nodes_[index].epoch == epoch;
  }

  /// Record a node of `rule` with fresh storage for its value. It keeps its rule only if
  /// recording is on and some input requires a gradient; otherwise it is a constant.
  std::int32_t push(const OpRule<Scalar>& rule, Shape shape, const std::int32_t* inputs,
                    std::int32_t n_inputs, const NodeAttrs& attrs = {}) {
    return push_value(rule.name, &rule, shape, inputs, n_inputs, attrs);
  }
  /// Record a constant (or a leaf, when the caller marks it) named `op`.
  std::int32_t push_constant(const char* op, Shape shape) {
    return push_value(op, nullptr, shape, nullptr, 0, {});
  }

 private:
  std::int32_t push_value(const char* op, const OpRule<Scalar>* rule, Shape shape,
                          const std::int32_t* inputs, std::int32_t n_inputs,
                          const NodeAttrs& attrs) {
    const std::size_t bytes = static_cast<std::size_t>(shape.numel()) * sizeof(Scalar);
    // Values of 64 KiB or more get blocks of their own, freed once nothing refers to them;
    // smaller ones stay in the arena until the scope ends: below 64 KiB the bookkeeping
    // costs more than the memory is worth.
    if (bytes >= (std::size_t{64} << 10)) {
      check_active(op);
      // Counted from zero: the Var made for the node, and the backward rules that read it,
      // hold it (hold, push_node); the last to let go frees it.
      const std::int32_t block = pool_.allocate(bytes);
      note_peak();
      return push_node(op, rule, shape, static_cast<Scalar*>(pool_.data(block)), inputs, n_inputs,
                       attrs, block);
    }
    Scalar* data = static_cast<Scalar*>(arena_.allocate(bytes));
    note_peak();
    return push_node(op, rule, shape, data, inputs, n_inputs, attrs, -1);
  }

 public:
  /// Record a node whose value aliases existing tape memory (reshape, slice, detach; the
  /// memory is inputs[0]'s value): values on a tape are never written after their node is
  /// made, so sharing is safe. The view's Vars hold its source's block like their own.
  /// `rule` null: a constant view (detach).
  std::int32_t push_view(const char* op, const OpRule<Scalar>* rule, Shape shape, Scalar* data,
                         const std::int32_t* inputs, std::int32_t n_inputs,
                         const NodeAttrs& attrs = {}) {
    const std::int32_t block = n_inputs > 0 ? nodes_[inputs[0]].block : -1;
    return push_node(op, rule, shape, data, inputs, n_inputs, attrs, block);
  }

  /// The one lifetime rule: a Var holds its value's block (a value in the arena needs no
  /// count). `hold` for a Var made for node `i`; true if it counts.
  bool hold(std::int32_t i) {
    const std::int32_t block = nodes_[i].block;
    if (block < 0) return false;
    pool_.retain(block);
    return true;
  }
  /// A copy of a counting Var; false (and nothing held) if that Var is stale.
  bool hold_again(std::int32_t i, std::uint64_t epoch) noexcept {
    if (!valid(i, epoch)) return false;
    pool_.retain(nodes_[i].block);
    return true;
  }
  /// A counting Var ends: its block is freed if nothing else holds it.
  void drop(std::int32_t i, std::uint64_t epoch) noexcept {
    if (valid(i, epoch)) pool_.release(nodes_[i].block);
  }
  /// Node `i`'s value; throws StateError naming its op if the value was freed or is sealed
  /// (a backward rule reading a value its OpRule does not declare in `reads`).
  const Scalar* value_data(std::int32_t i) const {
    if (nodes_[i].sealed)
      throw StateError(std::string("metalearn::Var::value: the backward rule of '") +
                       (running_rule_ != nullptr ? running_rule_ : "?") + "' read the value of '" +
                       nodes_[i].op + "' (node " + std::to_string(i) +
                       "), which its OpRule does not declare in `reads`");
    if (value_freed(i))
      throw StateError(std::string("metalearn::Var::value: the value of '") + nodes_[i].op +
                       "' (node " + std::to_string(i) +
                       ") was freed: nothing held it. A backward rule may read only the values "
                       "its OpRule declares in `reads`");
    return nodes_[i].data;
  }

  /// While a backward rule of node `i` runs, the values it does not declare are sealed:
  /// reading one throws, in every build (so every gradcheck also checks the declarations,
  /// whatever the values' sizes). `keep` is the cotangent, always readable.
  void seal_undeclared(std::int32_t i, std::int32_t keep) noexcept {
    Node<Scalar>& n = nodes_[i];
    const Reads r = n.rule->reads;
    for (std::int32_t k = 0; k < n.n_inputs; ++k)
      if (!reads_has_input(r, k)) nodes_[n.inputs[k]].sealed = true;
    for (std::int32_t k = 0; k < n.n_inputs; ++k)  // an input given twice, read once
      if (reads_has_input(r, k)) nodes_[n.inputs[k]].sealed = false;
    if (!(r & reads_output)) n.sealed = true;
    if (keep >= 0) nodes_[keep].sealed = false;
    running_rule_ = n.rule->name;
  }
  void unseal(std::int32_t i) noexcept {
    Node<Scalar>& n = nodes_[i];
    for (std::int32_t k = 0; k < n.n_inputs; ++k) nodes_[n.inputs[k]].sealed = false;
    n.sealed = false;
    running_rule_ = nullptr;
  }

  /// True if node `i`'s value was freed (nothing refers to it any more).
  bool value_freed(std::int32_t i) const noexcept {
    const std::int32_t block = nodes_[i].block;
    return block >= 0 && pool_.data(block) == nullptr;
  }

  /// For a rule of a sweep that is not recorded, writing its result over the cotangent it
  /// consumes (result_over_grad_output): a node of `node`'s shape on `node`'s block when
  /// the rule's context is the only holder of that block; else -1.
  std::int32_t push_over(std::int32_t node) {
    const std::int32_t block = nodes_[node].block;
    if (recording_ || block < 0 || pool_.refs(block) != 1) return -1;
    return push_node("gradient", nullptr, nodes_[node].shape, nodes_[node].data, nullptr, 0, {},
                     block);
  }

  /// The most bytes in use at once: the arena's plus the block pool's (live blocks and
  /// free lists).
  std::size_t peak_bytes() const noexcept { return peak_; }
  void reset_peak() noexcept { peak_ = arena_.in_use() + pool_.held(); }

 private:
  void note_peak() noexcept { peak_ = std::max(peak_, arena_.in_use() + pool_.held()); }

  std::int32_t push_node(const char* op, const OpRule<Scalar>* rule, Shape shape, Scalar* data,
                         const std::int32_t* inputs, std::int32_t n_inputs, const NodeAttrs& attrs,
                         std::int32_t block) {
    check_active(op);
    bool needs_grad = false;
    if (recording_ && rule != nullptr)
      for (std::int32_t k = 0; k < n_inputs; ++k) needs_grad |= nodes_[inputs[k]].requires_grad();
    std::int32_t* in = nullptr;  // allocated first: a throw leaves the tape unchanged
    if (needs_grad) {
      in = static_cast<std::int32_t*>(arena_.allocate(sizeof(std::int32_t) * n_inputs));
      std::copy_n(inputs, n_inputs, in);
      // The backward rule will read these values: they stay until the scope ends.
      for (std::int32_t k = 0; k < n_inputs; ++k)
        if (reads_has_input(rule->reads, k)) pool_.retain(nodes_[inputs[k]].block);
      if (rule->reads & reads_output) pool_.retain(block);
    }
    // Filled in place: a Node assembled on the stack and copied in (152 bytes) stalled on
    // store forwarding, 5% of a sinusoid MAML step by perf.
    Node<Scalar>& n = nodes_.emplace_back();
    n.data = data;
    n.shape = shape;
    n.op = op;
    n.epoch = epoch_;
    n.block = block;
    n.attrs = attrs;
    if (needs_grad) {
      n.inputs = in;
      n.n_inputs = n_inputs;
      n.rule = rule;
    }
    return size() - 1;
  }

 public:
  /// Raw arena memory for op attributes (e.g. gather indices); freed with the scope.
  void* allocate(std::size_t bytes) {
    void* p = arena_.allocate(bytes);
    note_peak();
    return p;
  }

  /// Scratch memory for one op's computation (a convolution's column matrices): a block
  /// of the pool held by the caller until release_scratch, then free for the next value.
  std::pair<std::int32_t, void*> hold_scratch(std::size_t bytes) {
    check_active("scratch");
    const std::int32_t block = pool_.allocate(bytes);
    pool_.retain(block);
    note_peak();
    return {block, pool_.data(block)};
  }
  void release_scratch(std::int32_t block) noexcept { pool_.release(block); }

  const Arena& arena() const noexcept { return arena_; }
  /// Give the arena's and the block pool's memory back to the system (only when no scope
  /// is active).
  void release_memory() {
    if (active())
      throw StateError("metalearn::Tape::release_memory: a tape is still active on this thread");
    arena_.release();
    pool_ = BlockPool();
    peak_ = 0;
    nodes_ = {};
    adjoints_ = {};
    reaches_ = {};
  }

  // Scratch reused by every grad() call, so a warm loop allocates nothing.
  std::vector<Var<Scalar>>& adjoint_scratch() { return adjoints_; }
  std::vector<Reach>& reach_scratch() { return reaches_; }
  std::vector<Var<Scalar>>& input_grad_scratch() { return input_grads_; }

 private:
  struct Scope {
    std::size_t nodes;
    Arena::Mark mark;
    std::size_t blocks;
    std::uint64_t outer_epoch;
  };

  void check_active(const char* op) const {
    if (scopes_.empty())
      throw StateError(std::string("metalearn::") + op +
                       ": no active Tape on this thread (create a metalearn::Tape first)");
  }

  void rewind_to(const Scope& s) {
    nodes_.resize(s.nodes);
    pool_.rewind(s.blocks);
    if (s.nodes == 0 && scopes_.size() <= 1)
      arena_.clear();  // outermost scope empty: merge chunks for the next round
    else
      arena_.rewind(s.mark);
  }

  std::vector<Node<Scalar>> nodes_;
  Arena arena_;
  BlockPool pool_;
  std::size_t peak_ = 0;
  std::vector<Scope> scopes_;
  std::uint64_t epoch_ = 0;
  std::uint64_t epoch_counter_ = 0;
  bool recording_ = true;
  const char* running_rule_ = nullptr;  // the rule whose undeclared values are sealed
  std::vector<Var<Scalar>> adjoints_;
  std::vector<Reach> reaches_;
  std::vector<Var<Scalar>> input_grads_;
};

/// The calling thread's storage for `Scalar`: the one documented mutable global. It lives
/// as long as the thread, so a Var that outlives its Tape object still finds its storage
/// and can report that it is stale instead of reading freed memory.
template <class Scalar>
TapeStorage<Scalar>& thread_tape() {
  thread_local TapeStorage<Scalar> storage;
  return storage;
}

}  // namespace metalearn::detail
