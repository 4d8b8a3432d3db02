#include "target/watch.hpp"

#include "target/discover.hpp"

namespace keyscope {

RestartWatcher::RestartWatcher(std::vector<Target>& targets, double rescan_s)
    : targets_(targets), gone_(targets.size(), false), rescan_s_(rescan_s) {}

std::vector<TargetChange> RestartWatcher::poll(double now) {
    std::vector<TargetChange> changes;
    bool may_scan = now - last_scan_ >= rescan_s_;
    for (std::size_t id = 0; id < targets_.size(); ++id) {
        Target& t = targets_[id];
        if (!gone_[id]) {
            if (t.pid == 0 || process_alive(t.pid, t.comm)) continue;
            gone_[id] = true;
            changes.push_back({id, t.pid, 0});
        }
        if (!may_scan) continue;
        last_scan_ = now;
        Target found = find_server_process(t);
        if (found.pid == 0 || found.pid == t.pid) continue;
        changes.push_back({id, t.pid, found.pid});
        t.pid = found.pid;
        t.comm = found.comm;
        gone_[id] = false;
    }
    return changes;
}

}  // namespace keyscope
