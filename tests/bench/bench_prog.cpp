// BPF time per request of the socket path's programs with warm caches, free of
// the network stack's noise: keyscope's own tc programs (loaded and attached
// as `keyscope run` does) are fed crafted segments through BPF_PROG_TEST_RUN,
// one connection, pipelined GETs over a key range, and their replies.
// The kernel's per-call overhead (its clock and set-up) is measured the same
// way with segments for a port that is not a target's, and reported apart.
// Usage: bench_prog [KEYS] [DEPTH] [SEGMENTS] [MAX_KEYS]; prints one line.
// With MAX_KEYS (the kernel key table's size, `--max-keys`) every key is
// first sent once, untimed, so that the timed pass finds them all in the
// table: with a key range far bigger than the caches that measures lookups
// of cold keys, as under a real load over many keys.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "../unit/resp_driver.hpp"
#include "bpf/probes.hpp"
#include "free_port.hpp"
#include "target/target.hpp"
#include "tc_packets.hpp"

using namespace keyscope;
using namespace keyscope::test;

namespace {

// Nanoseconds the kernel reports for one run of `fd` over `pkt`.
std::uint64_t timed_run(int fd, const std::vector<std::uint8_t>& pkt) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt.data(),
                .data_size_in = static_cast<__u32>(pkt.size()), .repeat = 1);
    if (bpf_prog_test_run_opts(fd, &opts) != 0) throw std::runtime_error("BPF_PROG_TEST_RUN failed");
    return opts.duration;
}

}  // namespace

int main(int argc, char** argv) try {
    const int keys = argc > 1 ? std::atoi(argv[1]) : 100000;
    const int depth = argc > 2 ? std::atoi(argv[2]) : 16;
    const int segments = argc > 3 ? std::atoi(argv[3]) : 20000;
    const int max_keys = argc > 4 ? std::atoi(argv[4]) : 0;
    if (keys < 1 || depth < 1 || segments < 1 || max_keys < 0)
        throw std::runtime_error("KEYS, DEPTH and SEGMENTS must be positive, MAX_KEYS not negative");
    const auto port = static_cast<std::uint16_t>(free_port());
    ProbeOptions opts;
    opts.kind = ProbeKind::socket;
    opts.targets = {parse_target("redis://127.0.0.1:" + std::to_string(port))};
    opts.targets[0].pid = getpid();
    if (max_keys) opts.max_keys = static_cast<std::uint32_t>(max_keys);
    Probes probes(opts);
    const int ingress = find_program("ks_tc_ingress", probes.counters_fd());
    const int egress = find_program("ks_tc_egress", probes.counters_fd());
    if (ingress < 0 || egress < 0)
        throw std::runtime_error("keyscope's tc programs were not found after loading");

    const std::uint16_t cport = 40000, other = static_cast<std::uint16_t>(port + 1);
    std::uint32_t seq = 1000, rseq = 5000;
    timed_run(ingress, segment(cport, port, seq++, kSyn, ""));
    timed_run(egress, segment(port, cport, rseq++, kSyn | kAck, ""));
    std::uint64_t in_ns = 0, out_ns = 0, idle_ns = 0;
    char key[32];
    std::uint64_t k = 0;
    const int warm_up = max_keys ? (keys + depth - 1) / depth : 0;
    for (int s = -warm_up; s < segments; ++s) {
        std::string requests, replies;
        for (int i = 0; i < depth; ++i, ++k) {
            // a stride through the range: consecutive requests use far-apart keys
            std::snprintf(key, sizeof key, "key:%012llu", static_cast<unsigned long long>((k * 7919) % keys));
            requests += resp_command({"GET", key});
            replies += "$3\r\nabc\r\n";
        }
        const auto req = segment(cport, port, seq, kPsh | kAck, requests);
        const std::uint64_t in = timed_run(ingress, req);
        seq += static_cast<std::uint32_t>(requests.size());
        const std::uint64_t out = timed_run(egress, segment(port, cport, rseq, kPsh | kAck, replies));
        rseq += static_cast<std::uint32_t>(replies.size());
        if (s < 0) continue;  // warming up: every key claims its slot
        in_ns += in;
        out_ns += out;
        idle_ns += timed_run(ingress, segment(cport, other, seq, kPsh | kAck, requests));
    }
    const double reqs = static_cast<double>(segments) * depth, idle = static_cast<double>(idle_ns) / segments;
    std::printf(
        "keys %d depth %d: ingress %.1f ns/request, egress %.1f ns/request (each less the kernel's %.1f ns "
        "per "
        "test run, measured with segments that are not a target's)\n",
        keys, depth, (static_cast<double>(in_ns) - idle * segments) / reqs,
        (static_cast<double>(out_ns) - idle * segments) / reqs, idle);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "bench_prog: %s\n", e.what());
    return 1;
}
