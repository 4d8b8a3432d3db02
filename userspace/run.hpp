// `keyscope run`: observe targets, print every interval, summarise on exit.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "act/enforcer.hpp"
#include "bpf/probes.hpp"
#include "detect/detect_config.hpp"
#include "output/key_format.hpp"
#include "output/command_queue.hpp"
#include "output/snapshot.hpp"

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
    bool bpf_stats = false;  // time the BPF programs (kernel bpf_stats) for /metrics and top
    bool detect = true;  // run the hotspot engine
    DetectConfig detect_config;
    ActConfig act;  // mitigation: automatic rules from hotspots, allowlist, circuit breaker
    std::string http = "127.0.0.1:9464";  // HOST:PORT of /metrics, /healthz, /api; "off" = none
};

/// Splits "HOST:PORT" (an IP address) for --http; throws a one-line Error.
std::pair<std::string, int> parse_listen_address(const std::string& text);

/// For `keyscope top`: run the same loop without printing, publishing every
/// snapshot to `board`, until `stop` is set. `on_ready` runs once the probes
/// are attached (errors before that are thrown from run() as usual).
struct RunHooks {
    SnapshotBoard* board = nullptr;
    std::atomic<bool>* stop = nullptr;
    std::function<void()> on_ready;
    std::size_t snapshot_keys = 0;  // keys per snapshot (0 = --top)
    CommandQueue* commands = nullptr;  // rule requests from the embedding view (e.g. top's `t`)
};

int run(const RunOptions& opts, const RunHooks& hooks = {});

}  // namespace keyscope
