// Host tests of userspace/collect/stats.{hpp,cpp} and of the latency buckets
// in bpf/hist.h that both the BPF programs and the daemon use.
#include <algorithm>
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include "key_stats_fixture.hpp"

#include "collect/stats.hpp"

extern "C" {
#include "hist.h"
}

using keyscope::KeyStats;
using keyscope::KeyTable;
using keyscope::LatencyHistogram;
using keyscope::quantile_us;
using keyscope::top_keys;
using keyscope::Totals;

namespace {

constexpr std::uint32_t kTop = KS_LAT_BUCKETS - 1;

using keyscope::test::make_key;

KeyStats unnamed_key(std::uint32_t target, std::uint64_t hash, std::uint64_t reads) {
    KeyStats k;
    k.target = target;
    k.hash = hash;
    k.named = false;
    k.reads = reads;
    return k;
}

// Every Totals field set to base * (1..16), so that a swapped field shows.
Totals numbered_totals(std::uint64_t base) {
    Totals t;
    std::uint64_t i = 0;
    for (auto* f : {&t.requests, &t.key_ops, &t.keyless, &t.unknown_cmds, &t.replies, &t.errors, &t.redirects,
                    &t.unattributed, &t.reply_unmatched, &t.parse_errors, &t.seq_retrans, &t.seq_gaps,
                    &t.flow_full, &t.truncated_windows, &t.bytes_in, &t.bytes_out})
        *f = base * ++i;
    return t;
}

void check_numbered_totals(const Totals& t, std::uint64_t base) {
    CHECK(t.requests == base * 1);
    CHECK(t.key_ops == base * 2);
    CHECK(t.keyless == base * 3);
    CHECK(t.unknown_cmds == base * 4);
    CHECK(t.replies == base * 5);
    CHECK(t.errors == base * 6);
    CHECK(t.redirects == base * 7);
    CHECK(t.unattributed == base * 8);
    CHECK(t.reply_unmatched == base * 9);
    CHECK(t.parse_errors == base * 10);
    CHECK(t.seq_retrans == base * 11);
    CHECK(t.seq_gaps == base * 12);
    CHECK(t.flow_full == base * 13);
    CHECK(t.truncated_windows == base * 14);
    CHECK(t.bytes_in == base * 15);
    CHECK(t.bytes_out == base * 16);
}

// The value quantile_us reports for a bucket below the top one: its middle, in us.
double bucket_mid_us(std::uint32_t b) {
    return (static_cast<double>(ks_lat_bucket_low(b)) + static_cast<double>(ks_lat_bucket_low(b + 1))) / 2.0 /
           1000.0;
}

LatencyHistogram hist_of(std::initializer_list<std::pair<std::uint64_t, std::uint64_t>> ns_count) {
    LatencyHistogram h{};
    for (auto [ns, count] : ns_count) h[ks_lat_bucket(ns)] += count;
    return h;
}

std::vector<std::string> names(const std::vector<KeyStats>& keys) {
    std::vector<std::string> out;
    for (const auto& k : keys) out.push_back(k.key);
    return out;
}

}  // namespace

// ---- bpf/hist.h -------------------------------------------------------------

TEST_CASE("hist: constants match the documented layout") {
    CHECK(KS_LAT_BUCKETS == 97);
    CHECK(LatencyHistogram{}.size() == 97);
}

TEST_CASE("hist: everything below 1024 ns is bucket 0") {
    for (std::uint64_t v = 0; v < 1024; ++v) REQUIRE(ks_lat_bucket(v) == 0);
    CHECK(ks_lat_bucket(1024) == 1);
    CHECK(ks_lat_bucket_low(0) == 0);
    CHECK(ks_lat_bucket_low(1) == 1024);
}

