#include "util/cpu_affinity.hpp"

#include <sched.h>
#include <sys/types.h>

#include <algorithm>
#include <set>

namespace keyscope {
namespace {

std::vector<int> cpus_of(const cpu_set_t& set) {
    std::vector<int> out;
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) out.push_back(c);
    return out;
}

}  // namespace

std::vector<int> cpus_apart(const std::vector<int>& allowed, const std::vector<int>& server_cpus) {
    std::set<int> servers(server_cpus.begin(), server_cpus.end());
    std::vector<int> apart;
    for (int c : allowed)
        if (!servers.count(c)) apart.push_back(c);
    if (apart.size() == allowed.size()) return {};  // the servers are not pinned among our CPUs
    return apart;
}

std::string cpu_list(const std::vector<int>& cpus) {
    std::string out;
    for (std::size_t i = 0; i < cpus.size();) {
        std::size_t j = i;
        while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
        if (!out.empty()) out += ",";
        out += std::to_string(cpus[i]);
        if (j > i) out += "-" + std::to_string(cpus[j]);
        i = j + 1;
    }
    return out;
}

std::string keep_off_server_cpus(const std::vector<int>& pids) {
    cpu_set_t mine;
    CPU_ZERO(&mine);
    if (sched_getaffinity(0, sizeof mine, &mine) != 0) return "";
    std::vector<int> server_cpus;
    for (int pid : pids) {
        cpu_set_t theirs;
        CPU_ZERO(&theirs);
        // a server that has gone, or any we may not ask: it could be anywhere
        if (pid <= 0 || sched_getaffinity(pid, sizeof theirs, &theirs) != 0) return "";
        for (int c : cpus_of(theirs)) server_cpus.push_back(c);
    }
    std::sort(server_cpus.begin(), server_cpus.end());
    server_cpus.erase(std::unique(server_cpus.begin(), server_cpus.end()), server_cpus.end());
    std::vector<int> apart = cpus_apart(cpus_of(mine), server_cpus);
    if (apart.empty()) return "";
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : apart) CPU_SET(c, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) return "";
    return "the servers are pinned to CPU " + cpu_list(server_cpus) + ": keyscope keeps to CPU " +
           cpu_list(apart);
}

}  // namespace keyscope
