// The tc ingress program's verdicts, driven packet by packet with
// BPF_PROG_TEST_RUN: crafted Ethernet + IPv4 + TCP segments for a target
// nothing listens on, rules written straight into the maps, and the program's
// return code (TC_ACT_SHOT = dropped, TC_ACT_UNSPEC = passed) checked.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "act/enforcer.hpp"
#include "bpf/probes.hpp"
#include "harness.hpp"
#include "keyscope_abi.h"
#include "proto/redis_commands.hpp"
#include "tc_packets.hpp"

using namespace keyscope;
using namespace keyscope::test;

namespace {

constexpr int kShot = 2;     // TC_ACT_SHOT
constexpr int kUnspec = -1;  // TC_ACT_UNSPEC

std::uint16_t next_client_port() {
    static std::uint16_t port = 20000;  // a new connection (4-tuple) per flow, over every test case
    return port++;
}

std::string get(std::string_view key) {
    return resp_command({"GET", std::string(key)});
}

const std::string kPing = "*1\r\n$4\r\nPING\r\n";

// One loaded, attached socket path for a target on a port nothing listens
// on, and its ks_tc_ingress program to run packets through.
class Prog {
public:
    Prog() : port_(static_cast<std::uint16_t>(free_port())) {
        ProbeOptions opts;
        opts.kind = ProbeKind::socket;
        opts.targets = {parse_target("redis://127.0.0.1:" + std::to_string(port_))};
        opts.targets[0].pid = getpid();
        probes_ = std::make_unique<Probes>(opts);
        prog_fd_ = find_ingress();
        REQUIRE(prog_fd_ >= 0);
    }
    ~Prog() {
        if (prog_fd_ >= 0) close(prog_fd_);
    }
    Prog(const Prog&) = delete;
    Prog& operator=(const Prog&) = delete;

    Probes& probes() { return *probes_; }
    std::uint16_t port() const { return port_; }

    // The program's return code for one packet.
    int run(const std::vector<std::uint8_t>& pkt) const {
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt.data(),
                    .data_size_in = static_cast<__u32>(pkt.size()), .repeat = 1);
        int err = bpf_prog_test_run_opts(prog_fd_, &opts);
        REQUIRE(err == 0);
        return static_cast<int>(opts.retval);
    }

    // A rule valid for a minute, counting into `slot` (cleared).
    ks_rule throttle(double rate, double burst, std::uint32_t slot, std::uint32_t flags = 0) {
        ks_rule r{};
        r.action = KS_ACT_THROTTLE;
        r.interval_ns = static_cast<std::uint64_t>(1e9 / rate);
        r.tolerance_ns = static_cast<std::uint64_t>(burst - 1) * r.interval_ns;
        return finish(r, slot, flags);
    }
    ks_rule shed(std::uint32_t share, std::uint32_t slot, std::uint32_t flags = 0) {
        ks_rule r{};
        r.action = KS_ACT_SHED;
        r.shed_share = share;
        return finish(r, slot, flags);
    }

private:
    ks_rule finish(ks_rule r, std::uint32_t slot, std::uint32_t flags) {
        r.expires_ns = probes_->monotonic_ns() + 60'000'000'000ull;
        r.flags = flags;
        r.slot = slot;
        probes_->clear_rule_stats(slot);
        return r;
    }

    // Our Probes' ks_tc_ingress: the one using our ks_counters map (found by
    // map id, so other keyscope instances loaded meanwhile cannot confuse it).
    int find_ingress() const { return find_program("ks_tc_ingress", probes_->counters_fd()); }

    std::uint16_t port_;
    std::unique_ptr<Probes> probes_;
    int prog_fd_ = -1;
};

// One client connection as the program sees it: a SYN, then request segments
// in order. A passed segment advances the sequence; a dropped one does not,
// so sending again is the client's retransmission.
class Flow {
public:
    explicit Flow(const Prog& prog, std::uint32_t isn = 1000)
        : prog_(prog), cport_(next_client_port()), seq_(isn + 1) {
        REQUIRE(prog_.run(segment(cport_, prog_.port(), isn, kSyn, "")) == kUnspec);
    }
    int send(std::string_view payload) {
        int rc = prog_.run(segment(cport_, prog_.port(), seq_, kPsh | kAck, payload));
        if (rc != kShot) seq_ += static_cast<std::uint32_t>(payload.size());
        return rc;
    }
    // A segment `ahead` bytes past the next expected one (the sequence stays).
    int send_ahead(std::uint32_t ahead, std::string_view payload) {
        return prog_.run(segment(cport_, prog_.port(), seq_ + ahead, kPsh | kAck, payload));
    }
    std::uint16_t cport() const { return cport_; }
    std::uint32_t seq() const { return seq_; }

private:
    const Prog& prog_;
    std::uint16_t cport_;
    std::uint32_t seq_;
};