TEST_CASE("hist: known bucket numbers and bounds") {
    // 4 sub-buckets per power of two: [1024,1280) [1280,1536) [1536,1792) [1792,2048)
    CHECK(ks_lat_bucket(1279) == 1);
    CHECK(ks_lat_bucket(1280) == 2);
    CHECK(ks_lat_bucket(1535) == 2);
    CHECK(ks_lat_bucket(1536) == 3);
    CHECK(ks_lat_bucket(1792) == 4);
    CHECK(ks_lat_bucket(2047) == 4);
    CHECK(ks_lat_bucket(2048) == 5);
    CHECK(ks_lat_bucket_low(2) == 1280);
    CHECK(ks_lat_bucket_low(3) == 1536);
    CHECK(ks_lat_bucket_low(4) == 1792);
    CHECK(ks_lat_bucket_low(5) == 2048);
    CHECK(ks_lat_bucket_low(6) == 2560);
    // 10 us: 2^13 = 8192, next two bits 00 -> bucket 1 + 4*3 + 0
    CHECK(ks_lat_bucket(10000) == 13);
    CHECK(ks_lat_bucket_low(13) == 8192);
    CHECK(ks_lat_bucket_low(14) == 10240);
    // 50 us: 2^15 = 32768, next two bits 10 -> bucket 1 + 4*5 + 2
    CHECK(ks_lat_bucket(50000) == 23);
    CHECK(ks_lat_bucket_low(23) == 49152);
    CHECK(ks_lat_bucket_low(24) == 57344);
    // 1 ms: 2^19, next two bits 11 -> bucket 1 + 4*9 + 3
    CHECK(ks_lat_bucket(1000000) == 40);
    CHECK(ks_lat_bucket_low(40) == 917504);
    CHECK(ks_lat_bucket_low(41) == 1048576);
    // the top bucket starts at 2^33 + 3 * 2^31
    CHECK(ks_lat_bucket_low(kTop) == (1ULL << 33) + (3ULL << 31));
}

TEST_CASE("hist: every bucket's low bound lies in that bucket, and the value below it in the previous one") {
    for (std::uint32_t b = 1; b < KS_LAT_BUCKETS; ++b) {
        INFO("bucket " << b);
        REQUIRE(ks_lat_bucket_low(b) > ks_lat_bucket_low(b - 1));
        REQUIRE(ks_lat_bucket(ks_lat_bucket_low(b)) == b);
        REQUIRE(ks_lat_bucket(ks_lat_bucket_low(b) - 1) == b - 1);
    }
}

TEST_CASE("hist: bucket is monotonic non-decreasing") {
    // exhaustively over the first 2^20 ns, then over a geometric sweep to beyond the top
    std::uint32_t prev = 0;
    for (std::uint64_t v = 0; v <= (1u << 20); ++v) {
        auto b = ks_lat_bucket(v);
        if (b < prev) FAIL("bucket decreases at " << v);
        prev = b;
    }
    prev = 0;
    for (std::uint64_t v = 1; v < (1ULL << 40); v += v / 997 + 1) {
        auto b = ks_lat_bucket(v);
        if (b < prev) FAIL("bucket decreases at " << v);
        prev = b;
    }
    CHECK(prev == kTop);
}

TEST_CASE("hist: every value >= 1024 ns below the top bucket lies in [low(b), low(b+1))") {
    auto check = [](std::uint64_t v) {
        auto b = ks_lat_bucket(v);
        if (b >= kTop) return;
        if (!(b >= 1 && ks_lat_bucket_low(b) <= v && v < ks_lat_bucket_low(b + 1)))
            FAIL("value " << v << " bucket " << b << " [" << ks_lat_bucket_low(b) << ", "
                          << ks_lat_bucket_low(b + 1) << ")");
    };
    for (std::uint64_t v = 1024; v <= (1u << 20); ++v) check(v);
    // powers of two and their neighbours up to the top
    for (unsigned s = 11; s <= 34; ++s)
        for (std::int64_t d = -3; d <= 3; ++d) check((1ULL << s) + static_cast<std::uint64_t>(d));
    // log-uniform random values, fixed seed
    std::mt19937_64 rng(12345);
    std::uniform_int_distribution<unsigned> shift(10, 33);
    for (int i = 0; i < 200000; ++i) {
        auto s = shift(rng);
        check((1ULL << s) + (rng() & ((1ULL << s) - 1)));
    }
    SUCCEED();
}

TEST_CASE("hist: the top bucket holds [low(top), 2^34) and everything larger is clamped into it") {
    CHECK(ks_lat_bucket(ks_lat_bucket_low(kTop)) == kTop);
    CHECK(ks_lat_bucket(ks_lat_bucket_low(kTop) - 1) == kTop - 1);
    CHECK(ks_lat_bucket((1ULL << 34) - 1) == kTop);
    CHECK(ks_lat_bucket(1ULL << 34) == kTop);
    CHECK(ks_lat_bucket((1ULL << 34) + 12345) == kTop);
    CHECK(ks_lat_bucket(1ULL << 40) == kTop);
    CHECK(ks_lat_bucket(1ULL << 63) == kTop);
    CHECK(ks_lat_bucket(~0ULL) == kTop);
}

// ---- Totals ------------------------------------------------------------------

TEST_CASE("Totals: default is all zero") {
    check_numbered_totals(Totals{}, 0);
}

TEST_CASE("Totals: += adds every field and returns *this") {
    Totals a = numbered_totals(1);
    Totals b = numbered_totals(1000);
    Totals& r = (a += b);
    CHECK(&r == &a);
    check_numbered_totals(a, 1001);
    check_numbered_totals(b, 1000);  // right side untouched

    a += Totals{};
    check_numbered_totals(a, 1001);

    Totals z;
    z += numbered_totals(7);
    z += numbered_totals(7);
    check_numbered_totals(z, 14);
}

