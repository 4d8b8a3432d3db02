// Host tests of userspace/detect/entities.{hpp,cpp}: glob matching, key
// prefixes, Redis Cluster hash slots and the per-interval roll-up of keys into
// key, prefix, slot and server samples.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>
#include "key_stats_fixture.hpp"

#include "collect/stats.hpp"
#include "detect/entities.hpp"

extern "C" {
#include "hist.h"
}

using keyscope::cluster_slot;
using keyscope::EntityKind;
using keyscope::EntitySample;
using keyscope::glob_match;
using keyscope::IntervalData;
using keyscope::key_prefix;
using keyscope::KeyStats;
using keyscope::PrefixRules;
using keyscope::roll_up;
using keyscope::Totals;

namespace {

using keyscope::test::make_key;

const EntitySample* find(const std::vector<EntitySample>& v, EntityKind kind, std::uint32_t target,
                         const std::string& name) {
    const EntitySample* found = nullptr;
    for (const auto& s : v) {
        if (s.kind != kind || s.target != target || s.name != name) continue;
        REQUIRE(found == nullptr);  // each entity appears once
        found = &s;
    }
    return found;
}

std::size_t count(const std::vector<EntitySample>& v, EntityKind kind) {
    std::size_t n = 0;
    for (const auto& s : v) n += s.kind == kind;
    return n;
}

std::string slot_name(std::string_view key) {
    return std::to_string(cluster_slot(key));
}

}  // namespace

TEST_CASE("entity_name names every entity kind", "[entities]") {
    CHECK(std::string(keyscope::entity_name(EntityKind::key)) == "key");
    CHECK(std::string(keyscope::entity_name(EntityKind::prefix)) == "prefix");
    CHECK(std::string(keyscope::entity_name(EntityKind::slot)) == "slot");
    CHECK(std::string(keyscope::entity_name(EntityKind::server)) == "server");
}

TEST_CASE("glob_match: literals, '?' and empty strings", "[entities]") {
    CHECK(glob_match("", ""));
    CHECK_FALSE(glob_match("", "a"));
    CHECK_FALSE(glob_match("a", ""));
    CHECK(glob_match("abc", "abc"));
    CHECK_FALSE(glob_match("abc", "abd"));
    CHECK_FALSE(glob_match("abc", "ab"));
    CHECK_FALSE(glob_match("ab", "abc"));
    CHECK_FALSE(glob_match("?", ""));
    CHECK(glob_match("?", "a"));
    CHECK_FALSE(glob_match("?", "ab"));
    CHECK(glob_match("a?c", "abc"));
    CHECK(glob_match("a?c", "a?c"));
    CHECK_FALSE(glob_match("a?c", "ac"));
    CHECK(glob_match("???", "xyz"));
    CHECK_FALSE(glob_match("???", "xy"));
    // bytes, not characters: '?' takes one byte of a multi-byte sequence
    CHECK(glob_match("??", "\xc3\xa9"));
    CHECK(glob_match(std::string_view("a\0c", 3), std::string_view("a\0c", 3)));
}

TEST_CASE("glob_match: '*' matches any run of bytes, including none", "[entities]") {
    CHECK(glob_match("*", ""));
    CHECK(glob_match("*", "anything at all"));
    CHECK(glob_match("**", ""));
    CHECK(glob_match("**", "abc"));
    CHECK(glob_match("a*", "a"));
    CHECK(glob_match("a*", "abc"));
    CHECK_FALSE(glob_match("a*", "ba"));
    CHECK(glob_match("*c", "abc"));
    CHECK_FALSE(glob_match("*c", "abcd"));
    CHECK(glob_match("a*c", "ac"));
    CHECK(glob_match("a*c", "abbbbc"));
    CHECK_FALSE(glob_match("a*c", "abbbb"));
    CHECK(glob_match("user:*", "user:42"));
    CHECK(glob_match("user:*", "user:"));
    CHECK_FALSE(glob_match("user:*", "user"));
    CHECK_FALSE(glob_match("user:*", "users:1"));
    CHECK(glob_match("user:*:profile", "user:42:profile"));
    CHECK_FALSE(glob_match("user:*:profile", "user:42:settings"));
    CHECK_FALSE(glob_match("*?", ""));
    CHECK(glob_match("*?", "a"));
    CHECK(glob_match("?*", "ab"));
    CHECK(glob_match("*?*", "x"));
}