ks_rule_key key_rule(std::string_view key, std::uint8_t match = KS_MATCH_KEY) {
    ks_rule_key k{};
    k.hash = match == KS_MATCH_KEY ? keyscope::key_hash(key) : fnv1a(key);  // prefixes keep FNV-1a
    k.match = match;
    k.target = 0;
    return k;
}

}  // namespace

TEST_CASE("enforce: without rules a request passes", "[enforce][bpf]") {
    Prog p;
    Flow f(p);
    CHECK(f.send(get("hot")) == kUnspec);
    CHECK(f.send(get("hot")) == kUnspec);
    CHECK(f.send(kPing) == kUnspec);
}

TEST_CASE("enforce: a key throttle drops over its burst and caps drops in a row", "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t slot = 7;
    probes.put_rule(key_rule("hot"), p.throttle(1, 2, slot));
    probes.set_enforcement(KS_RK_KEY, ':');

    Flow f(p);
    CHECK(f.send(get("hot")) == kUnspec);
    CHECK(f.send(get("hot")) == kUnspec);
    std::uint32_t dropped_at = f.seq();
    CHECK(f.send(get("hot")) == kShot);
    CHECK(f.seq() == dropped_at);  // the flow did not advance
    auto st = probes.rule_stats(slot);
    CHECK(st.matched == 3);
    CHECK(st.dropped == 1);
    CHECK(st.capped == 0);

    // another key on another connection is not touched
    Flow other(p);
    CHECK(other.send(get("cold")) == kUnspec);
    CHECK(probes.rule_stats(slot).matched == 3);

    // the retransmission is judged again: a second drop in a row ...
    CHECK(f.send(get("hot")) == kShot);
    st = probes.rule_stats(slot);
    CHECK(st.matched == 4);
    CHECK(st.dropped == 2);
    // ... and after KS_MAX_DROPS_IN_ROW the next one goes through, capped
    static_assert(KS_MAX_DROPS_IN_ROW == 2);
    CHECK(f.send(get("hot")) == kUnspec);
    CHECK(f.seq() == dropped_at + get("hot").size());
    st = probes.rule_stats(slot);
    CHECK(st.matched == 5);
    CHECK(st.dropped == 2);
    CHECK(st.capped == 1);
    // the bucket paid for the capped one: the next is dropped again
    CHECK(f.send(get("hot")) == kShot);
    CHECK(probes.rule_stats(slot).dropped == 3);

    probes.delete_rule(key_rule("hot"));
    CHECK(f.send(get("hot")) == kUnspec);
}

TEST_CASE("enforce: a prefix throttle", "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t slot = 3;
    probes.put_rule(key_rule("user:", KS_MATCH_PREFIX), p.throttle(1, 1, slot));
    probes.set_enforcement(KS_RK_PREFIX, ':');

    Flow f(p);
    CHECK(f.send(get("user:1")) == kUnspec);
    CHECK(f.send(get("user:2")) == kShot);
    Flow g(p);
    CHECK(g.send(get("session:1")) == kUnspec);
    CHECK(g.send(get("user")) == kUnspec);  // no delimiter: no prefix
    auto st = probes.rule_stats(slot);
    CHECK(st.matched == 2);
    CHECK(st.dropped == 1);
}

TEST_CASE("enforce: a client shed-all rule drops key requests, never keyless ones", "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t slot = 11;
    Flow f(p);
    Flow bystander(p);

    ks_rule_key k{};
    k.match = KS_MATCH_CLIENT;
    k.addr[10] = k.addr[11] = 0xff;
    k.addr[12] = 127;
    k.addr[15] = 1;
    k.port = htons(f.cport());
    k.target = 0;
    probes.put_rule(k, p.shed(65536, slot));
    probes.set_enforcement(KS_RK_CLIENT, ':');

    CHECK(f.send(get("hot")) == kShot);
    for (int i = 0; i < 5; ++i) CHECK(f.send(kPing) == kUnspec);
    CHECK(bystander.send(get("hot")) == kUnspec);  // another port of the same address
    auto st = probes.rule_stats(slot);
    CHECK(st.matched == 1);
    CHECK(st.dropped == 1);
}

