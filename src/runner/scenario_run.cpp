// One scenario: its run cgroup and cgroups, its workers forked behind a start
// barrier and placed, its steps applied on time, samples taken, the kernel log
// watched; then every worker killed and reaped, every cgroup removed, and the
// results judged by the checks.
#include "runner/scenario_run.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "runner/worker_results.hpp"
#include "scxkit/checks.hpp"
#include "workload/progress.hpp"
#include "workload/worker_process.hpp"

namespace scxkit::internal {

namespace {

using std::chrono::milliseconds;
constexpr milliseconds kTeardownTimeout{5000};
constexpr milliseconds kReadyTimeout{10000};
const std::string kRootCgroup = "_root";  // the scenario's "" cgroup; '_' names are the runner's

std::size_t workers_needed(const Scenario& s) {
  std::size_t n = 0;
  for (const auto& w : s.workers) n += static_cast<std::size_t>(w.count);
  for (const auto& st : s.steps) {
    if (const auto* sp = std::get_if<SpawnWorkers>(&st.action)) {
      n += static_cast<std::size_t>(sp->worker.count);
    }
  }
  return n;
}

CgroupControllers controllers_needed(const Scenario& s) {
  auto needs = CgroupControllers::none;
  auto consider = [&](const CgroupSpec& c) {
    if (c.cpus) needs = needs | CgroupControllers::cpuset;
    if (c.weight) needs = needs | CgroupControllers::cpu;
  };
  for (const auto& c : s.cgroups) consider(c);
  for (const auto& st : s.steps) {
    if (const auto* a = std::get_if<AddCgroup>(&st.action)) consider(a->cgroup);
    if (std::holds_alternative<SetCpus>(st.action) || std::holds_alternative<SwapCpus>(st.action)) {
      needs = needs | CgroupControllers::cpuset;
    }
  }
  return needs;
}

// RT throttling keeps a SCHED_FIFO hog from taking a CPU entirely; without it
// the runner refuses real-time workers.
Result<void> rt_throttling_on() {
  std::ifstream in("/proc/sys/kernel/sched_rt_runtime_us");
  long long runtime = 0;
  if (!(in >> runtime)) return {};  // not exposed here: RLIMIT_RTTIME still bounds the hog
  if (runtime < 0) {
    return make_error(Errc::unsupported,
                      "real-time throttling is off (/proc/sys/kernel/sched_rt_runtime_us is -1): "
                      "a SCHED_FIFO worker could hold its CPU; set it to 950000 to run this "
                      "scenario");
  }
  return {};
}

class ScenarioRun {
 public:
  ScenarioRun(const Scenario& s, const RunContext& ctx) : s_(s), ctx_(ctx) {
    result_.scenario = s;
    result_.sample_interval_s = std::chrono::duration<double>(ctx.sample_interval).count();
  }

  ScenarioResult run() {
    if (auto ok = setup(); !ok) {
      result_.error = ok.error().message;
    } else {
      if (auto ok2 = timeline(); !ok2) result_.error = ok2.error().message;
    }
    finish_workers();
    if (auto ok = teardown(); !ok && result_.error.empty()) result_.error = ok.error().message;
    collect();
    return std::move(result_);
  }

 private:
  struct CgroupState {
    Cgroup cg;
    std::optional<CpuSet> cpus;
  };
  struct Instance {
    WorkerSpec spec;
    std::string name;
    std::size_t slot = 0;
    pid_t pid = -1;
    std::string cgroup;
    std::optional<CpuSet> affinity;
    int nice = 0;
    bool running = false;
    double start_s = 0, stop_s = 0;
    std::uint64_t released_ns = 0;
    TaskStats last;
    double last_sample_s = 0;
    std::vector<double> timeline;
    std::map<std::uint32_t, PlacementEpoch> epochs;
  };
  struct Event {
    Millis at;
    int order;  // starts, then steps, then stops, at equal times
    std::size_t index;
  };

  double now_s() const { return static_cast<double>(monotonic_ns() - t0_ns_) / 1e9; }
  SharedStats stats() const { return region_->stats(); }