TEST_CASE("Totals: from_bpf copies every counter to its own field") {
    ks_counters c{};
    c.requests = 1;
    c.key_ops = 2;
    c.keyless = 3;
    c.unknown_cmds = 4;
    c.replies = 5;
    c.errors = 6;
    c.redirects = 7;
    c.unattributed = 8;
    c.reply_unmatched = 9;
    c.parse_errors = 10;
    c.seq_retrans = 11;
    c.seq_gaps = 12;
    c.flow_full = 13;
    c.truncated_windows = 14;
    c.bytes_in = 15;
    c.bytes_out = 16;
    check_numbered_totals(Totals::from_bpf(c), 1);
}

// ---- KeyStats ---------------------------------------------------------------------

TEST_CASE("KeyStats: ops is reads + writes") {
    CHECK(make_key(0, 1, "k", 0, 0).ops() == 0);
    CHECK(make_key(0, 1, "k", 3, 0).ops() == 3);
    CHECK(make_key(0, 1, "k", 0, 4).ops() == 4);
    CHECK(make_key(0, 1, "k", 3, 4).ops() == 7);
}

TEST_CASE("KeyStats: merge sums counters, keeps the max of max_value and sums histograms") {
    KeyStats a = make_key(2, 0xabc, "user:1", 10, 20);
    a.errors = 1;
    a.redirects = 2;
    a.bytes_in = 100;
    a.bytes_out = 1000;
    a.max_value = 500;
    a.lat[0] = 1;
    a.lat[13] = 5;
    a.lat[kTop] = 2;

    KeyStats b = make_key(2, 0xabc, "user:1", 1, 2);
    b.errors = 3;
    b.redirects = 4;
    b.bytes_in = 7;
    b.bytes_out = 9;
    b.max_value = 300;
    b.lat[13] = 10;
    b.lat[40] = 4;
    b.lat[kTop] = 1;

    a.merge(b);
    CHECK(a.target == 2);
    CHECK(a.hash == 0xabc);
    CHECK(a.key == "user:1");
    CHECK(a.key_len == 6);
    CHECK(a.named);
    CHECK_FALSE(a.truncated);
    CHECK(a.reads == 11);
    CHECK(a.writes == 22);
    CHECK(a.ops() == 33);
    CHECK(a.errors == 4);
    CHECK(a.redirects == 6);
    CHECK(a.bytes_in == 107);
    CHECK(a.bytes_out == 1009);
    CHECK(a.max_value == 500);  // max, not sum
    for (std::uint32_t i = 0; i < KS_LAT_BUCKETS; ++i) {
        INFO("bucket " << i);
        std::uint64_t want = i == 0 ? 1 : i == 13 ? 15 : i == 40 ? 4 : i == kTop ? 3 : 0;
        CHECK(a.lat[i] == want);
    }

    // larger max_value on the right side wins
    KeyStats c = make_key(2, 0xabc, "user:1", 0);
    c.max_value = 501;
    a.merge(c);
    CHECK(a.max_value == 501);
    CHECK(a.reads == 11);
}

TEST_CASE("KeyStats: merging an empty entry changes nothing") {
    KeyStats a = make_key(1, 9, "k", 5, 6);
    a.max_value = 8;
    a.lat[3] = 2;
    KeyStats e;
    e.target = 1;
    e.hash = 9;
    e.named = false;
    a.merge(e);
    CHECK(a.key == "k");
    CHECK(a.named);
    CHECK(a.reads == 5);
    CHECK(a.writes == 6);
    CHECK(a.max_value == 8);
    CHECK(a.lat[3] == 2);
}

TEST_CASE("KeyStats: an unnamed entry takes the name of a named one merged into it") {
    KeyStats u = unnamed_key(0, 42, 3);
    KeyStats n = make_key(0, 42, std::string(KS_KEY_MAX, 'k'), 1);
    n.key_len = 100;
    n.truncated = true;
    u.merge(n);
    CHECK(u.named);
    CHECK(u.key == std::string(KS_KEY_MAX, 'k'));
    CHECK(u.key_len == 100);
    CHECK(u.truncated);
    CHECK(u.reads == 4);
}

