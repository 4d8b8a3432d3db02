#include "run.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <thread>

#include <sys/resource.h>

#include "act/enforcer.hpp"
#include "act/rule_json.hpp"
#include "collect/collector.hpp"
#include "collect/stats.hpp"
#include "detect/detector.hpp"
#include "output/hotspot_report.hpp"
#include "output/http_server.hpp"
#include "output/report.hpp"
#include "output/snapshot.hpp"
#include "target/discover.hpp"
#include "target/watch.hpp"
#include "util/cpu_affinity.hpp"
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
    const bool explicit_targets = !targets.empty();
    if (!explicit_targets) {
        // --pid alone: the servers those processes run
        targets = opts.pids.empty() ? discover_servers() : discover_servers(opts.pids);
        if (targets.empty())
            throw Error(
                "no Redis or memcached server is listening on this host: pass --target redis://HOST:PORT "
                "(or run scripts/run for a demo)",
                2);
    }
    if (targets.size() > KS_MAX_TARGETS)
        throw Error("too many targets (" + std::to_string(targets.size()) + "), at most " +
                    std::to_string(KS_MAX_TARGETS));
    resolve_pids(targets);
    if (explicit_targets)
        for (std::size_t i = 0; i < opts.pids.size() && i < targets.size(); ++i)
            targets[i].pid = opts.pids[i];
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

/// Builds what /metrics, /healthz and the API serve after one collection.
struct SnapshotBuilder {
    const std::vector<Target>& targets;
    const std::vector<std::string>& server_names;  // targets[i].server(), formatted once for the run
    const ReportContext& report;
    const HotspotContext& hot;
    std::size_t keys_n;
    std::vector<Totals> totals;
    std::vector<LatencyHistogram> lat;

    /// `samples` and `server_lat` are the interval rolled up (roll_up(d, prefixes, &server_lat)).
    Snapshot build(const IntervalData& d, const std::vector<EntitySample>& samples,
                   const std::vector<LatencyHistogram>& server_lat, double ts, double secs,
                   const std::vector<HotspotEvent>& active) {
        Snapshot s;
        s.ts = ts;
        s.interval_s = secs;
        totals.resize(targets.size());
        lat.resize(targets.size());
        auto server_of = [&](std::uint32_t t) { return t < server_names.size() ? server_names[t] : "?"; };
        std::vector<LatencyHistogram> lat_now(targets.size());
        for (std::size_t t = 0; t < targets.size() && t < server_lat.size(); ++t) {
            lat_now[t] = server_lat[t];
            for (std::size_t b = 0; b < lat[t].size(); ++b) lat[t][b] += server_lat[t][b];
        }
        for (std::size_t t = 0; t < targets.size(); ++t) {
            if (t < d.per_target.size()) totals[t] += d.per_target[t];
            ServerSnapshot srv;
            srv.server = server_names[t];
            srv.proto = targets[t].proto;
            srv.interval = t < d.per_target.size() ? d.per_target[t] : Totals{};
            srv.total = totals[t];
            srv.lat_total = lat[t];
            srv.p99_us = quantile_us(lat_now[t], 0.99);
            s.servers.push_back(std::move(srv));
        }
        std::map<std::pair<std::string, std::string>, std::size_t> row_of;  // (server, shown key) -> row
        for (const auto& k : top_keys(d.keys, keys_n)) {
            KeySnapshot row;
            row.server = server_of(k.target);
            row.proto = k.target < targets.size() ? targets[k.target].proto : "?";
            row.key = k.named ? report.keys.format(k.key, k.truncated, k.hash)
                              : report.keys.format("", false, k.hash);
            row.truncated = k.truncated;
            row.reads = k.reads;
            row.writes = k.writes;
            row.errors = k.errors;
            row.redirects = k.redirects;
            row.bytes_in = k.bytes_in;
            row.bytes_out = k.bytes_out;
            row.max_value_bytes = k.max_value;
            row.p50_us = quantile_us(k.lat, 0.5);
            row.p99_us = quantile_us(k.lat, 0.99);
            row.lat = k.lat;
            // keys that show the same (--redact prefix, or the same truncated bytes) are one row
            auto [at, fresh] = row_of.try_emplace({row.server, row.key}, s.keys.size());
            if (fresh) {
                s.keys.push_back(std::move(row));
                continue;
            }
            KeySnapshot* same = &s.keys[at->second];
            same->reads += row.reads;
            same->writes += row.writes;
            same->errors += row.errors;
            same->redirects += row.redirects;
            same->bytes_in += row.bytes_in;
            same->bytes_out += row.bytes_out;
            same->max_value_bytes = std::max(same->max_value_bytes, row.max_value_bytes);
            for (std::size_t b = 0; b < row.lat.size(); ++b) same->lat[b] += row.lat[b];
            same->p50_us = quantile_us(same->lat, 0.5);
            same->p99_us = quantile_us(same->lat, 0.99);
        }
        for (const auto& e : samples) {
            if (e.kind != EntityKind::prefix && e.kind != EntityKind::slot) continue;
            EntityRow r;
            r.server = server_of(e.target);
            r.name = e.kind == EntityKind::prefix ? report.keys.format_prefix(e.name) : e.name;
            r.reads = e.reads;
            r.writes = e.writes;
            r.errors = e.errors;
            r.bytes_out = e.bytes_out;
            r.max_value_bytes = e.max_value;
            r.p99_us = e.p99_us;
            (e.kind == EntityKind::prefix ? s.prefixes : s.slots).push_back(std::move(r));
        }
        auto busiest = [](const EntityRow& a, const EntityRow& b) {
            return a.reads + a.writes > b.reads + b.writes;
        };
        std::sort(s.prefixes.begin(), s.prefixes.end(), busiest);
        if (s.prefixes.size() > keys_n) s.prefixes.resize(keys_n);
        for (const auto& h : active) s.hotspots.push_back(hotspot_snapshot(h, hot));
        return s;
    }
};

}  // namespace