  Result<void> setup() {
    auto needs = controllers_needed(s_);
    bool rt = false;
    for (const auto& w : s_.workers) rt |= w.rt_priority > 0;
    if (rt) {
      if (auto ok = rt_throttling_on(); !ok) return ok;
    }
    // The run cgroup weighs as much as its workers would as top-level nice-0
    // tasks, so the scenario competes with the rest of the machine as its
    // tasks would without cgroups (not as one task), where a cpu controller
    // exists. Not with real-time workers: under RT group scheduling a cpu
    // cgroup without RT runtime refuses SCHED_FIFO.
    const bool weigh_run = ctx_.layout->for_controller("cpu") != nullptr && !rt;
    if (weigh_run) needs = needs | CgroupControllers::cpu;
    auto region = SharedRegion::map(workers_needed(s_));
    if (!region) return tl::unexpected(region.error());
    region_.emplace(std::move(*region));
    auto group = ProcessGroup::create();
    if (!group) return tl::unexpected(group.error());
    group_.emplace(std::move(*group));
    auto run = Cgroup::create_run(*ctx_.layout, ctx_.cgroup_parent, needs);
    if (!run) {
      return make_error(run.error().code, fmt::format("cannot create the scenario's cgroup: {}",
                                                      run.error().message));
    }
    run_cg_.emplace(std::move(*run));
    if (weigh_run) {
      const auto weight = std::clamp<std::size_t>(100 * workers_needed(s_), 100, 10000);
      if (auto ok = run_cg_->set_cpu_weight(static_cast<unsigned>(weight)); !ok) return ok;
      // The parent holding the runs must weigh as much too, or the whole
      // run weighs one task against the machine (see weigh_cgroup_runs).
      weighed_ = true;
      if (auto ok = weigh_cgroup_runs(*ctx_.layout, ctx_.cgroup_parent); !ok) {
        return tl::unexpected(ok.error());
      }
    }
    if (auto ok = add_cgroup({kRootCgroup, {}, {}}, ""); !ok) return ok;
    for (const auto& c : s_.cgroups) {
      if (auto ok = add_cgroup(c, c.name); !ok) return ok;
    }
    if (!ctx_.kernel_log.empty()) {
      auto watch = KernelLogWatch::open(ctx_.kernel_log, s_.thresholds.kernel_patterns);
      if (watch) kmsg_.emplace(std::move(*watch));
    }
    return {};
  }

  Result<void> add_cgroup(const CgroupSpec& c, const std::string& key) {
    auto cg = run_cg_->create_child(key.empty() ? kRootCgroup : c.name);
    if (!cg) return tl::unexpected(cg.error());
    if (c.cpus) {
      if (auto ok = cg->set_cpus(c.cpus->to_string()); !ok) return ok;
    }
    if (c.weight) {
      if (auto ok = cg->set_cpu_weight(static_cast<unsigned>(*c.weight)); !ok) return ok;
    }
    cgroups_.emplace(key, CgroupState{std::move(*cg), c.cpus});
    return {};
  }

  CpuSet allowed_for(const Instance& inst) const {
    const auto& cpus = cgroups_.at(inst.cgroup).cpus;
    const CpuSet cg = cpus ? *cpus : ctx_.host;
    const CpuSet both = inst.affinity ? (cg & *inst.affinity) : cg;
    return both.empty() ? cg : both;  // the kernel falls back to the cpuset
  }

  // Records that `inst` runs under epoch `e` with `allowed` from now on.
  void enter_epoch(Instance& inst, std::uint32_t e, const CpuSet& allowed) {
    e = std::min<std::uint32_t>(e, WorkerSlot::kEpochs - 1);
    auto [it, fresh] = inst.epochs.try_emplace(e, PlacementEpoch{now_s(), allowed, {}});
    if (!fresh) it->second.allowed = it->second.allowed | allowed;  // the shared last epoch
  }

  // A placement change: the model changes first, then a transition epoch that
  // allows old and new CPUs covers the moment the kernel moves the tasks, then
  // the new epoch allows only the new ones. On failure the model is restored.
  Result<void> change_placement(const std::function<void()>& model_change,
                                const std::function<void()>& model_undo,
                                const std::function<Result<void>()>& apply) {
    std::map<Instance*, CpuSet> before;
    for (auto& inst : instances_) {
      if (inst.running) before[&inst] = allowed_for(inst);
    }
    model_change();
    auto& epoch = stats().header().epoch;
    const std::uint32_t transition = epoch.load() + 1;
    for (auto& [inst, old] : before) enter_epoch(*inst, transition, old | allowed_for(*inst));
    epoch.store(transition, std::memory_order_release);
    auto ok = apply();
    if (!ok) model_undo();
    for (auto& [inst, old] : before) enter_epoch(*inst, transition + 1, allowed_for(*inst));
    epoch.store(transition + 1, std::memory_order_release);
    return ok;
  }

