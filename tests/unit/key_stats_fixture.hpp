// A KeyStats with the fields most tests care about, shared by the unit tests.
#pragma once

#include <string>

#include "collect/stats.hpp"

namespace keyscope::test {

inline KeyStats make_key(std::uint32_t target, std::uint64_t hash, std::string key, std::uint64_t reads,
                         std::uint64_t writes = 0) {
    KeyStats k;
    k.target = target;
    k.hash = hash;
    k.key_len = static_cast<std::uint32_t>(key.size());
    k.key = std::move(key);
    k.reads = reads;
    k.writes = writes;
    return k;
}

}  // namespace keyscope::test
