// The Act half of keyscope: mitigation rules (throttle, shed) for keys,
// prefixes, clients and new connections, installed in the socket path's
// tc ingress program. Rules come from an operator (`keyscope throttle`) or
// from the policy, which maps active hotspots to rules by severity. Every rule
// expires in the kernel unless renewed, so nothing outlives keyscope; a
// circuit breaker suspends a server's rules when they drop too much.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "act/rule_sink.hpp"
#include "detect/detector.hpp"
#include "target/target.hpp"

namespace keyscope {

enum class ActMode { off, dry_run, enforce };
enum class RuleMatch { key, prefix, client, connections };
enum class RuleAction { throttle, shed };

ActMode parse_act_mode(const std::string& text);
const char* act_mode_name(ActMode m);
const char* match_name(RuleMatch m);
const char* action_name(RuleAction a);

struct ActConfig {
    ActMode mode = ActMode::off;  // automatic rules from detection
    RuleAction action = RuleAction::throttle;
    std::array<double, 4> throttle_rate{1000, 500, 200, 50};  // per second, by severity low..critical
    std::array<double, 4> shed_share{0, 0, 0.2, 0.5};         // by severity (0: throttle instead)
    // burst = rate x this (at least 1 request): tokens saved over one minimum
    // RTO, so a moment when every hammering connection waits for its
    // retransmission does not waste the rate
    double burst_s = 0.2;
    double drop_cap = 0.10;  // largest share of a server's requests keyscope may drop
    double ttl_s = 5;        // the kernel ignores a rule this long after its last renewal
    double cooldown_s = 10;  // an automatic rule stays this long after its hotspot ended
    double suspend_s = 60;   // the circuit breaker's pause
    // the circuit breaker also trips when the requests no rule matched fall
    // below (1 - fall_share) of their best rate since enforcement began, for
    // fall_intervals intervals in a row (ignored under min_rate requests/s)
    double fall_share = 0.5;
    int fall_intervals = 3;
    double fall_min_rate = 50;
    double client_share = 0.5;  // one client sending this share of a hot key's requests gets the rule alone
    std::vector<std::string> allow_keys, allow_prefixes, allow_clients;
    std::vector<std::string> allow_commands;  // commands whose keys no rule judges (keyless ones never are)
    char delimiter = ':';
};

/// What a rule matches and does.
struct RuleSpec {
    RuleMatch match = RuleMatch::key;
    std::uint32_t target = 0;
    std::string text;                       // key, or prefix ending with the delimiter
    std::uint64_t key_hash = 0;             // key rules: set from text when 0
    std::array<std::uint8_t, 16> client{};  // v4-mapped; all zero = every client
    std::uint16_t client_port = 0;          // host order, 0 = any
    RuleAction action = RuleAction::throttle;
    double rate = 0, burst = 0;  // throttle
    double shed = 0;             // share of connections, (0, 1]
    bool dry_run = false;
};

/// Requests per client address of each watched key in the last interval:
/// (target, key hash) -> (address, requests), busiest first.
using KeyClients = std::map<std::pair<std::uint32_t, std::uint64_t>,
                            std::vector<std::pair<std::array<std::uint8_t, 16>, std::uint64_t>>>;

struct RuleCounts {
    std::uint64_t matched = 0, dropped = 0, would_drop = 0, capped = 0;
};

struct Rule {
    std::uint32_t id = 0;
    RuleSpec spec;
    std::string origin;  // manual | auto
    std::string reason;  // the hotspot, or the operator's words
    double created = 0, ttl_s = 0;
    double expires = 0;        // manual: when the operator's TTL ends (0 = never)
    double hotspot_ended = 0;  // auto: when its hotspot ended (0 = still active)
    std::uint32_t slot = 0;
    RuleCounts total, interval;  // since added; in the last interval
};

struct MitigationEvent {
    std::string event;  // added | lifted | expired | suspended | resumed | failed
    Rule rule;
    std::string why;
    std::string server;
};

/// A throttle rate keyscope accepts, per second.
bool valid_rate(double per_s);

/// FNV-1a 64, as the kernel hashes key prefixes (for prefix rules).
std::uint64_t fnv1a(std::string_view bytes);

/// The key hash, as the kernel hashes whole keys (bpf/proto/common.h).
std::uint64_t key_hash(std::string_view key);

/// Parses "ADDR" or "ADDR:PORT" / "[V6]:PORT"; throws a one-line Error.
void parse_client(const std::string& text, RuleSpec& spec, const std::string& flag = "--client");
std::string client_text(const RuleSpec& spec);

class Enforcer {
public:
    Enforcer(RuleSink& sink, ActConfig cfg, const std::vector<Target>& targets);
    ~Enforcer();  // removes every rule it installed

    /// Installs a rule; throws a one-line Error when the spec is invalid.
    const Rule& add(RuleSpec spec, const std::string& origin, const std::string& reason, double ttl_s,
                    double now);
    bool remove(std::uint32_t id, double now, const std::string& why);
    /// Reads the rules' counters for the interval now ending. Call it right
    /// after the server counters are taken: the fall breaker compares the two,
    /// and reading them far apart makes traffic that is not there (tick()
    /// reads them itself when this was not called).
    void take_counts();
    /// Once per interval: renews rules in the kernel, reads their counters
    /// (unless take_counts() did), lets the policy follow `active` hotspots,
    /// and runs the circuit breaker on `requests[target]` served this interval.
    void tick(double now, const std::vector<HotspotEvent>& active, const std::vector<std::uint64_t>& requests,
              const KeyClients& clients = {});

    const std::vector<Rule>& rules() const { return rules_; }
    const ActConfig& config() const { return cfg_; }
    std::vector<MitigationEvent> take_events();
    bool suspended(std::uint32_t target, double now) const;

private:
    ks_rule_key bpf_key(const RuleSpec& s) const;
    ks_rule bpf_rule(const Rule& r, std::uint64_t mono_now) const;
    void install(const Rule& r);
    void uninstall(const Rule& r);
    void sync_kinds();
    void emit(const std::string& event, const Rule& r, const std::string& why);
    void follow_hotspots(double now, const std::vector<HotspotEvent>& active, const KeyClients& clients);
    bool allowed(const HotspotEvent& h) const;
    static bool holding_back(const Rule& r);  // dropped (or would have) in the last interval
    void suspend(std::uint32_t target, double now, const std::string& why);
    void watch_other_traffic(double now, const std::vector<std::uint64_t>& requests);

    bool counts_taken_ = false;  // take_counts() ran for the interval tick() ends
    struct FallWatch {
        double best = 0;  // requests/s no rule matched, best under the current rules
        double last = 0;  // the rate of the interval before
        int low = 0;      // intervals in a row under the floor
        std::uint64_t changes = 0;
    };

    RuleSink& sink_;
    ActConfig cfg_;
    const std::vector<Target>& targets_;
    std::vector<Rule> rules_;
    std::vector<MitigationEvent> events_;
    std::vector<std::uint32_t> free_slots_;
    std::uint32_t next_id_ = 1;
    std::map<std::uint32_t, double> suspended_until_;  // target -> unix time
    std::map<std::uint32_t, FallWatch> fall_;          // targets with enforcing rules
    std::map<std::uint32_t, std::uint64_t> changes_;   // target -> rule changes so far
    double last_tick_ = 0;
};

}  // namespace keyscope
