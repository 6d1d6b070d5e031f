// The learning curve of a run as an SVG plot (issue 22: "the learning curve, CSV and an SVG
// plot the example writes"), drawn from the CSV the trainer writes
// (step,seconds,loss,support_loss,metric,grad_norm,validation,validation_ci): validation
// against wall-clock minutes with its 95% band, and the training metric of each logged
// period as a lighter line, so runs of different speed compare on the axis users pay for.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <metalearn/error.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace examples {

struct CurvePoint {
  double minutes = 0, value = 0, ci = 0;
};

/// The training-metric and validation points of a trainer CSV (a resumed run's appended rows
/// included; the header line may repeat).
inline void read_learning_curve(const std::string& csv, std::vector<CurvePoint>& train,
                                std::vector<CurvePoint>& validation) {
  std::ifstream in(csv);
  if (!in) throw metalearn::IoError("write_learning_curve_svg: cannot read '" + csv + "'");
  std::string line;
  // A resumed run appends rows whose seconds start again from 0: they continue the time of
  // the rows before (the steps go on rising).
  double offset = 0, last = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line.rfind("step,", 0) == 0) continue;
    std::vector<std::string> cells;
    std::stringstream row(line);
    for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
    if (line.back() == ',') cells.emplace_back();
    if (cells.size() != 8)
      throw metalearn::IoError("write_learning_curve_svg: '" + csv + "' has a row of " +
                               std::to_string(cells.size()) + " cells, 8 expected: " + line);
    const double seconds = std::stod(cells[1]);
    if (seconds + offset < last) offset = last;
    last = seconds + offset;
    const double minutes = last / 60.0;
    if (!cells[4].empty()) train.push_back({minutes, std::stod(cells[4]), 0});
    if (!cells[6].empty())
      validation.push_back(
          {minutes, std::stod(cells[6]), cells[7].empty() ? 0 : std::stod(cells[7])});
  }
}

inline std::string escaped(const std::string& text) {  // for SVG text
  std::string out;
  for (const char c : text)
    out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return out;
}

/// Writes `svg` from the trainer CSV `csv`: `what` names the metric (e.g. "5-way 1-shot
/// accuracy"), `title` the run.
inline void write_learning_curve_svg(const std::string& csv, const std::string& svg,
                                     const std::string& title, const std::string& what) {
  std::vector<CurvePoint> train, validation;
  read_learning_curve(csv, train, validation);
  double t_max = 1e-9, lo = 1e300, hi = -1e300;
  for (const auto* points : {&train, &validation})
    for (const CurvePoint& p : *points) {
      t_max = std::max(t_max, p.minutes);
      lo = std::min(lo, p.value - p.ci);
      hi = std::max(hi, p.value + p.ci);
    }
  if (lo > hi) lo = 0, hi = 1;  // no rows: an empty frame
  if (hi - lo < 1e-9) hi = lo + 1;
  const double w = 640, h = 400, left = 60, right = 20, top = 40, bottom = 50;
  const auto px = [&](double t) { return left + (w - left - right) * t / t_max; };
  const auto py = [&](double v) { return h - bottom - (h - top - bottom) * (v - lo) / (hi - lo); };
  std::ofstream out(svg);
  if (!out) throw metalearn::IoError("write_learning_curve_svg: cannot write '" + svg + "'");
  char buf[160];
  out << "<svg xmlns='http://www.w3.org/2000/svg' width='" << w << "' height='" << h
      << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' "
         "fill='white'/>\n<text x='"
      << left << "' y='20' font-size='14'>" << escaped(title) << "</text>\n";
  for (int k = 0; k <= 5; ++k) {  // value and time grid
    const double v = lo + (hi - lo) * k / 5, t = t_max * k / 5;
    std::snprintf(buf, sizeof buf,
                  "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>"
                  "<text x='%.1f' y='%.1f' text-anchor='end'>%.3g</text>\n",
                  left, py(v), w - right, py(v), left - 4, py(v) + 4, v);
    out << buf;
    std::snprintf(buf, sizeof buf,
                  "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>"
                  "<text x='%.1f' y='%.1f' text-anchor='middle'>%.3g</text>\n",
                  px(t), top, px(t), h - bottom, px(t), h - bottom + 16, t);
    out << buf;
  }
  out << "<text x='" << (left + w - right) / 2 << "' y='" << h - 12
      << "' text-anchor='middle'>minutes of training</text>\n";
  const auto polyline = [&](const std::vector<CurvePoint>& points, const char* colour,
                            double width) {
    out << "<polyline fill='none' stroke='" << colour << "' stroke-width='" << width
        << "' points='";
    for (const CurvePoint& p : points) {
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", px(p.minutes), py(p.value));
      out << buf;
    }
    out << "'/>\n";
  };
  if (!validation.empty()) {  // the 95% band: upper edge forward, lower edge back
    out << "<polygon fill='#1f77b4' fill-opacity='0.15' stroke='none' points='";
    for (const CurvePoint& p : validation) {
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", px(p.minutes), py(p.value + p.ci));
      out << buf;
    }
    for (auto p = validation.rbegin(); p != validation.rend(); ++p) {
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", px(p->minutes), py(p->value - p->ci));
      out << buf;
    }
    out << "'/>\n";
  }
  polyline(train, "#ff7f0e", 1);
  polyline(validation, "#1f77b4", 2);
  out << "<text x='" << w - right << "' y='" << top - 6 << "' text-anchor='end'>"
      << "<tspan fill='#1f77b4'>validation " << what << " (95% band)</tspan>  "
      << "<tspan fill='#ff7f0e'>training metric</tspan></text>\n</svg>\n";
}

}  // namespace examples
