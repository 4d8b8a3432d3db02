#include "collect/stats.hpp"

#include <algorithm>
#include <new>

extern "C" {
#include "hist.h"
}

namespace keyscope {

Totals& Totals::operator+=(const Totals& o) {
    requests += o.requests;
    key_ops += o.key_ops;
    keyless += o.keyless;
    unknown_cmds += o.unknown_cmds;
    replies += o.replies;
    errors += o.errors;
    redirects += o.redirects;
    unattributed += o.unattributed;
    reply_unmatched += o.reply_unmatched;
    parse_errors += o.parse_errors;
    seq_retrans += o.seq_retrans;
    seq_gaps += o.seq_gaps;
    flow_full += o.flow_full;
    truncated_windows += o.truncated_windows;
    bytes_in += o.bytes_in;
    bytes_out += o.bytes_out;
    key_map_full = key_map_full || o.key_map_full;
    hits += o.hits;
    misses += o.misses;
    unparsed += o.unparsed;
    return *this;
}

Totals Totals::from_bpf(const ks_counters& c) {
    Totals t;
    t.requests = c.requests;
    t.key_ops = c.key_ops;
    t.keyless = c.keyless;
    t.unknown_cmds = c.unknown_cmds;
    t.replies = c.replies;
    t.errors = c.errors;
    t.redirects = c.redirects;
    t.unattributed = c.unattributed;
    t.reply_unmatched = c.reply_unmatched;
    t.parse_errors = c.parse_errors;
    t.seq_retrans = c.seq_retrans;
    t.seq_gaps = c.seq_gaps;
    t.flow_full = c.flow_full;
    t.truncated_windows = c.truncated_windows;
    t.bytes_in = c.bytes_in;
    t.bytes_out = c.bytes_out;
    t.key_map_full = c.key_map_full != 0;
    t.hits = c.hits;
    t.misses = c.misses;
    t.unparsed = c.unparsed;
    return t;
}

void KeyStats::merge(const KeyStats& o) {
    if (!named && o.named) {
        key = o.key;
        key_len = o.key_len;
        truncated = o.truncated;
        named = true;
    }
    reads += o.reads;
    writes += o.writes;
    errors += o.errors;
    redirects += o.redirects;
    bytes_in += o.bytes_in;
    bytes_out += o.bytes_out;
    max_value = std::max(max_value, o.max_value);
    hits += o.hits;
    // only the buckets `o` may have: a key has a few, and this one's other
    // cache lines stay untouched (the cumulative table is far bigger than the caches)
    if (o.lat_lo >= o.lat_hi) return;
    for (std::size_t i = o.lat_lo; i < o.lat_hi; ++i) lat[i] += o.lat[i];
    if (lat_lo >= lat_hi) {
        lat_lo = o.lat_lo;
        lat_hi = o.lat_hi;
    } else {
        lat_lo = std::min(lat_lo, o.lat_lo);
        lat_hi = std::max(lat_hi, o.lat_hi);
    }
}

KeyStats KeyStats::from_bpf(const ks_key_ref& ref, const ks_key_stats& s) {
    KeyStats k;
    k.load(ref, s);
    return k;
}

void KeyStats::load(const ks_key_ref& ref, const ks_key_stats& s) {
    target = ref.target;
    hash = ref.hash;
    named = !(s.flags & KS_KEYF_NONAME);
    key_len = s.key_len;
    truncated = (s.flags & KS_KEYF_TRUNCATED) != 0;
    if (named)
        key.assign(reinterpret_cast<const char*>(s.key), std::min<std::uint32_t>(s.key_len, KS_KEY_MAX));
    else
        key.clear();
    reads = s.reads;
    writes = s.writes;
    errors = s.errors;
    redirects = s.redirects;
    bytes_in = s.bytes_in;
    bytes_out = s.bytes_out;
    max_value = s.max_value;
    hits = s.hits;
    // this may be last interval's key: clear what it can have, then copy
    // what the kernel counted and note where that lies
    std::fill(lat.begin() + lat_lo, lat.begin() + lat_hi, 0);
    std::uint32_t lo = KS_LAT_BUCKETS, hi = 0;
    for (std::uint32_t b = 0; b < KS_LAT_BUCKETS; ++b) {
        if (!s.lat[b]) continue;
        lat[b] = s.lat[b];
        lo = std::min(lo, b);
        hi = b + 1;
    }
    lat_lo = static_cast<std::uint8_t>(lo < hi ? lo : 0);
    lat_hi = static_cast<std::uint8_t>(hi);
}

double quantile_us(const LatencyHistogram& h, double q) {
    std::uint64_t total = 0;
    for (auto c : h) total += c;
    return quantile_us(h, q, total);
}

std::uint64_t quantile_rank(double q, std::uint64_t total) {
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total) + 0.999999);
    return std::clamp<std::uint64_t>(rank, 1, total);
}

double bucket_mid_us(std::uint32_t b) {
    double lo = static_cast<double>(ks_lat_bucket_low(b));
    double hi = b + 1 < KS_LAT_BUCKETS ? static_cast<double>(ks_lat_bucket_low(b + 1)) : lo * 1.25;
    return (lo + hi) / 2.0 / 1000.0;
}