TEST_CASE("KeyStats: a named entry keeps its name") {
    SECTION("merging an unnamed entry") {
        KeyStats n = make_key(0, 42, "name", 1);
        KeyStats u = unnamed_key(0, 42, 2);
        u.key_len = 99;
        u.truncated = true;
        n.merge(u);
        CHECK(n.named);
        CHECK(n.key == "name");
        CHECK(n.key_len == 4);
        CHECK_FALSE(n.truncated);
        CHECK(n.reads == 3);
    }
    SECTION("merging another named entry") {
        KeyStats a = make_key(0, 42, "first", 1);
        KeyStats b = make_key(0, 42, "second", 1);
        a.merge(b);
        CHECK(a.key == "first");
        CHECK(a.key_len == 5);
    }
    SECTION("two unnamed entries stay unnamed") {
        KeyStats a = unnamed_key(0, 42, 1);
        a.merge(unnamed_key(0, 42, 2));
        CHECK_FALSE(a.named);
        CHECK(a.key.empty());
        CHECK(a.reads == 3);
    }
}

TEST_CASE("KeyStats: from_bpf") {
    ks_key_ref ref{};
    ref.hash = 0x1122334455667788ULL;
    ref.target = 5;
    ks_key_stats s{};
    s.reads = 1;
    s.writes = 2;
    s.errors = 3;
    s.redirects = 4;
    s.bytes_in = 5;
    s.bytes_out = 6;
    s.max_value = 7;
    for (std::uint32_t i = 0; i < KS_LAT_BUCKETS; ++i) s.lat[i] = i * 3 + 1;

    SECTION("a short named key") {
        const char key[] = "a\0b:c";  // embedded NUL kept
        std::memcpy(s.key, key, 5);
        s.key_len = 5;
        auto k = KeyStats::from_bpf(ref, s);
        CHECK(k.target == 5);
        CHECK(k.hash == 0x1122334455667788ULL);
        CHECK(k.named);
        CHECK_FALSE(k.truncated);
        CHECK(k.key_len == 5);
        CHECK(k.key == std::string("a\0b:c", 5));
        CHECK(k.reads == 1);
        CHECK(k.writes == 2);
        CHECK(k.errors == 3);
        CHECK(k.redirects == 4);
        CHECK(k.bytes_in == 5);
        CHECK(k.bytes_out == 6);
        CHECK(k.max_value == 7);
        for (std::uint32_t i = 0; i < KS_LAT_BUCKETS; ++i) REQUIRE(k.lat[i] == i * 3 + 1);
    }
    SECTION("a truncated key keeps KS_KEY_MAX bytes and its full length") {
        std::memset(s.key, 'x', KS_KEY_MAX);
        s.key_len = 1000;
        s.flags = KS_KEYF_TRUNCATED;
        auto k = KeyStats::from_bpf(ref, s);
        CHECK(k.named);
        CHECK(k.truncated);
        CHECK(k.key_len == 1000);
        CHECK(k.key == std::string(KS_KEY_MAX, 'x'));
    }
    SECTION("a reply-only entry is unnamed") {
        std::memset(s.key, 'x', KS_KEY_MAX);
        s.key_len = 3;
        s.flags = KS_KEYF_NONAME;
        auto k = KeyStats::from_bpf(ref, s);
        CHECK_FALSE(k.named);
        CHECK(k.key.empty());
        CHECK(k.reads == 1);
    }
}

TEST_CASE("KeyStats: load over last interval's entry leaves nothing of it, and bounds the histogram") {
    ks_key_ref ref{};
    ks_key_stats first{}, second{};
    first.lat[20] = 3;
    first.lat[22] = 1;
    first.lat[KS_LAT_BUCKETS - 1] = 2;
    second.lat[5] = 7;
    KeyStats k;
    CHECK(k.lat_lo == 0);  // filled by hand: the bounds say nothing
    CHECK(k.lat_hi == KS_LAT_BUCKETS);
    k.load(ref, first);
    CHECK(k.lat_lo == 20);
    CHECK(k.lat_hi == KS_LAT_BUCKETS);
    k.load(ref, second);  // the collector reuses entries from interval to interval
    CHECK(k.lat_lo == 5);
    CHECK(k.lat_hi == 6);
    for (std::uint32_t b = 0; b < KS_LAT_BUCKETS; ++b) {
        INFO("bucket " << b);
        REQUIRE(k.lat[b] == (b == 5 ? 7u : 0u));
    }
    k.load(ref, ks_key_stats{});  // no latency at all
    CHECK(k.lat_lo >= k.lat_hi);
    for (std::uint32_t b = 0; b < KS_LAT_BUCKETS; ++b) REQUIRE(k.lat[b] == 0);
}

