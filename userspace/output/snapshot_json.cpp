#include "output/snapshot_json.hpp"

#include "util/error.hpp"

namespace keyscope {

// field lists: one place, both directions (missing fields keep their defaults)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Totals, requests, key_ops, keyless, unknown_cmds, replies,
                                                errors, redirects, unattributed, reply_unmatched,
                                                parse_errors, seq_retrans, seq_gaps, flow_full,
                                                truncated_windows, bytes_in, bytes_out, key_map_full)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ServerSnapshot, server, proto, interval, total, lat_total,
                                                p99_us)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ClientShare, client, ops)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(KeySnapshot, server, proto, key, truncated, reads, writes,
                                                errors, redirects, bytes_in, bytes_out, max_value_bytes,
                                                p50_us, p99_us, lat, clients)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(EntityRow, server, name, reads, writes, errors, bytes_out,
                                                max_value_bytes, p99_us)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HotspotSnapshot, entity, name, server, kind, severity, rule,
                                                detail, value, threshold, baseline, since,
                                                recommended_actions)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ProgramCost, name, run_time_ns, run_count)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HealthSnapshot, probes_attached, started, last_collection,
                                                interval_s, key_map_capacity, key_map_used, cpu_percent,
                                                programs)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MitigationSnapshot, id, server, match, target, client, action,
                                                mode, origin, reason, rate, burst, shed, created, expires,
                                                matched, dropped, would_drop, capped, interval_dropped,
                                                interval_would_drop)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Snapshot, ts, interval_s, servers, keys, prefixes, slots,
                                                hotspots, act_mode, mitigations, mitigation_events, health)

nlohmann::json snapshot_to_json(const Snapshot& s) {
    return s;
}

Snapshot snapshot_from_json(const nlohmann::json& j) {
    try {
        return j.get<Snapshot>();
    } catch (const nlohmann::json::exception& e) {
        throw Error(std::string("bad snapshot from the daemon: ") + e.what());
    }
}

}  // namespace keyscope
