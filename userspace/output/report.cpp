#include "output/report.hpp"

#include <algorithm>
#include <cstdio>

namespace keyscope {
namespace {

Totals sum(const IntervalData& d) {
    Totals t;
    for (const auto& p : d.per_target) t += p;
    return t;
}

const Target* target_of(const ReportContext& ctx, std::uint32_t id) {
    return id < ctx.targets.size() ? &ctx.targets[id] : nullptr;
}

std::string key_text(const ReportContext& ctx, const KeyStats& k) {
    if (!k.named)
        return ctx.keys.mode() == Redaction::none ? "(unnamed)" : ctx.keys.format("", false, k.hash);
    return ctx.keys.format(k.key, k.truncated, k.hash);
}

double round2(double v) {
    return static_cast<double>(static_cast<long long>(v * 100 + 0.5)) / 100;
}

}  // namespace

nlohmann::json totals_json(const Totals& t) {
    return {{"requests", t.requests},
            {"key_ops", t.key_ops},
            {"keyless", t.keyless},
            {"unknown_commands", t.unknown_cmds},
            {"replies", t.replies},
            {"errors", t.errors},
            {"redirects", t.redirects},
            {"bytes_in", t.bytes_in},
            {"bytes_out", t.bytes_out},
            {"unattributed", t.unattributed},
            {"key_map_full", t.key_map_full},
            {"reply_unmatched", t.reply_unmatched},
            {"parse_errors", t.parse_errors},
            {"retransmits_skipped", t.seq_retrans},
            {"seq_gaps", t.seq_gaps},
            {"flow_table_full", t.flow_full},
            {"oversized_chunks", t.truncated_windows},
            {"hits", t.hits},
            {"misses", t.misses},
            {"unparsed", t.unparsed}};
}

nlohmann::json ready_json(const ReportContext& ctx, const std::string& probe) {
    auto arr = nlohmann::json::array();
    for (const auto& t : ctx.targets) {
        nlohmann::json j = {{"server", t.server()}, {"proto", t.proto}};
        if (t.pid) j["pid"] = t.pid;
        if (!t.comm.empty()) j["process"] = t.comm;
        arr.push_back(j);
    }
    return {{"type", "ready"}, {"probe", probe}, {"targets", arr}};
}

nlohmann::json interval_json(const std::string& type, double ts, double interval_s, const IntervalData& data,
                             const ReportContext& ctx) {
    Totals total = sum(data);
    auto top = top_keys(data.keys, ctx.top_n);
    std::uint64_t listed = 0;
    auto keys = nlohmann::json::array();
    for (const auto& k : top) {
        listed += k.ops();
        const Target* t = target_of(ctx, k.target);
        keys.push_back({{"server", t ? t->server() : "?"},
                        {"proto", t ? t->proto : "?"},
                        {"key", key_text(ctx, k)},
                        {"key_len", k.key_len},
                        {"reads", k.reads},
                        {"writes", k.writes},
                        {"errors", k.errors},
                        {"redirects", k.redirects},
                        {"bytes_in", k.bytes_in},
                        {"bytes_out", k.bytes_out},
                        {"max_value_bytes", k.max_value},
                        {"p50_us", round2(quantile_us(k.lat, 0.50))},
                        {"p99_us", round2(quantile_us(k.lat, 0.99))},
                        {"truncated", k.truncated}});
        if (t && t->proto == "memcached") {
            // every memcached read is a retrieval: what did not come back missed
            keys.back()["hits"] = k.hits;
            keys.back()["misses"] = k.reads > k.hits ? k.reads - k.hits : 0;
        }
    }
    auto servers = nlohmann::json::array();
    for (std::size_t i = 0; i < data.per_target.size() && i < ctx.targets.size(); ++i) {
        const auto& t = data.per_target[i];
        servers.push_back({{"server", ctx.targets[i].server()},
                           {"proto", ctx.targets[i].proto},
                           {"requests", t.requests},
                           {"key_ops", t.key_ops},
                           {"errors", t.errors},
                           {"unattributed", t.unattributed}});
    }
    std::uint64_t other = total.key_ops >= listed ? total.key_ops - listed : 0;
    auto totals = totals_json(total);
    totals["other_key_ops"] = other;
    return {{"type", type},    {"ts", round2(ts)},   {"interval_s", round2(interval_s)},
            {"total", totals}, {"servers", servers}, {"keys", keys}};
}

std::string interval_text(const std::string& title, double interval_s, const IntervalData& data,
                          const ReportContext& ctx) {
    Totals total = sum(data);
    auto top = top_keys(data.keys, ctx.top_n);
    std::string out;
    char line[512];
    double per_s = interval_s > 0 ? 1.0 / interval_s : 0;
    std::snprintf(line, sizeof line,
                  "%s  %.1fs  requests %llu (%.0f/s)  key ops %llu  keyless %llu  errors %llu  "
                  "unattributed %llu\n",
                  title.c_str(), interval_s, static_cast<unsigned long long>(total.requests),
                  static_cast<double>(total.requests) * per_s, static_cast<unsigned long long>(total.key_ops),
                  static_cast<unsigned long long>(total.keyless),
                  static_cast<unsigned long long>(total.errors),
                  static_cast<unsigned long long>(total.unattributed));
    out += line;
    std::snprintf(line, sizeof line, "  %-32s %-21s %9s %9s %7s %9s %9s %10s %5s\n", "KEY", "SERVER", "READS",
                  "WRITES", "ERRORS", "P50(us)", "P99(us)", "MAXVAL(B)", "HIT%");
    out += line;
    for (const auto& k : top) {
        const Target* t = target_of(ctx, k.target);
        std::string key = key_text(ctx, k);
        if (key.size() > 32) key = key.substr(0, 29) + "...";
        // memcached answers hit or miss per read; Redis replies do not say
        char hit[8] = "-";
        if (t && t->proto == "memcached" && k.reads)
            std::snprintf(
                hit, sizeof hit, "%.0f",
                100.0 * static_cast<double>(std::min(k.hits, k.reads)) / static_cast<double>(k.reads));
        std::snprintf(line, sizeof line, "  %-32s %-21s %9llu %9llu %7llu %9.1f %9.1f %10llu %5s\n",
                      key.c_str(), t ? t->server().c_str() : "?", static_cast<unsigned long long>(k.reads),
                      static_cast<unsigned long long>(k.writes), static_cast<unsigned long long>(k.errors),
                      quantile_us(k.lat, 0.5), quantile_us(k.lat, 0.99),
                      static_cast<unsigned long long>(k.max_value), hit);
        out += line;
    }
    if (top.empty()) out += "  (no key operations)\n";
    return out;
}

}  // namespace keyscope
