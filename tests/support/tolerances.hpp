// Default tolerances of the test suite (STYLE.md §7). Loosen per test only with a comment.
#pragma once

#include <metalearn/autodiff/gradcheck.hpp>

namespace metalearn::test {

struct Tolerance {
  double rel;
  double abs;
};

inline constexpr Tolerance closed_form{1e-10, 1e-12};    // double value vs closed form
inline constexpr Tolerance gradient_fd{1e-5, 1e-7};      // gradient vs central FD (double)
inline constexpr Tolerance second_order_fd{1e-4, 1e-6};  // second order / meta-gradient vs FD
inline constexpr Tolerance float_vs_double{1e-4, 1e-5};  // float implementation vs double

inline GradcheckOptions first_order_options() {
  GradcheckOptions o;
  o.step = 1e-6;
  o.rel_tol = gradient_fd.rel;
  o.abs_tol = gradient_fd.abs;
  return o;
}

inline GradcheckOptions second_order_options() {
  GradcheckOptions o;
  o.step = 1e-5;
  o.rel_tol = second_order_fd.rel;
  o.abs_tol = second_order_fd.abs;
  o.directions = 3;
  return o;
}

}  // namespace metalearn::test
