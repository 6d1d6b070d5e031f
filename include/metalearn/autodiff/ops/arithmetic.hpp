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
Var<Scalar> binary_op(const OpRule<Scalar>& rule, const Var<Scalar>& a, const Var<Scalar>& b, F f) {
  const Shape sa = a.shape(), sb = b.shape();
  const Shape so = broadcast_shapes(rule.name, sa, sb);
  auto out = record(rule, so, {a, b});
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

struct ScaleFactor {
  double factor;
};

template <class Scalar>
inline const OpRule<Scalar> add_rule{"add", &add_backward<Scalar>, reads_nothing};
template <class Scalar>
inline const OpRule<Scalar> sub_rule{"sub", &sub_backward<Scalar>, reads_nothing};
template <class Scalar>
inline const OpRule<Scalar> mul_rule{"mul", &mul_backward<Scalar>, reads_input(0) | reads_input(1)};
template <class Scalar>
inline const OpRule<Scalar> div_rule{"div", &div_backward<Scalar>, reads_input(1) | reads_output};
template <class Scalar>
inline const OpRule<Scalar> neg_rule{"neg", &neg_backward<Scalar>, reads_nothing};
template <class Scalar>
inline const OpRule<Scalar> scale_rule{"scale", &scale_backward<Scalar>, reads_nothing};
template <class Scalar>
inline const OpRule<Scalar> add_scalar_rule{"add_scalar", &add_scalar_backward<Scalar>,
                                            reads_nothing};

}  // namespace detail

/// a + b, broadcasting.
template <class Scalar>
Var<Scalar> add(const Var<Scalar>& a, const Var<Scalar>& b) {
  return detail::binary_op(detail::add_rule<Scalar>, a, b,
                           [](const auto& x, const auto& y) { return x + y; });
}
/// a - b, broadcasting.
template <class Scalar>
Var<Scalar> sub(const Var<Scalar>& a, const Var<Scalar>& b) {
  return detail::binary_op(detail::sub_rule<Scalar>, a, b,
                           [](const auto& x, const auto& y) { return x - y; });
}
/// Element-wise a * b, broadcasting.
template <class Scalar>
Var<Scalar> mul(const Var<Scalar>& a, const Var<Scalar>& b) {
  return detail::binary_op(detail::mul_rule<Scalar>, a, b,
                           [](const auto& x, const auto& y) { return x * y; });
}
/// Element-wise a / b, broadcasting.
template <class Scalar>
Var<Scalar> div(const Var<Scalar>& a, const Var<Scalar>& b) {
  return detail::binary_op(detail::div_rule<Scalar>, a, b,
                           [](const auto& x, const auto& y) { return x / y; });
}

/// -x.
template <class Scalar>
Var<Scalar> neg(const Var<Scalar>& x) {
  auto out = detail::record(detail::neg_rule<Scalar>, x.shape(), {x});
  Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(out.data, x.numel()) = -x.value().array();
  return out.var;
}

/// c * x for a constant c.
template <class Scalar>
Var<Scalar> scale(const Var<Scalar>& x, Scalar c) {
  auto out = detail::record(detail::scale_rule<Scalar>, x.shape(), {x},
                            detail::NodeAttrs::of(detail::ScaleFactor{static_cast<double>(c)}));
  Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(out.data, x.numel()) = x.value().array() * c;
  return out.var;
}

/// x + c for a constant c.
template <class Scalar>
Var<Scalar> add_scalar(const Var<Scalar>& x, Scalar c) {
  auto out = detail::record(detail::add_scalar_rule<Scalar>, x.shape(), {x});
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
  c.grad_inputs[0] = scale(c.grad_output, static_cast<Scalar>(attrs_of<ScaleFactor>(c).factor));
}
template <class Scalar>
void add_scalar_backward(BackwardContext<Scalar>& c) {
  c.grad_inputs[0] = c.grad_output;
}

}  // namespace detail
}  // namespace metalearn
