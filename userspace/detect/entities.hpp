// The things a hotspot can be about: a key, a key prefix, a Redis Cluster
// hash slot, or a whole server. One interval's per-key statistics are rolled
// up into per-entity samples here; pure functions, no kernel.
#pragma once

#include <cstdint>
#include <memory>
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
/// The same into `out` (reusing its buffer); false for none.
bool key_prefix_into(std::string_view key, const PrefixRules& rules, std::string& out);

/// Redis Cluster hash slot: CRC16 (XMODEM) of the key, or of its {hash tag}
/// when one is present and non-empty, mod 16384.
std::uint16_t cluster_slot(std::string_view key);

/// One entity's activity over one interval. Latency is kept as what the
/// detector and the views use (count and p99), not as a histogram: an
/// interval has up to --max-keys of these.
struct EntitySample {
    EntityKind kind = EntityKind::key;
    std::uint32_t target = 0;
    std::string name;  // raw key bytes, prefix, slot number, or "" for a server
    bool truncated = false;
    std::uint64_t hash = 0;  // keys: their hash (for redaction)
    std::uint64_t reads = 0, writes = 0, errors = 0, bytes_out = 0, max_value = 0;
    std::uint64_t requests = 0;  // what error rates divide by (key ops; all requests for servers)
    std::uint64_t lat_n = 0;     // operations with a measured latency
    double p99_us = 0;           // their p99; 0 when there are none

    std::uint64_t ops() const { return reads + writes; }
};

/// Every key (first, in input order), then every prefix, slot and server
/// with traffic in the interval. Keys seen only through replies (no name) are
/// left out of prefixes/slots. `server_lat`, when given, receives each
/// target's latency histogram over all its keys (indexed by target id).
std::vector<EntitySample> roll_up(const IntervalData& data, const PrefixRules& rules,
                                  std::vector<LatencyHistogram>* server_lat = nullptr);

/// roll_up() for a caller that rolls up every interval: its buffers (several
/// megabytes under many keys) are kept from one call to the next instead of
/// being allocated, faulted in and freed each time.
class RollUp {
public:
    explicit RollUp(PrefixRules rules);
    ~RollUp();
    RollUp(const RollUp&) = delete;
    RollUp& operator=(const RollUp&) = delete;
    /// What roll_up() returns; valid until the next call.
    const std::vector<EntitySample>& operator()(const IntervalData& data,
                                                std::vector<LatencyHistogram>* server_lat = nullptr);
    /// The last result, moved out.
    std::vector<EntitySample> release() { return std::move(out_); }

private:
    struct Buffers;
    PrefixRules rules_;
    std::unique_ptr<Buffers> buf_;
    std::vector<EntitySample> out_;
};

}  // namespace keyscope
