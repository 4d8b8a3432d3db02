#include "detect/entities.hpp"

#include <algorithm>
#include <array>
#include <unordered_map>

namespace keyscope {

const char* entity_name(EntityKind kind) {
    switch (kind) {
        case EntityKind::key:
            return "key";
        case EntityKind::prefix:
            return "prefix";
        case EntityKind::slot:
            return "slot";
        case EntityKind::server:
            return "server";
    }
    return "?";
}

bool glob_match(std::string_view p, std::string_view t) {
    // iterative matcher with one backtrack point: linear in practice, no recursion
    std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
    while (ti < t.size()) {
        if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
            ++pi, ++ti;
        } else if (pi < p.size() && p[pi] == '*') {
            star = pi++;
            mark = ti;
        } else if (star != std::string_view::npos) {
            pi = star + 1;
            ti = ++mark;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi] == '*') ++pi;
    return pi == p.size();
}

bool key_prefix_into(std::string_view key, const PrefixRules& rules, std::string& out) {
    for (const auto& pat : rules.patterns)
        if (glob_match(pat, key)) {
            out.assign(pat);
            return true;
        }
    if (rules.depth == 0) return false;
    std::size_t pos = 0;
    for (unsigned seg = 0; seg < rules.depth; ++seg) {
        pos = key.find(rules.delimiter, pos);
        if (pos == std::string_view::npos) return false;
        ++pos;
    }
    out.assign(key.substr(0, pos));
    out += '*';
    return true;
}

std::string key_prefix(std::string_view key, const PrefixRules& rules) {
    std::string out;
    return key_prefix_into(key, rules, out) ? out : std::string();
}

namespace {

// CRC16-CCITT (XMODEM): poly 0x1021, init 0, as the cluster spec defines; a
// byte at a time from a table, since every key of every interval is hashed
constexpr std::array<std::uint16_t, 256> kCrc16Table = [] {
    std::array<std::uint16_t, 256> t{};
    for (unsigned b = 0; b < 256; ++b) {
        auto crc = static_cast<std::uint16_t>(b << 8);
        for (int i = 0; i < 8; ++i)
            crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                 : static_cast<std::uint16_t>(crc << 1);
        t[b] = crc;
    }
    return t;
}();

}  // namespace

std::uint16_t cluster_slot(std::string_view key) {
    auto open = key.find('{');
    if (open != std::string_view::npos) {
        auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
    }
    std::uint16_t crc = 0;
    for (unsigned char c : key)
        crc = static_cast<std::uint16_t>((crc << 8) ^ kCrc16Table[((crc >> 8) ^ c) & 0xff]);
    return crc & 16383;
}

namespace {

constexpr std::uint32_t kSlots = 16384;
constexpr std::int32_t kNone = -1;

// A key's latency histogram as its non-empty buckets: a key has a few, and
// adding only those keeps the groups' histograms out of the cache misses.
struct SparseLatency {
    std::array<std::uint8_t, KS_LAT_BUCKETS> bucket{};
    std::uint32_t n = 0;
    std::uint64_t total = 0;

