#include "act/enforcer.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "proto/redis_commands.hpp"

extern "C" {
#include "proto/common.h"
}
#include "util/error.hpp"

namespace keyscope {

ActMode parse_act_mode(const std::string& text) {
    if (text == "off") return ActMode::off;
    if (text == "dry-run") return ActMode::dry_run;
    if (text == "enforce") return ActMode::enforce;
    throw Error("--act: bad value '" + text + "' (expected off, dry-run or enforce)", 2);
}

const char* act_mode_name(ActMode m) {
    return m == ActMode::off ? "off" : m == ActMode::dry_run ? "dry-run" : "enforce";
}

const char* match_name(RuleMatch m) {
    switch (m) {
        case RuleMatch::key:
            return "key";
        case RuleMatch::prefix:
            return "prefix";
        case RuleMatch::client:
            return "client";
        case RuleMatch::connections:
            return "connections";
    }
    return "?";
}

const char* action_name(RuleAction a) {
    return a == RuleAction::throttle ? "throttle" : "shed";
}

namespace {

// Share of a server's requests within which "requests no rule matched" is read
// skew between its counters and the rules' (taken a few ms apart), not traffic.
constexpr double kSkewShare = 0.02;

double requests_of(const std::vector<std::uint64_t>& requests, std::uint32_t target) {
    return target < requests.size() ? static_cast<double>(requests[target]) : 0;
}

}  // namespace

bool valid_rate(double per_s) {
    // bounds keep the GCRA arithmetic (interval x burst, in ns) inside 64 bits
    return per_s >= 0.01 && per_s <= 1e7;
}

std::uint64_t fnv1a(std::string_view bytes) {
    std::uint64_t h = KS_FNV_OFFSET;
    for (unsigned char c : bytes) h = ks_fnv_byte(h, c);
    return h;
}

std::uint64_t key_hash(std::string_view key) {
    return ks_key_hash(key.data(), static_cast<__u32>(key.size()));
}

void parse_client(const std::string& text, RuleSpec& spec, const std::string& flag) {
    auto bad = [&] {
        return Error(flag + ": bad address '" + text + "' (expected ADDR, ADDR:PORT or [IPV6]:PORT)", 2);
    };
    std::string host = text, port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string::npos) throw bad();
        host = text.substr(1, close - 1);
        if (close + 1 < text.size()) {
            if (text[close + 1] != ':') throw bad();
            port = text.substr(close + 2);
        }
    } else if (std::count(text.begin(), text.end(), ':') == 1) {
        host = text.substr(0, text.find(':'));
        port = text.substr(text.find(':') + 1);
    }
    spec.client = {};
    in_addr a4{};
    in6_addr a6{};
    if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
        spec.client[10] = spec.client[11] = 0xff;
        std::memcpy(spec.client.data() + 12, &a4, 4);
    } else if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
        std::memcpy(spec.client.data(), &a6, 16);
    } else {
        throw bad();
    }
    spec.client_port = 0;
    if (!port.empty()) {
        char* end = nullptr;
        long p = std::strtol(port.c_str(), &end, 10);
        if (*end || p < 1 || p > 65535) throw bad();
        spec.client_port = static_cast<std::uint16_t>(p);
    }
}

std::string client_text(const RuleSpec& spec) {
    bool any = std::all_of(spec.client.begin(), spec.client.end(), [](auto b) { return b == 0; });
    if (any) return "";
    std::string addr = format_addr(spec.client);
    if (!spec.client_port) return addr;
    return (addr.find(':') != std::string::npos ? "[" + addr + "]" : addr) + ":" +
           std::to_string(spec.client_port);
}

