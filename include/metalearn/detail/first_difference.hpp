// SPDX-License-Identifier: MIT
/// @file metalearn/detail/first_difference.hpp
/// The first line where two texts of lines differ, for messages that name a mismatch
/// (a checkpoint of another model, ranks that disagree).
#pragma once

#include <string>
#include <utility>

namespace metalearn::detail {

/// The first line of `a` and of `b` that differ ("(nothing)" past the end of one); both
/// empty when the texts are equal.
inline std::pair<std::string, std::string> first_difference(const std::string& a,
                                                            const std::string& b) {
  if (a == b) return {};
  std::size_t at = 0;
  while (at < a.size() && at < b.size() && a[at] == b[at]) ++at;
  at = at == 0 ? 0 : a.rfind('\n', at - 1) + 1;  // the start of that line (npos + 1 == 0)
  const auto line = [at](const std::string& s) {
    return at >= s.size() ? std::string("(nothing)") : s.substr(at, s.find('\n', at) - at);
  };
  return {line(a), line(b)};
}

}  // namespace metalearn::detail