TEST_CASE("KeyStats: merge widens the histogram bounds to both entries'") {
    ks_key_ref ref{};
    ks_key_stats a{}, b{};
    a.lat[30] = 1;
    b.lat[10] = 2;
    b.lat[12] = 4;
    auto x = KeyStats::from_bpf(ref, a);
    auto empty = KeyStats::from_bpf(ref, ks_key_stats{});
    x.merge(empty);
    CHECK(x.lat_lo == 30);
    CHECK(x.lat_hi == 31);
    x.merge(KeyStats::from_bpf(ref, b));
    CHECK(x.lat_lo == 10);
    CHECK(x.lat_hi == 31);
    CHECK(x.lat[10] == 2);
    CHECK(x.lat[12] == 4);
    CHECK(x.lat[30] == 1);
    empty.merge(x);  // an entry without latencies takes the other's bounds
    CHECK(empty.lat_lo == 10);
    CHECK(empty.lat_hi == 31);
    CHECK(quantile_us(empty.lat, 1.0) == quantile_us(x.lat, 1.0));
    // an entry filled by hand has wide bounds, and merging it reads all of it
    KeyStats by_hand;
    by_hand.lat[90] = 5;
    x.merge(by_hand);
    CHECK(x.lat[90] == 5);
    CHECK(x.lat_lo == 0);
    CHECK(x.lat_hi == KS_LAT_BUCKETS);
}

// ---- quantile_us ---------------------------------------------------------------

TEST_CASE("quantile_us: empty histogram gives 0") {
    LatencyHistogram h{};
    CHECK(quantile_us(h, 0.5) == 0.0);
    CHECK(quantile_us(h, 0.99) == 0.0);
    CHECK(quantile_us(h, 1.0) == 0.0);
}

TEST_CASE("quantile_us: one sample of 50,000 ns gives the middle of its bucket") {
    auto h = hist_of({{50000, 1}});
    auto b = ks_lat_bucket(50000);
    double lo = static_cast<double>(ks_lat_bucket_low(b)) / 1000.0;
    double hi = static_cast<double>(ks_lat_bucket_low(b + 1)) / 1000.0;
    for (double q : {0.01, 0.5, 0.99, 1.0}) {
        INFO("q " << q);
        double v = quantile_us(h, q);
        CHECK(v >= lo);
        CHECK(v < hi);
        CHECK(v == Approx(53.248));  // (49152 + 57344) / 2 ns
    }
}

TEST_CASE("quantile_us: bucket 0 and the top bucket") {
    CHECK(quantile_us(hist_of({{100, 1}}), 0.5) == Approx(0.512));  // [0, 1024) ns
    LatencyHistogram top{};
    top[kTop] = 1;
    // open-ended: its low bound * 1.125
    double lo = static_cast<double>(ks_lat_bucket_low(kTop));
    CHECK(quantile_us(top, 0.5) == Approx(lo * 1.125 / 1000.0));
    CHECK(quantile_us(hist_of({{1ULL << 40, 1}}), 0.99) == Approx(lo * 1.125 / 1000.0));
}

TEST_CASE("quantile_us: a tail of slow samples") {
    const double at10us = bucket_mid_us(ks_lat_bucket(10000));
    const double at1ms = bucket_mid_us(ks_lat_bucket(1000000));
    REQUIRE(at10us == Approx(9.216));
    REQUIRE(at1ms == Approx(983.04));

    SECTION("99 samples at 10 us + 1 at 1 ms") {
        auto h = hist_of({{10000, 99}, {1000000, 1}});
        CHECK(quantile_us(h, 0.5) == Approx(at10us));
        // nearest rank: the 99th of 100 samples is still a 10 us one
        CHECK(quantile_us(h, 0.99) == Approx(at10us));
        // the 100th is the 1 ms one
        CHECK(quantile_us(h, 0.995) == Approx(at1ms));
        CHECK(quantile_us(h, 1.0) == Approx(at1ms));
    }
    SECTION("98 samples at 10 us + 2 at 1 ms") {
        auto h = hist_of({{10000, 98}, {1000000, 2}});
        CHECK(quantile_us(h, 0.5) == Approx(at10us));
        CHECK(quantile_us(h, 0.98) == Approx(at10us));
        CHECK(quantile_us(h, 0.99) == Approx(at1ms));
    }
    SECTION("990 samples at 10 us + 10 at 1 ms") {
        auto h = hist_of({{10000, 990}, {1000000, 10}});
        CHECK(quantile_us(h, 0.5) == Approx(at10us));
        CHECK(quantile_us(h, 0.99) == Approx(at10us));
        CHECK(quantile_us(h, 0.991) == Approx(at1ms));
    }
}

