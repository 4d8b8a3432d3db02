// Follows target servers across restarts: the syscall path knows a server by
// its pid, so a restarted server (new pid, same port) must be re-registered.
#pragma once

#include <cstddef>
#include <vector>

#include "target/target.hpp"

namespace keyscope {

struct TargetChange {
    std::size_t id;  // index into the targets
    int old_pid;
    int new_pid;  // 0: the process exited and nothing listens yet
};

class RestartWatcher {
public:
    /// `targets` is updated in place when a server comes back with a new pid.
    explicit RestartWatcher(std::vector<Target>& targets, double rescan_s = 1.0);

    /// Checks every target's process (cheap: kill(pid, 0)); looks for the new
    /// listener (a /proc scan) at most every `rescan_s` seconds while one is gone.
    std::vector<TargetChange> poll(double now);

private:
    std::vector<Target>& targets_;
    std::vector<bool> gone_;
    double rescan_s_;
    double last_scan_ = -1e300;
};

}  // namespace keyscope
