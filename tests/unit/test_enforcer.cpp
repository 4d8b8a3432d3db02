// The enforcer's logic with a fake rule sink: validation, what reaches the
// kernel, the policy from hotspots, cool-down, expiry and the circuit breaker.
#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <string>

#include "act/enforcer.hpp"
#include "act/rule_json.hpp"
#include "proto/redis_commands.hpp"
#include "util/error.hpp"

using namespace keyscope;
using Catch::Matchers::Contains;

namespace {

struct FakeSink : RuleSink {
    struct KeyLess {
        bool operator()(const ks_rule_key& a, const ks_rule_key& b) const {
            return std::memcmp(&a, &b, sizeof a) < 0;
        }
    };
    std::map<ks_rule_key, ks_rule, KeyLess> rules;
    std::map<ks_rule_key, int, KeyLess> allow;
    std::map<std::uint32_t, ks_rule_stats> stats;
    std::uint32_t kinds = 0;
    std::uint64_t mono = 1'000'000'000;

    void put_rule(const ks_rule_key& k, const ks_rule& r) override { rules[k] = r; }
    bool read_rule(const ks_rule_key& k, ks_rule* r) const override {
        auto it = rules.find(k);
        if (it == rules.end()) return false;
        *r = it->second;
        return true;
    }
    void delete_rule(const ks_rule_key& k) override { rules.erase(k); }
    ks_rule_stats rule_stats(std::uint32_t slot) const override {
        auto it = stats.find(slot);
        return it == stats.end() ? ks_rule_stats{} : it->second;
    }
    void clear_rule_stats(std::uint32_t slot) override { stats[slot] = {}; }
    void put_allow(const ks_rule_key& k) override { allow[k] = 1; }
    void set_enforcement(std::uint32_t k, char) override { kinds = k; }
    std::uint64_t monotonic_ns() const override { return mono; }
};

std::vector<Target> one_redis() {
    return {parse_target("redis://127.0.0.1:6379")};
}

RuleSpec key_rule(const std::string& key, double rate) {
    RuleSpec s;
    s.match = RuleMatch::key;
    s.text = key;
    s.rate = rate;
    return s;
}

HotspotEvent hot_key(const std::string& key, Severity sev, HotKind kind = HotKind::read) {
    HotspotEvent h;
    h.state = "active";
    h.entity = EntityKind::key;
    h.name = key;
    h.hash = key_hash(key);
    h.kind = kind;
    h.severity = sev;
    h.what = "test";
    return h;
}

const ks_rule& only_rule(const FakeSink& sink) {
    REQUIRE(sink.rules.size() == 1);
    return sink.rules.begin()->second;
}

}  // namespace

TEST_CASE("enforcer: a throttle rule reaches the kernel with its GCRA numbers and expiry", "[enforcer]") {
    FakeSink sink;
    auto targets = one_redis();
    Enforcer e(sink, ActConfig{}, targets);
    CHECK(sink.kinds == 0);  // no rule: the programs skip enforcement entirely
    const Rule& r = e.add(key_rule("hot", 500), "manual", "test", 0, 100.0);
    CHECK(r.spec.burst == 100);  // rate x 0.2 s
    const ks_rule_key k = sink.rules.begin()->first;
    CHECK(k.match == KS_MATCH_KEY);
    CHECK(k.hash == key_hash("hot"));
    CHECK(k.target == 0);
    const ks_rule& b = only_rule(sink);
    CHECK(b.action == KS_ACT_THROTTLE);
    CHECK(b.interval_ns == 2'000'000);
    CHECK(b.tolerance_ns == 99 * 2'000'000ull);
    CHECK(b.expires_ns == sink.mono + 5'000'000'000ull);
    CHECK(b.flags == 0);
    CHECK(sink.kinds == KS_RK_KEY);
    auto events = e.take_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0].event == "added");
}

