// Host tests of the hotspot engine (userspace/detect/detector.{hpp,cpp} and
// detect_config.{hpp,cpp}): synthetic intervals in, exact lifecycle events out.
// Time is 1 s per interval unless a test says otherwise: now = 1, 2, 3, ...
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "collect/stats.hpp"
#include "detect/detect_config.hpp"
#include "detect/detector.hpp"
#include "error_of.hpp"

extern "C" {
#include "hist.h"
}

using keyscope::DetectConfig;
using keyscope::Detector;
using keyscope::EntityKind;
using keyscope::HotKind;
using keyscope::HotspotEvent;
using keyscope::IntervalData;
using keyscope::KeyStats;
using keyscope::LatencyHistogram;
using keyscope::quantile_us;
using keyscope::recommended_actions;
using keyscope::Severity;
using keyscope::test::error_of;

namespace {

constexpr const char* kServer = "127.0.0.1:6379";

std::uint64_t hash_of(const std::string& s) {
    return std::hash<std::string>{}(s);
}

KeyStats key(const std::string& name, std::uint64_t reads, std::uint64_t writes = 0,
             std::uint32_t target = 0) {
    KeyStats k;
    k.target = target;
    k.hash = hash_of(name);
    k.key = name;
    k.key_len = static_cast<std::uint32_t>(name.size());
    k.reads = reads;
    k.writes = writes;
    return k;
}

KeyStats with_errors(KeyStats k, std::uint64_t errors) {
    k.errors = errors;
    return k;
}

/// A key with `n` reads that each took `ns`.
KeyStats slow_key(const std::string& name, std::uint64_t n, std::uint64_t ns) {
    KeyStats k = key(name, n);
    k.lat[ks_lat_bucket(ns)] = n;
    return k;
}

/// The p99 in ms the engine sees for `n` samples of `ns` each.
double p99_ms_of(std::uint64_t n, std::uint64_t ns) {
    LatencyHistogram h{};
    h[ks_lat_bucket(ns)] = n;
    return quantile_us(h, 0.99) / 1000.0;
}

/// One interval with these keys; every key operation is a request with a reply.
IntervalData interval(std::vector<KeyStats> keys, std::size_t targets = 1) {
    IntervalData d;
    d.per_target.resize(targets);
    for (const auto& k : keys) {
        auto& t = d.per_target.at(k.target);
        t.requests += k.ops();
        t.key_ops += k.ops();
        t.replies += k.ops();
        t.errors += k.errors;
        t.bytes_out += k.bytes_out;
    }
    d.keys = std::move(keys);
    return d;
}

IntervalData quiet() {
    return interval({});
}

/// Defaults plus `sets`, with no prefix entities (depth 0) unless a test wants them.
DetectConfig config(std::initializer_list<std::string_view> sets = {}) {
    DetectConfig c;
    c.prefixes.depth = 0;
    for (auto s : sets) c.set(s);
    return c;
}

/// A detector fed one interval at a time.
struct Feed {
    Detector det;
    double now = 0;
    explicit Feed(DetectConfig c, std::vector<std::string> servers = {kServer})
        : det(std::move(c), std::move(servers)) {}
    std::vector<HotspotEvent> step(const IntervalData& d, double dt = 1) {
        now += dt;
        return det.observe(d, now, dt);
    }
    /// Feeds the same interval `n` times and returns every event.
    std::vector<HotspotEvent> repeat(const IntervalData& d, int n, double dt = 1) {
        std::vector<HotspotEvent> all;
        for (int i = 0; i < n; ++i) {
            auto ev = step(d, dt);
            all.insert(all.end(), ev.begin(), ev.end());
        }
        return all;
    }
};

std::vector<HotspotEvent> only(const std::vector<HotspotEvent>& ev, EntityKind entity) {
    std::vector<HotspotEvent> out;
    for (const auto& e : ev)
        if (e.entity == entity) out.push_back(e);
    return out;
}

std::vector<HotspotEvent> only(const std::vector<HotspotEvent>& ev, EntityKind entity, HotKind kind) {
    std::vector<HotspotEvent> out;
    for (const auto& e : ev)
        if (e.entity == entity && e.kind == kind) out.push_back(e);
    return out;
}

std::string describe(const HotspotEvent& e) {
    return std::string(e.state) + " " + keyscope::entity_name(e.entity) + "/" + std::to_string(e.target) +
           "/" + e.name + " " + keyscope::kind_name(e.kind) + " " + keyscope::severity_name(e.severity) +
           " " + e.rule + " value=" + std::to_string(e.value) + " threshold=" + std::to_string(e.threshold) +
           ": " + e.what;
}

std::string describe(const std::vector<HotspotEvent>& ev) {
    std::string s;
    for (const auto& e : ev) s += describe(e) + "\n";
    return s;
}

/// The only event among `ev` for a key, of kind `kind`.
HotspotEvent key_event(const std::vector<HotspotEvent>& ev, HotKind kind) {
    auto k = only(ev, EntityKind::key, kind);
    INFO(describe(ev));
    REQUIRE(k.size() == 1);
    return k.front();
}

Severity severity_of(DetectConfig c, const KeyStats& k) {
    Feed f(std::move(c));
    auto ev = f.step(interval({k}));
    auto keys = only(ev, EntityKind::key);
    INFO(describe(ev));
    REQUIRE(keys.size() == 1);
    return keys.front().severity;
}

int exit_code_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const keyscope::Error& e) {
        return e.exit_code();
    }
    return -1;
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

}  // namespace

// ---- names and advice --------------------------------------------------------

TEST_CASE("kind and severity names", "[detect]") {
    CHECK(std::string(keyscope::kind_name(HotKind::read)) == "read");
    CHECK(std::string(keyscope::kind_name(HotKind::write)) == "write");
    CHECK(std::string(keyscope::kind_name(HotKind::size)) == "size");
    CHECK(std::string(keyscope::kind_name(HotKind::latency)) == "latency");
    CHECK(std::string(keyscope::kind_name(HotKind::error)) == "error");
    CHECK(std::string(keyscope::severity_name(Severity::low)) == "low");
    CHECK(std::string(keyscope::severity_name(Severity::medium)) == "medium");
    CHECK(std::string(keyscope::severity_name(Severity::high)) == "high");
    CHECK(std::string(keyscope::severity_name(Severity::critical)) == "critical");
}

TEST_CASE("recommended actions exist for every kind and grow with severity", "[detect]") {
    const HotKind kinds[] = {HotKind::read, HotKind::write, HotKind::size, HotKind::latency, HotKind::error};
    const Severity sevs[] = {Severity::low, Severity::medium, Severity::high, Severity::critical};
    const EntityKind ents[] = {EntityKind::key, EntityKind::prefix, EntityKind::slot, EntityKind::server};
    for (auto kind : kinds) {
        for (auto ent : ents) {
            INFO(keyscope::kind_name(kind) << " on a " << keyscope::entity_name(ent));
            std::vector<std::string> prev;
            for (auto sev : sevs) {
                auto a = recommended_actions(kind, sev, ent);
                CHECK_FALSE(a.empty());
                for (const auto& line : a) CHECK_FALSE(line.empty());
                // everything advised at a lower severity is still advised at a higher one
                for (const auto& p : prev) CHECK(std::find(a.begin(), a.end(), p) != a.end());
                prev = a;
            }
            auto low = recommended_actions(kind, Severity::low, ent);
            auto crit = recommended_actions(kind, Severity::critical, ent);
            CHECK(low != crit);
            CHECK(low.size() < crit.size());
        }
    }
    // kinds get different advice
    for (auto a : kinds)
        for (auto b : kinds)
            if (a != b)
                CHECK(recommended_actions(a, Severity::low, EntityKind::key) !=
                      recommended_actions(b, Severity::low, EntityKind::key));
    // entity-specific advice
    auto has = [](const std::vector<std::string>& v, const char* part) {
        return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return contains(s, part); });
    };
    CHECK(has(recommended_actions(HotKind::read, Severity::low, EntityKind::slot), "rebalance"));
    CHECK_FALSE(has(recommended_actions(HotKind::read, Severity::low, EntityKind::key), "rebalance"));
    CHECK(has(recommended_actions(HotKind::write, Severity::high, EntityKind::server), "replicas or shards"));
    CHECK_FALSE(
        has(recommended_actions(HotKind::write, Severity::medium, EntityKind::server), "replicas or shards"));
    CHECK(has(recommended_actions(HotKind::read, Severity::critical, EntityKind::key), "throttle"));
    CHECK_FALSE(has(recommended_actions(HotKind::read, Severity::high, EntityKind::key), "throttle"));
}

// ---- configuration -----------------------------------------------------------

TEST_CASE("param_defs: defaults within range, unique names, increasing bands", "[detect]") {
    DetectConfig c;
    std::set<std::string> names;
    for (const auto& d : keyscope::param_defs()) {
        INFO(d.name);
        CHECK(names.insert(d.name).second);
        CHECK(d.fallback >= d.min);
        CHECK(d.fallback <= d.max);
        CHECK(std::string(d.help).size() > 0);
        CHECK(c.get(d.name) == d.fallback);
    }
    CHECK(names.size() == keyscope::param_defs().size());
    for (const char* kind : {"read", "write", "size", "latency", "error"})
        for (const char* p : {".bands.1", ".bands.2", ".bands.3", ".bands.4", ".for_intervals"})
            CHECK(names.count(std::string(kind) + p) == 1);
    // absolute limits are a key's; wider entities get them scaled
    CHECK(c.get("prefix.rate_scale") == 10);
    CHECK(c.get("slot.rate_scale") == 1);
    CHECK(c.get("server.rate_scale") == 30);
    // a noisy p99 must stay above for 3 intervals, everything else starts at once
    CHECK(c.get("latency.for_intervals") == 3);
    CHECK(c.get("read.for_intervals") == 1);
    CHECK(c.get("error.for_intervals") == 1);
    using B = std::array<double, 4>;
    CHECK(c.bands("read") == B{2, 5, 10, 20});
    CHECK(c.bands("write") == B{2, 3, 6, 12});
    CHECK(c.bands("size") == B{2, 4, 8, 16});
    CHECK(c.bands("latency") == B{2, 4, 8, 16});
    CHECK(c.bands("error") == B{2, 4, 8, 16});
    CHECK_NOTHROW(c.validate());
    CHECK(c.window_s == 60);
    CHECK(c.history_s == 600);
    CHECK(c.min_history_s == 30);
    CHECK(c.quiet_s == 10);
    CHECK(c.hold == 0.8);
}

