#include "collect/stats.hpp"

#include <algorithm>

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
    for (std::size_t i = 0; i < lat.size(); ++i) lat[i] += o.lat[i];
}

KeyStats KeyStats::from_bpf(const ks_key_ref& ref, const ks_key_stats& s) {
    KeyStats k;
    k.target = ref.target;
    k.hash = ref.hash;
    k.named = !(s.flags & KS_KEYF_NONAME);
    k.key_len = s.key_len;
    k.truncated = (s.flags & KS_KEYF_TRUNCATED) != 0;
    if (k.named)
        k.key.assign(reinterpret_cast<const char*>(s.key), std::min<std::uint32_t>(s.key_len, KS_KEY_MAX));
    k.reads = s.reads;
    k.writes = s.writes;
    k.errors = s.errors;
    k.redirects = s.redirects;
    k.bytes_in = s.bytes_in;
    k.bytes_out = s.bytes_out;
    k.max_value = s.max_value;
    k.hits = s.hits;
    for (std::size_t i = 0; i < k.lat.size(); ++i) k.lat[i] = s.lat[i];
    return k;
}

double quantile_us(const LatencyHistogram& h, double q) {
    std::uint64_t total = 0;
    for (auto c : h) total += c;
    if (total == 0) return 0;
    // the rank of the quantile, 1-based: the smallest value with q of samples at or below
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total) + 0.999999);
    rank = std::clamp<std::uint64_t>(rank, 1, total);
    std::uint64_t seen = 0;
    for (std::uint32_t b = 0; b < h.size(); ++b) {
        seen += h[b];
        if (seen >= rank) {
            // middle of the bucket
            double lo = static_cast<double>(ks_lat_bucket_low(b));
            double hi = b + 1 < h.size() ? static_cast<double>(ks_lat_bucket_low(b + 1)) : lo * 1.25;
            return (lo + hi) / 2.0 / 1000.0;
        }
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

void KeyTable::add(const KeyStats& k) {
    auto [it, inserted] = keys_.try_emplace(Id{k.target, k.hash}, k);
    if (!inserted) it->second.merge(k);
}

void KeyTable::name_keys(std::vector<KeyStats>& keys) const {
    for (auto& k : keys) {
        if (k.named) continue;
        auto it = keys_.find(Id{k.target, k.hash});
        if (it != keys_.end() && it->second.named) {
            k.key = it->second.key;
            k.key_len = it->second.key_len;
            k.truncated = it->second.truncated;
            k.named = true;
        }
    }
}

std::vector<KeyStats> KeyTable::all() const {
    std::vector<KeyStats> out;
    out.reserve(keys_.size());
    for (const auto& [id, k] : keys_) out.push_back(k);
    return out;
}

}  // namespace keyscope
