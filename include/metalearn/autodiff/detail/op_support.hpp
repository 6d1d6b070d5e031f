// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/detail/op_support.hpp
/// Helpers every op uses to check its operands and record its output node.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <metalearn/autodiff/var.hpp>
#include <metalearn/error.hpp>
#include <string>

namespace metalearn::detail {

/// A freshly recorded node: its Var and its writable value.
template <class Scalar>
struct Output {
  Var<Scalar> var;
  Scalar* data;
};

/// The common tape of `operands`; throws naming `op` if they live on different tapes.
template <class Scalar>
TapeStorage<Scalar>& common_tape(const char* op, std::initializer_list<Var<Scalar>> operands) {
  TapeStorage<Scalar>* tape = nullptr;
  for (const auto& v : operands) {
    TapeStorage<Scalar>& t = v.tape();
    if (tape != nullptr && tape != &t)
      throw InvalidArgument(std::string("metalearn::") + op +
                            ": operands are recorded on different threads' tapes");
    tape = &t;
  }
  return *tape;
}

/// Record the output of the op `rule` with fresh storage; the caller fills `data`.
template <class Scalar>
Output<Scalar> record(const OpRule<Scalar>& rule, const Shape& shape,
                      std::initializer_list<Var<Scalar>> inputs, const NodeAttrs& attrs = {}) {
  TapeStorage<Scalar>& t = common_tape(rule.name, inputs);
  std::int32_t idx[8];
  std::int32_t n = 0;
  for (const auto& v : inputs) idx[n++] = v.index();
  const std::int32_t i = t.push(rule, shape, idx, n, attrs);
  return {Var<Scalar>(&t, i, t.epoch()), t.node(i).data};
}

/// Record the output of the op `rule` as a view of existing tape memory (no copy).
template <class Scalar>
Var<Scalar> record_view(const OpRule<Scalar>& rule, const Shape& shape, const Scalar* data,
                        const Var<Scalar>& input, const NodeAttrs& attrs = {}) {
  TapeStorage<Scalar>& t = input.tape();
  const std::int32_t idx = input.index();
  const std::int32_t i =
      t.push_view(rule.name, &rule, shape, const_cast<Scalar*>(data), &idx, 1, attrs);
  return Var<Scalar>(&t, i, t.epoch());
}

/// `input`'s value as a constant (no rule, no copy).
template <class Scalar>
Var<Scalar> record_constant_view(const char* op, const Var<Scalar>& input) {
  TapeStorage<Scalar>& t = input.tape();
  const std::int32_t idx = input.index();
  const std::int32_t i =
      t.push_view(op, nullptr, input.shape(), const_cast<Scalar*>(input.value().data()), &idx, 1);
  return Var<Scalar>(&t, i, t.epoch());
}

/// A constant node on `like`'s tape (masks, one-hot targets used inside backward rules).
template <class Scalar>
Output<Scalar> record_constant(const Var<Scalar>& like, const Shape& shape) {
  TapeStorage<Scalar>& t = like.tape();
  const std::int32_t i = t.push_constant("constant", shape);
  return {Var<Scalar>(&t, i, t.epoch()), t.node(i).data};
}

/// A constant of grad_output's shape for a backward rule's result, written element by
/// element after the rule has read grad_output's value at the same place: in a sweep that
/// is not recorded it reuses grad_output's block when the rule's context is its only
/// holder (the adjoint is consumed by this step; it saves a full-size buffer at the peak,
/// e.g. batch norm's and relu's input gradients), else fresh memory.
template <class Scalar>
Output<Scalar> result_over_grad_output(BackwardContext<Scalar>& c) {
  const Var<Scalar>& g = c.grad_output;
  const std::int32_t i = c.tape.push_over(g.index());
  if (i >= 0) return {Var<Scalar>(&c.tape, i, c.tape.epoch()), c.tape.node(i).data};
  return record_constant(g, g.shape());
}

inline std::string shapes_message(const char* op, const char* what, const Shape& a,
                                  const Shape& b) {
  return std::string("metalearn::") + op + ": " + what + " (shapes " + a.to_string() + " and " +
         b.to_string() + ")";
}

}  // namespace metalearn::detail
