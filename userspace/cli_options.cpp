#include "cli_options.hpp"

#include "proto/redis_commands.hpp"

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

    const char* a = "Mitigation (socket path only)";
    cmd->add_option("--act", act_, "automatic rules for hot keys and prefixes: off, dry-run or enforce")
        ->capture_default_str()
        ->group(a);
    cmd->add_option("--act-action", act_action_, "what automatic rules do: throttle, or shed (high/critical)")
        ->capture_default_str()
        ->group(a);
    cmd->add_option("--throttle-rate", throttle_rates_,
                    "SEVERITY=RATE per second, e.g. medium=500 (defaults low 1000, medium 500, high 200, "
                    "critical 50)")
        ->group(a);
    cmd->add_option("--shed-share", shed_shares_,
                    "SEVERITY=SHARE, e.g. critical=0.5 (defaults high 0.2, critical 0.5)")
        ->group(a);
    cmd->add_option("--allow-key", opts.act.allow_keys, "a key no rule may touch (repeatable)")->group(a);
    cmd->add_option("--allow-prefix", opts.act.allow_prefixes, "a key prefix no automatic rule may touch")
        ->group(a);
    cmd->add_option("--allow-client", opts.act.allow_clients, "a client address no rule may touch")->group(a);
    cmd->add_option("--allow-command", opts.act.allow_commands,
                    "a command whose keys no rule may touch, e.g. DEL (keyless ones never are)")
        ->group(a);
    cmd->add_option("--drop-cap", opts.act.drop_cap,
                    "largest share of a server's requests keyscope may drop before it suspends its rules")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 1.0))
        ->group(a);
    cmd->add_option(
           "--rule-ttl", rule_ttl_,
           "the kernel ignores a rule this long after keyscope last renewed it (default 5s, at least "
           "twice --interval)")
        ->group(a);
    cmd->add_option("--act-cooldown", act_cooldown_,
                    "an automatic rule stays this long after its hotspot ends")
        ->capture_default_str()
        ->group(a);
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
    auto& ac = o.act;
    ac.mode = parse_act_mode(act_);
    if (act_action_ != "throttle" && act_action_ != "shed")
        throw Error("--act-action: bad value '" + act_action_ + "' (expected throttle or shed)", 2);
    ac.action = act_action_ == "shed" ? RuleAction::shed : RuleAction::throttle;
    auto severity_pairs = [](const std::vector<std::string>& items, const char* flag,
                             std::array<double, 4>& out, double lo, double hi, const char* range) {
        const char* names[] = {"low", "medium", "high", "critical"};
        for (const auto& item : items) {
            auto eq = item.find('=');
            int sev = -1;
            for (int i = 0; i < 4; ++i)
                if (eq != std::string::npos && item.compare(0, eq, names[i]) == 0) sev = i;
            char* end = nullptr;
            double v = eq == std::string::npos ? 0 : std::strtod(item.c_str() + eq + 1, &end);
            if (sev < 0 || !end || *end || !(v >= lo && v <= hi && v > 0))
                throw Error(
                    std::string(flag) + ": bad value '" + item +
                        "' (expected SEVERITY=VALUE, SEVERITY one of low, medium, high, critical, VALUE in " +
                        range + ")",
                    2);
            out[static_cast<std::size_t>(sev)] = v;
        }
    };
    severity_pairs(throttle_rates_, "--throttle-rate", ac.throttle_rate, 0.01, 1e7, "[0.01, 10000000]");
    severity_pairs(shed_shares_, "--shed-share", ac.shed_share, 0, 1, "(0, 1]");
    // rules are renewed once per interval: a shorter life would let them lapse
    const double interval_s = std::chrono::duration<double>(o.interval).count();
    ac.ttl_s = rule_ttl_.empty() ? std::max(5.0, 2 * interval_s) : seconds(rule_ttl_, "--rule-ttl");
    if (ac.ttl_s < 2 * interval_s)
        throw Error("--rule-ttl: " + rule_ttl_ + " is under twice --interval (" + interval_ +
                        "): rules renewed once per interval would lapse between renewals",
                    2);
    ac.cooldown_s = seconds(act_cooldown_, "--act-cooldown");
    ac.delimiter = dc.prefixes.delimiter;
    for (const auto& c : ac.allow_commands)
        if (!proto::find_command(proto::command_hash(c)))
            throw Error("--allow-command: unknown Redis command '" + c + "'", 2);
    for (const auto& c : ac.allow_clients) {
        RuleSpec probe_spec;
        parse_client(c, probe_spec, "--allow-client");  // a bad address fails here, before anything is loaded
        if (probe_spec.client_port)
            throw Error("--allow-client: '" + c + "': allowlist an address, not a port", 2);
    }
    return o;
}

}  // namespace keyscope
