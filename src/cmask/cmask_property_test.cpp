// rapidcheck: random operation sequences on cmasks against a plain
// std::vector<bool> model of the same windows.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <optional>

#include "scxkit/cmask.hpp"
#include "scxkit/cpulist.hpp"
#include "scxkit/topo.hpp"

namespace scxkit {
namespace {

// The model: a window and one flag per cid in it.
struct Model {
  std::uint32_t base = 0;
  std::vector<bool> bits;
  std::uint32_t end() const { return base + static_cast<std::uint32_t>(bits.size()); }
  bool in(std::uint32_t cid) const { return cid >= base && cid < end(); }
  bool has(std::uint32_t cid) const { return in(cid) && bits[cid - base]; }
  std::vector<std::uint32_t> cids() const {
    std::vector<std::uint32_t> out;
    for (std::uint32_t i = 0; i < bits.size(); ++i) {
      if (bits[i]) out.push_back(base + i);
    }
    return out;
  }
  bool subset_of(const Model& o) const {
    for (std::uint32_t cid : cids()) {
      if (!o.has(cid)) return false;
    }
    return true;
  }
  std::optional<std::uint32_t> next(std::uint32_t from) const {
    for (std::uint32_t cid = std::max(from, base); cid < end(); ++cid) {
      if (has(cid)) return cid;
    }
    return std::nullopt;
  }
};

// A window of 0..600 cids at base 0..300, storage for up to 200 more.
struct Shape {
  std::uint32_t base, nr, alloc;
};
rc::Gen<Shape> shapes() {
  return rc::gen::apply(
      [](std::uint32_t base, std::uint32_t nr, std::uint32_t extra) {
        return Shape{base, nr, nr + extra};
      },
      rc::gen::inRange<std::uint32_t>(0, 300), rc::gen::inRange<std::uint32_t>(0, 600),
      rc::gen::inRange<std::uint32_t>(0, 200));
}

enum OpCode : int {
  kSet,
  kClear,
  kTestAndSet,
  kTestAndClear,
  kAtomicSet,
  kAtomicClear,
  kAtomicTestAndSet,
  kAtomicTestAndClear,
  kTest,
  kZero,
  kAnd,
  kOr,
  kAndnot,
  kCopy,
  kCompare,
  kSearch,
  kReframe,
  kNrOps
};

RC_GTEST_PROP(CmaskProperty, MatchesAVectorOfBoolModel, ()) {
  std::vector<CmaskBuffer> masks;
  std::vector<Model> models;
  for (int i = 0; i < 3; ++i) {
    const Shape s = *shapes();
    auto buf = CmaskBuffer::create(s.base, s.nr, s.alloc);
    RC_ASSERT(buf.has_value());
    masks.push_back(std::move(*buf));
    models.push_back(Model{s.base, std::vector<bool>(s.nr)});
  }
  const int steps = *rc::gen::inRange(1, 200);
  for (int step = 0; step < steps; ++step) {
    const int op = *rc::gen::inRange(0, static_cast<int>(kNrOps));
    const std::size_t ai = *rc::gen::inRange<std::size_t>(0, 3);
    const std::size_t bi = *rc::gen::inRange<std::size_t>(0, 3);
    Cmask& a = *masks[ai];
    const Cmask& b = *masks[bi];
    Model& ma = models[ai];
    const Model mb = models[bi];
    const std::uint32_t cid = *rc::gen::inRange<std::uint32_t>(0, 1000);
    const bool in = ma.in(cid);
    const bool was = ma.has(cid);
    switch (op) {
      case kSet:
      case kAtomicSet:
      case kClear:
      case kAtomicClear: {
        const bool set = op == kSet || op == kAtomicSet;
        auto r = op == kSet     ? a.set(cid)
                 : op == kClear ? a.clear(cid)
                 : set          ? a.atomic_set(cid)
                                : a.atomic_clear(cid);
        RC_ASSERT(r.has_value() == in);
        if (in) ma.bits[cid - ma.base] = set;
        break;
      }
      case kTestAndSet:
      case kAtomicTestAndSet:
      case kTestAndClear:
      case kAtomicTestAndClear: {
        const bool set = op == kTestAndSet || op == kAtomicTestAndSet;
        const bool atomic = op == kAtomicTestAndSet || op == kAtomicTestAndClear;
        auto r = set ? (atomic ? a.atomic_test_and_set(cid) : a.test_and_set(cid))
                     : (atomic ? a.atomic_test_and_clear(cid) : a.test_and_clear(cid));
        RC_ASSERT(r.has_value() == in);
        if (in) {
          RC_ASSERT(*r == was);
          ma.bits[cid - ma.base] = set;
        }
        break;
      }
      case kTest: {
        auto r = a.test(cid);
        RC_ASSERT(r.has_value() == in);
        if (in) RC_ASSERT(*r == was);
        break;
      }
      case kZero:
        a.zero();
        ma.bits.assign(ma.bits.size(), false);
        break;
      case kAnd:
      case kOr:
      case kAndnot:
      case kCopy: {
        const std::uint32_t lo = std::max(ma.base, mb.base), hi = std::min(ma.end(), mb.end());
        const bool disjoint = lo >= hi && !ma.bits.empty() && !mb.bits.empty();
        auto r = op == kAnd      ? a.and_with(b)
                 : op == kOr     ? a.or_with(b)
                 : op == kAndnot ? a.andnot_with(b)
                                 : a.copy_from(b);
        RC_ASSERT(r.has_value() == !disjoint);
        for (std::uint32_t c = lo; c < hi; ++c) {
          const bool d = ma.has(c), s = mb.has(c);
          ma.bits[c - ma.base] = op == kAnd      ? d && s
                                 : op == kOr     ? d || s
                                 : op == kAndnot ? d && !s
                                                 : s;
        }
        break;
      }
      case kCompare: {
        const std::vector<std::uint32_t> set = ma.cids();
        RC_ASSERT(a.subset_of(b) == ma.subset_of(mb));
        RC_ASSERT(a.equal(b) == (ma.subset_of(mb) && mb.subset_of(ma)));
        RC_ASSERT(a.intersects(b) ==
                  std::any_of(set.begin(), set.end(), [&](std::uint32_t c) { return mb.has(c); }));
        break;
      }
      case kSearch: {
        RC_ASSERT(a.weight() == ma.cids().size());
        RC_ASSERT(a.first_set() == ma.next(0));
        RC_ASSERT(a.next_set(cid) == ma.next(cid));
        auto wrap = ma.next(cid);
        if (!wrap && cid > ma.base) {
          wrap = ma.next(0);
          if (wrap && *wrap >= cid) wrap.reset();
        }
        RC_ASSERT(a.next_set_wrap(cid) == wrap);
        break;
      }
      case kReframe: {
        // The cids inside a reframed window are unspecified; zero() makes
        // them the model's again.
        const Shape s = *shapes();
        auto r = a.reframe(s.base, s.nr);
        RC_ASSERT(r.has_value() == (cmask_nr_words(s.nr) <= a.alloc_words()));
        if (r) {
          a.zero();
          ma = Model{s.base, std::vector<bool>(s.nr)};
        }
        break;
      }
    }
    // The whole state after every step: the same cids, padding still zero.
    RC_ASSERT(std::vector<std::uint32_t>(a.cids().begin(), a.cids().end()) == ma.cids());
    RC_ASSERT(a.base() == ma.base && a.nr_cids() == ma.bits.size());
    RC_ASSERT(Cmask::attach({a.data(), a.size_bytes()}).has_value());
  }
}

RC_GTEST_PROP(CmaskProperty, CpuListsAndCpuSetsRoundTripOnDescribedMachines, ()) {
  const TopologySpec spec{.nodes = *rc::gen::inRange<std::uint32_t>(1, 4),
                          .llcs_per_node = *rc::gen::inRange<std::uint32_t>(1, 4),
                          .cores_per_llc = *rc::gen::inRange<std::uint32_t>(1, 9),
                          .threads_per_core = *rc::gen::inRange<std::uint32_t>(1, 3),
                          .smt_split = *rc::gen::arbitrary<bool>()};
  auto machine = describe_topology(spec);
  RC_ASSERT(machine.has_value());
  auto table = CidTable::build(*machine);
  RC_ASSERT(table.has_value());
  const std::uint32_t n = table->nr_cids();
  std::vector<std::uint32_t> cpus;
  for (std::uint32_t cpu = 0; cpu < n; ++cpu) {
    if (*rc::gen::arbitrary<bool>()) cpus.push_back(cpu);
  }
  auto m = CmaskBuffer::create(0, n);
  RC_ASSERT(m.has_value());
  RC_ASSERT((*m)->assign_cpulist(format_cpulist(cpus), *table).has_value());
  RC_ASSERT((*m)->weight() == cpus.size());
  RC_ASSERT(*(*m)->to_cpulist(*table) == format_cpulist(cpus));
  auto set = (*m)->to_cpu_set(*table);
  RC_ASSERT(set.has_value());
  RC_ASSERT(static_cast<std::size_t>(CPU_COUNT(&*set)) == cpus.size());
  for (std::uint32_t cpu : cpus) RC_ASSERT(CPU_ISSET(cpu, &*set));
  auto again = CmaskBuffer::create(0, n);
  RC_ASSERT(again.has_value());
  RC_ASSERT((*again)->assign_cpu_set(*set, *table).has_value());
  RC_ASSERT((*again)->equal(**m));
}

}  // namespace
}  // namespace scxkit
