// The daemon's work per interval without the kernel and without the machine's
// network noise: synthetic intervals shaped like GET -P16 over many uniform
// keys (the kernel's table full of evenly quiet keys, new ones every
// interval) go through the steps `keyscope run` takes after collecting:
// the cumulative table, the roll-up, detection and the interval's top keys.
// Prints the thread CPU time of each step per interval, and what that is as a
// share of one core at 1 s intervals.
// Usage: bench_daemon [INTERVALS] [KEYS_PER_INTERVAL] [DISTINCT_KEYS]
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include "collect/stats.hpp"
#include "detect/detector.hpp"
#include "detect/entities.hpp"

extern "C" {
#include "hist.h"
}

using namespace keyscope;

namespace {

double thread_ms() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

// One interval as the collector leaves it: `per` keys drawn from `pool`, each
// with 1-9 reads (about 5, as 500k GET/s spread over 100000 keys) and their
// latencies in two neighbouring buckets around 30-60 us.
void fill_interval(IntervalData& d, std::mt19937_64& rng, std::size_t per, std::uint64_t pool) {
    d.per_target.assign(1, Totals{});
    d.keys.resize(per);
    // distinct keys, as the kernel's table holds each key once
    std::unordered_set<std::uint64_t> ids;
    while (ids.size() < per) ids.insert(rng() % pool);
    auto next_id = ids.begin();
    char name[32];
    for (auto& k : d.keys) {
        const std::uint64_t id = *next_id++;
        std::snprintf(name, sizeof name, "key:%012llu", static_cast<unsigned long long>(id));
        k = KeyStats{};
        k.hash = id * 0x9e3779b97f4a7c15ull + 1;
        k.key = name;
        k.key_len = static_cast<std::uint32_t>(k.key.size());
        k.reads = 1 + rng() % 9;
        k.bytes_in = 37 * k.reads;
        k.bytes_out = 9 * k.reads;
        k.max_value = 3;
        const auto b = ks_lat_bucket(30'000 + rng() % 30'000);
        k.lat[b] = k.reads - 1;
        k.lat[b + 1] = 1;
        k.lat_lo = static_cast<std::uint8_t>(b);
        k.lat_hi = static_cast<std::uint8_t>(b + 2);
        d.per_target[0].requests += k.reads;
        d.per_target[0].key_ops += k.reads;
        d.per_target[0].replies += k.reads;
    }
}

}  // namespace

int main(int argc, char** argv) try {
    const int intervals = argc > 1 ? std::atoi(argv[1]) : 120;
    const long per = argc > 2 ? std::atol(argv[2]) : 16000;
    const long pool = argc > 3 ? std::atol(argv[3]) : 100000;
    constexpr int kWarmUp = 20;  // the cumulative table's bar and the detector's history settle first
    if (intervals <= kWarmUp || per < 1 || pool < per)
        throw std::runtime_error(
            "INTERVALS must be over 20, KEYS_PER_INTERVAL positive and DISTINCT_KEYS at least as many");

    std::mt19937_64 rng(42);
    DetectConfig cfg;
    Detector detector(cfg, {"127.0.0.1:6379"});
    KeyTable cumulative(2 * 16384);  // as `keyscope run` with the default --max-keys
    RollUp roll_up_interval(cfg.prefixes);
    std::vector<LatencyHistogram> server_lat;
    IntervalData d;
    double cum = 0, roll = 0, detect = 0, top = 0;
    for (int i = 0; i < intervals; ++i) {
        fill_interval(d, rng, static_cast<std::size_t>(per), static_cast<std::uint64_t>(pool));
        const double t0 = thread_ms();
        cumulative.name_keys(d.keys);
        for (const auto& k : d.keys) cumulative.add(k);
        const double t1 = thread_ms();
        const auto& samples = roll_up_interval(d, &server_lat);
        const double t2 = thread_ms();
        detector.observe(samples, 1000.0 + i, 1.0);
        const auto active = detector.active();
        const double t3 = thread_ms();
        const auto shown = top_keys(d.keys, 10);
        const double t4 = thread_ms();
        if (i < kWarmUp) continue;
        cum += t1 - t0;
        roll += t2 - t1;
        detect += t3 - t2;
        top += t4 - t3;
    }
    const double n = intervals - kWarmUp, total = (cum + roll + detect + top) / n;
    std::printf(
        "%ld of %ld keys per interval: cumulative %.2f, roll-up %.2f, detection %.2f, top keys %.2f ms "
        "per interval; %.2f ms in all, %.2f %% of a core at 1 s intervals (%zu entities tracked, %llu keys "
        "forgotten)\n",
        per, pool, cum / n, roll / n, detect / n, top / n, total, total / 10, detector.tracked(),
        static_cast<unsigned long long>(cumulative.forgotten()));
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "bench_daemon: %s\n", e.what());
    return 1;
}
