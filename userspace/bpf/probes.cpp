#include "bpf/probes.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstring>
#include <ctime>
#include <set>

#include "keyscope_bpf.skel.h"
#include "proto/redis_commands.hpp"
#include "util/error.hpp"

namespace keyscope {
namespace {

// tcx attach types (kernel 6.6+); libbpf 1.1 predates their enum names.
constexpr int kTcxIngress = 46;
constexpr int kTcxEgress = 47;

int libbpf_log(enum libbpf_print_level level, const char* fmt, va_list args) {
    if (level == LIBBPF_DEBUG && !spdlog::should_log(spdlog::level::trace)) return 0;
    // whole: a verifier log runs to megabytes
    va_list sized;
    va_copy(sized, args);
    int len = std::vsnprintf(nullptr, 0, fmt, sized);
    va_end(sized);
    if (len < 0) return 0;
    std::string msg(static_cast<std::size_t>(len) + 1, '\0');
    std::vsnprintf(msg.data(), msg.size(), fmt, args);
    msg.resize(static_cast<std::size_t>(len));
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    spdlog::debug("libbpf: {}", msg);
    return 0;
}

// Interfaces whose traffic can reach the targets: loopback always (local
// clients reach even a non-loopback address through lo), plus the interface
// owning each target address, or every interface that is up for "any address".
std::set<std::string> interfaces_for(const std::vector<Target>& targets) {
    std::set<std::string> names{"lo"};
    ifaddrs* ifs = nullptr;
    if (getifaddrs(&ifs) != 0) return names;
    for (auto* i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
        int fam = i->ifa_addr->sa_family;
        if (fam != AF_INET && fam != AF_INET6) continue;
        std::array<std::uint8_t, 16> a{};
        if (fam == AF_INET) {
            a[10] = a[11] = 0xff;
            std::memcpy(a.data() + 12, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
        } else {
            std::memcpy(a.data(), &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
        }
        for (const auto& t : targets)
            if (t.any_address() || t.addr == a) names.insert(i->ifa_name);
    }
    freeifaddrs(ifs);
    return names;
}

}  // namespace

ProbeKind parse_probe(const std::string& text) {
    if (text == "socket") return ProbeKind::socket;
    if (text == "syscall") return ProbeKind::syscall;
    throw Error("--probe: bad value '" + text + "' (use socket or syscall)");
}

const char* probe_name(ProbeKind kind) {
    return kind == ProbeKind::socket ? "socket" : "syscall";
}

void check_bpf_prerequisites() {
    if (geteuid() != 0)
        throw Error(
            "keyscope needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN) to load BPF programs: run it with "
            "sudo");
    struct stat st {};
    if (stat("/sys/kernel/btf/vmlinux", &st) != 0)
        throw Error(
            "this kernel exposes no BTF (/sys/kernel/btf/vmlinux missing): keyscope needs a kernel built "
            "with CONFIG_DEBUG_INFO_BTF=y (Linux 6.6 or later)");
}

Probes::Probes(const ProbeOptions& opts) {
    libbpf_set_print(libbpf_log);
    skel_ = keyscope_bpf__open();
    if (!skel_) throw Error("opening the BPF object failed: " + errno_text(errno));
    try {
        key_buckets_ = (opts.max_keys + KS_KEY_WAYS - 1) / KS_KEY_WAYS;
        bpf_map__set_max_entries(skel_->maps.ks_key_tags, 2 * key_buckets_);
        bpf_map__set_max_entries(skel_->maps.ks_keys, 2 * key_buckets_ * KS_KEY_WAYS);
        bpf_map__set_max_entries(skel_->maps.ks_flows, opts.max_flows);
        bpf_map__set_max_entries(skel_->maps.ks_sys_flows, opts.max_flows);
        bool socket = opts.kind == ProbeKind::socket;
        // load only the path asked for: the other would cost verifier time
        bpf_program__set_autoload(skel_->progs.ks_tc_ingress, socket);
        bpf_program__set_autoload(skel_->progs.ks_tc_egress, socket);
        bpf_program__set_autoload(skel_->progs.ks_sys_exit, !socket);
        if (socket) {
            bpf_program__set_expected_attach_type(skel_->progs.ks_tc_ingress,
                                                  static_cast<bpf_attach_type>(kTcxIngress));
            bpf_program__set_expected_attach_type(skel_->progs.ks_tc_egress,
                                                  static_cast<bpf_attach_type>(kTcxEgress));
        }
        int err = keyscope_bpf__load(skel_);
        if (err)
            throw Error("loading the BPF programs failed: " + errno_text(err) +
                        " (run with -v for the verifier log)");
        map_key_table();
        fill_maps(opts);
        if (opts.bpf_stats) {
            stats_fd_ = bpf_enable_stats(BPF_STATS_RUN_TIME);
            if (stats_fd_ < 0)
                throw Error("--bpf-stats: enabling kernel BPF statistics failed: " + errno_text(errno));
        }
        if (socket)
            attach_tc(opts);
        else
            attach_syscalls();
    } catch (...) {
        if (stats_fd_ >= 0) close(stats_fd_);
        for (int fd : links_) close(fd);
        if (keys_) munmap(keys_, keys_len_);
        if (key_tags_) munmap(key_tags_, key_tags_len_);
        keyscope_bpf__destroy(skel_);
        throw;
    }
}

void Probes::map_key_table() {
    auto map = [](bpf_map* m, std::size_t len, const char* name) {
        void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(m), 0);
        if (p == MAP_FAILED)
            throw Error(std::string("mapping the key table (") + name + ") failed: " + errno_text(errno) +
                        " (try a smaller --max-keys)");
        return p;
    };
    key_tags_len_ = sizeof(ks_key_bucket) * 2 * key_buckets_;
    key_tags_ = map(skel_->maps.ks_key_tags, key_tags_len_, "tags");
    keys_len_ = sizeof(ks_key_stats) * 2 * key_buckets_ * KS_KEY_WAYS;
    keys_ = map(skel_->maps.ks_keys, keys_len_, "statistics");
}

KeyTableView Probes::key_table(std::uint32_t gen) const {
    KeyTableView v;
    std::size_t first = (gen & 1) * static_cast<std::size_t>(key_buckets_);
    v.tags = static_cast<ks_key_bucket*>(key_tags_) + first;
    v.stats = static_cast<ks_key_stats*>(keys_) + first * KS_KEY_WAYS;
    v.buckets = key_buckets_;
    return v;
}

void Probes::write_config(const char* what) {
    std::uint32_t zero = 0;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.ks_config), &zero, &config_, BPF_ANY))
        throw Error(std::string(what) + " failed: " + errno_text(errno));
}

