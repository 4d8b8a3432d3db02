// `keyscope run`: observe targets, print every interval, summarise on exit.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "bpf/probes.hpp"
#include "detect/detect_config.hpp"
#include "output/key_format.hpp"

namespace keyscope {

enum class OutputFormat { text, json };

struct RunOptions {
    std::vector<std::string> targets;  // URLs; empty = auto-detect
    std::vector<int> pids;             // extra processes for the syscall path
    std::chrono::milliseconds interval{2000};
    std::chrono::milliseconds duration{0};  // 0 = until SIGINT/SIGTERM
    std::size_t top = 10;
    OutputFormat output = OutputFormat::text;
    ProbeKind probe = ProbeKind::socket;
    Redaction redact = Redaction::none;
    std::uint32_t max_keys = 16384;
    bool detect = true;  // run the hotspot engine
    DetectConfig detect_config;
    std::string http = "127.0.0.1:9464";  // HOST:PORT of /metrics, /healthz, /api; "off" = none
};

/// Splits "HOST:PORT" (an IP address) for --http; throws a one-line Error.
std::pair<std::string, int> parse_listen_address(const std::string& text);

int run(const RunOptions& opts);

}  // namespace keyscope
