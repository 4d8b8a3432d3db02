#include "cli_options.hpp"

#include "util/duration.hpp"
#include "util/error.hpp"

namespace keyscope {

void ObserveFlags::add_to(CLI::App* cmd, const std::string& interval) {
    interval_ = interval;
    cmd->add_option("-t,--target", opts.targets,
                    "redis://HOST:PORT or memcached://HOST:PORT (repeatable); default: auto-detect");
    cmd->add_option("--pid", opts.pids,
                    "with --target: the process of each target (default: found); alone: observe the servers "
                    "these processes run");
    cmd->add_option("-i,--interval", interval_, "collection interval, e.g. 1s, 500ms")->capture_default_str();
    cmd->add_option("--probe", probe_, "capture path: socket (tc, default) or syscall (tp_btf)")
        ->capture_default_str();
    cmd->add_option("--redact", redact_, "show keys as none (as they are), hash, or prefix")
        ->capture_default_str();
    cmd->add_option("--max-keys", opts.max_keys, "distinct keys per interval held in the kernel")
        ->capture_default_str()
        ->check(CLI::Range(16, 4 * 1024 * 1024));
    cmd->add_flag(
        "--bpf-stats", opts.bpf_stats,
        "have the kernel time the BPF programs (BPF ns per request in top and /metrics; ~20 ns a run)");
    cmd->add_option("-d,--duration", duration_, "stop after this long (default: until Ctrl-C)");

    const char* g = "Detection";
    cmd->add_flag("--no-detect", no_detect_, "only count; do not look for hotspots")->group(g);
    cmd->add_option("--window", window_, "sliding window of the count rules")
        ->capture_default_str()
        ->group(g);
    cmd->add_option("--history", history_, "history kept for baselines")->capture_default_str()->group(g);
    cmd->add_option("--min-history", min_history_, "history a baseline needs before temporal rules fire")
        ->capture_default_str()
        ->group(g);
    cmd->add_option("--hotspot-quiet", quiet_, "a hotspot ends after this long below its threshold")
        ->capture_default_str()
        ->group(g);
    cmd->add_option("--prefix-depth", prefix_depth_,
                    "delimiter-separated segments of a key prefix (0 = none)")
        ->capture_default_str()
        ->check(CLI::Range(0, 16))
        ->group(g);
    cmd->add_option("--prefix-delimiter", delimiter_, "character between key segments")
        ->capture_default_str()
        ->group(g);
    cmd->add_option("--prefix", opts.detect_config.prefixes.patterns,
                    "key glob that names a prefix, e.g. 'session:*' (repeatable; before --prefix-depth)")
        ->group(g);
    cmd->add_option("--set", params_,
                    "detection parameter NAME=VALUE, e.g. read.rate=3000 (see keyscope params)")
        ->group(g);
    cmd->add_option("--override", overrides_,
                    "per-server or per-prefix parameters: 'server=HOST:PORT NAME=VALUE...' or "
                    "'prefix=GLOB NAME=VALUE...' (prefix beats server beats global)")
        ->group(g);
    cmd->allow_config_extras(CLI::config_extras_mode::error);
}

RunOptions ObserveFlags::resolve() const {
    RunOptions o = opts;
    o.interval = parse_duration(interval_, "--interval");
    if (!duration_.empty()) o.duration = parse_duration(duration_, "--duration");
    o.probe = parse_probe(probe_);
    o.redact = parse_redaction(redact_);
    o.detect = !no_detect_;
    auto& dc = o.detect_config;
    auto seconds = [](const std::string& text, const char* flag) {
        return std::chrono::duration<double>(parse_duration(text, flag)).count();
    };
    dc.window_s = seconds(window_, "--window");
    dc.history_s = seconds(history_, "--history");
    dc.min_history_s = seconds(min_history_, "--min-history");
    dc.quiet_s = seconds(quiet_, "--hotspot-quiet");
    if (delimiter_.size() != 1)
        throw Error("--prefix-delimiter: bad value '" + delimiter_ + "' (one character, e.g. :)", 2);
    dc.prefixes.delimiter = delimiter_[0];
    dc.prefixes.depth = prefix_depth_;
    for (const auto& p : params_) dc.set(p);
    for (const auto& ov : overrides_) dc.add_override(ov);
    dc.validate();
    if (o.http != "off") parse_listen_address(o.http);  // fail before loading anything
    return o;
}

}  // namespace keyscope