TEST_CASE("glob_match: backtracking after a partial match", "[entities]") {
    // the first candidate for the text after '*' fails and the matcher must retry further on
    CHECK(glob_match("*ab", "aab"));
    CHECK(glob_match("*ab", "abab"));
    CHECK_FALSE(glob_match("*ab", "aba"));
    CHECK(glob_match("a*ab", "aaab"));
    CHECK(glob_match("*aab", "aaaab"));
    CHECK(glob_match("a*b*c", "aXbYbZc"));
    CHECK(glob_match("a*b*c", "abbbcbc"));
    CHECK_FALSE(glob_match("a*b*c", "aXbYbZ"));
    CHECK(glob_match("*.txt", "x.txt.txt"));
    CHECK_FALSE(glob_match("*.txt", "x.txt.bak"));
    CHECK(glob_match("*a?c", "abcaxc"));
    CHECK_FALSE(glob_match("*a?c", "abcabxc"));
    CHECK(glob_match("*a*a*a", "aaa"));
    CHECK_FALSE(glob_match("*a*a*a*a", "aaa"));
    CHECK(glob_match("session:*:*:x", "session:1:2:3:x"));
    CHECK_FALSE(glob_match("session:*:*:x", "session:1:x"));
    // a long text with no match still terminates quickly
    CHECK_FALSE(glob_match("*a*a*a*a*b", std::string(2000, 'a')));
}

TEST_CASE("key_prefix: first `depth` delimiter-separated segments", "[entities]") {
    PrefixRules r;  // ':' at depth 1
    CHECK(key_prefix("user:42", r) == "user:*");
    CHECK(key_prefix("user:42:name", r) == "user:*");
    CHECK(key_prefix("user:", r) == "user:*");
    CHECK(key_prefix(":x", r) == ":*");
    CHECK(key_prefix("counter", r).empty());
    CHECK(key_prefix("", r).empty());

    r.depth = 2;
    CHECK(key_prefix("user:42:name", r) == "user:42:*");
    CHECK(key_prefix("user:42:name:first", r) == "user:42:*");
    CHECK(key_prefix("user:42", r).empty());  // one delimiter is not enough for depth 2
    CHECK(key_prefix("user::x", r) == "user::*");
    CHECK(key_prefix("counter", r).empty());

    r.depth = 1;
    r.delimiter = '.';
    CHECK(key_prefix("metrics.cpu.load", r) == "metrics.*");
    CHECK(key_prefix("user:42", r).empty());
}

TEST_CASE("key_prefix: patterns win over depth, the first matching one names the prefix", "[entities]") {
    PrefixRules r;
    r.depth = 2;
    r.patterns = {"user:1*", "user:*", "sess*"};
    CHECK(key_prefix("user:12:name", r) == "user:1*");
    CHECK(key_prefix("user:2:name", r) == "user:*");       // not "user:2:*" from depth 2
    CHECK(key_prefix("session", r) == "sess*");            // a key with no delimiter at all
    CHECK(key_prefix("order:7:items", r) == "order:7:*");  // no pattern: depth applies
    CHECK(key_prefix("order", r).empty());

    // order of the patterns decides, not how specific they are
    r.patterns = {"user:*", "user:1*"};
    CHECK(key_prefix("user:12:name", r) == "user:*");
}

TEST_CASE("key_prefix: depth 0 means patterns only", "[entities]") {
    PrefixRules r;
    r.depth = 0;
    CHECK(key_prefix("user:42", r).empty());
    CHECK(key_prefix("a:b:c", r).empty());
    r.patterns = {"cart:*"};
    CHECK(key_prefix("cart:9", r) == "cart:*");
    CHECK(key_prefix("user:42", r).empty());
}

TEST_CASE("cluster_slot: CRC16 XMODEM mod 16384, as in the Redis Cluster spec", "[entities]") {
    // the spec's check value: CRC16("123456789") = 0x31C3
    CHECK(cluster_slot("123456789") == (0x31C3 & 16383));
    CHECK(cluster_slot("123456789") == 12739);
    // values CLUSTER KEYSLOT returns
    CHECK(cluster_slot("foo") == 12182);
    CHECK(cluster_slot("bar") == 5061);
    CHECK(cluster_slot("hello") == 866);
    CHECK(cluster_slot("user1000") == 3443);
    CHECK(cluster_slot("") == 0);
    for (const char* k : {"a", "zzzzzzzz", "\xff\xff\xff", "user:1", "{x}"}) CHECK(cluster_slot(k) < 16384);
}

