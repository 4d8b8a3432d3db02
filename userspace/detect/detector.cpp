#include "detect/detector.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <unordered_set>

namespace keyscope {
namespace {

// How many entities of each kind (per interval) earn a history beyond the
// ones already tracked: enough for every plausible hotspot, bounded memory.
constexpr std::size_t kTopByOps = 256, kTopByOther = 64;
// Entities tracked at most; the longest-quiet is forgotten first.
constexpr std::size_t kMaxTracked = 4096;
// Peers a relative rule needs before "N times the median" means anything.
constexpr std::size_t kMinPeers = 4;

std::string fmt_num(double v) {
    char buf[64];
    if (std::fabs(v) >= 100 || v == std::floor(v))
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else
        std::snprintf(buf, sizeof buf, "%.2g", v);
    return buf;
}

std::string fmt_ratio(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1fx", v);
    return buf;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
    std::nth_element(v.begin(), mid, v.end());
    return *mid;
}

double reads_rate(const auto& r) {
    return r.dur > 0 ? static_cast<double>(r.reads) / r.dur : 0;
}
double writes_rate(const auto& r) {
    return r.dur > 0 ? static_cast<double>(r.writes) / r.dur : 0;
}
double bytes_rate(const auto& r) {
    return r.dur > 0 ? static_cast<double>(r.bytes_out) / r.dur : 0;
}

}  // namespace

const char* kind_name(HotKind k) {
    static const char* names[] = {"read", "write", "size", "latency", "error"};
    return names[static_cast<int>(k)];
}

const char* severity_name(Severity s) {
    static const char* names[] = {"low", "medium", "high", "critical"};
    return names[static_cast<int>(s)];
}

std::vector<std::string> recommended_actions(HotKind kind, Severity sev, EntityKind entity) {
    std::vector<std::string> a;
    const bool high = sev >= Severity::high;
    switch (kind) {
        case HotKind::read:
            a.push_back("cache it client-side (Redis CLIENT TRACKING) or in a near cache in front of Redis");
            if (sev >= Severity::medium)
                a.push_back("serve these reads from replicas (READONLY on cluster replicas)");
            if (high)
                a.push_back(
                    "split the hot key into copies with suffixes (key:1..key:N) and read a random one");
            if (sev == Severity::critical)
                a.push_back("rate limit the client that drives it (keyscope throttle)");
            break;
        case HotKind::write:
            a.push_back("find the client writing it and batch or coalesce its writes (pipelining, MSET)");
            if (sev >= Severity::medium) a.push_back("debounce counters client-side and write aggregates");
            if (high) a.push_back("shard the key with suffixes and aggregate on read (sharded counters)");
            if (sev == Severity::critical) a.push_back("rate limit the writing client (keyscope throttle)");
            break;
        case HotKind::size:
            a.push_back("fetch parts instead of the whole value (HSCAN/SSCAN/ZRANGE with LIMIT, GETRANGE)");
            if (sev >= Severity::medium) a.push_back("split the big value into smaller keys");
            if (high) a.push_back("compress values client-side, or cache the big value close to its readers");
            break;
        case HotKind::latency:
            a.push_back("check the commands that are slow on it (SLOWLOG GET, LATENCY DOCTOR)");
            a.push_back("avoid O(N) commands on big values (HGETALL, SMEMBERS, LRANGE 0 -1, KEYS)");
            if (high)
                a.push_back("look for blocking work on the server: a fork (BGSAVE), big DEL, Lua scripts");
            break;
        case HotKind::error:
            a.push_back("read the error replies (WRONGTYPE, OOM, NOSCRIPT, ...) in the client logs");
            a.push_back("fix the client using the wrong type or command for this key");
            if (high) a.push_back("check maxmemory and the eviction policy (OOM errors)");
            break;
    }
    if (entity == EntityKind::slot && (kind == HotKind::read || kind == HotKind::write))
        a.push_back("move the slot to a less loaded node (redis-cli --cluster rebalance)");
    if (entity == EntityKind::server && high) a.push_back("add replicas or shards to spread the load");
    if (entity == EntityKind::prefix && (kind == HotKind::read || kind == HotKind::write))
        a.push_back("look for the feature behind this key family; spread it over more keys or servers");
    return a;
}

struct Detector::Peers {
    // median per-interval rates of entities of one kind on one target
    std::map<std::pair<EntityKind, std::uint32_t>, std::pair<double, double>> median_rw;
    std::map<std::pair<EntityKind, std::uint32_t>, std::size_t> count;
    std::map<std::uint32_t, std::pair<double, double>> server_rw;  // server reads, writes in the interval
    double dur = 1;
};

Detector::Detector(DetectConfig cfg, std::vector<std::string> servers)
    : cfg_(std::move(cfg)), servers_(std::move(servers)) {
    cfg_.validate();
}

double Detector::window_sum(const Entity& e, std::uint64_t Record::*field, double now) const {
    double sum = 0;
    for (auto it = e.history.rbegin(); it != e.history.rend(); ++it) {
        // a record belongs to the window when its interval ended inside it
        if (it->t <= now - cfg_.window_s + 1e-9) break;
        sum += static_cast<double>((*it).*field);
    }
    return sum;
}

double Detector::baseline(const Entity& e, HotKind kind, double (*metric)(const Record&),
                          bool* enough) const {
    std::vector<double> v;
    double covered = 0;
    const auto bit = static_cast<std::uint8_t>(1u << static_cast<int>(kind));
    // every record but the current one; intervals when it was hot are not "normal"
    for (std::size_t i = 0; i + 1 < e.history.size(); ++i) {
        const auto& r = e.history[i];
        if (r.hot & bit) continue;
        double m = metric(r);
        if (m < 0) continue;  // not measurable in that interval
        v.push_back(m);
        covered += r.dur;
    }
    *enough = covered + 1e-9 >= cfg_.min_history_s && !v.empty();
    return median(std::move(v));
}

Detector::Finding Detector::evaluate(const Id& id, const Entity& e, HotKind kind, const Peers& peers) const {
    const auto& [ekind, target, id_name] = id;
    auto P = [&](const char* k, const char* n) { return param(id, e, std::string(k) + "." + n); };
    const Record& cur = e.history.back();
    const double now = cur.t;
    // a key's absolute limits, scaled for entities that hold many keys
    const double scale =
        ekind == EntityKind::key ? 1.0 : param(id, e, std::string(entity_name(ekind)) + ".rate_scale");
    Finding best;
    std::string unit;  // of the values the next consider() calls compare
    auto consider = [&](double value, double threshold, double base, const char* rule, std::string what) {
        if (threshold <= 0) return;
        double x = value / threshold;
        if (x > best.excess) best = {x, value, threshold, base, rule, std::move(what), unit};
    };
    bool enough = false;

    if (kind == HotKind::read || kind == HotKind::write) {
        const bool rd = kind == HotKind::read;
        const char* k = rd ? "read" : "write";
        const std::string ops = rd ? "reads" : "writes";
        const double rate = rd ? reads_rate(cur) : writes_rate(cur);
        auto metric = rd ? +[](const Record& r) { return reads_rate(r); }
                         : +[](const Record& r) { return writes_rate(r); };
        double base = baseline(e, kind, metric, &enough);
        unit = ops + "/s";
        const std::string vs_base = enough ? ", " + fmt_ratio(rate / std::max(base, 1e-9)) + " baseline" : "";
        if (double t = P(k, "rate") * scale; t > 0)
            consider(rate, t, base, "absolute",
                     fmt_num(rate) + " " + ops + "/s (limit " + fmt_num(t) + "/s" + vs_base + ")");
        if (double t = P(k, "count") * scale; t > 0) {
            unit = ops + " in window";
            double n = window_sum(e, rd ? &Record::reads : &Record::writes, now);
            consider(
                n, t, base, "absolute",
                fmt_num(n) + " " + ops + " in " + fmt_num(cfg_.window_s) + "s (limit " + fmt_num(t) + ")");
        }
        const double floor = P(k, "min_rate");
        unit = ops + "/s";
        if (enough && rate >= floor) {
            double t = std::max(P(k, "multiplier") * base, floor);
            consider(rate, t, base, "temporal",
                     fmt_num(rate) + " " + ops + "/s (" + fmt_ratio(rate / std::max(base, 1e-9)) +
                         " baseline " + fmt_num(base) + "/s)");
        }
        auto pk = std::make_pair(ekind, target);
        auto cnt = peers.count.find(pk);
        if (ekind != EntityKind::server && cnt != peers.count.end() && cnt->second >= kMinPeers &&
            rate >= floor) {
            auto srv = peers.server_rw.find(target);
            double srv_rate =
                srv == peers.server_rw.end() ? 0 : (rd ? srv->second.first : srv->second.second);
            if (double share = P(k, "share"); share > 0 && ekind == EntityKind::key && srv_rate > 0) {
                double s = rate / srv_rate;
                unit = "share";
                consider(s, share, base, "relative",
                         fmt_num(rate) + " " + ops + "/s, " + fmt_num(100 * s) + "% of the server's " + ops);
            }
            unit = ops + "/s";
            double med = rd ? peers.median_rw.at(pk).first : peers.median_rw.at(pk).second;
            if (double f = P(k, "peer_factor"); f > 0 && med > 0)
                consider(rate, std::max(f * med, floor), base, "relative",
                         fmt_num(rate) + " " + ops + "/s, " + fmt_ratio(rate / med) + " the median " +
                             entity_name(ekind) + " (" + fmt_num(med) + "/s)");
        }
    } else if (kind == HotKind::size) {
        unit = "bytes";
        if (double t = P("size", "value_bytes"); t > 0)
            consider(static_cast<double>(cur.max_value), t, 0, "absolute",
                     "values of " + fmt_num(static_cast<double>(cur.max_value)) + " bytes (limit " +
                         fmt_num(t) + ")");
        const double rate = bytes_rate(cur);
        unit = "bytes/s";
        double base = baseline(
            e, kind, +[](const Record& r) { return bytes_rate(r); }, &enough);
        if (double t = P("size", "bytes_out_rate") * scale; t > 0)
            consider(rate, t, base, "absolute", fmt_num(rate) + " reply bytes/s (limit " + fmt_num(t) + ")");
        const double floor = P("size", "min_rate");
        if (enough && rate >= floor)
            consider(rate, std::max(P("size", "multiplier") * base, floor), base, "temporal",
                     fmt_num(rate) + " reply bytes/s (" + fmt_ratio(rate / std::max(base, 1e-9)) +
                         " baseline " + fmt_num(base) + ")");
    } else if (kind == HotKind::latency) {
        if (cur.p99_ms <= 0) return best;  // too few operations this interval
        unit = "p99 ms";
        double base = baseline(
            e, kind, +[](const Record& r) { return r.p99_ms > 0 ? r.p99_ms : -1.0; }, &enough);
        if (double t = P("latency", "p99_ms"); t > 0)
            consider(cur.p99_ms, t, base, "absolute",
                     "p99 " + fmt_num(cur.p99_ms) + " ms (limit " + fmt_num(t) + " ms)");
        if (enough && cur.p99_ms >= P("latency", "min_p99_ms"))
            consider(cur.p99_ms, std::max(P("latency", "multiplier") * base, P("latency", "min_p99_ms")),
                     base, "temporal",
                     "p99 " + fmt_num(cur.p99_ms) + " ms (" + fmt_ratio(cur.p99_ms / std::max(base, 1e-9)) +
                         " baseline " + fmt_num(base) + " ms)");
    } else {  // error
        if (cur.requests == 0 || static_cast<double>(cur.errors) < P("error", "min_errors")) return best;
        auto pct = [](const Record& r) {
            return r.requests ? 100.0 * static_cast<double>(r.errors) / static_cast<double>(r.requests)
                              : -1.0;
        };
        const double v = pct(cur);
        unit = "error %";
        double base = baseline(
            e, kind,
            +[](const Record& r) {
                return r.requests ? 100.0 * static_cast<double>(r.errors) / static_cast<double>(r.requests)
                                  : -1.0;
            },
            &enough);
        const std::string errs = fmt_num(static_cast<double>(cur.errors)) + " errors in " +
                                 fmt_num(static_cast<double>(cur.requests)) + " operations";
        if (double t = P("error", "rate_pct"); t > 0)
            consider(v, t, base, "absolute",
                     fmt_num(v) + "% errors (" + errs + ", limit " + fmt_num(t) + "%)");
        if (enough)
            consider(v, base + P("error", "margin_pct"), base, "temporal",
                     fmt_num(v) + "% errors (" + errs + ", baseline " + fmt_num(base) + "%)");
    }
    return best;
}

double Detector::param(const Id& id, const Entity& e, const std::string& name) const {
    const auto target = std::get<1>(id);
    const std::string_view server =
        target < servers_.size() ? std::string_view(servers_[target]) : std::string_view();
    const auto kind = std::get<0>(id);
    const bool keyed = kind == EntityKind::key || kind == EntityKind::prefix;
    return cfg_.get(name, server, keyed ? std::string_view(e.name) : std::string_view());
}

Severity Detector::severity_for(const Id& id, const Entity& e, HotKind kind, double excess, Severity current,
                                bool active) const {
    std::array<double, 4> b{};
    for (int i = 0; i < 4; ++i)
        b[i] = param(id, e, std::string(kind_name(kind)) + ".bands." + std::to_string(i + 1));
    // bands are multipliers of the entity's normal; the threshold is the first
    int sev = 0;
    for (int i = 1; i < 4; ++i)
        if (excess >= b[i] / b[0]) sev = i;
    // step down only once clearly below the band held, so a value at a band edge does not flap
    int cur = static_cast<int>(current);
    if (active && sev < cur && excess >= cfg_.hold * b[cur] / b[0]) sev = cur;
    return static_cast<Severity>(sev);
}

void Detector::select_and_record(const std::vector<EntitySample>& samples, double now, double interval_s) {
    // which entities earn (or keep) a history: the top ones of each kind by
    // several measures, and everything already tracked
    std::map<EntityKind, std::vector<const EntitySample*>> by_kind;
    for (const auto& s : samples) by_kind[s.kind].push_back(&s);
    std::unordered_set<const EntitySample*> chosen;
    const double min_ops = cfg_.get("latency.min_ops");
    for (auto& [kind, v] : by_kind) {
        if (kind == EntityKind::server) {
            for (auto* s : v) chosen.insert(s);
            continue;
        }
        auto pick = [&](auto measure, std::size_t n) {
            n = std::min(n, v.size());
            std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n), v.end(),
                              [&](auto* a, auto* b) { return measure(*a) > measure(*b); });
            for (std::size_t i = 0; i < n; ++i)
                if (measure(*v[i]) > 0) chosen.insert(v[i]);
        };
        pick([](const EntitySample& s) { return s.ops(); }, kTopByOps);
        pick([](const EntitySample& s) { return s.errors; }, kTopByOther);
        pick([](const EntitySample& s) { return s.max_value; }, kTopByOther);
        pick([](const EntitySample& s) { return s.bytes_out; }, kTopByOther);
        pick(
            [&](const EntitySample& s) {
                return quantile_us(s.lat, 0.99) * (static_cast<double>(s.ops()) >= min_ops);
            },
            kTopByOther);
    }
    std::unordered_set<const Entity*> recorded;
    for (const auto& s : samples) {
        // keys by hash: two keys may share their stored (truncated) bytes
        Id id{s.kind, s.target, s.kind == EntityKind::key ? std::to_string(s.hash) : s.name};
        auto it = entities_.find(id);
        const bool pick = chosen.count(&s) > 0;
        if (it == entities_.end()) {
            if (!pick) continue;
            it = entities_.emplace(id, Entity{}).first;
        }
        Entity& e = it->second;
        if (pick) e.last_candidate = now;
        if (!s.name.empty() || e.name.empty()) e.name = s.name;
        e.truncated = s.truncated;
        e.hash = s.hash;
        Record r;
        r.t = now;
        r.dur = interval_s;
        r.reads = s.reads;
        r.writes = s.writes;
        r.errors = s.errors;
        r.requests = s.requests;
        r.bytes_out = s.bytes_out;
        r.max_value = s.max_value;
        std::uint64_t lat_n = 0;
        for (auto c : s.lat) lat_n += c;
        r.p99_ms = static_cast<double>(lat_n) >= min_ops ? quantile_us(s.lat, 0.99) / 1000.0 : 0;
        e.history.push_back(r);
        recorded.insert(&e);
    }
    // tracked entities without traffic this interval get an empty record, so
    // windows and baselines see the quiet as it was
    for (auto it = entities_.begin(); it != entities_.end();) {
        Entity& e = it->second;
        if (!recorded.count(&e)) {
            Record r;
            r.t = now;
            r.dur = interval_s;
            e.history.push_back(r);
        }
        while (!e.history.empty() && e.history.front().t <= now - cfg_.history_s) e.history.pop_front();
        bool is_active = false;
        for (int k = 0; k < kHotKinds && !is_active; ++k)
            is_active = active_.count({it->first, static_cast<HotKind>(k)});
        if (!is_active && now - e.last_candidate > cfg_.history_s)
            it = entities_.erase(it);
        else
            ++it;
    }
    // bound memory: forget the longest-quiet inactive entities
    if (entities_.size() > kMaxTracked) {
        std::vector<std::pair<double, Id>> order;
        for (const auto& [id, e] : entities_) {
            bool is_active = false;
            for (int k = 0; k < kHotKinds && !is_active; ++k)
                is_active = active_.count({id, static_cast<HotKind>(k)});
            if (!is_active && std::get<0>(id) != EntityKind::server) order.emplace_back(e.last_candidate, id);
        }
        std::sort(order.begin(), order.end());
        for (std::size_t i = 0; i < order.size() && entities_.size() > kMaxTracked; ++i)
            entities_.erase(order[i].second);
    }
}

