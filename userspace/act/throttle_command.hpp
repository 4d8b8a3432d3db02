// `keyscope throttle add|list|rm`: manual mitigation rules, through a running
// daemon's local API (/api/rules).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace keyscope {

class ThrottleCommand {
public:
    /// Adds `throttle` and its sub-commands to `app`.
    void add_to(CLI::App& app);
    bool chosen() const { return cmd_ && cmd_->parsed(); }
    /// Runs the chosen sub-command; throws keyscope::Error on failure.
    int run() const;

private:
    CLI::App *cmd_ = nullptr, *add_ = nullptr, *list_ = nullptr, *rm_ = nullptr;
    std::string connect_ = "127.0.0.1:9464";
    std::string key_, prefix_, client_, server_, ttl_, reason_, output_ = "text";
    bool connections_ = false, dry_run_ = false;
    double rate_ = 0, burst_ = 0, shed_ = 0;
    unsigned id_ = 0;
};

}  // namespace keyscope