TEST_CASE("quantile_us: rank is the smallest with at least q of the samples at or below") {
    // one sample each in three distinct buckets
    auto h = hist_of({{2000, 1}, {50000, 1}, {1000000, 1}});
    const double a = bucket_mid_us(ks_lat_bucket(2000));
    const double b = bucket_mid_us(ks_lat_bucket(50000));
    const double c = bucket_mid_us(ks_lat_bucket(1000000));
    CHECK(quantile_us(h, 1e-9) == Approx(a));  // rank clamped to 1
    CHECK(quantile_us(h, 0.25) == Approx(a));
    CHECK(quantile_us(h, 0.34) == Approx(b));
    CHECK(quantile_us(h, 0.5) == Approx(b));
    CHECK(quantile_us(h, 0.66) == Approx(b));
    CHECK(quantile_us(h, 0.67) == Approx(c));
    CHECK(quantile_us(h, 1.0) == Approx(c));

    // two equal halves: the median is the lower one, anything above it the upper one
    auto even = hist_of({{2000, 50}, {50000, 50}});
    CHECK(quantile_us(even, 0.5) == Approx(a));
    CHECK(quantile_us(even, 0.51) == Approx(b));
}

TEST_CASE("quantile_us: quantiles are non-decreasing in q") {
    auto h = hist_of({{500, 7}, {3000, 11}, {70000, 5}, {9000000, 3}, {1ULL << 36, 1}});
    double prev = 0;
    for (int i = 1; i <= 1000; ++i) {
        double v = quantile_us(h, i / 1000.0);
        REQUIRE(v >= prev);
        prev = v;
    }
}

// ---- top_keys ----------------------------------------------------------------------

TEST_CASE("top_keys: ordered by ops (reads + writes), most first") {
    std::vector<KeyStats> keys = {make_key(0, 1, "a", 1, 0), make_key(0, 2, "b", 0, 5),
                                  make_key(0, 3, "c", 3, 3), make_key(0, 4, "d", 2, 0),
                                  make_key(0, 5, "e", 0, 0)};
    auto top = top_keys(keys, 10);
    CHECK(names(top) == std::vector<std::string>{"c", "b", "d", "a", "e"});
    CHECK(top[0].ops() == 6);
    CHECK(top[0].hash == 3);
    // the input is not reordered
    CHECK(names(keys) == std::vector<std::string>{"a", "b", "c", "d", "e"});
}

TEST_CASE("top_keys: n picks the true top n") {
    std::vector<KeyStats> keys;
    std::vector<std::uint64_t> ops = {13, 2, 8, 21, 1, 34, 5, 3, 55, 0};
    for (std::size_t i = 0; i < ops.size(); ++i)
        keys.push_back(make_key(0, i, "k" + std::to_string(ops[i]), ops[i]));
    auto top = top_keys(keys, 3);
    CHECK(names(top) == std::vector<std::string>{"k55", "k34", "k21"});
    CHECK(names(top_keys(keys, 1)) == std::vector<std::string>{"k55"});
}

TEST_CASE("top_keys: ties broken by key bytes, then by target") {
    std::vector<KeyStats> keys = {
        make_key(0, 1, "b", 5),     make_key(0, 2, "a", 5),    make_key(0, 3, "ab", 5),
        make_key(0, 4, "\xff", 5),  make_key(0, 5, "B", 5),    make_key(0, 6, std::string("a\0", 2), 5),
        make_key(3, 7, "same", 5),  make_key(1, 8, "same", 5), make_key(2, 9, "same", 5),
        make_key(0, 10, "z", 4, 2),  // more ops: first whatever its name
    };
    auto top = top_keys(keys, keys.size());
    REQUIRE(top.size() == keys.size());
    // byte order: 'B' (0x42) < 'a' < "a\0" < "ab" < 'b' < "same" < 0xff
    CHECK(names(top) == std::vector<std::string>{"z", "B", "a", std::string("a\0", 2), "ab", "b", "same",
                                                 "same", "same", "\xff"});
    CHECK(top[6].target == 1);
    CHECK(top[7].target == 2);
    CHECK(top[8].target == 3);
}

TEST_CASE("top_keys: output does not depend on input order") {
    std::vector<KeyStats> keys = {make_key(0, 1, "x", 2), make_key(1, 2, "x", 2), make_key(0, 3, "y", 2),
                                  make_key(0, 4, "w", 9), make_key(0, 5, "v", 1)};
    auto want = names(top_keys(keys, 4));
    REQUIRE(want == std::vector<std::string>{"w", "x", "x", "y"});
    std::sort(keys.begin(), keys.end(), [](const KeyStats& a, const KeyStats& b) { return a.hash < b.hash; });
    do {
        auto top = top_keys(keys, 4);
        REQUIRE(names(top) == want);
        REQUIRE(top[1].target == 0);
        REQUIRE(top[2].target == 1);
    } while (std::next_permutation(keys.begin(), keys.end(),
                                   [](const KeyStats& a, const KeyStats& b) { return a.hash < b.hash; }));
}

