// Finds local listeners and the processes behind them, from /proc.
#pragma once

#include <vector>

#include "target/target.hpp"

namespace keyscope {

/// Redis-compatible servers (redis-server, valkey-server, keydb-server) and memcached
/// listening on TCP on this host, one target per listening socket.
std::vector<Target> discover_servers();

/// The servers of the given processes; throws an Error naming a pid that serves none.
std::vector<Target> discover_servers(const std::vector<int>& pids);

/// True while `pid` exists and (if `comm` is set) still runs that program.
bool process_alive(int pid, const std::string& comm);

/// The process now listening for `t` (a restarted server has a new one);
/// pid 0 if none.
Target find_server_process(const Target& t);

/// Fills Target::pid / comm of each target from the listening socket that
/// serves it (same port, same or any address). Leaves 0 if none is found.
void resolve_pids(std::vector<Target>& targets);

}  // namespace keyscope
