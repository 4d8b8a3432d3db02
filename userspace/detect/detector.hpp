// The hotspot engine: each interval's per-key statistics in, hotspot
// lifecycle events out. Pure logic (no clock, no I/O): the caller passes the
// time, so tests drive it with synthetic intervals.
//
// Per entity it keeps a bounded history of per-interval records. Three rule
// families run on it for each of five hotspot kinds:
//   absolute  - a rate this interval, or a count over the sliding window;
//   temporal  - this interval against the entity's own baseline (median of
//               its history, skipping intervals in which it was hot);
//   relative  - a key's share of its server, or N times the median peer.
// The rule exceeded most sets the value, threshold and severity.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "detect/detect_config.hpp"
#include "detect/entities.hpp"

namespace keyscope {

enum class HotKind { read, write, size, latency, error };
enum class Severity { low = 0, medium = 1, high = 2, critical = 3 };
const char* kind_name(HotKind k);
const char* severity_name(Severity s);
constexpr int kHotKinds = 5;

/// One hotspot lifecycle event, or (state "active") the current state of one.
struct HotspotEvent {
    std::string state;  // start | update | end | active
    EntityKind entity = EntityKind::key;
    std::uint32_t target = 0;
    std::string name;  // raw key bytes / prefix / slot number / "" (server)
    bool truncated = false;
    std::uint64_t hash = 0;
    HotKind kind = HotKind::read;
    Severity severity = Severity::low;
    Severity peak = Severity::low;
    std::string rule;  // absolute | temporal | relative
    std::string what;  // e.g. "5012 reads/s (12.3x baseline 407/s)"
    double value = 0, threshold = 0, baseline = 0;
    std::string unit;  // reads/s, writes/s, bytes, bytes/s, p99 ms, error %
    double ts = 0, since = 0;
    std::vector<std::string> actions;
};

/// Advice for operators of caches and databases, per kind, severity and entity.
std::vector<std::string> recommended_actions(HotKind kind, Severity sev, EntityKind entity);

class Detector {
public:
    /// `servers[target]` is "HOST:PORT", used for per-server overrides.
    Detector(DetectConfig cfg, std::vector<std::string> servers);

    /// Feeds one interval ending at `now` (seconds) and `interval_s` long.
    std::vector<HotspotEvent> observe(const IntervalData& data, double now, double interval_s);
    /// The same with the interval already rolled up (roll_up(data, config().prefixes)),
    /// for a caller that needs the roll-up itself too.
    std::vector<HotspotEvent> observe(const std::vector<EntitySample>& samples, double now,
                                      double interval_s);
    /// Every active hotspot, most severe first.
    std::vector<HotspotEvent> active() const;
    /// Entities with history (bounded; for health metrics and tests).
    std::size_t tracked() const { return entities_.size(); }
    const DetectConfig& config() const { return cfg_; }

private:
    struct Record {
        double t = 0, dur = 0;
        std::uint64_t reads = 0, writes = 0, errors = 0, requests = 0, bytes_out = 0, max_value = 0;
        double p99_ms = 0;     // 0 when too few operations to tell
        std::uint8_t hot = 0;  // bit per HotKind active at the end of this interval
    };
    // keys are identified by their hash (8 raw bytes here): two keys may share
    // their stored (truncated) bytes
    using Id = std::tuple<EntityKind, std::uint32_t, std::string>;
    struct Active {
        HotspotEvent ev;
        double last_above = 0;
        double emitted_value = 0;
    };
    struct Entity {
        std::string name;            // raw key bytes, prefix or slot
        std::deque<Record> history;  // oldest first; the last one is this interval
        double last_candidate = 0;
        bool truncated = false;
        std::uint64_t hash = 0;
        std::vector<double> params;  // resolved for this name; empty: its server's
        std::array<std::optional<Active>, kHotKinds> active;
        std::array<int, kHotKinds> pending{};  // intervals in a row above, before a start
        bool recorded = false;                 // has a record for the interval being fed

        bool is_active() const {
            for (const auto& a : active)
                if (a) return true;
            return false;
        }
    };
    struct Finding {
        double excess = 0;  // value / threshold
        double value = 0, threshold = 0, baseline = 0;
        const char* rule = "";
        std::string what;
        std::string unit;
    };
    struct Peers;

    static Id id_of(const EntitySample& s);
    /// `describe`: also word the finding (what, unit); only needed when it is shown
    Finding evaluate(const Id& id, const Entity& e, HotKind kind, const Peers& peers, bool describe) const;
    double window_sum(const Entity& e, std::uint64_t Record::*field, double now) const;
    double baseline(const Entity& e, HotKind kind, double (*metric)(const Record&), bool* enough) const;
    Severity severity_for(const Entity& e, std::uint32_t target, HotKind kind, double excess,
                          Severity current, bool active) const;
    /// The parameters as they apply to this entity (prefix, server, global), by DetectConfig::index_of.
    const double* params(std::uint32_t target, const Entity& e) const;
    void select_and_record(const std::vector<EntitySample>& samples, double now, double interval_s);

    DetectConfig cfg_;
    std::vector<std::string> servers_;
    std::vector<std::vector<double>> server_params_;  // per target; the last: no known server
    bool per_name_params_ = false;
    std::map<Id, Entity> entities_;
    // last interval's picks too quiet to track at once: their fingerprints and records
    std::vector<std::pair<std::uint64_t, Record>> probation_;
    double now_ = 0;
    mutable std::vector<double> baseline_scratch_;
};

}  // namespace keyscope
