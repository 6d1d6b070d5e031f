// One-line gradient checks for tests: first and second order against finite differences.
#pragma once

#include <metalearn/autodiff/gradcheck.hpp>
#include <vector>

#include "support/catch.hpp"
#include "support/tolerances.hpp"

namespace metalearn::test {

/// backward() vs central differences, at the default first-order tolerance.
template <class F>
void check_gradients(F f, const std::vector<Tensor<double>>& inputs) {
  const GradcheckResult r = gradcheck(f, inputs, first_order_options());
  INFO(r.message);
  CHECK(r.ok);
}

/// Double-backward Hessian-vector products vs differences of gradients.
template <class F>
void check_second_order(F f, const std::vector<Tensor<double>>& inputs) {
  const GradcheckResult r = gradgradcheck(f, inputs, second_order_options());
  INFO(r.message);
  CHECK(r.ok);
}

}  // namespace metalearn::test
