// The key hash of bpf/proto/common.h written out independently of it, from
// its definition: the first 4096 bytes as 8-byte little-endian words (the
// last one zero-padded), each mixed in, then the full length.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>

namespace keyscope::test {

inline std::uint64_t key_hash(std::string_view s) {
    auto mix = [](std::uint64_t h, std::uint64_t w) {
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        return h ^ (h >> 32);
    };
    const std::size_t hashed = std::min<std::size_t>(s.size(), 4096);
    std::uint64_t h = 0x2d358dccaa6c78a5ULL;
    for (std::size_t i = 0; i < hashed; i += 8) {
        std::uint64_t w = 0;
        for (std::size_t b = 0; b < 8 && i + b < hashed; ++b)
            w |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(s[i + b])) << (8 * b);
        h = mix(h, w);
    }
    return mix(h, s.size());
}

}  // namespace keyscope::test
