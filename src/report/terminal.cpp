// The terminal: a live progress line while scenarios run, then one block per
// scenario with its checks and the findings of each failure.
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "scxkit/report.hpp"

namespace scxkit {

namespace {

std::string paint(bool color, const char* code, std::string_view text) {
  return color ? fmt::format("\033[{}m{}\033[0m", code, text) : std::string(text);
}

std::string outcome_word(CheckOutcome o, bool color) {
  switch (o) {
    case CheckOutcome::pass:
      return paint(color, "32", "ok");
    case CheckOutcome::fail:
      return paint(color, "1;31", "FAIL");
    case CheckOutcome::skipped:
      return paint(color, "2", "skip");
  }
  return "";
}

class Progress : public RunObserver {
 public:
  Progress(std::FILE* out, bool interactive, std::size_t count)
      : out_(out), interactive_(interactive), count_(count) {}

  void started(const Scenario& s, const std::map<std::string, std::vector<std::string>>&) override {
    ++index_;
    if (interactive_) line(s, 0, 0, 0);
  }
  void progress(const Scenario& s, double elapsed_s, std::uint64_t ops, std::size_t live) override {
    if (interactive_) line(s, elapsed_s, ops, live);
  }
  void step(const Scenario& s, const StepRecord& st) override {
    if (!st.error.empty()) {
      clear();
      fmt::print(out_, "  {}: step at {:.2f} s failed: {}: {}\n", s.name, st.at_s, st.what,
                 st.error);
    }
  }
  void finished(const ScenarioResult& r) override {
    clear();
    std::string failed;
    for (const auto& c : r.checks) {
      if (c.outcome == CheckOutcome::fail) failed += (failed.empty() ? "" : ", ") + c.name;
    }
    fmt::print(out_, "[{}/{}] {:<16} {}  {:.1f} s  {} workers{}\n", index_, count_, r.scenario.name,
               r.passed() ? paint(interactive_, "32", "PASS") : paint(interactive_, "1;31", "FAIL"),
               r.elapsed_s, r.workers.size(),
               !r.error.empty() ? "  (" + r.error + ")"
               : failed.empty() ? std::string()
                                : "  (" + failed + ")");
    std::fflush(out_);
  }

 private:
  void line(const Scenario& s, double elapsed, std::uint64_t ops, std::size_t live) {
    const double total = std::chrono::duration<double>(s.duration).count();
    const int width = 20;
    const int filled = total > 0 ? static_cast<int>(width * std::min(1.0, elapsed / total)) : 0;
    fmt::print(out_, "\r\033[K[{}/{}] {:<16} [{}{}] {:4.1f}/{:.1f} s  {} workers  {} ops", index_,
               count_, s.name, std::string(static_cast<std::size_t>(filled), '#'),
               std::string(static_cast<std::size_t>(width - filled), ' '), elapsed, total, live,
               ops);
    std::fflush(out_);
  }
  void clear() {
    if (interactive_) fmt::print(out_, "\r\033[K");
  }
  std::FILE* out_;
  bool interactive_;
  std::size_t count_, index_ = 0;
};

}  // namespace

std::unique_ptr<RunObserver> terminal_progress(std::FILE* out, bool interactive,
                                               std::size_t scenario_count) {
  return std::make_unique<Progress>(out, interactive, scenario_count);
}

std::string terminal_summary(const RunReport& report, bool color) {
  std::string out =
      fmt::format("scxkit run: {} scenarios on {} (kernel {}), scheduler: {}\n",
                  report.scenarios.size(), report.host, report.kernel, report.scheduler);
  std::size_t passed = 0;
  for (const auto& s : report.scenarios) {
    passed += s.passed() ? 1 : 0;
    out += fmt::format("\n{} {}  ({:.1f} s, {} workers)\n",
                       s.passed() ? paint(color, "32", "PASS") : paint(color, "1;31", "FAIL"),
                       s.scenario.name, s.elapsed_s, s.workers.size());
    if (!s.error.empty()) out += fmt::format("  could not run: {}\n", s.error);
    if (s.machine.busy()) {
      out += fmt::format(
          "  machine busy: {:.1f} runnable tasks outside the scenario on {} CPUs; shares and "
          "wake-up budgets are judged against that\n",
          s.machine.outside, s.machine.cpus);
    }
    if (s.interrupted) out += "  interrupted\n";
    for (const auto& st : s.steps) {
      if (!st.error.empty()) {
        out += fmt::format("  step at {:.2f} s failed: {}: {}\n", st.at_s, st.what, st.error);
      }
    }
    for (const auto& c : s.checks) {
      out += fmt::format("  {:<13} {:<4}  {}\n", c.name, outcome_word(c.outcome, color), c.summary);
      if (c.outcome != CheckOutcome::fail) continue;
      for (const auto& f : c.findings) out += fmt::format("      - {}\n", f);
    }
  }
  if (!report.not_run.empty()) {
    out += fmt::format(
        "\nnot run (the scheduler was gone; they would have run on the default "
        "scheduler): {}\n",
        fmt::join(report.not_run, ", "));
  }
  out += fmt::format("\n{} of {} scenarios passed{}\n", passed,
                     report.scenarios.size() + report.not_run.size(),
                     report.interrupted ? " (interrupted)" : "");
  return out;
}

}  // namespace scxkit
