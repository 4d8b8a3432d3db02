#include "proto/redis_commands.hpp"

#include <algorithm>
#include <unordered_map>

extern "C" {
#include "proto/resp.h"
}

namespace keyscope::proto {
namespace {

constexpr RedisCommand kCommands[] = {
#include "proto/redis_commands.inc"
};

}  // namespace

std::span<const RedisCommand> redis_commands() {
    return kCommands;
}

std::uint64_t command_hash(std::string_view name) {
    std::uint64_t h = KS_FNV_OFFSET;
    for (char c : name) h = ks_fnv_byte(h, ks_upper(static_cast<__u8>(c)));
    return h;
}

ks_cmd_spec to_spec(const RedisCommand& cmd) {
    ks_cmd_spec spec{};
    spec.cls = static_cast<__u8>(cmd.cls);
    spec.first_key = static_cast<__s8>(cmd.first_key);
    spec.last_key = static_cast<__s8>(std::clamp(cmd.last_key, -128, 127));
    spec.step = static_cast<__u8>(std::max(cmd.step, 1));
    return spec;
}

std::optional<ks_cmd_spec> find_command(std::uint64_t name_hash) {
    static const auto* index = [] {
        auto* m = new std::unordered_map<std::uint64_t, ks_cmd_spec>();
        for (const auto& c : kCommands) m->emplace(command_hash(c.name), to_spec(c));
        return m;
    }();
    auto it = index->find(name_hash);
    if (it == index->end()) return std::nullopt;
    return it->second;
}

}  // namespace keyscope::proto
