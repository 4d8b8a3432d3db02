#include "top/top_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace keyscope {
namespace {

constexpr double kTrendSeconds = 60;

int severity_rank(const std::string& s) {
    if (s == "low") return 0;
    if (s == "medium") return 1;
    if (s == "high") return 2;
    if (s == "critical") return 3;
    return -1;
}

double per_s(double v, double secs) {
    return secs > 0 ? v / secs : 0;
}

std::string fit(std::string s, int width) {
    if (width <= 0) return "";
    if (static_cast<int>(s.size()) > width) s = s.substr(0, static_cast<std::size_t>(width));
    return s;
}

std::string scaled(double v, int width, const char* const* units, double step) {
    if (width <= 0) return "";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    if (static_cast<int>(std::string(buf).size()) <= width) return buf;
    for (int u = 1; units[u]; ++u) {
        v /= step;
        for (int prec = 1; prec >= 0; --prec) {
            // "0M" for 100k would make a busy key look idle: a unit must show a non-zero number
            if (v < (prec ? 0.1 : 1.0)) continue;
            std::snprintf(buf, sizeof buf, "%.*f%s", prec, v, units[u]);
            if (static_cast<int>(std::string(buf).size()) <= width) return buf;
        }
    }
    return std::string(static_cast<std::size_t>(width), '#');  // does not fit: never wider
}

}  // namespace

const char* column_title(Column c) {
    static const char* titles[] = {"KEY", "SERVER",  "OPS/s",  "READS/s", "WRITES/s", "P50",
                                   "P99", "BYTES/s", "MAXVAL", "ERR%",    "HOT"};
    return titles[static_cast<int>(c)];
}

std::string fmt_count(double v, int width) {
    static const char* const units[] = {"", "k", "M", "G", "T", nullptr};
    return scaled(std::max(v, 0.0), width, units, 1000);
}

std::string fmt_bytes(double v, int width) {
    static const char* const units[] = {"", "K", "M", "G", "T", nullptr};
    return scaled(std::max(v, 0.0), width, units, 1024);
}

std::string fmt_latency_us(double us, int width) {
    if (width <= 0) return "";
    char buf[64];
    if (us <= 0) return fit("-", width);
    // the unit is chosen after rounding: 999.6 us is "1.0ms", not "1000us"
    if (us < 999.5)
        std::snprintf(buf, sizeof buf, "%.0fus", us);
    else if (us < 999950)
        std::snprintf(buf, sizeof buf, "%.1fms", us / 1000);
    else
        std::snprintf(buf, sizeof buf, "%.1fs", us / 1e6);
    std::string s = buf;
    return static_cast<int>(s.size()) <= width ? s : std::string(static_cast<std::size_t>(width), '#');
}

std::string sparkline(const std::vector<double>& values, int width, bool utf8) {
    static const char* blocks[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                   "\u2585", "\u2586", "\u2587", "\u2588"};
    static const char ascii[] = "_.-=+*#@";
    std::string out;
    if (width <= 0) return out;
    // more samples than cells: each cell shows the mean of its share, so the
    // whole history (a minute) fits
    std::vector<double> v;
    if (static_cast<int>(values.size()) <= width) {
        v = values;
    } else {
        for (int c = 0; c < width; ++c) {
            std::size_t from = values.size() * static_cast<std::size_t>(c) / static_cast<std::size_t>(width);
            std::size_t to =
                values.size() * static_cast<std::size_t>(c + 1) / static_cast<std::size_t>(width);
            double sum = 0;
            for (std::size_t k = from; k < to; ++k) sum += values[k];
            v.push_back(to > from ? sum / static_cast<double>(to - from) : 0);
        }
    }
    double hi = 0;
    for (double x : v) hi = std::max(hi, x);
    for (int pad = static_cast<int>(v.size()); pad < width; ++pad) out += ' ';
    for (double x : v) {
        int level = hi > 0 ? static_cast<int>(std::lround(x / hi * 7)) : 0;
        level = std::clamp(level, 0, 7);
        if (utf8)
            out += blocks[level];
        else
            out += ascii[level];
    }
    return out;
}

