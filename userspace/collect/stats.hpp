// Per-key and per-target statistics as the daemon keeps them: pure data and
// arithmetic, fed by the collector (or by tests) with no kernel involved.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

extern "C" {
#include "keyscope_abi.h"
}

namespace keyscope {

using LatencyHistogram = std::array<std::uint64_t, KS_LAT_BUCKETS>;

/// Counters of one target (server) over an interval or the whole run.
struct Totals {
    std::uint64_t requests = 0, key_ops = 0, keyless = 0, unknown_cmds = 0, replies = 0, errors = 0,
                  redirects = 0, unattributed = 0, reply_unmatched = 0, parse_errors = 0, seq_retrans = 0,
                  seq_gaps = 0, flow_full = 0, truncated_windows = 0, bytes_in = 0, bytes_out = 0;
    std::uint64_t hits = 0, misses = 0, unparsed = 0;  // memcached retrievals; binary chunks
    bool key_map_full = false;                         // some key found the key map full this interval

    Totals& operator+=(const Totals& o);
    static Totals from_bpf(const ks_counters& c);
};

/// One key's statistics (an interval's delta, or cumulative).
struct KeyStats {
    std::uint32_t target = 0;
    std::uint64_t hash = 0;
    std::string key;  // stored bytes (at most KS_KEY_MAX)
    std::uint32_t key_len = 0;
    bool truncated = false;
    bool named = true;  // false while only replies have been seen
    /// lat[b] is 0 outside [lat_lo, lat_hi). load() and merge() keep the
    /// bounds tight, so walking a key's latencies touches a cache line or two
    /// rather than all of `lat`; code that fills lat itself leaves them wide.
    /// (Beside the counters: every pass reads them, and they fill padding.)
    std::uint8_t lat_lo = 0, lat_hi = KS_LAT_BUCKETS;
    std::uint64_t reads = 0, writes = 0, errors = 0, redirects = 0, bytes_in = 0, bytes_out = 0,
                  max_value = 0;
    std::uint64_t hits = 0;  // memcached: values returned (misses = reads - hits)
    LatencyHistogram lat{};

    std::uint64_t ops() const { return reads + writes; }
    void merge(const KeyStats& o);
    static KeyStats from_bpf(const ks_key_ref& ref, const ks_key_stats& s);
    /// from_bpf() into this (default-constructed) one, without a copy
    void load(const ks_key_ref& ref, const ks_key_stats& s);
};

/// Latency quantile (0 < q <= 1) in microseconds from a histogram; 0 if empty.
double quantile_us(const LatencyHistogram& h, double q);
/// The same when the histogram's total count is known already.
double quantile_us(const LatencyHistogram& h, double q, std::uint64_t total);
/// The 1-based rank of quantile q among `total` samples (total > 0): the
/// smallest count with q of the samples at or below it.
std::uint64_t quantile_rank(double q, std::uint64_t total);
/// What a quantile falling in latency bucket `b` reports: its middle, in microseconds.
double bucket_mid_us(std::uint32_t b);

/// The `n` keys with most operations, ties broken by key bytes (stable output).
std::vector<KeyStats> top_keys(const std::vector<KeyStats>& keys, std::size_t n);

/// Everything one collection produced.
struct IntervalData {
    std::vector<Totals> per_target;  // indexed by target id
    std::vector<KeyStats> keys;
};

/// Cumulative per-key table; also remembers key names so that keys first seen
/// through a reply in a later interval are shown by name. Bounded: when it
/// holds `capacity` keys, the less busy half is forgotten (counted in
/// forgotten()), so a run over millions of distinct keys keeps its memory.
/// After that, a new key with fewer operations than the least busy key kept
/// is forgotten on arrival.
class KeyTable {
public:
    explicit KeyTable(std::size_t capacity = 0);  // 0: no bound
    void add(const KeyStats& k);
    /// Fills in names of reply-only entries from keys seen before.
    void name_keys(std::vector<KeyStats>& keys) const;
    std::vector<KeyStats> all() const;
    std::size_t size() const { return keys_.size(); }
    /// Keys dropped to stay within the capacity (their operations are still
    /// in the totals, so they show as other_key_ops).
    std::uint64_t forgotten() const { return forgotten_; }

private:
    std::size_t find(std::uint32_t target, std::uint64_t hash) const;  // slot in index_
    void reindex(std::size_t slots);
    void forget_least_busy();

    std::size_t capacity_;
    std::uint64_t forgotten_ = 0;
    // a new key needs this many operations: the least any key kept at the last pruning had
    std::uint64_t admit_ops_ = 0;
    std::vector<KeyStats> keys_;  // dense: merging walks no node chains
    // open addressing over keys_, at most half full; the slot repeats the
    // key's identity so that probing does not touch the big entries
    struct Slot {
        std::uint64_t hash = 0;
        std::uint32_t target = 0;
        std::uint32_t pos = 0;  // position in keys_ + 1; 0 = empty
    };
    std::vector<Slot> index_;
};

}  // namespace keyscope