Enforcer::Enforcer(RuleSink& sink, ActConfig cfg, const std::vector<Target>& targets)
    : sink_(sink), cfg_(std::move(cfg)), targets_(targets) {
    for (double r : cfg_.throttle_rate)
        if (!valid_rate(r)) throw Error("--throttle-rate: a rate must be in [0.01, 10000000] per second", 2);
    for (std::uint32_t s = KS_MAX_RULES; s-- > 0;) free_slots_.push_back(s);
    for (std::uint32_t t = 0; t < targets_.size(); ++t) {
        for (const auto& k : cfg_.allow_keys) {
            ks_rule_key ak{};
            ak.match = KS_MATCH_KEY;
            ak.hash = key_hash(k);
            ak.target = t;
            sink_.put_allow(ak);
        }
        for (const auto& name : cfg_.allow_commands) {
            ks_rule_key ak{};
            ak.match = KS_MATCH_CMD;
            ak.hash = proto::command_hash(name);
            ak.target = t;
            if (!proto::find_command(ak.hash))
                throw Error("--allow-command: unknown Redis command '" + name + "'", 2);
            sink_.put_allow(ak);
        }
        for (const auto& c : cfg_.allow_clients) {
            RuleSpec s;
            parse_client(c, s, "--allow-client");
            if (s.client_port)
                throw Error("--allow-client: '" + c + "': allowlist an address, not a port", 2);
            ks_rule_key ak{};
            ak.match = KS_MATCH_CLIENT;
            std::memcpy(ak.addr, s.client.data(), 16);
            ak.target = t;
            sink_.put_allow(ak);
        }
    }
    sync_kinds();
}

Enforcer::~Enforcer() {
    try {
        for (const auto& r : rules_) uninstall(r);
        sink_.set_enforcement(0, cfg_.delimiter);
    } catch (...) {
        // the kernel drops the rules with the programs anyway
    }
}

ks_rule_key Enforcer::bpf_key(const RuleSpec& s) const {
    ks_rule_key k{};
    k.target = s.target;
    switch (s.match) {
        case RuleMatch::key:
            k.match = KS_MATCH_KEY;
            k.hash = s.key_hash ? s.key_hash : key_hash(s.text);
            std::memcpy(k.addr, s.client.data(), 16);
            break;
        case RuleMatch::prefix:
            k.match = KS_MATCH_PREFIX;
            k.hash = fnv1a(s.text);
            std::memcpy(k.addr, s.client.data(), 16);
            break;
        case RuleMatch::client:
            k.match = KS_MATCH_CLIENT;
            std::memcpy(k.addr, s.client.data(), 16);
            k.port = htons(s.client_port);
            break;
        case RuleMatch::connections:
            k.match = KS_MATCH_CONN;
            break;
    }
    return k;
}

ks_rule Enforcer::bpf_rule(const Rule& r, std::uint64_t mono_now) const {
    ks_rule b{};
    b.action = r.spec.action == RuleAction::throttle ? KS_ACT_THROTTLE : KS_ACT_SHED;
    if (r.spec.action == RuleAction::throttle) {
        b.interval_ns = static_cast<std::uint64_t>(1e9 / r.spec.rate);
        b.tolerance_ns = static_cast<std::uint64_t>((r.spec.burst - 1) * static_cast<double>(b.interval_ns));
    }
    b.shed_share = static_cast<std::uint32_t>(std::lround(r.spec.shed * 65536.0));
    b.flags = r.spec.dry_run ? KS_RULEF_DRY_RUN : 0;
    b.slot = r.slot;
    b.expires_ns = mono_now + static_cast<std::uint64_t>(r.ttl_s * 1e9);
    return b;
}

void Enforcer::install(const Rule& r) {
    ks_rule b = bpf_rule(r, sink_.monotonic_ns());
    ks_rule old{};
    if (sink_.read_rule(bpf_key(r.spec), &old)) b.tat = old.tat;  // a renewal keeps the bucket
    sink_.put_rule(bpf_key(r.spec), b);
}

void Enforcer::uninstall(const Rule& r) {
    sink_.delete_rule(bpf_key(r.spec));
}

void Enforcer::sync_kinds() {
    std::uint32_t kinds = 0;
    for (const auto& r : rules_) {
        bool one_client =
            std::any_of(r.spec.client.begin(), r.spec.client.end(), [](auto b) { return b != 0; });
        switch (r.spec.match) {
            case RuleMatch::key:
                kinds |= one_client ? KS_RK_KEY_CLIENT : KS_RK_KEY;
                break;
            case RuleMatch::prefix:
                kinds |= one_client ? KS_RK_PREFIX_CLIENT : KS_RK_PREFIX;
                break;
            case RuleMatch::client:
                kinds |= KS_RK_CLIENT;
                break;
            case RuleMatch::connections:
                kinds |= KS_RK_CONN;
                break;
        }
    }
    // the allowlist only matters while some rule could match
    if (kinds && (!cfg_.allow_keys.empty() || !cfg_.allow_clients.empty())) kinds |= KS_RK_ALLOW;
    if (kinds && !cfg_.allow_commands.empty()) kinds |= KS_RK_ALLOW_CMD;
    sink_.set_enforcement(kinds, cfg_.delimiter);
}