void TopModel::update(const Snapshot& s) {
    // hotspot history: one line per start or severity change, per entity
    // (only active hotspots are remembered, so one that ends and starts again gets a new line)
    std::map<std::string, std::string> now_state;
    for (const auto& h : s.hotspots) {
        std::string id = h.entity + "\x1f" + h.server + "\x1f" + h.name + "\x1f" + h.kind;
        now_state[id] = h.severity;
        auto it = last_state_.find(id);
        if (it != last_state_.end() && it->second == h.severity) continue;
        if (h.entity != "key") continue;
        char when[16] = "?";
        std::time_t t = static_cast<std::time_t>(s.ts);
        std::tm tm{};
        if (localtime_r(&t, &tm)) std::strftime(when, sizeof when, "%H:%M:%S", &tm);
        auto& hist = history_[{h.server, h.name}];
        hist.push_back(std::string(when) + " " + h.kind + " " + h.severity + ": " + h.detail);
        if (hist.size() > 50) hist.erase(hist.begin());
    }
    last_state_ = std::move(now_state);
    // BPF cost per request since the previous snapshot
    // (the first snapshot has nothing to compare with: its total covers more than one interval)
    std::uint64_t requests = 0, ns = 0;
    for (const auto& srv : s.servers) requests += srv.interval.requests;
    for (const auto& p : s.health.programs) {
        auto [it, first] = last_prog_ns_.try_emplace(p.name, p.run_time_ns);
        if (!first && p.run_time_ns >= it->second) ns += p.run_time_ns - it->second;
        it->second = p.run_time_ns;
    }
    bpf_ns_per_request_ = requests && ns ? static_cast<double>(ns) / static_cast<double>(requests) : -1;

    snap_ = s;
    all_.clear();
    std::map<std::pair<std::string, std::string>, int> sev;
    for (const auto& h : s.hotspots)
        if (h.entity == "key") {
            int& v = sev.try_emplace({h.server, h.name}, -1).first->second;
            v = std::max(v, severity_rank(h.severity));
        }
    // keys that show the same (redaction, truncation) cannot be told apart: one row
    std::map<std::pair<std::string, std::string>, KeySnapshot> merged;
    std::vector<std::pair<std::string, std::string>> order;
    for (const auto& k : s.keys) {
        auto [it, fresh] = merged.try_emplace({k.server, k.key}, k);
        if (fresh) {
            order.push_back(it->first);
            continue;
        }
        KeySnapshot& m = it->second;
        m.reads += k.reads, m.writes += k.writes, m.errors += k.errors, m.redirects += k.redirects;
        m.bytes_in += k.bytes_in, m.bytes_out += k.bytes_out;
        m.max_value_bytes = std::max(m.max_value_bytes, k.max_value_bytes);
        for (std::size_t b = 0; b < m.lat.size(); ++b) m.lat[b] += k.lat[b];
        m.p50_us = quantile_us(m.lat, 0.5);
        m.p99_us = quantile_us(m.lat, 0.99);
    }
    for (const auto& id : order) {
        const KeySnapshot& k = merged.at(id);
        TopRow r;
        r.key = k.key;
        r.server = k.server;
        r.truncated = k.truncated;
        r.reads = per_s(static_cast<double>(k.reads), s.interval_s);
        r.writes = per_s(static_cast<double>(k.writes), s.interval_s);
        r.ops = r.reads + r.writes;
        r.p50_us = k.p50_us;
        r.p99_us = k.p99_us;
        r.bytes = per_s(static_cast<double>(k.bytes_in + k.bytes_out), s.interval_s);
        r.max_value = k.max_value_bytes;
        auto ops = k.reads + k.writes;
        r.error_pct = ops ? 100.0 * static_cast<double>(k.errors) / static_cast<double>(ops) : 0;
        if (auto it = sev.find({k.server, k.key}); it != sev.end()) r.severity = it->second;
        r.lat = k.lat;
        auto& tr = trends_[{k.server, k.key}];
        tr.emplace_back(s.ts, r.ops);
        all_.push_back(std::move(r));
    }
    // trends: forget samples older than a minute, and keys gone for a minute
    for (auto it = trends_.begin(); it != trends_.end();) {
        auto& d = it->second;
        while (!d.empty() && d.front().first < s.ts - kTrendSeconds) d.pop_front();
        it = d.empty() ? trends_.erase(it) : std::next(it);
    }
    for (auto& r : all_)
        if (auto it = trends_.find({r.server, r.key}); it != trends_.end())
            for (const auto& [t, v] : it->second) r.trend.push_back(v);
    rebuild();
}