TEST_CASE("config: assignments are trimmed and take effect", "[detect]") {
    DetectConfig c;
    c.set("  read.rate = 2500 ");
    CHECK(c.get("read.rate") == 2500);
    c.set("read.share=0.25");
    CHECK(c.get("read.share") == 0.25);
    c.set("size.bytes_out_rate=1e6");
    CHECK(c.get("size.bytes_out_rate") == 1e6);
    c.set("read.rate=0");  // 0 turns a rule off, and is allowed
    CHECK(c.get("read.rate") == 0);
    c.set("read.bands.2=2");  // equal bands do not decrease
    CHECK_NOTHROW(c.validate());
    CHECK(error_of([&] { (void)c.get("read.nope"); }).find("read.nope") != std::string::npos);
}

TEST_CASE("config: errors name the bad parameter and value", "[detect]") {
    DetectConfig c;
    SECTION("unknown name") {
        auto msg = error_of([&] { c.set("read.rat=5"); });
        INFO(msg);
        CHECK(contains(msg, "'read.rat'"));
        CHECK(contains(msg, "unknown"));
        CHECK(exit_code_of([&] { c.set("read.rat=5"); }) == 2);
    }
    SECTION("not a number") {
        for (const char* bad : {"abc", "12x", "", "1,5", "0x10", "--1"}) {
            auto msg = error_of([&] { c.set(std::string("read.rate=") + bad); });
            INFO(msg);
            CHECK(contains(msg, "read.rate"));
            CHECK(contains(msg, "'" + std::string(bad) + "'"));
            CHECK(contains(msg, "expected a number"));
        }
        CHECK(exit_code_of([&] { c.set("read.rate=abc"); }) == 2);
    }
    SECTION("no '='") {
        auto msg = error_of([&] { c.set("read.rate"); });
        INFO(msg);
        CHECK(contains(msg, "'read.rate'"));
        CHECK(contains(msg, "NAME=VALUE"));
    }
    SECTION("out of range") {
        auto msg = error_of([&] { c.set("read.share=1.5"); });
        INFO(msg);
        CHECK(contains(msg, "read.share"));
        CHECK(contains(msg, "1.5"));
        CHECK(contains(msg, "out of range (must be >= 0 and <= 1)"));
        msg = error_of([&] { c.set("read.rate=-1"); });
        CHECK(contains(msg, "read.rate"));
        CHECK(contains(msg, "-1"));
        msg = error_of([&] { c.set("read.multiplier=0.5"); });
        CHECK(contains(msg, "read.multiplier"));
        CHECK(contains(msg, "0.5"));
        msg = error_of([&] { c.set("error.rate_pct=101"); });
        CHECK(contains(msg, "error.rate_pct"));
        CHECK(contains(msg, "101"));
        msg = error_of([&] { c.set("latency.min_ops=0"); });
        CHECK(contains(msg, "latency.min_ops"));
        msg = error_of([&] { c.set("read.rate=inf"); });
        CHECK(contains(msg, "read.rate"));
        CHECK(contains(msg, "value inf out of range (must be >= 0)"));
        msg = error_of([&] { c.set("latency.for_intervals=0.5"); });
        CHECK(contains(msg, "latency.for_intervals"));
        CHECK(contains(msg, "0.5"));
        CHECK(exit_code_of([&] { c.set("read.share=2"); }) == 2);
        CHECK(c.get("read.share") == 0.5);  // a rejected assignment changes nothing
    }
    SECTION("decreasing bands") {
        c.set("read.bands.2=1.5");
        auto msg = error_of([&] { c.validate(); });
        INFO(msg);
        CHECK(contains(msg, "read.bands.2=1.5:"));
        CHECK(contains(msg, "must not decrease"));
        CHECK(exit_code_of([&] { c.validate(); }) == 2);
        // the detector refuses such a configuration
        CHECK(contains(error_of([&] { Detector d(c, {}); }), "read.bands.2"));
    }
    SECTION("decreasing bands in an override") {
        c.add_override("prefix=a:* write.bands.3=2.5");
        auto msg = error_of([&] { c.validate(); });
        INFO(msg);
        CHECK(contains(msg, "a:*"));
        CHECK(contains(msg, "write.bands.3=2.5:"));
        CHECK(contains(msg, "must not decrease"));
    }
    SECTION("an override's bands above the global next band") {
        c.add_override("server=10.0.0.1:6379 latency.bands.1=30");
        auto msg = error_of([&] { c.validate(); });
        INFO(msg);
        CHECK(contains(msg, "10.0.0.1:6379"));
        CHECK(contains(msg, "latency.bands.2"));
    }
    SECTION("window longer than the history") {
        c.window_s = 700;
        auto msg = error_of([&] { c.validate(); });
        INFO(msg);
        CHECK(contains(msg, "(600s)"));
        CHECK(contains(msg, "(700s)"));
        c.window_s = 0;
        CHECK(contains(error_of([&] { c.validate(); }), "window"));
    }
    SECTION("malformed overrides") {
        for (const char* bad : {"read.rate=5", "host=1.2.3.4:6379 read.rate=5", "server= read.rate=5",
                                "server read.rate=5", ""}) {
            auto msg = error_of([&] { c.add_override(bad); });
            INFO(msg);
            CHECK(contains(msg, "override '" + std::string(bad) + "'"));
            CHECK(contains(msg, "server=HOST:PORT or prefix=GLOB"));
            CHECK(exit_code_of([&] { c.add_override(bad); }) == 2);
        }
        auto msg = error_of([&] { c.add_override("server=1.2.3.4:6379"); });
        CHECK(contains(msg, "no NAME=VALUE pairs"));
        msg = error_of([&] { c.add_override("prefix=a:* read.rate=x"); });
        CHECK(contains(msg, "read.rate"));
        CHECK(contains(msg, "'x'"));
        msg = error_of([&] { c.add_override("prefix=a:* bogus=1"); });
        CHECK(contains(msg, "'bogus'"));
        msg = error_of([&] { c.add_override("prefix=a:* read.share=3"); });
        CHECK(contains(msg, "read.share"));
        CHECK(contains(msg, "3"));
        // none of them was added
        CHECK(c.get("read.rate", "1.2.3.4:6379", "a:1") == 3000);
    }
}

TEST_CASE("config: NaN is not a number", "[detect]") {
    // std::from_chars parses "nan", and NaN passes the range check (every
    // comparison with NaN is false), so "read.rate=nan" silently turns the rule off
    DetectConfig c;
    CHECK(contains(error_of([&] { c.set("read.rate=nan"); }), "read.rate"));
    CHECK(contains(error_of([&] { c.set("read.bands.2=nan"); }), "read.bands.2"));
}

TEST_CASE("config: prefix over server over global; the last matching override of a scope wins", "[detect]") {
    const std::string s1 = "10.0.0.1:6379", s2 = "10.0.0.2:6379";
    DetectConfig c;
    c.set("read.rate=2000");
    c.add_override("server=" + s1 + " read.rate=1000 write.rate=10");
    c.add_override("prefix=hot:* read.rate=500");
    c.add_override("prefix=hot:* write.count=7");
    CHECK(c.get("read.rate") == 2000);
    CHECK(c.get("read.rate", s1) == 1000);
    CHECK(c.get("read.rate", s2) == 2000);
    CHECK(c.get("read.rate", s1, "hot:1") == 500);
    CHECK(c.get("read.rate", s2, "hot:1") == 500);  // a prefix override holds on every server
    CHECK(c.get("read.rate", s1, "cold:1") == 1000);
    CHECK(c.get("read.rate", "", "hot:1") == 500);
    CHECK(c.get("read.rate", s1, "") == 1000);  // slots and servers have no key
    // an override that does not set a parameter does not shadow one that does
    CHECK(c.get("write.rate", s1, "hot:1") == 10);
    CHECK(c.get("write.count", s1, "hot:1") == 7);
    CHECK(c.get("write.count", s1, "cold:1") == 0);
    CHECK(c.get("write.rate", s2, "cold:1") == 1000);

    c.add_override("prefix=h* read.rate=450");
    CHECK(c.get("read.rate", s2, "hot:1") == 450);
    CHECK(c.get("read.rate", s2, "h") == 450);
    c.add_override("prefix=hot:* read.rate=400");
    CHECK(c.get("read.rate", s2, "hot:1") == 400);
    CHECK(c.get("read.rate", s2, "h") == 450);
    c.add_override("server=" + s1 + " read.rate=900");
    CHECK(c.get("read.rate", s1) == 900);
    CHECK(c.get("write.rate", s1) == 10);
    // a later global value does not beat overrides
    c.set("read.rate=2500");
    CHECK(c.get("read.rate") == 2500);
    CHECK(c.get("read.rate", s1) == 900);
    CHECK(c.get("read.rate", s1, "hot:1") == 400);
    CHECK(c.get("read.rate", s2, "cold:1") == 2500);

    c.add_override("prefix=vip:* read.bands.1=1.5 read.bands.2=3 read.bands.3=6 read.bands.4=12");
    CHECK(c.bands("read", s2, "vip:1") == std::array<double, 4>{1.5, 3, 6, 12});
    CHECK(c.bands("read", s2, "other") == std::array<double, 4>{2, 5, 10, 20});
    CHECK_NOTHROW(c.validate());
}

