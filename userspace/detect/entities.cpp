#include "detect/entities.hpp"

#include <algorithm>
#include <map>
#include <tuple>

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

std::string key_prefix(std::string_view key, const PrefixRules& rules) {
    for (const auto& pat : rules.patterns)
        if (glob_match(pat, key)) return pat;
    if (rules.depth == 0) return "";
    std::size_t pos = 0;
    for (unsigned seg = 0; seg < rules.depth; ++seg) {
        pos = key.find(rules.delimiter, pos);
        if (pos == std::string_view::npos) return "";
        ++pos;
    }
    return std::string(key.substr(0, pos)) + "*";
}

std::uint16_t cluster_slot(std::string_view key) {
    auto open = key.find('{');
    if (open != std::string_view::npos) {
        auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
    }
    std::uint16_t crc = 0;  // CRC16-CCITT (XMODEM): poly 0x1021, init 0, as the cluster spec defines
    for (unsigned char c : key) {
        crc ^= static_cast<std::uint16_t>(c) << 8;
        for (int i = 0; i < 8; ++i)
            crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021) : crc << 1;
    }
    return crc & 16383;
}

void EntitySample::add(const KeyStats& k) {
    reads += k.reads;
    writes += k.writes;
    errors += k.errors;
    bytes_out += k.bytes_out;
    max_value = std::max(max_value, k.max_value);
    requests += k.ops();
    for (std::size_t b = 0; b < lat.size(); ++b) lat[b] += k.lat[b];
}

std::vector<EntitySample> roll_up(const IntervalData& data, const PrefixRules& rules) {
    std::vector<EntitySample> out;
    using Id = std::tuple<EntityKind, std::uint32_t, std::string>;
    std::map<Id, EntitySample> groups;
    auto group = [&](EntityKind kind, std::uint32_t target, std::string name) -> EntitySample& {
        auto [it, fresh] = groups.try_emplace(Id{kind, target, name});
        if (fresh) {  // most calls find their group: name it once
            it->second.kind = kind;
            it->second.target = target;
            it->second.name = std::move(name);
        }
        return it->second;
    };
    for (const auto& k : data.keys) {
        EntitySample e;
        e.kind = EntityKind::key;
        e.target = k.target;
        e.name = k.key;
        e.truncated = k.truncated;
        e.hash = k.hash;
        e.add(k);
        out.push_back(std::move(e));
        group(EntityKind::server, k.target, "").add(k);
        if (!k.named) continue;
        if (auto p = key_prefix(k.key, rules); !p.empty()) group(EntityKind::prefix, k.target, p).add(k);
        // a truncated key's slot is only known when its hash tag is in the stored bytes
        if (!k.truncated || k.key.find('}') != std::string::npos)
            group(EntityKind::slot, k.target, std::to_string(cluster_slot(k.key))).add(k);
    }
    // servers: requests and errors include keyless commands
    for (std::uint32_t t = 0; t < data.per_target.size(); ++t) {
        const auto& tot = data.per_target[t];
        if (tot.requests == 0 && tot.replies == 0) continue;
        auto& s = group(EntityKind::server, t, "");
        s.requests = tot.requests;
        s.errors = tot.errors;
    }
    for (auto& [id, e] : groups) out.push_back(std::move(e));
    return out;
}

}  // namespace keyscope