void Enforcer::emit(const std::string& event, const Rule& r, const std::string& why) {
    ++changes_[r.spec.target];
    events_.push_back(
        {event, r, why, r.spec.target < targets_.size() ? targets_[r.spec.target].server() : "?"});
}

std::vector<MitigationEvent> Enforcer::take_events() {
    std::vector<MitigationEvent> out;
    out.swap(events_);
    return out;
}

bool Enforcer::suspended(std::uint32_t target, double now) const {
    auto it = suspended_until_.find(target);
    return it != suspended_until_.end() && now < it->second;
}

const Rule& Enforcer::add(RuleSpec spec, const std::string& origin, const std::string& reason, double ttl_s,
                          double now) {
    if (spec.target >= targets_.size()) throw Error("rule: no such server");
    if (targets_[spec.target].proto != "redis")
        throw Error("rule: enforcement is for Redis servers only (" + targets_[spec.target].server() +
                    " is " + targets_[spec.target].proto + ")");
    if (suspended(spec.target, now))
        throw Error("rule: enforcement on " + targets_[spec.target].server() +
                    " is suspended by the circuit breaker");
    bool one_client = std::any_of(spec.client.begin(), spec.client.end(), [](auto b) { return b != 0; });
    switch (spec.match) {
        case RuleMatch::key:
            if (spec.text.empty() && !spec.key_hash) throw Error("rule: a key rule needs the key");
            break;
        case RuleMatch::prefix:
            if (spec.text.empty() || spec.text.back() != cfg_.delimiter || spec.text.size() > KS_KEY_MAX)
                throw Error("rule: a prefix must end with '" + std::string(1, cfg_.delimiter) +
                            "' and be at most " + std::to_string(KS_KEY_MAX) + " bytes (e.g. user:)");
            break;
        case RuleMatch::client:
            if (!one_client) throw Error("rule: a client rule needs the client's address");
            break;
        case RuleMatch::connections:
            if (one_client || spec.client_port)
                throw Error("rule: a new-connection rule applies to every client; use a client rule instead");
            break;
    }
    if ((spec.match == RuleMatch::key || spec.match == RuleMatch::prefix) && spec.client_port)
        throw Error("rule: a key or prefix rule can name a client address, not its port");
    if (spec.action == RuleAction::throttle) {
        if (!valid_rate(spec.rate)) throw Error("rule: the rate must be in [0.01, 10000000] per second");
        if (spec.burst == 0) spec.burst = std::max(1.0, std::floor(spec.rate * cfg_.burst_s));
        if (!(spec.burst >= 1 && spec.burst <= 1e7)) throw Error("rule: the burst must be in [1, 10000000]");
    } else if (!(spec.shed > 0 && spec.shed <= 1)) {
        throw Error("rule: the shed share must be in (0, 1]");
    }
    if (!(ttl_s >= 0)) throw Error("rule: bad TTL");
    ks_rule_key k = bpf_key(spec);
    for (const auto& r : rules_) {
        ks_rule_key rk = bpf_key(r.spec);
        if (std::memcmp(&k, &rk, sizeof k) == 0)
            throw Error("rule: rule " + std::to_string(r.id) + " already matches the same requests");
    }
    if (free_slots_.empty())
        throw Error("rule: the rule table is full (" + std::to_string(KS_MAX_RULES) + ")");
    Rule r;
    r.id = next_id_++;
    r.spec = std::move(spec);
    r.origin = origin;
    r.reason = reason;
    r.created = now;
    r.ttl_s = cfg_.ttl_s;
    r.expires = ttl_s > 0 ? now + ttl_s : 0;
    r.slot = free_slots_.back();
    free_slots_.pop_back();
    try {
        sink_.clear_rule_stats(r.slot);
        install(r);
    } catch (...) {
        free_slots_.push_back(r.slot);
        throw;
    }
    rules_.push_back(r);
    sync_kinds();
    emit("added", r, reason);
    return rules_.back();
}

