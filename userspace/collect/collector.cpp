#include "collect/collector.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "bpf/probes.hpp"
#include "util/error.hpp"

namespace keyscope {
namespace {

// BPF programs run to completion in microseconds; after the flip none can
// still be writing the old generation once this much time has passed.
constexpr auto kGenerationGrace = std::chrono::milliseconds(5);

}  // namespace

Collector::Collector(Probes& probes, std::size_t ntargets)
    : probes_(probes), ntargets_(ntargets), ncpu_(libbpf_num_possible_cpus()) {
    if (ncpu_ <= 0) throw Error("cannot count possible CPUs: " + errno_text(ncpu_));
    probes_.set_gen(gen_);
}

Totals Collector::take_counters(std::uint32_t gen, std::uint32_t target) {
    std::vector<ks_counters> per_cpu(static_cast<std::size_t>(ncpu_));
    std::uint32_t idx = gen * KS_MAX_TARGETS + target;
    int fd = probes_.counters_fd();
    if (bpf_map_lookup_elem(fd, &idx, per_cpu.data()))
        throw Error("reading counters failed: " + errno_text(errno));
    Totals t;
    for (const auto& c : per_cpu) t += Totals::from_bpf(c);
    std::vector<ks_counters> zero(static_cast<std::size_t>(ncpu_));
    if (bpf_map_update_elem(fd, &idx, zero.data(), BPF_ANY))
        throw Error("resetting counters failed: " + errno_text(errno));
    return t;
}

void Collector::drain_keys(std::uint32_t gen, std::vector<KeyStats>& out) {
    // no program writes this half any more (see kGenerationGrace): read the
    // claimed slots through the mapping, then zero them for its next turn.
    // `out` holds the last interval's keys: overwriting them in place keeps
    // their names' buffers instead of freeing and allocating one per key.
    std::size_t n = 0;
    KeyTableView t = probes_.key_table(gen);
    for (std::uint32_t b = 0; b < t.buckets; ++b) {
        ks_key_bucket& bucket = t.tags[b];
        bool used = false;
        for (std::uint32_t w = 0; w < KS_KEY_WAYS; ++w) {
            if (!bucket.tag[w]) continue;
            used = true;
            ks_key_stats& s = t.stats[static_cast<std::size_t>(b) * KS_KEY_WAYS + w];
            ks_key_ref ref{};
            ref.hash = s.hash;
            ref.target = s.target;
            (n < out.size() ? out[n] : out.emplace_back()).load(ref, s);
            ++n;
            std::memset(&s, 0, sizeof s);
        }
        if (used) std::memset(&bucket, 0, sizeof bucket);
    }
    out.resize(n);
}

void Collector::collect(IntervalData& into) {
    std::uint32_t old = gen_;
    gen_ ^= 1;
    probes_.set_gen(gen_);
    std::this_thread::sleep_for(kGenerationGrace);
    into.per_target.assign(ntargets_, Totals{});
    for (std::uint32_t t = 0; t < ntargets_; ++t) into.per_target[t] = take_counters(old, t);
    drain_keys(old, into.keys);
}

}  // namespace keyscope
