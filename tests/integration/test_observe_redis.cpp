// keyscope run against a real redis-server: a workload whose per-key counts
// are known exactly, on both capture paths.
#include <catch2/catch.hpp>
#include <map>

#include "harness.hpp"

using namespace keyscope::test;
using nlohmann::json;

namespace {

struct Expect {
    std::uint64_t reads = 0, writes = 0, errors = 0;
};

struct Workload {
    std::map<std::string, Expect> keys;  // "<shown key>#<key_len>"
    std::uint64_t requests = 0, keyless = 0, errors = 0;
    std::size_t big_value = 0;

    static std::string id(const std::string& shown, std::size_t len) {
        return shown + "#" + std::to_string(len);
    }
    void read(const std::string& shown, std::size_t len, std::uint64_t n = 1) {
        keys[id(shown, len)].reads += n;
    }
    void write(const std::string& shown, std::size_t len, std::uint64_t n = 1) {
        keys[id(shown, len)].writes += n;
    }
    std::uint64_t key_ops() const {
        std::uint64_t n = 0;
        for (const auto& [k, e] : keys) n += e.reads + e.writes;
        return n;
    }
};

std::string repeat(const std::vector<std::string>& cmd, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += resp_command(cmd);
    return out;
}

// MGET of 40 keys that do not exist: g:0 ... g:39
std::vector<std::string> wide_mget() {
    std::vector<std::string> cmd{"MGET"};
    for (int k = 0; k < 40; ++k) cmd.push_back("g:" + std::to_string(k));
    return cmd;
}

void drive(int port, Workload& w) {
    RespClient a(port);
    // 100 GETs of one key, pipelined 16 deep
    for (int sent = 0; sent < 100; sent += 16) {
        int n = std::min(16, 100 - sent);
        a.roundtrip(repeat({"GET", "hot:1"}, n), static_cast<std::size_t>(n));
    }
    w.read("hot:1", 5, 100);
    for (int i = 0; i < 20; ++i) a.roundtrip(resp_command({"SET", "warm:1", "v"}), 1);
    w.write("warm:1", 6, 20);
    a.roundtrip(repeat({"GET", "warm:1"}, 2), 2);
    w.read("warm:1", 6, 2);
    w.requests += 122;

    // three connections, pipelines of depth 16 over four keys
    std::vector<std::unique_ptr<RespClient>> conns;
    for (int c = 0; c < 3; ++c) conns.push_back(std::make_unique<RespClient>(port));
    for (int round = 0; round < 4; ++round) {
        for (auto& c : conns) {
            std::string buf;
            for (int j = 0; j < 16; ++j) buf += resp_command({"GET", "pipe:" + std::to_string(j % 4)});
            c->roundtrip(buf, 16);
        }
    }
    for (int k = 0; k < 4; ++k) w.read("pipe:" + std::to_string(k), 6, 48);
    w.requests += 192;

    // multi-key commands: one operation per key
    a.roundtrip(repeat({"MGET", "m:1", "m:2", "m:3"}, 5), 5);
    for (const char* k : {"m:1", "m:2", "m:3"}) w.read(k, 3, 5);
    a.roundtrip(repeat({"MSET", "x:1", "1", "x:2", "2"}, 3), 3);
    w.write("x:1", 3, 3);
    w.write("x:2", 3, 3);
    a.roundtrip(repeat({"DEL", "d:1", "d:2"}, 2), 2);
    w.write("d:1", 3, 2);
    w.write("d:2", 3, 2);
    a.roundtrip(resp_command({"EXISTS", "e:1", "e:2", "e:1"}), 1);
    w.read("e:1", 3, 2);
    w.read("e:2", 3, 1);
    w.requests += 11;
    // more keys in one segment than the kernel looks up at once: the parse
    // stops for them to be counted, and goes on
    a.roundtrip(repeat(wide_mget(), 2), 2);
    for (int k = 0; k < 40; ++k) w.read("g:" + std::to_string(k), k < 10 ? 3 : 4, 2);
    w.requests += 2;

    // keys near and above the stored length
    for (std::size_t len : {63, 64, 65, 200}) {
        a.roundtrip(repeat({"GET", std::string(len, 'L')}, 7), 7);
        std::string shown = std::string(std::min<std::size_t>(len, 64), 'L') + (len > 64 ? "..." : "");
        w.read(shown, len, 7);
    }
    w.requests += 28;

    // a binary key: CR, LF and NUL inside
    const std::string bin("bin\r\n\0key", 9);
    a.roundtrip(repeat({"SET", bin, "1"}, 4), 4);
    w.write("bin\\x0d\\x0a\\x00key", 9, 4);
    w.requests += 4;

    // WRONGTYPE errors: GET on a list
    a.roundtrip(resp_command({"LPUSH", "list:1", "a"}), 1);
    w.write("list:1", 6, 1);
    auto replies = a.roundtrip(repeat({"GET", "list:1"}, 6), 6);
    for (const auto& r : replies) REQUIRE((r.flags & KS_RPF_ERROR));
    w.read("list:1", 6, 6);
    w.keys[Workload::id("list:1", 6)].errors = 6;
    w.errors += 6;
    w.requests += 7;

    // keyless commands are counted, not attributed
    a.roundtrip(repeat({"PING"}, 10), 10);
    w.keyless += 10;
    w.requests += 10;

    // inline commands
    RespClient e(port);
    e.roundtrip("GET inline:1\r\nGET inline:1\r\nGET inline:1\r\n", 3);
    w.read("inline:1", 8, 3);
    w.requests += 3;

    // a 100 KB value full of command-like text: skipped, never parsed
    std::string value;
    while (value.size() < 100000) value += "\r\n*2\r\n$3\r\nGET\r\n$4\r\nfake\r\n";
    a.roundtrip(resp_command({"SET", "big:1", value}), 1);
    w.write("big:1", 5, 1);
    w.big_value = value.size();
    a.roundtrip(resp_command({"GET", "big:1"}), 1);
    w.read("big:1", 5, 1);
    w.requests += 2;
}

void check_run(const std::string& probe) {
    RedisServer redis;
    RedisServer other;  // not a target: its traffic must not be counted
    const std::string target = "redis://127.0.0.1:" + std::to_string(redis.port());
    Daemon all({"--target", target, "--probe", probe, "--interval", "300ms", "--top", "1000"});
    Daemon top3({"--target", target, "--probe", probe, "--interval", "300ms", "--top", "3"});
    REQUIRE(all.ready()["targets"].size() == 1);
    CHECK(all.ready()["targets"][0]["server"] == "127.0.0.1:" + std::to_string(redis.port()));
    CHECK(all.ready()["targets"][0]["pid"] == redis.pid());

    Workload w;
    drive(redis.port(), w);
    {
        RespClient o(other.port());
        o.roundtrip(repeat({"GET", "other:key"}, 50), 50);
    }

    int status = 0;
    auto lines = all.stop(&status);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    REQUIRE(!lines.empty());
    const json& summary = lines.back();
    REQUIRE(summary["type"] == "summary");

    INFO("summary: " << summary.dump());
    const json& total = summary["total"];
    CHECK(total["requests"] == w.requests);
    CHECK(total["key_ops"] == w.key_ops());
    CHECK(total["keyless"] == w.keyless);
    CHECK(total["errors"] == w.errors);
    CHECK(total["unattributed"] == 0);
    CHECK(total["parse_errors"] == 0);
    CHECK(total["other_key_ops"] == 0);

    std::map<std::string, Expect> seen;
    for (const auto& k : summary["keys"]) {
        CHECK(k["server"] == "127.0.0.1:" + std::to_string(redis.port()));
        CHECK(k["proto"] == "redis");
        std::string id = Workload::id(k["key"].get<std::string>(), k["key_len"].get<std::size_t>());
        CHECK(k["truncated"] == (k["key_len"].get<int>() > 64));
        seen[id] = {k["reads"].get<std::uint64_t>(), k["writes"].get<std::uint64_t>(),
                    k["errors"].get<std::uint64_t>()};
    }
    for (const auto& [id, e] : w.keys) {
        INFO("key " << id);
        REQUIRE(seen.count(id) == 1);
        CHECK(seen[id].reads == e.reads);
        CHECK(seen[id].writes == e.writes);
        CHECK(seen[id].errors == e.errors);
    }
    CHECK(seen.size() == w.keys.size());  // nothing else, and nothing from the other server

    // exact bytes and reply sizes for the simple keys
    for (const auto& k : summary["keys"]) {
        if (k["key"] == "hot:1") {
            CHECK(k["bytes_in"] == 100 * resp_command({"GET", "hot:1"}).size());
            CHECK(k["bytes_out"] == 100 * std::string("$-1\r\n").size());
            CHECK(k["p50_us"].get<double>() > 0);
        }
        if (k["key"] == "g:0") {  // a command's bytes and reply go to its first key
            CHECK(k["bytes_in"] == 2 * resp_command(wide_mget()).size());
            CHECK(k["bytes_out"] == 2 * (std::string("*40\r\n").size() + 40 * std::string("$-1\r\n").size()));
        }
        if (k["key"] == "g:1") CHECK(k["bytes_in"] == 0);
        if (k["key"] == "big:1") CHECK(k["max_value_bytes"] == w.big_value);
        if (k["key"] == "warm:1") CHECK(k["max_value_bytes"] == 1);
    }

    // every interval conserves key operations; together they make the summary
    std::uint64_t requests = 0, key_ops = 0;
    for (const auto& l : lines) {
        if (l["type"] != "interval") continue;
        std::uint64_t listed = 0;
        for (const auto& k : l["keys"])
            listed += k["reads"].get<std::uint64_t>() + k["writes"].get<std::uint64_t>();
        CHECK(listed + l["total"]["other_key_ops"].get<std::uint64_t>() ==
              l["total"]["key_ops"].get<std::uint64_t>());
        requests += l["total"]["requests"].get<std::uint64_t>();
        key_ops += l["total"]["key_ops"].get<std::uint64_t>();
    }
    CHECK(requests == w.requests);
    CHECK(key_ops == w.key_ops());

    // the second daemon saw the same traffic and lists only its top 3
    const json s3 = top3.summary();
    CHECK(s3["total"]["key_ops"] == w.key_ops());
    REQUIRE(s3["keys"].size() == 3);
    CHECK(s3["keys"][0]["key"] == "hot:1");
    std::uint64_t listed = 0;
    for (const auto& k : s3["keys"])
        listed += k["reads"].get<std::uint64_t>() + k["writes"].get<std::uint64_t>();
    CHECK(listed + s3["total"]["other_key_ops"].get<std::uint64_t>() == w.key_ops());
}

}  // namespace