TopSummary TopModel::summary(double now_unix) const {
    TopSummary sum;
    std::uint64_t reads = 0, writes = 0, errors = 0, ops = 0, unattributed = 0;
    double p99 = 0;
    for (const auto& srv : snap_.servers) {
        sum.targets.push_back(srv.server);
        unattributed += srv.interval.unattributed;
        errors += srv.interval.errors;
        ops += srv.interval.requests;
        p99 = std::max(p99, srv.p99_us);
    }
    for (const auto& k : snap_.keys) reads += k.reads, writes += k.writes;
    sum.ops = per_s(static_cast<double>(ops), snap_.interval_s);
    sum.reads = per_s(static_cast<double>(reads), snap_.interval_s);
    sum.writes = per_s(static_cast<double>(writes), snap_.interval_s);
    sum.p99_us = p99;
    sum.error_pct = ops ? 100.0 * static_cast<double>(errors) / static_cast<double>(ops) : 0;
    for (const auto& h : snap_.hotspots)
        if (int r = severity_rank(h.severity); r >= 0) sum.hotspots[r]++;
    sum.bpf_ns_per_request = bpf_ns_per_request_;
    sum.map_fill = snap_.health.key_map_capacity ? static_cast<double>(snap_.health.key_map_used) /
                                                       static_cast<double>(snap_.health.key_map_capacity)
                                                 : 0;
    sum.unattributed = unattributed;
    sum.cpu_percent = snap_.health.cpu_percent;
    sum.age_s = snap_.ts > 0 ? now_unix - snap_.ts : 0;
    return sum;
}

void TopModel::sort_by(Column c) {
    if (c == sort_) {
        descending_ = !descending_;
    } else {
        sort_ = c;
        descending_ = c != Column::key && c != Column::server;  // numbers: biggest first
    }
    resort();
}

void TopModel::shift_sort(int dir) {
    int n = static_cast<int>(Column::count_);
    int c = (static_cast<int>(sort_) + dir % n + n) % n;
    sort_ = static_cast<Column>(c);
    descending_ = sort_ != Column::key && sort_ != Column::server;
    resort();
}

void TopModel::set_filter(std::string text) {
    filter_ = std::move(text);
    rebuild();
}

double column_value(Column c, const TopRow& r) {
    switch (c) {
        case Column::ops:
            return r.ops;
        case Column::reads:
            return r.reads;
        case Column::writes:
            return r.writes;
        case Column::p50:
            return r.p50_us;
        case Column::p99:
            return r.p99_us;
        case Column::bytes:
            return r.bytes;
        case Column::max_value:
            return static_cast<double>(r.max_value);
        case Column::error_pct:
            return r.error_pct;
        case Column::severity:
            return r.severity;
        default:
            return 0;
    }
}

void TopModel::rebuild() {
    rows_.clear();
    for (const auto& r : all_)
        if (filter_.empty() || r.key.find(filter_) != std::string::npos) rows_.push_back(r);
    resort();
}

void TopModel::resort() {
    std::stable_sort(rows_.begin(), rows_.end(), [&](const TopRow& a, const TopRow& b) {
        int cmp = 0;
        if (sort_ == Column::key)
            cmp = a.key.compare(b.key);
        else if (sort_ == Column::server)
            cmp = a.server.compare(b.server);
        else {
            double x = column_value(sort_, a), y = column_value(sort_, b);
            cmp = x < y ? -1 : x > y ? 1 : 0;
        }
        // ties: by key, then server, always ascending, so rows do not jump between refreshes
        if (cmp == 0) return a.key != b.key ? a.key < b.key : a.server < b.server;
        return descending_ ? cmp > 0 : cmp < 0;
    });
    // the selection follows its key; if the key is gone, keep the position
    if (selected_id_) {
        for (std::size_t i = 0; i < rows_.size(); ++i)
            if (rows_[i].server == selected_id_->first && rows_[i].key == selected_id_->second) {
                selected_pos_ = i;
                return;
            }
    }
    if (rows_.empty()) {
        selected_pos_ = 0;
        return;
    }
    selected_pos_ = std::min(selected_pos_, rows_.size() - 1);
    selected_id_ = {rows_[selected_pos_].server, rows_[selected_pos_].key};
}

void TopModel::move(long delta) {
    if (rows_.empty()) return;
    long pos = static_cast<long>(selected_pos_) + delta;
    pos = std::clamp(pos, 0L, static_cast<long>(rows_.size()) - 1);
    selected_pos_ = static_cast<std::size_t>(pos);
    selected_id_ = {rows_[selected_pos_].server, rows_[selected_pos_].key};
}

std::optional<std::size_t> TopModel::selected() const {
    if (rows_.empty()) return std::nullopt;
    return selected_pos_;
}

const TopRow* TopModel::selected_row() const {
    auto s = selected();
    return s ? &rows_[*s] : nullptr;
}

std::vector<std::string> TopModel::history(const std::string& server, const std::string& key) const {
    auto it = history_.find({server, key});
    return it == history_.end() ? std::vector<std::string>{} : it->second;
}

}  // namespace keyscope
