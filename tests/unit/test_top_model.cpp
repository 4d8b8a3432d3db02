// Host tests of the `keyscope top` model (userspace/top/top_model.{hpp,cpp})
// and of the Snapshot <-> JSON conversion that `top --connect` relies on
// (userspace/output/snapshot_json.{hpp,cpp}). No terminal: hand-made
// Snapshots in, rows / selection / summary / formatted strings out.
// Unless a test says otherwise the interval is 1 s, so rates equal counts.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "error_of.hpp"
#include "output/snapshot.hpp"
#include "output/snapshot_json.hpp"
#include "top/top_model.hpp"

using keyscope::Column;
using keyscope::column_title;
using keyscope::fmt_bytes;
using keyscope::fmt_count;
using keyscope::fmt_latency_us;
using keyscope::HealthSnapshot;
using keyscope::HotspotSnapshot;
using keyscope::KeySnapshot;
using keyscope::LatencyHistogram;
using keyscope::ProgramCost;
using keyscope::ServerSnapshot;
using keyscope::Snapshot;
using keyscope::sparkline;
using keyscope::TopModel;
using keyscope::TopRow;
using keyscope::TopSummary;
using keyscope::Totals;
using keyscope::test::error_of;

namespace {

constexpr const char* kA = "10.0.0.1:6379";
constexpr const char* kB = "10.0.0.2:6379";
constexpr double kT0 = 1700000000;  // a fixed "now" for snapshots

const Column kAllColumns[] = {Column::key,       Column::server,    Column::ops,     Column::reads,
                              Column::writes,    Column::p50,       Column::p99,     Column::bytes,
                              Column::max_value, Column::error_pct, Column::severity};

KeySnapshot key(const std::string& server, const std::string& name, std::uint64_t reads,
                std::uint64_t writes = 0) {
    KeySnapshot k;
    k.server = server;
    k.proto = "redis";
    k.key = name;
    k.reads = reads;
    k.writes = writes;
    return k;
}

HotspotSnapshot hot(const std::string& server, const std::string& name, const std::string& severity,
                    const std::string& kind = "read", const std::string& entity = "key") {
    HotspotSnapshot h;
    h.entity = entity;
    h.name = name;
    h.server = server;
    h.kind = kind;
    h.severity = severity;
    h.rule = "absolute";
    h.detail = kind + " " + severity + " on " + name;
    return h;
}

Snapshot snap(double ts, double interval_s, std::vector<KeySnapshot> keys,
              std::vector<HotspotSnapshot> hotspots = {}) {
    Snapshot s;
    s.ts = ts;
    s.interval_s = interval_s;
    s.keys = std::move(keys);
    s.hotspots = std::move(hotspots);
    return s;
}

// "key@A" / "key@B": short, readable row identities for order assertions.
std::string id(const TopRow& r) {
    std::string srv = r.server == kA ? "A" : r.server == kB ? "B" : r.server;
    return r.key + "@" + srv;
}

std::vector<std::string> ids(const TopModel& m) {
    std::vector<std::string> out;
    for (const auto& r : m.rows()) out.push_back(id(r));
    return out;
}

std::string selected_id(const TopModel& m) {
    const TopRow* r = m.selected_row();
    return r ? id(*r) : "<none>";
}

/// The selected position, -1 for none (readable in failure messages).
long sel(const TopModel& m) {
    auto s = m.selected();
    return s ? static_cast<long>(*s) : -1;
}

void set_sort(TopModel& m, Column c, bool descending) {
    if (m.sort_column() != c) m.sort_by(c);
    if (m.descending() != descending) m.invert();
    REQUIRE(m.sort_column() == c);
    REQUIRE(m.descending() == descending);
}

/// Cells a string takes on a terminal: UTF-8 code points.
std::size_t cells(const std::string& s) {
    std::size_t n = 0;
    for (unsigned char c : s)
        if ((c & 0xC0) != 0x80) ++n;
    return n;
}

/// "HH:MM:SS" of a unix time, local time like the model's history lines.
std::string clock_of(double ts) {
    std::time_t t = static_cast<std::time_t>(ts);
    std::tm tm{};
    char buf[16] = "?";
    if (localtime_r(&t, &tm)) std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    return buf;
}

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

// Five keys on two servers whose every column gives a different order, with
// ties in most columns (interval 1 s, so rates are the counts):
//   row        reads writes err  in+out  max   p50 p99  severity
//   user:1@A     40    0     0   10+1000 100   10  100  none
//   user:1@B     10   30     4  500+500  5000  30   50  high
//   cart:9@A      5    5     5     0      0     0    0  low
//   zz@B         40    0     0 1000+1000 100   20  300  critical
//   a@A           0    1     1    0+10    7    10  100  none
Snapshot sort_fixture(double ts = kT0) {
    auto k = [](const char* srv, const char* name, std::uint64_t r, std::uint64_t w, std::uint64_t err,
                std::uint64_t in, std::uint64_t out, std::uint64_t max, double p50, double p99) {
        KeySnapshot ks = key(srv, name, r, w);
        ks.errors = err;
        ks.bytes_in = in;
        ks.bytes_out = out;
        ks.max_value_bytes = max;
        ks.p50_us = p50;
        ks.p99_us = p99;
        return ks;
    };
    return snap(ts, 1,
                {k(kA, "user:1", 40, 0, 0, 10, 1000, 100, 10, 100),
                 k(kB, "user:1", 10, 30, 4, 500, 500, 5000, 30, 50), k(kA, "cart:9", 5, 5, 5, 0, 0, 0, 0, 0),
                 k(kB, "zz", 40, 0, 0, 1000, 1000, 100, 20, 300), k(kA, "a", 0, 1, 1, 0, 10, 7, 10, 100)},
                {hot(kB, "user:1", "high"), hot(kA, "cart:9", "low"), hot(kB, "zz", "critical")});
}

using Ids = std::vector<std::string>;

}  // namespace

// ---------------------------------------------------------------- rows

TEST_CASE("top: a row's rates are the snapshot's counts divided by the interval", "[top]") {
    KeySnapshot k = key(kA, "user:42", 10, 5);
    k.truncated = true;
    k.errors = 3;
    k.redirects = 2;
    k.bytes_in = 100;
    k.bytes_out = 150;
    k.max_value_bytes = 4096;
    k.p50_us = 12.5;
    k.p99_us = 99.25;
    for (std::size_t i = 0; i < k.lat.size(); ++i) k.lat[i] = i * 3 + 1;

    TopModel m;
    m.update(snap(kT0, 2.5, {k}));
    REQUIRE(m.rows().size() == 1);
    const TopRow& r = m.rows()[0];
    CHECK(r.key == "user:42");
    CHECK(r.server == kA);
    CHECK(r.truncated);
    CHECK(r.reads == 10 / 2.5);
    CHECK(r.writes == 5 / 2.5);
    CHECK(r.ops == 15 / 2.5);
    CHECK(r.bytes == (100 + 150) / 2.5);  // in + out, per second
    CHECK(r.error_pct == 100.0 * 3 / 15);
    CHECK(r.max_value == 4096);  // a size, not a rate
    CHECK(r.p50_us == 12.5);
    CHECK(r.p99_us == 99.25);
    CHECK(r.lat == k.lat);
    CHECK(r.severity == -1);
    CHECK(r.trend == std::vector<double>{15 / 2.5});
    CHECK(m.snapshot().keys.size() == 1);
    CHECK(m.snapshot().ts == kT0);
}

TEST_CASE("top: rates are exact for odd intervals and zero without an interval", "[top]") {
    KeySnapshot k = key(kA, "k", 7, 3);
    k.bytes_in = 1;
    k.bytes_out = 2;
    TopModel m;
    m.update(snap(kT0, 0.3, {k}));
    CHECK(m.rows()[0].reads == 7 / 0.3);
    CHECK(m.rows()[0].writes == 3 / 0.3);
    CHECK(m.rows()[0].ops == 7 / 0.3 + 3 / 0.3);
    CHECK(m.rows()[0].bytes == 3 / 0.3);

    // an interval of 0 (or less) must not divide by zero
    for (double interval : {0.0, -1.0}) {
        m.update(snap(kT0 + 1, interval, {k}));
        CHECK(m.rows()[0].reads == 0);
        CHECK(m.rows()[0].writes == 0);
        CHECK(m.rows()[0].ops == 0);
        CHECK(m.rows()[0].bytes == 0);
        CHECK(m.rows()[0].error_pct == 0);
    }
}

TEST_CASE("top: error percent is errors over reads plus writes", "[top]") {
    KeySnapshot all_bad = key(kA, "bad", 2, 2);
    all_bad.errors = 4;
    KeySnapshot idle = key(kA, "idle", 0, 0);
    idle.errors = 5;  // errors with no ops: 0 %, not a division by zero
    KeySnapshot some = key(kA, "some", 199, 1);
    some.errors = 1;
    TopModel m;
    m.sort_by(Column::key);
    m.update(snap(kT0, 10, {all_bad, idle, some}));
    REQUIRE(ids(m) == Ids{"bad@A", "idle@A", "some@A"});
    CHECK(m.rows()[0].error_pct == 100);
    CHECK(m.rows()[1].error_pct == 0);
    CHECK(m.rows()[2].error_pct == 0.5);  // independent of the interval
}