Probes::~Probes() {
    for (int fd : links_) close(fd);
    if (stats_fd_ >= 0) close(stats_fd_);
    munmap(keys_, keys_len_);
    munmap(key_tags_, key_tags_len_);
    keyscope_bpf__destroy(skel_);
}

void Probes::set_target_pid(std::uint32_t id, int old_pid, int new_pid) {
    int pids = bpf_map__fd(skel_->maps.ks_target_pids);
    int flows = bpf_map__fd(skel_->maps.ks_sys_flows);
    if (old_pid > 0) {
        std::uint32_t old = static_cast<std::uint32_t>(old_pid);
        bpf_map_delete_elem(pids, &old);
        // the old process's fds are gone with it
        ks_sys_flow_key k{}, next{};
        std::vector<ks_sys_flow_key> stale;
        for (int err = bpf_map_get_next_key(flows, nullptr, &next); !err;
             err = bpf_map_get_next_key(flows, &k, &next)) {
            if (next.tgid == old) stale.push_back(next);
            k = next;
        }
        for (auto& s : stale) bpf_map_delete_elem(flows, &s);
    }
    if (new_pid > 0) {
        std::uint32_t pid = static_cast<std::uint32_t>(new_pid);
        if (bpf_map_update_elem(pids, &pid, &id, BPF_ANY))
            throw Error("following pid " + std::to_string(new_pid) + " failed: " + errno_text(errno));
    }
}

