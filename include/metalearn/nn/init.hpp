// SPDX-License-Identifier: MIT
/// @file metalearn/nn/init.hpp
/// Weight initialisers. All draw through metalearn's own distribution helpers, so the same
/// seed gives the same weights on every platform.
#pragma once

#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <string>

namespace metalearn::nn::init {

namespace detail {
inline void require_positive(const char* what, double v) {
  if (!(v > 0))
    throw InvalidArgument(std::string("metalearn::nn::init::") + what + ": expected a positive " +
                          "fan or standard deviation, got " + std::to_string(v));
}
}  // namespace detail

/// Every entry U[lo, hi).
template <class Scalar>
void uniform(Tensor<Scalar>& t, double lo, double hi, Rng& rng) {
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = static_cast<Scalar>(metalearn::uniform(rng, lo, hi));
}

/// Every entry N(mean, std^2).
template <class Scalar>
void normal(Tensor<Scalar>& t, double mean, double std, Rng& rng) {
  detail::require_positive("normal", std);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = static_cast<Scalar>(metalearn::normal(rng, mean, std));
}

/// N(mean, std^2) redrawn until within [mean + a std, mean + b std] (default +-2 std, the
/// usual truncated normal of TensorFlow and Finn's MAML code).
template <class Scalar>
void truncated_normal(Tensor<Scalar>& t, double mean, double std, Rng& rng, double a = -2.0,
                      double b = 2.0) {
  detail::require_positive("truncated_normal", std);
  if (!(a < b)) throw InvalidArgument("metalearn::nn::init::truncated_normal: need a < b");
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    double z = metalearn::normal(rng);
    while (z < a || z > b) z = metalearn::normal(rng);
    t.data()[i] = static_cast<Scalar>(mean + std * z);
  }
}

/// Every entry `value`.
template <class Scalar>
void constant(Tensor<Scalar>& t, double value) {
  t.array().setConstant(static_cast<Scalar>(value));
}

/// He et al. 2015: U[-b, b] with b = gain sqrt(3 / fan_in); gain sqrt(2) suits ReLU.
template <class Scalar>
void kaiming_uniform(Tensor<Scalar>& t, double fan_in, Rng& rng, double gain = std::sqrt(2.0)) {
  detail::require_positive("kaiming_uniform", fan_in);
  const double bound = gain * std::sqrt(3.0 / fan_in);
  uniform(t, -bound, bound, rng);
}

/// He et al. 2015: N(0, gain^2 / fan_in).
template <class Scalar>
void kaiming_normal(Tensor<Scalar>& t, double fan_in, Rng& rng, double gain = std::sqrt(2.0)) {
  detail::require_positive("kaiming_normal", fan_in);
  normal(t, 0.0, gain / std::sqrt(fan_in), rng);
}

/// Glorot & Bengio 2010: U[-b, b] with b = gain sqrt(6 / (fan_in + fan_out)).
template <class Scalar>
void xavier_uniform(Tensor<Scalar>& t, double fan_in, double fan_out, Rng& rng, double gain = 1.0) {
  detail::require_positive("xavier_uniform", fan_in + fan_out);
  const double bound = gain * std::sqrt(6.0 / (fan_in + fan_out));
  uniform(t, -bound, bound, rng);
}

/// Glorot & Bengio 2010: N(0, gain^2 2 / (fan_in + fan_out)).
template <class Scalar>
void xavier_normal(Tensor<Scalar>& t, double fan_in, double fan_out, Rng& rng, double gain = 1.0) {
  detail::require_positive("xavier_normal", fan_in + fan_out);
  normal(t, 0.0, gain * std::sqrt(2.0 / (fan_in + fan_out)), rng);
}

}  // namespace metalearn::nn::init