  std::vector<Instance*> instances_of(const std::string& spec) {
    std::vector<Instance*> out;
    for (auto& inst : instances_) {
      if (inst.spec.name == spec && inst.running) out.push_back(&inst);
    }
    return out;
  }

  // Forks every instance of `spec`, places them, then releases them together.
  Result<void> start_workers(const WorkerSpec& spec) {
    if (auto ok = place_workers(spec); !ok) return ok;
    release_placed();
    return {};
  }

  // Forks every instance of `spec` and places it; release_placed() lets them run.
  Result<void> place_workers(const WorkerSpec& spec) {
    const std::size_t first = instances_.size();
    for (int i = 0; i < spec.count; ++i) {
      Instance inst;
      inst.spec = spec;
      inst.name = fmt::format("{}.{}", spec.name, i);
      inst.slot = instances_.size();
      inst.cgroup = spec.cgroup;
      inst.affinity = spec.affinity;
      inst.nice = spec.nice;
      auto pid = fork_worker(spec, stats(), inst.slot, *group_);
      if (!pid) return tl::unexpected(pid.error());
      inst.pid = *pid;
      instances_.push_back(std::move(inst));
    }
    const auto rt_limit = (spec.stop ? *spec.stop : s_.duration) - spec.start + milliseconds(1000);
    for (std::size_t i = first; i < instances_.size(); ++i) {
      Instance& inst = instances_[i];
      if (auto ok = wait_ready(stats(), inst.slot, inst.pid, kReadyTimeout); !ok) return ok;
      if (auto ok = cgroups_.at(inst.cgroup).cg.add(inst.pid); !ok) return ok;
      if (inst.affinity) {
        if (auto ok = set_affinity(inst.pid, *inst.affinity); !ok) return ok;
      }
      if (inst.nice != 0) {
        if (auto ok = set_nice(inst.pid, inst.nice); !ok) return ok;
      }
      if (spec.rt_priority > 0) {
        if (auto ok = set_fifo(inst.pid, spec.rt_priority, rt_limit); !ok) return ok;
      }
    }
    return {};
  }

  // Releases every placed instance together.
  void release_placed() {
    const std::uint32_t epoch = stats().header().epoch.load();
    for (; released_ < instances_.size(); ++released_) {
      Instance& inst = instances_[released_];
      inst.running = true;
      inst.start_s = inst.last_sample_s = now_s();
      inst.released_ns = monotonic_ns();
      enter_epoch(inst, epoch, allowed_for(inst));
      release(stats(), inst.slot);
    }
  }

