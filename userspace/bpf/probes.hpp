// Loads and attaches keyscope's BPF programs; the only code that touches the
// generated skeleton. Everything it attaches is a bpf_link owned by this
// process, so the kernel detaches it when keyscope exits, even on SIGKILL.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "act/rule_sink.hpp"
#include "output/snapshot.hpp"
#include "target/target.hpp"

struct keyscope_bpf;  // generated skeleton, see probes.cpp

namespace keyscope {

enum class ProbeKind { socket, syscall };

ProbeKind parse_probe(const std::string& text);
const char* probe_name(ProbeKind kind);

struct ProbeOptions {
    ProbeKind kind = ProbeKind::socket;
    std::vector<Target> targets;     // index = target id
    std::uint32_t max_keys = 16384;  // keys per interval (the table holds two intervals)
    std::uint32_t max_flows = 8192;  // connections tracked
    bool bpf_stats = false;  // have the kernel time the programs while we run (its clock: ~94 ns a run here)
};

/// Checks what BPF needs before anything is loaded; throws a one-line Error.
void check_bpf_prerequisites();

/// One generation of the kernel's key table, mapped into this process:
/// `buckets` buckets of KS_KEY_WAYS tags, and the statistics of each way.
struct KeyTableView {
    ks_key_bucket* tags = nullptr;
    ks_key_stats* stats = nullptr;
    std::uint32_t buckets = 0;
};

class Probes : public RuleSink {
public:
    explicit Probes(const ProbeOptions& opts);
    ~Probes();
    Probes(const Probes&) = delete;
    Probes& operator=(const Probes&) = delete;

    /// The key table half of generation `gen` (valid while this object lives).
    KeyTableView key_table(std::uint32_t gen) const;
    int counters_fd() const;
    /// The programs fill generation `gen` from now on (and a new epoch begins).
    void set_gen(std::uint32_t gen);
    /// A target's server now runs as `new_pid` (0: none yet): the syscall path
    /// follows the new process and forgets the old one's connections.
    void set_target_pid(std::uint32_t id, int old_pid, int new_pid);
    /// False once any tc attachment has gone (someone detached a link):
    /// counting is incomplete and /healthz says so.
    bool attached() const;
    /// Run time and count of each loaded program (zero unless bpf_stats is on).
    std::vector<ProgramCost> program_costs() const;
    // RuleSink: the enforcement maps of the socket path
    void put_rule(const ks_rule_key& key, const ks_rule& rule) override;
    bool read_rule(const ks_rule_key& key, ks_rule* rule) const override;
    void delete_rule(const ks_rule_key& key) override;
    ks_rule_stats rule_stats(std::uint32_t slot) const override;
    void clear_rule_stats(std::uint32_t slot) override;
    void put_allow(const ks_rule_key& key) override;
    void set_enforcement(std::uint32_t rule_kinds, char delimiter) override;
    std::uint64_t monotonic_ns() const override;

    /// Keys (hash, target) whose requests are counted per client from now on
    /// (at most KS_MAX_WATCH; the socket path only).
    void set_watch(const std::vector<std::pair<std::uint64_t, std::uint32_t>>& keys);
    /// Requests per (watched key, client) since the last call, then forgotten.
    std::vector<std::pair<ks_client_key, std::uint64_t>> drain_clients();

    /// Where the programs are attached, e.g. "tc ingress lo".
    const std::vector<std::string>& attach_points() const { return points_; }

private:
    void fill_maps(const ProbeOptions& opts);
    void attach_tc(const ProbeOptions& opts);
    void attach_syscalls();
    void map_key_table();
    void write_config(const char* what);

    keyscope_bpf* skel_ = nullptr;
    ks_config config_{};  // gen, epoch and enforcement switches, written as one value
    std::vector<std::pair<std::uint64_t, std::uint32_t>> watched_;
    std::vector<int> links_;
    std::vector<std::string> points_;
    int stats_fd_ = -1;  // holds kernel BPF run-time statistics on while open
    struct TcHook {
        int ifindex, type;
        std::uint32_t prog_id;
    };
    std::vector<TcHook> tc_hooks_;
    std::uint32_t key_buckets_ = 0;  // per generation
    void* key_tags_ = nullptr;       // mmap of ks_key_tags
    std::size_t key_tags_len_ = 0;
    void* keys_ = nullptr;  // mmap of ks_keys
    std::size_t keys_len_ = 0;
};

}  // namespace keyscope
