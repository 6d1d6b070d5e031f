// SPDX-License-Identifier: MIT
/// @file metalearn/autodiff/grad.hpp
/// Reverse-mode differentiation: `grad`, `vjp`, `jvp`, `hvp`.
#pragma once

#include <algorithm>
#include <cstdint>
#include <metalearn/autodiff/detail/op_support.hpp>
#include <metalearn/autodiff/ops/arithmetic.hpp>
#include <metalearn/autodiff/var.hpp>
#include <metalearn/config.hpp>
#include <string>
#include <vector>

namespace metalearn {

/// Options of `grad`.
struct GradOptions {
  /// Record the backward computation as ordinary nodes, so the gradients can be
  /// differentiated again (second-order MAML, Hessian-vector products). Off: the same
  /// backward rules run without recording, which is cheaper.
  bool create_graph = false;
  /// An input that the output does not depend on gets a zero gradient instead of an
  /// InvalidArgument. Off by default: a silently zero meta-gradient is a classic bug.
  bool allow_unused = false;
};

namespace detail {

/// Restores a tape's recording flag on scope exit (also when a backward rule throws).
template <class Scalar>
class RecordingScope {
 public:
  RecordingScope(TapeStorage<Scalar>& t, bool on) : t_(t), was_(t.recording()) {
    t_.set_recording(was_ && on);
  }
  ~RecordingScope() { t_.set_recording(was_); }
  RecordingScope(const RecordingScope&) = delete;
  RecordingScope& operator=(const RecordingScope&) = delete;

 private:
  TapeStorage<Scalar>& t_;
  bool was_;
};

/// The values node i's rule does not declare are sealed while it runs (seal_undeclared).
template <class Scalar>
class Sealed {
 public:
  Sealed(TapeStorage<Scalar>& t, std::int32_t i, std::int32_t keep) : t_(t), i_(i) {
    t_.seal_undeclared(i_, keep);
  }
  ~Sealed() { t_.unseal(i_); }
  Sealed(const Sealed&) = delete;
  Sealed& operator=(const Sealed&) = delete;

 private:
  TapeStorage<Scalar>& t_;
  std::int32_t i_;
};

/// Empties a sweep's scratch vectors when it ends (normally or by a throwing rule), so the
/// Vars in them let their values go.
template <class T>
struct ClearOnExit {
  std::vector<T>& a;
  std::vector<T>& b;
  ~ClearOnExit() {
    a.clear();
    b.clear();
  }
};

/// The reverse sweep: walks the tape backwards from y, once, without recursion.
template <class Scalar>
void reverse_sweep(const Var<Scalar>& y, const std::vector<Var<Scalar>>& xs,
                   const Var<Scalar>& seed, const GradOptions& options,
                   std::vector<Var<Scalar>>& out) {
  TapeStorage<Scalar>& t = y.tape();
  const std::int32_t last = y.index();
  std::int32_t first = last;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    if (&xs[k].tape() != &t)
      throw InvalidArgument("metalearn::grad: input " + std::to_string(k) +
                            " is recorded on another thread's tape than the output");
    first = std::min(first, xs[k].index());
  }

  // reaches[i - first]: node i lies on a path from some requested input (a forward pass
  // over the tape, so the sweep below skips everything that cannot contribute).
  const std::size_t span = static_cast<std::size_t>(last - first + 1);
  std::vector<Reach>& reaches = t.reach_scratch();
  reaches.assign(span, Reach::unreached);
  for (const auto& x : xs)
    if (x.index() <= last) reaches[x.index() - first] = Reach::requested;
  for (std::int32_t i = first; i <= last; ++i) {
    const Node<Scalar>& n = t.node(i);
    if (reaches[i - first] != Reach::unreached || n.rule == nullptr) continue;
    for (std::int32_t k = 0; k < n.n_inputs; ++k)
      if (n.inputs[k] >= first && reaches[n.inputs[k] - first] != Reach::unreached) {
        reaches[i - first] = Reach::on_path;
        break;
      }
  }