TEST_CASE("cluster_slot: hash tags", "[entities]") {
    // keys with the same tag land in the tag's slot
    CHECK(cluster_slot("{user1000}.following") == cluster_slot("user1000"));
    CHECK(cluster_slot("{user1000}.followers") == cluster_slot("user1000"));
    CHECK(cluster_slot("{user1000}.following") == 3443);
    CHECK(cluster_slot("x{user1000}y") == 3443);
    // an empty tag: the whole key is hashed
    CHECK(cluster_slot("foo{}{bar}") == 8363);
    CHECK(cluster_slot("foo{}{bar}") != cluster_slot("bar"));
    CHECK(cluster_slot("{}") == 15257);
    // the tag ends at the first '}' after the first '{'
    CHECK(cluster_slot("foo{{bar}}zap") == cluster_slot("{bar"));
    CHECK(cluster_slot("foo{{bar}}zap") == 4015);
    // only the first tag counts
    CHECK(cluster_slot("foo{bar}{zap}") == cluster_slot("bar"));
    CHECK(cluster_slot("foo{bar}{zap}") == 5061);
    // no closing brace, or a '}' before the '{': the whole key
    CHECK(cluster_slot("{bar") == 4015);
    CHECK(cluster_slot("}bar{") != cluster_slot("bar"));
    CHECK(cluster_slot("a}{foo}") == 12182);
}

