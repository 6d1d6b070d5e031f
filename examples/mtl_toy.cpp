// examples/mtl_toy.cpp
//
// The two-objective toy problem of CAGrad (Liu et al. 2021) in Nash-MTL's form (Navon et
// al. 2022, Fig. 1: the first loss scaled by 0.1): Adam at 1e-3 from the paper's five
// starting points, each step's direction from a gradient aggregator (ls = the plain sum,
// mgda, pcgrad, cagrad, imtl, nash). Prints where each run ends and whether that is on the
// Pareto set, and writes --svg: each method's trajectories in the loss plane (l1, l2)
// beside the Pareto front, as the papers draw them.
//
//   mtl_toy                    # 35,000 steps per run, about 25 s
//   mtl_toy --steps 2000 --svg toy.svg
//
// Last line: final: ls=<n>/5 mgda=<n>/5 pcgrad=<n>/5 cagrad=<n>/5 imtl=<n>/5 nash=<n>/5
// steps=<n> seconds=<t> (how many of the five runs end on the Pareto set).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <metalearn/metalearn.hpp>
#include <string>
#include <vector>

#include "common/args.hpp"

namespace mtl = metalearn::mtl;

namespace {

struct MethodRuns {
  std::string name;
  std::vector<std::vector<mtl::ToyPoint>> paths;  // in the parameter plane
};

template <class Aggregator>
MethodRuns run_method(const std::string& name, const Aggregator& aggregator,
                      const mtl::TwoObjectiveToy& toy, const mtl::ToyDescentOptions& o) {
  MethodRuns r{name, {}};
  for (const auto& start : toy.starts())
    r.paths.push_back(mtl::toy_descent(toy, aggregator, start, o));
  return r;
}

void write_svg(const std::string& file, const std::vector<MethodRuns>& methods,
               const mtl::TwoObjectiveToy& toy) {
  // The Pareto front as the papers draw it: x1 in [-7, 7] at x2 = front_x2.
  std::vector<mtl::ToyPoint> front;
  for (int i = 0; i <= 100; ++i)
    front.push_back(toy.values({-7.0 + 14.0 * i / 100, mtl::TwoObjectiveToy::front_x2}));
  std::vector<std::vector<std::vector<mtl::ToyPoint>>> losses(methods.size());
  double lo1 = 1e300, hi1 = -1e300, lo2 = 1e300, hi2 = -1e300;
  const auto extend = [&](const mtl::ToyPoint& l) {
    lo1 = std::min(lo1, l[0]);
    hi1 = std::max(hi1, l[0]);
    lo2 = std::min(lo2, l[1]);
    hi2 = std::max(hi2, l[1]);
  };
  for (const auto& l : front) extend(l);
  for (std::size_t m = 0; m < methods.size(); ++m)
    for (const auto& path : methods[m].paths) {
      losses[m].emplace_back();
      for (const auto& p : path) {
        losses[m].back().push_back(toy.values(p));
        extend(losses[m].back().back());
      }
    }
  const double w = 300, h = 260, pad = 24;
  const std::size_t cols = 3, rows = (methods.size() + cols - 1) / cols;
  std::ofstream svg(file);
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << cols * w << "' height='"
      << rows * h + 30 << "'>\n<style>text{font:12px sans-serif}</style>\n";
  const char* colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"};
  for (std::size_t m = 0; m < methods.size(); ++m) {
    const double ox = static_cast<double>(m % cols) * w, oy = static_cast<double>(m / cols) * h;
    const auto px = [&](double l1) { return ox + pad + (l1 - lo1) / (hi1 - lo1) * (w - 2 * pad); };
    const auto py = [&](double l2) { return oy + pad + (hi2 - l2) / (hi2 - lo2) * (h - 2 * pad); };
    svg << "<rect x='" << ox + 2 << "' y='" << oy + 2 << "' width='" << w - 4 << "' height='"
        << h - 4 << "' fill='none' stroke='#ccc'/>\n<text x='" << ox + 8 << "' y='" << oy + 16
        << "'>" << methods[m].name << " (x: l1, y: l2)</text>\n";
    svg << "<polyline fill='none' stroke='#bbb' stroke-width='6' points='";
    for (const auto& l : front) svg << px(l[0]) << ',' << py(l[1]) << ' ';
    svg << "'/>\n";
    for (std::size_t s = 0; s < losses[m].size(); ++s) {
      const auto& path = losses[m][s];
      svg << "<polyline fill='none' stroke='" << colours[s % 5] << "' stroke-width='1.5' points='";
      for (const auto& l : path) svg << px(l[0]) << ',' << py(l[1]) << ' ';
      svg << "'/>\n<circle cx='" << px(path.front()[0]) << "' cy='" << py(path.front()[1])
          << "' r='4' fill='#000'/>\n<circle cx='" << px(path.back()[0]) << "' cy='"
          << py(path.back()[1]) << "' r='3' fill='" << colours[s % 5] << "'/>\n";
    }
  }
  svg << "<text x='10' y='" << rows * h + 20
      << "'>grey: the Pareto front; black dots: the five starts; coloured: each run's losses "
         "until its last step</text>\n</svg>\n";
}

}  // namespace

int main(int argc, char** argv) {
  const examples::Args args{argc,
                            argv,
                            "usage: mtl_toy [--steps N] [--lr X] [--scale X] [--svg FILE] "
                            "[--seed N]\n",
                            {"steps", "lr", "scale", "svg", "seed"}};
  try {
    mtl::ToyDescentOptions o;
    o.steps = args.get_int("steps", 35000, 1, 10000000);
    o.lr = args.get_double("lr", 1e-3, 1e-9, 10.0);
    o.seed = static_cast<std::uint64_t>(args.get_int("seed", 1, 0, 1L << 40));
    mtl::TwoObjectiveToy toy;
    toy.first_scale = args.get_double("scale", 0.1, 1e-6, 1e6);
    const std::string svg = args.get_string("svg", "mtl_toy.svg");

    const auto t0 = std::chrono::steady_clock::now();
    std::vector<MethodRuns> methods;
    methods.push_back(run_method("ls", mtl::SumGradients{}, toy, o));
    methods.push_back(run_method("mgda", mtl::Mgda{}, toy, o));
    methods.push_back(run_method("pcgrad", mtl::PcGrad{}, toy, o));
    methods.push_back(run_method("cagrad", mtl::CaGrad{}, toy, o));
    methods.push_back(run_method("imtl", mtl::ImtlG{}, toy, o));
    methods.push_back(run_method("nash", mtl::NashMtl{}, toy, o));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    std::string summary;
    for (const auto& m : methods) {
      int reached = 0;
      for (const auto& path : m.paths) {
        const auto& end = path.back();
        const auto l = toy.values(end);
        const bool on = mtl::TwoObjectiveToy::on_pareto_set(end);
        reached += on ? 1 : 0;
        std::printf("%-7s from (%5.1f, %5.1f) to (%7.3f, %7.3f)  l1 %7.3f  l2 %8.3f  %s\n",
                    m.name.c_str(), path.front()[0], path.front()[1], end[0], end[1], l[0], l[1],
                    on ? "on the Pareto set" : "off it");
      }
      summary +=
          m.name + "=" + std::to_string(reached) + "/" + std::to_string(m.paths.size()) + " ";
    }
    if (!svg.empty()) {
      write_svg(svg, methods, toy);
      std::printf("wrote %s\n", svg.c_str());
    }
    std::printf("final: %ssteps=%lld seconds=%.1f\n", summary.c_str(),
                static_cast<long long>(o.steps), seconds);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