    explicit SparseLatency(const KeyStats& k) {
        const LatencyHistogram& h = k.lat;
        for (std::uint32_t b = k.lat_lo; b < k.lat_hi; ++b) {
            if (!h[b]) continue;
            bucket[n++] = static_cast<std::uint8_t>(b);
            total += h[b];
        }
    }
    // quantile_us(h, q) walking only the non-empty buckets
    double quantile_us(const LatencyHistogram& h, double q) const {
        if (total == 0) return 0;
        const std::uint64_t rank = quantile_rank(q, total);
        std::uint64_t seen = 0;
        for (std::uint32_t i = 0; i < n; ++i) {
            seen += h[bucket[i]];
            if (seen >= rank) return bucket_mid_us(bucket[i]);
        }
        return 0;
    }
};

// Most slots (and many prefixes) get a key or two in an interval, each with
// a few latency buckets, so a group keeps its first few buckets inline and
// takes a histogram of its own (from a pool kept across intervals) only when
// they overflow: no zeroing and scanning of a 97-bucket histogram per slot.
struct Group {
    static constexpr std::uint32_t kInline = 8;
    EntitySample s;
    std::uint32_t n_inline = 0;                  // buckets used in bucket[] and count[]
    std::int32_t hist = kNone;                   // its own histogram in the pool, once they overflow
    std::array<std::uint8_t, kInline> bucket{};  // inline buckets, in bucket order
    std::array<std::uint64_t, kInline> count{};
};

class HistogramPool {
public:
    void clear() { used_ = 0; }
    std::int32_t take() {
        if (used_ < hists_.size())
            hists_[used_].fill(0);
        else
            hists_.emplace_back();
        return static_cast<std::int32_t>(used_++);
    }
    LatencyHistogram& operator[](std::int32_t i) { return hists_[static_cast<std::size_t>(i)]; }

private:
    std::vector<LatencyHistogram> hists_;
    std::size_t used_ = 0;
};

// One key's buckets into its group: into the inline ones while they hold
// them, else (moving the inline ones first) into a pooled histogram.
void add_latency(Group& g, HistogramPool& pool, const LatencyHistogram& from, const SparseLatency& sparse) {
    for (std::uint32_t i = 0; i < sparse.n; ++i) {
        const std::uint8_t b = sparse.bucket[i];
        const std::uint64_t c = from[b];
        if (g.hist != kNone) {
            pool[g.hist][b] += c;
            continue;
        }
        std::uint32_t j = 0;
        while (j < g.n_inline && g.bucket[j] < b) ++j;
        if (j < g.n_inline && g.bucket[j] == b) {
            g.count[j] += c;
        } else if (g.n_inline < Group::kInline) {
            // keep them in bucket order: the p99 walks them in that order
            for (std::uint32_t k = g.n_inline; k > j; --k) {
                g.bucket[k] = g.bucket[k - 1];
                g.count[k] = g.count[k - 1];
            }
            g.bucket[j] = b;
            g.count[j] = c;
            ++g.n_inline;
        } else {
            g.hist = pool.take();
            LatencyHistogram& h = pool[g.hist];
            for (std::uint32_t k = 0; k < g.n_inline; ++k) h[g.bucket[k]] = g.count[k];
            h[b] += c;
        }
    }
}

void add_to(Group& g, HistogramPool& pool, const KeyStats& k, const SparseLatency& sparse) {
    g.s.reads += k.reads;
    g.s.writes += k.writes;
    g.s.errors += k.errors;
    g.s.bytes_out += k.bytes_out;
    g.s.max_value = std::max(g.s.max_value, k.max_value);
    g.s.requests += k.ops();
    add_latency(g, pool, k.lat, sparse);
}

// A group's operations with a latency and their p99 from its inline buckets.
void set_inline_latency(Group& g) {
    std::uint64_t total = 0;
    for (std::uint32_t i = 0; i < g.n_inline; ++i) total += g.count[i];
    g.s.lat_n = total;
    g.s.p99_us = 0;
    if (total == 0) return;
    const std::uint64_t rank = quantile_rank(0.99, total);
    std::uint64_t seen = 0;
    for (std::uint32_t i = 0; i < g.n_inline; ++i) {
        seen += g.count[i];
        if (seen >= rank) {
            g.s.p99_us = bucket_mid_us(g.bucket[i]);
            return;
        }
    }
}

void set_latency(EntitySample& s, const LatencyHistogram& h) {
    s.lat_n = 0;
    for (auto c : h) s.lat_n += c;
    s.p99_us = quantile_us(h, 0.99, s.lat_n);
}

// Groups of one kind, found by index (servers, slots) or by name (prefixes),
// kept in the order they first appear so the output is deterministic.
class Groups {
public:
    void reserve(std::size_t n) { list_.reserve(n); }
    void clear() { list_.clear(); }  // keeps the capacity for the next interval
    Group& at(std::int32_t& index, EntityKind kind, std::uint32_t target, std::string_view name) {
        if (index == kNone) {
            index = static_cast<std::int32_t>(list_.size());
            Group& g = list_.emplace_back();
            g.s.kind = kind;
            g.s.target = target;
            g.s.name.assign(name);
        }
        return list_[static_cast<std::size_t>(index)];
    }
    std::vector<Group>& list() { return list_; }

private:
    std::vector<Group> list_;
};

}  // namespace

