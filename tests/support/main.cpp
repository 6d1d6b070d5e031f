// Test runner: prints versions and the base seed, then runs Catch.
#if defined(METALEARN_CATCH3)
#include <catch2/catch_session.hpp>
#else
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#endif
#include <iostream>
#include <metalearn/metalearn.hpp>

#include "support/seed.hpp"

int main(int argc, char* argv[]) {
  Catch::Session session;
  if (const int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  // stderr, not stdout: catch_discover_tests reads the test list from stdout.
  std::cerr << "metalearn " << METALEARN_VERSION_STRING << ", Eigen " << EIGEN_WORLD_VERSION << '.'
            << EIGEN_MAJOR_VERSION << '.' << EIGEN_MINOR_VERSION << ", test seed "
            << metalearn::test::base_seed() << " (set METALEARN_TEST_SEED to change)\n";
  return session.run();
}