TEST_CASE("enforcer: renewal moves the expiry and keeps the bucket", "[enforcer]") {
    FakeSink sink;
    auto targets = one_redis();
    Enforcer e(sink, ActConfig{}, targets);
    e.add(key_rule("hot", 100), "manual", "", 0, 100.0);
    sink.rules.begin()->second.tat = 777;
    sink.mono += 2'000'000'000;
    e.tick(102.0, {}, {1000});
    CHECK(only_rule(sink).tat == 777);
    CHECK(only_rule(sink).expires_ns == sink.mono + 5'000'000'000ull);
}

TEST_CASE("enforcer: bad rules are refused with one line", "[enforcer]") {
    FakeSink sink;
    auto targets = one_redis();
    Enforcer e(sink, ActConfig{}, targets);
    CHECK_THROWS_WITH(e.add(key_rule("hot", 0), "manual", "", 0, 1), Contains("rate"));
    RuleSpec p;
    p.match = RuleMatch::prefix;
    p.text = "user";
    p.rate = 10;
    CHECK_THROWS_WITH(e.add(p, "manual", "", 0, 1), Contains("must end with ':'"));
    RuleSpec shed;
    shed.match = RuleMatch::key;
    shed.text = "k";
    shed.action = RuleAction::shed;
    shed.shed = 1.5;
    CHECK_THROWS_WITH(e.add(shed, "manual", "", 0, 1), Contains("shed share"));
    RuleSpec c;
    c.match = RuleMatch::client;
    c.rate = 10;
    CHECK_THROWS_WITH(e.add(c, "manual", "", 0, 1), Contains("client's address"));
    e.add(key_rule("hot", 10), "manual", "", 0, 1);
    CHECK_THROWS_WITH(e.add(key_rule("hot", 20), "manual", "", 0, 1), Contains("already matches"));
    CHECK(sink.rules.size() == 1);
}

TEST_CASE("enforcer: rules from JSON, and the errors an operator sees", "[enforcer]") {
    auto targets = one_redis();
    double ttl = 0;
    std::string reason;
    auto spec = rule_spec_from_json(nlohmann::json::parse(R"({"prefix":"user:","shed":0.5,"ttl_s":60})"),
                                    targets, &ttl, &reason);
    CHECK(spec.match == RuleMatch::prefix);
    CHECK(spec.text == "user:");
    CHECK(spec.action == RuleAction::shed);
    CHECK(spec.shed == 0.5);
    CHECK(ttl == 60);
    spec = rule_spec_from_json(nlohmann::json::parse(R"({"key":"k","client":"10.0.0.7","rate":5})"), targets,
                               &ttl, &reason);
    CHECK(spec.match == RuleMatch::key);
    CHECK(client_text(spec) == "10.0.0.7");
    CHECK_THROWS_WITH(rule_spec_from_json(nlohmann::json::parse(R"({"key":"k"})"), targets, &ttl, &reason),
                      Contains("either a rate"));
    CHECK_THROWS_WITH(
        rule_spec_from_json(nlohmann::json::parse(R"({"key":"k","rate":1,"server":"1.2.3.4:1"})"), targets,
                            &ttl, &reason),
        Contains("does not observe"));
    CHECK_THROWS_WITH(
        rule_spec_from_json(nlohmann::json::parse(R"({"client":"nope","rate":1})"), targets, &ttl, &reason),
        Contains("bad address"));
}

TEST_CASE("enforcer: the policy maps severity to rate, follows it, and lifts after the cool-down",
          "[enforcer]") {
    FakeSink sink;
    auto targets = one_redis();
    ActConfig cfg;
    cfg.mode = ActMode::enforce;
    cfg.cooldown_s = 10;
    Enforcer e(sink, cfg, targets);
    e.tick(100, {hot_key("hot", Severity::medium)}, {10000});
    REQUIRE(e.rules().size() == 1);
    CHECK(e.rules()[0].origin == "auto");
    CHECK(e.rules()[0].spec.rate == 500);
    CHECK(only_rule(sink).interval_ns == 2'000'000);
    e.tick(101, {hot_key("hot", Severity::critical)}, {10000});
    CHECK(e.rules()[0].spec.rate == 50);
    CHECK(only_rule(sink).interval_ns == 20'000'000);
    // error and latency hotspots only get advice
    e.tick(102, {hot_key("hot", Severity::critical), hot_key("bad", Severity::high, HotKind::error)},
           {10000});
    CHECK(e.rules().size() == 1);
    e.tick(103, {}, {10000});  // the hotspot ended: the cool-down starts
    CHECK(e.rules().size() == 1);
    e.tick(112, {}, {10000});
    CHECK(e.rules().size() == 1);
    e.tick(113, {}, {10000});
    CHECK(e.rules().empty());
    CHECK(sink.rules.empty());
    CHECK(sink.kinds == 0);
    std::vector<std::string> seen;
    for (const auto& ev : e.take_events()) seen.push_back(ev.event);
    CHECK(seen == std::vector<std::string>{"added", "updated", "lifted"});
}

TEST_CASE("enforcer: while a rule still holds requests back it neither relaxes nor lifts", "[enforcer]") {
    FakeSink sink;
    auto targets = one_redis();
    ActConfig cfg;
    cfg.mode = ActMode::enforce;
    cfg.cooldown_s = 3;
    Enforcer e(sink, cfg, targets);
    e.tick(100, {hot_key("hot", Severity::high)}, {10000});
    REQUIRE(e.rules().size() == 1);
    const std::uint32_t slot = e.rules()[0].slot;
    CHECK(e.rules()[0].spec.rate == 200);
    // throttled, the key looks only mildly hot; it still drops: stays at 200/s,
    // also when it is narrowed to the one client driving it
    sink.stats[slot].dropped = 50;
    std::array<std::uint8_t, 16> driver{};
    driver[10] = driver[11] = 0xff;
    driver[12] = 10;
    driver[15] = 7;
    KeyClients clients;
    clients[{0, key_hash("hot")}] = {{driver, 900}};
    e.tick(101, {hot_key("hot", Severity::low)}, {10000}, clients);
    REQUIRE(e.rules().size() == 1);
    CHECK(client_text(e.rules()[0].spec) == "10.0.0.7");
    CHECK(e.rules()[0].spec.rate == 200);
    // tightening is always allowed
    sink.stats[slot].dropped = 100;
    e.tick(102, {hot_key("hot", Severity::critical)}, {10000});
    CHECK(e.rules()[0].spec.rate == 50);
    // no hotspot in sight, but still dropping: the cool-down does not start
    for (int t = 103; t <= 110; ++t) {
        sink.stats[slot].dropped += 10;
        e.tick(t, {}, {10000});
    }
    REQUIRE(e.rules().size() == 1);
    // the demand fits under the rule: cool-down, then lifted
    e.tick(111, {}, {10000});
    e.tick(113, {}, {10000});
    CHECK(e.rules().size() == 1);
    e.tick(114, {}, {10000});
    CHECK(e.rules().empty());
}

TEST_CASE("enforcer: dry-run policy, shed action, allowlist", "[enforcer]") {
    FakeSink sink;
    auto targets = one_redis();
    ActConfig cfg;
    cfg.mode = ActMode::dry_run;
    cfg.action = RuleAction::shed;
    cfg.allow_keys = {"vip"};
    cfg.allow_prefixes = {"admin:"};
    Enforcer e(sink, cfg, targets);
    CHECK(sink.allow.size() == 1);
    e.tick(100,
           {hot_key("hot", Severity::critical), hot_key("vip", Severity::critical),
            hot_key("admin:1", Severity::critical), hot_key("warm", Severity::medium)},
           {10000});
    REQUIRE(e.rules().size() == 2);
    const Rule& shed = e.rules()[0].spec.text == "hot" ? e.rules()[0] : e.rules()[1];
    const Rule& throttle = e.rules()[0].spec.text == "hot" ? e.rules()[1] : e.rules()[0];
    CHECK(shed.spec.action == RuleAction::shed);
    CHECK(shed.spec.shed == 0.5);
    CHECK(shed.spec.dry_run);
    CHECK(throttle.spec.text == "warm");  // no shed share at medium: throttle instead
    CHECK(throttle.spec.rate == 500);
    for (const auto& [k, r] : sink.rules) CHECK(r.flags == KS_RULEF_DRY_RUN);
    CHECK((sink.kinds & KS_RK_ALLOW) != 0);
}

TEST_CASE("enforcer: the circuit breaker suspends a server's rules and resumes", "[enforcer]") {
    FakeSink sink;
    auto targets = one_redis();
    ActConfig cfg;
    cfg.drop_cap = 0.10;
    cfg.suspend_s = 60;
    Enforcer e(sink, cfg, targets);
    const Rule& r = e.add(key_rule("hot", 100), "manual", "", 0, 100);
    std::uint32_t slot = r.slot;
    sink.stats[slot].dropped = 100;  // 100 dropped against 1000 served: 9 %, under the cap
    e.tick(101, {}, {1000});
    CHECK(e.rules().size() == 1);
    CHECK(e.rules()[0].interval.dropped == 100);
    sink.stats[slot].dropped = 300;  // 200 more against 1000: 17 %
    e.tick(102, {}, {1000});
    CHECK(e.rules().empty());
    CHECK(sink.rules.empty());
    CHECK(e.suspended(0, 150));
    CHECK_THROWS_WITH(e.add(key_rule("hot", 100), "manual", "", 0, 150), Contains("suspended"));
    e.tick(163, {}, {1000});
    CHECK(!e.suspended(0, 163));
    std::vector<std::string> seen;
    for (const auto& ev : e.take_events()) seen.push_back(ev.event);
    CHECK(seen == std::vector<std::string>{"added", "suspended", "resumed"});
}

/// The fall breaker set to trip when other traffic stays under half its best for 3 intervals,
/// and one manual rule on "hot" added at t=100.
struct FallBreakerRig {
    FakeSink sink;
    std::vector<Target> targets = one_redis();
    Enforcer e{sink, config(), targets};
    std::uint32_t slot = e.add(key_rule("hot", 100), "manual", "", 0, 100).slot;
    std::uint64_t matched = 0;

    static ActConfig config() {
        ActConfig cfg;
        cfg.fall_share = 0.5;
        cfg.fall_intervals = 3;
        return cfg;
    }
    /// One interval ending at `now`: the server served `served` requests, `admitted` of them
    /// counted as matching the rule.
    void interval(double now, std::uint64_t admitted, std::uint64_t served) {
        matched += admitted;
        sink.stats[slot].matched = matched;
        e.tick(now, {}, {served});
    }
};

TEST_CASE("enforcer: the circuit breaker trips when the rest of the traffic falls instead of recovering",
          "[enforcer]") {
    FallBreakerRig rig;
    FakeSink& sink = rig.sink;
    Enforcer& e = rig.e;
    // one interval: `served` requests, 100 of them the rule's admitted hot key
    auto interval = [&](double now, std::uint64_t served) { rig.interval(now, 100, served); };
    interval(101, 50000);  // the first tick only learns the time
    interval(102, 40000);  // the rule came during this interval: not a reference
    interval(103, 10100);  // 10000/s not matched: a level once ...
    interval(104, 10100);  // ... and held: the best so far
    interval(105, 4000);   // 3900/s, under half of it: one ...
    interval(106, 4000);   // ... two ...
    interval(107, 9000);   // recovered: the count starts again
    interval(108, 4000);
    interval(109, 4000);
    REQUIRE(e.rules().size() == 1);
    interval(110, 5099);  // 4999/s: a third low interval in a row
    CHECK(e.rules().empty());
    CHECK(sink.rules.empty());
    CHECK(e.suspended(0, 110));
    auto events = e.take_events();
    REQUIRE(events.size() == 2);
    CHECK(events[1].event == "suspended");
    CHECK_THAT(events[1].why, Contains("fell from 10000/s to 4999/s for 3 intervals"));
}

TEST_CASE("enforcer: dry-run rules and quiet servers do not trip the fall breaker", "[enforcer]") {
    FakeSink sink;
    auto targets = one_redis();
    Enforcer e(sink, ActConfig{}, targets);
    RuleSpec dry = key_rule("hot", 100);
    dry.dry_run = true;
    e.add(dry, "manual", "", 0, 100);
    for (int i = 1; i <= 5; ++i) e.tick(100 + i, {}, {i == 1 ? 10000u : 10u});
    CHECK(e.rules().size() == 1);
    FakeSink quiet_sink;
    // a new rule takes its key out of "the rest": the reference starts again
    FakeSink busy_sink;
    Enforcer busy(busy_sink, ActConfig{}, targets);
    busy.add(key_rule("a", 100), "manual", "", 0, 100);
    for (int i = 1; i <= 3; ++i) busy.tick(100 + i, {}, {10000});
    busy.add(key_rule("b", 100), "manual", "", 0, 103.5);
    const std::uint32_t b_slot = busy.rules()[1].slot;
    for (int i = 4; i <= 8; ++i) {
        busy_sink.stats[b_slot].matched += 8000;  // b's traffic, now matched: the rest is 2000/s
        busy.tick(100 + i, {}, {10000});
    }
    CHECK(busy.rules().size() == 2);
    Enforcer quiet(quiet_sink, ActConfig{}, targets);
    quiet.add(key_rule("warm", 100), "manual", "", 0, 100);
    for (int i = 1; i <= 5; ++i)
        quiet.tick(100 + i, {}, {i == 2 ? 40u : 1u});  // best 40/s: under the 50/s floor
    CHECK(quiet.rules().size() == 1);
}

TEST_CASE("enforcer: an operator's TTL ends the rule; removal frees it", "[enforcer]") {
    FakeSink sink;
    auto targets = one_redis();
    Enforcer e(sink, ActConfig{}, targets);
    const Rule& a = e.add(key_rule("a", 10), "manual", "", 30, 100);
    std::uint32_t a_id = a.id;
    const Rule& b = e.add(key_rule("b", 10), "manual", "", 0, 100);
    std::uint32_t b_id = b.id;
    e.tick(129, {}, {1});
    CHECK(e.rules().size() == 2);
    e.tick(130, {}, {1});
    REQUIRE(e.rules().size() == 1);
    CHECK(e.rules()[0].id == b_id);
    CHECK(!e.remove(a_id, 131, "again"));
    CHECK(e.remove(b_id, 131, "operator"));
    CHECK(sink.rules.empty());
    std::vector<std::string> seen;
    for (const auto& ev : e.take_events()) seen.push_back(ev.event);
    CHECK(seen == std::vector<std::string>{"added", "added", "expired", "removed"});
}

TEST_CASE("enforcer: a hot key driven by one client gets a rule for that client only", "[enforcer]") {
    FakeSink sink;
    auto targets = one_redis();
    ActConfig cfg;
    cfg.mode = ActMode::enforce;
    Enforcer e(sink, cfg, targets);
    std::array<std::uint8_t, 16> a{}, b{};
    a[10] = a[11] = b[10] = b[11] = 0xff;
    a[12] = b[12] = 10;
    a[15] = 7;
    b[15] = 8;
    // the first interval knows no clients yet: a rule for everyone
    e.tick(100, {hot_key("hot", Severity::high)}, {10000});
    REQUIRE(e.rules().size() == 1);
    CHECK(client_text(e.rules()[0].spec).empty());
    // then 10.0.0.7 turns out to send 80 %: the rule narrows to it
    KeyClients clients;
    clients[{0, key_hash("hot")}] = {{a, 800}, {b, 200}};
    e.tick(101, {hot_key("hot", Severity::high)}, {10000}, clients);
    REQUIRE(e.rules().size() == 1);
    CHECK(client_text(e.rules()[0].spec) == "10.0.0.7");
    REQUIRE(sink.rules.size() == 1);
    CHECK(std::memcmp(sink.rules.begin()->first.addr, a.data(), 16) == 0);
    CHECK(sink.kinds == KS_RK_KEY_CLIENT);
    // no client dominates another hot key: everyone's requests
    clients[{0, key_hash("warm")}] = {{a, 500}, {b, 500}};
    clients[{0, key_hash("warm")}][0].second = 499;
    e.tick(102, {hot_key("hot", Severity::high), hot_key("warm", Severity::high)}, {10000}, clients);
    REQUIRE(e.rules().size() == 2);
    CHECK(client_text(e.rules()[1].spec).empty());
}

TEST_CASE("enforcer: allowlisted commands go to the kernel by their table hash", "[enforcer]") {
    FakeSink sink;
    auto targets = one_redis();
    ActConfig cfg;
    cfg.allow_commands = {"del", "EXPIRE"};
    Enforcer e(sink, cfg, targets);
    REQUIRE(sink.allow.size() == 2);
    for (const auto& [k, v] : sink.allow) {
        CHECK(k.match == KS_MATCH_CMD);
        CHECK((k.hash == proto::command_hash("DEL") || k.hash == proto::command_hash("EXPIRE")));
    }
    CHECK(sink.kinds == 0);  // no rule yet: nothing to judge
    e.add(key_rule("hot", 10), "manual", "", 0, 100);
    CHECK(sink.kinds == (KS_RK_KEY | KS_RK_ALLOW_CMD));
    ActConfig bad;
    bad.allow_commands = {"FROBNICATE"};
    CHECK_THROWS_WITH(Enforcer(sink, bad, targets), Contains("unknown Redis command 'FROBNICATE'"));
}

TEST_CASE("enforcer: the fall breaker reads a small remainder as counter skew, not as traffic that fell",
          "[enforcer]") {
    FallBreakerRig rig;
    Enforcer& e = rig.e;
    // all traffic is the rule's key: `served` and the rule's count differ only by when they were read
    auto interval = [&](double now, std::uint64_t admitted, std::uint64_t served) {
        rig.interval(now, admitted, served);
    };
    interval(101, 11000, 11000);
    interval(102, 11000, 11000);  // the rule came during this interval
    interval(103, 11000, 11099);  // 99 more read on the server's side: under 2 % of 11099
    for (int t = 104; t <= 110; ++t) interval(t, 11000, 11000);
    CHECK(e.rules().size() == 1);
    CHECK_FALSE(e.suspended(0, 110));
    // one interval's remainder well over the skew is not a level yet ...
    interval(111, 11000, 14000);
    for (int t = 112; t <= 115; ++t) interval(t, 11000, 11000);
    CHECK(e.rules().size() == 1);
    // ... but 3000/s of other traffic held for two intervals, then falling to 0, trips it
    interval(116, 11000, 14000);
    interval(117, 11000, 14000);
    interval(118, 11000, 11000);
    interval(119, 11000, 11000);
    REQUIRE(e.rules().size() == 1);
    interval(120, 11000, 11000);
    CHECK(e.rules().empty());
    CHECK(e.suspended(0, 120));
}
