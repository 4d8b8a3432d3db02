// Hotspot events as the outputs show them: JSON Lines objects, warning log
// lines, the active-hotspot summary, and rows of the shared Snapshot. Every
// entity name goes through the one KeyFormatter, so redaction holds here too.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "detect/detector.hpp"
#include "output/key_format.hpp"
#include "output/snapshot.hpp"
#include "target/target.hpp"

namespace keyscope {

struct HotspotContext {
    const std::vector<Target>& targets;
    const KeyFormatter& keys;
};

/// The entity as shown: the (redacted) key or prefix, slot number or server.
std::string hotspot_entity_text(const HotspotEvent& ev, const HotspotContext& ctx);

/// {"type":"hotspot","state":...,"entity":...,"key":...,"server":...,"kind":...,...}
nlohmann::json hotspot_json(const HotspotEvent& ev, const HotspotContext& ctx);

/// "hot key detected: server=127.0.0.1:6379 key="user:42" kind=read 5012 reads/s (...) severity=high"
std::string hotspot_log_line(const HotspotEvent& ev, const HotspotContext& ctx);

/// Active hotspots by kind, by severity, and the entities affected.
nlohmann::json hotspot_summary_json(const std::vector<HotspotEvent>& active, const HotspotContext& ctx);

HotspotSnapshot hotspot_snapshot(const HotspotEvent& ev, const HotspotContext& ctx);

}  // namespace keyscope