TEST_CASE("enforce: a dry-run rule drops nothing and models the stalls dropping would cause",
          "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t slot = 5;
    probes.put_rule(key_rule("hot"), p.throttle(1, 1, slot, KS_RULEF_DRY_RUN));
    probes.set_enforcement(KS_RK_KEY, ':');

    Flow f(p);
    // admitted, then one that would be dropped; the next two would not have
    // arrived yet under enforcement (the connection waits for its retransmission)
    for (int i = 0; i < 4; ++i) CHECK(f.send(get("hot")) == kUnspec);
    auto st = probes.rule_stats(slot);
    CHECK(st.matched == 2);
    CHECK(st.dropped == 0);
    CHECK(st.would_drop == 1);
    // after the modelled retransmission timeout: judged again, a second drop in a row ...
    std::this_thread::sleep_for(std::chrono::nanoseconds(KS_DRY_RTO_NS + 20'000'000));
    CHECK(f.send(get("hot")) == kUnspec);
    st = probes.rule_stats(slot);
    CHECK(st.matched == 3);
    CHECK(st.would_drop == 2);
    // ... with a doubled timeout, after which the capped one goes through
    std::this_thread::sleep_for(std::chrono::nanoseconds(KS_DRY_RTO_NS + 20'000'000));
    CHECK(f.send(get("hot")) == kUnspec);
    CHECK(probes.rule_stats(slot).matched == 3);  // still inside the doubled timeout
    std::this_thread::sleep_for(std::chrono::nanoseconds(KS_DRY_RTO_NS));
    CHECK(f.send(get("hot")) == kUnspec);
    st = probes.rule_stats(slot);
    CHECK(st.matched == 4);
    CHECK(st.would_drop == 2);
    CHECK(st.capped == 1);
    CHECK(st.dropped == 0);
}

TEST_CASE("enforce: an expired rule is ignored", "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t slot = 9;
    ks_rule r = p.shed(65536, slot);
    r.expires_ns = probes.monotonic_ns() - 1'000'000;
    probes.put_rule(key_rule("hot"), r);
    probes.set_enforcement(KS_RK_KEY, ':');

    Flow f(p);
    CHECK(f.send(get("hot")) == kUnspec);
    CHECK(f.send(get("hot")) == kUnspec);
    CHECK(probes.rule_stats(slot).matched == 0);
    CHECK(probes.rule_stats(slot).dropped == 0);
}

TEST_CASE("enforce: an allowlisted key passes a shed-all rule", "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t slot = 2;
    probes.put_rule(key_rule("hot"), p.shed(65536, slot));
    probes.set_enforcement(KS_RK_KEY, ':');

    Flow f(p);
    CHECK(f.send(get("hot")) == kShot);  // the rule works
    CHECK(probes.rule_stats(slot).dropped == 1);

    probes.put_allow(key_rule("hot"));
    probes.set_enforcement(KS_RK_KEY | KS_RK_ALLOW, ':');
    CHECK(f.send(get("hot")) == kUnspec);  // the retransmission, now allowed
    Flow g(p);
    CHECK(g.send(get("hot")) == kUnspec);
    auto st = probes.rule_stats(slot);
    CHECK(st.matched == 1);
    CHECK(st.dropped == 1);
}

TEST_CASE("enforce: a throttle refills over time", "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t slot = 4;
    probes.put_rule(key_rule("hot"), p.throttle(20, 1, slot));
    probes.set_enforcement(KS_RK_KEY, ':');

    Flow f(p);
    CHECK(f.send(get("hot")) == kUnspec);
    CHECK(f.send(get("hot")) == kShot);
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    CHECK(f.send(get("hot")) == kUnspec);  // the retransmission, after 50 ms
    auto st = probes.rule_stats(slot);
    CHECK(st.matched == 3);
    CHECK(st.dropped == 1);
    CHECK(st.capped == 0);
}

