// Mitigation rules as JSON: the /api/rules body an operator (or `keyscope
// throttle add`) sends, and how a rule is shown (keys through the one
// redaction switch).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "act/enforcer.hpp"
#include "output/key_format.hpp"
#include "output/snapshot.hpp"

namespace keyscope {

/// {"key"|"prefix"|"client"|"connections": ..., "server": "HOST:PORT", "rate": N, "burst": N,
///  "shed": F, "dry_run": B, "ttl_s": S, "reason": "..."}; throws a one-line Error.
RuleSpec rule_spec_from_json(const nlohmann::json& j, const std::vector<Target>& targets, double* ttl_s,
                             std::string* reason);

MitigationSnapshot mitigation_snapshot(const Rule& r, const std::vector<Target>& targets,
                                       const KeyFormatter& fmt);
nlohmann::json mitigation_json(const MitigationSnapshot& m);
/// {"type":"mitigation","event":...}: one line of the JSON stream.
nlohmann::json mitigation_event_json(const MitigationEvent& e, const std::vector<Target>& targets,
                                     const KeyFormatter& fmt, double ts);
std::string mitigation_log_line(const MitigationEvent& e, const std::vector<Target>& targets,
                                const KeyFormatter& fmt);

}  // namespace keyscope