std::pair<std::string, int> parse_listen_address(const std::string& text) {
    auto colon = text.rfind(':');
    auto bad = [&](const std::string& why) {
        return Error(
            "--http: bad address '" + text + "': " + why + " (use HOST:PORT, e.g. 127.0.0.1:9464, or off)",
            2);
    };
    if (colon == std::string::npos || colon == 0) throw bad("missing :PORT");
    std::string host = text.substr(0, colon), port = text.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    int p = 0;
    for (char c : port) {
        if (c < '0' || c > '9' || p > 65535) throw bad("port must be 0-65535 (0: any free port)");
        p = p * 10 + (c - '0');
    }
    if (port.empty() || p > 65535) throw bad("port must be 0-65535 (0: any free port)");
    return {host, p};
}

int run(const RunOptions& opts, const RunHooks& hooks) {
    // embedded in `keyscope top`: no stdout stream, no signal handlers of its own
    const bool embedded = hooks.board != nullptr;
    check_bpf_prerequisites();
    auto targets = resolve_targets(opts);
    {
        // before any thread starts: they inherit it
        std::vector<int> pids;
        for (const auto& t : targets) pids.push_back(t.pid);
        std::string apart = keep_off_server_cpus(pids);
        if (!apart.empty()) spdlog::info("{}", apart);
    }
    std::vector<std::string> servers;
    for (const auto& t : targets) servers.push_back(t.server());
    Detector detector(opts.detect_config, servers);

    ProbeOptions popts;
    popts.kind = opts.probe;
    popts.targets = targets;
    popts.max_keys = opts.max_keys;
    popts.bpf_stats = opts.bpf_stats;
    Probes probes(popts);
    Collector collector(probes, targets.size());
    RestartWatcher restarts(targets);
    // enforcement lives in the socket path's tc ingress program
    std::unique_ptr<Enforcer> enforcer;
    if (opts.probe == ProbeKind::socket) enforcer = std::make_unique<Enforcer>(probes, opts.act, targets);
    CommandQueue own_commands;
    CommandQueue& commands = hooks.commands ? *hooks.commands : own_commands;
    std::map<std::string, std::uint64_t> mitigation_events;

    if (!embedded) {
        struct sigaction sa {};
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, nullptr);
        sigaction(SIGTERM, &sa, nullptr);
    }
    auto stopping = [&] { return g_stop || (hooks.stop && hooks.stop->load()); };

    KeyFormatter fmt(opts.redact, opts.detect_config.prefixes.delimiter);
    ReportContext ctx{targets, fmt, opts.top};
    HotspotContext hot{targets, fmt};
    SnapshotBuilder snapshots{
        targets, servers, ctx, hot, hooks.snapshot_keys ? hooks.snapshot_keys : opts.top, {}, {}};
    SnapshotBoard own_board;
    SnapshotBoard& board = embedded ? *hooks.board : own_board;
    const double started = now_unix();
    // keyscope's own CPU use between two collections, as % of one core
    auto cpu_seconds = [] {
        rusage ru{};
        getrusage(RUSAGE_SELF, &ru);
        return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    };
    double cpu_last = cpu_seconds(), cpu_at = now_unix(), cpu_percent = 0;
    auto health = [&](double last) {
        HealthSnapshot h;
        if (last > cpu_at) {
            double c = cpu_seconds();
            cpu_percent = 100.0 * (c - cpu_last) / (last - cpu_at);
            cpu_last = c;
            cpu_at = last;
        }
        h.cpu_percent = cpu_percent;
        h.probes_attached = probes.attached();
        h.started = started;
        h.last_collection = last;
        h.interval_s = std::chrono::duration<double>(opts.interval).count();
        h.key_map_capacity = opts.max_keys;
        h.programs = probes.program_costs();
        return h;
    };
    {
        Snapshot first;
        first.health = health(0);
        board.publish(std::move(first));
    }
    std::unique_ptr<HttpServer> http;
    std::string http_address;
    if (opts.http != "off") {
        auto [host, port] = parse_listen_address(opts.http);
        http = std::make_unique<HttpServer>(host, port, board, &commands);
        http_address = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                       std::to_string(http->port());
    }
    for (const auto& p : probes.attach_points()) spdlog::info("attached {}", p);
    {
        std::string text = "keyscope: observing";
        for (const auto& t : targets)
            text += " " + t.server() + (t.pid ? " (pid " + std::to_string(t.pid) + ")" : "");
        text += std::string(" via the ") + probe_name(opts.probe) + " path";
        auto j = ready_json(ctx, probe_name(opts.probe));
        if (http) {
            j["http"] = http_address;
            text += "; http://" + http_address + "/metrics";
        }
        if (!embedded) emit(opts, j, text);
    }
    if (hooks.on_ready) hooks.on_ready();

    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    auto last = start;
    auto next = start + opts.interval;
    // the summary's keys: twice what one interval can hold, then the busier half stays
    KeyTable cumulative(2 * static_cast<std::size_t>(opts.max_keys));
    IntervalData interval;
    IntervalData summary;
    summary.per_target.resize(targets.size());

    auto follow_restarts = [&] {
        for (const auto& c : restarts.poll(now_unix())) {
            const auto& t = targets[c.id];
            probes.set_target_pid(static_cast<std::uint32_t>(c.id), c.old_pid, c.new_pid);
            std::string text = c.new_pid
                                   ? "target " + t.server() + " restarted: pid " + std::to_string(c.old_pid) +
                                         " -> " + std::to_string(c.new_pid) + ", following it"
                                   : "target " + t.server() + ": pid " + std::to_string(c.old_pid) +
                                         " exited; waiting for its server to come back";
            if (c.new_pid)
                spdlog::info("{}", text);
            else
                spdlog::warn("{}", text);
            if (!embedded && opts.output == OutputFormat::json)
                emit(opts,
                     nlohmann::json{{"type", "target"},
                                    {"event", c.new_pid ? "restarted" : "exited"},
                                    {"server", t.server()},
                                    {"proto", t.proto},
                                    {"old_pid", c.old_pid},
                                    {"pid", c.new_pid}},
                     "");
        }
    };

    auto report_mitigations = [&](double ts) {
        if (!enforcer) return;
        for (const auto& e : enforcer->take_events()) {
            mitigation_events[e.event]++;
            auto line = mitigation_log_line(e, targets, fmt);
            if (e.event == "suspended" || e.event == "failed")
                spdlog::warn("{}", line);
            else
                spdlog::info("{}", line);
            if (!embedded && opts.output == OutputFormat::json)
                emit(opts, mitigation_event_json(e, targets, fmt, ts), "");
        }
    };
    // /api/rules, answered between two sleeps of the loop
    auto handle_command = [&](const nlohmann::json& req) -> CommandReply {
        if (!enforcer)
            return {409,
                    {{"error", "enforcement needs the socket path (--probe socket); this daemon uses " +
                                   std::string(probe_name(opts.probe))}}};
        const double ts = now_unix();
        const std::string op = req.value("op", "");
        CommandReply reply;
        if (op == "list") {
            auto rules = nlohmann::json::array();
            for (const auto& r : enforcer->rules())
                rules.push_back(mitigation_json(mitigation_snapshot(r, targets, fmt)));
            reply = {200, {{"mode", act_mode_name(opts.act.mode)}, {"rules", rules}}};
        } else if (op == "add") {
            try {
                double ttl = 0;
                std::string reason;
                nlohmann::json body = req["rule"];
                if (body.is_object() && body.contains("shown_key")) {
                    // a key as an output showed it (top's `t`): only unredacted keys name real bytes
                    auto raw = body["shown_key"].is_string() && opts.redact == Redaction::none
                                   ? unescape_key(body["shown_key"].get<std::string>())
                                   : std::nullopt;
                    if (!raw)
                        throw Error("keys are redacted here: name the key with keyscope throttle add --key");
                    if (raw->size() > KS_KEY_MAX)  // longer keys are shown cut, ending "..."
                        throw Error(
                            "a truncated key cannot be named by what was shown: use keyscope throttle add "
                            "--key");
                    body.erase("shown_key");
                    body["key"] = *raw;
                }
                RuleSpec spec = rule_spec_from_json(body, targets, &ttl, &reason);
                const Rule& r = enforcer->add(spec, "manual", reason, ttl, ts);
                reply = {201, mitigation_json(mitigation_snapshot(r, targets, fmt))};
            } catch (const Error& e) {
                reply = {400, {{"error", e.what()}}};
            }
        } else if (op == "remove") {
            auto id = req.value("id", 0u);
            reply = enforcer->remove(id, ts, "removed by an operator")
                        ? CommandReply{200, {{"removed", id}}}
                        : CommandReply{404, {{"error", "no rule " + std::to_string(id)}}};
        } else {
            reply = {400, {{"error", "unknown operation"}}};
        }
        report_mitigations(ts);
        return reply;
    };

    // one roll-up into prefixes, slots and servers serves the detector and the views
    RollUp roll_up_interval(opts.detect_config.prefixes);
    std::vector<LatencyHistogram> server_lat;
    auto take = [&](clock::time_point at) {
        follow_restarts();
        IntervalData& d = interval;  // reused: its buffers keep their size from interval to interval
        collector.collect(d);
        if (enforcer) enforcer->take_counts();  // as close as can be to the server counters
        cumulative.name_keys(d.keys);
        for (const auto& k : d.keys) cumulative.add(k);
        for (std::size_t i = 0; i < d.per_target.size(); ++i) summary.per_target[i] += d.per_target[i];
        double secs = std::chrono::duration<double>(at - last).count();
        last = at;
        const double ts = now_unix();
        const auto& samples = roll_up_interval(d, &server_lat);
        std::vector<HotspotEvent> events;
        if (opts.detect) events = detector.observe(samples, ts, secs);
        auto active = detector.active();
        // who drives each hot key: counted in the kernel for the keys watched last interval
        KeyClients key_clients;
        if (opts.probe == ProbeKind::socket) {
            for (const auto& [ck, n] : probes.drain_clients()) {
                std::array<std::uint8_t, 16> addr{};
                std::memcpy(addr.data(), ck.addr, 16);
                key_clients[{ck.target, ck.hash}].push_back({addr, n});
            }
            for (auto& [k, v] : key_clients)
                std::sort(v.begin(), v.end(),
                          [](const auto& a, const auto& b) { return a.second > b.second; });
            std::vector<std::pair<std::uint64_t, std::uint32_t>> watch;
            for (const auto& h : active)
                if (h.entity == EntityKind::key) watch.push_back({h.hash, h.target});
            std::sort(watch.begin(), watch.end());
            watch.erase(std::unique(watch.begin(), watch.end()), watch.end());
            probes.set_watch(watch);
        }
        std::vector<MitigationSnapshot> mitigations;
        if (enforcer) {
            std::vector<std::uint64_t> served;
            for (const auto& t : d.per_target) served.push_back(t.requests);
            enforcer->tick(ts, active, served, key_clients);
            for (const auto& r : enforcer->rules())
                mitigations.push_back(mitigation_snapshot(r, targets, fmt));
        }
        auto j = interval_json("interval", ts, secs, d, ctx);
        if (opts.detect) j["hotspots"] = hotspot_summary_json(active, hot);
        if (enforcer && (opts.act.mode != ActMode::off || !mitigations.empty())) {
            auto rules = nlohmann::json::array();
            for (const auto& m : mitigations) rules.push_back(mitigation_json(m));
            j["mitigations"] = {{"mode", act_mode_name(opts.act.mode)}, {"rules", rules}};
        }
        // (server, key as shown) -> its clients, for the JSON line and the snapshot
        std::map<std::pair<std::string, std::string>, std::vector<ClientShare>> shown_clients;
        for (const auto& h : active) {
            auto c = key_clients.find({h.target, h.hash});
            if (h.entity != EntityKind::key || c == key_clients.end() || h.target >= targets.size()) continue;
            auto& out = shown_clients[{targets[h.target].server(), fmt.format(h.name, h.truncated, h.hash)}];
            if (!out.empty()) continue;
            for (const auto& [addr, n] : c->second) {
                RuleSpec as_client;
                as_client.client = addr;
                out.push_back({client_text(as_client), n});
            }
        }
        if (!shown_clients.empty()) {
            auto kc = nlohmann::json::array();
            for (const auto& [id, list] : shown_clients) {
                auto cl = nlohmann::json::array();
                for (const auto& c : list) cl.push_back({{"client", c.client}, {"ops", c.ops}});
                kc.push_back({{"server", id.first}, {"key", id.second}, {"clients", cl}});
            }
            j["key_clients"] = kc;
        }
        // the text table only when it is what is printed: it ranks and formats the keys again
        if (!embedded)
            emit(opts, j,
                 opts.output == OutputFormat::json ? std::string() : interval_text("interval", secs, d, ctx));
        for (const auto& ev : embedded ? std::vector<HotspotEvent>{} : events) {
            spdlog::warn("{}", hotspot_log_line(ev, hot));
            if (opts.output == OutputFormat::json) emit(opts, hotspot_json(ev, hot), "");
        }
        report_mitigations(ts);
        Snapshot snap = snapshots.build(d, samples, server_lat, ts, secs, active);
        for (auto& row : snap.keys) {
            auto c = shown_clients.find({row.server, row.key});
            if (c != shown_clients.end()) row.clients = c->second;
        }
        snap.act_mode = enforcer ? act_mode_name(opts.act.mode) : "unavailable";
        snap.mitigations = std::move(mitigations);
        snap.mitigation_events = mitigation_events;
        snap.health = health(ts);
        snap.health.key_map_used = d.keys.size();
        board.publish(std::move(snap));
    };

    bool stop = false;
    while (!stop) {
        auto deadline = next;
        if (opts.duration.count() > 0) deadline = std::min(deadline, start + opts.duration);
        while (!stopping() && clock::now() < deadline) {
            commands.serve(handle_command);
            // requests wake the loop at once; signals only set a flag, looked at this often
            commands.wait_until(std::min(deadline, clock::now() + std::chrono::milliseconds(100)));
        }
        auto now = clock::now();
        stop = stopping() || (opts.duration.count() > 0 && now >= start + opts.duration);
        take(now);
        next += opts.interval;
    }

    summary.keys = cumulative.all();
    double secs = std::chrono::duration<double>(clock::now() - start).count();
    auto j = interval_json("summary", now_unix(), secs, summary, ctx);
    j["forgotten_keys"] = cumulative.forgotten();
    if (opts.detect) j["hotspots"] = hotspot_summary_json(detector.active(), hot);
    if (!embedded) emit(opts, j, interval_text("summary", secs, summary, ctx));
    return 0;
}

}  // namespace keyscope