TEST_CASE("overrides in the detector: per key, prefix, slot and server", "[detect]") {
    const std::string s0 = "10.0.0.1:6379", s1 = "10.0.0.2:6379";
    DetectConfig c;  // prefixes at depth 1: "hot:*", "cold:*"
    // limits unscaled for prefixes and servers, to see the overrides alone
    c.set("prefix.rate_scale=1");
    c.set("server.rate_scale=1");
    c.add_override("server=" + s0 + " read.rate=1000");
    c.add_override("prefix=hot:* read.rate=500");
    Feed f(c, {s0, s1});
    auto ev = f.step(interval({key("hot:1", 600, 0, 0), key("cold:1", 1200, 0, 0), key("hot:2", 600, 0, 1),
                               key("cold:2", 1200, 0, 1)},
                              2));
    INFO(describe(ev));
    using Id = std::tuple<EntityKind, std::uint32_t, std::string>;
    std::map<Id, double> got;
    for (const auto& e : ev) {
        CHECK(e.kind == HotKind::read);
        CHECK(e.state == "start");
        CHECK(e.rule == "absolute");
        got[{e.entity, e.target, e.name}] = e.threshold;
    }
    std::map<Id, double> want = {
        {{EntityKind::key, 0, "hot:1"}, 500},       // prefix override
        {{EntityKind::key, 0, "cold:1"}, 1000},     // server override
        {{EntityKind::key, 1, "hot:2"}, 500},       // prefix override, on the other server too
        {{EntityKind::prefix, 0, "hot:*"}, 500},    // a prefix entity matches its own glob
        {{EntityKind::prefix, 0, "cold:*"}, 1000},  // server override
        {{EntityKind::prefix, 1, "hot:*"}, 500},
        {{EntityKind::slot, 0, std::to_string(keyscope::cluster_slot("cold:1"))}, 1000},
        {{EntityKind::server, 0, ""}, 1000},  // 1800 reads/s
        // not hot: slot of hot:1 (600 < 1000), cold:2 and its slot and server 1 (< 3000)
    };
    CHECK(got == want);
}

TEST_CASE("a prefix override changes severity bands", "[detect]") {
    DetectConfig c = config();
    c.add_override("prefix=vip:* read.bands.1=2 read.bands.2=3 read.bands.3=6 read.bands.4=12");
    CHECK(severity_of(c, key("vip:1", 4500)) == Severity::medium);  // 1.5x: medium with 2/3/6/12
    CHECK(severity_of(c, key("std:1", 4500)) == Severity::low);     // 1.5x: low with 2/5/10/20
}

TEST_CASE("a server override applies to the entities of that server only", "[detect]") {
    // with no HOST:PORT known for a target, the engine compares the override
    // with the entity's own name: a key named like a server gets its override
    DetectConfig c = config();
    c.add_override("server=10.0.0.1:6379 read.rate=100");
    Feed f(c, {});
    auto ev = f.step(interval({key("10.0.0.1:6379", 500)}));
    INFO(describe(ev));
    CHECK(only(ev, EntityKind::key).empty());
}

// ---- absolute rules ----------------------------------------------------------

TEST_CASE("absolute read rate: fires at the threshold, with exact fields", "[detect]") {
    SECTION("just below") {
        Feed f(config());
        CHECK(f.step(interval({key("k", 2999)})).empty());
        CHECK(f.det.active().empty());
    }
    SECTION("at the threshold") {
        Feed f(config());
        auto ev = f.step(interval({key("k", 3000)}));
        INFO(describe(ev));
        // the key and its slot carry the same 3000 reads/s; the server's limit is 30 x 3000
        REQUIRE(ev.size() == 2);
        CHECK(only(ev, EntityKind::slot, HotKind::read).size() == 1);
        CHECK(only(ev, EntityKind::slot).front().name == std::to_string(keyscope::cluster_slot("k")));
        auto e = key_event(ev, HotKind::read);
        CHECK(e.state == "start");
        CHECK(e.target == 0);
        CHECK(e.name == "k");
        CHECK(e.hash == hash_of("k"));
        CHECK_FALSE(e.truncated);
        CHECK(e.severity == Severity::low);
        CHECK(e.peak == Severity::low);
        CHECK(e.rule == "absolute");
        CHECK(e.what == "3000 reads/s (limit 3000/s)");
        CHECK(e.value == 3000);
        CHECK(e.threshold == 3000);
        CHECK(e.baseline == 0);
        CHECK(e.unit == "reads/s");
        CHECK(e.ts == 1);
        CHECK(e.since == 1);
        CHECK(e.actions == recommended_actions(HotKind::read, Severity::low, EntityKind::key));
    }
    SECTION("rates divide by the interval length") {
        Feed f(config());
        CHECK(f.step(interval({key("k", 5998)}), 2).empty());
        Feed g(config());
        auto e = key_event(g.step(interval({key("k", 6000)}), 2), HotKind::read);
        CHECK(e.value == 3000);
        CHECK(e.ts == 2);
        Feed h(config());
        auto e2 = key_event(h.step(interval({key("k", 1500)}), 0.5), HotKind::read);
        CHECK(e2.value == 3000);
    }
    SECTION("a truncated key keeps its flag and hash") {
        Feed f(config());
        auto k = key(std::string(64, 'z'), 4000);
        k.truncated = true;
        k.key_len = 200;
        k.hash = 77;
        auto e = key_event(f.step(interval({k})), HotKind::read);
        CHECK(e.truncated);
        CHECK(e.hash == 77);
        CHECK(e.name == std::string(64, 'z'));
    }
}

TEST_CASE("absolute write rate", "[detect]") {
    Feed f(config());
    CHECK(f.step(interval({key("w", 0, 999)})).empty());
    auto e = key_event(f.step(interval({key("w", 0, 1500)})), HotKind::write);
    CHECK(e.state == "start");
    CHECK(e.rule == "absolute");
    CHECK(e.unit == "writes/s");
    CHECK(e.what == "1500 writes/s (limit 1000/s)");
    CHECK(e.value == 1500);
    CHECK(e.threshold == 1000);
    CHECK(e.severity == Severity::medium);  // 1.5x with bands 2/3/6/12
    CHECK(e.since == 2);
    CHECK(e.actions == recommended_actions(HotKind::write, Severity::medium, EntityKind::key));
}

TEST_CASE("absolute rule mentions the baseline once there is one", "[detect]") {
    Feed f(config());
    CHECK(f.repeat(interval({key("k", 2500)}), 30).empty());
    auto e = key_event(f.step(interval({key("k", 3000)})), HotKind::read);
    CHECK(e.rule == "absolute");  // 1.0x its limit beats 0.6x the temporal one (2 x 2500)
    CHECK(e.what == "3000 reads/s (limit 3000/s, 1.2x baseline)");
    CHECK(e.baseline == 2500);
    CHECK(e.threshold == 3000);
}

TEST_CASE("read severity bands 2/5/10/20", "[detect]") {
    CHECK(severity_of(config(), key("k", 3000)) == Severity::low);      // 1x
    CHECK(severity_of(config(), key("k", 7499)) == Severity::low);      // just under 2.5x
    CHECK(severity_of(config(), key("k", 7500)) == Severity::medium);   // 2.5x
    CHECK(severity_of(config(), key("k", 14999)) == Severity::medium);  // just under 5x
    CHECK(severity_of(config(), key("k", 15000)) == Severity::high);    // 5x
    CHECK(severity_of(config(), key("k", 30000)) == Severity::critical);
    CHECK(severity_of(config(), key("k", 3000000)) == Severity::critical);
}

TEST_CASE("write severity bands 2/3/6/12", "[detect]") {
    CHECK(severity_of(config(), key("w", 0, 1000)) == Severity::low);
    CHECK(severity_of(config(), key("w", 0, 1499)) == Severity::low);
    CHECK(severity_of(config(), key("w", 0, 1500)) == Severity::medium);  // 1.5x
    CHECK(severity_of(config(), key("w", 0, 2999)) == Severity::medium);
    CHECK(severity_of(config(), key("w", 0, 3000)) == Severity::high);  // 3x
    CHECK(severity_of(config(), key("w", 0, 5999)) == Severity::high);
    CHECK(severity_of(config(), key("w", 0, 6000)) == Severity::critical);  // 6x
}

TEST_CASE("bands set by the user move the severities", "[detect]") {
    auto c = config({"read.bands.1=1", "read.bands.2=2", "read.bands.3=3", "read.bands.4=4"});
    CHECK(severity_of(c, key("k", 5999)) == Severity::low);
    CHECK(severity_of(c, key("k", 6000)) == Severity::medium);
    CHECK(severity_of(c, key("k", 9000)) == Severity::high);
    CHECK(severity_of(c, key("k", 12000)) == Severity::critical);
}