TEST_CASE("top: a row's severity is the worst active key hotspot of that server and key", "[top]") {
    TopModel m;
    m.sort_by(Column::key);
    m.update(snap(kT0, 1, {key(kA, "hot", 5), key(kB, "hot", 5), key(kA, "cold", 5), key(kA, "odd", 1)},
                  {
                      hot(kA, "hot", "low", "read"),
                      hot(kA, "hot", "critical", "latency"),
                      hot(kA, "hot", "medium", "write"),
                      // same name, but a prefix / slot / server entity: not this key
                      hot(kA, "cold", "critical", "read", "prefix"),
                      hot(kA, "cold", "high", "read", "slot"),
                      hot(kA, "cold", "high", "read", "server"),
                      // an unknown severity word ranks below low
                      hot(kA, "odd", "bogus"),
                      // a hotspot for a key that is not in the table
                      hot(kA, "absent", "high"),
                  }));
    REQUIRE(ids(m) == Ids{"cold@A", "hot@A", "hot@B", "odd@A"});
    CHECK(m.rows()[0].severity == -1);
    CHECK(m.rows()[1].severity == 3);
    CHECK(m.rows()[2].severity == -1);  // the hotspots are on server A only
    CHECK(m.rows()[3].severity == -1);

    // the next snapshot: only low left -> the row follows
    m.update(snap(kT0 + 1, 1, {key(kA, "hot", 5), key(kB, "hot", 5)}, {hot(kA, "hot", "low")}));
    REQUIRE(ids(m) == Ids{"hot@A", "hot@B"});
    CHECK(m.rows()[0].severity == 0);
    CHECK(m.rows()[1].severity == -1);

    for (auto [word, rank] :
         std::vector<std::pair<std::string, int>>{{"low", 0}, {"medium", 1}, {"high", 2}, {"critical", 3}}) {
        m.update(snap(kT0 + 2, 1, {key(kB, "x", 1)}, {hot(kB, "x", word)}));
        CHECK(m.rows()[0].severity == rank);
    }
}

TEST_CASE("top: huge counters stay exact enough", "[top]") {
    const std::uint64_t big = 1'000'000'000'000'000'000ULL;  // 1e18
    KeySnapshot k = key(kA, "big", big, big);
    k.errors = big;
    k.bytes_in = big;
    k.bytes_out = big;
    k.max_value_bytes = std::numeric_limits<std::uint64_t>::max();
    k.p99_us = 1e15;
    TopModel m;
    m.update(snap(kT0, 1, {k}));
    const TopRow& r = m.rows()[0];
    CHECK(r.reads == 1e18);
    CHECK(r.writes == 1e18);
    CHECK(r.ops == 2e18);
    CHECK(r.bytes == 2e18);
    CHECK(r.error_pct == 50);
    CHECK(r.max_value == std::numeric_limits<std::uint64_t>::max());
    CHECK(r.p99_us == 1e15);
}

TEST_CASE("top: column titles", "[top]") {
    CHECK(std::string(column_title(Column::key)) == "KEY");
    CHECK(std::string(column_title(Column::server)) == "SERVER");
    CHECK(std::string(column_title(Column::ops)) == "OPS/s");
    CHECK(std::string(column_title(Column::severity)) == "HOT");
    std::set<std::string> seen;
    for (Column c : kAllColumns) {
        std::string t = column_title(c);
        CHECK(!t.empty());
        CHECK(seen.insert(t).second);  // distinct
    }
    CHECK(seen.size() == static_cast<std::size_t>(Column::count_));
}

// ---------------------------------------------------------------- sorting

TEST_CASE("top: default sort is ops, busiest first, ties by key then server", "[top]") {
    TopModel m;
    CHECK(m.sort_column() == Column::ops);
    CHECK(m.descending());
    m.update(sort_fixture());
    CHECK(ids(m) == Ids{"user:1@A", "user:1@B", "zz@B", "cart:9@A", "a@A"});
}

TEST_CASE("top: every column sorts both ways, ties always by key then server ascending", "[top]") {
    struct Expect {
        Column c;
        Ids desc, asc;
    };
    const std::vector<Expect> table = {
        {Column::key,
         {"zz@B", "user:1@A", "user:1@B", "cart:9@A", "a@A"},
         {"a@A", "cart:9@A", "user:1@A", "user:1@B", "zz@B"}},
        {Column::server,
         {"user:1@B", "zz@B", "a@A", "cart:9@A", "user:1@A"},
         {"a@A", "cart:9@A", "user:1@A", "user:1@B", "zz@B"}},
        {Column::ops,
         {"user:1@A", "user:1@B", "zz@B", "cart:9@A", "a@A"},
         {"a@A", "cart:9@A", "user:1@A", "user:1@B", "zz@B"}},
        {Column::reads,
         {"user:1@A", "zz@B", "user:1@B", "cart:9@A", "a@A"},
         {"a@A", "cart:9@A", "user:1@B", "user:1@A", "zz@B"}},
        {Column::writes,
         {"user:1@B", "cart:9@A", "a@A", "user:1@A", "zz@B"},
         {"user:1@A", "zz@B", "a@A", "cart:9@A", "user:1@B"}},
        {Column::p50,
         {"user:1@B", "zz@B", "a@A", "user:1@A", "cart:9@A"},
         {"cart:9@A", "a@A", "user:1@A", "zz@B", "user:1@B"}},
        {Column::p99,
         {"zz@B", "a@A", "user:1@A", "user:1@B", "cart:9@A"},
         {"cart:9@A", "user:1@B", "a@A", "user:1@A", "zz@B"}},
        {Column::bytes,
         {"zz@B", "user:1@A", "user:1@B", "a@A", "cart:9@A"},
         {"cart:9@A", "a@A", "user:1@B", "user:1@A", "zz@B"}},
        {Column::max_value,
         {"user:1@B", "user:1@A", "zz@B", "a@A", "cart:9@A"},
         {"cart:9@A", "a@A", "user:1@A", "zz@B", "user:1@B"}},
        {Column::error_pct,
         {"a@A", "cart:9@A", "user:1@B", "user:1@A", "zz@B"},
         {"user:1@A", "zz@B", "user:1@B", "cart:9@A", "a@A"}},
        {Column::severity,
         {"zz@B", "user:1@B", "cart:9@A", "a@A", "user:1@A"},
         {"a@A", "user:1@A", "cart:9@A", "user:1@B", "zz@B"}},
    };
    REQUIRE(table.size() == static_cast<std::size_t>(Column::count_));
    TopModel m;
    m.update(sort_fixture());
    for (const auto& e : table) {
        INFO("column " << column_title(e.c));
        set_sort(m, e.c, true);
        CHECK(ids(m) == e.desc);
        set_sort(m, e.c, false);
        CHECK(ids(m) == e.asc);
    }
}

TEST_CASE("top: sort_by picks a column's natural direction, again on it toggles", "[top]") {
    TopModel m;
    m.update(sort_fixture());
    for (Column c : kAllColumns) {
        INFO("column " << column_title(c));
        if (c == Column::ops) m.sort_by(Column::key);  // start from another column
        m.sort_by(c);
        CHECK(m.sort_column() == c);
        const bool natural = c != Column::key && c != Column::server;  // numbers: biggest first
        CHECK(m.descending() == natural);
        m.sort_by(c);
        CHECK(m.sort_column() == c);
        CHECK(m.descending() == !natural);
        m.sort_by(c);
        CHECK(m.descending() == natural);
    }
    // toggling really reorders
    m.sort_by(Column::p99);
    REQUIRE(m.descending());
    CHECK(ids(m) == Ids{"zz@B", "a@A", "user:1@A", "user:1@B", "cart:9@A"});
    m.sort_by(Column::p99);
    CHECK(ids(m) == Ids{"cart:9@A", "user:1@B", "a@A", "user:1@A", "zz@B"});
}

TEST_CASE("top: shift_sort walks the columns and wraps around", "[top]") {
    TopModel m;
    m.update(sort_fixture());
    const int n = static_cast<int>(Column::count_);
    REQUIRE(m.sort_column() == Column::ops);

    // right through every column, back to ops
    for (int i = 1; i <= n; ++i) {
        m.shift_sort(+1);
        Column want = static_cast<Column>((static_cast<int>(Column::ops) + i) % n);
        CHECK(m.sort_column() == want);
        CHECK(m.descending() == (want != Column::key && want != Column::server));
    }
    CHECK(m.sort_column() == Column::ops);

    // left from the first column wraps to the last
    m.sort_by(Column::key);
    m.shift_sort(-1);
    CHECK(m.sort_column() == Column::severity);
    CHECK(m.descending());
    CHECK(ids(m) == Ids{"zz@B", "user:1@B", "cart:9@A", "a@A", "user:1@A"});
    // right from the last wraps to the first
    m.shift_sort(+1);
    CHECK(m.sort_column() == Column::key);
    CHECK_FALSE(m.descending());
    CHECK(ids(m) == Ids{"a@A", "cart:9@A", "user:1@A", "user:1@B", "zz@B"});

    // steps bigger than the column count still land on a column
    m.shift_sort(n + 2);
    CHECK(m.sort_column() == Column::ops);
    m.shift_sort(-(2 * n + 2));
    CHECK(m.sort_column() == Column::key);
    m.shift_sort(0);
    CHECK(m.sort_column() == Column::key);

    // an inverted sort becomes the new column's natural direction
    m.sort_by(Column::p50);
    m.invert();
    REQUIRE_FALSE(m.descending());
    m.shift_sort(+1);
    CHECK(m.sort_column() == Column::p99);
    CHECK(m.descending());
}

