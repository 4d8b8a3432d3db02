#include "run.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include "collect/collector.hpp"
#include "collect/stats.hpp"
#include "output/report.hpp"
#include "target/discover.hpp"
#include "util/error.hpp"

namespace keyscope {
namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
    g_stop = true;
}

double now_unix() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::vector<Target> resolve_targets(const RunOptions& opts) {
    std::vector<Target> targets;
    for (const auto& url : opts.targets) targets.push_back(parse_target(url));
    if (targets.empty()) {
        targets = discover_redis();
        if (targets.empty())
            throw Error(
                "no Redis server is listening on this host: pass --target redis://HOST:PORT "
                "(or run scripts/run for a demo)",
                2);
    }
    if (targets.size() > KS_MAX_TARGETS)
        throw Error("too many targets (" + std::to_string(targets.size()) + "), at most " +
                    std::to_string(KS_MAX_TARGETS));
    resolve_pids(targets);
    for (std::size_t i = 0; i < opts.pids.size() && i < targets.size(); ++i) targets[i].pid = opts.pids[i];
    for (const auto& t : targets) {
        // a typo in --target must not look like an idle server
        if (!t.pid)
            throw Error("--target " + t.server() +
                            ": no process listens there on this host (start the server "
                            "first, or check the address and port)",
                        2);
    }
    return targets;
}

void emit(const RunOptions& opts, const nlohmann::json& j, const std::string& text) {
    if (opts.output == OutputFormat::json)
        std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    else
        std::cout << text << '\n';
    std::cout.flush();
}

}  // namespace

int run(const RunOptions& opts) {
    check_bpf_prerequisites();
    auto targets = resolve_targets(opts);

    ProbeOptions popts;
    popts.kind = opts.probe;
    popts.targets = targets;
    popts.max_keys = opts.max_keys;
    Probes probes(popts);
    Collector collector(probes, targets.size());

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    KeyFormatter fmt(opts.redact);
    ReportContext ctx{targets, fmt, opts.top};
    for (const auto& p : probes.attach_points()) spdlog::info("attached {}", p);
    {
        std::string text = "keyscope: observing";
        for (const auto& t : targets)
            text += " " + t.server() + (t.pid ? " (pid " + std::to_string(t.pid) + ")" : "");
        text += std::string(" via the ") + probe_name(opts.probe) + " path";
        emit(opts, ready_json(ctx, probe_name(opts.probe)), text);
    }

    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    auto last = start;
    auto next = start + opts.interval;
    KeyTable cumulative;
    IntervalData summary;
    summary.per_target.resize(targets.size());

    auto take = [&](clock::time_point at) {
        IntervalData d = collector.collect();
        cumulative.name_keys(d.keys);
        for (const auto& k : d.keys) cumulative.add(k);
        for (std::size_t i = 0; i < d.per_target.size(); ++i) summary.per_target[i] += d.per_target[i];
        double secs = std::chrono::duration<double>(at - last).count();
        last = at;
        emit(opts, interval_json("interval", now_unix(), secs, d, ctx),
             interval_text("interval", secs, d, ctx));
    };

    bool stop = false;
    while (!stop) {
        auto deadline = next;
        if (opts.duration.count() > 0) deadline = std::min(deadline, start + opts.duration);
        while (!g_stop && clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        auto now = clock::now();
        stop = g_stop || (opts.duration.count() > 0 && now >= start + opts.duration);
        take(now);
        next += opts.interval;
    }

    summary.keys = cumulative.all();
    double secs = std::chrono::duration<double>(clock::now() - start).count();
    emit(opts, interval_json("summary", now_unix(), secs, summary, ctx),
         interval_text("summary", secs, summary, ctx));
    return 0;
}

}  // namespace keyscope
