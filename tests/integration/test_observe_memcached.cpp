// keyscope run against a real memcached: a workload whose per-key reads,
// writes, hits and misses are known exactly.
#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "harness.hpp"

using namespace keyscope::test;
using nlohmann::json;

TEST_CASE("memcached: exact per-key reads, writes, hits and misses", "[memcached]") {
    const std::string probe = GENERATE("socket", "syscall");
    INFO("probe " << probe);
    MemcachedServer mc;
    Daemon d({"--probe", probe, "--target", "memcached://127.0.0.1:" + std::to_string(mc.port()),
              "--interval", "300ms", "--top", "100", "--no-detect"});
    int a = connect_tcp(mc.port()), b = connect_tcp(mc.port());
    REQUIRE(a >= 0);
    REQUIRE(b >= 0);
    text_roundtrip(a, "set user:1 0 0 3\r\nabc\r\n", "STORED\r\n");
    // a data block that looks like commands is skipped, never parsed
    text_roundtrip(a, "set user:2 0 0 12\r\nget x\r\nEND\r\n\r\n", "STORED\r\n");
    std::string pipeline;
    for (int i = 0; i < 16; ++i) pipeline += "get user:1\r\n";
    text_roundtrip(b, pipeline, "END\r\n", 16);  // 16 pipelined gets in one write
    // a multi-get of 12 keys: 2 hits, 10 misses
    std::string multi = "get user:1 user:2";
    for (int i = 0; i < 10; ++i) multi += " miss:" + std::to_string(i);
    text_roundtrip(a, multi + "\r\n", "END\r\n");
    text_roundtrip(a, "delete user:1\r\n", "DELETED\r\n");
    text_roundtrip(a, "get user:1\r\n", "END\r\n");
    text_roundtrip(b, "set quiet:1 0 0 1 noreply\r\nq\r\nmn\r\n", "MN\r\n");
    close(a);
    close(b);
    d.lines_for(std::chrono::milliseconds(700));
    const json summary = d.summary();
    INFO(summary.dump());
    std::map<std::string, json> keys;
    for (const auto& k : summary["keys"]) keys[k["key"]] = k;
    // user:1: 1 set, 16 pipelined gets + 1 in the multi-get + 1 after delete, 1 delete
    CHECK(keys["user:1"]["writes"] == 2);
    CHECK(keys["user:1"]["reads"] == 18);
    CHECK(keys["user:1"]["hits"] == 17);
    CHECK(keys["user:1"]["misses"] == 1);
    CHECK(keys["user:1"]["proto"] == "memcached");
    CHECK(keys["user:2"]["writes"] == 1);
    CHECK(keys["user:2"]["reads"] == 1);
    CHECK(keys["user:2"]["hits"] == 1);
    CHECK(keys["user:2"]["max_value_bytes"] == 12);
    CHECK(keys["quiet:1"]["writes"] == 1);
    for (int i = 0; i < 10; ++i) {
        CHECK(keys["miss:" + std::to_string(i)]["reads"] == 1);
        CHECK(keys["miss:" + std::to_string(i)]["misses"] == 1);
    }
    CHECK(!keys.count("x"));  // from inside a data block
    const json& t = summary["total"];
    CHECK(t["requests"] == 23);  // 2 sets, 16 gets, multi-get, delete, get, set noreply, mn
    CHECK(t["key_ops"] == 33);
    CHECK(t["keyless"] == 1);
    CHECK(t["hits"] == 18);  // user:1 16 + 1, user:2 1
    CHECK(t["misses"] == 11);
    CHECK(t["parse_errors"] == 0);
    CHECK(t["reply_unmatched"] == 0);
}

namespace {

// (server, key) -> its summary row
std::map<std::pair<std::string, std::string>, json> rows_by_server(const json& summary) {
    std::map<std::pair<std::string, std::string>, json> rows;
    for (const auto& k : summary["keys"])
        rows[{k["server"].get<std::string>(), k["key"].get<std::string>()}] = k;
    return rows;
}

}  // namespace