TEST_CASE("top: invert flips the direction of the current column and keeps ties ascending", "[top]") {
    TopModel m;
    m.update(sort_fixture());
    m.invert();
    CHECK(m.sort_column() == Column::ops);
    CHECK_FALSE(m.descending());
    // not simply the reverse: the three-way tie at 40 ops stays key/server ascending
    CHECK(ids(m) == Ids{"a@A", "cart:9@A", "user:1@A", "user:1@B", "zz@B"});
    m.invert();
    CHECK(m.descending());
    CHECK(ids(m) == Ids{"user:1@A", "user:1@B", "zz@B", "cart:9@A", "a@A"});
}

TEST_CASE("top: sort and direction survive updates", "[top]") {
    TopModel m;
    m.sort_by(Column::writes);
    m.invert();
    m.update(sort_fixture());
    CHECK(ids(m) == Ids{"user:1@A", "zz@B", "a@A", "cart:9@A", "user:1@B"});
    m.update(snap(kT0 + 1, 1, {key(kA, "w3", 0, 3), key(kA, "w1", 0, 1), key(kA, "w2", 0, 2)}));
    CHECK(m.sort_column() == Column::writes);
    CHECK_FALSE(m.descending());
    CHECK(ids(m) == Ids{"w1@A", "w2@A", "w3@A"});
}

TEST_CASE("top: sorting property on random rows with many ties", "[top]") {
    std::mt19937 rng(1234);
    auto pick = [&](int n) { return static_cast<std::uint64_t>(rng() % static_cast<unsigned>(n)); };
    const char* servers[] = {kA, kB, "10.0.0.3:7000"};
    const char* sev[] = {"low", "medium", "high", "critical"};
    std::set<std::pair<std::string, std::string>> used;
    Snapshot s = snap(kT0, 1, {});
    while (s.keys.size() < 150) {
        std::string srv = servers[pick(3)];
        std::string name = "k" + std::to_string(pick(60));
        if (!used.insert({srv, name}).second) continue;
        KeySnapshot k = key(srv, name, pick(4), pick(4));
        k.errors = pick(3);
        k.bytes_in = pick(3) * 10;
        k.bytes_out = pick(3) * 10;
        k.max_value_bytes = pick(3);
        k.p50_us = static_cast<double>(pick(3)) * 10;
        k.p99_us = static_cast<double>(pick(3)) * 100;
        s.keys.push_back(k);
        if (pick(3) == 0) s.hotspots.push_back(hot(srv, name, sev[pick(4)]));
    }
    auto cmp = [&](Column c, const TopRow& a, const TopRow& b) {
        if (c == Column::key) return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
        if (c == Column::server) return a.server < b.server ? -1 : a.server > b.server ? 1 : 0;
        // which field a column shows is checked by the table of examples above
        double x = column_value(c, a), y = column_value(c, b);
        return x < y ? -1 : x > y ? 1 : 0;
    };
    TopModel m;
    m.update(s);
    for (Column c : kAllColumns)
        for (bool desc : {true, false}) {
            set_sort(m, c, desc);
            INFO("column " << column_title(c) << (desc ? " descending" : " ascending"));
            REQUIRE(m.rows().size() == s.keys.size());
            std::size_t bad = 0;
            for (std::size_t i = 1; i < m.rows().size(); ++i) {
                const TopRow &a = m.rows()[i - 1], &b = m.rows()[i];
                int k = cmp(c, a, b);
                bool tie_ok = a.key != b.key ? a.key < b.key : a.server < b.server;
                bool ok = k == 0 ? tie_ok : desc ? k > 0 : k < 0;
                if (!ok) ++bad;
            }
            CHECK(bad == 0);
            std::set<std::pair<std::string, std::string>> seen;
            for (const auto& r : m.rows()) seen.insert({r.server, r.key});
            CHECK(seen == used);
        }
}

// ---------------------------------------------------------------- filter

TEST_CASE("top: the filter keeps keys containing a substring, case-sensitive", "[top]") {
    TopModel m;
    m.update(sort_fixture());
    CHECK(m.filter().empty());

    m.set_filter("user");
    CHECK(m.filter() == "user");
    CHECK(ids(m) == Ids{"user:1@A", "user:1@B"});

    m.set_filter(":");
    CHECK(ids(m) == Ids{"user:1@A", "user:1@B", "cart:9@A"});

    m.set_filter("a");  // anywhere in the key
    CHECK(ids(m) == Ids{"cart:9@A", "a@A"});

    m.set_filter("USER");
    CHECK(m.rows().empty());
    CHECK_FALSE(m.selected());
    CHECK(m.selected_row() == nullptr);

    m.set_filter("10.0.0.2");  // servers are not searched
    CHECK(m.rows().empty());

    m.set_filter("");
    CHECK(m.rows().size() == 5);
    CHECK(ids(m) == Ids{"user:1@A", "user:1@B", "zz@B", "cart:9@A", "a@A"});
}

TEST_CASE("top: the filter survives updates and combines with the sort", "[top]") {
    TopModel m;
    m.set_filter("user");  // before any data
    CHECK(m.rows().empty());
    m.update(sort_fixture());
    CHECK(ids(m) == Ids{"user:1@A", "user:1@B"});
    m.sort_by(Column::writes);
    CHECK(ids(m) == Ids{"user:1@B", "user:1@A"});
    m.update(snap(kT0 + 1, 1, {key(kA, "user:2", 0, 9), key(kA, "other", 0, 99), key(kB, "user:1", 0, 1)}));
    CHECK(ids(m) == Ids{"user:2@A", "user:1@B"});
    m.set_filter("");
    CHECK(ids(m) == Ids{"other@A", "user:2@A", "user:1@B"});
}

// ---------------------------------------------------------------- selection

TEST_CASE("top: moving the selection is clamped to the rows", "[top]") {
    TopModel m;
    m.update(sort_fixture());  // user:1@A, user:1@B, zz@B, cart:9@A, a@A
    REQUIRE(sel(m) == 0);
    CHECK(selected_id(m) == "user:1@A");
    m.move(2);
    CHECK(sel(m) == 2);
    CHECK(selected_id(m) == "zz@B");
    m.move(-1);
    CHECK(sel(m) == 1);
    m.move(100);
    CHECK(sel(m) == 4);
    m.move(1);
    CHECK(sel(m) == 4);
    m.move(-100);
    CHECK(sel(m) == 0);
    m.move(-1);
    CHECK(sel(m) == 0);
    m.select_last();
    CHECK(selected_id(m) == "a@A");
    m.select_first();
    CHECK(selected_id(m) == "user:1@A");
    m.move(0);
    CHECK(sel(m) == 0);
}

TEST_CASE("top: the selection follows its key when rows move", "[top]") {
    TopModel m;
    m.update(sort_fixture());
    m.move(3);
    REQUIRE(selected_id(m) == "cart:9@A");

    SECTION("rates change, so the key climbs to the top") {
        Snapshot s = sort_fixture(kT0 + 1);
        for (auto& k : s.keys)
            if (k.key == "cart:9") k.reads = 500;
        m.update(s);
        CHECK(ids(m) == Ids{"cart:9@A", "user:1@A", "user:1@B", "zz@B", "a@A"});
        CHECK(sel(m) == 0);
        CHECK(selected_id(m) == "cart:9@A");

        // and sinks again to the bottom
        for (auto& k : s.keys)
            if (k.key == "cart:9") k.reads = 0, k.writes = 0;
        s.ts += 1;
        m.update(s);
        CHECK(ids(m).back() == "cart:9@A");
        CHECK(sel(m) == 4);
        CHECK(selected_id(m) == "cart:9@A");
    }
    SECTION("the sort changes") {
        m.sort_by(Column::key);
        CHECK(sel(m) == 1);
        CHECK(selected_id(m) == "cart:9@A");
        m.invert();
        CHECK(sel(m) == 3);
        m.shift_sort(+1);  // server
        CHECK(selected_id(m) == "cart:9@A");
    }
    SECTION("the filter changes") {
        m.set_filter("c");
        CHECK(ids(m) == Ids{"cart:9@A"});
        CHECK(sel(m) == 0);
        m.set_filter("");
        CHECK(selected_id(m) == "cart:9@A");
        CHECK(sel(m) == 3);
    }
    SECTION("a filter that hides every row, then cleared, comes back to the key") {
        m.set_filter("no such key");
        CHECK_FALSE(m.selected());
        m.set_filter("");
        CHECK(selected_id(m) == "cart:9@A");
    }
    SECTION("the same key on another server is another row") {
        m.select_first();
        REQUIRE(selected_id(m) == "user:1@A");
        Snapshot s = sort_fixture(kT0 + 1);
        for (auto& k : s.keys)
            if (k.key == "user:1" && k.server == kB) k.reads = 1000;  // user:1@B to the top
        m.update(s);
        CHECK(ids(m).front() == "user:1@B");
        CHECK(selected_id(m) == "user:1@A");
        CHECK(sel(m) == 1);
    }
}

