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

    explicit SparseLatency(const LatencyHistogram& h) {
        for (std::uint32_t b = 0; b < h.size(); ++b) {
            if (!h[b]) continue;
            bucket[n++] = static_cast<std::uint8_t>(b);
            total += h[b];
        }
    }
};

struct Group {
    EntitySample s;
    LatencyHistogram lat{};

    void add(const KeyStats& k, const SparseLatency& sparse) {
        s.reads += k.reads;
        s.writes += k.writes;
        s.errors += k.errors;
        s.bytes_out += k.bytes_out;
        s.max_value = std::max(s.max_value, k.max_value);
        s.requests += k.ops();
        for (std::uint32_t i = 0; i < sparse.n; ++i) lat[sparse.bucket[i]] += k.lat[sparse.bucket[i]];
    }
};

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

std::vector<EntitySample> roll_up(const IntervalData& data, const PrefixRules& rules,
                                  std::vector<LatencyHistogram>* server_lat) {
    std::uint32_t ntargets = static_cast<std::uint32_t>(data.per_target.size());
    for (const auto& k : data.keys) ntargets = std::max(ntargets, k.target + 1);

    Groups prefixes, slots, servers;
    std::vector<std::int32_t> server_index(ntargets, kNone);
    std::vector<std::vector<std::int32_t>> slot_index(ntargets);  // [target][slot], made on first use
    std::unordered_map<std::string, std::int32_t> prefix_index;   // target bytes + prefix
    std::string prefix, id;                                       // reused buffers: no allocation per key
    // at most one group per key (and slots are bounded): no growing copies of histograms
    slots.reserve(std::min<std::size_t>(data.keys.size(), std::size_t{kSlots} * ntargets));
    prefixes.reserve(std::min<std::size_t>(data.keys.size(), 1024));
    servers.reserve(ntargets);

    std::vector<EntitySample> out;
    out.reserve(data.keys.size());
    for (const auto& k : data.keys) {
        EntitySample& e = out.emplace_back();
        e.kind = EntityKind::key;
        e.target = k.target;
        e.name = k.key;
        e.truncated = k.truncated;
        e.hash = k.hash;
        e.reads = k.reads;
        e.writes = k.writes;
        e.errors = k.errors;
        e.bytes_out = k.bytes_out;
        e.max_value = k.max_value;
        e.requests = k.ops();
        const SparseLatency sparse(k.lat);
        e.lat_n = sparse.total;
        e.p99_us = quantile_us(k.lat, 0.99, sparse.total);

        servers.at(server_index[k.target], EntityKind::server, k.target, "").add(k, sparse);
        if (!k.named) continue;
        if (key_prefix_into(k.key, rules, prefix)) {
            id.assign(reinterpret_cast<const char*>(&k.target), sizeof k.target);
            id += prefix;
            auto [it, fresh] = prefix_index.try_emplace(id, kNone);
            prefixes.at(it->second, EntityKind::prefix, k.target, prefix).add(k, sparse);
        }
        // a truncated key's slot is only known when its hash tag is in the stored bytes
        if (!k.truncated || k.key.find('}') != std::string::npos) {
            auto& index = slot_index[k.target];
            if (index.empty()) index.assign(kSlots, kNone);
            std::uint16_t slot = cluster_slot(k.key);
            auto& g = slots.at(index[slot], EntityKind::slot, k.target, "");
            if (g.s.name.empty()) g.s.name = std::to_string(slot);
            g.add(k, sparse);
        }
    }
    // servers: requests and errors include keyless commands
    for (std::uint32_t t = 0; t < data.per_target.size(); ++t) {
        const auto& tot = data.per_target[t];
        if (tot.requests == 0 && tot.replies == 0) continue;
        auto& s = servers.at(server_index[t], EntityKind::server, t, "").s;
        s.requests = tot.requests;
        s.errors = tot.errors;
    }
    if (server_lat) server_lat->assign(ntargets, LatencyHistogram{});
    out.reserve(out.size() + prefixes.list().size() + slots.list().size() + servers.list().size());
    for (Groups* kind : {&prefixes, &slots, &servers})
        for (auto& g : kind->list()) {
            set_latency(g.s, g.lat);
            if (server_lat && g.s.kind == EntityKind::server) (*server_lat)[g.s.target] = g.lat;
            out.push_back(std::move(g.s));
        }
    return out;
}

}  // namespace keyscope