TEST_CASE("absolute count over the sliding window, exact at its edge", "[detect]") {
    auto c = config({"read.rate=0", "read.count=1000"});
    c.window_s = 10;
    SECTION("both ends inside the window") {
        Feed f(c);
        CHECK(f.step(interval({key("k", 600)})).empty());
        for (int i = 2; i <= 9; ++i) CHECK(f.step(quiet()).empty());
        auto ev = f.step(interval({key("k", 400)}));  // now = 10: the window (0, 10] holds both
        auto e = key_event(ev, HotKind::read);
        CHECK(e.rule == "absolute");
        CHECK(e.value == 1000);
        CHECK(e.threshold == 1000);
        CHECK(e.unit == "reads in window");
        CHECK(e.what == "1000 reads in 10s (limit 1000)");
        CHECK(e.ts == 10);
        // the slot saw the same reads (the server's limit is 30 x 1000)
        CHECK(ev.size() == 2);
    }
    SECTION("the first interval just left the window") {
        Feed f(c);
        CHECK(f.step(interval({key("k", 600)})).empty());
        for (int i = 2; i <= 10; ++i) CHECK(f.step(quiet()).empty());
        CHECK(f.step(interval({key("k", 400)})).empty());  // now = 11: (1, 11] holds 400
        CHECK(f.det.active().empty());
    }
    SECTION("a steady rate reaches the count after window_s") {
        Feed f(c);
        for (int i = 1; i <= 9; ++i) CHECK(f.step(interval({key("k", 100)})).empty());
        auto e = key_event(f.step(interval({key("k", 100)})), HotKind::read);
        CHECK(e.value == 1000);
        CHECK(e.since == 10);
    }
    SECTION("writes") {
        auto w = config({"write.rate=0", "write.count=50"});
        w.window_s = 10;
        Feed f(w);
        for (int i = 1; i <= 9; ++i) CHECK(f.step(interval({key("w", 0, 5)})).empty());
        auto e = key_event(f.step(interval({key("w", 0, 5)})), HotKind::write);
        CHECK(e.value == 50);
        CHECK(e.unit == "writes in window");
        CHECK(e.what == "50 writes in 10s (limit 50)");
    }
}

// ---- temporal rules ----------------------------------------------------------

namespace {
// only the temporal read and write rules
DetectConfig temporal_only() {
    return config({"read.rate=0", "read.share=0", "read.peer_factor=0", "write.rate=0", "write.share=0",
                   "write.peer_factor=0"});
}
}  // namespace

TEST_CASE("temporal: no fire before min_history", "[detect]") {
    Feed f(temporal_only());
    CHECK(f.repeat(interval({key("k", 300)}), 29).empty());
    // now = 30: the baseline covers 29 s (the current interval is not part of it)
    auto ev = f.step(interval({key("k", 3000)}));
    INFO(describe(ev));
    CHECK(ev.empty());
}

TEST_CASE("temporal: fires against the entity's baseline", "[detect]") {
    Feed f(temporal_only());
    CHECK(f.repeat(interval({key("k", 300)}), 30).empty());
    auto e = key_event(f.step(interval({key("k", 1000)})), HotKind::read);
    CHECK(e.rule == "temporal");
    CHECK(e.value == 1000);
    CHECK(e.baseline == 300);
    CHECK(e.threshold == 600);  // multiplier 2 x baseline
    CHECK(e.what == "1000 reads/s (3.3x baseline 300/s)");
    CHECK(e.unit == "reads/s");
    CHECK(e.severity == Severity::low);  // 1.67x
    CHECK(e.ts == 31);
}

TEST_CASE("temporal: just under the multiplier does not fire", "[detect]") {
    Feed f(temporal_only());
    CHECK(f.repeat(interval({key("k", 300)}), 30).empty());
    CHECK(f.step(interval({key("k", 599)})).empty());
}

TEST_CASE("temporal: min_rate keeps low rates quiet and floors the threshold", "[detect]") {
    SECTION("3x a small baseline but under min_rate") {
        Feed f(temporal_only());
        CHECK(f.repeat(interval({key("k", 50)}), 30).empty());
        CHECK(f.step(interval({key("k", 150)})).empty());
    }
    SECTION("above min_rate: the threshold is min_rate, not 2 x 50") {
        Feed f(temporal_only());
        CHECK(f.repeat(interval({key("k", 50)}), 30).empty());
        auto e = key_event(f.step(interval({key("k", 250)})), HotKind::read);
        CHECK(e.rule == "temporal");
        CHECK(e.threshold == 200);
        CHECK(e.baseline == 50);
        CHECK(e.what == "250 reads/s (5.0x baseline 50/s)");
    }
}

TEST_CASE("temporal writes", "[detect]") {
    Feed f(temporal_only());
    CHECK(f.repeat(interval({key("w", 0, 100)}), 30).empty());
    auto e = key_event(f.step(interval({key("w", 0, 250)})), HotKind::write);
    CHECK(e.rule == "temporal");
    CHECK(e.threshold == 200);
    CHECK(e.baseline == 100);
    CHECK(e.unit == "writes/s");
    CHECK(e.what == "250 writes/s (2.5x baseline 100/s)");
}

TEST_CASE("temporal: the baseline skips the intervals in which the entity was hot", "[detect]") {
    Feed f(temporal_only());
    CHECK(f.repeat(interval({key("k", 300)}), 31).empty());
    auto start = f.step(interval({key("k", 1000)}));
    auto e = key_event(start, HotKind::read);
    CHECK(e.rule == "temporal");
    CHECK(e.since == 32);
    // hot for 68 more intervals, far more than the 31 normal ones: were the hot
    // intervals part of the baseline, its median would become 1000 and the hotspot end
    auto later = f.repeat(interval({key("k", 1000)}), 68);
    INFO(describe(later));
    CHECK(only(later, EntityKind::key).empty());
    auto act = only(f.det.active(), EntityKind::key);
    REQUIRE(act.size() == 1);
    CHECK(act[0].baseline == 300);
    CHECK(act[0].threshold == 600);
    CHECK(act[0].since == 32);
    CHECK(act[0].state == "active");
}

TEST_CASE("temporal: a new entity has no baseline", "[detect]") {
    Feed f(temporal_only());
    // another key builds history; a key that appears later has none of its own
    CHECK(f.repeat(interval({key("old", 300)}), 40).empty());
    auto ev = f.step(interval({key("old", 300), key("new", 5000)}));
    INFO(describe(ev));
    CHECK(only(ev, EntityKind::key).empty());
}

// ---- relative rules ----------------------------------------------------------

namespace {
DetectConfig share_only() {
    return config({"read.rate=0", "read.peer_factor=0", "write.rate=0", "write.peer_factor=0"});
}
DetectConfig peers_only() {
    return config({"read.rate=0", "read.share=0", "write.rate=0", "write.share=0"});
}
}  // namespace

TEST_CASE("relative: a key's share of its server", "[detect]") {
    SECTION("four keys: fires") {
        Feed f(share_only());
        auto ev = f.step(interval({key("hot", 600), key("a", 100), key("b", 100), key("c", 100)}));
        INFO(describe(ev));
        REQUIRE(ev.size() == 1);  // shares are for keys only
        auto e = key_event(ev, HotKind::read);
        CHECK(e.name == "hot");
        CHECK(e.rule == "relative");
        CHECK(e.unit == "share");
        CHECK(e.value == Approx(600.0 / 900));
        CHECK(e.threshold == 0.5);
        CHECK(e.what == "600 reads/s, 67% of the server's reads");
    }
    SECTION("three keys are too few peers") {
        Feed f(share_only());
        CHECK(f.step(interval({key("hot", 600), key("a", 100), key("b", 100)})).empty());
    }
    SECTION("a key with no operations is not a peer") {
        Feed f(share_only());
        auto idle = key("idle", 0);
        idle.bytes_out = 10;
        CHECK(f.step(interval({key("hot", 600), key("a", 100), key("b", 100), idle})).empty());
    }
    SECTION("under min_rate") {
        Feed f(share_only());
        CHECK(f.step(interval({key("hot", 150), key("a", 10), key("b", 10), key("c", 10)})).empty());
    }
    SECTION("under the share") {
        Feed f(share_only());
        CHECK(f.step(interval({key("hot", 600), key("a", 300), key("b", 300), key("c", 1)})).empty());
    }
    SECTION("writes") {
        Feed f(share_only());
        auto e = key_event(
            f.step(interval({key("hot", 0, 500), key("a", 0, 50), key("b", 0, 50), key("c", 0, 50)})),
            HotKind::write);
        CHECK(e.rule == "relative");
        CHECK(e.value == Approx(500.0 / 650));
        CHECK(e.what == "500 writes/s, 77% of the server's writes");
    }
}

TEST_CASE("relative: N times the median peer, with at least 4 peers", "[detect]") {
    SECTION("five keys") {
        Feed f(peers_only());
        auto ev =
            f.step(interval({key("hot", 3000), key("a", 100), key("b", 100), key("c", 100), key("d", 100)}));
        auto e = key_event(ev, HotKind::read);
        CHECK(e.name == "hot");
        CHECK(e.rule == "relative");
        CHECK(e.unit == "reads/s");
        CHECK(e.value == 3000);
        CHECK(e.threshold == 1000);  // 10 x the median 100
        CHECK(e.what == "3000 reads/s, 30.0x the median key (100/s)");
        CHECK(e.severity == Severity::medium);  // 3x
        // the five keys sit in five slots: the hot key's slot is hot against its peers too
        auto slots = only(ev, EntityKind::slot, HotKind::read);
        REQUIRE(slots.size() == 1);
        CHECK(slots[0].name == std::to_string(keyscope::cluster_slot("hot")));
        CHECK(slots[0].what == "3000 reads/s, 30.0x the median slot (100/s)");
        CHECK(only(ev, EntityKind::server).empty());  // a server has no peers here
    }
    SECTION("exactly four keys") {
        Feed f(peers_only());
        auto e = key_event(f.step(interval({key("hot", 3000), key("a", 100), key("b", 100), key("c", 100)})),
                           HotKind::read);
        CHECK(e.threshold == 1000);
    }
    SECTION("three keys are too few") {
        Feed f(peers_only());
        CHECK(f.step(interval({key("hot", 3000), key("a", 100), key("b", 100)})).empty());
    }
    SECTION("min_rate floors the threshold") {
        Feed f(peers_only());
        auto e = key_event(f.step(interval({key("hot", 250), key("a", 10), key("b", 10), key("c", 10)})),
                           HotKind::read);
        CHECK(e.threshold == 200);
        CHECK(e.value == 250);
    }
    SECTION("under min_rate") {
        Feed f(peers_only());
        CHECK(f.step(interval({key("hot", 150), key("a", 10), key("b", 10), key("c", 10)})).empty());
    }
    SECTION("peers are counted per server") {
        Feed f(peers_only(), {"10.0.0.1:6379", "10.0.0.2:6379"});
        // four keys, but two on each server
        CHECK(f.step(interval({key("hot", 3000, 0, 0), key("a", 100, 0, 0), key("b", 100, 0, 1),
                               key("c", 100, 0, 1)},
                              2))
                  .empty());
    }
    SECTION("writes") {
        Feed f(peers_only());
        auto e = key_event(
            f.step(interval({key("hot", 0, 2000), key("a", 0, 50), key("b", 0, 50), key("c", 0, 50)})),
            HotKind::write);
        CHECK(e.threshold == 500);
        CHECK(e.value == 2000);
        CHECK(e.what == "2000 writes/s, 40.0x the median key (50/s)");
    }
}