bool Enforcer::remove(std::uint32_t id, double now, const std::string& why) {
    (void)now;
    auto it = std::find_if(rules_.begin(), rules_.end(), [&](const Rule& r) { return r.id == id; });
    if (it == rules_.end()) return false;
    uninstall(*it);
    free_slots_.push_back(it->slot);
    Rule gone = *it;
    rules_.erase(it);
    sync_kinds();
    emit("removed", gone, why);
    return true;
}

bool Enforcer::holding_back(const Rule& r) {
    return r.interval.dropped + r.interval.would_drop > 0;
}

bool Enforcer::allowed(const HotspotEvent& h) const {
    if (h.entity == EntityKind::key) {
        if (std::find(cfg_.allow_keys.begin(), cfg_.allow_keys.end(), h.name) != cfg_.allow_keys.end())
            return true;
        for (const auto& p : cfg_.allow_prefixes)
            if (h.name.compare(0, p.size(), p) == 0) return true;
    } else {
        for (const auto& p : cfg_.allow_prefixes)
            if (h.name.compare(0, p.size(), p) == 0 ||
                p.compare(0, h.name.size() - 1, h.name, 0, h.name.size() - 1) == 0)
                return true;
    }
    return false;
}

void Enforcer::follow_hotspots(double now, const std::vector<HotspotEvent>& active,
                               const KeyClients& clients) {
    std::vector<bool> still(rules_.size(), false);
    if (cfg_.mode != ActMode::off) {
        for (const auto& h : active) {
            // rate hotspots on a key or a plain prefix; errors, latency and size are advice only
            if (h.kind != HotKind::read && h.kind != HotKind::write) continue;
            if (h.entity != EntityKind::key && h.entity != EntityKind::prefix) continue;
            if (h.target >= targets_.size() || targets_[h.target].proto != "redis") continue;
            if (suspended(h.target, now) || allowed(h)) continue;
            RuleSpec s;
            s.target = h.target;
            std::string driver;
            if (h.entity == EntityKind::key) {
                s.match = RuleMatch::key;
                s.text = h.name;
                s.key_hash = h.hash;
                // the narrowest rule: the one client driving the key, when one dominates
                auto c = clients.find({h.target, h.hash});
                if (c != clients.end() && !c->second.empty()) {
                    std::uint64_t all = 0;
                    for (const auto& [addr, n] : c->second) all += n;
                    const auto& [addr, n] = c->second.front();
                    bool known = std::any_of(addr.begin(), addr.end(), [](auto b) { return b != 0; });
                    if (known && static_cast<double>(n) >= cfg_.client_share * static_cast<double>(all)) {
                        s.client = addr;
                        char share[64];
                        std::snprintf(share, sizeof share, "%.0f%%",
                                      100.0 * static_cast<double>(n) / static_cast<double>(all));
                        driver = "; client " + client_text(s) + " sends " + share;
                    }
                }
            } else {
                // "user:*" -> the bytes "user:"; other globs cannot be matched in the kernel
                if (h.name.size() < 2 || h.name.back() != '*') continue;
                s.text = h.name.substr(0, h.name.size() - 1);
                if (s.text.back() != cfg_.delimiter || s.text.find_first_of("*?[") != std::string::npos)
                    continue;
                s.match = RuleMatch::prefix;
            }
            int sev = static_cast<int>(h.severity);
            if (cfg_.action == RuleAction::shed && cfg_.shed_share[sev] > 0) {
                s.action = RuleAction::shed;
                s.shed = cfg_.shed_share[sev];
            } else {
                s.action = RuleAction::throttle;
                s.rate = cfg_.throttle_rate[sev];
            }
            s.dry_run = cfg_.mode == ActMode::dry_run;
            ks_rule_key k = bpf_key(s);
            bool found = false;
            for (std::size_t i = 0; i < rules_.size(); ++i) {
                ks_rule_key rk = bpf_key(rules_[i].spec);
                // an automatic rule keeps the client it was made for while its hotspot lasts
                if (rules_[i].origin == "auto") {
                    std::memset(rk.addr, 0, sizeof rk.addr);
                    ks_rule_key kk = k;
                    std::memset(kk.addr, 0, sizeof kk.addr);
                    if (std::memcmp(&rk, &kk, sizeof kk) != 0) continue;
                } else if (std::memcmp(&rk, &k, sizeof k) != 0) {
                    continue;
                }
                found = true;
                still[i] = true;
                Rule& r = rules_[i];
                if (r.origin != "auto") break;  // an operator's rule wins
                r.hotspot_ended = 0;
                // what the detector sees is what the rule lets through: while the
                // rule still holds requests back, the demand has not eased, so
                // it may tighten but not relax
                bool looser =
                    s.action != r.spec.action ||
                    (s.action == RuleAction::throttle ? s.rate > r.spec.rate : s.shed < r.spec.shed);
                if (looser && holding_back(r)) {
                    s.action = r.spec.action;
                    s.rate = r.spec.rate;
                    s.shed = r.spec.shed;
                }
                bool everyone =
                    std::all_of(r.spec.client.begin(), r.spec.client.end(), [](auto b) { return b == 0; });
                if (everyone && !driver.empty()) {
                    // the clients became known after the rule was made: narrow it to the driver
                    uninstall(r);
                    s.burst = std::max(1.0, std::floor(s.rate * cfg_.burst_s));
                    r.spec = s;
                    r.reason = h.what + " (" + severity_name(h.severity) + ")" + driver;
                    install(r);
                    sync_kinds();
                    emit("updated", r, r.reason);
                    break;
                }
                if (r.spec.action != s.action || r.spec.rate != s.rate || r.spec.shed != s.shed) {
                    s.burst = std::max(1.0, std::floor(s.rate * cfg_.burst_s));
                    s.client = r.spec.client;
                    r.spec = s;
                    r.reason = h.what + " (" + severity_name(h.severity) + ")";
                    install(r);
                    emit("updated", r, r.reason);
                }
                break;
            }
            if (found) continue;
            try {
                add(s, "auto",
                    std::string(kind_name(h.kind)) + " hotspot: " + h.what + " (" +
                        severity_name(h.severity) + ")" + driver,
                    0, now);
                still.push_back(true);
            } catch (const Error& e) {
                MitigationEvent ev{"failed", {}, e.what(), targets_[h.target].server()};
                ev.rule.spec = s;
                events_.push_back(ev);
            }
        }
    }
    // automatic rules whose hotspot is over lift after the cool-down
    std::vector<std::uint32_t> lift;
    for (std::size_t i = 0; i < rules_.size(); ++i) {
        Rule& r = rules_[i];
        if (r.origin != "auto" || (i < still.size() && still[i])) continue;
        if (holding_back(r)) {
            r.hotspot_ended = 0;  // throttled below the hotspot's rules, but the demand is still there
            continue;
        }
        if (r.hotspot_ended == 0) r.hotspot_ended = now;
        if (cfg_.mode == ActMode::off || now - r.hotspot_ended >= cfg_.cooldown_s) lift.push_back(r.id);
    }
    for (auto id : lift) remove(id, now, "hotspot ended");
    // remove() reports "removed"; an automatic lift is a "lifted"
    for (auto& e : events_)
        if (e.event == "removed" && e.why == "hotspot ended") e.event = "lifted";
}

