// Command-line flags shared by the examples: `--key value` or `--key=value`, `--help`.
// An unknown flag, a missing value or an out-of-range value prints a message and exits 2.
#pragma once

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace examples {

class Args {
 public:
  /// `flags`: every flag the program accepts (without dashes); `switches`: those that take
  /// no value (e.g. "quiet").
  Args(int argc, char** argv, std::string usage, std::vector<std::string> flags,
       std::vector<std::string> switches = {})
      : usage_(std::move(usage)) {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        std::cout << usage_;
        std::exit(0);
      }
      if (arg.rfind("--", 0) != 0) bad("unexpected argument '" + arg + "'");
      arg = arg.substr(2);
      std::string value;
      const auto eq = arg.find('=');
      const bool is_switch = contains(switches, arg);
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
      } else if (!is_switch) {
        if (i + 1 >= argc) bad("flag --" + arg + " needs a value");
        value = argv[++i];
      } else {
        value = "1";
      }
      if (!contains(flags, arg) && !contains(switches, arg)) bad("unknown flag --" + arg);
      values_[arg] = value;
    }
  }

  bool has(const std::string& name) const { return values_.count(name) != 0; }

  long get_int(const std::string& name, long fallback, long lo, long hi) const {
    if (!has(name)) return fallback;
    const std::string& s = values_.at(name);
    char* end = nullptr;
    const long v = std::strtol(s.c_str(), &end, 10);
    if (end == s.c_str() || *end != '\0' || v < lo || v > hi)
      bad("--" + name + " must be an integer in [" + std::to_string(lo) + ", " +
          std::to_string(hi) + "], got '" + s + "'");
    return v;
  }

  double get_double(const std::string& name, double fallback, double lo, double hi) const {
    if (!has(name)) return fallback;
    const std::string& s = values_.at(name);
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || *end != '\0' || !std::isfinite(v) || v < lo || v > hi)
      bad("--" + name + " must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) +
          "], got '" + s + "'");
    return v;
  }

  std::string get_string(const std::string& name, const std::string& fallback) const {
    return has(name) ? values_.at(name) : fallback;
  }

  /// A value out of `choices` (exits 2 naming them otherwise).
  std::string get_choice(const std::string& name, const std::string& fallback,
                         const std::vector<std::string>& choices) const {
    const std::string v = get_string(name, fallback);
    if (contains(choices, v)) return v;
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : "|") + c;
    bad("--" + name + " must be " + list + ", got '" + v + "'");
  }

  /// The flags given, as "--key value" lines sorted by key, without those named in
  /// `excluded`: what the trainer records in a checkpoint as the run's configuration.
  std::string config(const std::vector<std::string>& excluded) const {
    std::string out;
    for (const auto& [key, value] : values_)
      if (!contains(excluded, key)) out += "--" + key + " " + value + "\n";
    return out;
  }

  /// Flags that do not go together: the message and the usage, exit code 2.
  [[noreturn]] void bad(const std::string& message) const {
    std::cerr << "error in flags: " << message << "\n\n" << usage_;
    std::exit(2);
  }

 private:
  static bool contains(const std::vector<std::string>& v, const std::string& s) {
    for (const auto& x : v)
      if (x == s) return true;
    return false;
  }

  std::string usage_;
  std::map<std::string, std::string> values_;
};

}  // namespace examples
