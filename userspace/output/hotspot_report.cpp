#include "output/hotspot_report.hpp"

namespace keyscope {
namespace {

std::string server_of(const HotspotEvent& ev, const HotspotContext& ctx) {
    return ev.target < ctx.targets.size() ? ctx.targets[ev.target].server() : "?";
}

std::string proto_of(const HotspotEvent& ev, const HotspotContext& ctx) {
    return ev.target < ctx.targets.size() ? ctx.targets[ev.target].proto : "?";
}

}  // namespace

std::string hotspot_entity_text(const HotspotEvent& ev, const HotspotContext& ctx) {
    switch (ev.entity) {
        case EntityKind::key:
            return ctx.keys.format(ev.name, ev.truncated, ev.hash);
        case EntityKind::prefix:
            return ctx.keys.format_prefix(ev.name);
        case EntityKind::slot:
            return ev.name;
        case EntityKind::server:
            return server_of(ev, ctx);
    }
    return ev.name;
}

nlohmann::json hotspot_json(const HotspotEvent& ev, const HotspotContext& ctx) {
    nlohmann::json j = {{"type", "hotspot"},
                        {"state", ev.state},
                        {"entity", entity_name(ev.entity)},
                        {"key", hotspot_entity_text(ev, ctx)},
                        {"server", server_of(ev, ctx)},
                        {"proto", proto_of(ev, ctx)},
                        {"kind", kind_name(ev.kind)},
                        {"severity", severity_name(ev.severity)},
                        {"peak_severity", severity_name(ev.peak)},
                        {"rule", ev.rule},
                        {"value", ev.value},
                        {"threshold", ev.threshold},
                        {"baseline", ev.baseline},
                        {"unit", ev.unit},
                        {"detail", ev.what},
                        {"since", ev.since},
                        {"ts", ev.ts},
                        {"recommended_actions", ev.actions}};
    if (ev.entity == EntityKind::key) j["truncated"] = ev.truncated;
    if (ev.state == "end") j["duration_s"] = ev.ts - ev.since;
    return j;
}

std::string hotspot_log_line(const HotspotEvent& ev, const HotspotContext& ctx) {
    const std::string entity = entity_name(ev.entity);
    std::string line = "hot " + entity +
                       (ev.state == "end"     ? " ended"
                        : ev.state == "start" ? " detected"
                                              : " changed") +
                       ": server=" + server_of(ev, ctx);
    if (ev.entity != EntityKind::server) {
        nlohmann::json name = hotspot_entity_text(ev, ctx);  // quoted and escaped as a JSON string
        line += " " + entity + "=" + (ev.entity == EntityKind::slot ? ev.name : name.dump());
    }
    line += std::string(" kind=") + kind_name(ev.kind);
    if (ev.state == "end") {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.0f", ev.ts - ev.since);
        return line + " after " + buf + "s (peak severity=" + severity_name(ev.peak) + ")";
    }
    return line + " " + ev.what + " severity=" + severity_name(ev.severity);
}

nlohmann::json hotspot_summary_json(const std::vector<HotspotEvent>& active, const HotspotContext& ctx) {
    nlohmann::json by_kind = nlohmann::json::object(), by_sev = nlohmann::json::object();
    for (int k = 0; k < kHotKinds; ++k) by_kind[kind_name(static_cast<HotKind>(k))] = 0;
    for (int s = 0; s < 4; ++s) by_sev[severity_name(static_cast<Severity>(s))] = 0;
    auto entities = nlohmann::json::array();
    for (const auto& ev : active) {
        by_kind[kind_name(ev.kind)] = by_kind[kind_name(ev.kind)].get<int>() + 1;
        by_sev[severity_name(ev.severity)] = by_sev[severity_name(ev.severity)].get<int>() + 1;
        entities.push_back({{"entity", entity_name(ev.entity)},
                            {"key", hotspot_entity_text(ev, ctx)},
                            {"server", server_of(ev, ctx)},
                            {"kind", kind_name(ev.kind)},
                            {"severity", severity_name(ev.severity)}});
    }
    return {{"active", active.size()}, {"by_kind", by_kind}, {"by_severity", by_sev}, {"entities", entities}};
}

HotspotSnapshot hotspot_snapshot(const HotspotEvent& ev, const HotspotContext& ctx) {
    HotspotSnapshot h;
    h.entity = entity_name(ev.entity);
    h.name = hotspot_entity_text(ev, ctx);
    h.server = server_of(ev, ctx);
    h.kind = kind_name(ev.kind);
    h.severity = severity_name(ev.severity);
    h.rule = ev.rule;
    h.detail = ev.what;
    h.value = ev.value;
    h.threshold = ev.threshold;
    h.baseline = ev.baseline;
    h.since = ev.since;
    h.recommended_actions = ev.actions;
    return h;
}

}  // namespace keyscope