void Enforcer::suspend(std::uint32_t target, double now, const std::string& why) {
    suspended_until_[target] = now + cfg_.suspend_s;
    fall_.erase(target);
    std::vector<std::uint32_t> ids;
    for (const auto& r : rules_)
        if (r.spec.target == target) ids.push_back(r.id);
    for (auto id : ids) {
        remove(id, now, why);
        events_.back().event = "suspended";
    }
}

void Enforcer::watch_other_traffic(double now, const std::vector<std::uint64_t>& requests) {
    // requests served that no enforcing rule matched, per server, this interval
    std::map<std::uint32_t, double> other, all;
    for (const auto& r : rules_) {
        if (r.spec.dry_run) continue;
        double served = requests_of(requests, r.spec.target);
        all[r.spec.target] = served;
        auto [it, fresh] = other.try_emplace(r.spec.target, served);
        (void)fresh;
        // matched = admitted + dropped; the admitted ones are this rule's traffic
        it->second -=
            static_cast<double>(r.interval.matched - std::min(r.interval.matched, r.interval.dropped));
    }
    for (auto it = fall_.begin(); it != fall_.end();)
        it = other.count(it->first) ? std::next(it) : fall_.erase(it);  // enforcement over: forget
    double dt = now - last_tick_;
    if (last_tick_ == 0 || dt <= 0) return;
    for (const auto& [t, n] : other) {
        // the server's requests and the rules' counts are read a few ms apart: a
        // remainder within kSkewShare of all requests is that skew, not other traffic
        double rate = n > kSkewShare * all[t] ? n / dt : 0.0;
        FallWatch& w = fall_[t];
        if (w.changes != changes_[t]) {
            // the rules changed during this interval: what they match is
            // not comparable with before; start again from the next one
            w = FallWatch{};
            w.changes = changes_[t];
            continue;
        }
        // a level held for two intervals in a row: one interval's remainder
        // alone is as likely a counting artefact (a retransmission, a read
        // straddling the flip) as traffic that could fall
        w.best = std::max(w.best, std::min(rate, w.last));
        w.last = rate;
        bool low = w.best >= cfg_.fall_min_rate && rate < (1 - cfg_.fall_share) * w.best;
        w.low = low ? w.low + 1 : 0;
        if (w.low < cfg_.fall_intervals) continue;
        char why[200];
        std::snprintf(
            why, sizeof why,
            "the requests no rule matched fell from %.0f/s to %.0f/s for %d intervals: suspended for "
            "%.0fs",
            w.best, rate, w.low, cfg_.suspend_s);
        suspend(t, now, why);
    }
}

