// Renders a Snapshot for the HTTP endpoint: Prometheus text exposition
// (format 0.0.4), the JSON API bodies and the health verdict. Pure functions
// of the snapshot and the time passed in, so tests need no server or clock.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "output/snapshot.hpp"

namespace keyscope {

/// Whether keyscope is doing its job; `reason` says why not (empty when ok).
struct HealthVerdict {
    bool ok = false;
    std::string reason;
};

/// Unhealthy when the probes are not attached, when no collection happened
/// within 3 intervals of the start, or when the last collection is older
/// than 3 intervals + 5 s (collection stalled). `now_unix` in seconds.
HealthVerdict health(const Snapshot& s, double now_unix);

/// The whole /metrics body: every family with # HELP and # TYPE, samples in
/// base units, label values escaped. `now_unix` feeds the health metrics.
std::string render_prometheus(const Snapshot& s, double now_unix);

/// /api/keys: {"ts", "interval_s", "keys": [{server, proto, key, truncated,
/// reads, writes, ..., p50_us, p99_us, reads_per_s, writes_per_s}]}.
nlohmann::json keys_json(const Snapshot& s);

/// /api/hotspots: {"ts", "hotspots": [{entity, name, key (key entities only),
/// server, kind, severity, rule, detail, value, threshold, baseline, since,
/// recommended_actions}]}.
nlohmann::json hotspots_json(const Snapshot& s);

/// /api/status: {"ts", "interval_s", "health": {ok, reason, probes, key map,
/// programs...}, "servers": [{server, proto, p99_us, interval: {...},
/// total: {...}}]}.
nlohmann::json status_json(const Snapshot& s, double now_unix);

}  // namespace keyscope