  // The adjoints are Vars, so they hold their values like any Var: each is let go once its
  // node's rule has consumed it (unless it is a requested result), and freed then unless a
  // recorded rule reads it (PyTorch frees a gradient buffer once consumed; without this the
  // last sweep of a meta-gradient was half of a second-order MAML task's peak memory).
  std::vector<Var<Scalar>>& adjoint = t.adjoint_scratch();
  adjoint.assign(span, Var<Scalar>());
  std::vector<Var<Scalar>>& input_grads = t.input_grad_scratch();
  const ClearOnExit<Var<Scalar>> clear_scratch{adjoint, input_grads};  // capacity, not values
  if (reaches[last - first] != Reach::unreached) {
    adjoint[last - first] = seed;
    RecordingScope<Scalar> recording(t, options.create_graph);
    for (std::int32_t i = last; i >= first; --i) {
      if (!adjoint[i - first].is_assigned() || reaches[i - first] == Reach::unreached) continue;
      const OpRule<Scalar>* rule = t.node(i).rule;
      if (rule == nullptr) continue;  // a leaf
      // One rule per op: the differentiable one when recorded, the fused one (if the op has
      // one) when not; the op never asks which.
      const BackwardFn<Scalar> backward =
          rule->fused != nullptr && !t.recording() ? rule->fused : rule->backward;
      const std::int32_t n_inputs = t.node(i).n_inputs;
      input_grads.assign(static_cast<std::size_t>(n_inputs), Var<Scalar>());
      Var<Scalar> g_out = reaches[i - first] == Reach::requested
                              ? adjoint[i - first]
                              : std::move(adjoint[i - first]);  // consumed here
      BackwardContext<Scalar> ctx{t,    i, std::move(g_out), input_grads.data(), reaches.data(),
                                  first};
      bool any_needed = false;  // false for a requested input that is not a leaf
      for (std::int32_t k = 0; k < n_inputs; ++k) any_needed |= ctx.needed(k);
      if (!any_needed) continue;
      {
        const Sealed<Scalar> sealed(t, i, ctx.grad_output.index());
        backward(ctx);
      }
      for (std::int32_t k = 0; k < n_inputs; ++k) {
        if (!ctx.needed(k)) continue;
        const std::int32_t j = t.node(i).inputs[k];
        Var<Scalar>& g = input_grads[k];
        METALEARN_ASSERT(g.is_assigned(), "a backward rule left a needed input gradient unset");
        METALEARN_ASSERT(g.shape() == t.node(j).shape, "a backward rule returned a wrong shape");
        Var<Scalar>& acc = adjoint[j - first];
        acc = acc.is_assigned() ? add(acc, g) : std::move(g);
      }
    }
  }

  out.clear();
  for (std::size_t k = 0; k < xs.size(); ++k) {
    const Var<Scalar>& x = xs[k];
    if (x.index() <= last && adjoint[x.index() - first].is_assigned()) {
      out.push_back(adjoint[x.index() - first]);
    } else if (options.allow_unused) {
      auto zero = record_constant(y, x.shape());
      std::fill(zero.data, zero.data + x.numel(), Scalar(0));
      out.push_back(zero.var);
    } else {
      throw InvalidArgument("metalearn::grad: input " + std::to_string(k) + " (shape " +
                            x.shape().to_string() + ", op '" + x.op() +
                            "') is not used to compute the output; set allow_unused to get a "
                            "zero gradient");
    }
  }
}

template <class Scalar>
Var<Scalar> ones_like(const Var<Scalar>& y) {
  auto one = record_constant(y, y.shape());
  std::fill(one.data, one.data + y.numel(), Scalar(1));
  return one.var;
}

}  // namespace detail

/// Gradients of a one-element `y` with respect to each of `xs`, in order. Functional:
/// nothing accumulates anywhere; the results are Vars on the same tape. With
/// `create_graph` they can be differentiated again, to any order.
///
/// Throws InvalidArgument if y has more than one element (use the cotangent overload), or
/// if y does not depend on some input and `allow_unused` is off.
template <class Scalar>
std::vector<Var<Scalar>> grad(const Var<Scalar>& y, const std::vector<Var<Scalar>>& xs,
                              const GradOptions& options = {}) {
  std::vector<Var<Scalar>> out;
  grad(y, xs, out, options);
  return out;
}

