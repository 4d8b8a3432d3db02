#include "detect/detector.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>

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

// reorders v
double median(std::vector<double>& v) {
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

namespace {

// Where each parameter the rules read sits in a resolved parameter vector:
// looked up by name once, not on every evaluation.
struct ParamIndex {
    struct PerKind {
        std::size_t for_intervals;
        std::array<std::size_t, 4> bands;
    };
    struct PerOps {  // reads or writes
        std::size_t rate, count, multiplier, min_rate, share, peer_factor;
    };
    std::array<PerKind, kHotKinds> kind{};
    std::array<PerOps, 2> ops{};              // [0] reads, [1] writes
    std::array<std::size_t, 4> rate_scale{};  // by EntityKind (unused for keys)
    std::size_t size_value_bytes, size_bytes_out_rate, size_multiplier, size_min_rate;
    std::size_t latency_p99_ms, latency_multiplier, latency_min_p99_ms, latency_min_ops;
    std::size_t error_rate_pct, error_margin_pct, error_min_errors;

    ParamIndex() {
        auto at = [](const std::string& name) { return DetectConfig::index_of(name); };
        for (int k = 0; k < kHotKinds; ++k) {
            const std::string n = kind_name(static_cast<HotKind>(k));
            kind[k].for_intervals = at(n + ".for_intervals");
            for (int b = 0; b < 4; ++b) kind[k].bands[b] = at(n + ".bands." + std::to_string(b + 1));
        }
        for (int r = 0; r < 2; ++r) {
            const std::string n = r == 0 ? "read" : "write";
            ops[r] = {at(n + ".rate"),     at(n + ".count"), at(n + ".multiplier"),
                      at(n + ".min_rate"), at(n + ".share"), at(n + ".peer_factor")};
        }
        for (auto ek : {EntityKind::prefix, EntityKind::slot, EntityKind::server})
            rate_scale[static_cast<std::size_t>(ek)] = at(std::string(entity_name(ek)) + ".rate_scale");
        size_value_bytes = at("size.value_bytes");
        size_bytes_out_rate = at("size.bytes_out_rate");
        size_multiplier = at("size.multiplier");
        size_min_rate = at("size.min_rate");
        latency_p99_ms = at("latency.p99_ms");
        latency_multiplier = at("latency.multiplier");
        latency_min_p99_ms = at("latency.min_p99_ms");
        latency_min_ops = at("latency.min_ops");
        error_rate_pct = at("error.rate_pct");
        error_margin_pct = at("error.margin_pct");
        error_min_errors = at("error.min_errors");
    }
};

const ParamIndex& ix() {
    static const ParamIndex index;
    return index;
}

std::uint64_t fingerprint(EntityKind kind, std::uint32_t target, std::string_view name) {
    std::uint64_t h = std::hash<std::string_view>{}(name);
    return h ^ ((static_cast<std::uint64_t>(kind) << 32 | target) * 0x9e3779b97f4a7c15ull);
}

// Below these an entity is not a candidate for a history: a tenth of the
// lowest limit or floor at which a rule on that measure can fire, over all
// servers' parameters (see Detector::evaluate), per interval of `dur` seconds.
struct CandidateFloors {
    double ops = 0, max_value = 0, bytes_out = 0, p99_us = 0;
};

// `margin` 1: the floors themselves, under which no rule on a measure can fire.
CandidateFloors candidate_floors(const std::vector<std::vector<double>>& server_params, double dur,
                                 double window_s, double margin) {
    constexpr double kNever = std::numeric_limits<double>::infinity();
    const ParamIndex& x = ix();
    CandidateFloors f{kNever, kNever, kNever, kNever};
    for (const auto& p : server_params) {
        double scale = 1;  // absolute limits of wider entities are scaled, maybe down
        for (auto ek : {EntityKind::prefix, EntityKind::slot, EntityKind::server})
            scale = std::min(scale, p[x.rate_scale[static_cast<std::size_t>(ek)]]);
        for (const auto& o : x.ops) {
            double rate = p[o.min_rate];  // temporal and relative rules
            if (p[o.rate] > 0) rate = std::min(rate, p[o.rate] * scale);
            if (p[o.count] > 0) rate = std::min(rate, p[o.count] * scale / window_s);
            f.ops = std::min(f.ops, rate * dur);
        }
        if (p[x.size_value_bytes] > 0) f.max_value = std::min(f.max_value, p[x.size_value_bytes]);
        double bytes = p[x.size_min_rate];
        if (p[x.size_bytes_out_rate] > 0) bytes = std::min(bytes, p[x.size_bytes_out_rate] * scale);
        f.bytes_out = std::min(f.bytes_out, bytes * dur);
        double p99_ms = p[x.latency_min_p99_ms];
        if (p[x.latency_p99_ms] > 0) p99_ms = std::min(p99_ms, p[x.latency_p99_ms]);
        f.p99_us = std::min(f.p99_us, p99_ms * 1000);
    }
    f.ops *= margin;
    f.max_value *= margin;
    f.bytes_out *= margin;
    f.p99_us *= margin;
    return f;
}

// Fingerprints in one flat table (linear probing, at most a quarter full):
// one probe for most of the interval's samples, where a node-based set or a
// binary search costs several cache misses or mispredicted branches.
class FingerprintSet {
public:
    explicit FingerprintSet(std::size_t n) : slots_(std::bit_ceil(4 * n + 4), 0) {}
    void insert(std::uint64_t f) {
        f |= 1;  // 0 marks a free slot
        std::size_t i = at(f);
        while (slots_[i] && slots_[i] != f) i = (i + 1) & (slots_.size() - 1);
        slots_[i] = f;
    }
    bool contains(std::uint64_t f) const {
        f |= 1;
        for (std::size_t i = at(f);; i = (i + 1) & (slots_.size() - 1)) {
            if (slots_[i] == f) return true;
            if (!slots_[i]) return false;
        }
    }

private:
    std::size_t at(std::uint64_t f) const { return (f * 0x9e3779b97f4a7c15ull >> 32) & (slots_.size() - 1); }
    std::vector<std::uint64_t> slots_;
};

// The name part of a sample's id: keys go by their hash (8 raw bytes), as two
// keys may share their stored (truncated) bytes; other entities by name.
std::string_view id_name(const EntitySample& s) {
    if (s.kind != EntityKind::key) return s.name;
    return {reinterpret_cast<const char*>(&s.hash), sizeof s.hash};
}

// the fingerprint of the sample's id (see Detector::id_of), without building it
std::uint64_t fingerprint(const EntitySample& s) {
    return fingerprint(s.kind, s.target, id_name(s));
}

}  // namespace

Detector::Detector(DetectConfig cfg, std::vector<std::string> servers)
    : cfg_(std::move(cfg)), servers_(std::move(servers)) {
    cfg_.validate();
    for (const auto& srv : servers_) server_params_.push_back(cfg_.resolve(srv, ""));
    server_params_.push_back(cfg_.resolve("", ""));
    per_name_params_ = cfg_.has_prefix_overrides();
}

const double* Detector::params(std::uint32_t target, const Entity& e) const {
    if (!e.params.empty()) return e.params.data();
    return server_params_[std::min<std::size_t>(target, servers_.size())].data();
}

Detector::Id Detector::id_of(const EntitySample& s) {
    return {s.kind, s.target, std::string(id_name(s))};
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
    std::vector<double>& v = baseline_scratch_;  // reused: this runs for every tracked entity and kind
    v.clear();
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
    return median(v);
}

Detector::Finding Detector::evaluate(const Id& id, const Entity& e, HotKind kind, const Peers& peers,
                                     bool describe) const {
    const auto& [ekind, target, id_name] = id;
    const double* p = params(target, e);
    const ParamIndex& x = ix();
    const Record& cur = e.history.back();
    const double now = cur.t;
    // a key's absolute limits, scaled for entities that hold many keys
    const double scale = ekind == EntityKind::key ? 1.0 : p[x.rate_scale[static_cast<std::size_t>(ekind)]];
    Finding best;
    const char* unit = "";  // of the values the next consider() calls compare
    // `what` words the finding; it runs only for the best one when describing
    auto consider = [&](double value, double threshold, double base, const char* rule, auto&& what) {
        if (threshold <= 0) return;
        double x = value / threshold;
        if (x <= best.excess) return;
        best.excess = x;
        best.value = value;
        best.threshold = threshold;
        best.baseline = base;
        best.rule = rule;
        if (describe) {
            best.what = what();
            best.unit = unit;
        }
    };
    // the entity's baseline is a median over its history: worked out only when a rule needs it
    bool have_base = false, enough = false;
    double base = 0;
    auto baseline_of = [&](double (*metric)(const Record&)) {
        if (!have_base) base = baseline(e, kind, metric, &enough);
        have_base = true;
        return base;
    };

    if (kind == HotKind::read || kind == HotKind::write) {
        const bool rd = kind == HotKind::read;
        const auto& o = x.ops[rd ? 0 : 1];
        const std::string_view ops = rd ? "reads" : "writes";
        const double rate = rd ? reads_rate(cur) : writes_rate(cur);
        auto metric = rd ? +[](const Record& r) { return reads_rate(r); }
                         : +[](const Record& r) { return writes_rate(r); };
        const double floor = p[o.min_rate];
        if (describe || rate >= floor) baseline_of(metric);
        auto vs_base = [&] {
            return enough ? ", " + fmt_ratio(rate / std::max(base, 1e-9)) + " baseline" : std::string();
        };
        unit = rd ? "reads/s" : "writes/s";
        if (double t = p[o.rate] * scale; t > 0)
            consider(rate, t, base, "absolute", [&] {
                return fmt_num(rate) + " " + std::string(ops) + "/s (limit " + fmt_num(t) + "/s" + vs_base() +
                       ")";
            });
        if (double t = p[o.count] * scale; t > 0) {
            unit = rd ? "reads in window" : "writes in window";
            double n = window_sum(e, rd ? &Record::reads : &Record::writes, now);
            consider(n, t, base, "absolute", [&] {
                return fmt_num(n) + " " + std::string(ops) + " in " + fmt_num(cfg_.window_s) + "s (limit " +
                       fmt_num(t) + ")";
            });
        }
        unit = rd ? "reads/s" : "writes/s";
        if (enough && rate >= floor) {
            double t = std::max(p[o.multiplier] * base, floor);
            consider(rate, t, base, "temporal", [&] {
                return fmt_num(rate) + " " + std::string(ops) + "/s (" +
                       fmt_ratio(rate / std::max(base, 1e-9)) + " baseline " + fmt_num(base) + "/s)";
            });
        }
        auto pk = std::make_pair(ekind, target);
        auto cnt = peers.count.find(pk);
        if (ekind != EntityKind::server && cnt != peers.count.end() && cnt->second >= kMinPeers &&
            rate >= floor) {
            auto srv = peers.server_rw.find(target);
            double srv_rate =
                srv == peers.server_rw.end() ? 0 : (rd ? srv->second.first : srv->second.second);
            if (double share = p[o.share]; share > 0 && ekind == EntityKind::key && srv_rate > 0) {
                double s = rate / srv_rate;
                unit = "share";
                consider(s, share, base, "relative", [&] {
                    return fmt_num(rate) + " " + std::string(ops) + "/s, " + fmt_num(100 * s) +
                           "% of the server's " + std::string(ops);
                });
            }
            unit = rd ? "reads/s" : "writes/s";
            double med = rd ? peers.median_rw.at(pk).first : peers.median_rw.at(pk).second;
            if (double f = p[o.peer_factor]; f > 0 && med > 0)
                consider(rate, std::max(f * med, floor), base, "relative", [&] {
                    return fmt_num(rate) + " " + std::string(ops) + "/s, " + fmt_ratio(rate / med) +
                           " the median " + entity_name(ekind) + " (" + fmt_num(med) + "/s)";
                });
        }
    } else if (kind == HotKind::size) {
        unit = "bytes";
        if (double t = p[x.size_value_bytes]; t > 0)
            consider(static_cast<double>(cur.max_value), t, 0, "absolute", [&] {
                return "values of " + fmt_num(static_cast<double>(cur.max_value)) + " bytes (limit " +
                       fmt_num(t) + ")";
            });
        const double rate = bytes_rate(cur);
        const double floor = p[x.size_min_rate];
        unit = "bytes/s";
        if (describe || rate >= floor) baseline_of(+[](const Record& r) { return bytes_rate(r); });
        if (double t = p[x.size_bytes_out_rate] * scale; t > 0)
            consider(rate, t, base, "absolute",
                     [&] { return fmt_num(rate) + " reply bytes/s (limit " + fmt_num(t) + ")"; });
        if (enough && rate >= floor)
            consider(rate, std::max(p[x.size_multiplier] * base, floor), base, "temporal", [&] {
                return fmt_num(rate) + " reply bytes/s (" + fmt_ratio(rate / std::max(base, 1e-9)) +
                       " baseline " + fmt_num(base) + ")";
            });
    } else if (kind == HotKind::latency) {
        if (cur.p99_ms <= 0) return best;  // too few operations this interval
        unit = "p99 ms";
        const double floor = p[x.latency_min_p99_ms];
        if (describe || cur.p99_ms >= floor)
            baseline_of(+[](const Record& r) { return r.p99_ms > 0 ? r.p99_ms : -1.0; });
        if (double t = p[x.latency_p99_ms]; t > 0)
            consider(cur.p99_ms, t, base, "absolute",
                     [&] { return "p99 " + fmt_num(cur.p99_ms) + " ms (limit " + fmt_num(t) + " ms)"; });
        if (enough && cur.p99_ms >= floor)
            consider(cur.p99_ms, std::max(p[x.latency_multiplier] * base, floor), base, "temporal", [&] {
                return "p99 " + fmt_num(cur.p99_ms) + " ms (" + fmt_ratio(cur.p99_ms / std::max(base, 1e-9)) +
                       " baseline " + fmt_num(base) + " ms)";
            });
    } else {  // error
        if (cur.requests == 0 || static_cast<double>(cur.errors) < p[x.error_min_errors]) return best;
        auto pct = [](const Record& r) {
            return r.requests ? 100.0 * static_cast<double>(r.errors) / static_cast<double>(r.requests)
                              : -1.0;
        };
        const double v = pct(cur);
        unit = "error %";
        baseline_of(+[](const Record& r) {
            return r.requests ? 100.0 * static_cast<double>(r.errors) / static_cast<double>(r.requests)
                              : -1.0;
        });
        auto errs = [&] {
            return fmt_num(static_cast<double>(cur.errors)) + " errors in " +
                   fmt_num(static_cast<double>(cur.requests)) + " operations";
        };
        if (double t = p[x.error_rate_pct]; t > 0)
            consider(v, t, base, "absolute",
                     [&] { return fmt_num(v) + "% errors (" + errs() + ", limit " + fmt_num(t) + "%)"; });
        if (enough)
            consider(v, base + p[x.error_margin_pct], base, "temporal", [&] {
                return fmt_num(v) + "% errors (" + errs() + ", baseline " + fmt_num(base) + "%)";
            });
    }
    return best;
}

Severity Detector::severity_for(const Entity& e, std::uint32_t target, HotKind kind, double excess,
                                Severity current, bool active) const {
    const double* p = params(target, e);
    const auto& bands = ix().kind[static_cast<std::size_t>(kind)].bands;
    std::array<double, 4> b{};
    for (int i = 0; i < 4; ++i) b[i] = p[bands[i]];
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
    std::map<EntityKind, std::vector<std::size_t>> by_kind;  // indexes into samples
    for (std::size_t i = 0; i < samples.size(); ++i) by_kind[samples[i].kind].push_back(i);
    // 0: not picked; kOnProbation: picked, but too quiet for any rule to fire
    // on it now; kTrackNow: picked and loud enough that one might
    constexpr char kOnProbation = 1, kTrackNow = 2;
    std::vector<char> chosen(samples.size(), 0);
    const double min_ops = server_params_.back()[ix().latency_min_ops];
    // An entity far too quiet for any rule to fire on earns no history: under
    // many evenly busy keys the top ones by each measure change every
    // interval, and tracking that churn was most of the detector's work.
    // Per-prefix overrides may lower the limits for some names: then no floor.
    const CandidateFloors floors = per_name_params_
                                       ? CandidateFloors{}
                                       : candidate_floors(server_params_, interval_s, cfg_.window_s, 0.1);
    const CandidateFloors fire =
        per_name_params_ ? CandidateFloors{} : candidate_floors(server_params_, interval_s, cfg_.window_s, 1);
    std::vector<std::size_t> candidates;
    for (auto& [kind, v] : by_kind) {
        if (kind == EntityKind::server) {
            for (auto i : v) chosen[i] = kTrackNow;
            continue;
        }
        auto pick = [&](auto measure, std::size_t n, double floor, double fire_floor) {
            // the n largest at or above the floor, in no particular order: nth_element, linear time
            candidates.clear();
            for (auto i : v)
                if (const double m = measure(samples[i]); m > 0 && m >= floor) candidates.push_back(i);
            n = std::min(n, candidates.size());
            if (n == 0) return;
            if (n < candidates.size())
                std::nth_element(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(n - 1),
                                 candidates.end(), [&](std::size_t a, std::size_t b) {
                                     double ma = measure(samples[a]), mb = measure(samples[b]);
                                     return ma != mb ? ma > mb : a < b;
                                 });
            for (std::size_t i = 0; i < n; ++i) {
                char& c = chosen[candidates[i]];
                c = std::max(c, measure(samples[candidates[i]]) >= fire_floor ? kTrackNow : kOnProbation);
            }
        };
        pick([](const EntitySample& s) { return static_cast<double>(s.ops()); }, kTopByOps, floors.ops,
             fire.ops);
        pick([](const EntitySample& s) { return static_cast<double>(s.errors); }, kTopByOther, 0, 0);
        pick([](const EntitySample& s) { return static_cast<double>(s.max_value); }, kTopByOther,
             floors.max_value, fire.max_value);
        pick([](const EntitySample& s) { return static_cast<double>(s.bytes_out); }, kTopByOther,
             floors.bytes_out, fire.bytes_out);
        pick([&](const EntitySample& s) { return s.p99_us * (static_cast<double>(s.ops()) >= min_ops); },
             kTopByOther, floors.p99_us, fire.p99_us);
    }
    // most samples are neither chosen nor tracked: tell them apart by their
    // fingerprints in a flat table, without building their ids
    FingerprintSet tracked(entities_.size());
    for (const auto& [id, e] : entities_)
        tracked.insert(fingerprint(std::get<0>(id), std::get<1>(id), std::get<2>(id)));

    auto record_of = [&](const EntitySample& s) {
        Record r;
        r.t = now;
        r.dur = interval_s;
        r.reads = s.reads;
        r.writes = s.writes;
        r.errors = s.errors;
        r.requests = s.requests;
        r.bytes_out = s.bytes_out;
        r.max_value = s.max_value;
        r.p99_ms = static_cast<double>(s.lat_n) >= min_ops ? s.p99_us / 1000.0 : 0;
        return r;
    };
    // A pick too quiet for any rule to fire on it gets a history only when it
    // was such a pick in the interval before too, and then starts with that
    // interval's record: among many evenly quiet entities the picks are mostly
    // new every interval, and each one tracked was an entity made, evaluated
    // over its history every interval and forgotten only after --history.
    std::vector<std::pair<std::uint64_t, Record>> last_probation;
    last_probation.swap(probation_);
    std::sort(last_probation.begin(), last_probation.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (std::size_t i = 0; i < samples.size(); ++i) {
        const auto& s = samples[i];
        const bool pick = chosen[i] != 0;
        if (!pick && !tracked.contains(fingerprint(s))) continue;
        Id id = id_of(s);
        auto it = entities_.find(id);
        if (it == entities_.end()) {
            if (!pick) continue;
            const Record* before = nullptr;
            if (chosen[i] == kOnProbation) {
                const std::uint64_t fp = fingerprint(s);
                auto at = std::lower_bound(last_probation.begin(), last_probation.end(), fp,
                                           [](const auto& p, std::uint64_t f) { return p.first < f; });
                if (at == last_probation.end() || at->first != fp) {
                    probation_.emplace_back(fp, record_of(s));
                    continue;
                }
                before = &at->second;
            }
            it = entities_.emplace(std::move(id), Entity{}).first;
            if (before) it->second.history.push_back(*before);
        }
        Entity& e = it->second;
        if (pick) e.last_candidate = now;
        const bool named_now = !s.name.empty() && e.name != s.name;
        if (named_now || e.name.empty()) e.name = s.name;
        if (named_now && per_name_params_ && (s.kind == EntityKind::key || s.kind == EntityKind::prefix))
            e.params =
                cfg_.resolve(s.target < servers_.size() ? std::string_view(servers_[s.target]) : "", e.name);
        e.truncated = s.truncated;
        e.hash = s.hash;
        e.history.push_back(record_of(s));
        e.recorded = true;
    }
    // tracked entities without traffic this interval get an empty record, so
    // windows and baselines see the quiet as it was
    for (auto it = entities_.begin(); it != entities_.end();) {
        Entity& e = it->second;
        if (!e.recorded) {
            Record r;
            r.t = now;
            r.dur = interval_s;
            e.history.push_back(r);
        }
        e.recorded = false;
        while (!e.history.empty() && e.history.front().t <= now - cfg_.history_s) e.history.pop_front();
        if (!e.is_active() && now - e.last_candidate > cfg_.history_s)
            it = entities_.erase(it);
        else
            ++it;
    }
    // bound memory: forget the longest-quiet inactive entities
    if (entities_.size() > kMaxTracked) {
        std::vector<std::pair<double, const Id*>> order;
        for (const auto& [id, e] : entities_)
            if (!e.is_active() && std::get<0>(id) != EntityKind::server)
                order.emplace_back(e.last_candidate, &id);
        std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
            return a.first != b.first ? a.first < b.first : *a.second < *b.second;
        });
        std::vector<Id> forget;
        for (std::size_t i = 0; i < order.size() && entities_.size() - forget.size() > kMaxTracked; ++i)
            forget.push_back(*order[i].second);
        for (const auto& id : forget) entities_.erase(id);
    }
}

