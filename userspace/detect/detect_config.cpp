#include "detect/detect_config.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <sstream>

#include "util/error.hpp"

namespace keyscope {
namespace {

constexpr double kInf = 1e18;

std::string trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t");
    auto e = s.find_last_not_of(" \t");
    return b == std::string_view::npos ? "" : std::string(s.substr(b, e - b + 1));
}

std::string fmt_value(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
}

const ParamDef* find_def(std::string_view name) {
    for (const auto& d : param_defs())
        if (name == d.name) return &d;
    return nullptr;
}

std::pair<std::string, double> parse_assignment(std::string_view text) {
    auto eq = text.find('=');
    if (eq == std::string_view::npos)
        throw Error(
            "detection parameter '" + std::string(text) + "': expected NAME=VALUE, e.g. read.rate=3000", 2);
    std::string name = trim(text.substr(0, eq)), value = trim(text.substr(eq + 1));
    const ParamDef* def = find_def(name);
    if (!def) throw Error("detection parameter '" + name + "': unknown (keyscope params lists them)", 2);
    double v = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || end != value.data() + value.size() || value.empty())
        throw Error("detection parameter " + name + ": bad value '" + value + "' (expected a number)", 2);
    if (!std::isfinite(v) || v < def->min || v > def->max) {
        std::ostringstream os;
        os << "detection parameter " << name << ": value " << value
           << " out of range (must be >= " << def->min;
        if (def->max < kInf) os << " and <= " << def->max;
        os << ")";
        throw Error(os.str(), 2);
    }
    return {name, v};
}

}  // namespace

const std::vector<ParamDef>& param_defs() {
    static const std::vector<ParamDef> defs = {
        // absolute limits are per key; wider entities get them scaled
        {"prefix.rate_scale", 10, 0, 1e9, "absolute rate/count/bytes limits times this for a key prefix"},
        {"slot.rate_scale", 1, 0, 1e9, "absolute limits times this for a cluster slot"},
        {"server.rate_scale", 30, 0, 1e9, "absolute limits times this for a whole server"},
        // reads: absolute, temporal, relative
        {"read.rate", 3000, 0, kInf, "reads/s of one entity in an interval (0 = off)"},
        {"read.count", 0, 0, kInf, "reads in the sliding window (0 = off)"},
        {"read.multiplier", 2, 1, 1e6, "reads/s above this many times the entity's baseline"},
        {"read.min_rate", 200, 0, kInf, "reads/s below which temporal and relative read rules stay quiet"},
        {"read.share", 0.5, 0, 1, "a key's share of its server's reads (0 = off)"},
        {"read.peer_factor", 10, 0, 1e6, "times the median peer (key, prefix, slot) reads/s (0 = off)"},
        {"read.for_intervals", 1, 1, 1000, "intervals in a row above the threshold before a hotspot starts"},
        {"read.bands.1", 2, 1, 1e6, "read severity bands: low"},
        {"read.bands.2", 5, 1, 1e6, "medium"},
        {"read.bands.3", 10, 1, 1e6, "high"},
        {"read.bands.4", 20, 1, 1e6, "critical"},
        // writes
        {"write.rate", 1000, 0, kInf, "writes/s of one entity in an interval (0 = off)"},
        {"write.count", 0, 0, kInf, "writes in the sliding window (0 = off)"},
        {"write.multiplier", 2, 1, 1e6, "writes/s above this many times the baseline"},
        {"write.min_rate", 100, 0, kInf, "writes/s below which temporal and relative write rules stay quiet"},
        {"write.share", 0.5, 0, 1, "a key's share of its server's writes (0 = off)"},
        {"write.peer_factor", 10, 0, 1e6, "times the median peer writes/s (0 = off)"},
        {"write.for_intervals", 1, 1, 1000, "intervals in a row above the threshold before a hotspot starts"},
        {"write.bands.1", 2, 1, 1e6, "write severity bands: low"},
        {"write.bands.2", 3, 1, 1e6, "medium"},
        {"write.bands.3", 6, 1, 1e6, "high"},
        {"write.bands.4", 12, 1, 1e6, "critical"},
        // size
        {"size.value_bytes", 1048576, 0, kInf, "largest reply value in bytes (0 = off)"},
        {"size.bytes_out_rate", 50e6, 0, kInf, "reply bytes/s of one entity (0 = off)"},
        {"size.multiplier", 4, 1, 1e6, "reply bytes/s above this many times the baseline"},
        {"size.min_rate", 1e6, 0, kInf, "reply bytes/s below which the temporal size rule stays quiet"},
        {"size.for_intervals", 1, 1, 1000, "intervals in a row above the threshold before a hotspot starts"},
        {"size.bands.1", 2, 1, 1e6, "size severity bands: low"},
        {"size.bands.2", 4, 1, 1e6, "medium"},
        {"size.bands.3", 8, 1, 1e6, "high"},
        {"size.bands.4", 16, 1, 1e6, "critical"},
        // latency
        {"latency.p99_ms", 10, 0, kInf, "p99 latency in ms (0 = off)"},
        {"latency.multiplier", 4, 1, 1e6, "p99 above this many times the baseline p99"},
        {"latency.min_p99_ms", 5, 0, kInf, "p99 in ms below which the temporal latency rule stays quiet"},
        {"latency.min_ops", 20, 1, kInf, "operations an interval needs for its p99 to count"},
        {"latency.for_intervals", 3, 1, 1000,
         "intervals in a row above the threshold before a hotspot starts"},
        {"latency.bands.1", 2, 1, 1e6, "latency severity bands: low"},
        {"latency.bands.2", 4, 1, 1e6, "medium"},
        {"latency.bands.3", 8, 1, 1e6, "high"},
        {"latency.bands.4", 16, 1, 1e6, "critical"},
        // errors
        {"error.rate_pct", 5, 0, 100, "error replies as % of operations (0 = off)"},
        {"error.margin_pct", 2, 0, 100, "error % above the baseline error % by this margin"},
        {"error.min_errors", 10, 1, kInf, "errors an interval needs before an error rule fires"},
        {"error.for_intervals", 1, 1, 1000, "intervals in a row above the threshold before a hotspot starts"},
        {"error.bands.1", 2, 1, 1e6, "error severity bands: low"},
        {"error.bands.2", 4, 1, 1e6, "medium"},
        {"error.bands.3", 8, 1, 1e6, "high"},
        {"error.bands.4", 16, 1, 1e6, "critical"},
    };
    return defs;
}