std::vector<HotspotEvent> Detector::observe(const IntervalData& data, double now, double interval_s) {
    now_ = now;
    if (interval_s <= 0) interval_s = 1e-3;
    auto samples = roll_up(data, cfg_.prefixes);

    Peers peers;
    peers.dur = interval_s;
    {
        std::map<std::pair<EntityKind, std::uint32_t>, std::pair<std::vector<double>, std::vector<double>>>
            rates;
        for (const auto& s : samples) {
            if (s.kind == EntityKind::server) {
                peers.server_rw[s.target] = {static_cast<double>(s.reads) / interval_s,
                                             static_cast<double>(s.writes) / interval_s};
                continue;
            }
            if (s.ops() == 0) continue;
            auto& [r, w] = rates[{s.kind, s.target}];
            r.push_back(static_cast<double>(s.reads) / interval_s);
            w.push_back(static_cast<double>(s.writes) / interval_s);
        }
        for (auto& [k, rw] : rates) {
            peers.count[k] = rw.first.size();
            peers.median_rw[k] = {median(rw.first), median(rw.second)};
        }
    }
    select_and_record(samples, now, interval_s);

    std::vector<HotspotEvent> events;
    for (auto& [id, e] : entities_) {
        for (int k = 0; k < kHotKinds; ++k) {
            const auto kind = static_cast<HotKind>(k);
            Finding f = evaluate(id, e, kind, peers);
            auto key = std::make_pair(id, kind);
            auto act = active_.find(key);
            const bool above = f.excess >= 1, holding = f.excess >= cfg_.hold;
            if (act == active_.end()) {
                if (!above) {
                    pending_.erase(key);
                    continue;
                }
                // a noisy measure (latency) must stay above for a few intervals
                const double need = param(id, e, std::string(kind_name(kind)) + ".for_intervals");
                if (++pending_[key] < need) continue;
                pending_.erase(key);
                Active a;
                a.ev.state = "start";
                a.ev.entity = std::get<0>(id);
                a.ev.target = std::get<1>(id);
                a.ev.name = e.name;
                a.ev.truncated = e.truncated;
                a.ev.hash = e.hash;
                a.ev.kind = kind;
                a.ev.since = now;
                a.ev.severity = severity_for(id, e, kind, f.excess, Severity::low, false);
                a.ev.peak = a.ev.severity;
                act = active_.emplace(key, std::move(a)).first;
            } else {
                if (holding) act->second.last_above = now;
                if (!holding && now - act->second.last_above + 1e-9 >= cfg_.quiet_s) {
                    HotspotEvent end = act->second.ev;
                    end.state = "end";
                    end.ts = now;
                    if (f.excess > 0) {
                        end.value = f.value;
                        end.what = f.what;
                    } else {
                        end.value = 0;
                    }
                    events.push_back(std::move(end));
                    active_.erase(act);
                    continue;
                }
                if (!holding) continue;  // quiet, but not for long enough yet: keep the last numbers
                Severity sev = severity_for(id, e, kind, f.excess, act->second.ev.severity, true);
                double moved = std::fabs(f.value - act->second.emitted_value) /
                               std::max(std::fabs(act->second.emitted_value), 1e-9);
                if (sev == act->second.ev.severity && moved < 0.25) {
                    // refresh the numbers shown by the API without an event
                    act->second.ev.value = f.value;
                    act->second.ev.threshold = f.threshold;
                    act->second.ev.baseline = f.baseline;
                    act->second.ev.what = f.what;
                    act->second.ev.unit = f.unit;
                    continue;
                }
                act->second.ev.state = "update";
                act->second.ev.severity = sev;
                act->second.ev.peak = std::max(act->second.ev.peak, sev);
            }
            Active& a = act->second;
            a.last_above = now;
            a.emitted_value = f.value;
            a.ev.ts = now;
            a.ev.rule = f.rule;
            a.ev.what = f.what;
            a.ev.value = f.value;
            a.ev.threshold = f.threshold;
            a.ev.baseline = f.baseline;
            a.ev.unit = f.unit;
            a.ev.actions = recommended_actions(kind, a.ev.severity, a.ev.entity);
            events.push_back(a.ev);
        }
        // remember in the history which kinds were hot, so baselines skip them
        auto& rec = e.history.back();
        rec.hot = 0;
        for (int k = 0; k < kHotKinds; ++k)
            if (active_.count({id, static_cast<HotKind>(k)}) || pending_.count({id, static_cast<HotKind>(k)}))
                rec.hot |= static_cast<std::uint8_t>(1u << k);
    }
    for (auto it = pending_.begin(); it != pending_.end();)
        it = entities_.count(it->first.first) ? std::next(it) : pending_.erase(it);
    return events;
}

std::vector<HotspotEvent> Detector::active() const {
    std::vector<HotspotEvent> out;
    for (const auto& [key, a] : active_) {
        out.push_back(a.ev);
        out.back().state = "active";
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const auto& a, const auto& b) { return a.severity > b.severity; });
    return out;
}

}  // namespace keyscope
