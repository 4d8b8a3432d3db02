#include "collect/collector.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "bpf/probes.hpp"
#include "util/error.hpp"

namespace keyscope {
namespace {

// BPF programs run to completion in microseconds; after the flip none can
// still be writing the old generation once this much time has passed.
constexpr auto kGenerationGrace = std::chrono::milliseconds(5);
constexpr std::uint32_t kBatch = 1024;

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

void Collector::drain_keys(int fd, std::vector<KeyStats>& out) {
    std::vector<ks_key_ref> keys(kBatch);
    std::vector<ks_key_stats> vals(kBatch);
    if (batch_ok_) {
        // lookup-and-delete in batches: one syscall per kBatch keys
        std::uint64_t token = 0;
        bool first = true;
        for (;;) {
            __u32 count = kBatch;
            LIBBPF_OPTS(bpf_map_batch_opts, opts);
            int err = bpf_map_lookup_and_delete_batch(fd, first ? nullptr : &token, &token, keys.data(),
                                                      vals.data(), &count, &opts);
            int e = err ? errno : 0;
            for (__u32 i = 0; i < count; ++i) out.push_back(KeyStats::from_bpf(keys[i], vals[i]));
            first = false;
            if (!err) continue;
            if (e == ENOENT) return;
            if (e == EINVAL || e == ENOTSUP || e == EOPNOTSUPP) {
                spdlog::debug("batch map reads unsupported ({}), falling back to key-by-key", errno_text(e));
                batch_ok_ = false;
                break;
            }
            throw Error("draining the key map failed: " + errno_text(e));
        }
    }
    // fallback: iterate, read, delete
    ks_key_ref cur{}, next{};
    ks_key_stats val{};
    while (bpf_map_get_next_key(fd, nullptr, &next) == 0) {
        cur = next;
        if (bpf_map_lookup_and_delete_elem(fd, &cur, &val) == 0 ||
            (bpf_map_lookup_elem(fd, &cur, &val) == 0 && bpf_map_delete_elem(fd, &cur) == 0))
            out.push_back(KeyStats::from_bpf(cur, val));
    }
}

IntervalData Collector::collect() {
    std::uint32_t old = gen_;
    gen_ ^= 1;
    probes_.set_gen(gen_);
    std::this_thread::sleep_for(kGenerationGrace);
    IntervalData d;
    d.per_target.resize(ntargets_);
    for (std::uint32_t t = 0; t < ntargets_; ++t) d.per_target[t] = take_counters(old, t);
    drain_keys(probes_.keys_fd(old), d.keys);
    return d;
}

}  // namespace keyscope
