// The flags `keyscope run` and `keyscope top` share: targets, capture path,
// redaction, detection. Parsed text stays here until resolve() turns it into
// RunOptions, so every bad value gets the same one-line error in both.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "run.hpp"

namespace keyscope {

class ObserveFlags {
public:
    /// Adds the shared flags to `cmd`; `interval` is its default interval.
    void add_to(CLI::App* cmd, const std::string& interval);
    /// Validates everything; throws keyscope::Error (exit code 2) naming the bad flag.
    RunOptions resolve() const;

    RunOptions opts;  // fields CLI11 fills directly

private:
    std::string interval_, duration_, probe_ = "socket", redact_ = "none";
    bool no_detect_ = false;
    std::string window_ = "60s", history_ = "10m", min_history_ = "30s", quiet_ = "10s", delimiter_ = ":";
    std::vector<std::string> params_, overrides_;
    unsigned prefix_depth_ = 1;
    std::string act_ = "off", act_action_ = "throttle", rule_ttl_, act_cooldown_ = "10s";
    std::vector<std::string> throttle_rates_, shed_shares_;
};

}  // namespace keyscope