/// Same, writing into `out` (reusing its capacity: no allocation in a warm loop).
template <class Scalar>
void grad(const Var<Scalar>& y, const std::vector<Var<Scalar>>& xs, std::vector<Var<Scalar>>& out,
          const GradOptions& options = {}) {
  if (y.numel() != 1)
    throw InvalidArgument("metalearn::grad: the output has shape " + y.shape().to_string() +
                          "; pass a cotangent of that shape (vjp) for a non-scalar output");
  detail::reverse_sweep(y, xs, detail::ones_like(y), options, out);
}

/// Vector-Jacobian product: cotangent^T dy/dx for each x, for `y` of any shape.
/// `cotangent` must have y's shape; it may itself depend on leaves (then, with
/// create_graph, the result is differentiable in it too).
template <class Scalar>
std::vector<Var<Scalar>> vjp(const Var<Scalar>& y, const std::vector<Var<Scalar>>& xs,
                             const Var<Scalar>& cotangent, const GradOptions& options = {}) {
  if (cotangent.shape() != y.shape())
    throw InvalidArgument(detail::shapes_message(
        "vjp", "the cotangent must have the output's shape", y.shape(), cotangent.shape()));
  std::vector<Var<Scalar>> out;
  detail::reverse_sweep(y, xs, cotangent, options, out);
  return out;
}

namespace detail {
template <class Scalar>
Var<Scalar> dot_all(const std::vector<Var<Scalar>>& a, const std::vector<Var<Scalar>>& b,
                    const char* op) {
  if (a.size() != b.size())
    throw InvalidArgument(std::string("metalearn::") + op + ": " + std::to_string(a.size()) +
                          " inputs but " + std::to_string(b.size()) + " directions");
  Var<Scalar> total;
  for (std::size_t k = 0; k < a.size(); ++k) {
    if (a[k].shape() != b[k].shape())
      throw InvalidArgument(
          shapes_message(op, "direction must match its input", a[k].shape(), b[k].shape()));
    const Var<Scalar> d = sum_to(mul(a[k], b[k]), Shape{});
    total = total.is_assigned() ? add(total, d) : d;
  }
  return total;
}
}  // namespace detail

/// Hessian-vector product of a one-element `y`: H v, where H is the Hessian of y with
/// respect to `xs` and `vs` one direction per input (double backward: the gradient is
/// recorded, then differentiated along v).
template <class Scalar>
std::vector<Var<Scalar>> hvp(const Var<Scalar>& y, const std::vector<Var<Scalar>>& xs,
                             const std::vector<Var<Scalar>>& vs, const GradOptions& options = {}) {
  GradOptions first = options;
  first.create_graph = true;
  const std::vector<Var<Scalar>> g = grad(y, xs, first);
  return grad(detail::dot_all(g, vs, "hvp"), xs, options);
}

/// Jacobian-vector product (forward-mode result from two reverse sweeps): dy/dx u, shape
/// of y. Uses the identity J u = d/dw [w^T J u] = d/dw <vjp(w), u> with a dummy cotangent w.
template <class Scalar>
Var<Scalar> jvp(const Var<Scalar>& y, const std::vector<Var<Scalar>>& xs,
                const std::vector<Var<Scalar>>& us, const GradOptions& options = {}) {
  auto w = detail::record_constant(y, y.shape());
  std::fill(w.data, w.data + y.numel(), Scalar(0));
  detail::TapeStorage<Scalar>& t = y.tape();
  t.node(w.var.index()).is_leaf = true;  // a leaf, so the first sweep is recorded in w
  GradOptions first = options;
  first.create_graph = true;
  const std::vector<Var<Scalar>> g = vjp(y, xs, w.var, first);
  GradOptions second = options;
  second.allow_unused = true;  // y linear in w: a zero Jacobian leaves w unused
  return grad(detail::dot_all(g, us, "jvp"), {w.var}, second)[0];
}

}  // namespace metalearn