TEST_CASE("socket path counts every key of a known workload exactly", "[bpf][socket]") {
    check_run("socket");
}

TEST_CASE("syscall path counts every key of a known workload exactly", "[bpf][syscall]") {
    check_run("syscall");
}

TEST_CASE("a full key table: keys that fit stay exact, the rest is counted as unattributed", "[bpf]") {
    const std::string probe = GENERATE("socket", "syscall");
    INFO("probe " << probe);
    RedisServer redis;
    // 16 keys fit (2 buckets of 8 ways); one long interval holds the whole run
    Daemon d({"--probe", probe, "--target", "redis://127.0.0.1:" + std::to_string(redis.port()), "--max-keys",
              "16", "--interval", "60s", "--top", "1000", "--no-detect"});
    constexpr int kKeys = 400, kRounds = 3;
    {
        RespClient c(redis.port());
        for (int r = 0; r < kRounds; ++r)
            for (int i = 0; i < kKeys; i += 16) {  // pipelined, within what replies are matched to
                std::string batch;
                for (int j = i; j < i + 16; ++j) batch += resp_command({"GET", "k:" + std::to_string(j)});
                c.roundtrip(batch, 16);
            }
    }
    const json summary = d.summary();
    INFO(summary["total"].dump());
    const json& total = summary["total"];
    CHECK(total["requests"] == kKeys * kRounds);
    CHECK(total["key_ops"] == kKeys * kRounds);
    CHECK(total["key_map_full"] == true);
    // a key either got a slot on its first request and kept it, or never did
    std::uint64_t listed = 0;
    for (const auto& k : summary["keys"]) {
        INFO(k.dump());
        CHECK(k["reads"] == kRounds);
        CHECK(k["bytes_in"] == kRounds * resp_command({"GET", k["key"].get<std::string>()}).size());
        CHECK(k["bytes_out"] == kRounds * std::string("$-1\r\n").size());
        listed += k["reads"].get<std::uint64_t>();
    }
    CHECK(summary["keys"].size() == 16);  // 400 keys over 2 buckets fill both
    CHECK(listed + total["unattributed"].get<std::uint64_t>() == kKeys * kRounds);
    CHECK(total["other_key_ops"] == total["unattributed"]);
    CHECK(summary["forgotten_keys"] == 0);  // 16 keys: within the summary's 32
}