TEST_CASE("enforce: shedding half picks about half the connections", "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t slot = 1;
    probes.put_rule(key_rule("hot"), p.shed(32768, slot));
    probes.set_enforcement(KS_RK_KEY, ':');

    const int flows = 400;
    int dropped = 0;
    for (int i = 0; i < flows; ++i) {
        Flow f(p, 1000u + static_cast<std::uint32_t>(i) * 7919u);
        int rc = f.send(get("hot"));
        REQUIRE((rc == kShot || rc == kUnspec));
        if (rc == kShot) ++dropped;
    }
    INFO("dropped " << dropped << " of " << flows);
    CHECK(dropped >= flows * 35 / 100);
    CHECK(dropped <= flows * 65 / 100);
    auto st = probes.rule_stats(slot);
    CHECK(st.matched == static_cast<std::uint64_t>(flows));
    CHECK(st.dropped == static_cast<std::uint64_t>(dropped));
}

TEST_CASE("enforce: malformed packets pass untouched", "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t slot = 6;
    Flow f(p);
    ks_rule_key ck{};
    ck.match = KS_MATCH_CLIENT;
    ck.addr[10] = ck.addr[11] = 0xff;
    ck.addr[12] = 127;
    ck.addr[15] = 1;
    ck.port = htons(f.cport());
    probes.put_rule(ck, p.shed(65536, slot));
    probes.put_rule(key_rule("hot"), p.shed(65536, slot + 1));
    probes.set_enforcement(KS_RK_KEY | KS_RK_CLIENT, ':');

    // the packet ends inside the TCP header (10 of its 20 bytes)
    CHECK(p.run(segment(f.cport(), p.port(), f.seq(), kPsh | kAck, "", 10)) == kUnspec);
    // the IPv4 length leaves 10 bytes for a 20-byte TCP header (a request follows)
    auto cut = segment(f.cport(), p.port(), f.seq(), kPsh | kAck, get("hot"));
    put16(cut, 14 + 2, 20 + 10);
    CHECK(p.run(cut) == kUnspec);
    // garbage where a RESP request should start
    CHECK(f.send("\xff\xfe junk\r\n") == kUnspec);
    CHECK(probes.rule_stats(slot).dropped == 0);
    CHECK(probes.rule_stats(slot + 1).dropped == 0);

    // the same rules do drop a well-formed request on a fresh connection
    Flow g(p);
    CHECK(g.send(get("hot")) == kShot);
}

TEST_CASE("enforce: a dropped segment's throttle charges are refunded", "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t slot = 9;
    probes.put_rule(key_rule("hot"), p.throttle(1, 3, slot));
    probes.set_enforcement(KS_RK_KEY, ':');

    Flow f(p);
    const std::string four = get("hot") + get("hot") + get("hot") + get("hot");
    CHECK(f.send(four) == kShot);  // three fit the burst, the fourth does not: all dropped
    auto st = probes.rule_stats(slot);
    CHECK(st.matched == 4);
    CHECK(st.dropped == 1);
    // nothing was served, so the whole burst is still there for others
    Flow g(p);
    for (int i = 0; i < 3; ++i) CHECK(g.send(get("hot")) == kUnspec);
    CHECK(g.send(get("hot")) == kShot);
}