  void stop_instance(Instance& inst) {
    if (!inst.running) return;
    sample_one(inst, true);
    kill(inst.pid, SIGKILL);
    inst.running = false;
    inst.stop_s = now_s();
    // Reaped here when quick, else by the group's teardown.
    const auto deadline = std::chrono::steady_clock::now() + milliseconds(500);
    while (waitpid(inst.pid, nullptr, WNOHANG) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  void sample_one(Instance& inst, bool final) {
    const TaskStats now = read_task_stats(inst.pid, final);
    const double t = now_s();
    if (now.cpu_ns >= inst.last.cpu_ns && t > inst.last_sample_s) {
      inst.timeline.push_back(static_cast<double>(now.cpu_ns - inst.last.cpu_ns) / 1e9 /
                              (t - inst.last_sample_s));
    }
    inst.last_sample_s = t;
    if (now.cpu_ns > 0 || final) {
      const std::uint64_t migrations = inst.last.migrations;
      inst.last = now;
      if (!final) inst.last.migrations = migrations;
    }
  }

  Result<void> apply(const StepAction& action) {
    struct Apply {
      ScenarioRun& r;
      Result<void> operator()(const SetCpus& a) {
        auto& state = r.cgroups_.at(a.cgroup);
        const auto old = state.cpus;
        return r.change_placement([&] { state.cpus = a.cpus; }, [&] { state.cpus = old; },
                                  [&] { return state.cg.set_cpus(a.cpus.to_string()); });
      }
      Result<void> operator()(const SwapCpus& a) {
        auto& x = r.cgroups_.at(a.a);
        auto& y = r.cgroups_.at(a.b);
        return r.change_placement(
            [&] { std::swap(x.cpus, y.cpus); }, [&] { std::swap(x.cpus, y.cpus); },
            [&]() -> Result<void> {
              // Widen first, so neither cgroup is ever left without a CPU.
              const std::string all = r.ctx_.host.to_string();
              if (auto ok = x.cg.set_cpus(all); !ok) return ok;
              if (auto ok = y.cg.set_cpus(y.cpus ? y.cpus->to_string() : all); !ok) return ok;
              return x.cg.set_cpus(x.cpus ? x.cpus->to_string() : all);
            });
      }
      Result<void> operator()(const AddCgroup& a) { return r.add_cgroup(a.cgroup, a.cgroup.name); }
      Result<void> operator()(const RemoveCgroup& a) {
        std::vector<Instance*> moved;
        for (auto& inst : r.instances_) {
          if (inst.running && inst.cgroup == a.cgroup) moved.push_back(&inst);
        }
        auto ok = r.move(moved, "");
        if (!ok) return ok;
        auto node = r.cgroups_.extract(a.cgroup);
        return node.mapped().cg.remove(kTeardownTimeout);
      }
      Result<void> operator()(const MoveWorkers& a) {
        return r.move(r.instances_of(a.worker), a.to_cgroup);
      }
      Result<void> operator()(const SetAffinity& a) {
        auto targets = r.instances_of(a.worker);
        std::vector<std::optional<CpuSet>> old;
        for (auto* i : targets) old.push_back(i->affinity);
        return r.change_placement(
            [&] {
              for (auto* i : targets) i->affinity = a.cpus;
            },
            [&] {
              for (std::size_t k = 0; k < targets.size(); ++k) targets[k]->affinity = old[k];
            },
            [&]() -> Result<void> {
              for (auto* i : targets) {
                if (auto ok = set_affinity(i->pid, a.cpus ? *a.cpus : r.ctx_.host); !ok) return ok;
              }
              return {};
            });
      }
      Result<void> operator()(const SetNice& a) {
        for (auto* i : r.instances_of(a.worker)) {
          if (auto ok = set_nice(i->pid, a.nice); !ok) return ok;
          i->nice = a.nice;
        }
        return {};
      }
      Result<void> operator()(const SpawnWorkers& a) {
        WorkerSpec w = a.worker;
        w.start = Millis(static_cast<Millis::rep>(r.now_s() * 1000));
        return r.start_workers(w);
      }
      Result<void> operator()(const StopWorkers& a) {
        for (auto* i : r.instances_of(a.worker)) r.stop_instance(*i);
        return {};
      }
    };
    return std::visit(Apply{*this}, action);
  }

  Result<void> move(const std::vector<Instance*>& targets, const std::string& to) {
    std::vector<std::string> old;
    for (auto* i : targets) old.push_back(i->cgroup);
    return change_placement(
        [&] {
          for (auto* i : targets) i->cgroup = to;
        },
        [&] {
          for (std::size_t k = 0; k < targets.size(); ++k) targets[k]->cgroup = old[k];
        },
        [&]() -> Result<void> {
          for (auto* i : targets) {
            if (auto ok = cgroups_.at(to).cg.add(i->pid); !ok) return ok;
          }
          return {};
        });
  }

  void watch_kernel() {
    if (!kmsg_) return;
    for (auto& line : kmsg_->poll(now_s())) result_.kernel_lines.push_back(std::move(line));
  }

  // Sleeps up to `ms`, waking early for kernel-log records or a scheduler's trouble.
  void wait(milliseconds ms) {
    if (ctx_.scheduler != nullptr && !scheduler_trouble_) {
      if (auto trouble = ctx_.scheduler->watch(ms)) scheduler_trouble_ = std::move(trouble);
      return;
    }
    pollfd p{kmsg_ ? kmsg_->fd() : -1, POLLIN, 0};
    poll(&p, 1, static_cast<int>(std::max<milliseconds::rep>(ms.count(), 0)));
  }

  Result<void> timeline() {
    std::vector<Event> events;
    for (std::size_t i = 0; i < s_.workers.size(); ++i) {
      events.push_back({s_.workers[i].start, 0, i});
      if (s_.workers[i].stop) events.push_back({*s_.workers[i].stop, 2, i});
    }
    for (std::size_t i = 0; i < s_.steps.size(); ++i) events.push_back({s_.steps[i].at, 1, i});
    std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
      return a.at != b.at ? a.at < b.at : a.order < b.order;
    });
    std::size_t next = 0;
    // The workers that start at 0 are forked and placed before the clock
    // starts, then released together: on a loaded machine placing takes
    // seconds, and workers released early would run (or wait) outside the
    // scenario's time.
    while (next < events.size() && events[next].at == Millis(0) && events[next].order == 0) {
      if (auto ok = place_workers(s_.workers[events[next++].index]); !ok) return ok;
    }
    t0_ns_ = monotonic_ns();
    busy_at_start_ = read_cpu_busy();
    release_placed();
    const double duration_s = std::chrono::duration<double>(s_.duration).count();
    const double interval_s = result_.sample_interval_s;
    double next_sample_s = interval_s;
    bool announced = false;
    for (;;) {
      if (ctx_.stop != nullptr && ctx_.stop->load()) {
        result_.interrupted = true;
        break;
      }
      const double now = now_s();
      while (next < events.size() &&
             std::chrono::duration<double>(events[next].at).count() <= now) {
        const Event& e = events[next++];
        if (e.order == 0) {
          if (auto ok = start_workers(s_.workers[e.index]); !ok) return ok;
        } else if (e.order == 2) {
          for (auto* i : instances_of(s_.workers[e.index].name)) stop_instance(*i);
        } else {
          StepRecord rec{now_s(), describe(s_.steps[e.index].action), ""};
          if (auto ok = apply(s_.steps[e.index].action); !ok) rec.error = ok.error().message;
          if (ctx_.observer != nullptr) ctx_.observer->step(s_, rec);
          result_.steps.push_back(std::move(rec));
        }
      }
      if (!announced && ctx_.observer != nullptr) {
        std::map<std::string, std::vector<std::string>> dirs;
        for (const auto& [name, state] : cgroups_) dirs[name] = state.cg.directories();
        ctx_.observer->started(s_, dirs);
        announced = true;
      }
      if (now >= duration_s) break;
      if (now >= next_sample_s) {
        std::uint64_t ops = 0;
        std::size_t live = 0;
        for (auto& inst : instances_) {
          ops += stats().slot(inst.slot).ops.load(std::memory_order_relaxed);
          if (!inst.running) continue;
          ++live;
          sample_one(inst, false);
        }
        if (auto running = read_procs_running(); running && *running > 0) {
          ++result_.machine.samples;
          runnable_sum_ += *running - 1;  // not the runner, reading it
        }
        if (ctx_.observer != nullptr) ctx_.observer->progress(s_, now, ops, live);
        while (next_sample_s <= now) next_sample_s += interval_s;
      }
      watch_kernel();
      double until = std::min(duration_s, next_sample_s);
      if (next < events.size()) {
        until = std::min(until, std::chrono::duration<double>(events[next].at).count());
      }
      wait(milliseconds(static_cast<long long>(std::max(0.0, until - now_s()) * 1000) + 1));
    }
    return {};
  }