void Enforcer::take_counts() {
    for (auto& r : rules_) {
        ks_rule_stats st = sink_.rule_stats(r.slot);
        r.interval = {st.matched - r.total.matched, st.dropped - r.total.dropped,
                      st.would_drop - r.total.would_drop, st.capped - r.total.capped};
        r.total = {st.matched, st.dropped, st.would_drop, st.capped};
    }
    counts_taken_ = true;
}

void Enforcer::tick(double now, const std::vector<HotspotEvent>& active,
                    const std::vector<std::uint64_t>& requests, const KeyClients& clients) {
    if (!counts_taken_) take_counts();
    counts_taken_ = false;
    // rules whose operator TTL ran out
    std::vector<std::uint32_t> expired;
    std::map<std::uint32_t, std::uint64_t> dropped;  // target -> segments dropped this interval
    for (auto& r : rules_) {
        dropped[r.spec.target] += r.interval.dropped;
        if (r.expires && now >= r.expires) expired.push_back(r.id);
    }
    for (auto id : expired) {
        remove(id, now, "its TTL ran out");
        events_.back().event = "expired";
    }
    // the circuit breaker: too large a share of a server's requests dropped ...
    for (const auto& [t, d] : dropped) {
        std::uint64_t served = t < requests.size() ? requests[t] : 0;
        if (d == 0 || static_cast<double>(d) <= cfg_.drop_cap * static_cast<double>(served + d)) continue;
        char why[160];
        std::snprintf(why, sizeof why,
                      "dropped %llu of %llu requests (over the %.0f%% cap): suspended for %.0fs",
                      static_cast<unsigned long long>(d), static_cast<unsigned long long>(served + d),
                      cfg_.drop_cap * 100, cfg_.suspend_s);
        suspend(t, now, why);
    }
    // ... or the rest of its traffic falling instead of recovering
    watch_other_traffic(now, requests);
    last_tick_ = now;
    for (auto it = suspended_until_.begin(); it != suspended_until_.end();) {
        if (now >= it->second) {
            MitigationEvent ev{"resumed", {}, "circuit breaker pause over", targets_[it->first].server()};
            ev.rule.spec.target = it->first;
            events_.push_back(ev);
            it = suspended_until_.erase(it);
        } else {
            ++it;
        }
    }
    follow_hotspots(now, active, clients);
    for (const auto& r : rules_) install(r);  // renew: the kernel forgets a rule ttl_s after this
}

}  // namespace keyscope