TEST_CASE("the rule exceeded most names the hotspot", "[detect]") {
    // absolute 3500/3000 = 1.17, share 3500/3800 / 0.5 = 1.84, peers 3500/1000 = 3.5
    Feed f(config());
    auto e = key_event(f.step(interval({key("hot", 3500), key("a", 100), key("b", 100), key("c", 100)})),
                       HotKind::read);
    CHECK(e.rule == "relative");
    CHECK(e.threshold == 1000);
    CHECK(e.value == 3500);
    CHECK(e.severity == Severity::medium);  // 3.5x
}

// ---- size --------------------------------------------------------------------

TEST_CASE("size: the largest value", "[detect]") {
    auto big = [](std::uint64_t bytes) {
        auto k = key("big", 1);
        k.max_value = bytes;
        return k;
    };
    Feed f(config());
    CHECK(f.step(interval({big(1048575)})).empty());
    auto e = key_event(f.step(interval({big(1048576)})), HotKind::size);
    CHECK(e.rule == "absolute");
    CHECK(e.unit == "bytes");
    CHECK(e.value == 1048576);
    CHECK(e.threshold == 1048576);
    CHECK(e.baseline == 0);
    CHECK(e.what == "values of 1048576 bytes (limit 1048576)");
    CHECK(e.severity == Severity::low);
    CHECK(e.actions == recommended_actions(HotKind::size, Severity::low, EntityKind::key));
    // bands 2/4/8/16: 2x medium, 4x high, 8x critical
    Feed g(config());
    CHECK(key_event(g.step(interval({big(2 * 1048576)})), HotKind::size).severity == Severity::medium);
    Feed h(config());
    CHECK(key_event(h.step(interval({big(4 * 1048576)})), HotKind::size).severity == Severity::high);
    Feed i(config());
    CHECK(key_event(i.step(interval({big(8 * 1048576)})), HotKind::size).severity == Severity::critical);
}

TEST_CASE("size: reply bytes per second", "[detect]") {
    auto heavy = [](std::uint64_t bytes) {
        auto k = key("heavy", 10);
        k.bytes_out = bytes;
        return k;
    };
    Feed f(config());
    CHECK(f.step(interval({heavy(49'999'999)})).empty());
    auto e = key_event(f.step(interval({heavy(100'000'000)})), HotKind::size);
    CHECK(e.rule == "absolute");
    CHECK(e.unit == "bytes/s");
    CHECK(e.value == 1e8);
    CHECK(e.threshold == 5e7);
    CHECK(e.what == "100000000 reply bytes/s (limit 50000000)");
    CHECK(e.severity == Severity::medium);
    Feed g(config());
    CHECK(key_event(g.step(interval({heavy(100'000'000)}), 2), HotKind::size).value == 5e7);
}

