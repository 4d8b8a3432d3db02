// Reads one interval out of the BPF maps: flips the generation the programs
// fill, waits for programs still running on the old one, then drains it.
#pragma once

#include <cstdint>
#include <vector>

#include "collect/stats.hpp"

namespace keyscope {

class Probes;

class Collector {
public:
    Collector(Probes& probes, std::size_t ntargets);
    /// Everything counted since the previous call, into `into` (replacing
    /// what it held; its buffers are reused).
    void collect(IntervalData& into);

private:
    void drain_keys(std::uint32_t gen, std::vector<KeyStats>& out);
    Totals take_counters(std::uint32_t gen, std::uint32_t target);

    Probes& probes_;
    std::size_t ntargets_;
    std::uint32_t gen_ = 0;
    int ncpu_;
};

}  // namespace keyscope