TEST_CASE("the summary keeps 2 x --max-keys keys and forgets the less busy half beyond", "[bpf]") {
    RedisServer redis;
    Daemon d({"--target", "redis://127.0.0.1:" + std::to_string(redis.port()), "--max-keys", "16",
              "--interval", "200ms", "--top", "1000", "--no-detect"});
    // 9 phases, each in its own interval: the hot key 10 times and 4 new keys once each.
    // 37 distinct keys: the 33rd overflows the 32 kept, the busiest 16 stay, 4 more follow.
    constexpr int kPhases = 9, kNew = 4, kHot = 10;
    {
        RespClient c(redis.port());
        for (int p = 0; p < kPhases; ++p) {
            std::string batch = repeat({"GET", "hot"}, kHot);
            for (int i = 0; i < kNew; ++i)
                batch += resp_command({"GET", "p" + std::to_string(p) + ":" + std::to_string(i)});
            c.roundtrip(batch, kHot + kNew);
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
    }
    const json summary = d.summary();
    INFO(summary.dump());
    const json& total = summary["total"];
    CHECK(total["key_ops"] == kPhases * (kHot + kNew));
    CHECK(total["unattributed"] == 0);
    CHECK(summary["forgotten_keys"] == 33 - 16);
    REQUIRE(summary["keys"].size() == 37 - 17);
    CHECK(summary["keys"][0]["key"] == "hot");
    CHECK(summary["keys"][0]["reads"] == kPhases * kHot);
    std::uint64_t listed = 0;
    for (const auto& k : summary["keys"]) listed += k["reads"].get<std::uint64_t>();
    // what was forgotten is still counted, as other_key_ops
    CHECK(listed + total["other_key_ops"].get<std::uint64_t>() == kPhases * (kHot + kNew));
    CHECK(total["other_key_ops"] == 17);
}

TEST_CASE("syscall path counts clients on a unix socket", "[bpf][syscall][unix]") {
    const std::string path = "/tmp/keyscope-test-" + std::to_string(getpid()) + ".sock";
    RedisServer redis(path);
    for (int i = 0; i < 100 && access(path.c_str(), F_OK) != 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    Daemon d({"--target", "redis://127.0.0.1:" + std::to_string(redis.port()), "--probe", "syscall",
              "--interval", "300ms"});
    {
        RespClient c(path);
        c.roundtrip(repeat({"SET", "unix:1", "v"}, 3) + repeat({"GET", "unix:1"}, 7), 10);
    }
    const json summary = d.summary();
    INFO("summary: " << summary.dump());
    CHECK(summary["total"]["requests"] == 10);
    REQUIRE(summary["keys"].size() == 1);
    CHECK(summary["keys"][0]["key"] == "unix:1");
    CHECK(summary["keys"][0]["writes"] == 3);
    CHECK(summary["keys"][0]["reads"] == 7);
    CHECK(summary["keys"][0]["max_value_bytes"] == 1);
    unlink(path.c_str());
}
