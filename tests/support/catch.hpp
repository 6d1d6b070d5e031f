// Test-only shim: Catch2 v2 (Debian's 2.13, one header) or v3 (split headers).
// Test files include this, never Catch directly.
#pragma once
#if defined(METALEARN_CATCH3)
#include <catch2/catch_approx.hpp>
#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>
using Catch::Approx;
#else
#include <catch2/catch.hpp>
#endif
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