DetectConfig::DetectConfig() {
    for (const auto& d : param_defs()) global_[d.name] = d.fallback;
}

void DetectConfig::set(std::string_view assignment) {
    auto [name, v] = parse_assignment(assignment);
    global_[name] = v;
}

void DetectConfig::add_override(std::string_view text) {
    std::istringstream in{std::string(text)};
    std::string scope_word;
    in >> scope_word;
    Override o;
    auto eq = scope_word.find('=');
    std::string scope = scope_word.substr(0, eq);
    if (eq == std::string::npos || (scope != "server" && scope != "prefix") || eq + 1 == scope_word.size())
        throw Error("override '" + std::string(text) +
                        "': must start with server=HOST:PORT or prefix=GLOB, then NAME=VALUE pairs",
                    2);
    o.scope = scope == "server" ? Override::Scope::server : Override::Scope::prefix;
    o.match = scope_word.substr(eq + 1);
    std::string pair;
    while (in >> pair) {
        auto [name, v] = parse_assignment(pair);
        o.values[name] = v;
    }
    if (o.values.empty())
        throw Error("override '" + std::string(text) + "': no NAME=VALUE pairs after " + scope_word, 2);
    overrides_.push_back(std::move(o));
}

double DetectConfig::get(std::string_view name, std::string_view server, std::string_view key) const {
    // the last matching override of a scope wins, like later flags over earlier ones
    const double *by_prefix = nullptr, *by_server = nullptr;
    for (const auto& o : overrides_) {
        auto it = o.values.find(std::string(name));
        if (it == o.values.end()) continue;
        if (o.scope == Override::Scope::prefix && !key.empty() && glob_match(o.match, key))
            by_prefix = &it->second;
        if (o.scope == Override::Scope::server && o.match == server) by_server = &it->second;
    }
    if (by_prefix) return *by_prefix;
    if (by_server) return *by_server;
    auto it = global_.find(std::string(name));
    if (it == global_.end()) throw Error("internal: unknown detection parameter " + std::string(name));
    return it->second;
}

std::size_t DetectConfig::index_of(std::string_view name) {
    const auto& defs = param_defs();
    for (std::size_t i = 0; i < defs.size(); ++i)
        if (name == defs[i].name) return i;
    throw Error("internal: unknown detection parameter " + std::string(name));
}

std::vector<double> DetectConfig::resolve(std::string_view server, std::string_view key) const {
    const auto& defs = param_defs();
    std::vector<double> v(defs.size());
    for (std::size_t i = 0; i < defs.size(); ++i) v[i] = get(defs[i].name, server, key);
    return v;
}

bool DetectConfig::has_prefix_overrides() const {
    return std::any_of(overrides_.begin(), overrides_.end(),
                       [](const Override& o) { return o.scope == Override::Scope::prefix; });
}

void DetectConfig::validate() const {
    auto check = [](const std::string& where, const std::map<std::string, double>& values,
                    const std::function<double(const std::string&)>& value_of) {
        for (const char* kind : {"read", "write", "size", "latency", "error"}) {
            std::string k = kind;
            bool touched = false;
            for (int i = 1; i <= 4; ++i) touched = touched || values.count(k + ".bands." + std::to_string(i));
            if (!touched) continue;
            double prev = 0;
            for (int i = 1; i <= 4; ++i) {
                std::string n = k + ".bands." + std::to_string(i);
                double v = value_of(n);
                if (v < prev)
                    throw Error(where + n + "=" + fmt_value(v) + ": severity bands must not decrease (" + k +
                                    ".bands.1 <= .2 <= .3 <= .4)",
                                2);
                prev = v;
            }
        }
    };
    check("detection parameter ", global_, [&](const std::string& n) { return global_.at(n); });
    for (const auto& o : overrides_)
        check("override " + o.match + ": ", o.values, [&](const std::string& n) {
            auto it = o.values.find(n);
            return it != o.values.end() ? it->second : global_.at(n);
        });
    if (window_s <= 0 || history_s < window_s)
        throw Error("--window/--history: the history (" + fmt_value(history_s) +
                        "s) must be at least the window (" + fmt_value(window_s) + "s)",
                    2);
}

std::array<double, 4> DetectConfig::bands(std::string_view kind, std::string_view server,
                                          std::string_view key) const {
    std::array<double, 4> b{};
    for (int i = 0; i < 4; ++i)
        b[i] = get(std::string(kind) + ".bands." + std::to_string(i + 1), server, key);
    return b;
}

}  // namespace keyscope
