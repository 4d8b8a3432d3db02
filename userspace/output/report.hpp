// Renders intervals and the run summary as JSON Lines objects or a text table.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "collect/stats.hpp"
#include "output/key_format.hpp"
#include "target/target.hpp"

namespace keyscope {

struct ReportContext {
    const std::vector<Target>& targets;
    const KeyFormatter& keys;
    std::size_t top_n;
};

/// A target's counters under the JSON Lines field names (shared by the API).
nlohmann::json totals_json(const Totals& t);

/// {"type":"ready","targets":[...],...}
nlohmann::json ready_json(const ReportContext& ctx, const std::string& probe);

/// {"type": type ("interval"|"summary"), "ts", "interval_s", "total", "servers", "keys"}.
nlohmann::json interval_json(const std::string& type, double ts, double interval_s, const IntervalData& data,
                             const ReportContext& ctx);

/// A human-readable table of the same content.
std::string interval_text(const std::string& title, double interval_s, const IntervalData& data,
                          const ReportContext& ctx);

}  // namespace keyscope