TEST_CASE("top: when the selected key disappears the selection keeps its place, clamped", "[top]") {
    TopModel m;
    m.update(sort_fixture());  // user:1@A, user:1@B, zz@B, cart:9@A, a@A

    SECTION("in the middle: same position, next row") {
        m.move(1);
        REQUIRE(selected_id(m) == "user:1@B");
        Snapshot s = sort_fixture(kT0 + 1);
        s.keys.erase(s.keys.begin() + 1);  // user:1@B
        m.update(s);
        CHECK(sel(m) == 1);
        CHECK(selected_id(m) == "zz@B");
    }
    SECTION("at the end: clamped to the new last row") {
        m.select_last();
        REQUIRE(selected_id(m) == "a@A");
        Snapshot s = sort_fixture(kT0 + 1);
        s.keys.pop_back();  // a@A
        m.update(s);
        CHECK(m.rows().size() == 4);
        CHECK(sel(m) == 3);
        CHECK(selected_id(m) == "cart:9@A");

        s.keys.resize(1);
        s.ts += 1;
        m.update(s);
        CHECK(sel(m) == 0);
        CHECK(selected_id(m) == "user:1@A");
    }
    SECTION("all rows go, then come back") {
        m.move(2);
        REQUIRE(selected_id(m) == "zz@B");
        m.update(snap(kT0 + 1, 1, {}));
        CHECK_FALSE(m.selected());
        CHECK(m.selected_row() == nullptr);
        m.update(sort_fixture(kT0 + 2));
        REQUIRE(m.selected());
        CHECK(*m.selected() < m.rows().size());
        CHECK(selected_id(m) == "zz@B");
    }
}

TEST_CASE("top: empty data", "[top]") {
    auto check_empty = [](TopModel& m) {
        CHECK(m.rows().empty());
        CHECK_FALSE(m.selected());
        CHECK(m.selected_row() == nullptr);
        m.move(1);
        m.move(-1);
        m.move(1000000);
        m.select_first();
        m.select_last();
        CHECK_FALSE(m.selected());
        for (Column c : kAllColumns) m.sort_by(c);
        m.shift_sort(+1);
        m.shift_sort(-1);
        m.invert();
        m.set_filter("x");
        m.set_filter("");
        CHECK(m.rows().empty());
        CHECK_FALSE(m.selected());
        CHECK(m.history(kA, "k").empty());

        TopSummary sum = m.summary(kT0);
        CHECK(sum.targets.empty());
        CHECK(sum.ops == 0);
        CHECK(sum.reads == 0);
        CHECK(sum.writes == 0);
        CHECK(sum.p99_us == 0);
        CHECK(sum.error_pct == 0);
        for (int h : sum.hotspots) CHECK(h == 0);
        CHECK(sum.bpf_ns_per_request == -1);
        CHECK(sum.map_fill == 0);
        CHECK(sum.cpu_percent == 0);
        CHECK(sum.unattributed == 0);
    };
    SECTION("never updated") {
        TopModel m;
        check_empty(m);
        CHECK(m.summary(kT0).age_s == 0);  // no data: no age
    }
    SECTION("an empty snapshot") {
        TopModel m;
        m.update(Snapshot{});
        check_empty(m);
        m.update(snap(kT0, 1, {}));
        check_empty(m);
        CHECK(m.summary(kT0 + 3).age_s == 3);
    }
    SECTION("an all-zero key still makes a row") {
        TopModel m;
        m.update(snap(kT0, 1, {key(kA, "", 0, 0)}));
        REQUIRE(m.rows().size() == 1);
        CHECK(m.rows()[0].key.empty());
        CHECK(m.rows()[0].ops == 0);
        CHECK(m.rows()[0].trend == std::vector<double>{0});
        CHECK(sel(m) == 0);
    }
}

// ---------------------------------------------------------------- odd keys

TEST_CASE("top: very long keys are kept whole, filtered and sorted", "[top]") {
    const std::string long1 = std::string(100000, 'k') + "needle";
    const std::string long2 = std::string(100000, 'k') + "hay";
    TopModel m;
    m.update(snap(kT0, 1, {key(kA, long1, 3), key(kA, long2, 2), key(kA, "short", 1)}));
    REQUIRE(m.rows().size() == 3);
    CHECK(m.rows()[0].key == long1);
    CHECK(m.rows()[0].key.size() == 100006);
    m.set_filter("needle");
    REQUIRE(m.rows().size() == 1);
    CHECK(m.rows()[0].key == long1);
    m.set_filter("");
    m.sort_by(Column::key);
    REQUIRE(m.rows().size() == 3);
    CHECK(m.rows()[0].key == long2);  // "...hay" < "...needle"
    CHECK(m.rows()[1].key == long1);
    CHECK(m.rows()[2].key == "short");
    REQUIRE(m.selected_row() != nullptr);
    CHECK(m.selected_row()->key == long1);  // followed from the ops sort
    m.update(snap(kT0 + 1, 1, {key(kA, long1, 1), key(kA, long2, 2), key(kA, "short", 1)}));
    CHECK(m.selected_row()->key == long1);
}

TEST_CASE("top: binary keys (escaped, or raw bytes) are plain strings to the model", "[top]") {
    const std::string escaped = "bin\\x00key";  // what key_format shows for "bin\0key"
    const std::string escaped2 = "bin\\x01key";
    const std::string raw("raw\0\xff\x1f key", 10);  // must not be cut at the NUL
    TopModel m;
    m.update(snap(kT0, 1, {key(kA, escaped, 1), key(kA, escaped2, 2), key(kA, raw, 3)},
                  {hot(kA, escaped, "high"), hot(kA, raw, "medium")}));
    m.sort_by(Column::key);
    REQUIRE(m.rows().size() == 3);
    CHECK(m.rows()[0].key == escaped);
    CHECK(m.rows()[0].key.size() == 10);
    CHECK(m.rows()[0].severity == 2);
    CHECK(m.rows()[1].key == escaped2);
    CHECK(m.rows()[2].key == raw);
    CHECK(m.rows()[2].key.size() == 10);
    CHECK(m.rows()[2].severity == 1);

    m.set_filter("\\x00");
    REQUIRE(m.rows().size() == 1);
    CHECK(m.rows()[0].key == escaped);
    m.set_filter(std::string("\0", 1));  // a real NUL only matches the raw key
    REQUIRE(m.rows().size() == 1);
    CHECK(m.rows()[0].key == raw);
    m.set_filter("");
    CHECK(m.history(kA, escaped).size() == 1);
    CHECK(m.history(kA, raw).size() == 1);
}

// ---------------------------------------------------------------- number formats

namespace {

std::vector<double> sample_values() {
    std::vector<double> v = {0, 0.4, 0.6, 1, 9, 10, 99, 100, 999, 1000, 1e18, 9.99e17, 5e17};
    const double mantissas[] = {1,     1.05, 1.5,    2.5,   4.999,   5,      9.49,   9.5,
                                9.949, 9.95, 9.9949, 9.995, 9.99949, 9.9995, 9.99999};
    for (int e = 0; e <= 18; ++e)
        for (double m : mantissas) v.push_back(m * std::pow(10.0, e));
    for (int b = 0; b <= 60; ++b) {
        double p = std::ldexp(1.0, b);
        v.push_back(p);
        v.push_back(p - 1);
        v.push_back(p * 1.5);
        v.push_back(p * 1000 / 1024);
    }
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> exp10(0, 18);
    for (int i = 0; i < 3000; ++i) v.push_back(std::pow(10.0, exp10(rng)));
    v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return x > 1e18; }), v.end());
    return v;
}

/// Reads back "12.3k" style output; units are one letter after the number.
double read_back(const std::string& s, double step, const std::string& units) {
    double mult = 1;
    std::string num = s;
    if (auto p = units.find(s.back()); p != std::string::npos) {
        mult = std::pow(step, static_cast<double>(p + 1));
        num.pop_back();
    }
    return std::stod(num) * mult;
}

bool all_hashes(const std::string& s) {
    return !s.empty() && s.find_first_not_of('#') == std::string::npos;
}

}  // namespace

TEST_CASE("top: fmt_count exact outputs", "[top]") {
    CHECK(fmt_count(0, 5) == "0");
    CHECK(fmt_count(-5, 5) == "0");  // negative rates never shown
    CHECK(fmt_count(7, 1) == "7");
    CHECK(fmt_count(999, 5) == "999");
    CHECK(fmt_count(999, 3) == "999");
    CHECK(fmt_count(1000, 3) == "1k");
    CHECK(fmt_count(1000, 4) == "1000");
    CHECK(fmt_count(1600, 3) == "2k");
    CHECK(fmt_count(12345, 5) == "12345");  // fits as is: no suffix
    CHECK(fmt_count(12345, 4) == "12k");    // "12.3k" is 5 wide
    CHECK(fmt_count(12345, 3) == "12k");
    CHECK(fmt_count(123456, 6) == "123456");
    CHECK(fmt_count(123456, 5) == "123k");
    CHECK(fmt_count(1234567, 5) == "1235k");
    CHECK(fmt_count(1234567, 4) == "1.2M");
    CHECK(fmt_count(999999, 4) == "1.0M");
    CHECK(fmt_count(2500000, 7) == "2500000");
    CHECK(fmt_count(25000000, 8) == "25000000");
    CHECK(fmt_count(25000000, 7) == "25000k");  // "25000.0k" is 8 wide
    CHECK(fmt_count(25000000, 6) == "25000k");
    CHECK(fmt_count(25000000, 4) == "25M");
    CHECK(fmt_count(3.2e9, 4) == "3.2G");
    CHECK(fmt_count(4.56e12, 5) == "4560G");  // the smallest unit that fits wins
    CHECK(fmt_count(4.56e12, 4) == "4.6T");
    CHECK(fmt_count(1e18, 10) == "1000000.0T");  // T is the largest unit
    CHECK(fmt_count(1e18, 8) == "1000000T");
    CHECK(fmt_count(1e18, 7) == "#######");  // does not fit: hashes, never wider
    CHECK(fmt_count(50, 1) == "#");
}

