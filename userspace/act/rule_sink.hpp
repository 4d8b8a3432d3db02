// Where enforcement rules go: the socket path's BPF maps (bpf/probes.cpp), or
// a fake in the unit tests.
#pragma once

#include <cstdint>

#include "keyscope_abi.h"

namespace keyscope {

class RuleSink {
public:
    virtual ~RuleSink() = default;
    virtual void put_rule(const ks_rule_key& key, const ks_rule& rule) = 0;
    virtual bool read_rule(const ks_rule_key& key, ks_rule* rule) const = 0;
    virtual void delete_rule(const ks_rule_key& key) = 0;
    virtual ks_rule_stats rule_stats(std::uint32_t slot) const = 0;
    virtual void clear_rule_stats(std::uint32_t slot) = 0;
    virtual void put_allow(const ks_rule_key& key) = 0;
    /// KS_RK_* bits (0: the programs skip enforcement) and the prefix delimiter.
    virtual void set_enforcement(std::uint32_t rule_kinds, char delimiter) = 0;
    /// Now on the clock of bpf_ktime_get_ns() (CLOCK_MONOTONIC).
    virtual std::uint64_t monotonic_ns() const = 0;
};

}  // namespace keyscope