TEST_CASE("size: temporal against the bytes/s baseline", "[detect]") {
    auto heavy = [](std::uint64_t bytes) {
        auto k = key("heavy", 10);
        k.bytes_out = bytes;
        return k;
    };
    SECTION("fires") {
        Feed f(config());
        CHECK(f.repeat(interval({heavy(1'000'000)}), 30).empty());
        auto e = key_event(f.step(interval({heavy(5'000'000)})), HotKind::size);
        CHECK(e.rule == "temporal");
        CHECK(e.value == 5e6);
        CHECK(e.baseline == 1e6);
        CHECK(e.threshold == 4e6);
        CHECK(e.unit == "bytes/s");
        CHECK(e.what == "5000000 reply bytes/s (5.0x baseline 1000000)");
    }
    SECTION("under size.min_rate") {
        Feed f(config());
        CHECK(f.repeat(interval({heavy(100'000)}), 30).empty());
        CHECK(f.step(interval({heavy(900'000)})).empty());
    }
    SECTION("before min_history") {
        Feed f(config());
        CHECK(f.repeat(interval({heavy(1'000'000)}), 29).empty());
        CHECK(f.step(interval({heavy(5'000'000)})).empty());
    }
}

// ---- latency -----------------------------------------------------------------

TEST_CASE("latency: p99 against its limit, latency.for_intervals in a row", "[detect]") {
    const std::uint64_t ns = 20'000'000;  // 20 ms
    const double p99 = p99_ms_of(20, ns);
    REQUIRE(p99 > 10);
    REQUIRE(p99 < 20);
    auto slow = [&](std::uint64_t n) { return interval({slow_key("slow", n, ns)}); };
    SECTION("starts on the third interval in a row") {
        Feed f(config());
        CHECK(f.step(slow(20)).empty());
        CHECK(f.step(slow(20)).empty());
        auto e = key_event(f.step(slow(20)), HotKind::latency);
        CHECK(e.state == "start");
        CHECK(e.since == 3);
        CHECK(e.ts == 3);
        CHECK(e.rule == "absolute");
        CHECK(e.unit == "p99 ms");
        CHECK(e.value == p99);
        CHECK(e.threshold == 10);
        // the intervals spent waiting for for_intervals are not "normal":
        // no baseline yet
        CHECK(e.baseline == 0);
        CHECK(e.what == "p99 19 ms (limit 10 ms)");
        CHECK(e.severity == Severity::low);
        CHECK(e.actions == recommended_actions(HotKind::latency, Severity::low, EntityKind::key));
    }
    SECTION("an interval below the limit starts the count again") {
        Feed f(config());
        CHECK(f.step(slow(20)).empty());
        CHECK(f.step(slow(20)).empty());
        CHECK(f.step(interval({slow_key("slow", 20, 100'000)})).empty());
        CHECK(f.step(slow(20)).empty());
        CHECK(f.step(slow(20)).empty());
        CHECK(key_event(f.step(slow(20)), HotKind::latency).since == 6);
    }
    SECTION("so does an interval with too few samples") {
        Feed f(config());
        CHECK(f.step(slow(20)).empty());
        CHECK(f.step(slow(20)).empty());
        CHECK(f.step(slow(19)).empty());
        CHECK(f.step(slow(20)).empty());
        CHECK(f.step(slow(20)).empty());
        CHECK(key_event(f.step(slow(20)), HotKind::latency).since == 6);
    }
    SECTION("19 samples are too few (latency.min_ops)") {
        Feed f(config());
        CHECK(f.repeat(slow(19), 5).empty());
    }
    SECTION("latency.for_intervals=1 and a lower latency.min_ops") {
        Feed f(config({"latency.for_intervals=1", "latency.min_ops=5"}));
        CHECK(f.step(slow(4)).empty());
        CHECK(key_event(f.step(slow(5)), HotKind::latency).value == p99_ms_of(5, ns));
    }
    SECTION("the p99, not the mean: one slow sample in 100 does not count") {
        Feed f(config({"latency.for_intervals=1"}));
        auto k = key("k", 100);
        k.lat[ks_lat_bucket(ns)] = 1;
        k.lat[ks_lat_bucket(100'000)] = 99;
        CHECK(f.step(interval({k})).empty());
        k.lat[ks_lat_bucket(ns)] = 2;
        k.lat[ks_lat_bucket(100'000)] = 98;
        CHECK(key_event(f.step(interval({k})), HotKind::latency).value == p99);
    }
    SECTION("severity bands 2/4/8/16") {
        Feed f(config({"latency.for_intervals=1"}));
        auto e = key_event(f.step(interval({slow_key("slow", 20, 50'000'000)})), HotKind::latency);
        CHECK(e.value == p99_ms_of(20, 50'000'000));
        CHECK(e.severity == Severity::high);  // ~4.6x the 10 ms limit: [4x, 8x) is "high" with 2/4/8/16
        Feed g(config({"latency.for_intervals=1"}));
        auto c = key_event(g.step(interval({slow_key("slow", 20, 90'000'000)})), HotKind::latency);
        CHECK(c.severity == Severity::critical);  // ~9.2x
    }
}

TEST_CASE("latency: temporal against the p99 baseline", "[detect]") {
    const double base = p99_ms_of(100, 1'000'000), spike = p99_ms_of(100, 6'000'000);
    REQUIRE(spike > 4 * base);
    REQUIRE(spike >= 5);  // latency.min_p99_ms
    REQUIRE(spike < 10);  // latency.p99_ms
    auto k = [](std::uint64_t ns) { return interval({slow_key("k", 100, ns)}); };
    SECTION("fires after three intervals in a row") {
        Feed f(config());
        CHECK(f.repeat(k(1'000'000), 30).empty());
        CHECK(f.step(k(6'000'000)).empty());
        CHECK(f.step(k(6'000'000)).empty());
        auto e = key_event(f.step(k(6'000'000)), HotKind::latency);
        CHECK(e.rule == "temporal");
        CHECK(e.since == 33);
        CHECK(e.value == spike);
        CHECK(e.baseline == base);
        CHECK(e.threshold == 5);  // max(4 x baseline, latency.min_p99_ms)
        CHECK(e.what == "p99 5.8 ms (5.9x baseline 0.98 ms)");
        CHECK(e.severity == Severity::low);
    }
    SECTION("under latency.min_p99_ms") {
        Feed f(config());
        CHECK(f.repeat(k(1'000'000), 30).empty());
        REQUIRE(p99_ms_of(100, 4'500'000) > 4 * base);
        REQUIRE(p99_ms_of(100, 4'500'000) < 5);
        CHECK(f.repeat(k(4'500'000), 5).empty());
    }
    SECTION("intervals with too few samples leave the baseline alone") {
        Feed f(config());
        CHECK(f.repeat(k(1'000'000), 30).empty());
        // 30 intervals of fast operations, each too few to tell a p99
        CHECK(f.repeat(interval({slow_key("k", 5, 100'000)}), 30).empty());
        auto ev = f.repeat(k(6'000'000), 3);
        auto e = key_event(ev, HotKind::latency);
        CHECK(e.baseline == base);
        CHECK(e.since == 63);
    }
}

// ---- errors ------------------------------------------------------------------

TEST_CASE("error: error % of a key, with error.min_errors", "[detect]") {
    SECTION("at the limit") {
        Feed f(config());
        auto e = key_event(f.step(interval({with_errors(key("e", 200), 10)})), HotKind::error);
        CHECK(e.rule == "absolute");
        CHECK(e.unit == "error %");
        CHECK(e.value == 5);
        CHECK(e.threshold == 5);
        CHECK(e.what == "5% errors (10 errors in 200 operations, limit 5%)");
        CHECK(e.severity == Severity::low);
        CHECK(e.actions == recommended_actions(HotKind::error, Severity::low, EntityKind::key));
    }
    SECTION("just under the limit") {
        Feed f(config());
        CHECK(f.step(interval({with_errors(key("e", 201), 10)})).empty());
    }
    SECTION("too few errors, however high the rate") {
        Feed f(config());
        CHECK(f.step(interval({with_errors(key("e", 50), 9)})).empty());
        Feed g(config({"error.min_errors=5"}));
        auto e = key_event(g.step(interval({with_errors(key("e", 50), 9)})), HotKind::error);
        CHECK(e.value == 18);
        CHECK(e.severity == Severity::medium);  // 3.6x with 2/4/8/16
    }
    SECTION("severity") {
        Feed f(config());
        auto e = key_event(f.step(interval({with_errors(key("e", 0, 100), 40)})), HotKind::error);
        CHECK(e.value == 40);
        CHECK(e.severity == Severity::critical);  // 8x
    }
}

TEST_CASE("error: a server's error % counts keyless requests", "[detect]") {
    Feed f(config());
    auto d = interval({key("k", 100)});
    d.per_target[0].requests = 1000;
    d.per_target[0].replies = 1000;
    d.per_target[0].errors = 100;
    auto ev = f.step(d);
    INFO(describe(ev));
    REQUIRE(ev.size() == 1);
    const auto& e = ev[0];
    CHECK(e.entity == EntityKind::server);
    CHECK(e.kind == HotKind::error);
    CHECK(e.name.empty());
    CHECK(e.value == 10);
    CHECK(e.what == "10% errors (100 errors in 1000 operations, limit 5%)");
    CHECK(e.severity == Severity::medium);
}

TEST_CASE("error: temporal against the error % baseline", "[detect]") {
    Feed f(config());
    CHECK(f.repeat(interval({with_errors(key("e", 1000), 10)}), 30).empty());
    auto e = key_event(f.step(interval({with_errors(key("e", 1000), 40)})), HotKind::error);
    CHECK(e.rule == "temporal");
    CHECK(e.value == 4);
    CHECK(e.baseline == 1);
    CHECK(e.threshold == 3);  // baseline + margin 2
    CHECK(e.what == "4% errors (40 errors in 1000 operations, baseline 1%)");
}

// ---- lifecycle ---------------------------------------------------------------

TEST_CASE("lifecycle: start, update on a 25% move, end after quiet_s", "[detect]") {
    Feed f(config());
    auto k = [](std::uint64_t reads) { return interval({key("k", reads)}); };
    auto start = key_event(f.step(k(3000)), HotKind::read);
    CHECK(start.state == "start");
    CHECK(start.since == 1);

    // +10%: no event, but the state shown by active() follows
    CHECK(only(f.step(k(3300)), EntityKind::key).empty());
    auto act = only(f.det.active(), EntityKind::key);
    REQUIRE(act.size() == 1);
    CHECK(act[0].value == 3300);
    CHECK(act[0].what == "3300 reads/s (limit 3000/s)");
    CHECK(act[0].ts == 1);  // the time of the last event

    // +25% over the last emitted value (3000): update, same severity
    auto up = key_event(f.step(k(3750)), HotKind::read);
    CHECK(up.state == "update");
    CHECK(up.value == 3750);
    CHECK(up.severity == Severity::low);
    CHECK(up.since == 1);
    CHECK(up.ts == 3);

    CHECK(only(f.step(k(4000)), EntityKind::key).empty());  // +6.7% over 3750

    // below hold x threshold (2400) from now = 5: the end comes 10 s after the last holding interval (4)
    for (int t = 5; t <= 13; ++t) {
        INFO("now " << t);
        CHECK(only(f.step(k(2000)), EntityKind::key).empty());
        CHECK(only(f.det.active(), EntityKind::key).size() == 1);
    }
    auto end = key_event(f.step(k(2000)), HotKind::read);
    CHECK(end.state == "end");
    CHECK(end.ts == 14);
    CHECK(end.since == 1);
    CHECK(end.value == 2000);
    CHECK(end.what == "2000 reads/s (limit 3000/s)");
    CHECK(end.severity == Severity::low);
    CHECK(only(f.det.active(), EntityKind::key).empty());

    // between hold and 1x does not start a new one; 1x does
    CHECK(only(f.step(k(2900)), EntityKind::key).empty());
    auto again = key_event(f.step(k(3000)), HotKind::read);
    CHECK(again.state == "start");
    CHECK(again.since == 16);
}

TEST_CASE("lifecycle: a key that goes silent ends with value 0", "[detect]") {
    Feed f(config());
    CHECK(key_event(f.step(interval({key("k", 3000)})), HotKind::read).state == "start");
    for (int t = 2; t <= 10; ++t) CHECK(only(f.step(quiet()), EntityKind::key).empty());
    auto ev = f.step(quiet());
    auto end = key_event(ev, HotKind::read);
    CHECK(end.state == "end");
    CHECK(end.value == 0);
    CHECK(end.ts == 11);
    // the slot ends with it
    CHECK(ev.size() == 2);
    CHECK(f.det.active().empty());
}

TEST_CASE("lifecycle: no flapping around the threshold", "[detect]") {
    Feed f(config());
    CHECK(key_event(f.step(interval({key("k", 3000)})), HotKind::read).state == "start");
    std::vector<HotspotEvent> all;
    // between hold (2400) and 1x for a long time
    for (int i = 0; i < 60; ++i) {
        auto ev = f.step(interval({key("k", i % 2 ? 2500 : 2990)}));
        all.insert(all.end(), ev.begin(), ev.end());
    }
    // crossing 1x back and forth
    for (int i = 0; i < 60; ++i) {
        auto ev = f.step(interval({key("k", i % 2 ? 2950 : 3050)}));
        all.insert(all.end(), ev.begin(), ev.end());
    }
    INFO(describe(all));
    CHECK(all.empty());
    CHECK(only(f.det.active(), EntityKind::key).size() == 1);
}

TEST_CASE("lifecycle: the quiet period restarts when the value comes back", "[detect]") {
    Feed f(config());
    auto k = [](std::uint64_t reads) { return interval({key("k", reads)}); };
    CHECK(key_event(f.step(k(3000)), HotKind::read).state == "start");
    for (int i = 0; i < 9; ++i) CHECK(only(f.step(k(1000)), EntityKind::key).empty());  // now 2..10
    CHECK(only(f.step(k(2500)), EntityKind::key).empty());  // now 11: holding again
    for (int i = 0; i < 9; ++i) CHECK(only(f.step(k(1000)), EntityKind::key).empty());  // now 12..20
    auto end = key_event(f.step(k(1000)), HotKind::read);                               // now 21
    CHECK(end.state == "end");
    CHECK(end.ts == 21);
}

TEST_CASE("lifecycle: quiet_s is in seconds, not intervals", "[detect]") {
    Feed f(config());
    CHECK(key_event(f.step(interval({key("k", 6000)}, 1), 2), HotKind::read).state == "start");  // now 2
    for (int i = 0; i < 4; ++i) CHECK(only(f.step(quiet(), 2), EntityKind::key).empty());        // now 4..10
    CHECK(key_event(f.step(quiet(), 2), HotKind::read).state == "end");                          // now 12
}

TEST_CASE("severity: upgrade, and downgrade only below hold x the band held", "[detect]") {
    Feed f(config());
    auto k = [](std::uint64_t reads) { return interval({key("k", reads)}); };
    auto e = key_event(f.step(k(7500)), HotKind::read);  // 2.5x
    CHECK(e.state == "start");
    CHECK(e.severity == Severity::medium);

    // 2.1x: under the medium band (2.5) but above 0.8 x 2.5 = 2.0, and a 16% move
    CHECK(only(f.step(k(6300)), EntityKind::key).empty());
    auto act = only(f.det.active(), EntityKind::key);
    REQUIRE(act.size() == 1);
    CHECK(act[0].severity == Severity::medium);

    // 1.9x: below 2.0, steps down to low
    auto down = key_event(f.step(k(5700)), HotKind::read);
    CHECK(down.state == "update");
    CHECK(down.severity == Severity::low);
    CHECK(down.peak == Severity::medium);
    CHECK(down.value == 5700);
    CHECK(down.actions == recommended_actions(HotKind::read, Severity::low, EntityKind::key));

    // back to 2.5x: medium again
    auto up = key_event(f.step(k(7500)), HotKind::read);
    CHECK(up.state == "update");
    CHECK(up.severity == Severity::medium);

    // straight to critical and down through the bands
    auto crit = key_event(f.step(k(30000)), HotKind::read);
    CHECK(crit.severity == Severity::critical);
    CHECK(crit.peak == Severity::critical);
    CHECK(crit.actions == recommended_actions(HotKind::read, Severity::critical, EntityKind::key));
    CHECK(only(f.step(k(25000)), EntityKind::key).empty());  // 8.3x >= 0.8 x 10: still critical
    auto high = key_event(f.step(k(23000)), HotKind::read);  // 7.7x
    CHECK(high.severity == Severity::high);
    CHECK(high.peak == Severity::critical);

    // the end event keeps the severity held and the peak
    for (int i = 0; i < 9; ++i) CHECK(only(f.step(quiet()), EntityKind::key).empty());
    auto end = key_event(f.step(quiet()), HotKind::read);
    CHECK(end.state == "end");
    CHECK(end.severity == Severity::high);
    CHECK(end.peak == Severity::critical);
    CHECK(only(f.det.active(), EntityKind::key).empty());
}

TEST_CASE("severity hysteresis with writes (bands 2/3/6/12)", "[detect]") {
    Feed f(config());
    auto w = [](std::uint64_t writes) { return interval({key("w", 0, writes)}); };
    CHECK(key_event(f.step(w(3000)), HotKind::write).severity == Severity::high);  // 3x
    CHECK(only(f.step(w(2500)), EntityKind::key).empty());  // 2.5x >= 0.8 x 3 = 2.4: still high
    auto down = key_event(f.step(w(2300)), HotKind::write);
    CHECK(down.severity == Severity::medium);  // 2.3x
    CHECK(down.peak == Severity::high);
}

TEST_CASE("active(): every active hotspot, most severe first", "[detect]") {
    Feed f(config());
    CHECK(f.det.active().empty());
    auto ev = f.step(interval({key("a", 3000), key("b", 30000), key("c", 7500)}));
    auto keys = only(ev, EntityKind::key);
    REQUIRE(keys.size() == 3);
    auto act = f.det.active();
    CHECK(act.size() == ev.size());
    for (const auto& e : act) CHECK(e.state == "active");
    for (std::size_t i = 1; i < act.size(); ++i) CHECK(act[i - 1].severity >= act[i].severity);
    auto ka = only(act, EntityKind::key);
    REQUIRE(ka.size() == 3);
    CHECK(ka[0].name == "b");
    CHECK(ka[0].severity == Severity::critical);
    CHECK(ka[1].name == "c");
    CHECK(ka[1].severity == Severity::medium);
    CHECK(ka[2].name == "a");
    CHECK(ka[2].severity == Severity::low);
    CHECK(only(act, EntityKind::server).empty());  // 40500 reads/s: under 30 x 3000
    CHECK(f.det.tracked() == 7);                   // 3 keys, 3 slots, 1 server
}

TEST_CASE("one entity can be hot in several kinds at once", "[detect]") {
    Feed f(config());
    auto k = with_errors(slow_key("k", 4000, 20'000'000), 400);
    k.max_value = 2 * 1048576;
    auto ev = only(f.repeat(interval({k}), 3), EntityKind::key);
    INFO(describe(ev));
    std::map<HotKind, double> since;
    for (const auto& e : ev) {
        CHECK(e.state == "start");
        since[e.kind] = e.since;
    }
    // latency waits for latency.for_intervals (3)
    CHECK(since == std::map<HotKind, double>{
                       {HotKind::read, 1}, {HotKind::size, 1}, {HotKind::latency, 3}, {HotKind::error, 1}});
}

TEST_CASE("read.for_intervals: a hotspot starts after that many intervals in a row", "[detect]") {
    Feed f(config({"read.for_intervals=3"}));
    auto k = [](std::uint64_t reads) { return interval({key("k", reads)}); };
    CHECK(f.step(k(3000)).empty());
    CHECK(f.step(k(3000)).empty());
    CHECK(f.step(k(2999)).empty());  // one interval under the limit resets the count
    CHECK(f.step(k(3000)).empty());
    CHECK(f.step(k(3000)).empty());
    auto e = key_event(f.step(k(3000)), HotKind::read);
    CHECK(e.since == 6);
    CHECK(e.state == "start");
    // per-prefix override: one interval is enough for "vip:*"
    DetectConfig c = config({"read.for_intervals=3"});
    c.add_override("prefix=vip:* read.for_intervals=1");
    Feed g(c);
    auto ev = g.step(interval({key("vip:1", 3000), key("std:1", 3000)}));
    auto keys = only(ev, EntityKind::key);
    REQUIRE(keys.size() == 1);
    CHECK(keys[0].name == "vip:1");
}

TEST_CASE("absolute limits are scaled for prefixes and servers", "[detect]") {
    // 100 keys of 900 reads/s: 90000 reads/s for their prefix and their server
    auto keys = [](std::uint64_t each) {
        std::vector<KeyStats> v;
        for (int n = 0; n < 100; ++n) v.push_back(key("p:" + std::to_string(n), each));
        return interval(std::move(v));
    };
    SECTION("defaults: 10x for a prefix, 30x for a server, 1x for a slot") {
        Feed f(DetectConfig{});  // prefixes at depth 1
        auto ev = f.step(keys(900));
        INFO(describe(ev));
        CHECK(only(ev, EntityKind::key).empty());
        CHECK(only(ev, EntityKind::slot).empty());  // one key per slot here: 900 < 3000
        auto p = only(ev, EntityKind::prefix, HotKind::read);
        REQUIRE(p.size() == 1);
        CHECK(p[0].name == "p:*");
        CHECK(p[0].rule == "absolute");
        CHECK(p[0].threshold == 30000);
        CHECK(p[0].value == 90000);
        CHECK(p[0].what == "90000 reads/s (limit 30000/s)");
        CHECK(p[0].severity == Severity::medium);  // 3x
        auto s = only(ev, EntityKind::server, HotKind::read);
        REQUIRE(s.size() == 1);
        CHECK(s[0].threshold == 90000);
        CHECK(s[0].what == "90000 reads/s (limit 90000/s)");
        CHECK(s[0].severity == Severity::low);
        CHECK(ev.size() == 2);

        Feed g(DetectConfig{});
        auto ev2 = g.step(keys(899));
        CHECK(only(ev2, EntityKind::server).empty());
        CHECK(only(ev2, EntityKind::prefix).size() == 1);
    }
    SECTION("scales set by the user, globally and per server") {
        DetectConfig c;
        c.set("prefix.rate_scale=0");  // 0: no absolute limit for prefixes
        c.add_override(std::string("server=") + kServer + " server.rate_scale=2");
        Feed f(c);
        auto ev = f.step(keys(900));
        INFO(describe(ev));
        CHECK(only(ev, EntityKind::prefix).empty());
        auto s = only(ev, EntityKind::server, HotKind::read);
        REQUIRE(s.size() == 1);
        CHECK(s[0].threshold == 6000);
        CHECK(s[0].severity == Severity::critical);  // 15x
    }
    SECTION("the count limit scales too") {
        auto c = config({"read.rate=0", "read.count=1000"});
        c.window_s = 10;
        Feed f(c);
        CHECK(f.repeat(keys(30), 9).empty());
        auto ev = f.step(keys(30));  // 100 x 30 x 10 = 30000 reads in the window
        INFO(describe(ev));
        REQUIRE(ev.size() == 1);
        CHECK(ev[0].entity == EntityKind::server);
        CHECK(ev[0].value == 30000);
        CHECK(ev[0].threshold == 30000);
        CHECK(ev[0].what == "30000 reads in 10s (limit 30000)");
    }
    SECTION("reply bytes/s scale; value sizes and error % do not") {
        auto v = keys(30);
        for (auto& k : v.keys) k.bytes_out = 500'000;  // 50 MB/s for the server, 0.5 MB/s per key
        v.keys[0].max_value = 2 * 1048576;
        v.per_target[0].errors = 300;  // 10% of the server's requests
        Feed f(config());
        auto ev = f.step(v);
        INFO(describe(ev));
        auto size = only(ev, EntityKind::server, HotKind::size);
        REQUIRE(size.size() == 1);
        CHECK(size[0].unit == "bytes");  // the value size, not 50 MB/s against 30 x 50 MB/s
        CHECK(size[0].threshold == 1048576);
        auto err = only(ev, EntityKind::server, HotKind::error);
        REQUIRE(err.size() == 1);
        CHECK(err[0].threshold == 5);
        CHECK(err[0].value == 10);

        v.keys[0].max_value = 0;
        Feed g(config());
        CHECK(only(g.step(v), EntityKind::server, HotKind::size).empty());  // 50 MB/s < 30 x 50 MB/s
        Feed h(config({"server.rate_scale=1"}));
        auto size2 = only(h.step(v), EntityKind::server, HotKind::size);
        REQUIRE(size2.size() == 1);
        CHECK(size2[0].unit == "bytes/s");
        CHECK(size2[0].value == 5e7);
        CHECK(size2[0].threshold == 5e7);
    }
}

// ---- no false positives ------------------------------------------------------

TEST_CASE("uniform traffic over 5000 keys raises nothing, and what is tracked stays bounded", "[detect]") {
    // 5000 keys of ~0.5 reads/s each: ~2500 reads/s for their server and their
    // prefix "user:*". With the read rules' floor lowered to 0, every key is
    // a candidate for a history, and which are the busiest changes every
    // interval with the noise, so the tracked set fills up to its bound; 40
    // intervals of 20 s span more than the 600 s history, so records and
    // entities also expire.
    const bool floors = GENERATE(true, false);
    INFO((floors ? "default configuration" : "read.min_rate=0"));
    Feed f(floors ? DetectConfig{} : [] {
        DetectConfig c;
        c.set("read.min_rate=0");  // the lowest floor of the ops rules: every key is a candidate
        return c;
    }());
    std::mt19937 rng(12345);
    const double dt = 20;
    std::vector<HotspotEvent> all;
    std::size_t most_tracked = 0;
    for (int i = 0; i < 40; ++i) {
        std::vector<KeyStats> keys;
        keys.reserve(5000);
        for (int n = 0; n < 5000; ++n) {
            auto k = key("user:" + std::to_string(n), 9 + rng() % 3, rng() % 2);
            k.bytes_out = 100 * k.reads;
            k.max_value = 100 + rng() % 20;
            k.errors = rng() % 200 == 0 ? 1 : 0;
            k.lat[ks_lat_bucket(50'000 + rng() % 150'000)] = k.ops();
            keys.push_back(std::move(k));
        }
        auto d = interval(std::move(keys));
        d.per_target[0].requests += 100;  // some keyless commands (PING, INFO)
        auto ev = f.step(d, dt);
        all.insert(all.end(), ev.begin(), ev.end());
        most_tracked = std::max(most_tracked, f.det.tracked());
    }
    INFO(describe(all));
    CHECK(all.empty());
    CHECK(f.det.active().empty());
    CHECK(most_tracked <= 4096);  // bounded
    if (!floors) CHECK(most_tracked > 3000);
}

TEST_CASE("entities far below every rule's floor earn no history", "[detect]") {
    // default floors: 100 writes/s and 200 reads/s for the temporal and
    // relative rules, so an entity under a tenth of 100/s is not a candidate;
    // the server always is, and so is the prefix "user:*" with 100 reads/s
    Feed f(DetectConfig{});
    auto make = [](std::uint64_t busy_reads) {
        std::vector<KeyStats> keys;
        for (int n = 0; n < 100; ++n) {
            auto k = key("user:" + std::to_string(n), n == 7 ? busy_reads : 1);
            k.bytes_out = 10 * k.reads;
            k.max_value = 10;
            k.lat[ks_lat_bucket(100'000)] = k.reads;
            keys.push_back(std::move(k));
        }
        return interval(std::move(keys));
    };
    for (int i = 0; i < 5; ++i) CHECK(f.step(make(1)).empty());
    CHECK(f.det.tracked() == 2);
    // 10 reads/s reach the floor, but no rule can fire under 100/s: the key
    // and its slot are on probation for one interval ...
    CHECK(f.step(make(10)).empty());
    CHECK(f.det.tracked() == 2);
    // ... and tracked once they are picks two intervals in a row
    CHECK(f.step(make(10)).empty());
    CHECK(f.det.tracked() == 4);
    for (int i = 0; i < 5; ++i) CHECK(f.step(make(1)).empty());
    CHECK(f.det.tracked() == 4);
    // a pick between the floors that is not one again goes nowhere
    f.step(make(20));
    f.step(make(1));
    f.step(make(20));
    CHECK(f.det.tracked() == 4);
}

TEST_CASE("an entity tracked after its probation starts with its probation interval", "[detect]") {
    // the temporal rule needs --min-history intervals of history: a key at
    // 50 reads/s (on probation, under the 100/s floors) for exactly that many
    // intervals, then at 250/s, fires in the first interval it can
    DetectConfig c;
    c.set("read.rate=0");
    const auto need = static_cast<int>(c.min_history_s);  // intervals of 1 s
    const int before = GENERATE_COPY(need - 1, need);
    INFO("intervals at 50/s: " << before);
    Feed f(c);
    auto steady = interval({key("k", 50)});
    for (int i = 0; i < before; ++i) CHECK(only(f.step(steady), EntityKind::key).empty());
    auto ev = only(f.step(interval({key("k", 250)})), EntityKind::key);
    if (before < need) {
        CHECK(ev.empty());  // too short a history; the relative rule has no peers
    } else {
        REQUIRE(ev.size() == 1);
        CHECK(ev[0].rule == "temporal");
        CHECK(ev[0].baseline == 50);
    }
}

TEST_CASE("uniform traffic above the relative and temporal floors raises nothing", "[detect]") {
    // 20 keys of ~300 reads/s and ~120 writes/s with 10% noise: the temporal,
    // share and peer rules all look at them; only the absolute rates are off
    // (the server's total is far above them by design)
    Feed f(config({"read.rate=0", "write.rate=0"}));
    std::mt19937 rng(7);
    std::vector<HotspotEvent> all;
    for (int i = 0; i < 300; ++i) {
        std::vector<KeyStats> keys;
        for (int n = 0; n < 20; ++n) {
            auto k = key("user:" + std::to_string(n), 285 + rng() % 31, 114 + rng() % 13);
            k.errors = rng() % 13;
            k.bytes_out = 100 * k.reads;
            k.lat[ks_lat_bucket(1'500'000 + rng() % 1'000'000)] = k.ops();
            keys.push_back(std::move(k));
        }
        auto ev = f.step(interval(std::move(keys)));
        all.insert(all.end(), ev.begin(), ev.end());
    }
    INFO(describe(all));
    CHECK(all.empty());
}

TEST_CASE("a hot key among uniform traffic is found", "[detect]") {
    Feed f(DetectConfig{});
    std::mt19937 rng(99);
    auto make = [&](std::uint64_t hot_reads) {
        std::vector<KeyStats> keys;
        for (int n = 0; n < 1000; ++n) keys.push_back(key("item:" + std::to_string(n), 1 + rng() % 2));
        keys.push_back(key("item:hot", hot_reads));
        return interval(std::move(keys));
    };
    // 40 quiet intervals of item:hot at `before` reads/s, then one at 400/s: its events
    auto jump_from = [&](std::uint64_t before) {
        for (int i = 0; i < 40; ++i) CHECK(only(f.step(make(before)), EntityKind::key).empty());
        return only(f.step(make(400)), EntityKind::key);
    };
    SECTION("with a history") {
        // 30 reads/s keeps item:hot among the busiest keys and above a tenth
        // of the rules' floors, so it has a history
        auto ev = jump_from(30);
        INFO(describe(ev));
        REQUIRE(ev.size() == 1);
        CHECK(ev[0].name == "item:hot");
        // temporal (max(2 x 30, 200)) and peers (max(10 x median, 200)) tie at
        // the min_rate floor; the first rule considered keeps a tie
        CHECK(ev[0].rule == "temporal");
        CHECK(ev[0].baseline == 30);
        CHECK(ev[0].threshold == 200);
        CHECK(ev[0].value == 400);
    }
    SECTION("too quiet before to have a history: its peers tell") {
        auto ev = jump_from(3);
        INFO(describe(ev));
        REQUIRE(ev.size() == 1);
        CHECK(ev[0].name == "item:hot");
        CHECK(ev[0].rule == "relative");
        CHECK(ev[0].threshold == 200);
        CHECK(ev[0].value == 400);
    }
}

// ---- bugs --------------------------------------------------------------------

TEST_CASE("distinct keys with the same stored bytes are distinct entities", "[detect]") {
    // the engine names a key entity by (target, stored bytes), not by its hash:
    // two truncated keys with the same first KS_KEY_MAX bytes, or two keys known
    // only through replies (no name), become one entity with two records per
    // interval, so the window sums both
    auto c = config({"read.rate=0", "read.count=3000"});
    c.window_s = 10;
    SECTION("truncated keys") {
        Feed f(c);
        auto a = key(std::string(64, 'p'), 2000);
        a.truncated = true;
        a.key_len = 100;
        a.hash = 1;
        auto b = a;
        b.hash = 2;
        auto ev = f.step(interval({a, b}));
        INFO(describe(ev));
        CHECK(only(ev, EntityKind::key).empty());  // each key: 2000 reads in the window, limit 3000
    }
    SECTION("keys without a name") {
        Feed f(c);
        auto a = key("", 2000);
        a.named = false;
        a.hash = 1;
        auto b = a;
        b.hash = 2;
        auto ev = f.step(interval({a, b}));
        INFO(describe(ev));
        CHECK(only(ev, EntityKind::key).empty());
    }
}

TEST_CASE("latency.min_ops below 20 lets a slow key with few operations be tracked", "[detect]") {
    // the engine picks the entities worth a history by p99 only when they had
    // at least 20 operations (a constant), whatever latency.min_ops says; a slow
    // key with few operations among 300 busier keys is then never looked at
    Feed f(config({"latency.min_ops=5"}));
    std::vector<KeyStats> keys;
    for (int n = 0; n < 300; ++n) {
        auto k = key("busy:" + std::to_string(n), 100);
        k.bytes_out = 1000;
        k.max_value = 100;
        keys.push_back(std::move(k));
    }
    keys.push_back(slow_key("slow", 10, 50'000'000));
    auto ev = f.repeat(interval(std::move(keys)), 3);  // latency.for_intervals
    auto lat = only(ev, EntityKind::key, HotKind::latency);
    INFO(describe(ev));
    REQUIRE(lat.size() == 1);
    CHECK(lat[0].name == "slow");
}

TEST_CASE("for_intervals: intervals waiting to start a hotspot stay out of the baseline", "[detect]") {
    // "intervals in a row above the threshold before a hotspot starts": the
    // engine keeps those intervals in the temporal baseline (only intervals of
    // an active hotspot are skipped), so a long wait raises the baseline until
    // the spike no longer looks like one, and a sustained 3.3x spike never starts
    auto c = temporal_only();
    c.set("read.for_intervals=40");
    Feed f(c);
    CHECK(f.repeat(interval({key("k", 300)}), 30).empty());
    auto ev = only(f.repeat(interval({key("k", 1000)}), 60), EntityKind::key);
    INFO(describe(ev));
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].since == 70);
    CHECK(ev[0].baseline == 300);
}