  void finish_workers() {
    result_.elapsed_s = t0_ns_ != 0 ? now_s() : 0;
    if (t0_ns_ != 0) {
      const auto busy = read_cpu_busy();
      for (std::size_t c = 0; c < busy.size() && c < busy_at_start_.size(); ++c) {
        result_.machine.cpu_busy.push_back(std::max(0.0, busy[c] - busy_at_start_[c]));
      }
    }
    for (auto& inst : instances_) stop_instance(inst);
    watch_kernel();
  }

  Result<void> teardown() {
    Result<void> ok;
    if (group_ && !group_->kill_and_reap(kTeardownTimeout)) {
      ok = make_error(Errc::busy, "some worker processes were still alive 5 s after SIGKILL");
    }
    for (auto& [name, state] : cgroups_) {
      if (auto r = state.cg.remove(kTeardownTimeout); !r && ok) ok = r;
    }
    cgroups_.clear();
    if (run_cg_) {
      if (auto r = run_cg_->remove(kTeardownTimeout); !r && ok) ok = r;
    }
    if (weighed_) {  // the runs left (of other processes) weigh what they weigh
      if (auto r = weigh_cgroup_runs(*ctx_.layout, ctx_.cgroup_parent); !r && ok) {
        ok = tl::unexpected(r.error());
      }
    }
    return ok;
  }