void Probes::fill_maps(const ProbeOptions& opts) {
    config_.key_buckets = key_buckets_;
    write_config("configuring the key table");
    int cmds = bpf_map__fd(skel_->maps.ks_cmds);
    for (const auto& c : proto::redis_commands()) {
        std::uint64_t h = proto::command_hash(c.name);
        ks_cmd_spec spec = proto::to_spec(c);
        if (bpf_map_update_elem(cmds, &h, &spec, BPF_ANY))
            throw Error("filling the command table failed: " + errno_text(errno));
    }
    int targets = bpf_map__fd(skel_->maps.ks_targets);
    int pids = bpf_map__fd(skel_->maps.ks_target_pids);
    int protos = bpf_map__fd(skel_->maps.ks_target_protos);
    ks_port_bits ports{};
    for (std::uint32_t id = 0; id < opts.targets.size(); ++id) {
        const auto& t = opts.targets[id];
        ks_target_key k{};
        std::memcpy(k.addr, t.addr.data(), 16);
        k.port = htons(t.port);
        std::uint32_t proto = t.proto == "memcached" ? KS_PROTO_MEMCACHED : KS_PROTO_REDIS;
        ks_target_val v{id, proto};
        if (bpf_map_update_elem(protos, &id, &proto, BPF_ANY))
            throw Error("registering target " + t.server() + " failed: " + errno_text(errno));
        if (bpf_map_update_elem(targets, &k, &v, BPF_ANY))
            throw Error("registering target " + t.server() + " failed: " + errno_text(errno));
        ports.w[k.port / 64] |= std::uint64_t{1}
                                << (k.port % 64);  // network byte order, as the programs see it
        if (t.pid) {
            std::uint32_t pid = static_cast<std::uint32_t>(t.pid);
            bpf_map_update_elem(pids, &pid, &id, BPF_ANY);
        }
    }
    std::uint32_t zero = 0;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.ks_target_ports), &zero, &ports, BPF_ANY))
        throw Error("registering the targets' ports failed: " + errno_text(errno));
}

void Probes::attach_tc(const ProbeOptions& opts) {
    for (const auto& name : interfaces_for(opts.targets)) {
        int ifindex = static_cast<int>(if_nametoindex(name.c_str()));
        if (!ifindex) continue;
        struct {
            bpf_program* prog;
            int type;
            const char* dir;
        } hooks[] = {// replies first: a request counted before its reply's hook exists
                     // would leave the connection's reply matching behind for good
                     {skel_->progs.ks_tc_egress, kTcxEgress, "egress"},
                     {skel_->progs.ks_tc_ingress, kTcxIngress, "ingress"}};
        for (const auto& h : hooks) {
            int fd = bpf_link_create(bpf_program__fd(h.prog), ifindex, static_cast<bpf_attach_type>(h.type),
                                     nullptr);
            if (fd < 0)
                throw Error(std::string("attaching the tc ") + h.dir + " program to " + name +
                            " failed: " + errno_text(fd) + " (tcx needs Linux 6.6 or later)");
            links_.push_back(fd);
            points_.push_back(std::string("tcx ") + h.dir + " " + name);
            bpf_prog_info info{};
            __u32 len = sizeof info;
            if (bpf_obj_get_info_by_fd(bpf_program__fd(h.prog), &info, &len) == 0)
                tc_hooks_.push_back({ifindex, h.type, info.id});
        }
    }
}

void Probes::attach_syscalls() {
    bpf_link* link = bpf_program__attach(skel_->progs.ks_sys_exit);
    if (!link) throw Error("attaching the tp_btf/sys_exit program failed: " + errno_text(errno));
    // keep the fd, let libbpf forget the wrapper: closing the fd detaches
    int fd = dup(bpf_link__fd(link));
    bpf_link__destroy(link);
    if (fd < 0) throw Error("duplicating the sys_exit link failed: " + errno_text(errno));
    links_.push_back(fd);
    points_.push_back("tp_btf sys_exit");
}

int Probes::counters_fd() const {
    return bpf_map__fd(skel_->maps.ks_counters);
}

void Probes::set_gen(std::uint32_t gen) {
    config_.gen = gen & 1;
    config_.epoch++;
    write_config("switching the collection generation");
}

void Probes::set_enforcement(std::uint32_t rule_kinds, char delimiter) {
    config_.rule_kinds = rule_kinds;
    config_.delimiter = static_cast<std::uint8_t>(delimiter);
    write_config("switching enforcement");
}