std::vector<HotspotEvent> Detector::observe(const IntervalData& data, double now, double interval_s) {
    return observe(roll_up(data, cfg_.prefixes), now, interval_s);
}

std::vector<HotspotEvent> Detector::observe(const std::vector<EntitySample>& samples, double now,
                                            double interval_s) {
    now_ = now;
    if (interval_s <= 0) interval_s = 1e-3;

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
        const auto target = std::get<1>(id);
        for (int k = 0; k < kHotKinds; ++k) {
            const auto kind = static_cast<HotKind>(k);
            auto& act = e.active[static_cast<std::size_t>(k)];
            int& pending = e.pending[static_cast<std::size_t>(k)];
            Finding f = evaluate(id, e, kind, peers, false);
            const bool above = f.excess >= 1, holding = f.excess >= cfg_.hold;
            if (!act && !above) {
                pending = 0;
                continue;
            }
            // shown from here on: word it
            f = evaluate(id, e, kind, peers, true);
            if (!act) {
                // a noisy measure (latency) must stay above for a few intervals
                const double need = params(target, e)[ix().kind[static_cast<std::size_t>(k)].for_intervals];
                if (++pending < need) continue;
                pending = 0;
                Active a;
                a.ev.state = "start";
                a.ev.entity = std::get<0>(id);
                a.ev.target = target;
                a.ev.name = e.name;
                a.ev.truncated = e.truncated;
                a.ev.hash = e.hash;
                a.ev.kind = kind;
                a.ev.since = now;
                a.ev.severity = severity_for(e, target, kind, f.excess, Severity::low, false);
                a.ev.peak = a.ev.severity;
                act = std::move(a);
            } else {
                if (holding) act->last_above = now;
                if (!holding && now - act->last_above + 1e-9 >= cfg_.quiet_s) {
                    HotspotEvent end = act->ev;
                    end.state = "end";
                    end.ts = now;
                    if (f.excess > 0) {
                        end.value = f.value;
                        end.what = f.what;
                    } else {
                        end.value = 0;
                    }
                    events.push_back(std::move(end));
                    act.reset();
                    continue;
                }
                if (!holding) continue;  // quiet, but not for long enough yet: keep the last numbers
                Severity sev = severity_for(e, target, kind, f.excess, act->ev.severity, true);
                double moved =
                    std::fabs(f.value - act->emitted_value) / std::max(std::fabs(act->emitted_value), 1e-9);
                if (sev == act->ev.severity && moved < 0.25) {
                    // refresh the numbers shown by the API without an event
                    act->ev.value = f.value;
                    act->ev.threshold = f.threshold;
                    act->ev.baseline = f.baseline;
                    act->ev.what = f.what;
                    act->ev.unit = f.unit;
                    continue;
                }
                act->ev.state = "update";
                act->ev.severity = sev;
                act->ev.peak = std::max(act->ev.peak, sev);
            }
            Active& a = *act;
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
            if (e.active[static_cast<std::size_t>(k)] || e.pending[static_cast<std::size_t>(k)] > 0)
                rec.hot |= static_cast<std::uint8_t>(1u << k);
    }
    return events;
}

std::vector<HotspotEvent> Detector::active() const {
    std::vector<HotspotEvent> out;
    for (const auto& [id, e] : entities_)
        for (const auto& a : e.active) {
            if (!a) continue;
            out.push_back(a->ev);
            out.back().state = "active";
        }
    std::stable_sort(out.begin(), out.end(),
                     [](const auto& a, const auto& b) { return a.severity > b.severity; });
    return out;
}

}  // namespace keyscope
