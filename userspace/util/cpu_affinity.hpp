// Keeps keyscope's daemon off the CPUs the observed servers are pinned to:
// its work each interval would otherwise take turns with a server's own
// thread, which is what an operator pins a server to protect.
#pragma once

#include <string>
#include <vector>

namespace keyscope {

/// The CPUs of `allowed` that are not in `server_cpus`; empty when there are
/// none, or when the servers may run on every CPU of `allowed` anyway.
std::vector<int> cpus_apart(const std::vector<int>& allowed, const std::vector<int>& server_cpus);

/// "0-3,6" for {0,1,2,3,6}.
std::string cpu_list(const std::vector<int>& cpus);

/// Moves the calling thread, and the threads it starts from then on, to the
/// CPUs none of the processes `pids` may run on. Changes nothing when a pid
/// is unknown (0) or its affinity cannot be read: that server could be on
/// any CPU. Returns a line saying what it did, or "" when it changed nothing.
std::string keep_off_server_cpus(const std::vector<int>& pids);

}  // namespace keyscope
