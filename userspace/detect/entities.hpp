// The things a hotspot can be about: a key, a key prefix, a Redis Cluster
// hash slot, or a whole server. One interval's per-key statistics are rolled
// up into per-entity samples here; pure functions, no kernel.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "collect/stats.hpp"

namespace keyscope {

enum class EntityKind { key, prefix, slot, server };
const char* entity_name(EntityKind kind);

/// How keys group into prefixes: glob patterns first (the first that
/// matches names the prefix), else the first `depth` delimiter-separated
/// segments ("user:42" -> "user:*" at depth 1). depth 0 and no patterns: none.
struct PrefixRules {
    char delimiter = ':';
    unsigned depth = 1;
    std::vector<std::string> patterns;
};

/// Glob match with '*' (any run of bytes) and '?' (one byte).
bool glob_match(std::string_view pattern, std::string_view text);

/// The prefix entity a key belongs to, or "" for none.
std::string key_prefix(std::string_view key, const PrefixRules& rules);

/// Redis Cluster hash slot: CRC16 (XMODEM) of the key, or of its {hash tag}
/// when one is present and non-empty, mod 16384.
std::uint16_t cluster_slot(std::string_view key);

/// One entity's activity over one interval.
struct EntitySample {
    EntityKind kind = EntityKind::key;
    std::uint32_t target = 0;
    std::string name;  // raw key bytes, prefix, slot number, or "" for a server
    bool truncated = false;
    std::uint64_t hash = 0;  // keys: their hash (for redaction)
    std::uint64_t reads = 0, writes = 0, errors = 0, bytes_out = 0, max_value = 0;
    std::uint64_t requests = 0;  // what error rates divide by (key ops; all requests for servers)
    LatencyHistogram lat{};

    std::uint64_t ops() const { return reads + writes; }
    void add(const KeyStats& k);
};

/// Every key, prefix, slot and server with traffic in the interval.
/// Keys seen only through replies (no name) are left out of prefixes/slots.
std::vector<EntitySample> roll_up(const IntervalData& data, const PrefixRules& rules);

}  // namespace keyscope
