// Host tests of userspace/output/metrics.{hpp,cpp}: the Prometheus body is
// checked by a strict parser of the text exposition format 0.0.4 (below),
// then for exact values; health verdicts and JSON shapes by hand-made
// snapshots. No server, no clock, no network.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "output/metrics.hpp"

extern "C" {
#include "hist.h"
}

using keyscope::health;
using keyscope::hotspots_json;
using keyscope::keys_json;
using keyscope::render_prometheus;
using keyscope::Snapshot;
using keyscope::status_json;

namespace {

// ---- a strict parser of the text exposition format ---------------------------

using Labels = std::map<std::string, std::string>;

struct Sample {
    std::string name;
    Labels labels;
    double value = 0;
};

struct Family {
    std::string type;
    std::string help;
    std::vector<Sample> samples;
};

struct Exposition {
    std::map<std::string, Family> families;
    std::vector<std::string> order;  // families in the order they appeared
};

[[noreturn]] void fail(std::size_t line_no, const std::string& line, const std::string& why) {
    throw std::runtime_error("line " + std::to_string(line_no) + ": " + why + ": " + line);
}

bool valid_metric_name(const std::string& s) {
    if (s.empty()) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

bool valid_label_name(const std::string& s) {
    if (s.empty() || s.rfind("__", 0) == 0) return false;  // "__" is reserved
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

double parse_value(const std::string& s) {
    if (s == "+Inf") return INFINITY;
    if (s == "-Inf") return -INFINITY;
    if (s == "NaN") return NAN;
    std::size_t used = 0;
    double v = std::stod(s, &used);
    if (used != s.size() || s.empty()) throw std::invalid_argument(s);
    return v;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The family a sample name belongs to, given the family being written.
bool belongs(const std::string& sample, const std::string& family, const std::string& type) {
    if (type == "histogram")
        return sample == family + "_bucket" || sample == family + "_sum" || sample == family + "_count";
    return sample == family;
}

/// Parses a whole body; throws std::runtime_error naming the first violation.
Exposition parse_exposition(const std::string& body) {
    if (body.empty() || body.back() != '\n') throw std::runtime_error("body must end in a newline");
    Exposition x;
    std::set<std::string> series;  // name + labels, to find duplicates
    std::string current;           // family whose samples may follow
    std::istringstream in(body);
    std::string line;
    std::size_t no = 0;
    while (std::getline(in, line)) {
        ++no;
        if (line.empty()) fail(no, line, "empty line");
        if (line.rfind("# HELP ", 0) == 0) {
            auto rest = line.substr(7);
            auto sp = rest.find(' ');
            std::string name = rest.substr(0, sp);
            if (!valid_metric_name(name)) fail(no, line, "bad metric name");
            if (x.families.count(name)) fail(no, line, "family described twice");
            std::string help = sp == std::string::npos ? "" : rest.substr(sp + 1);
            for (std::size_t i = 0; i < help.size(); ++i)
                if (help[i] == '\\' && (i + 1 == help.size() || (help[i + 1] != '\\' && help[i + 1] != 'n')))
                    fail(no, line, "bad escape in HELP");
                else if (help[i] == '\\')
                    ++i;
            x.families[name].help = help;
            x.order.push_back(name);
            current.clear();  // TYPE must come next
            std::getline(in, line);
            ++no;
            if (line.rfind("# TYPE " + name + " ", 0) != 0)
                fail(no, line, "HELP not followed by TYPE " + name);
            std::string type = line.substr(8 + name.size());
            if (type != "counter" && type != "gauge" && type != "histogram")
                fail(no, line, "unexpected type " + type);
            if (type == "counter" && !ends_with(name, "_total"))
                fail(no, line, "counter not ending in _total");
            if (type != "counter" && ends_with(name, "_total")) fail(no, line, "_total on a non-counter");
            x.families[name].type = type;
            current = name;
            continue;
        }
        if (line[0] == '#') fail(no, line, "unexpected comment");

        // name{label="value",...} value
        Sample s;
        std::size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
        s.name = line.substr(0, i);
        if (!valid_metric_name(s.name)) fail(no, line, "bad metric name");
        if (current.empty()) fail(no, line, "sample before HELP/TYPE");
        if (!belongs(s.name, current, x.families[current].type)) fail(no, line, "sample outside its family");
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (true) {
                if (i >= line.size()) fail(no, line, "unterminated labels");
                if (line[i] == '}') {
                    ++i;
                    break;
                }
                std::size_t eq = line.find('=', i);
                if (eq == std::string::npos) fail(no, line, "label without =");
                std::string lname = line.substr(i, eq - i);
                if (!valid_label_name(lname)) fail(no, line, "bad label name '" + lname + "'");
                if (eq + 1 >= line.size() || line[eq + 1] != '"') fail(no, line, "label value not quoted");
                std::string value;
                std::size_t j = eq + 2;
                for (;; ++j) {
                    if (j >= line.size()) fail(no, line, "unterminated label value");
                    char c = line[j];
                    if (c == '"') break;
                    if (c == '\\') {
                        if (j + 1 >= line.size()) fail(no, line, "dangling backslash");
                        char e = line[++j];
                        if (e == '\\')
                            value += '\\';
                        else if (e == '"')
                            value += '"';
                        else if (e == 'n')
                            value += '\n';
                        else
                            fail(no, line, "bad escape in label value");
                    } else {
                        value += c;
                    }
                }
                if (!s.labels.emplace(lname, value).second) fail(no, line, "label repeated");
                i = j + 1;
                if (i < line.size() && line[i] == ',')
                    ++i;
                else if (i < line.size() && line[i] != '}')
                    fail(no, line, "junk after label value");
            }
        }
        if (i >= line.size() || line[i] != ' ') fail(no, line, "no space before value");
        std::string value_text = line.substr(i + 1);
        if (value_text.find(' ') != std::string::npos) fail(no, line, "timestamps or junk after value");
        try {
            s.value = parse_value(value_text);
        } catch (const std::exception&) {
            fail(no, line, "bad value");
        }
        std::string id = s.name;
        for (const auto& [k, v] : s.labels) id += "\x1f" + k + "=" + v;
        if (!series.insert(id).second) fail(no, line, "duplicate series");
        x.families[current].samples.push_back(std::move(s));
    }

    // histograms: per series, le ascending, counts cumulative, +Inf == _count
    for (const auto& [name, fam] : x.families) {
        if (fam.type != "histogram") continue;
        std::map<Labels, std::vector<std::pair<double, double>>> buckets;
        std::map<Labels, double> counts;
        std::map<Labels, bool> sums;
        for (const auto& s : fam.samples) {
            Labels base = s.labels;
            if (s.name == name + "_bucket") {
                if (!base.count("le")) throw std::runtime_error(name + ": bucket without le");
                double le = parse_value(base["le"]);
                base.erase("le");
                buckets[base].emplace_back(le, s.value);
            } else if (s.name == name + "_count") {
                counts[base] = s.value;
            } else {
                sums[base] = true;
            }
        }
        for (const auto& [labels, bs] : buckets) {
            for (std::size_t k = 1; k < bs.size(); ++k) {
                if (!(bs[k].first > bs[k - 1].first)) throw std::runtime_error(name + ": le not increasing");
                if (bs[k].second < bs[k - 1].second)
                    throw std::runtime_error(name + ": buckets not cumulative");
            }
            if (bs.empty() || !std::isinf(bs.back().first))
                throw std::runtime_error(name + ": no +Inf bucket");
            if (!counts.count(labels) || counts[labels] != bs.back().second)
                throw std::runtime_error(name + ": +Inf bucket differs from _count");
            if (!sums.count(labels)) throw std::runtime_error(name + ": no _sum");
        }
        if (counts.size() != buckets.size()) throw std::runtime_error(name + ": _count without buckets");
    }
    return x;
}

/// The value of the one sample of `name` whose labels include `want`.
double value_of(const Exposition& x, const std::string& name, const Labels& want = {}) {
    const Sample* found = nullptr;
    for (const auto& [fname, fam] : x.families)
        for (const auto& s : fam.samples) {
            if (s.name != name) continue;
            bool match = true;
            for (const auto& [k, v] : want) {
                auto it = s.labels.find(k);
                if (it == s.labels.end() || it->second != v) match = false;
            }
            if (!match) continue;
            if (found) throw std::runtime_error("several samples of " + name + " match");
            found = &s;
        }
    if (!found) throw std::runtime_error("no sample of " + name);
    return found->value;
}

std::size_t count_samples(const Exposition& x, const std::string& name) {
    std::size_t n = 0;
    for (const auto& [fname, fam] : x.families)
        for (const auto& s : fam.samples) n += s.name == name;
    return n;
}

// ---- snapshots --------------------------------------------------------------

constexpr double kNow = 1'800'000'000.0;

// Every Totals field set to base * (1..16), so that a swapped field shows.
keyscope::Totals numbered_totals(std::uint64_t base) {
    keyscope::Totals t;
    std::uint64_t i = 0;
    for (auto* f : {&t.requests, &t.key_ops, &t.keyless, &t.unknown_cmds, &t.replies, &t.errors, &t.redirects,
                    &t.unattributed, &t.reply_unmatched, &t.parse_errors, &t.seq_retrans, &t.seq_gaps,
                    &t.flow_full, &t.truncated_windows, &t.bytes_in, &t.bytes_out})
        *f = base * ++i;
    return t;
}

/// A healthy daemon two intervals into a run, with two servers, keys and a hotspot.
Snapshot sample_snapshot() {
    Snapshot s;
    s.ts = kNow - 1;
    s.interval_s = 2;
    s.health.probes_attached = true;
    s.health.started = kNow - 100;
    s.health.last_collection = kNow - 1;
    s.health.interval_s = 2;
    s.health.key_map_capacity = 16384;
    s.health.key_map_used = 1234;
    s.health.programs = {{"ks_tc_ingress", 2'500'000'000, 1000}, {"ks_tc_egress", 500, 7}};

    keyscope::ServerSnapshot a;
    a.server = "127.0.0.1:6379";
    a.proto = "redis";
    a.total = numbered_totals(10);
    a.interval = numbered_totals(1);
    a.p99_us = 150;
    a.lat_total[0] = 1;                       // < 1.024 us
    a.lat_total[ks_lat_bucket(50'000)] = 10;  // 50 us: in (32.768, 65.536] us
    a.lat_total[KS_LAT_BUCKETS - 1] = 2;      // beyond 15 s: only in +Inf
    keyscope::ServerSnapshot b;
    b.server = "[::1]:6380";
    b.proto = "redis";
    b.total = numbered_totals(100);
    s.servers = {a, b};

    keyscope::KeySnapshot k1;
    k1.server = a.server;
    k1.proto = "redis";
    k1.key = "user:42";
    k1.reads = 100;
    k1.writes = 4;
    k1.errors = 2;
    k1.max_value_bytes = 512;
    k1.p50_us = 53.25;
    k1.p99_us = 245.76;
    keyscope::KeySnapshot k2 = k1;
    k2.key = "cart:7";
    k2.reads = 0;
    k2.writes = 30;
    k2.errors = 0;
    s.keys = {k1, k2};

    keyscope::HotspotSnapshot h;
    h.entity = "key";
    h.name = "user:42";
    h.server = a.server;
    h.kind = "read";
    h.severity = "high";
    h.rule = "absolute";
    h.detail = "50 reads/s";
    h.value = 50;
    h.threshold = 10;
    h.baseline = 2;
    h.since = kNow - 30;
    h.recommended_actions = {"cache it client-side", "replicate it"};
    s.hotspots = {h};
    return s;
}

}  // namespace

TEST_CASE("the strict parser rejects what Prometheus would", "[metrics]") {
    auto bad = [](const std::string& body) {
        try {
            parse_exposition(body);
        } catch (const std::runtime_error&) {
            return true;
        }
        return false;
    };
    std::string head = "# HELP m_total h\n# TYPE m_total counter\n";
    CHECK_FALSE(bad(head + "m_total{a=\"x\\\\y\\\"z\\n\"} 1\n"));
    CHECK(bad("m_total 1\n"));                               // no HELP/TYPE
    CHECK(bad(head + "m_total{a=\"x\\q\"} 1\n"));            // bad escape
    CHECK(bad(head + "m_total{a=\"x\"\"} 1\n"));             // stray quote
    CHECK(bad(head + "m_total{1a=\"x\"} 1\n"));              // bad label name
    CHECK(bad(head + "m_total 1\nm_total 2\n"));             // duplicate
    CHECK(bad(head + "other 1\n"));                          // outside family
    CHECK(bad("# HELP g_total h\n# TYPE g_total gauge\n"));  // _total gauge
    CHECK(bad("# HELP c h\n# TYPE c counter\n"));            // counter without _total
    std::string hist = "# HELP h h\n# TYPE h histogram\n";
    CHECK_FALSE(bad(hist + "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"));
    CHECK(
        bad(hist + "h_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"));  // not cumulative
    CHECK(bad(hist + "h_bucket{le=\"1\"} 1\nh_sum 3\nh_count 1\n"));                         // no +Inf
    CHECK(
        bad(hist + "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 3\n"));  // count differs
}

TEST_CASE("an empty snapshot renders a valid body with every family", "[metrics]") {
    Snapshot s;
    std::string body = render_prometheus(s, kNow);
    Exposition x;
    REQUIRE_NOTHROW(x = parse_exposition(body));
    for (const char* f :
         {"keyscope_up", "keyscope_healthy", "keyscope_last_collection_age_seconds",
          "keyscope_requests_total", "keyscope_bytes_total", "keyscope_request_duration_seconds",
          "keyscope_key_reads_per_second", "keyscope_hotspots_active", "keyscope_hotspot_info",
          "keyscope_bpf_run_time_seconds_total"})
        CHECK(x.families.count(f) == 1);
    CHECK(value_of(x, "keyscope_up") == 0);
    CHECK(value_of(x, "keyscope_healthy") == 0);
    CHECK(count_samples(x, "keyscope_hotspots_active") == 20);
    CHECK(count_samples(x, "keyscope_requests_total") == 0);
}

TEST_CASE("per-server counters come from the cumulative totals, field by field", "[metrics]") {
    auto x = parse_exposition(render_prometheus(sample_snapshot(), kNow));
    Labels a = {{"server", "127.0.0.1:6379"}, {"proto", "redis"}};
    Labels b = {{"server", "[::1]:6380"}, {"proto", "redis"}};
    // numbered_totals(10): requests=10, key_ops=20, ... bytes_in=150, bytes_out=160
    CHECK(value_of(x, "keyscope_requests_total", a) == 10);
    CHECK(value_of(x, "keyscope_key_operations_total", a) == 20);
    CHECK(value_of(x, "keyscope_keyless_requests_total", a) == 30);
    CHECK(value_of(x, "keyscope_unknown_commands_total", a) == 40);
    CHECK(value_of(x, "keyscope_replies_total", a) == 50);
    CHECK(value_of(x, "keyscope_error_replies_total", a) == 60);
    CHECK(value_of(x, "keyscope_redirects_total", a) == 70);
    CHECK(value_of(x, "keyscope_unattributed_key_operations_total", a) == 80);
    CHECK(value_of(x, "keyscope_replies_unmatched_total", a) == 90);
    CHECK(value_of(x, "keyscope_parse_errors_total", a) == 100);
    CHECK(value_of(x, "keyscope_retransmits_skipped_total", a) == 110);
    CHECK(value_of(x, "keyscope_seq_gaps_total", a) == 120);
    CHECK(value_of(x, "keyscope_flow_table_full_total", a) == 130);
    CHECK(value_of(x, "keyscope_oversized_chunks_total", a) == 140);
    Labels in = a, out = a;
    in["direction"] = "in";
    out["direction"] = "out";
    CHECK(value_of(x, "keyscope_bytes_total", in) == 150);
    CHECK(value_of(x, "keyscope_bytes_total", out) == 160);
    CHECK(value_of(x, "keyscope_requests_total", b) == 100);
    CHECK(count_samples(x, "keyscope_requests_total") == 2);
    CHECK(count_samples(x, "keyscope_bytes_total") == 4);
}

TEST_CASE("the latency histogram is cumulative over power-of-two bounds in seconds", "[metrics]") {
    std::string body = render_prometheus(sample_snapshot(), kNow);
    auto x = parse_exposition(body);
    const std::string name = "keyscope_request_duration_seconds";
    Labels a = {{"server", "127.0.0.1:6379"}};
    auto bucket = [&](const std::string& le) {
        Labels l = a;
        l["le"] = le;
        return value_of(x, name + "_bucket", l);
    };
    // the exact text of the bounds: 2^10 ns .. 2^33 ns, shortest round-trip form
    CHECK(body.find("le=\"1.024e-06\"") != std::string::npos);
    CHECK(body.find("le=\"8.589934592\"") != std::string::npos);
    CHECK(bucket("1.024e-06") == 1);
    CHECK(bucket("3.2768e-05") == 1);  // 50 us is above 2^15 ns
    CHECK(bucket("6.5536e-05") == 11);
    CHECK(bucket("8.589934592") == 11);  // the 2 slow ones are only in +Inf
    CHECK(bucket("+Inf") == 13);
    CHECK(value_of(x, name + "_count", a) == 13);
    // 24 powers of two + +Inf per server
    CHECK(count_samples(x, name + "_bucket") == 2 * 25);

    // _sum from bucket midpoints: 512 ns, the 50 us bucket's middle, 1.125 x the last bucket's low
    std::uint32_t b50 = ks_lat_bucket(50'000);
    double mid50 = (double(ks_lat_bucket_low(b50)) + double(ks_lat_bucket_low(b50 + 1))) / 2;
    double last = double(ks_lat_bucket_low(KS_LAT_BUCKETS - 1)) * 1.125;
    CHECK(value_of(x, name + "_sum", a) == Approx((512 + 10 * mid50 + 2 * last) / 1e9));
    CHECK(value_of(x, name + "_count", {{"server", "[::1]:6380"}}) == 0);
}

TEST_CASE("top keys export per-second rates and p99 in seconds", "[metrics]") {
    auto s = sample_snapshot();
    auto x = parse_exposition(render_prometheus(s, kNow));
    Labels k1 = {{"server", "127.0.0.1:6379"}, {"key", "user:42"}};
    Labels k2 = {{"server", "127.0.0.1:6379"}, {"key", "cart:7"}};
    CHECK(value_of(x, "keyscope_key_reads_per_second", k1) == 50);  // 100 in 2 s
    CHECK(value_of(x, "keyscope_key_writes_per_second", k1) == 2);
    CHECK(value_of(x, "keyscope_key_errors_per_second", k1) == 1);
    CHECK(value_of(x, "keyscope_key_writes_per_second", k2) == 15);
    CHECK(value_of(x, "keyscope_key_p99_latency_seconds", k1) == Approx(245.76e-6));
    CHECK(value_of(x, "keyscope_key_max_value_bytes", k1) == 512);
    CHECK(count_samples(x, "keyscope_key_reads_per_second") == 2);

    SECTION("a zero-length interval gives zero rates, not inf") {
        s.interval_s = 0;
        auto z = parse_exposition(render_prometheus(s, kNow));
        CHECK(value_of(z, "keyscope_key_reads_per_second", k1) == 0);
    }
    SECTION("keys shown alike (redacted to a prefix) merge into one series") {
        s.keys[1].key = "user:42";
        s.keys[1].p99_us = 900;
        auto m = parse_exposition(render_prometheus(s, kNow));
        CHECK(count_samples(m, "keyscope_key_reads_per_second") == 1);
        CHECK(value_of(m, "keyscope_key_writes_per_second", k1) == 17);  // (4 + 30) / 2
        CHECK(value_of(m, "keyscope_key_p99_latency_seconds", k1) == Approx(900e-6));
    }
}

TEST_CASE("a key with a quote, a backslash and a newline is escaped in labels", "[metrics]") {
    auto s = sample_snapshot();
    const std::string nasty = "a\"b\\c\nd";
    s.keys[0].key = nasty;
    s.hotspots[0].name = nasty;
    std::string body = render_prometheus(s, kNow);
    CHECK(body.find("key=\"a\\\"b\\\\c\\nd\"") != std::string::npos);
    CHECK(body.find("name=\"a\\\"b\\\\c\\nd\"") != std::string::npos);
    auto x = parse_exposition(body);  // and it reads back as the same bytes
    CHECK(value_of(x, "keyscope_key_reads_per_second", {{"key", nasty}}) == 50);
    CHECK(value_of(x, "keyscope_hotspot_info", {{"name", nasty}}) == 1);
}

TEST_CASE("hotspot series: 5 kinds x 4 severities always, plus one info per hotspot", "[metrics]") {
    auto s = sample_snapshot();
    auto second = s.hotspots[0];
    second.rule = "temporal";  // same entity, kind and severity: one info series
    auto third = s.hotspots[0];
    third.entity = "prefix";
    third.name = "user:*";
    third.kind = "latency";
    third.severity = "critical";
    s.hotspots.push_back(second);
    s.hotspots.push_back(third);
    auto x = parse_exposition(render_prometheus(s, kNow));
    CHECK(count_samples(x, "keyscope_hotspots_active") == 20);
    CHECK(value_of(x, "keyscope_hotspots_active", {{"kind", "read"}, {"severity", "high"}}) == 2);
    CHECK(value_of(x, "keyscope_hotspots_active", {{"kind", "latency"}, {"severity", "critical"}}) == 1);
    CHECK(value_of(x, "keyscope_hotspots_active", {{"kind", "error"}, {"severity", "low"}}) == 0);
    CHECK(count_samples(x, "keyscope_hotspot_info") == 2);
    CHECK(
        value_of(
            x, "keyscope_hotspot_info",
            {{"entity", "prefix"}, {"name", "user:*"}, {"server", "127.0.0.1:6379"}, {"kind", "latency"}}) ==
        1);
}

TEST_CASE("health and cost metrics", "[metrics]") {
    auto x = parse_exposition(render_prometheus(sample_snapshot(), kNow));
    CHECK(value_of(x, "keyscope_up") == 1);
    CHECK(value_of(x, "keyscope_healthy") == 1);
    CHECK(value_of(x, "keyscope_collection_interval_seconds") == 2);
    CHECK(value_of(x, "keyscope_last_collection_age_seconds") == 1);
    CHECK(value_of(x, "keyscope_key_map_capacity") == 16384);
    CHECK(value_of(x, "keyscope_key_map_entries") == 1234);
    CHECK(value_of(x, "keyscope_bpf_run_time_seconds_total", {{"program", "ks_tc_ingress"}}) == 2.5);
    CHECK(value_of(x, "keyscope_bpf_run_count_total", {{"program", "ks_tc_ingress"}}) == 1000);
    CHECK(value_of(x, "keyscope_bpf_run_time_seconds_total", {{"program", "ks_tc_egress"}}) == 5e-7);

    auto s = sample_snapshot();
    s.health.last_collection = 0;
    s.health.started = kNow - 3;
    auto y = parse_exposition(render_prometheus(s, kNow));
    CHECK(value_of(y, "keyscope_last_collection_age_seconds") == 3);  // since start until the first one
}

TEST_CASE("health verdicts: attached, fresh, stalled", "[metrics]") {
    auto s = sample_snapshot();  // interval 2 s
    CHECK(health(s, kNow).ok);
    CHECK(health(s, kNow).reason.empty());

    SECTION("probes not attached") {
        s.health.probes_attached = false;
        auto v = health(s, kNow);
        CHECK_FALSE(v.ok);
        CHECK(v.reason == "probes are not attached");
    }
    SECTION("no collection yet: fine for 3 intervals after start, then not") {
        s.health.last_collection = 0;
        s.health.started = kNow - 5.9;
        CHECK(health(s, kNow).ok);
        s.health.started = kNow - 6.5;
        auto v = health(s, kNow);
        CHECK_FALSE(v.ok);
        CHECK(v.reason == "no collection yet, 6.5s after start (interval 2.0s)");
    }
    SECTION("stalled once the last collection is older than 3 intervals + 5 s") {
        s.health.last_collection = kNow - 10.9;
        CHECK(health(s, kNow).ok);
        s.health.last_collection = kNow - 11.5;
        auto v = health(s, kNow);
        CHECK_FALSE(v.ok);
        CHECK(v.reason == "collection stalled: last one 11.5s ago (interval 2.0s)");
        auto x = parse_exposition(render_prometheus(s, kNow));
        CHECK(value_of(x, "keyscope_healthy") == 0);
        CHECK(value_of(x, "keyscope_up") == 1);
    }
}

TEST_CASE("JSON API shapes", "[metrics]") {
    auto s = sample_snapshot();

    auto k = keys_json(s);
    CHECK(k["ts"] == s.ts);
    CHECK(k["interval_s"] == 2.0);
    REQUIRE(k["keys"].size() == 2);
    const auto& k1 = k["keys"][0];
    CHECK(k1["server"] == "127.0.0.1:6379");
    CHECK(k1["proto"] == "redis");
    CHECK(k1["key"] == "user:42");
    CHECK(k1["truncated"] == false);
    CHECK(k1["reads"] == 100);
    CHECK(k1["writes"] == 4);
    CHECK(k1["errors"] == 2);
    CHECK(k1["max_value_bytes"] == 512);
    CHECK(k1["p50_us"] == 53.25);
    CHECK(k1["p99_us"] == 245.76);
    CHECK(k1["reads_per_s"] == 50.0);
    CHECK(k1["writes_per_s"] == 2.0);
    for (const char* f : {"redirects", "bytes_in", "bytes_out"}) CHECK(k1.contains(f));

    auto h = hotspots_json(s);
    REQUIRE(h["hotspots"].size() == 1);
    const auto& h1 = h["hotspots"][0];
    CHECK(h1["entity"] == "key");
    CHECK(h1["name"] == "user:42");
    CHECK(h1["key"] == "user:42");
    CHECK(h1["server"] == "127.0.0.1:6379");
    CHECK(h1["kind"] == "read");
    CHECK(h1["severity"] == "high");
    CHECK(h1["rule"] == "absolute");
    CHECK(h1["detail"] == "50 reads/s");
    CHECK(h1["value"] == 50.0);
    CHECK(h1["threshold"] == 10.0);
    CHECK(h1["baseline"] == 2.0);
    CHECK(h1["since"] == kNow - 30);
    CHECK(h1["recommended_actions"] == nlohmann::json({"cache it client-side", "replicate it"}));
    s.hotspots[0].entity = "slot";
    s.hotspots[0].name = "5474";
    CHECK_FALSE(hotspots_json(s)["hotspots"][0].contains("key"));

    auto st = status_json(sample_snapshot(), kNow);
    CHECK(st["health"]["ok"] == true);
    CHECK(st["health"]["reason"] == "");
    CHECK(st["health"]["probes_attached"] == true);
    CHECK(st["health"]["last_collection_age_s"] == 1.0);
    CHECK(st["health"]["key_map_capacity"] == 16384);
    CHECK(st["health"]["key_map_used"] == 1234);
    CHECK(st["health"]["hotspots_active"] == 1);
    CHECK(st["health"]["programs"][0]["name"] == "ks_tc_ingress");
    REQUIRE(st["servers"].size() == 2);
    CHECK(st["servers"][0]["server"] == "127.0.0.1:6379");
    CHECK(st["servers"][0]["total"]["requests"] == 10);
    CHECK(st["servers"][0]["total"]["bytes_out"] == 160);
    CHECK(st["servers"][0]["interval"]["requests"] == 1);
    CHECK(st["servers"][0]["p99_us"] == 150.0);

    Snapshot empty;
    auto e = status_json(empty, kNow);
    CHECK(e["health"]["ok"] == false);
    CHECK(e["health"]["last_collection_age_s"].is_null());
    CHECK(keys_json(empty)["keys"].is_array());
    CHECK(hotspots_json(empty)["hotspots"].is_array());
}