void Probes::set_watch(const std::vector<std::pair<std::uint64_t, std::uint32_t>>& keys) {
    if (keys == watched_) return;
    int fd = bpf_map__fd(skel_->maps.ks_watch);
    for (const auto& [hash, target] : watched_) {
        ks_key_ref ref{};
        ref.hash = hash;
        ref.target = target;
        bpf_map_delete_elem(fd, &ref);
    }
    watched_.clear();
    ks_watch_bits bits{};
    for (const auto& [hash, target] : keys) {
        if (watched_.size() >= KS_MAX_WATCH) break;
        ks_key_ref ref{};
        ref.hash = hash;
        ref.target = target;
        std::uint32_t one = 1;
        if (bpf_map_update_elem(fd, &ref, &one, BPF_ANY) == 0) {
            watched_.push_back({hash, target});
            const std::uint32_t bit = ks_watch_bit(hash, target);
            bits.w[bit / 64] |= std::uint64_t{1} << (bit % 64);
        }
    }
    std::uint32_t zero = 0;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.ks_watch_bits), &zero, &bits, BPF_ANY)) {
        // without its filter the programs would count none of them
        spdlog::warn("counting the clients of hot keys is off: writing its filter failed: {}",
                     errno_text(errno));
        watched_.clear();
    }
    config_.watching = watched_.empty() ? 0 : 1;
    write_config("switching client counting");
}

std::vector<std::pair<ks_client_key, std::uint64_t>> Probes::drain_clients() {
    std::vector<std::pair<ks_client_key, std::uint64_t>> out;
    int fd = bpf_map__fd(skel_->maps.ks_key_clients);
    ks_client_key k{}, next{};
    std::vector<ks_client_key> keys;
    for (int err = bpf_map_get_next_key(fd, nullptr, &next); !err;
         err = bpf_map_get_next_key(fd, &k, &next)) {
        keys.push_back(next);
        k = next;
    }
    for (const auto& key : keys) {
        std::uint64_t n = 0;
        // read and delete: a request counted in between lands in the next interval
        if (bpf_map_lookup_and_delete_elem(fd, &key, &n) || !n) continue;
        // a pair of a key unwatched since may have counted on: not this key's interval
        const std::pair<std::uint64_t, std::uint32_t> ref{key.hash, key.target};
        if (std::find(watched_.begin(), watched_.end(), ref) != watched_.end()) out.push_back({key, n});
    }
    return out;
}

void Probes::put_rule(const ks_rule_key& key, const ks_rule& rule) {
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.ks_rules), &key, &rule, BPF_ANY))
        throw Error("installing a rule failed: " + errno_text(errno) +
                    (errno == E2BIG ? " (rule table full: " + std::to_string(KS_MAX_RULES) + ")" : ""));
}

bool Probes::read_rule(const ks_rule_key& key, ks_rule* rule) const {
    return bpf_map_lookup_elem(bpf_map__fd(skel_->maps.ks_rules), &key, rule) == 0;
}

void Probes::delete_rule(const ks_rule_key& key) {
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.ks_rules), &key);
}

ks_rule_stats Probes::rule_stats(std::uint32_t slot) const {
    ks_rule_stats st{};
    bpf_map_lookup_elem(bpf_map__fd(skel_->maps.ks_rule_stats), &slot, &st);
    return st;
}

void Probes::clear_rule_stats(std::uint32_t slot) {
    ks_rule_stats st{};
    bpf_map_update_elem(bpf_map__fd(skel_->maps.ks_rule_stats), &slot, &st, BPF_ANY);
}

void Probes::put_allow(const ks_rule_key& key) {
    std::uint32_t one = 1;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.ks_allow), &key, &one, BPF_ANY))
        throw Error("filling the allowlist failed: " + errno_text(errno));
}

std::uint64_t Probes::monotonic_ns() const {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);  // the clock of bpf_ktime_get_ns()
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::vector<ProgramCost> Probes::program_costs() const {
    std::vector<ProgramCost> out;
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, skel_->obj) {
        int fd = bpf_program__fd(prog);
        if (fd < 0) continue;  // not loaded (the other capture path)
        bpf_prog_info info{};
        __u32 len = sizeof info;
        if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) continue;
        out.push_back({bpf_program__name(prog), info.run_time_ns, info.run_cnt});
    }
    return out;
}

bool Probes::attached() const {
    // tcx answers BPF_PROG_QUERY with the programs on the interface, ours included while attached
    for (const auto& h : tc_hooks_) {
        __u32 ids[64] = {}, count = 64;
        if (bpf_prog_query(h.ifindex, static_cast<bpf_attach_type>(h.type), 0, nullptr, ids, &count) != 0)
            return false;
        bool found = false;
        for (__u32 i = 0; i < count && i < 64; ++i) found = found || ids[i] == h.prog_id;
        if (!found) return false;
    }
    return true;
}

}  // namespace keyscope
