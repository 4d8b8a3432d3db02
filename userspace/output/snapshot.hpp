// What the daemon knows after each collection, as plain data: the run loop
// publishes one Snapshot per interval and every sink that is not the stdout
// stream (HTTP /metrics, /healthz, the JSON API, later `keyscope top`)
// renders from a copy of it. Keys in it are already redacted.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "collect/stats.hpp"

namespace keyscope {

/// One server (target) with its counters.
struct ServerSnapshot {
    std::string server;            // "HOST:PORT"
    std::string proto;             // "redis"
    Totals interval;               // the last interval
    Totals total;                  // cumulative since start
    LatencyHistogram lat_total{};  // cumulative request latency of keyed requests
    double p99_us = 0;             // the last interval's p99
};

/// One row of the top keys of the last interval (bounded by --top).
/// One client's requests for a hot key in the last interval.
struct ClientShare {
    std::string client;  // address ("" when the capture path cannot tell)
    std::uint64_t ops = 0;
};

struct KeySnapshot {
    std::string server;
    std::string proto;
    std::string key;  // as shown: escaped and redacted
    bool truncated = false;
    std::uint64_t reads = 0, writes = 0, errors = 0, redirects = 0, bytes_in = 0, bytes_out = 0,
                  max_value_bytes = 0;
    double p50_us = 0, p99_us = 0;
    LatencyHistogram lat{};            // for detail views
    std::vector<ClientShare> clients;  // hot keys only (socket path): busiest first
};

/// One key prefix or cluster slot of the last interval (the busiest ones).
struct EntityRow {
    std::string server;
    std::string name;  // the prefix as shown, or the slot number
    std::uint64_t reads = 0, writes = 0, errors = 0, bytes_out = 0, max_value_bytes = 0;
    double p99_us = 0;
};

/// One active hotspot.
struct HotspotSnapshot {
    std::string entity;    // key | prefix | slot | server
    std::string name;      // the key, prefix, slot number or server, as shown
    std::string server;    // "HOST:PORT"
    std::string kind;      // read | write | size | latency | error
    std::string severity;  // low | medium | high | critical
    std::string rule;      // absolute | temporal | relative
    std::string detail;    // e.g. "5012 reads in 60s (12.3x baseline)"
    double value = 0, threshold = 0, baseline = 0;
    double since = 0;  // unix seconds of its start
    std::vector<std::string> recommended_actions;
};

/// Cost of one BPF program (cumulative; zero unless kernel bpf_stats is on).
struct ProgramCost {
    std::string name;
    std::uint64_t run_time_ns = 0, run_count = 0;
};

/// keyscope's own health.
struct HealthSnapshot {
    bool probes_attached = false;
    double started = 0;                  // unix seconds
    double last_collection = 0;          // unix seconds; 0 = none yet
    double interval_s = 0;               // configured interval
    std::uint64_t key_map_capacity = 0;  // entries per interval
    std::uint64_t key_map_used = 0;      // distinct keys in the last interval
    double cpu_percent = 0;              // keyscope's own CPU over the last interval, % of one core
    std::vector<ProgramCost> programs;
};

/// One mitigation rule as outputs show it (keys already redacted).
struct MitigationSnapshot {
    std::uint32_t id = 0;
    std::string server, match, target, client, action, mode, origin, reason;
    double rate = 0, burst = 0, shed = 0, created = 0, expires = 0;
    std::uint64_t matched = 0, dropped = 0, would_drop = 0, capped = 0;  // since added
    std::uint64_t interval_dropped = 0, interval_would_drop = 0;
};

struct Snapshot {
    double ts = 0;          // unix seconds of the last collection
    double interval_s = 0;  // length of the last interval
    std::vector<ServerSnapshot> servers;
    std::vector<KeySnapshot> keys;
    std::vector<EntityRow> prefixes;  // busiest first, bounded like keys
    std::vector<EntityRow> slots;     // every slot with traffic
    std::vector<HotspotSnapshot> hotspots;
    std::string act_mode = "off";  // automatic mitigation: off | dry-run | enforce | unavailable
    std::vector<MitigationSnapshot> mitigations;
    std::map<std::string, std::uint64_t> mitigation_events;  // event -> count since start
    HealthSnapshot health;
};

/// The latest Snapshot, shared between the run loop (writer) and server
/// threads (readers). Readers get a copy so no lock is held while rendering.
class SnapshotBoard {
public:
    void publish(Snapshot s) {
        std::lock_guard lock(mu_);
        snap_ = std::move(s);
    }
    Snapshot get() const {
        std::lock_guard lock(mu_);
        return snap_;
    }

private:
    mutable std::mutex mu_;
    Snapshot snap_;
};

}  // namespace keyscope