TEST_CASE("top: fmt_bytes exact outputs (1024 steps)", "[top]") {
    CHECK(fmt_bytes(0, 4) == "0");
    CHECK(fmt_bytes(-1, 4) == "0");
    CHECK(fmt_bytes(1023, 4) == "1023");
    CHECK(fmt_bytes(1024, 4) == "1024");
    CHECK(fmt_bytes(1024, 3) == "1K");
    CHECK(fmt_bytes(10240, 4) == "10K");
    CHECK(fmt_bytes(10240, 5) == "10240");
    CHECK(fmt_bytes(102400, 5) == "100K");  // "100.0K" is 6 wide
    CHECK(fmt_bytes(1048576, 4) == "1.0M");
    CHECK(fmt_bytes(1048576, 5) == "1024K");
    CHECK(fmt_bytes(1.5 * 1048576, 4) == "1.5M");
    CHECK(fmt_bytes(3.0 * 1024 * 1024 * 1024, 4) == "3.0G");
    CHECK(fmt_bytes(2.0 * 1024 * 1024 * 1024 * 1024, 3) == "2T");
}

TEST_CASE("top: fmt_latency_us exact outputs", "[top]") {
    CHECK(fmt_latency_us(0, 6) == "-");
    CHECK(fmt_latency_us(-3, 6) == "-");
    CHECK(fmt_latency_us(0, 0).empty());
    CHECK(fmt_latency_us(12.3, 5) == "12us");
    CHECK(fmt_latency_us(999, 5) == "999us");
    CHECK(fmt_latency_us(999, 4) == "####");
    CHECK(fmt_latency_us(1000, 5) == "1.0ms");
    CHECK(fmt_latency_us(1500, 6) == "1.5ms");
    CHECK(fmt_latency_us(12345, 6) == "12.3ms");
    CHECK(fmt_latency_us(12345, 5) == "#####");
    CHECK(fmt_latency_us(1e6, 6) == "1.0s");
    CHECK(fmt_latency_us(2.5e6, 4) == "2.5s");
    CHECK(fmt_latency_us(17e6, 5) == "17.0s");
}

TEST_CASE("top: formatted numbers never exceed the width (0 .. 1e18, widths 3..10)", "[top]") {
    const auto values = sample_values();
    std::vector<std::string> too_wide;
    std::size_t checked = 0;
    for (int w = 3; w <= 10; ++w)
        for (double v : values) {
            const std::string outs[] = {fmt_count(v, w), fmt_bytes(v, w), fmt_latency_us(v, w)};
            for (const auto& s : outs) {
                ++checked;
                if (s.empty() || static_cast<int>(s.size()) > w)
                    too_wide.push_back(std::to_string(v) + " w=" + std::to_string(w) + " -> \"" + s + "\"");
            }
        }
    INFO(checked << " formatted; first bad: " << (too_wide.empty() ? "" : too_wide.front()));
    CHECK(too_wide.empty());
}

TEST_CASE("top: fmt_count and fmt_bytes read back within 5% from width 4 on", "[top]") {
    // Width >= 4 always leaves room for two significant digits plus a unit,
    // so what is shown is the value (integers within 0.5) -- until even the
    // largest unit does not fit, where the column shows hashes.
    const auto values = sample_values();
    std::vector<std::string> bad;
    for (int w = 4; w <= 10; ++w)
        for (double v : values) {
            for (bool bytes : {false, true}) {
                std::string s = bytes ? fmt_bytes(v, w) : fmt_count(v, w);
                double top = bytes ? std::pow(1024.0, 4) : 1e12;  // the T unit
                if (all_hashes(s)) {
                    // only when even "<n>T" is too wide
                    if (v < top * std::pow(10.0, w - 2))
                        bad.push_back("hashes: " + std::to_string(v) + " w=" + std::to_string(w));
                    continue;
                }
                double back = read_back(s, bytes ? 1024 : 1000, bytes ? "KMGT" : "kMGT");
                if (std::fabs(back - v) > std::max(0.5, 0.05 * v))
                    bad.push_back(std::to_string(v) + " w=" + std::to_string(w) + " -> \"" + s + "\"");
            }
        }
    INFO("first bad: " << (bad.empty() ? "" : bad.front()) << " (" << bad.size() << " in all)");
    CHECK(bad.empty());
}

TEST_CASE("top: fmt_count at width 3 never shows a value of 100k as 0", "[top]") {
    // regression: at width 3, 100000..499999 scale to "0.1M".."0.5M" (4 wide), then to
    // "%.0f" of the mantissa: "0M". A busy key then reads as idle; the same
    // happens at every unit (e.g. 4e11 -> "0T"). Hashes would be honest.
    CHECK(fmt_count(400000, 3) != "0M");
    CHECK(fmt_count(4e11, 3) != "0T");
    CHECK(fmt_bytes(400 * 1024.0, 3) != "0M");
    std::vector<std::string> zero;
    for (double v : sample_values()) {
        if (v < 1) continue;
        for (const std::string& s : {fmt_count(v, 3), fmt_bytes(v, 3)})
            if (!all_hashes(s) && std::stod(s) == 0) zero.push_back(std::to_string(v) + " -> " + s);
    }
    INFO("first: " << (zero.empty() ? "" : zero.front()) << " (" << zero.size() << " in all)");
    CHECK(zero.empty());
}

TEST_CASE("top: fmt_latency_us switches unit where rounding reaches 1000", "[top]") {
    // regression: the unit is chosen before rounding: 999.6 us prints "%.0fus" ->
    // "1000us" (6 wide, so "#####" in a 5-wide column) while 999 -> "999us"
    // and 1000 -> "1.0ms" both fit. Same at 999.96 ms -> "1000.0ms".
    CHECK(fmt_latency_us(999.6, 5) == "1.0ms");
    CHECK(fmt_latency_us(999960, 6) == "1.0s");
}

TEST_CASE("top: formats with no room at all are empty, never wider", "[top]") {
    // regression: header says "at most `width` characters", but scaled() falls back
    // to max(width, 1) hashes, and fmt_latency_us builds std::string(width, '#')
    // from a negative width (size_t wrap -> std::length_error).
    CHECK(fmt_count(5, 0).empty());
    CHECK(fmt_bytes(5, 0).empty());
    CHECK(fmt_count(5, -1).empty());
    CHECK(fmt_latency_us(5, 0).empty());
    CHECK_NOTHROW(fmt_latency_us(5, -1));
}

// ---------------------------------------------------------------- sparkline

TEST_CASE("top: sparkline levels, UTF-8 and ASCII", "[top]") {
    const std::vector<double> ramp = {0, 1, 2, 3, 4, 5, 6, 7};
    CHECK(sparkline(ramp, 8, false) == "_.-=+*#@");
    CHECK(sparkline(ramp, 8, true) == "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588");
    // scaled to the largest value
    CHECK(sparkline({0, 10, 20, 30, 40, 50, 60, 70}, 8, false) == "_.-=+*#@");
    CHECK(sparkline({1, 2, 3}, 3, false) == "-*@");  // 7/3 -> 2, 14/3 -> 5, 7
    // all zero (or nothing yet): the lowest level, not a division by zero
    CHECK(sparkline({0, 0, 0}, 3, false) == "___");
    CHECK(sparkline({0, 0, 0}, 3, true) == "\u2581\u2581\u2581");
    // fewer values than cells: right-aligned, padded with spaces
    CHECK(sparkline({1, 2, 3}, 5, false) == "  -*@");
    CHECK(sparkline({5}, 4, true) == "   \u2588");
    CHECK(sparkline({}, 4, false) == "    ");
    CHECK(sparkline({}, 4, true) == "    ");
    // no room
    CHECK(sparkline({1, 2, 3}, 0, true).empty());
    CHECK(sparkline({1, 2, 3}, -2, false).empty());
}

TEST_CASE("top: sparkline averages more values than cells", "[top]") {
    // 8 values into 4 cells: pairs -> 0, 2, 4, 8 -> levels 0, 2 (1.75), 4 (3.5), 7
    CHECK(sparkline({0, 0, 2, 2, 4, 4, 8, 8}, 4, false) == "_-+@");
    // 5 values into 3 cells: [3] [0 6] [1 1] -> 3, 3, 1
    CHECK(sparkline({3, 0, 6, 1, 1}, 3, false) == "@@-");
    // a minute of 1 s samples in 20 cells, one spike: one cell high, the rest low
    std::vector<double> minute(60, 1);
    minute[59] = 100;
    std::string s = sparkline(minute, 20, false);
    CHECK(s.size() == 20);
    CHECK(s.back() == '@');
    CHECK(s.substr(0, 19) == std::string(19, '_'));
}

