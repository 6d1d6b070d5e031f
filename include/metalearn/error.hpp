// SPDX-License-Identifier: MIT
/// @file metalearn/error.hpp
/// Exception hierarchy: every error metalearn throws derives from metalearn::Error.
#pragma once

#include <stdexcept>
#include <string>

namespace metalearn {

/// Base of all metalearn exceptions. Messages start with the qualified function name.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bad user input at an API boundary: shapes, option values, indices.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// Files and parsing.
class IoError : public Error {
 public:
  using Error::Error;
};

/// An API used in the wrong state, e.g. a Var whose tape was reset.
class StateError : public Error {
 public:
  using Error::Error;
};

namespace detail {
/// Thrown by METALEARN_ASSERT when METALEARN_ASSERT_THROWS is defined (tests do this).
class AssertionFailure : public Error {
 public:
  using Error::Error;
};
}  // namespace detail

}  // namespace metalearn