TEST_CASE("top_keys: n larger than the input, n = 0 and empty input") {
    std::vector<KeyStats> keys = {make_key(0, 1, "a", 1), make_key(0, 2, "b", 2)};
    CHECK(names(top_keys(keys, 100)) == std::vector<std::string>{"b", "a"});
    CHECK(names(top_keys(keys, 2)) == std::vector<std::string>{"b", "a"});
    CHECK(top_keys(keys, 0).empty());
    CHECK(top_keys({}, 0).empty());
    CHECK(top_keys({}, 5).empty());
}

TEST_CASE("top_keys: returned entries are full copies") {
    KeyStats k = make_key(7, 0xdead, "full", 3, 4);
    k.truncated = true;
    k.key_len = 200;
    k.max_value = 99;
    k.lat[17] = 6;
    k.bytes_out = 123;
    auto top = top_keys({k}, 1);
    REQUIRE(top.size() == 1);
    CHECK(top[0].target == 7);
    CHECK(top[0].hash == 0xdead);
    CHECK(top[0].key == "full");
    CHECK(top[0].truncated);
    CHECK(top[0].key_len == 200);
    CHECK(top[0].max_value == 99);
    CHECK(top[0].lat[17] == 6);
    CHECK(top[0].bytes_out == 123);
}

// ---- KeyTable --------------------------------------------------------------------------

TEST_CASE("KeyTable: empty") {
    KeyTable t;
    CHECK(t.size() == 0);
    CHECK(t.all().empty());
    std::vector<KeyStats> keys = {unnamed_key(0, 1, 1)};
    t.name_keys(keys);
    CHECK_FALSE(keys[0].named);
}

TEST_CASE("KeyTable: add merges entries of the same target and hash") {
    KeyTable t;
    KeyStats a = make_key(1, 77, "k", 2, 1);
    a.max_value = 10;
    a.lat[5] = 1;
    KeyStats b = make_key(1, 77, "k", 3, 4);
    b.max_value = 4;
    b.lat[5] = 2;
    t.add(a);
    t.add(b);
    t.add(a);
    REQUIRE(t.size() == 1);
    auto all = t.all();
    REQUIRE(all.size() == 1);
    CHECK(all[0].target == 1);
    CHECK(all[0].hash == 77);
    CHECK(all[0].key == "k");
    CHECK(all[0].reads == 7);
    CHECK(all[0].writes == 6);
    CHECK(all[0].max_value == 10);
    CHECK(all[0].lat[5] == 4);
}

TEST_CASE("KeyTable: different targets or hashes are kept apart") {
    KeyTable t;
    t.add(make_key(0, 5, "k", 1));
    t.add(make_key(1, 5, "k", 10));
    t.add(make_key(0, 6, "j", 100));
    t.add(make_key(1, 5, "k", 20));
    t.add(make_key(2, 1, "m", 1000));
    t.add(make_key(0, 5, "k", 2));
    REQUIRE(t.size() == 4);
    auto all = t.all();
    std::sort(all.begin(), all.end(), [](const KeyStats& a, const KeyStats& b) {
        return a.target != b.target ? a.target < b.target : a.hash < b.hash;
    });
    REQUIRE(all.size() == 4);
    CHECK(all[0].target == 0);
    CHECK(all[0].hash == 5);
    CHECK(all[0].reads == 3);
    CHECK(all[1].target == 0);
    CHECK(all[1].hash == 6);
    CHECK(all[1].reads == 100);
    CHECK(all[2].target == 1);
    CHECK(all[2].hash == 5);
    CHECK(all[2].reads == 30);
    CHECK(all[3].target == 2);
    CHECK(all[3].hash == 1);
    CHECK(all[3].reads == 1000);
}

TEST_CASE("KeyTable: entries whose IdHash collides are still distinct") {
    // IdHash is hash ^ (target << 1): (0, 2) and (1, 0) hash alike
    KeyTable t;
    t.add(make_key(0, 2, "a", 1));
    t.add(make_key(1, 0, "b", 2));
    REQUIRE(t.size() == 2);
    std::vector<KeyStats> keys = {unnamed_key(0, 2, 1), unnamed_key(1, 0, 1)};
    t.name_keys(keys);
    CHECK(keys[0].key == "a");
    CHECK(keys[1].key == "b");
}

TEST_CASE("KeyTable: an unnamed entry is named by a later named one") {
    KeyTable t;
    t.add(unnamed_key(0, 9, 1));
    REQUIRE(t.size() == 1);
    CHECK_FALSE(t.all()[0].named);
    t.add(make_key(0, 9, "late", 2));
    REQUIRE(t.size() == 1);
    auto k = t.all()[0];
    CHECK(k.named);
    CHECK(k.key == "late");
    CHECK(k.reads == 3);
}