TEST_CASE("top: sparkline is always exactly `width` cells", "[top]") {
    std::mt19937 rng(99);
    std::vector<std::string> bad;
    for (int w = 1; w <= 30; ++w)
        for (std::size_t n = 0; n <= 100; n += 7) {
            std::vector<double> v(n);
            for (auto& x : v) x = static_cast<double>(rng() % 1000);
            std::string a = sparkline(v, w, false), u = sparkline(v, w, true);
            if (static_cast<int>(a.size()) != w || static_cast<int>(cells(u)) != w)
                bad.push_back("w=" + std::to_string(w) + " n=" + std::to_string(n));
        }
    INFO("first bad: " << (bad.empty() ? "" : bad.front()));
    CHECK(bad.empty());
}

// ---------------------------------------------------------------- trends

TEST_CASE("top: a row's trend is its ops/s per snapshot, oldest first, over 60 s", "[top]") {
    TopModel m;
    for (int i = 0; i < 100; ++i)
        m.update(snap(kT0 + i, 1, {key(kA, "k", static_cast<std::uint64_t>(i), 1)}));
    REQUIRE(m.rows().size() == 1);
    const auto& t = m.rows()[0].trend;
    // samples at kT0+39 .. kT0+99: nothing older than 60 s (exactly 60 s is kept)
    REQUIRE(t.size() == 61);
    CHECK(t.front() == 39 + 1);
    CHECK(t.back() == 99 + 1);
    for (std::size_t i = 1; i < t.size(); ++i) CHECK(t[i] == t[i - 1] + 1);
}

TEST_CASE("top: trend samples are dropped by age, not by count", "[top]") {
    TopModel m;
    auto at = [&](double dt, std::uint64_t reads, double interval = 1) {
        m.update(snap(kT0 + dt, interval, {key(kA, "k", reads)}));
        return m.rows()[0].trend;
    };
    CHECK(at(0, 10) == std::vector<double>{10});
    CHECK(at(30, 60, 2) == std::vector<double>{10, 30});  // ops per second, not counts
    CHECK(at(60, 5) == std::vector<double>{10, 30, 5});   // exactly 60 s old: kept
    CHECK(at(60.5, 7) == std::vector<double>{30, 5, 7});  // 60.5 s old: gone
    CHECK(at(200, 1) == std::vector<double>{1});          // a long pause forgets all
}

TEST_CASE("top: keys gone for 60 s lose their trend; shorter absences keep it", "[top]") {
    TopModel m;
    m.update(snap(kT0, 1, {key(kA, "k", 3), key(kA, "other", 1)}));
    m.update(snap(kT0 + 30, 1, {key(kA, "other", 1)}));  // k absent
    CHECK(m.rows().size() == 1);
    m.update(snap(kT0 + 50, 1, {key(kA, "k", 4), key(kA, "other", 1)}));
    for (const auto& r : m.rows())
        if (r.key == "k") CHECK(r.trend == std::vector<double>{3, 4});

    m.update(snap(kT0 + 111, 1, {key(kA, "other", 1)}));  // last k sample 61 s old
    m.update(snap(kT0 + 112, 1, {key(kA, "k", 9), key(kA, "other", 1)}));
    for (const auto& r : m.rows())
        if (r.key == "k") CHECK(r.trend == std::vector<double>{9});
}

TEST_CASE("top: trends are per server and key, and kept while filtered out", "[top]") {
    TopModel m;
    for (int i = 0; i < 3; ++i)
        m.update(snap(kT0 + i, 1, {key(kA, "k", 1 + static_cast<std::uint64_t>(i)), key(kB, "k", 10)}));
    m.set_filter("zzz");
    m.update(snap(kT0 + 3, 1, {key(kA, "k", 4), key(kB, "k", 10)}));
    m.set_filter("");
    m.sort_by(Column::server);
    REQUIRE(ids(m) == Ids{"k@A", "k@B"});
    CHECK(m.rows()[0].trend == std::vector<double>{1, 2, 3, 4});
    CHECK(m.rows()[1].trend == std::vector<double>{10, 10, 10, 10});
}

TEST_CASE("top: rows that show the same key (redaction, truncation) are merged into one", "[top]") {
    // With --redact prefix every "user:<id>" shows as "user:*", and keys
    // truncated at the same bytes also collide: the screen cannot tell them
    // apart, so they are one row with the sum of their operations and one trend.
    TopModel m;
    for (int i = 0; i < 3; ++i) m.update(snap(kT0 + i, 1, {key(kA, "user:*", 100), key(kA, "user:*", 1)}));
    REQUIRE(m.rows().size() == 1);
    CHECK(m.rows()[0].ops == 101);
    CHECK(m.rows()[0].trend == std::vector<double>{101, 101, 101});
}

TEST_CASE("top: history gets a line when a key hotspot starts and when its severity changes", "[top]") {
    TopModel m;
    auto with = [&](double dt, std::vector<HotspotSnapshot> h) {
        m.update(snap(kT0 + dt, 1, {key(kA, "k", 5), key(kB, "k", 5)}, std::move(h)));
    };
    with(0, {});
    CHECK(m.history(kA, "k").empty());

    with(1, {hot(kA, "k", "high")});
    auto h = m.history(kA, "k");
    REQUIRE(h.size() == 1);
    CHECK(h[0] == clock_of(kT0 + 1) + " read high: read high on k");
    CHECK(h[0].size() > 9);
    CHECK(h[0][2] == ':');
    CHECK(h[0][5] == ':');

    with(2, {hot(kA, "k", "high")});  // unchanged: no line
    with(3, {hot(kA, "k", "high")});
    CHECK(m.history(kA, "k").size() == 1);

    with(4, {hot(kA, "k", "critical")});  // escalates
    with(5, {hot(kA, "k", "critical")});
    with(6, {hot(kA, "k", "medium")});  // calms down: a change too
    h = m.history(kA, "k");
    REQUIRE(h.size() == 3);
    CHECK(starts_with(h[1], clock_of(kT0 + 4) + " read critical"));
    CHECK(starts_with(h[2], clock_of(kT0 + 6) + " read medium"));  // newest last

    // another kind on the same key is its own hotspot
    with(7, {hot(kA, "k", "medium"), hot(kA, "k", "medium", "write")});
    h = m.history(kA, "k");
    REQUIRE(h.size() == 4);
    CHECK(starts_with(h[3], clock_of(kT0 + 7) + " write medium"));

    // other server, other entity kinds, other keys: not in this key's history
    with(8, {hot(kA, "k", "medium"), hot(kA, "k", "medium", "write"), hot(kB, "k", "low"),
             hot(kA, "k", "high", "read", "prefix"), hot(kA, "k", "high", "read", "server"),
             hot(kA, "k2", "high")});
    CHECK(m.history(kA, "k").size() == 4);
    CHECK(m.history(kB, "k").size() == 1);
    CHECK(m.history(kA, "k2").size() == 1);  // even for a key with no row
    CHECK(m.history(kA, "nope").empty());
    CHECK(m.history("", "").empty());
}

TEST_CASE("top: history keeps the newest 50 lines", "[top]") {
    TopModel m;
    const char* sev[] = {"low", "high"};
    for (int i = 0; i < 70; ++i) {
        HotspotSnapshot h = hot(kA, "k", sev[i % 2]);
        h.detail = "n" + std::to_string(i);
        m.update(snap(kT0 + i, 1, {key(kA, "k", 1)}, {h}));
    }
    auto h = m.history(kA, "k");
    REQUIRE(h.size() == 50);
    CHECK(h.front().find(": n20") != std::string::npos);
    CHECK(h.back().find(": n69") != std::string::npos);
}

TEST_CASE("top: a hotspot that ends and starts again gets a new history line", "[top]") {
    // regression: update() remembers the last severity of every hotspot identity
    // forever (last_state_ is never pruned), so a hotspot that ends and later
    // starts again at the same severity is not a "start" any more: no line.
    // (last_state_ also grows without bound.)
    TopModel m;
    m.update(snap(kT0, 1, {key(kA, "k", 5)}, {hot(kA, "k", "high")}));
    m.update(snap(kT0 + 1, 1, {key(kA, "k", 5)}, {}));                        // ended
    m.update(snap(kT0 + 100, 1, {key(kA, "k", 5)}, {hot(kA, "k", "high")}));  // a new one
    auto h = m.history(kA, "k");
    CHECK(h.size() == 2);
}

// ---------------------------------------------------------------- summary

namespace {

ServerSnapshot server(const std::string& name, std::uint64_t requests, std::uint64_t errors,
                      std::uint64_t unattributed, double p99) {
    ServerSnapshot s;
    s.server = name;
    s.proto = "redis";
    s.interval.requests = requests;
    s.interval.errors = errors;
    s.interval.unattributed = unattributed;
    s.total.requests = requests * 10;  // cumulative: not in the header's rates
    s.total.errors = errors * 10;
    s.p99_us = p99;
    return s;
}

ProgramCost prog(const std::string& name, std::uint64_t ns, std::uint64_t count = 0) {
    return ProgramCost{name, ns, count};
}

}  // namespace