TEST_CASE("one daemon observes Redis and memcached, found by process, each key on its server",
          "[memcached][multi]") {
    const std::string probe = GENERATE("socket", "syscall");
    INFO("probe " << probe);
    RedisServer redis;
    MemcachedServer mc;
    // --pid alone: keyscope finds what those processes serve, and their protocols
    Daemon d({"--probe", probe, "--pid", std::to_string(redis.pid()), "--pid", std::to_string(mc.pid()),
              "--interval", "300ms", "--top", "100", "--no-detect"});
    const std::string rs = "127.0.0.1:" + std::to_string(redis.port());
    const std::string ms = "127.0.0.1:" + std::to_string(mc.port());
    std::set<std::pair<std::string, std::string>> ready;
    for (const auto& t : d.ready()["targets"])
        ready.insert({t["server"].get<std::string>(), t["proto"].get<std::string>()});
    CHECK(ready == std::set<std::pair<std::string, std::string>>{{rs, "redis"}, {ms, "memcached"}});

    // the same key name on both servers must stay two keys
    RespClient r(redis.port());
    r.roundtrip("*3\r\n$3\r\nSET\r\n$8\r\nshared:1\r\n$2\r\nab\r\n", 1);
    for (int i = 0; i < 3; ++i) r.roundtrip("*2\r\n$3\r\nGET\r\n$8\r\nshared:1\r\n", 1);
    int m = connect_tcp(mc.port());
    REQUIRE(m >= 0);
    // the meta protocol: ms, mg hit, mg miss, ma, md, then mn
    text_roundtrip(m, "ms shared:1 2\r\nhi\r\n", "HD\r\n");
    std::string gets;
    for (int i = 0; i < 5; ++i) gets += "mg shared:1 v\r\n";
    gets += "mg absent:1 v\r\nms counter 1\r\n5\r\nma counter\r\nmd shared:1\r\nmn\r\n";
    text_roundtrip(m, gets, "MN\r\n");
    close(m);
    d.lines_for(std::chrono::milliseconds(700));
    const json summary = d.summary();
    INFO(summary.dump());
    auto rows = rows_by_server(summary);
    const json& rk = rows[{rs, "shared:1"}];
    CHECK(rk["proto"] == "redis");
    CHECK(rk["reads"] == 3);
    CHECK(rk["writes"] == 1);
    const json& mk = rows[{ms, "shared:1"}];
    CHECK(mk["proto"] == "memcached");
    CHECK(mk["reads"] == 5);
    CHECK(mk["writes"] == 2);  // ms and md
    CHECK(mk["hits"] == 5);
    CHECK(mk["misses"] == 0);
    CHECK(mk["max_value_bytes"] == 2);
    CHECK(rows[{ms, "absent:1"}]["misses"] == 1);
    CHECK(rows[{ms, "counter"}]["writes"] == 2);  // ms and ma
    CHECK(rows.size() == 4);
    // conservation per server: requests and key operations add up
    std::map<std::string, json> servers;
    for (const auto& s : summary["servers"]) servers[s["server"]] = s;
    CHECK(servers[rs]["requests"] == 4);
    CHECK(servers[rs]["key_ops"] == 4);
    CHECK(servers[ms]["requests"] == 11);  // ms, 5 mg, mg, ms, ma, md, mn
    CHECK(servers[ms]["key_ops"] == 10);
    const json& t = summary["total"];
    CHECK(t["requests"] == 15);
    CHECK(t["key_ops"] == 14);
    CHECK(t["parse_errors"] == 0);
    CHECK(t["reply_unmatched"] == 0);
}

TEST_CASE("a restarted memcached (new pid, same port) is followed on the syscall path",
          "[memcached][restart]") {
    auto first = std::make_unique<MemcachedServer>();
    const int port = first->port();
    const pid_t old_pid = first->pid();
    Daemon d({"--probe", "syscall", "--target", "memcached://127.0.0.1:" + std::to_string(port), "--interval",
              "200ms", "--top", "100", "--no-detect"});
    auto get_n = [&](const std::string& key, int n) {
        int fd = connect_tcp(port);
        REQUIRE(fd >= 0);
        std::string req;
        for (int i = 0; i < n; ++i) req += "get " + key + "\r\n";
        text_roundtrip(fd, req, "END\r\n", n);
        close(fd);
    };
    get_n("before", 3);
    first->kill_now();
    MemcachedServer second(port);
    json restarted;
    for (int i = 0; i < 50 && restarted.is_null(); ++i)
        for (const auto& l : d.lines_for(std::chrono::milliseconds(100)))
            if (l["type"] == "target" && l["event"] == "restarted") restarted = l;
    REQUIRE(!restarted.is_null());
    CHECK(restarted["old_pid"] == old_pid);
    CHECK(restarted["pid"] == second.pid());
    get_n("after", 5);
    d.lines_for(std::chrono::milliseconds(500));
    const json summary = d.summary();
    INFO(summary.dump());
    std::map<std::string, json> keys;
    for (const auto& k : summary["keys"]) keys[k["key"]] = k;
    CHECK(keys["before"]["reads"] == 3);
    CHECK(keys["after"]["reads"] == 5);
    CHECK(keys["after"]["misses"] == 5);
}
