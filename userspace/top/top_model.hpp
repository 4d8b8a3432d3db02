// The state of `keyscope top`, with no terminal: rows built from snapshots,
// sorting, filtering, a selection that follows its key across refreshes, and
// per-key trends. The renderer only reads it; tests drive it directly.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "output/snapshot.hpp"

namespace keyscope {

/// What `t` asks for: a rate, for ten minutes.
constexpr int kTopThrottleRate = 500;

enum class TopPage { keys, prefixes, slots, servers, hotspots, mitigations };

/// Columns of the key table, in display order.
enum class Column {
    key,
    server,
    ops,
    reads,
    writes,
    p50,
    p99,
    bytes,
    max_value,
    error_pct,
    severity,
    count_
};
const char* column_title(Column c);

/// One key as the table shows it; rates per second over the last interval.
struct TopRow {
    std::string key, server;
    bool truncated = false;
    double ops = 0, reads = 0, writes = 0, p50_us = 0, p99_us = 0, bytes = 0, error_pct = 0;
    std::uint64_t max_value = 0;
    int severity = -1;          // -1 none, 0 low .. 3 critical (the worst active hotspot of this key)
    std::vector<double> trend;  // ops/s over the last minute, oldest first
    LatencyHistogram lat{};
};

/// The number a numeric column sorts `r` by (0 for key and server, which sort as text).
double column_value(Column c, const TopRow& r);

/// The header's numbers.
struct TopSummary {
    std::vector<std::string> targets;
    double ops = 0, reads = 0, writes = 0, p99_us = 0, error_pct = 0;
    int hotspots[4] = {0, 0, 0, 0};  // by severity
    double bpf_ns_per_request = -1;  // -1: unknown (kernel bpf_stats off)
    double map_fill = 0;             // key map use, 0..1
    double cpu_percent = 0;          // keyscope's own, % of one core
    std::uint64_t unattributed = 0;  // last interval
    double age_s = 0;                // of the data shown
};

class TopModel {
public:
    /// Rebuilds rows from a new snapshot; keeps sort, filter and selection.
    void update(const Snapshot& s);
    const Snapshot& snapshot() const { return snap_; }
    TopSummary summary(double now_unix) const;

    /// Visible rows: filtered, then sorted.
    const std::vector<TopRow>& rows() const { return rows_; }
    void sort_by(Column c);
    /// Moves the sort one column left (-1) or right (+1).
    void shift_sort(int dir);
    void invert() { descending_ = !descending_, resort(); }
    Column sort_column() const { return sort_; }
    bool descending() const { return descending_; }

    /// Keeps keys containing `text` (case-sensitive; "" = all).
    void set_filter(std::string text);
    const std::string& filter() const { return filter_; }

    void move(long delta);
    void select_first() { move(-static_cast<long>(rows_.size())); }
    void select_last() { move(static_cast<long>(rows_.size())); }
    std::optional<std::size_t> selected() const;
    const TopRow* selected_row() const;

    /// Hotspot events seen for a key ("HH:MM:SS read high"), newest last.
    std::vector<std::string> history(const std::string& server, const std::string& key) const;

private:
    void rebuild();
    void resort();

    Snapshot snap_;
    std::vector<TopRow> all_, rows_;
    Column sort_ = Column::ops;
    bool descending_ = true;
    std::string filter_;
    std::optional<std::pair<std::string, std::string>> selected_id_;  // server, key
    std::size_t selected_pos_ = 0;
    std::map<std::pair<std::string, std::string>, std::deque<std::pair<double, double>>> trends_;
    std::map<std::pair<std::string, std::string>, std::vector<std::string>> history_;
    std::map<std::string, std::string> last_state_;  // hotspot identity -> severity
    std::map<std::string, std::uint64_t> last_prog_ns_;
    double bpf_ns_per_request_ = -1;
};

/// Fixed-width number formats: at most `width` characters, k/M/G suffixes.
std::string fmt_count(double v, int width);
std::string fmt_bytes(double v, int width);
std::string fmt_latency_us(double us, int width);
/// A sparkline of `values` in `width` cells (UTF-8 blocks, or ASCII); more
/// values than cells are averaged into the cells, fewer are right-aligned.
std::string sparkline(const std::vector<double>& values, int width, bool utf8);

}  // namespace keyscope