TEST_CASE("top: summary rates, p99, errors, hotspots and map fill", "[top]") {
    Snapshot s =
        snap(kT0, 2, {key(kA, "a", 100, 20), key(kB, "b", 60, 10)},
             {hot(kA, "a", "low"), hot(kA, "a", "low", "write"), hot(kA, "user:", "medium", "read", "prefix"),
              hot(kB, "b", "critical"), hot(kB, "", "critical", "error", "server"),
              hot(kA, "12", "critical", "read", "slot"), hot(kA, "x", "bogus")});
    s.servers = {server(kA, 300, 3, 7, 120), server(kB, 100, 1, 2, 450.5)};
    s.health.key_map_capacity = 1000;
    s.health.key_map_used = 250;
    s.health.cpu_percent = 3.5;
    TopModel m;
    m.update(s);
    TopSummary sum = m.summary(kT0 + 1.5);
    CHECK(sum.targets == std::vector<std::string>{kA, kB});
    CHECK(sum.ops == 400 / 2.0);    // server requests of the interval, per second
    CHECK(sum.reads == 160 / 2.0);  // from the key rows
    CHECK(sum.writes == 30 / 2.0);
    CHECK(sum.p99_us == 450.5);  // the worst server
    CHECK(sum.error_pct == 100.0 * 4 / 400);
    CHECK(sum.hotspots[0] == 2);  // low
    CHECK(sum.hotspots[1] == 1);  // medium
    CHECK(sum.hotspots[2] == 0);  // high
    CHECK(sum.hotspots[3] == 3);  // critical, every entity kind counts
    CHECK(sum.map_fill == 0.25);
    CHECK(sum.cpu_percent == 3.5);
    CHECK(sum.unattributed == 9);
    CHECK(sum.age_s == 1.5);
    CHECK(sum.bpf_ns_per_request == -1);  // one snapshot: no delta yet

    // the summary is about the data, not the view: the filter does not change it
    m.set_filter("a");
    TopSummary filtered = m.summary(kT0 + 1.5);
    CHECK(filtered.reads == sum.reads);
    CHECK(filtered.ops == sum.ops);
}

TEST_CASE("top: summary guards zero capacity, zero requests and zero interval", "[top]") {
    Snapshot s = snap(kT0, 0, {key(kA, "a", 10, 10)});
    s.servers = {server(kA, 0, 5, 0, 0)};
    s.health.key_map_used = 10;  // capacity 0
    TopModel m;
    m.update(s);
    TopSummary sum = m.summary(kT0);
    CHECK(sum.ops == 0);
    CHECK(sum.reads == 0);
    CHECK(sum.writes == 0);
    CHECK(sum.error_pct == 0);
    CHECK(sum.map_fill == 0);
    CHECK(sum.age_s == 0);
}

TEST_CASE("top: BPF ns per request from program run time deltas between snapshots", "[top]") {
    TopModel m;
    Snapshot s = snap(kT0, 1, {});
    s.servers = {server(kA, 300, 0, 0, 0), server(kB, 100, 0, 0, 0)};
    s.health.programs = {prog("on_read", 1000), prog("on_write", 2000)};
    m.update(s);
    CHECK(m.summary(kT0).bpf_ns_per_request == -1);  // first: cumulative totals, no delta

    s.ts += 1;
    s.health.programs = {prog("on_read", 1500), prog("on_write", 3500)};
    m.update(s);
    CHECK(m.summary(s.ts).bpf_ns_per_request == 2000.0 / 400);

    s.ts += 1;  // no BPF time spent (e.g. kernel bpf_stats turned off): unknown
    m.update(s);
    CHECK(m.summary(s.ts).bpf_ns_per_request == -1);

    s.ts += 1;  // a new program only sets its baseline; a reset counter is skipped
    s.health.programs = {prog("on_read", 100), prog("on_write", 3600), prog("tc_ingress", 1000000)};
    m.update(s);
    CHECK(m.summary(s.ts).bpf_ns_per_request == 100.0 / 400);

    s.ts += 1;
    s.health.programs = {prog("on_read", 500), prog("on_write", 3600), prog("tc_ingress", 1000400)};
    m.update(s);
    CHECK(m.summary(s.ts).bpf_ns_per_request == 800.0 / 400);

    s.ts += 1;  // time spent but no requests: unknown, not infinite
    s.servers = {server(kA, 0, 0, 0, 0)};
    s.health.programs = {prog("on_read", 900), prog("on_write", 3600), prog("tc_ingress", 1000400)};
    m.update(s);
    CHECK(m.summary(s.ts).bpf_ns_per_request == -1);

    s.ts += 1;  // no programs reported
    s.servers = {server(kA, 100, 0, 0, 0)};
    s.health.programs.clear();
    m.update(s);
    CHECK(m.summary(s.ts).bpf_ns_per_request == -1);
}

// ---------------------------------------------------------------- snapshot JSON

namespace {

LatencyHistogram histogram(std::uint64_t seed) {
    LatencyHistogram h{};
    for (std::size_t i = 0; i < h.size(); ++i) h[i] = seed * 1000 + i + 1;
    h.back() = std::numeric_limits<std::uint64_t>::max() - seed;  // beyond double precision
    return h;
}

Totals totals(std::uint64_t b) {
    Totals t;
    t.requests = b + 1;
    t.key_ops = b + 2;
    t.keyless = b + 3;
    t.unknown_cmds = b + 4;
    t.replies = b + 5;
    t.errors = b + 6;
    t.redirects = b + 7;
    t.unattributed = b + 8;
    t.reply_unmatched = b + 9;
    t.parse_errors = b + 10;
    t.seq_retrans = b + 11;
    t.seq_gaps = b + 12;
    t.flow_full = b + 13;
    t.truncated_windows = b + 14;
    t.bytes_in = b + 15;
    t.bytes_out = (1ULL << 53) + 1 + b;  // not representable as a double
    t.key_map_full = true;
    return t;
}

/// Every field set, none to its default.
Snapshot full_snapshot() {
    Snapshot s;
    s.ts = 1700000000.123456;
    s.interval_s = 0.1;
    for (int i = 0; i < 2; ++i) {
        ServerSnapshot srv;
        srv.server = i ? "[::1]:7000" : "10.0.0.1:6379";
        srv.proto = i ? "memcached" : "redis";
        srv.interval = totals(100 * static_cast<std::uint64_t>(i));
        srv.total = totals(1000000 + static_cast<std::uint64_t>(i));
        srv.lat_total = histogram(7 + static_cast<std::uint64_t>(i));
        srv.p99_us = 123.456789e-3 + i;
        s.servers.push_back(srv);
    }
    const std::string names[] = {"bin\\x00key", std::string("raw\0nul\x7f", 8),
                                 "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87", "quote\"back\\slash\ttab"};
    std::uint64_t n = 1;
    for (const auto& name : names) {
        KeySnapshot k;
        k.server = "10.0.0.1:6379";
        k.proto = "redis";
        k.key = name;
        k.truncated = true;
        k.reads = n++;
        k.writes = n++;
        k.errors = n++;
        k.redirects = n++;
        k.bytes_in = n++;
        k.bytes_out = std::numeric_limits<std::uint64_t>::max() - n++;
        k.max_value_bytes = n++;
        k.p50_us = 0.5 * static_cast<double>(n);
        k.p99_us = 1e300 / static_cast<double>(n);
        k.lat = histogram(n);
        s.keys.push_back(k);
    }
    for (int i = 0; i < 2; ++i) {
        keyscope::EntityRow e;
        e.server = "10.0.0.1:6379";
        e.name = i ? "user:" : "session:";
        e.reads = 11 + static_cast<std::uint64_t>(i);
        e.writes = 12;
        e.errors = 13;
        e.bytes_out = 14;
        e.max_value_bytes = 15;
        e.p99_us = 16.25;
        s.prefixes.push_back(e);
        e.name = std::to_string(16383 - i);
        e.reads = 21;
        e.p99_us = 26.5;
        s.slots.push_back(e);
    }
    HotspotSnapshot h;
    h.entity = "key";
    h.name = "bin\\x00key";
    h.server = "10.0.0.1:6379";
    h.kind = "latency";
    h.severity = "critical";
    h.rule = "relative";
    h.detail = "5012 reads in 60s (12.3x baseline)";
    h.value = 5012.5;
    h.threshold = 1000.25;
    h.baseline = -0.125;
    h.since = 1699999999.75;
    h.recommended_actions = {"throttle", "cache locally", ""};
    s.hotspots.push_back(h);
    h.entity = "prefix";
    h.recommended_actions.clear();
    s.hotspots.push_back(h);
    s.health.probes_attached = true;
    s.health.started = 1699990000.5;
    s.health.last_collection = 1700000000.25;
    s.health.interval_s = 1.5;
    s.health.key_map_capacity = 65536;
    s.health.key_map_used = 65535;
    s.health.cpu_percent = 2.75;
    s.health.programs = {ProgramCost{"ks_read", std::numeric_limits<std::uint64_t>::max(), 12345},
                         ProgramCost{"ks_write", 1, 2}};
    return s;
}

void check_same(const Totals& a, const Totals& b) {
    CHECK(a.requests == b.requests);
    CHECK(a.key_ops == b.key_ops);
    CHECK(a.keyless == b.keyless);
    CHECK(a.unknown_cmds == b.unknown_cmds);
    CHECK(a.replies == b.replies);
    CHECK(a.errors == b.errors);
    CHECK(a.redirects == b.redirects);
    CHECK(a.unattributed == b.unattributed);
    CHECK(a.reply_unmatched == b.reply_unmatched);
    CHECK(a.parse_errors == b.parse_errors);
    CHECK(a.seq_retrans == b.seq_retrans);
    CHECK(a.seq_gaps == b.seq_gaps);
    CHECK(a.flow_full == b.flow_full);
    CHECK(a.truncated_windows == b.truncated_windows);
    CHECK(a.bytes_in == b.bytes_in);
    CHECK(a.bytes_out == b.bytes_out);
    CHECK(a.key_map_full == b.key_map_full);
}

void check_same(const keyscope::EntityRow& a, const keyscope::EntityRow& b) {
    CHECK(a.server == b.server);
    CHECK(a.name == b.name);
    CHECK(a.reads == b.reads);
    CHECK(a.writes == b.writes);
    CHECK(a.errors == b.errors);
    CHECK(a.bytes_out == b.bytes_out);
    CHECK(a.max_value_bytes == b.max_value_bytes);
    CHECK(a.p99_us == b.p99_us);
}

void check_same(const Snapshot& a, const Snapshot& b) {
    CHECK(a.ts == b.ts);
    CHECK(a.interval_s == b.interval_s);
    REQUIRE(a.servers.size() == b.servers.size());
    for (std::size_t i = 0; i < a.servers.size(); ++i) {
        INFO("server " << i);
        CHECK(a.servers[i].server == b.servers[i].server);
        CHECK(a.servers[i].proto == b.servers[i].proto);
        check_same(a.servers[i].interval, b.servers[i].interval);
        check_same(a.servers[i].total, b.servers[i].total);
        CHECK(a.servers[i].lat_total == b.servers[i].lat_total);
        CHECK(a.servers[i].p99_us == b.servers[i].p99_us);
    }
    REQUIRE(a.keys.size() == b.keys.size());
    for (std::size_t i = 0; i < a.keys.size(); ++i) {
        INFO("key " << i);
        const auto &x = a.keys[i], &y = b.keys[i];
        CHECK(x.server == y.server);
        CHECK(x.proto == y.proto);
        CHECK(x.key == y.key);
        CHECK(x.truncated == y.truncated);
        CHECK(x.reads == y.reads);
        CHECK(x.writes == y.writes);
        CHECK(x.errors == y.errors);
        CHECK(x.redirects == y.redirects);
        CHECK(x.bytes_in == y.bytes_in);
        CHECK(x.bytes_out == y.bytes_out);
        CHECK(x.max_value_bytes == y.max_value_bytes);
        CHECK(x.p50_us == y.p50_us);
        CHECK(x.p99_us == y.p99_us);
        CHECK(x.lat == y.lat);
    }
    REQUIRE(a.prefixes.size() == b.prefixes.size());
    for (std::size_t i = 0; i < a.prefixes.size(); ++i) check_same(a.prefixes[i], b.prefixes[i]);
    REQUIRE(a.slots.size() == b.slots.size());
    for (std::size_t i = 0; i < a.slots.size(); ++i) check_same(a.slots[i], b.slots[i]);
    REQUIRE(a.hotspots.size() == b.hotspots.size());
    for (std::size_t i = 0; i < a.hotspots.size(); ++i) {
        INFO("hotspot " << i);
        const auto &x = a.hotspots[i], &y = b.hotspots[i];
        CHECK(x.entity == y.entity);
        CHECK(x.name == y.name);
        CHECK(x.server == y.server);
        CHECK(x.kind == y.kind);
        CHECK(x.severity == y.severity);
        CHECK(x.rule == y.rule);
        CHECK(x.detail == y.detail);
        CHECK(x.value == y.value);
        CHECK(x.threshold == y.threshold);
        CHECK(x.baseline == y.baseline);
        CHECK(x.since == y.since);
        CHECK(x.recommended_actions == y.recommended_actions);
    }
    CHECK(a.health.probes_attached == b.health.probes_attached);
    CHECK(a.health.started == b.health.started);
    CHECK(a.health.last_collection == b.health.last_collection);
    CHECK(a.health.interval_s == b.health.interval_s);
    CHECK(a.health.key_map_capacity == b.health.key_map_capacity);
    CHECK(a.health.key_map_used == b.health.key_map_used);
    CHECK(a.health.cpu_percent == b.health.cpu_percent);
    REQUIRE(a.health.programs.size() == b.health.programs.size());
    for (std::size_t i = 0; i < a.health.programs.size(); ++i) {
        CHECK(a.health.programs[i].name == b.health.programs[i].name);
        CHECK(a.health.programs[i].run_time_ns == b.health.programs[i].run_time_ns);
        CHECK(a.health.programs[i].run_count == b.health.programs[i].run_count);
    }
}

}  // namespace

