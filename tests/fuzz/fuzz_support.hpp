// What the fuzz harnesses share: the input as a file (the loaders read files), and the rule
// that a metalearn::Error is the expected answer to bad input; anything else (a crash, a
// sanitizer report, another exception) is a finding.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <metalearn/error.hpp>
#include <string>

namespace fuzz {

/// A private scratch folder for this process.
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    auto d =
        std::filesystem::temp_directory_path() / ("metalearn_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::string write_input(const std::string& name, const std::uint8_t* data,
                               std::size_t size) {
  const auto path = scratch() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path.string();
}

template <class F>
void expect_clean_error(F f) {
  try {
    f();
  } catch (const metalearn::Error&) {
    // The documented answer to bad input.
  }
}

}  // namespace fuzz