// How many keys ahead the roll-up asks for each step of a key's memory.
constexpr std::size_t kAhead = 4;
constexpr std::uint32_t kSlotUnknown = ~0u;

struct RollUp::Buffers {
    Groups prefixes, slots, servers;
    HistogramPool hists;
    std::vector<std::int32_t> server_index;
    std::vector<std::vector<std::int32_t>> slot_index;           // [target][slot], made on first use
    std::unordered_map<std::string, std::int32_t> prefix_index;  // target bytes + prefix
    std::string prefix, id;
};

RollUp::RollUp(PrefixRules rules) : rules_(std::move(rules)), buf_(std::make_unique<Buffers>()) {}
RollUp::~RollUp() = default;

const std::vector<EntitySample>& RollUp::operator()(const IntervalData& data,
                                                    std::vector<LatencyHistogram>* server_lat) {
    std::uint32_t ntargets = static_cast<std::uint32_t>(data.per_target.size());

    Buffers& b = *buf_;
    b.prefixes.clear();
    b.slots.clear();
    b.servers.clear();
    b.prefix_index.clear();
    b.hists.clear();
    b.server_index.assign(ntargets, kNone);
    if (b.slot_index.size() < ntargets) b.slot_index.resize(ntargets);
    for (auto& index : b.slot_index)
        if (!index.empty()) index.assign(kSlots, kNone);
    // at most one group per key, and slots are bounded
    b.slots.reserve(std::min<std::size_t>(data.keys.size(), std::size_t{kSlots} * ntargets));
    b.prefixes.reserve(std::min<std::size_t>(data.keys.size(), 1024));
    b.servers.reserve(ntargets);

    // the samples of the last call are overwritten in place: their names keep their buffers
    std::size_t n = 0;
    auto next = [&]() -> EntitySample& { return n < out_.size() ? out_[n++] : (++n, out_.emplace_back()); };
    // Under many keys each key is a miss in its entry, its name, its latency
    // buckets and its slot's group, one after another: the drain left few of
    // them in the cache. So each is asked for a few keys ahead, in the order
    // they become known: the entry, then its name and buckets, then (from the
    // name) its slot's group. kSlotUnknown: no slot group for that key.
    const std::vector<KeyStats>& keys = data.keys;
    auto slot_of = [&](const KeyStats& k) -> std::uint32_t {
        // a truncated key's slot is only known when its hash tag is in the stored bytes
        if (!k.named || (k.truncated && k.key.find('}') == std::string::npos)) return kSlotUnknown;
        return cluster_slot(k.key);
    };
    std::array<std::uint32_t, kAhead> slot_ahead{};
    for (std::size_t i = 0; i < std::min(keys.size(), kAhead); ++i) slot_ahead[i] = slot_of(keys[i]);
    for (std::size_t i = 0; i < keys.size(); ++i) {
        if (i + 3 * kAhead < keys.size()) __builtin_prefetch(&keys[i + 3 * kAhead]);
        if (i + 2 * kAhead < keys.size()) {
            const KeyStats& a = keys[i + 2 * kAhead];
            __builtin_prefetch(a.key.data());
            if (a.lat_lo < a.lat_hi) {  // its buckets span a line or two
                __builtin_prefetch(&a.lat[a.lat_lo]);
                __builtin_prefetch(&a.lat[a.lat_hi - 1]);
            }
        }
        const KeyStats& k = keys[i];
        const std::uint32_t slot = slot_ahead[i % kAhead];
        if (i + kAhead < keys.size()) {
            const KeyStats& a = keys[i + kAhead];
            std::uint32_t s_ahead = slot_ahead[i % kAhead] = slot_of(a);
            if (s_ahead != kSlotUnknown && a.target < b.slot_index.size() &&
                !b.slot_index[a.target].empty()) {
                std::int32_t g = b.slot_index[a.target][s_ahead];
                if (g != kNone) __builtin_prefetch(&b.slots.list()[static_cast<std::size_t>(g)]);
            }
        }
        EntitySample& e = next();
        const SparseLatency sparse(k);
        e.kind = EntityKind::key;
        e.target = k.target;
        e.name.assign(k.key);
        e.truncated = k.truncated;
        e.hash = k.hash;
        e.reads = k.reads;
        e.writes = k.writes;
        e.errors = k.errors;
        e.bytes_out = k.bytes_out;
        e.max_value = k.max_value;
        e.requests = k.ops();
        e.lat_n = sparse.total;
        e.p99_us = sparse.quantile_us(k.lat, 0.99);

        if (k.target >= ntargets) {  // a key of a target without counters: rare, so checked here
            ntargets = k.target + 1;
            b.server_index.resize(ntargets, kNone);
            if (b.slot_index.size() < ntargets) b.slot_index.resize(ntargets);
        }
        add_to(b.servers.at(b.server_index[k.target], EntityKind::server, k.target, ""), b.hists, k, sparse);
        if (!k.named) continue;
        if (key_prefix_into(k.key, rules_, b.prefix)) {
            b.id.assign(reinterpret_cast<const char*>(&k.target), sizeof k.target);
            b.id += b.prefix;
            auto [it, fresh] = b.prefix_index.try_emplace(b.id, kNone);
            add_to(b.prefixes.at(it->second, EntityKind::prefix, k.target, b.prefix), b.hists, k, sparse);
        }
        if (slot != kSlotUnknown) {
            auto& index = b.slot_index[k.target];
            if (index.empty()) index.assign(kSlots, kNone);
            auto& g = b.slots.at(index[slot], EntityKind::slot, k.target, "");
            if (g.s.name.empty()) g.s.name = std::to_string(slot);
            add_to(g, b.hists, k, sparse);
        }
    }
    // servers: requests and errors include keyless commands
    for (std::uint32_t t = 0; t < data.per_target.size(); ++t) {
        const auto& tot = data.per_target[t];
        if (tot.requests == 0 && tot.replies == 0) continue;
        auto& s = b.servers.at(b.server_index[t], EntityKind::server, t, "").s;
        s.requests = tot.requests;
        s.errors = tot.errors;
    }
    if (server_lat) server_lat->assign(ntargets, LatencyHistogram{});
    for (Groups* kind : {&b.prefixes, &b.slots, &b.servers})
        for (auto& g : kind->list()) {
            if (g.hist != kNone)
                set_latency(g.s, b.hists[g.hist]);
            else
                set_inline_latency(g);
            if (server_lat && g.s.kind == EntityKind::server) {
                LatencyHistogram& h = (*server_lat)[g.s.target];
                if (g.hist != kNone)
                    h = b.hists[g.hist];
                else
                    for (std::uint32_t i = 0; i < g.n_inline; ++i) h[g.bucket[i]] = g.count[i];
            }
            next() = std::move(g.s);
        }
    out_.resize(n);
    return out_;
}

std::vector<EntitySample> roll_up(const IntervalData& data, const PrefixRules& rules,
                                  std::vector<LatencyHistogram>* server_lat) {
    RollUp once(rules);
    once(data, server_lat);
    return once.release();
}

}  // namespace keyscope
