// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/ops/arithmetic.hpp
/// add, sub, mul, div with NumPy broadcasting; neg, scale, add_scalar; C++ operators.
#pragma once

#include <metalearn/autodiff/detail/op_support.hpp>
#include <metalearn/autodiff/ops/broadcast.hpp>

namespace metalearn {

namespace detail {

/// Shared forward of the broadcasting binary ops. `f` is a generic lambda applied to Eigen
/// arrays on the fast paths (equal shapes, one scalar operand) and to scalars elsewhere.
template <class Scalar, class F>
Var<Scalar> binary_op(const char* op, const Var<Scalar>& a, const Var<Scalar>& b,
                      BackwardFn<Scalar> backward, F f) {
  const Shape sa = a.shape(), sb = b.shape();
  const Shape so = broadcast_shapes(op, sa, sb);
  auto out = record(op, so, {a, b}, backward);
  using Array = Eigen::Array<Scalar, Eigen::Dynamic, 1>;
  Eigen::Map<Array> o(out.data, so.numel());
  const Scalar* pa = a.value().data();
  const Scalar* pb = b.value().data();
  if (sa == sb) {
    o = f(Eigen::Map<const Array>(pa, sa.numel()), Eigen::Map<const Array>(pb, sb.numel()));
  } else if (sb.numel() == 1 && sa == so) {
    o = f(Eigen::Map<const Array>(pa, sa.numel()), *pb);
  } else if (sa.numel() == 1 && sb == so) {
    o = f(*pa, Eigen::Map<const Array>(pb, sb.numel()));
  } else {
    broadcast_apply(pa, sa, pb, sb, out.data, so, f);
  }
  return out.var;
}

template <class Scalar>
void add_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void sub_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void mul_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void div_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void neg_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void scale_backward(BackwardContext<Scalar>& c);
template <class Scalar>
void add_scalar_backward(BackwardContext<Scalar>& c);

}  // namespace detail

/// a + b, broadcasting.
template <class Scalar>
Var<Scalar> add(const Var<Scalar>& a, const Var<Scalar>& b) {
  return detail::binary_op("add", a, b, &detail::add_backward<Scalar>,
                           [](const auto& x, const auto& y) { return x + y; });
}
/// a - b, broadcasting.
template <class Scalar>
Var<Scalar> sub(const Var<Scalar>& a, const Var<Scalar>& b) {
  return detail::binary_op("sub", a, b, &detail::sub_backward<Scalar>,
                           [](const auto& x, const auto& y) { return x - y; });
}
/// Element-wise a * b, broadcasting.
template <class Scalar>
Var<Scalar> mul(const Var<Scalar>& a, const Var<Scalar>& b) {
  return detail::binary_op("mul", a, b, &detail::mul_backward<Scalar>,
                           [](const auto& x, const auto& y) { return x * y; });
}
/// Element-wise a / b, broadcasting.
template <class Scalar>
Var<Scalar> div(const Var<Scalar>& a, const Var<Scalar>& b) {
  return detail::binary_op("div", a, b, &detail::div_backward<Scalar>,
                           [](const auto& x, const auto& y) { return x / y; });
}

/// -x.
template <class Scalar>
Var<Scalar> neg(const Var<Scalar>& x) {
  auto out = detail::record("neg", x.shape(), {x}, &detail::neg_backward<Scalar>);
  Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(out.data, x.numel()) = -x.value().array();
  return out.var;
}

/// c * x for a constant c.
template <class Scalar>
Var<Scalar> scale(const Var<Scalar>& x, Scalar c) {
  detail::NodeAttrs attrs;
  attrs.real[0] = static_cast<double>(c);
  auto out = detail::record("scale", x.shape(), {x}, &detail::scale_backward<Scalar>, attrs);
  Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(out.data, x.numel()) = x.value().array() * c;
  return out.var;
}

/// x + c for a constant c.
template <class Scalar>
Var<Scalar> add_scalar(const Var<Scalar>& x, Scalar c) {
  auto out = detail::record("add_scalar", x.shape(), {x}, &detail::add_scalar_backward<Scalar>);
  Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(out.data, x.numel()) = x.value().array() + c;
  return out.var;
}

template <class Scalar>
Var<Scalar> operator+(const Var<Scalar>& a, const Var<Scalar>& b) {
  return add(a, b);
}
template <class Scalar>
Var<Scalar> operator-(const Var<Scalar>& a, const Var<Scalar>& b) {
  return sub(a, b);
}
template <class Scalar>
Var<Scalar> operator*(const Var<Scalar>& a, const Var<Scalar>& b) {
  return mul(a, b);
}
template <class Scalar>
Var<Scalar> operator/(const Var<Scalar>& a, const Var<Scalar>& b) {
  return div(a, b);
}
template <class Scalar>
Var<Scalar> operator-(const Var<Scalar>& x) {
  return neg(x);
}

// Mixed Var/number operators. The number is any arithmetic type, converted to Scalar.
template <class Scalar, class T, detail::Requires<std::is_arithmetic_v<T>> = 0>
Var<Scalar> operator*(const Var<Scalar>& x, T c) {
  return scale(x, static_cast<Scalar>(c));
}
template <class Scalar, class T, detail::Requires<std::is_arithmetic_v<T>> = 0>
Var<Scalar> operator*(T c, const Var<Scalar>& x) {
  return scale(x, static_cast<Scalar>(c));
}
template <class Scalar, class T, detail::Requires<std::is_arithmetic_v<T>> = 0>
Var<Scalar> operator/(const Var<Scalar>& x, T c) {
  return scale(x, Scalar(1) / static_cast<Scalar>(c));
}
template <class Scalar, class T, detail::Requires<std::is_arithmetic_v<T>> = 0>
Var<Scalar> operator+(const Var<Scalar>& x, T c) {
  return add_scalar(x, static_cast<Scalar>(c));
}
template <class Scalar, class T, detail::Requires<std::is_arithmetic_v<T>> = 0>
Var<Scalar> operator+(T c, const Var<Scalar>& x) {
  return add_scalar(x, static_cast<Scalar>(c));
}
template <class Scalar, class T, detail::Requires<std::is_arithmetic_v<T>> = 0>
Var<Scalar> operator-(const Var<Scalar>& x, T c) {
  return add_scalar(x, -static_cast<Scalar>(c));
}
template <class Scalar, class T, detail::Requires<std::is_arithmetic_v<T>> = 0>
Var<Scalar> operator-(T c, const Var<Scalar>& x) {
  return add_scalar(neg(x), static_cast<Scalar>(c));
}

namespace detail {

// d(a+b) = g, each summed back to its operand's shape (broadcast adjoint).
template <class Scalar>
void add_backward(BackwardContext<Scalar>& c) {
  for (int k = 0; k < 2; ++k)
    if (c.needed(k)) c.grad_inputs[k] = sum_to(c.grad_output, c.input(k).shape());
}
template <class Scalar>
void sub_backward(BackwardContext<Scalar>& c) {
  if (c.needed(0)) c.grad_inputs[0] = sum_to(c.grad_output, c.input(0).shape());
  if (c.needed(1)) c.grad_inputs[1] = neg(sum_to(c.grad_output, c.input(1).shape()));
}
// d(ab) = g b da + g a db.
template <class Scalar>
void mul_backward(BackwardContext<Scalar>& c) {
  if (c.needed(0)) c.grad_inputs[0] = sum_to(mul(c.grad_output, c.input(1)), c.input(0).shape());
  if (c.needed(1)) c.grad_inputs[1] = sum_to(mul(c.grad_output, c.input(0)), c.input(1).shape());
}
// d(a/b) = g/b da - g (a/b)/b db.
template <class Scalar>
void div_backward(BackwardContext<Scalar>& c) {
  const Var<Scalar> g_over_b = div(c.grad_output, c.input(1));
  if (c.needed(0)) c.grad_inputs[0] = sum_to(g_over_b, c.input(0).shape());
  if (c.needed(1)) c.grad_inputs[1] = neg(sum_to(mul(g_over_b, c.output()), c.input(1).shape()));
}
template <class Scalar>
void neg_backward(BackwardContext<Scalar>& c) {
  c.grad_inputs[0] = neg(c.grad_output);
}
template <class Scalar>
void scale_backward(BackwardContext<Scalar>& c) {
  c.grad_inputs[0] = scale(c.grad_output, static_cast<Scalar>(c.attrs().real[0]));
}
template <class Scalar>
void add_scalar_backward(BackwardContext<Scalar>& c) {
  c.grad_inputs[0] = c.grad_output;
}

}  // namespace detail
}  // namespace metalearn