TEST_CASE("KeyTable: name_keys names reply-only entries from keys seen before") {
    KeyTable t;
    KeyStats seen = make_key(0, 7, std::string(KS_KEY_MAX, 'p'), 1);
    seen.key_len = 300;
    seen.truncated = true;
    t.add(seen);
    t.add(make_key(1, 8, "other-target", 1));
    t.add(unnamed_key(0, 11, 1));  // known only as unnamed

    std::vector<KeyStats> keys = {
        unnamed_key(0, 7, 5),       // -> named from the table
        unnamed_key(1, 7, 5),       // same hash, other target: not known
        unnamed_key(0, 8, 5),       // (0, 8) not known; (1, 8) is
        make_key(0, 7, "mine", 5),  // already named: untouched
        unnamed_key(0, 11, 5),      // known, but not by name
        unnamed_key(1, 8, 6),       // -> named
    };
    t.name_keys(keys);

    CHECK(keys[0].named);
    CHECK(keys[0].key == std::string(KS_KEY_MAX, 'p'));
    CHECK(keys[0].key_len == 300);
    CHECK(keys[0].truncated);
    CHECK(keys[0].reads == 5);  // counts are not touched
    CHECK(keys[0].target == 0);
    CHECK(keys[0].hash == 7);

    CHECK_FALSE(keys[1].named);
    CHECK(keys[1].key.empty());
    CHECK_FALSE(keys[2].named);
    CHECK(keys[2].key.empty());

    CHECK(keys[3].named);
    CHECK(keys[3].key == "mine");
    CHECK(keys[3].key_len == 4);
    CHECK_FALSE(keys[3].truncated);

    CHECK_FALSE(keys[4].named);
    CHECK(keys[4].key.empty());

    CHECK(keys[5].named);
    CHECK(keys[5].key == "other-target");
    CHECK(keys[5].reads == 6);

    // name_keys does not change the table
    CHECK(t.size() == 3);
}

TEST_CASE("KeyTable: a bounded table forgets its less busy half when full") {
    KeyTable t(4);
    auto by_hash = [&t] {
        auto all = t.all();
        std::sort(all.begin(), all.end(),
                  [](const KeyStats& x, const KeyStats& y) { return x.hash < y.hash; });
        return all;
    };
    t.add(make_key(0, 1, "a", 10));
    t.add(make_key(0, 2, "b", 1));
    t.add(make_key(0, 3, "c", 5));
    t.add(make_key(0, 4, "d", 7));
    CHECK(t.size() == 4);
    CHECK(t.forgotten() == 0);
    t.add(make_key(0, 5, "e", 3));  // the fifth key: keep the busiest 2 of 5
    CHECK(t.size() == 2);
    CHECK(t.forgotten() == 3);
    auto all = by_hash();
    REQUIRE(all.size() == 2);
    CHECK(all[0].key == "a");
    CHECK(all[0].reads == 10);
    CHECK(all[1].key == "d");
    CHECK(all[1].reads == 7);

    // kept keys go on merging, and still name their reply-only entries
    t.add(make_key(0, 4, "d", 2));
    std::vector<KeyStats> later = {unnamed_key(0, 4, 1), unnamed_key(0, 2, 1)};
    t.name_keys(later);
    CHECK(later[0].named);
    CHECK(later[0].key == "d");
    CHECK_FALSE(later[1].named);  // "b" was forgotten
    all = by_hash();
    CHECK(all[1].reads == 9);

    // after a pruning, a newcomer less busy than the least busy key kept (d: 7
    // when pruned) is forgotten on arrival; one at least as busy comes in
    t.add(make_key(0, 2, "b", 4));
    CHECK(t.size() == 2);
    CHECK(t.forgotten() == 4);
    t.add(make_key(0, 6, "f", 100));
    t.add(make_key(0, 7, "g", 7));
    CHECK(t.size() == 4);
    CHECK(t.forgotten() == 4);
    // the fifth key prunes again (keep a 10, d 9 and f 100's busiest two: f, a),
    // and sets the bar at a's 10
    t.add(make_key(0, 8, "h", 8));
    CHECK(t.size() == 2);
    CHECK(t.forgotten() == 7);
    all = by_hash();
    REQUIRE(all.size() == 2);
    CHECK(all[0].key == "a");
    CHECK(all[1].key == "f");
    CHECK(all[1].reads == 100);
    t.add(make_key(0, 9, "i", 9));
    t.add(make_key(0, 10, "j", 10));
    CHECK(t.size() == 3);
    CHECK(t.forgotten() == 8);
    // a kept key still merges whatever its count
    t.add(make_key(0, 1, "a", 1));
    CHECK(t.size() == 3);
    CHECK(t.forgotten() == 8);
}
