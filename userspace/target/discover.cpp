#include "target/discover.hpp"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>

#include "util/error.hpp"

namespace keyscope {
namespace {

struct Listener {
    std::array<std::uint8_t, 16> addr{};
    std::uint16_t port = 0;
    unsigned long inode = 0;
    int pid = 0;
    std::string comm;
};

// /proc/net/tcp{,6}: "sl local rem st ... uid timeout inode"; addresses are
// hex words in host byte order.
void read_listeners(const char* path, bool v6, std::vector<Listener>& out) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string sl, local, remote, state, skip;
        ls >> sl >> local >> remote >> state;
        if (state != "0A") continue;  // TCP_LISTEN
        for (int i = 0; i < 5; ++i) ls >> skip;
        Listener l;
        ls >> l.inode;
        auto colon = local.find(':');
        if (colon == std::string::npos) continue;
        l.port = static_cast<std::uint16_t>(std::stoul(local.substr(colon + 1), nullptr, 16));
        std::string hex = local.substr(0, colon);
        if (!v6 && hex.size() == 8) {
            std::uint32_t a = static_cast<std::uint32_t>(std::stoul(hex, nullptr, 16));
            if (a != 0) {
                l.addr[10] = l.addr[11] = 0xff;
                std::memcpy(l.addr.data() + 12, &a, 4);
            }
        } else if (v6 && hex.size() == 32) {
            for (int w = 0; w < 4; ++w) {
                std::uint32_t word =
                    static_cast<std::uint32_t>(std::stoul(hex.substr(w * 8, 8), nullptr, 16));
                std::memcpy(l.addr.data() + w * 4, &word, 4);
            }
        }
        out.push_back(l);
    }
}

std::string read_comm(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
    std::string comm;
    std::getline(in, comm);
    return comm;
}

// socket inode -> owning pid, by reading every process's fd links.
std::unordered_map<unsigned long, int> socket_owners(const std::set<unsigned long>& wanted) {
    std::unordered_map<unsigned long, int> owners;
    DIR* proc = opendir("/proc");
    if (!proc) return owners;
    while (auto* e = readdir(proc)) {
        int pid = std::atoi(e->d_name);
        if (pid <= 0) continue;
        std::string fddir = std::string("/proc/") + e->d_name + "/fd";
        DIR* fds = opendir(fddir.c_str());
        if (!fds) continue;
        while (auto* f = readdir(fds)) {
            char link[64] = {};
            std::string p = fddir + "/" + f->d_name;
            ssize_t n = readlink(p.c_str(), link, sizeof link - 1);
            if (n <= 0 || std::strncmp(link, "socket:[", 8) != 0) continue;
            unsigned long ino = std::strtoul(link + 8, nullptr, 10);
            if (wanted.count(ino)) owners.emplace(ino, pid);
        }
        closedir(fds);
    }
    closedir(proc);
    return owners;
}

std::vector<Listener> listeners() {
    std::vector<Listener> ls;
    read_listeners("/proc/net/tcp", false, ls);
    read_listeners("/proc/net/tcp6", true, ls);
    std::set<unsigned long> inodes;
    for (const auto& l : ls) inodes.insert(l.inode);
    auto owners = socket_owners(inodes);
    for (auto& l : ls) {
        auto it = owners.find(l.inode);
        if (it != owners.end()) {
            l.pid = it->second;
            l.comm = read_comm(l.pid);
        }
    }
    return ls;
}

bool is_redis_like(const std::string& comm) {
    return comm == "redis-server" || comm == "valkey-server" || comm == "keydb-server";
}

}  // namespace

std::vector<Target> discover_servers() {
    std::vector<Target> out;
    std::set<std::pair<std::uint16_t, int>> seen;
    for (const auto& l : listeners()) {
        if (!is_redis_like(l.comm) && l.comm != "memcached") continue;
        Target t;
        t.proto = l.comm == "memcached" ? "memcached" : "redis";
        t.addr = l.addr;
        t.port = l.port;
        t.pid = l.pid;
        t.comm = l.comm;
        t.host = t.any_address() ? "*" : format_addr(t.addr);
        // a server on both 0.0.0.0 and :: is one target (any address)
        if (t.any_address() && !seen.insert({t.port, t.pid}).second) continue;
        out.push_back(t);
    }
    return out;
}

namespace {

// The listener serving `t`: same port, and the same or a wildcard address.
const Listener* listener_of(const Target& t, const std::vector<Listener>& ls) {
    for (const auto& l : ls) {
        bool any = true;
        for (auto b : l.addr) any = any && b == 0;
        if (l.port == t.port && l.pid && (any || t.any_address() || l.addr == t.addr)) return &l;
    }
    return nullptr;
}

}  // namespace

std::vector<Target> discover_servers(const std::vector<int>& pids) {
    auto all = discover_servers();
    std::vector<Target> out;
    for (int pid : pids) {
        std::size_t before = out.size();
        for (const auto& t : all)
            if (t.pid == pid) out.push_back(t);
        if (out.size() == before)
            throw Error("--pid " + std::to_string(pid) +
                            ": no redis-server, valkey-server, keydb-server or memcached listener of that "
                            "process (pass --target PROTO://HOST:PORT)",
                        2);
    }
    return out;
}

void resolve_pids(std::vector<Target>& targets) {
    auto ls = listeners();
    for (auto& t : targets) {
        if (t.pid) continue;
        if (const Listener* l = listener_of(t, ls)) {
            t.pid = l->pid;
            t.comm = l->comm;
        }
    }
}

bool process_alive(int pid, const std::string& comm) {
    if (pid <= 0 || kill(pid, 0) != 0) return false;
    // a recycled pid now running something else is not our server
    return comm.empty() || read_comm(pid) == comm;
}

Target find_server_process(const Target& t) {
    auto ls = listeners();
    Target now = t;
    const Listener* l = listener_of(t, ls);
    now.pid = l ? l->pid : 0;
    now.comm = l ? l->comm : "";
    return now;
}

}  // namespace keyscope
