#include "act/rule_json.hpp"

#include <cstdio>

#include "util/error.hpp"

namespace keyscope {

RuleSpec rule_spec_from_json(const nlohmann::json& j, const std::vector<Target>& targets, double* ttl_s,
                             std::string* reason) {
    RuleSpec s;
    auto text = [&](const char* field) -> std::string {
        if (!j[field].is_string()) throw Error(std::string("rule: '") + field + "' must be a string");
        return j[field].get<std::string>();
    };
    auto number = [&](const char* field, double fallback) -> double {
        if (!j.contains(field)) return fallback;
        if (!j[field].is_number()) throw Error(std::string("rule: '") + field + "' must be a number");
        return j[field].get<double>();
    };
    int matches = 0;
    if (j.contains("key")) {
        s.match = RuleMatch::key;
        s.text = text("key");
        ++matches;
    }
    if (j.contains("prefix")) {
        s.match = RuleMatch::prefix;
        s.text = text("prefix");
        ++matches;
    }
    if (j.contains("connections")) {
        s.match = RuleMatch::connections;
        ++matches;
    }
    if (j.contains("client")) {
        parse_client(text("client"), s);
        if (matches == 0) s.match = RuleMatch::client;
    }
    if (matches > 1) throw Error("rule: give one of key, prefix or connections");
    if (matches == 0 && !j.contains("client"))
        throw Error("rule: say what it matches: key, prefix, client or connections");
    if (j.contains("server")) {
        std::string server = text("server");
        bool found = false;
        for (std::uint32_t t = 0; t < targets.size(); ++t)
            if (targets[t].server() == server) {
                s.target = t;
                found = true;
            }
        if (!found) throw Error("rule: keyscope does not observe server '" + server + "'");
    } else if (targets.size() != 1) {
        throw Error("rule: keyscope observes several servers: say which one (server HOST:PORT)");
    }
    bool shed = j.contains("shed"), rate = j.contains("rate");
    if (shed == rate) throw Error("rule: give either a rate (throttle) or a shed share");
    if (shed) {
        s.action = RuleAction::shed;
        s.shed = number("shed", 0);
    } else {
        s.action = RuleAction::throttle;
        s.rate = number("rate", 0);
        s.burst = number("burst", 0);
    }
    if (j.contains("dry_run")) {
        if (!j["dry_run"].is_boolean()) throw Error("rule: 'dry_run' must be true or false");
        s.dry_run = j["dry_run"].get<bool>();
    }
    *ttl_s = number("ttl_s", 0);
    *reason = j.contains("reason") ? text("reason") : "added by an operator";
    return s;
}

MitigationSnapshot mitigation_snapshot(const Rule& r, const std::vector<Target>& targets,
                                       const KeyFormatter& fmt) {
    MitigationSnapshot m;
    m.id = r.id;
    m.server = r.spec.target < targets.size() ? targets[r.spec.target].server() : "?";
    m.match = match_name(r.spec.match);
    if (r.spec.match == RuleMatch::key)
        m.target = fmt.format(r.spec.text, r.spec.text.size() > KS_KEY_MAX,
                              r.spec.key_hash ? r.spec.key_hash : key_hash(r.spec.text));
    else if (r.spec.match == RuleMatch::prefix)
        m.target = fmt.format_prefix(r.spec.text + "*");
    m.client = client_text(r.spec);
    m.action = action_name(r.spec.action);
    m.mode = r.spec.dry_run ? "dry-run" : "enforce";
    m.origin = r.origin;
    m.reason = r.reason;
    m.rate = r.spec.rate;
    m.burst = r.spec.burst;
    m.shed = r.spec.shed;
    m.created = r.created;
    m.expires = r.expires;
    m.matched = r.total.matched;
    m.dropped = r.total.dropped;
    m.would_drop = r.total.would_drop;
    m.capped = r.total.capped;
    m.interval_dropped = r.interval.dropped;
    m.interval_would_drop = r.interval.would_drop;
    return m;
}

nlohmann::json mitigation_json(const MitigationSnapshot& m) {
    nlohmann::json j{{"id", m.id},
                     {"server", m.server},
                     {"match", m.match},
                     {"action", m.action},
                     {"mode", m.mode},
                     {"origin", m.origin},
                     {"reason", m.reason},
                     {"matched", m.matched},
                     {"dropped", m.dropped},
                     {"would_drop", m.would_drop},
                     {"capped", m.capped},
                     {"interval_dropped", m.interval_dropped},
                     {"interval_would_drop", m.interval_would_drop},
                     {"created", m.created}};
    if (!m.target.empty()) j[m.match] = m.target;
    if (!m.client.empty()) j["client"] = m.client;
    if (m.action == "throttle") {
        j["rate"] = m.rate;
        j["burst"] = m.burst;
    } else {
        j["shed"] = m.shed;
    }
    if (m.expires > 0) j["expires"] = m.expires;
    return j;
}

nlohmann::json mitigation_event_json(const MitigationEvent& e, const std::vector<Target>& targets,
                                     const KeyFormatter& fmt, double ts) {
    nlohmann::json j{
        {"type", "mitigation"}, {"event", e.event}, {"ts", ts}, {"server", e.server}, {"why", e.why}};
    if (e.rule.id) j["rule"] = mitigation_json(mitigation_snapshot(e.rule, targets, fmt));
    return j;
}

std::string mitigation_log_line(const MitigationEvent& e, const std::vector<Target>& targets,
                                const KeyFormatter& fmt) {
    std::string line = "mitigation " + e.event + ": ";
    if (e.rule.id) {
        auto m = mitigation_snapshot(e.rule, targets, fmt);
        char what[96];
        if (m.action == "throttle")
            std::snprintf(what, sizeof what, "throttle %.0f/s (burst %.0f)", m.rate, m.burst);
        else
            std::snprintf(what, sizeof what, "shed %.0f%% of connections", m.shed * 100);
        line += "rule " + std::to_string(m.id) + " " + what + " " + m.match;
        if (!m.target.empty()) line += " \"" + m.target + "\"";
        if (!m.client.empty()) line += " client " + m.client;
        line += " on " + m.server + " (" + m.mode + ", " + m.origin + ")";
    } else {
        line += e.server;
    }
    if (!e.why.empty()) line += ": " + e.why;
    return line;
}

}  // namespace keyscope