double quantile_us(const LatencyHistogram& h, double q, std::uint64_t total) {
    if (total == 0) return 0;
    const std::uint64_t rank = quantile_rank(q, total);
    std::uint64_t seen = 0;
    for (std::uint32_t b = 0; b < h.size(); ++b) {
        seen += h[b];
        if (seen >= rank) return bucket_mid_us(b);
    }
    return 0;
}

std::vector<KeyStats> top_keys(const std::vector<KeyStats>& keys, std::size_t n) {
    std::vector<const KeyStats*> order;
    order.reserve(keys.size());
    for (const auto& k : keys) order.push_back(&k);
    auto better = [](const KeyStats* a, const KeyStats* b) {
        if (a->ops() != b->ops()) return a->ops() > b->ops();
        if (a->key != b->key) return a->key < b->key;
        return a->target < b->target;
    };
    n = std::min(n, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(), better);
    std::vector<KeyStats> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) out.push_back(*order[i]);
    return out;
}

KeyTable::KeyTable(std::size_t capacity) : capacity_(capacity) {
    // a bounded table's entries are reserved once for the most it holds (one
    // over the capacity, before a pruning): growing by doubling copied every
    // entry several times in the first intervals and briefly held two copies.
    // It is address space only, pages come as keys do; where even that is
    // refused, the table grows as it needs to.
    if (capacity_) {
        try {
            keys_.reserve(capacity_ + 1);
        } catch (const std::bad_alloc&) {
        }
    }
    reindex(64);
}

std::size_t KeyTable::find(std::uint32_t target, std::uint64_t hash) const {
    const std::size_t mask = index_.size() - 1;
    // the hash comes from the kernel's key hash already; mix in the target
    std::size_t i =
        static_cast<std::size_t>(
            (hash ^ (std::uint64_t{target} * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull >> 20) &
        mask;
    for (;; i = (i + 1) & mask) {
        const Slot& at = index_[i];
        if (!at.pos || (at.hash == hash && at.target == target)) return i;
    }
}

void KeyTable::reindex(std::size_t slots) {
    index_.assign(slots, Slot{});
    for (std::uint32_t i = 0; i < keys_.size(); ++i)
        index_[find(keys_[i].target, keys_[i].hash)] = {keys_[i].hash, keys_[i].target, i + 1};
}

void KeyTable::add(const KeyStats& k) {
    const std::size_t slot = find(k.target, k.hash);
    if (index_[slot].pos) {
        keys_[index_[slot].pos - 1].merge(k);
        return;
    }
    if (k.ops() < admit_ops_) {
        // less busy than every key the last pruning kept: it would be among
        // the first forgotten at the next one, so it is forgotten now (under
        // many evenly quiet keys this spares a pruning per interval)
        ++forgotten_;
        return;
    }
    keys_.push_back(k);
    index_[slot] = {k.hash, k.target, static_cast<std::uint32_t>(keys_.size())};
    if (capacity_ && keys_.size() > capacity_)
        forget_least_busy();
    else if (keys_.size() * 2 > index_.size())
        reindex(index_.size() * 2);
}

void KeyTable::forget_least_busy() {
    // keep the busier half (ties: by id, so runs repeat); the key just added
    // may go too. Ranked on copies of what the ranking reads, so it does not
    // walk the big entries, then the kept entries move once.
    const std::size_t keep = std::max<std::size_t>(capacity_ / 2, 1);
    struct Rank {
        std::uint64_t ops, hash;
        std::uint32_t target, at;
    };
    std::vector<Rank> order(keys_.size());
    for (std::uint32_t i = 0; i < order.size(); ++i)
        order[i] = {keys_[i].ops(), keys_[i].hash, keys_[i].target, i};
    auto busier = [](const Rank& a, const Rank& b) {
        if (a.ops != b.ops) return a.ops > b.ops;
        return a.target != b.target ? a.target < b.target : a.hash < b.hash;
    };
    std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep - 1), order.end(),
                     busier);
    admit_ops_ = order[keep - 1].ops;
    std::vector<char> kept(keys_.size(), 0);
    for (std::size_t i = 0; i < keep; ++i) kept[order[i].at] = 1;
    std::size_t to = 0;
    for (std::size_t from = 0; from < keys_.size(); ++from) {
        if (!kept[from]) continue;
        if (to != from) keys_[to] = std::move(keys_[from]);
        ++to;
    }
    forgotten_ += keys_.size() - to;
    keys_.resize(to);
    reindex(index_.size());
}

void KeyTable::name_keys(std::vector<KeyStats>& keys) const {
    for (auto& k : keys) {
        if (k.named) continue;
        const std::uint32_t at = index_[find(k.target, k.hash)].pos;
        if (!at) continue;
        const KeyStats& known = keys_[at - 1];
        if (!known.named) continue;
        k.key = known.key;
        k.key_len = known.key_len;
        k.truncated = known.truncated;
        k.named = true;
    }
}

std::vector<KeyStats> KeyTable::all() const {
    return keys_;
}

}  // namespace keyscope
