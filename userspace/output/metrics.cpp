#include "output/metrics.hpp"

#include "output/report.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

extern "C" {
#include "hist.h"
}

namespace keyscope {
namespace {

// Every kind and severity the detector knows, so that /metrics always has
// the same 20 hotspots_active series and alerts never see a series vanish.
constexpr const char* kKinds[] = {"read", "write", "size", "latency", "error"};
constexpr const char* kSeverities[] = {"low", "medium", "high", "critical"};

// How many histogram buckets cover one power of two.
constexpr std::uint32_t kSubBuckets = 1u << KS_LAT_SUB_BITS;
static_assert((KS_LAT_BUCKETS - 1) % kSubBuckets == 0, "buckets after the first come in whole octaves");

using Label = std::pair<std::string_view, std::string_view>;

std::string format_number(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    // shortest text that reads back as the same double
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

std::string format_number(std::uint64_t v) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

/// Builds one exposition body; families must be written whole, one after another.
class Exposition {
public:
    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        // HELP text escapes only backslash and newline
        for (char c : help) {
            if (c == '\\')
                out_ += "\\\\";
            else if (c == '\n')
                out_ += "\\n";
            else
                out_ += c;
        }
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }

    template <class V>
    void sample(std::string_view name, const std::vector<Label>& labels, V value) {
        out_ += name;
        if (!labels.empty()) {
            out_ += '{';
            for (std::size_t i = 0; i < labels.size(); ++i) {
                if (i) out_ += ',';
                out_ += labels[i].first;
                out_ += "=\"";
                append_label_value(labels[i].second);
                out_ += '"';
            }
            out_ += '}';
        }
        out_ += ' ';
        if constexpr (std::is_integral_v<V>)
            out_ += format_number(static_cast<std::uint64_t>(value));
        else
            out_ += format_number(static_cast<double>(value));
        out_ += '\n';
    }

    std::string take() { return std::move(out_); }

private:
    // Label values (keys!) may hold any byte; the format escapes these three.
    void append_label_value(std::string_view v) {
        for (char c : v) {
            switch (c) {
                case '\\':
                    out_ += "\\\\";
                    break;
                case '"':
                    out_ += "\\\"";
                    break;
                case '\n':
                    out_ += "\\n";
                    break;
                default:
                    out_ += c;
            }
        }
    }

    std::string out_;
};

double per_second(double count, double interval_s) {
    return interval_s > 0 ? count / interval_s : 0;
}

/// The configured interval, else the last one's length (older snapshots).
double interval_of(const Snapshot& s) {
    return s.health.interval_s > 0 ? s.health.interval_s : s.interval_s;
}

std::string seconds_text(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1fs", v);
    return buf;
}

/// Midpoint of a latency bucket in ns, as quantile_us() takes it: the last
/// bucket is open, so it is taken as [low, 1.25 low).
double bucket_mid_ns(std::uint32_t b) {
    double lo = static_cast<double>(ks_lat_bucket_low(b));
    double hi = b + 1 < KS_LAT_BUCKETS ? static_cast<double>(ks_lat_bucket_low(b + 1)) : lo * 1.25;
    return (lo + hi) / 2;
}

void server_counters(Exposition& x, const Snapshot& s) {
    struct Counter {
        const char* name;
        const char* help;
        std::uint64_t Totals::*field;
    };
    static const Counter counters[] = {
        {"keyscope_requests_total", "Requests (commands) parsed, with or without a key.", &Totals::requests},
        {"keyscope_key_operations_total", "Key operations: one per key argument (MGET a b c counts 3).",
         &Totals::key_ops},
        {"keyscope_keyless_requests_total",
         "Requests without a key argument (PING, INFO, AUTH, ...; unknown commands included).",
         &Totals::keyless},
        {"keyscope_unknown_commands_total", "Requests whose command is not in keyscope's command table.",
         &Totals::unknown_cmds},
        {"keyscope_replies_total", "Replies parsed.", &Totals::replies},
        {"keyscope_error_replies_total", "Error replies (-ERR, -WRONGTYPE, RESP3 !), redirects excluded.",
         &Totals::errors},
        {"keyscope_redirects_total", "Cluster redirect replies (-MOVED, -ASK).", &Totals::redirects},
        {"keyscope_unattributed_key_operations_total",
         "Key operations not attributed to a key because the kernel key map was full (raise --max-keys).",
         &Totals::unattributed},
        {"keyscope_replies_unmatched_total", "Replies with no remembered request (no latency measured).",
         &Totals::reply_unmatched},
        {"keyscope_parse_errors_total", "Malformed protocol bytes; the stream was resynchronised.",
         &Totals::parse_errors},
        {"keyscope_retransmits_skipped_total", "TCP segments (or parts) seen twice and skipped.",
         &Totals::seq_retrans},
        {"keyscope_seq_gaps_total", "Missing stream bytes (capture gaps); the stream was resynchronised.",
         &Totals::seq_gaps},
        {"keyscope_flow_table_full_total", "Connections not followed because the kernel flow map was full.",
         &Totals::flow_full},
        {"keyscope_oversized_chunks_total", "Payloads longer than the in-kernel parse window budget.",
         &Totals::truncated_windows},
    };
    for (const auto& c : counters) {
        x.family(c.name, "counter", c.help);
        for (const auto& sv : s.servers)
            x.sample(c.name, {{"server", sv.server}, {"proto", sv.proto}}, sv.total.*c.field);
    }
    x.family("keyscope_bytes_total", "counter", "Request (direction=in) and reply (direction=out) bytes.");
    for (const auto& sv : s.servers) {
        x.sample("keyscope_bytes_total", {{"server", sv.server}, {"proto", sv.proto}, {"direction", "in"}},
                 sv.total.bytes_in);
        x.sample("keyscope_bytes_total", {{"server", sv.server}, {"proto", sv.proto}, {"direction", "out"}},
                 sv.total.bytes_out);
    }
}

void latency_histogram(Exposition& x, const Snapshot& s) {
    constexpr std::string_view name = "keyscope_request_duration_seconds";
    x.family(name, "histogram",
             "Request-to-reply latency of keyed requests, from the in-kernel log-linear histogram merged to "
             "powers of two. _sum is approximate: bucket midpoints times counts.");
    for (const auto& sv : s.servers) {
        std::uint64_t cumulative = 0;
        double sum_ns = 0;
        for (std::uint32_t b = 0; b < KS_LAT_BUCKETS; ++b) {
            cumulative += sv.lat_total[b];
            sum_ns += static_cast<double>(sv.lat_total[b]) * bucket_mid_ns(b);
            // Bucket b covers [low(b), low(b+1)); every kSubBuckets-th upper
            // bound is a power of two (bucket 0 ends at 2^KS_LAT_MIN_LOG2 ns).
            // The last bucket is open-ended: only +Inf covers it.
            if (b % kSubBuckets == 0 && b + 1 < KS_LAT_BUCKETS) {
                std::string le = format_number(static_cast<double>(ks_lat_bucket_low(b + 1)) / 1e9);
                x.sample(std::string(name) + "_bucket",
                         {{"server", sv.server}, {"proto", sv.proto}, {"le", le}}, cumulative);
            }
        }
        x.sample(std::string(name) + "_bucket", {{"server", sv.server}, {"proto", sv.proto}, {"le", "+Inf"}},
                 cumulative);
        x.sample(std::string(name) + "_sum", {{"server", sv.server}, {"proto", sv.proto}}, sum_ns / 1e9);
        x.sample(std::string(name) + "_count", {{"server", sv.server}, {"proto", sv.proto}}, cumulative);
    }
}

void top_keys_metrics(Exposition& x, const Snapshot& s) {
    // Redaction (--redact prefix) or truncation can show two keys alike:
    // merge them so that no series appears twice in one scrape.
    struct Row {
        std::string_view server, key;
        double reads = 0, writes = 0, errors = 0, p99_us = 0, max_value = 0;
    };
    std::vector<Row> rows;
    std::map<std::pair<std::string_view, std::string_view>, std::size_t> index;
    for (const auto& k : s.keys) {
        auto [it, inserted] = index.try_emplace({k.server, k.key}, rows.size());
        if (inserted) rows.push_back(Row{k.server, k.key});
        Row& r = rows[it->second];
        r.reads += static_cast<double>(k.reads);
        r.writes += static_cast<double>(k.writes);
        r.errors += static_cast<double>(k.errors);
        // the slower of merged keys: an upper bound, never an understatement
        r.p99_us = std::max(r.p99_us, k.p99_us);
        r.max_value = std::max(r.max_value, static_cast<double>(k.max_value_bytes));
    }

    struct Gauge {
        const char* name;
        const char* help;
        double (*value)(const Row&, double interval_s);
    };
    static const Gauge gauges[] = {
        {"keyscope_key_reads_per_second", "Reads of a top key (--top) in the last interval, per second.",
         [](const Row& r, double iv) { return per_second(r.reads, iv); }},
        {"keyscope_key_writes_per_second", "Writes of a top key (--top) in the last interval, per second.",
         [](const Row& r, double iv) { return per_second(r.writes, iv); }},
        {"keyscope_key_errors_per_second", "Error replies of a top key in the last interval, per second.",
         [](const Row& r, double iv) { return per_second(r.errors, iv); }},
        {"keyscope_key_p99_latency_seconds", "p99 request latency of a top key in the last interval.",
         [](const Row& r, double) { return r.p99_us / 1e6; }},
        {"keyscope_key_max_value_bytes", "Largest reply value of a top key in the last interval.",
         [](const Row& r, double) { return r.max_value; }},
    };
    for (const auto& g : gauges) {
        x.family(g.name, "gauge", g.help);
        for (const auto& r : rows)
            x.sample(g.name, {{"server", r.server}, {"key", r.key}}, g.value(r, s.interval_s));
    }
}

void hotspot_metrics(Exposition& x, const Snapshot& s) {
    std::map<std::pair<std::string, std::string>, std::uint64_t> active;
    for (const auto& kind : kKinds)
        for (const auto& sev : kSeverities) active[{kind, sev}] = 0;
    for (const auto& h : s.hotspots) ++active[{h.kind, h.severity}];

    x.family("keyscope_hotspots_active", "gauge", "Active hotspots by kind and severity.");
    // known pairs first in a fixed order; anything unexpected still counted after them
    for (const auto& kind : kKinds)
        for (const auto& sev : kSeverities)
            x.sample("keyscope_hotspots_active", {{"kind", kind}, {"severity", sev}}, active[{kind, sev}]);
    std::set<std::string_view> known_kinds(std::begin(kKinds), std::end(kKinds));
    std::set<std::string_view> known_sevs(std::begin(kSeverities), std::end(kSeverities));
    for (const auto& [pair, n] : active)
        if (!known_kinds.count(pair.first) || !known_sevs.count(pair.second))
            x.sample("keyscope_hotspots_active", {{"kind", pair.first}, {"severity", pair.second}}, n);

    x.family("keyscope_hotspot_info", "gauge",
             "1 for each active hotspot: which entity (key, prefix, slot, server) is hot, and how.");
    std::set<
        std::tuple<std::string_view, std::string_view, std::string_view, std::string_view, std::string_view>>
        seen;
    for (const auto& h : s.hotspots) {
        // two rules may flag the same entity and kind: one series, not two
        if (!seen.insert({h.entity, h.name, h.server, h.kind, h.severity}).second) continue;
        x.sample("keyscope_hotspot_info",
                 {{"entity", h.entity},
                  {"name", h.name},
                  {"server", h.server},
                  {"kind", h.kind},
                  {"severity", h.severity}},
                 1);
    }
}

void health_metrics(Exposition& x, const Snapshot& s, double now_unix) {
    const HealthSnapshot& h = s.health;
    x.family("keyscope_up", "gauge", "1 if keyscope's BPF probes are attached and counting, else 0.");
    x.sample("keyscope_up", {}, h.probes_attached ? 1 : 0);
    x.family("keyscope_healthy", "gauge",
             "1 if /healthz reports ok (probes attached, maps collected on time), else 0.");
    x.sample("keyscope_healthy", {}, health(s, now_unix).ok ? 1 : 0);
    x.family("keyscope_collection_interval_seconds", "gauge", "Configured interval between collections.");
    x.sample("keyscope_collection_interval_seconds", {}, interval_of(s));
    x.family("keyscope_last_collection_age_seconds", "gauge",
             "Seconds since the BPF maps were last collected (since start while none has happened).");
    double since = h.last_collection > 0 ? h.last_collection : h.started;
    x.sample("keyscope_last_collection_age_seconds", {}, std::max(0.0, now_unix - since));
    x.family("keyscope_key_map_capacity", "gauge", "Distinct keys the kernel key map holds per interval.");
    x.sample("keyscope_key_map_capacity", {}, h.key_map_capacity);
    x.family("keyscope_key_map_entries", "gauge",
             "Distinct keys in the kernel key map in the last interval.");
    x.sample("keyscope_key_map_entries", {}, h.key_map_used);

    // same-named programs (if any) add up rather than repeat a series
    std::vector<ProgramCost> programs;
    for (const auto& p : h.programs) {
        auto it =
            std::find_if(programs.begin(), programs.end(), [&](const auto& q) { return q.name == p.name; });
        if (it == programs.end()) {
            programs.push_back(p);
        } else {
            it->run_time_ns += p.run_time_ns;
            it->run_count += p.run_count;
        }
    }
    x.family("keyscope_bpf_run_time_seconds_total", "counter",
             "CPU time spent in each BPF program (0 unless sysctl kernel.bpf_stats_enabled=1).");
    for (const auto& p : programs)
        x.sample("keyscope_bpf_run_time_seconds_total", {{"program", p.name}},
                 static_cast<double>(p.run_time_ns) / 1e9);
    x.family("keyscope_bpf_run_count_total", "counter",
             "Runs of each BPF program (0 unless sysctl kernel.bpf_stats_enabled=1).");
    for (const auto& p : programs)
        x.sample("keyscope_bpf_run_count_total", {{"program", p.name}}, p.run_count);
}

}  // namespace

HealthVerdict health(const Snapshot& s, double now_unix) {
    const HealthSnapshot& h = s.health;
    if (!h.probes_attached) return {false, "probes are not attached"};
    double iv = interval_of(s);
    if (h.last_collection <= 0) {
        double waited = now_unix - h.started;
        if (waited > 3 * iv)
            return {false, "no collection yet, " + seconds_text(waited) + " after start (interval " +
                               seconds_text(iv) + ")"};
        return {true, ""};
    }
    double age = now_unix - h.last_collection;
    // 5 s of slack: a slow batch read of a big key map is not a stall
    if (age > 3 * iv + 5)
        return {false, "collection stalled: last one " + seconds_text(age) + " ago (interval " +
                           seconds_text(iv) + ")"};
    return {true, ""};
}

void mitigation_metrics(Exposition& x, const Snapshot& s) {
    x.family("keyscope_mitigation_rules", "gauge",
             "Mitigation rules installed, by mode (dry-run or enforce).");
    std::uint64_t dry = 0, enforce = 0;
    for (const auto& m : s.mitigations) (m.mode == "dry-run" ? dry : enforce)++;
    x.sample("keyscope_mitigation_rules", {{"mode", "dry-run"}}, dry);
    x.sample("keyscope_mitigation_rules", {{"mode", "enforce"}}, enforce);
    x.family("keyscope_mitigation_dropped_total", "counter",
             "Request segments a rule dropped (enforce) since the rule was added.");
    for (const auto& m : s.mitigations)
        x.sample(
            "keyscope_mitigation_dropped_total",
            {{"rule", std::to_string(m.id)}, {"server", m.server}, {"match", m.match}, {"action", m.action}},
            m.dropped);
    x.family("keyscope_mitigation_would_drop_total", "counter",
             "Request segments a dry-run rule would have dropped since the rule was added.");
    for (const auto& m : s.mitigations)
        x.sample(
            "keyscope_mitigation_would_drop_total",
            {{"rule", std::to_string(m.id)}, {"server", m.server}, {"match", m.match}, {"action", m.action}},
            m.would_drop);
    x.family("keyscope_mitigation_events_total", "counter",
             "Mitigation actions (added, updated, lifted, expired, removed, suspended, resumed, failed).");
    for (const auto& [event, n] : s.mitigation_events)
        x.sample("keyscope_mitigation_events_total", {{"event", event}}, n);
}

std::string render_prometheus(const Snapshot& s, double now_unix) {
    Exposition x;
    health_metrics(x, s, now_unix);
    server_counters(x, s);
    latency_histogram(x, s);
    top_keys_metrics(x, s);
    hotspot_metrics(x, s);
    mitigation_metrics(x, s);
    return x.take();
}

nlohmann::json keys_json(const Snapshot& s) {
    auto keys = nlohmann::json::array();
    for (const auto& k : s.keys) {
        keys.push_back({{"server", k.server},
                        {"proto", k.proto},
                        {"key", k.key},
                        {"truncated", k.truncated},
                        {"reads", k.reads},
                        {"writes", k.writes},
                        {"errors", k.errors},
                        {"redirects", k.redirects},
                        {"bytes_in", k.bytes_in},
                        {"bytes_out", k.bytes_out},
                        {"max_value_bytes", k.max_value_bytes},
                        {"p50_us", k.p50_us},
                        {"p99_us", k.p99_us},
                        {"reads_per_s", per_second(static_cast<double>(k.reads), s.interval_s)},
                        {"writes_per_s", per_second(static_cast<double>(k.writes), s.interval_s)}});
    }
    return {{"ts", s.ts}, {"interval_s", s.interval_s}, {"keys", keys}};
}

nlohmann::json hotspots_json(const Snapshot& s) {
    auto hotspots = nlohmann::json::array();
    for (const auto& h : s.hotspots) {
        nlohmann::json j = {{"entity", h.entity},       {"name", h.name},
                            {"server", h.server},       {"kind", h.kind},
                            {"severity", h.severity},   {"rule", h.rule},
                            {"detail", h.detail},       {"value", h.value},
                            {"threshold", h.threshold}, {"baseline", h.baseline},
                            {"since", h.since},         {"recommended_actions", h.recommended_actions}};
        // key hotspots also carry "key", like the keys of /api/keys
        if (h.entity == "key") j["key"] = h.name;
        hotspots.push_back(std::move(j));
    }
    return {{"ts", s.ts}, {"hotspots", hotspots}};
}

nlohmann::json status_json(const Snapshot& s, double now_unix) {
    const HealthSnapshot& h = s.health;
    HealthVerdict v = health(s, now_unix);
    auto programs = nlohmann::json::array();
    for (const auto& p : h.programs)
        programs.push_back({{"name", p.name}, {"run_time_ns", p.run_time_ns}, {"run_count", p.run_count}});
    nlohmann::json health_j = {{"ok", v.ok},
                               {"reason", v.reason},
                               {"probes_attached", h.probes_attached},
                               {"started", h.started},
                               {"last_collection", h.last_collection},
                               {"last_collection_age_s", nullptr},
                               {"interval_s", interval_of(s)},
                               {"key_map_capacity", h.key_map_capacity},
                               {"key_map_used", h.key_map_used},
                               {"hotspots_active", s.hotspots.size()},
                               {"programs", programs}};
    if (h.last_collection > 0)
        health_j["last_collection_age_s"] = std::max(0.0, now_unix - h.last_collection);

    auto servers = nlohmann::json::array();
    for (const auto& sv : s.servers) {
        servers.push_back({{"server", sv.server},
                           {"proto", sv.proto},
                           {"p99_us", sv.p99_us},
                           {"interval", totals_json(sv.interval)},
                           {"total", totals_json(sv.total)}});
    }
    return {{"ts", s.ts}, {"interval_s", s.interval_s}, {"health", health_j}, {"servers", servers}};
}

}  // namespace keyscope
