// The Redis command table: which commands read or write which arguments as
// keys. Loaded into the BPF map `ks_cmds` at start-up and used by host tests.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

extern "C" {
#include "keyscope_abi.h"
}

namespace keyscope::proto {

struct RedisCommand {
    std::string_view name;  // upper case
    ks_cmd_class cls;
    int first_key;
    int last_key;
    int step;
};

/// Every command of the generated table (Redis 7.0 `COMMAND`).
std::span<const RedisCommand> redis_commands();

/// FNV-1a 64 of the upper-cased name: the key of the BPF command map.
std::uint64_t command_hash(std::string_view name);

/// The spec the parser needs, as stored in the BPF map.
ks_cmd_spec to_spec(const RedisCommand& cmd);

/// Looks a command up by name hash (host side of the BPF map lookup).
std::optional<ks_cmd_spec> find_command(std::uint64_t name_hash);

}  // namespace keyscope::proto
