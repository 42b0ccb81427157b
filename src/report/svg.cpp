#include "report/svg.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

namespace scxkit::internal {

namespace {

constexpr int kWidth = 760;
constexpr int kLeft = 150, kRight = 40;
constexpr int kPlotW = kWidth - kLeft - kRight;

std::string svg_open(int height, std::string_view label) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "role=\"img\" aria-label=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n",
      kWidth, height, kWidth, height, escape_html(label));
}

std::string text(double x, double y, std::string_view s, std::string_view extra = "") {
  return fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" {}>{}</text>\n", x, y, extra, escape_html(s));
}

// Cgroups get colours in order of first appearance.
std::map<std::string, std::size_t> cgroup_index(const ScenarioResult& s) {
  std::map<std::string, std::size_t> idx;
  for (const auto& w : s.workers) idx.try_emplace(w.cgroup, idx.size());
  return idx;
}

std::string cgroup_label(const std::string& c) {
  return c.empty() ? "(root)" : c;
}

}  // namespace

std::string escape_html(std::string_view t) {
  std::string out;
  for (char c : t) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string series_color(std::size_t i) {
  static const char* kColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2",
                                  "#edc948", "#ff9da7", "#9c755f", "#bab0ac", "#e15759"};
  return kColors[i % std::size(kColors)];
}

std::string cpu_share_chart(const ScenarioResult& s) {
  const int row = 18, top = 24;
  const int height = top + row * static_cast<int>(s.workers.size()) + 30;
  double max_share = 1.0;
  for (const auto& w : s.workers) max_share = std::max(max_share, w.cpu_share());
  const auto colors = cgroup_index(s);
  std::string out = svg_open(height, "CPU share per worker");
  out += text(kLeft, 14, "share of one CPU over each worker's run (colour: cgroup)",
              "font-weight=\"bold\"");
  for (double tick = 0; tick <= max_share + 1e-9; tick += 0.25) {
    const double x = kLeft + kPlotW * tick / max_share;
    out +=
        fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#ddd\"/>\n",
                    x, top - 4, height - 24);
    out += text(x - 8, height - 10, fmt::format("{:.0f}%", tick * 100));
  }
  for (std::size_t i = 0; i < s.workers.size(); ++i) {
    const auto& w = s.workers[i];
    const double y = top + row * static_cast<double>(i);
    const double len = kPlotW * w.cpu_share() / max_share;
    out += text(4, y + 12, fmt::format("{} [{}]", w.name, cgroup_label(w.cgroup)));
    out += fmt::format(
        "<rect x=\"{}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{}\" fill=\"{}\">"
        "<title>{}: {:.1f}% of a CPU, {} ops</title></rect>\n",
        kLeft, y + 2, std::max(len, 0.5), row - 5, series_color(colors.at(w.cgroup)),
        escape_html(w.name), 100 * w.cpu_share(), w.ops);
    out +=
        text(kLeft + len + 4, y + 12, fmt::format("{:.1f}%", 100 * w.cpu_share()), "fill=\"#333\"");
  }
  return out + "</svg>\n";
}

std::string wake_latency_chart(const ScenarioResult& s) {
  std::vector<const WorkerResult*> sleepers;
  for (const auto& w : s.workers) {
    if (w.wake.count > 0) sleepers.push_back(&w);
  }
  if (sleepers.empty()) return "";
  const int top = 24, plot_h = 180, legend_row = 14;
  const int height = top + plot_h + 30 + legend_row * static_cast<int>(sleepers.size());
  // x: log10 of microseconds, from 1 us to the largest bucket.
  double max_us = 10;
  for (const auto* w : sleepers) max_us = std::max(max_us, w->wake.max_us);
  const double lo = -0.5, hi = std::ceil(std::log10(max_us));
  auto xpos = [&](double us) {
    return kLeft + kPlotW * (std::log10(std::max(us, 0.3)) - lo) / (hi - lo);
  };
  double max_frac = 0;
  for (const auto* w : sleepers) {
    for (const auto& [us, n] : w->wake.buckets) {
      max_frac = std::max(max_frac, static_cast<double>(n) / static_cast<double>(w->wake.count));
    }
  }
  auto ypos = [&](double frac) { return top + plot_h - plot_h * frac / max_frac; };
  std::string out = svg_open(height, "wake-up latency distribution");
  out += text(kLeft, 14, "wake-up latency: share of each worker's wake-ups per bucket (log scale)",
              "font-weight=\"bold\"");
  const char* units[] = {"1us", "10us", "100us", "1ms", "10ms", "100ms", "1s", "10s"};
  for (int d = 0; d <= static_cast<int>(hi) && d < 8; ++d) {
    const double x = xpos(std::pow(10, d));
    out +=
        fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#ddd\"/>\n",
                    x, top, top + plot_h);
    out += text(x - 10, top + plot_h + 14, units[d]);
  }
  out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#999\"/>\n", kLeft,
                     top + plot_h, kLeft + kPlotW);
  out += text(4, top + 10, fmt::format("{:.0f}% of wake-ups", 100 * max_frac));
  out += text(4, top + plot_h, "0");
  for (std::size_t i = 0; i < sleepers.size(); ++i) {
    const auto* w = sleepers[i];
    std::string points;
    for (const auto& [us, n] : w->wake.buckets) {
      points += fmt::format("{:.1f},{:.1f} ", xpos(us),
                            ypos(static_cast<double>(n) / static_cast<double>(w->wake.count)));
    }
    out +=
        fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>\n",
                    points, series_color(i));
    const double p99 = xpos(w->wake.p99_us);
    out += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"{3}\" "
        "stroke-dasharray=\"3,3\"><title>{4} p99 {5:.0f} us</title></line>\n",
        p99, top, top + plot_h, series_color(i), escape_html(w->name), w->wake.p99_us);
    const double ly = top + plot_h + 30 + legend_row * static_cast<double>(i);
    out += fmt::format("<rect x=\"{}\" y=\"{:.1f}\" width=\"10\" height=\"3\" fill=\"{}\"/>\n",
                       kLeft, ly - 4, series_color(i));
    out +=
        text(kLeft + 14, ly,
             fmt::format("{}: {} wake-ups, p50 {:.0f} us, p99 {:.0f} us (dashed), max {:.0f} us",
                         w->name, w->wake.count, w->wake.p50_us, w->wake.p99_us, w->wake.max_us));
  }
  return out + "</svg>\n";
}

