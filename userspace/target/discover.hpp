// Finds local listeners and the processes behind them, from /proc.
#pragma once

#include <vector>

#include "target/target.hpp"

namespace keyscope {

/// Redis-compatible servers (redis-server, valkey-server, keydb-server)
/// listening on TCP on this host, one target per listening socket.
std::vector<Target> discover_redis();

/// Fills Target::pid / comm of each target from the listening socket that
/// serves it (same port, same or any address). Leaves 0 if none is found.
void resolve_pids(std::vector<Target>& targets);

}  // namespace keyscope
