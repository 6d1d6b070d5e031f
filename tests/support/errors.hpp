// Checks that an expression throws the right metalearn::Error subclass with a message that
// names what went wrong.
#pragma once

#include <initializer_list>
#include <string>

#include "support/catch.hpp"

namespace metalearn::test {

template <class Expected, class F>
void check_throws(F&& f, std::initializer_list<const char*> fragments) {
  try {
    f();
  } catch (const Expected& e) {
    const std::string message = e.what();
    for (const char* fragment : fragments) {
      INFO("message: " << message << "\nexpected to contain: " << fragment);
      CHECK(message.find(fragment) != std::string::npos);
    }
    return;
  } catch (const std::exception& e) {
    FAIL("threw the wrong exception type: " << e.what());
  }
  FAIL("threw nothing");
}

}  // namespace metalearn::test