TEST_CASE("roll_up: exact per-entity sums over two targets", "[entities]") {
    IntervalData d;
    d.per_target.resize(3);
    d.per_target[0].requests = 100;
    d.per_target[0].replies = 100;
    d.per_target[0].errors = 7;
    d.per_target[1].requests = 30;
    d.per_target[1].replies = 30;
    d.per_target[1].errors = 0;
    // target 2: no traffic at all -> no server entity

    // target 0
    auto u1 = make_key(0, 11, "user:1", 10, 2);
    u1.errors = 1;
    u1.bytes_out = 100;
    u1.max_value = 50;
    u1.lat[ks_lat_bucket(2000)] = 8;
    u1.lat[ks_lat_bucket(1000000)] = 4;
    auto u2 = make_key(0, 12, "user:2", 5, 0);
    u2.bytes_out = 300;
    u2.max_value = 200;
    u2.errors = 2;
    u2.lat[ks_lat_bucket(2000)] = 5;
    auto counter = make_key(0, 13, "counter", 7, 3);
    counter.bytes_out = 10;
    counter.max_value = 8;
    auto unnamed = make_key(0, 14, "", 4, 0);
    unnamed.named = false;
    unnamed.bytes_out = 40;
    unnamed.max_value = 1000;  // biggest value on target 0: only the server sees it
    unnamed.errors = 3;
    // target 1: same name as on target 0, plus two keys sharing a hash tag
    auto t1u1 = make_key(1, 11, "user:1", 1, 1);
    auto fing = make_key(1, 21, "{user1000}.following", 2, 0);
    fing.bytes_out = 5;
    auto fers = make_key(1, 22, "{user1000}.followers", 0, 3);
    fers.max_value = 9;
    // truncated keys: the slot is known only when the stored bytes hold a hash tag
    auto trunc_plain = make_key(1, 23, "session:" + std::string(56, 'x'), 6, 0);
    trunc_plain.truncated = true;
    trunc_plain.key_len = 100;
    auto trunc_tag = make_key(1, 24, "cart:{user1000}:" + std::string(48, 'y'), 0, 4);
    trunc_tag.truncated = true;
    trunc_tag.key_len = 100;
    d.keys = {u1, u2, counter, unnamed, t1u1, fing, fers, trunc_plain, trunc_tag};

    PrefixRules rules;
    std::vector<keyscope::LatencyHistogram> server_lat;
    auto out = roll_up(d, rules, &server_lat);
    keyscope::LatencyHistogram merged{};  // u1 + u2
    merged[ks_lat_bucket(2000)] = 13;
    merged[ks_lat_bucket(1000000)] = 4;

    SECTION("one key sample per key, in input order, first") {
        REQUIRE(count(out, EntityKind::key) == d.keys.size());
        for (std::size_t i = 0; i < d.keys.size(); ++i) {
            INFO("key " << i);
            const auto& s = out[i];
            CHECK(s.kind == EntityKind::key);
            CHECK(s.target == d.keys[i].target);
            CHECK(s.name == d.keys[i].key);
            CHECK(s.hash == d.keys[i].hash);
            CHECK(s.truncated == d.keys[i].truncated);
            CHECK(s.reads == d.keys[i].reads);
            CHECK(s.writes == d.keys[i].writes);
            CHECK(s.errors == d.keys[i].errors);
            CHECK(s.bytes_out == d.keys[i].bytes_out);
            CHECK(s.max_value == d.keys[i].max_value);
            CHECK(s.requests == d.keys[i].ops());
            std::uint64_t n = 0;
            for (auto c : d.keys[i].lat) n += c;
            CHECK(s.lat_n == n);
            CHECK(s.p99_us == keyscope::quantile_us(d.keys[i].lat, 0.99));
        }
        CHECK(out.size() == d.keys.size() + count(out, EntityKind::prefix) + count(out, EntityKind::slot) +
                                count(out, EntityKind::server));
    }

    SECTION("prefixes: named keys only, per target") {
        CHECK(count(out, EntityKind::prefix) == 4);
        const auto* p0 = find(out, EntityKind::prefix, 0, "user:*");
        REQUIRE(p0);
        CHECK(p0->reads == 15);
        CHECK(p0->writes == 2);
        CHECK(p0->errors == 3);
        CHECK(p0->bytes_out == 400);
        CHECK(p0->max_value == 200);
        CHECK(p0->requests == 17);
        // 13 operations near 2 us and 4 near 1 ms: the p99 is in the 1 ms bucket
        CHECK(p0->lat_n == 17);
        CHECK(p0->p99_us == keyscope::quantile_us(merged, 0.99));
        CHECK(p0->p99_us > 900);
        CHECK(p0->hash == 0);
        CHECK_FALSE(p0->truncated);

        const auto* p1 = find(out, EntityKind::prefix, 1, "user:*");
        REQUIRE(p1);
        CHECK(p1->reads == 1);
        CHECK(p1->writes == 1);
        CHECK(p1->requests == 2);

        const auto* s1 = find(out, EntityKind::prefix, 1, "session:*");
        REQUIRE(s1);  // a truncated key still has the prefix its stored bytes show
        CHECK(s1->reads == 6);

        const auto* c1 = find(out, EntityKind::prefix, 1, "cart:*");
        REQUIRE(c1);
        CHECK(c1->writes == 4);

        // "counter" has no delimiter, the unnamed key no name, "{user1000}.following" no ':'
        std::uint64_t prefix_ops0 = 0;
        for (const auto& s : out)
            if (s.kind == EntityKind::prefix && s.target == 0) prefix_ops0 += s.ops();
        CHECK(prefix_ops0 == 17);
    }

    SECTION("slots: named keys only; hash tags share a slot") {
        const auto* tag = find(out, EntityKind::slot, 1, slot_name("user1000"));
        REQUIRE(tag);
        // {user1000}.following + {user1000}.followers + the truncated key whose stored bytes hold the tag
        CHECK(tag->reads == 2);
        CHECK(tag->writes == 3 + 4);
        CHECK(tag->requests == 9);
        CHECK(tag->bytes_out == 5);
        CHECK(tag->max_value == 9);

        const auto* s_u1 = find(out, EntityKind::slot, 0, slot_name("user:1"));
        REQUIRE(s_u1);
        CHECK(s_u1->reads == 10);
        CHECK(s_u1->writes == 2);
        CHECK(s_u1->errors == 1);
        const auto* s_u1_t1 = find(out, EntityKind::slot, 1, slot_name("user:1"));
        REQUIRE(s_u1_t1);
        CHECK(s_u1_t1->reads == 1);
        CHECK(find(out, EntityKind::slot, 0, slot_name("counter")) != nullptr);
        // no slot for the unnamed key, nor for the truncated key without a tag
        CHECK(find(out, EntityKind::slot, 0, slot_name("")) == nullptr);
        CHECK(find(out, EntityKind::slot, 1, slot_name(trunc_plain.key)) == nullptr);

        std::uint64_t slot_reads0 = 0, slot_ops1 = 0;
        for (const auto& s : out) {
            if (s.kind != EntityKind::slot) continue;
            if (s.target == 0) slot_reads0 += s.reads;
            if (s.target == 1) slot_ops1 += s.ops();
        }
        CHECK(slot_reads0 == 10 + 5 + 7);   // all named keys of target 0
        CHECK(slot_ops1 == 2 + 2 + 3 + 4);  // all but the untagged truncated key
    }

    SECTION("servers: key sums, with requests and errors from the totals") {
        CHECK(count(out, EntityKind::server) == 2);
        const auto* s0 = find(out, EntityKind::server, 0, "");
        REQUIRE(s0);
        CHECK(s0->reads == 10 + 5 + 7 + 4);  // the unnamed key counts for its server
        CHECK(s0->writes == 2 + 3);
        CHECK(s0->bytes_out == 100 + 300 + 10 + 40);
        CHECK(s0->max_value == 1000);
        CHECK(s0->requests == 100);  // not the 31 key operations: keyless commands count too
        CHECK(s0->errors == 7);      // from the totals, not the key sum (6)
        CHECK(s0->lat_n == 17);
        CHECK(s0->p99_us == keyscope::quantile_us(merged, 0.99));
        // each target's histogram over all its keys, for the views
        REQUIRE(server_lat.size() == 3);
        CHECK(server_lat[0] == merged);
        CHECK(server_lat[1] == keyscope::LatencyHistogram{});
        CHECK(server_lat[2] == keyscope::LatencyHistogram{});

        const auto* s1 = find(out, EntityKind::server, 1, "");
        REQUIRE(s1);
        CHECK(s1->reads == 1 + 2 + 6);
        CHECK(s1->writes == 1 + 3 + 4);
        CHECK(s1->requests == 30);
        CHECK(s1->errors == 0);
        CHECK(find(out, EntityKind::server, 2, "") == nullptr);
    }
}