TEST_CASE("top: snapshot JSON round trip keeps every field", "[top]") {
    const Snapshot in = full_snapshot();
    // the fixture really is non-default everywhere it matters
    REQUIRE(in.keys.size() == 4);
    REQUIRE(in.keys[1].key.size() == 8);

    SECTION("as a JSON value") {
        check_same(in, keyscope::snapshot_from_json(keyscope::snapshot_to_json(in)));
    }
    SECTION("through text, as top --connect reads /api/snapshot") {
        std::string text = keyscope::snapshot_to_json(in).dump();
        check_same(in, keyscope::snapshot_from_json(nlohmann::json::parse(text)));
    }
    SECTION("the model renders the same from either copy") {
        TopModel direct, remote;
        direct.update(in);
        remote.update(
            keyscope::snapshot_from_json(nlohmann::json::parse(keyscope::snapshot_to_json(in).dump())));
        CHECK(ids(direct) == ids(remote));
        TopSummary a = direct.summary(kT0), b = remote.summary(kT0);
        CHECK(a.ops == b.ops);
        CHECK(a.p99_us == b.p99_us);
        CHECK(a.map_fill == b.map_fill);
    }
}

TEST_CASE("top: snapshot JSON uses the documented field names", "[top]") {
    nlohmann::json j = keyscope::snapshot_to_json(full_snapshot());
    for (const char* f : {"ts", "interval_s", "servers", "keys", "prefixes", "slots", "hotspots", "health"})
        CHECK(j.contains(f));
    CHECK(j["keys"][0]["key"] == "bin\\x00key");
    CHECK(j["keys"][0]["reads"] == 1);
    CHECK(j["servers"][0]["interval"]["requests"] == 1);
    CHECK(j["servers"][0]["lat_total"].size() == full_snapshot().servers[0].lat_total.size());
    CHECK(j["health"]["programs"][0]["run_time_ns"] == std::numeric_limits<std::uint64_t>::max());
    CHECK(j["hotspots"][0]["recommended_actions"].size() == 3);
}

TEST_CASE("top: snapshot JSON with missing fields keeps defaults", "[top]") {
    Snapshot s = keyscope::snapshot_from_json(nlohmann::json::object());
    CHECK(s.ts == 0);
    CHECK(s.keys.empty());
    CHECK(s.health.programs.empty());
    s = keyscope::snapshot_from_json(
        nlohmann::json::parse(R"({"ts": 5, "keys": [{"key": "k", "reads": 3}], "health": {}})"));
    CHECK(s.ts == 5);
    REQUIRE(s.keys.size() == 1);
    CHECK(s.keys[0].key == "k");
    CHECK(s.keys[0].reads == 3);
    CHECK(s.keys[0].writes == 0);
    CHECK(s.keys[0].server.empty());
    CHECK(s.keys[0].lat == LatencyHistogram{});
    CHECK_FALSE(s.health.probes_attached);
}

TEST_CASE("top: malformed snapshot JSON throws keyscope::Error", "[top]") {
    const char* docs[] = {
        R"(null)",
        R"([])",
        R"(42)",
        R"("snapshot")",
        R"({"ts": "yesterday"})",
        R"({"ts": null})",
        R"({"interval_s": [1]})",
        R"({"servers": {}})",
        R"({"servers": [1, 2]})",
        R"({"servers": [{"interval": []}]})",
        R"({"servers": [{"interval": {"requests": "many"}}]})",
        R"({"servers": [{"interval": {"key_map_full": 1}}]})",
        R"({"servers": [{"lat_total": [1, 2, 3]}]})",
        R"({"servers": [{"lat_total": "none"}]})",
        R"({"servers": [{"server": 6379}]})",
        R"({"keys": "k"})",
        R"({"keys": [{"key": 42}]})",
        R"({"keys": [{"reads": "many"}]})",
        R"({"keys": [{"truncated": "yes"}]})",
        R"({"keys": [{"truncated": 1}]})",
        R"({"keys": [{"p99_us": {}}]})",
        R"({"keys": [{"lat": {}}]})",
        R"({"prefixes": [{"name": []}]})",
        R"({"slots": [{"reads": "x"}]})",
        R"({"hotspots": [{"recommended_actions": "throttle"}]})",
        R"({"hotspots": [{"recommended_actions": [1]}]})",
        R"({"hotspots": [{"since": "now"}]})",
        R"({"health": []})",
        R"({"health": {"probes_attached": "yes"}})",
        R"({"health": {"programs": {"name": "x"}}})",
        R"({"health": {"programs": [{"run_time_ns": "fast"}]}})",
    };
    for (const char* doc : docs) {
        INFO(doc);
        std::string msg = error_of([&] { keyscope::snapshot_from_json(nlohmann::json::parse(doc)); });
        CHECK(starts_with(msg, "bad snapshot from the daemon: "));
        CHECK(msg.find('\n') == std::string::npos);  // one line
    }
}