std::string timeline_chart(const ScenarioResult& s) {
  const int top = 24, plot_h = 160;
  struct Mark {
    double at;
    std::string label;
    bool failure;
  };
  std::vector<Mark> marks;
  for (const auto& st : s.steps) marks.push_back({st.at_s, st.what, !st.error.empty()});
  for (const auto& c : s.checks) {
    if (c.outcome == CheckOutcome::fail && c.at_s)
      marks.push_back({*c.at_s, c.name + " failed", true});
  }
  for (const auto& l : s.kernel_lines) marks.push_back({l.at_s, "kernel: " + l.kind, true});
  const int label_rows = static_cast<int>(marks.size());
  const int height = top + plot_h + 24 + 14 * label_rows + 8;
  const double span =
      std::max(s.elapsed_s, std::chrono::duration<double>(s.scenario.duration).count());
  auto xpos = [&](double t) { return kLeft + kPlotW * std::clamp(t / span, 0.0, 1.0); };
  double max_share = 1.0;
  for (const auto& w : s.workers) {
    for (double v : w.cpu_share_timeline) max_share = std::max(max_share, v);
  }
  auto ypos = [&](double v) { return top + plot_h - plot_h * v / max_share; };
  std::string out = svg_open(height, "timeline of CPU share, steps and failures");
  out += text(kLeft, 14,
              "timeline: each worker's CPU share per sample; steps (grey) and failures (red)",
              "font-weight=\"bold\"");
  out += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#ccc\"/>\n", kLeft,
      top, kPlotW, plot_h);
  out += text(4, top + 10, fmt::format("{:.0f}% of a CPU", 100 * max_share));
  out += text(4, top + plot_h, "0");
  for (int t = 0; t <= static_cast<int>(span); ++t) {
    out += text(xpos(t) - 4, top + plot_h + 14, fmt::format("{}s", t));
  }
  for (std::size_t i = 0; i < s.workers.size(); ++i) {
    const auto& w = s.workers[i];
    std::string points;
    for (std::size_t k = 0; k < w.cpu_share_timeline.size(); ++k) {
      const double t = w.start_s + s.sample_interval_s * static_cast<double>(k + 1);
      points += fmt::format("{:.1f},{:.1f} ", xpos(std::min(t, w.start_s + w.active_s)),
                            ypos(w.cpu_share_timeline[k]));
    }
    out += fmt::format(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.2\" "
        "opacity=\"0.85\"><title>{}</title></polyline>\n",
        points, series_color(i), escape_html(w.name));
  }
  for (std::size_t i = 0; i < marks.size(); ++i) {
    const auto& m = marks[i];
    const double x = xpos(m.at);
    const char* color = m.failure ? "#d62728" : "#888";
    out += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"{3}\" "
        "stroke-dasharray=\"{4}\"/>\n",
        x, top, top + plot_h + 24 + 14.0 * static_cast<double>(i) - 10, color,
        m.failure ? "none" : "4,3");
    // Labels right of the middle end at their line, so none runs off the plot.
    const bool right = x > kLeft + kPlotW / 2.0;
    out += text(right ? x - 3 : x + 3, top + plot_h + 24 + 14 * static_cast<double>(i),
                fmt::format("{:.2f} s  {}", m.at, m.label),
                fmt::format("fill=\"{}\"{}", color, right ? " text-anchor=\"end\"" : ""));
  }
  return out + "</svg>\n";
}

}  // namespace scxkit::internal