TEST_CASE("roll_up: a server with only keyless traffic, and empty input", "[entities]") {
    IntervalData d;
    d.per_target.resize(2);
    d.per_target[1].requests = 5;
    d.per_target[1].replies = 5;
    d.per_target[1].errors = 1;
    auto out = roll_up(d, PrefixRules{});
    REQUIRE(out.size() == 1);
    CHECK(out[0].kind == EntityKind::server);
    CHECK(out[0].target == 1);
    CHECK(out[0].name.empty());
    CHECK(out[0].requests == 5);
    CHECK(out[0].errors == 1);
    CHECK(out[0].reads == 0);
    CHECK(out[0].ops() == 0);

    // replies with no matched request still make the server visible
    d.per_target[1] = Totals{};
    d.per_target[0].replies = 3;
    out = roll_up(d, PrefixRules{});
    REQUIRE(out.size() == 1);
    CHECK(out[0].target == 0);
    CHECK(out[0].requests == 0);

    CHECK(roll_up(IntervalData{}, PrefixRules{}).empty());
}

TEST_CASE("RollUp: rolling up interval after interval gives what a fresh roll_up gives", "[entities]") {
    // the daemon keeps one RollUp: nothing of an interval may leak into the next
    auto interval = [](std::uint64_t scale, bool with_third) {
        IntervalData d;
        d.per_target.resize(2);
        d.per_target[0].requests = 50 * scale;
        d.per_target[1].requests = 9;
        auto a = make_key(0, 1, "user:1", 3 * scale, 1);
        a.lat[ks_lat_bucket(5000)] = 3 * scale;
        auto b = make_key(0, 2, "{user:1}.x", scale, 0);  // hash tag: the slot of a and c too
        b.lat[ks_lat_bucket(900000)] = scale;
        auto c = make_key(0, 3, "{user:1}.y", 0, 2 * scale);
        c.lat[ks_lat_bucket(40000)] = 2 * scale;
        d.keys = {a, b, c};
        if (with_third) d.keys.push_back(make_key(1, 4, "cart:9", 4, 0));
        return d;
    };
    PrefixRules rules;
    keyscope::RollUp reused(rules);
    for (auto [scale, third] : {std::pair{1u, true}, {7u, false}, {2u, true}, {5u, false}}) {
        INFO("interval with scale " << scale);
        const IntervalData d = interval(scale, third);
        std::vector<keyscope::LatencyHistogram> lat_reused, lat_fresh;
        const auto& got = reused(d, &lat_reused);
        const auto want = roll_up(d, rules, &lat_fresh);
        REQUIRE(got.size() == want.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            INFO("sample " << i << " " << want[i].name);
            CHECK(got[i].kind == want[i].kind);
            CHECK(got[i].target == want[i].target);
            CHECK(got[i].name == want[i].name);
            CHECK(got[i].reads == want[i].reads);
            CHECK(got[i].writes == want[i].writes);
            CHECK(got[i].requests == want[i].requests);
            CHECK(got[i].lat_n == want[i].lat_n);
            CHECK(got[i].p99_us == want[i].p99_us);
        }
        CHECK(lat_reused == lat_fresh);
        // and the numbers are the truth: the one slot holds all three keys' latencies
        REQUIRE(slot_name("user:1") == slot_name("{user:1}.x"));
        const auto* slot = find(got, EntityKind::slot, 0, slot_name("{user:1}.x"));
        REQUIRE(slot);
        CHECK(slot->lat_n == 6 * scale);
        CHECK(slot->p99_us == keyscope::bucket_mid_us(ks_lat_bucket(900000)));
        const auto* prefix = find(got, EntityKind::prefix, 0, "user:*");
        REQUIRE(prefix);
        CHECK(prefix->lat_n == 3 * scale);
        CHECK(prefix->p99_us == keyscope::bucket_mid_us(ks_lat_bucket(5000)));
        CHECK(lat_reused[0][ks_lat_bucket(5000)] == 3 * scale);
        CHECK(lat_reused[0][ks_lat_bucket(900000)] == scale);
        CHECK(lat_reused[0][ks_lat_bucket(40000)] == 2 * scale);
    }
}

