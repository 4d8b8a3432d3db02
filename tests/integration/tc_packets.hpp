// Crafted Ethernet + IPv4 + TCP segments and a lookup of keyscope's tc
// programs, for driving them with BPF_PROG_TEST_RUN (the enforcement tests
// and scripts/bench-prog).
#pragma once

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace keyscope::test {

constexpr std::uint8_t kSyn = 0x02, kPsh = 0x08, kAck = 0x10;

inline void put16(std::vector<std::uint8_t>& b, std::size_t at, std::uint16_t v) {
    b[at] = static_cast<std::uint8_t>(v >> 8);
    b[at + 1] = static_cast<std::uint8_t>(v);
}

inline void put32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
    put16(b, at, static_cast<std::uint16_t>(v >> 16));
    put16(b, at + 2, static_cast<std::uint16_t>(v));
}

// Ethernet + IPv4 (127.0.0.1 -> 127.0.0.1) + TCP from `sport` to `dport`.
// `tcp_len` bytes of TCP header are present in the packet (20 = a whole one).
inline std::vector<std::uint8_t> segment(std::uint16_t sport, std::uint16_t dport, std::uint32_t seq,
                                         std::uint8_t flags, std::string_view payload,
                                         std::size_t tcp_len = 20) {
    constexpr std::size_t eth = 14, ip = 20;
    std::vector<std::uint8_t> b(eth + ip + tcp_len + payload.size(), 0);
    put16(b, 12, 0x0800);  // IPv4; both MACs zero
    std::uint8_t* h = b.data() + eth;
    h[0] = 0x45;  // version 4, ihl 5
    put16(b, eth + 2, static_cast<std::uint16_t>(ip + tcp_len + payload.size()));
    put16(b, eth + 6, 0x4000);  // DF, no fragment
    h[8] = 64;                  // ttl
    h[9] = 6;                   // TCP
    put32(b, eth + 12, INADDR_LOOPBACK);
    put32(b, eth + 16, INADDR_LOOPBACK);
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < ip; i += 2) sum += static_cast<std::uint32_t>(h[i] << 8 | h[i + 1]);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    put16(b, eth + 10, static_cast<std::uint16_t>(~sum));
    std::vector<std::uint8_t> tcp(20, 0);
    put16(tcp, 0, sport);
    put16(tcp, 2, dport);
    put32(tcp, 4, seq);
    put32(tcp, 8, (flags & kAck) ? 1 : 0);
    tcp[12] = 5 << 4;  // doff 5
    tcp[13] = flags;
    put16(tcp, 14, 65535);
    std::memcpy(b.data() + eth + ip, tcp.data(), std::min<std::size_t>(tcp_len, tcp.size()));
    std::memcpy(b.data() + eth + ip + tcp_len, payload.data(), payload.size());
    return b;
}

// A new fd of the loaded program called `name` that uses the map whose fd is
// `map_fd` (so programs of other keyscope instances cannot be taken), or -1.
inline int find_program(const std::string& name, int map_fd) {
    bpf_map_info minfo{};
    __u32 mlen = sizeof minfo;
    if (bpf_obj_get_info_by_fd(map_fd, &minfo, &mlen) != 0) return -1;
    __u32 id = 0;
    while (bpf_prog_get_next_id(id, &id) == 0) {
        int fd = bpf_prog_get_fd_by_id(id);
        if (fd < 0) continue;
        bpf_prog_info info{};
        __u32 len = sizeof info;
        if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && name == info.name) {
            std::vector<__u32> maps(info.nr_map_ids);
            bpf_prog_info again{};
            again.nr_map_ids = static_cast<__u32>(maps.size());
            again.map_ids = reinterpret_cast<std::uintptr_t>(maps.data());
            len = sizeof again;
            if (bpf_obj_get_info_by_fd(fd, &again, &len) == 0 &&
                std::find(maps.begin(), maps.end(), minfo.id) != maps.end())
                return fd;
        }
        close(fd);
    }
    return -1;
}

}  // namespace keyscope::test