TEST_CASE("enforce: a capped segment pays for every request it carries", "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t slot = 10;
    probes.put_rule(key_rule("hot"), p.throttle(1, 1, slot));
    probes.set_enforcement(KS_RK_KEY, ':');

    Flow f(p);
    const std::string three = get("hot") + get("hot") + get("hot");
    CHECK(f.send(three) == kShot);
    CHECK(f.send(three) == kShot);
    std::uint64_t before = probes.monotonic_ns();
    CHECK(f.send(three) == kUnspec);  // the third in a row goes through ...
    auto st = probes.rule_stats(slot);
    CHECK(st.matched == 6);  // each time the first fits (refunded after) and the second is refused;
                             // the capped pass adds none
    CHECK(st.dropped == 2);
    CHECK(st.capped == 1);
    ks_rule r{};
    REQUIRE(probes.read_rule(key_rule("hot"), &r));
    CHECK(r.tat >= before + 3'000'000'000ull);  // ... charged 3 requests at 1/s
    CHECK(r.tat < before + 3'500'000'000ull);
}

TEST_CASE("enforce: data behind a dropped segment waits for its retransmission", "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t slot = 11;
    probes.put_rule(key_rule("hot"), p.throttle(1, 1, slot));
    probes.set_enforcement(KS_RK_KEY, ':');

    Flow f(p);
    CHECK(f.send(get("hot")) == kUnspec);
    CHECK(f.send(get("hot")) == kShot);
    // the client had pipelined more behind it: not a gap to skip, dropped too
    const auto behind = static_cast<std::uint32_t>(get("hot").size());
    CHECK(f.send_ahead(behind, get("cold")) == kShot);
    CHECK(f.send_ahead(behind, get("hot")) == kShot);
    CHECK(probes.rule_stats(slot).dropped == 3);  // counted against the rule that made the hole
    // the retransmission is judged in order: dropped again, then capped through
    CHECK(f.send(get("hot")) == kShot);
    CHECK(f.send(get("hot")) == kUnspec);
    CHECK(f.send(get("cold")) == kUnspec);  // then what followed it
    auto st = probes.rule_stats(slot);
    CHECK(st.matched == 4);
    CHECK(st.dropped == 4);
    CHECK(st.capped == 1);
}

TEST_CASE("enforce: a dry-run rule never hides an enforcing one", "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t dry_slot = 12, slot = 13;
    ks_rule_key mine = key_rule("hot");
    mine.addr[10] = mine.addr[11] = 0xff;
    mine.addr[12] = 127;
    mine.addr[15] = 1;
    probes.put_rule(mine, p.shed(65536, dry_slot, KS_RULEF_DRY_RUN));  // checked first: the client's own
    probes.put_rule(key_rule("hot"), p.shed(65536, slot));
    probes.set_enforcement(KS_RK_KEY | KS_RK_KEY_CLIENT, ':');

    Flow f(p);
    CHECK(f.send(get("hot")) == kShot);
    CHECK(probes.rule_stats(dry_slot).matched == 1);
    CHECK(probes.rule_stats(dry_slot).would_drop == 0);  // the segment was really dropped
    CHECK(probes.rule_stats(slot).dropped == 1);
}

TEST_CASE("enforce: an allowlisted client's SYN passes a new-connection rule", "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t slot = 14;
    ks_rule_key conn{};
    conn.match = KS_MATCH_CONN;
    probes.put_rule(conn, p.shed(65536, slot));
    probes.set_enforcement(KS_RK_CONN, ':');
    CHECK(p.run(segment(next_client_port(), p.port(), 1, kSyn, "")) == kShot);
    ks_rule_key me{};
    me.match = KS_MATCH_CLIENT;
    me.addr[10] = me.addr[11] = 0xff;
    me.addr[12] = 127;
    me.addr[15] = 1;
    probes.put_allow(me);
    probes.set_enforcement(KS_RK_CONN | KS_RK_ALLOW, ':');
    CHECK(p.run(segment(next_client_port(), p.port(), 1, kSyn, "")) == kUnspec);
    CHECK(probes.rule_stats(slot).dropped == 1);
}

TEST_CASE("enforce: an allowlisted command's keys are never judged", "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t slot = 15;
    probes.put_rule(key_rule("hot"), p.shed(65536, slot));
    ks_rule_key del{};
    del.match = KS_MATCH_CMD;
    del.hash = proto::command_hash("DEL");
    probes.put_allow(del);
    probes.set_enforcement(KS_RK_KEY | KS_RK_ALLOW_CMD, ':');

    Flow f(p);
    CHECK(f.send("*2\r\n$3\r\nDEL\r\n$3\r\nhot\r\n") == kUnspec);
    CHECK(f.send("*2\r\n$6\r\nEXISTS\r\n$3\r\nhot\r\n") == kShot);
    auto st = probes.rule_stats(slot);
    CHECK(st.matched == 1);
    CHECK(st.dropped == 1);
}

TEST_CASE("enforce: a long pipeline's charges are all refunded when it is dropped", "[enforce][bpf]") {
    Prog p;
    auto& probes = p.probes();
    const std::uint32_t slot = 16;
    probes.put_rule(key_rule("hot"), p.throttle(1, 12, slot));
    probes.set_enforcement(KS_RK_KEY, ':');

    Flow f(p);
    std::string thirteen;
    for (int i = 0; i < 13; ++i) thirteen += get("hot");
    CHECK(f.send(thirteen) == kShot);  // twelve fit the burst, the thirteenth does not
    CHECK(probes.rule_stats(slot).matched == 13);
    Flow g(p);
    for (int i = 0; i < 12; ++i) CHECK(g.send(get("hot")) == kUnspec);  // all twelve given back
    CHECK(g.send(get("hot")) == kShot);
}