TEST_CASE("RollUp: a group's latencies are exact whether its buckets fit inline or overflow", "[entities]") {
    // keys sharing one slot ({s} hash tag) and prefix, with `nkeys` x 2
    // buckets, overlapping from key to key: up to 12 distinct buckets, more
    // than a group keeps inline; intervals alternate big and small on one RollUp
    auto interval = [](int nkeys) {
        IntervalData d;
        d.per_target.resize(1);
        for (int i = 0; i < nkeys; ++i) {
            auto k = make_key(0, 100 + static_cast<std::uint64_t>(i), "{s}:" + std::to_string(i), 10, 0);
            k.lat[ks_lat_bucket(2000ull << i)] = 7;
            k.lat[ks_lat_bucket(2000ull << (i + 1))] = 3 + static_cast<std::uint64_t>(i);
            d.keys.push_back(std::move(k));
        }
        d.per_target[0].requests = 10 * static_cast<std::uint64_t>(nkeys);
        return d;
    };
    PrefixRules rules;
    keyscope::RollUp reused(rules);
    for (int nkeys : {11, 2, 11, 4, 1, 7}) {
        INFO(nkeys << " keys");
        const IntervalData d = interval(nkeys);
        keyscope::LatencyHistogram merged{};
        for (const auto& k : d.keys)
            for (std::size_t b = 0; b < merged.size(); ++b) merged[b] += k.lat[b];
        std::uint64_t n = 0;
        for (auto c : merged) n += c;
        std::vector<keyscope::LatencyHistogram> server_lat;
        const auto& got = reused(d, &server_lat);
        const auto* slot = find(got, EntityKind::slot, 0, slot_name("{s}"));
        const auto* prefix = find(got, EntityKind::prefix, 0, "{s}:*");
        const auto* server = find(got, EntityKind::server, 0, "");
        REQUIRE(slot);
        REQUIRE(prefix);
        REQUIRE(server);
        for (const auto* g : {slot, prefix, server}) {
            CHECK(g->lat_n == n);
            CHECK(g->p99_us == keyscope::quantile_us(merged, 0.99));
        }
        CHECK(n ==
              static_cast<std::uint64_t>(nkeys) * 10 + static_cast<std::uint64_t>(nkeys * (nkeys - 1) / 2));
        REQUIRE(server_lat.size() == 1);
        CHECK(server_lat[0] == merged);
    }
}

TEST_CASE("roll_up: prefix patterns and depth 0", "[entities]") {
    IntervalData d;
    d.per_target.resize(1);
    d.keys = {make_key(0, 1, "user:1:a", 1), make_key(0, 2, "user:2:b", 2), make_key(0, 3, "cart:1", 4),
              make_key(0, 4, "plain", 8)};
    PrefixRules r;
    r.depth = 0;
    r.patterns = {"user:*"};
    auto out = roll_up(d, r);
    CHECK(count(out, EntityKind::prefix) == 1);
    const auto* p = find(out, EntityKind::prefix, 0, "user:*");
    REQUIRE(p);
    CHECK(p->reads == 3);

    r.patterns.clear();
    out = roll_up(d, r);
    CHECK(count(out, EntityKind::prefix) == 0);
    CHECK(count(out, EntityKind::slot) == 4);
    CHECK(count(out, EntityKind::server) == 1);
    // per_target requests are 0 here: the server keeps the key operations as its requests
    const auto* s = find(out, EntityKind::server, 0, "");
    REQUIRE(s);
    CHECK(s->reads == 15);
    CHECK(s->requests == 15);
}