  void collect() {
    for (const auto& inst : instances_) {
      const WorkerSlot& slot = stats().slot(inst.slot);
      WorkerResult w;
      w.name = inst.name;
      w.spec = inst.spec.name;
      w.cgroup = inst.cgroup;
      w.work = inst.spec.work;
      w.nice = inst.nice;
      w.rt_priority = inst.spec.rt_priority;
      w.affinity = inst.affinity ? inst.affinity->to_string() : "";
      w.start_s = inst.start_s;
      w.active_s = inst.stop_s - inst.start_s;
      w.ops = slot.ops.load();
      w.cpu_ns = inst.last.cpu_ns;
      w.wait_ns = inst.last.wait_ns;
      w.migrations = inst.last.migrations;
      w.cpu_switches = slot.cpu_switches.load();
      // A wait still going on at the stop counts too: a starved worker never checkpoints again.
      const std::uint64_t stop_ns = t0_ns_ + static_cast<std::uint64_t>(inst.stop_s * 1e9);
      const std::uint64_t last = std::max(slot.last_progress_ns.load(), inst.released_ns);
      std::uint64_t gap = slot.max_gap_ns.load(), gap_at = slot.max_gap_at_ns.load();
      if (stop_ns > last && stop_ns - last > gap) {
        gap = stop_ns - last;
        gap_at = stop_ns;
      }
      w.max_gap_ms = static_cast<double>(gap) / 1e6;
      w.max_gap_at_s = gap_at > t0_ns_ ? static_cast<double>(gap_at - t0_ns_) / 1e9 : 0;
      w.wake = summarize(slot.wake);
      for (const auto& [epoch, placement] : inst.epochs) {
        PlacementEpoch p = placement;
        p.ran_on = ran_on(slot, epoch);
        w.placements.push_back(std::move(p));
      }
      w.cpu_share_timeline = inst.timeline;
      w.failure = std::string(slot.failure, strnlen(slot.failure, sizeof(slot.failure)));
      result_.workers.push_back(std::move(w));
    }
    measure_machine();
    estimate_fair_shares(result_.workers, result_.machine, result_.elapsed_s);
    if (result_.error.empty()) {
      result_.checks =
          evaluate_checks(s_, result_.workers, result_.kernel_lines, kmsg_.has_value());
      if (ctx_.scheduler != nullptr) {
        CheckResult c{"scheduler", CheckOutcome::pass, "stayed attached", {}, {}};
        if (scheduler_trouble_) {
          c.outcome = CheckOutcome::fail;
          c.summary = scheduler_trouble_->message;
          if (!scheduler_trouble_->log_tail.empty())
            c.findings.push_back(scheduler_trouble_->log_tail);
        }
        result_.checks.push_back(std::move(c));
      }
    }
  }

  // The machine's load less the scenario's own runnable workers.
  void measure_machine() {
    MachineLoad& m = result_.machine;
    m.cpus = static_cast<unsigned>(ctx_.host.cpus().size());
    if (m.samples == 0 || result_.elapsed_s <= 0) return;
    m.runnable = runnable_sum_ / static_cast<double>(m.samples);
    double own = 0;
    for (const auto& w : result_.workers) {
      own += static_cast<double>(w.cpu_ns + w.wait_ns) / 1e9 / result_.elapsed_s;
    }
    m.outside = std::max(0.0, m.runnable - own);
  }

  const Scenario& s_;
  const RunContext& ctx_;
  ScenarioResult result_;
  std::optional<SharedRegion> region_;
  std::optional<ProcessGroup> group_;
  std::optional<Cgroup> run_cg_;
  std::map<std::string, CgroupState> cgroups_;
  std::optional<KernelLogWatch> kmsg_;
  std::vector<Instance> instances_;
  std::optional<DetachedWhileRunning> scheduler_trouble_;
  std::uint64_t t0_ns_ = 0;
  double runnable_sum_ = 0;            // procs_running over the samples
  std::vector<double> busy_at_start_;  // read_cpu_busy() when the clock started
  std::size_t released_ = 0;           // instances_ before this index were released
  bool weighed_ = false;               // the run cgroup's parent was given the runs' weight
};

}  // namespace

ScenarioResult run_one_scenario(const Scenario& scenario, const RunContext& ctx) {
  return ScenarioRun(scenario, ctx).run();
}

}  // namespace scxkit::internal
