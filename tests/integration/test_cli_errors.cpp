// Bad input ends in one clear line on stderr, a non-zero exit, and nothing
// left attached.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include <unistd.h>

#include "harness.hpp"

namespace {

struct Outcome {
    int exit_code = -1;
    std::string out;  // stdout and stderr
};

Outcome run_keyscope(const std::string& args, const std::string& prefix = "") {
    std::string cmd = prefix + KEYSCOPE_BIN + std::string(" ") + args + " 2>&1";
    Outcome o;
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p);
    char buf[4096];
    while (std::fgets(buf, sizeof buf, p)) o.out += buf;
    int status = pclose(p);
    o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return o;
}

std::size_t lines(const std::string& s) {
    std::size_t n = 0;
    for (char c : s) n += c == '\n';
    return n;
}

int count_keyscope_programs() {
    FILE* p = popen("bpftool prog show 2>/dev/null | grep -c ' name ks_'", "r");
    int n = 0;
    if (p) {
        if (std::fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

// The kernel frees a program after an RCU grace period, so a daemon that
// just exited may still be listed for a moment: wait up to 2 s.
int keyscope_programs_loaded() {
    int n = count_keyscope_programs();
    for (int i = 0; i < 40 && n != 0; ++i) {
        usleep(50 * 1000);
        n = count_keyscope_programs();
    }
    return n;
}

}  // namespace

TEST_CASE("bad input gives one line and a non-zero exit", "[cli]") {
    keyscope::test::RedisServer redis;
    const std::string target = "--target redis://127.0.0.1:" + std::to_string(redis.port());
    struct Case {
        std::string args;
        std::string says;
    } cases[] = {
        {"run --output xml " + target, "--output"},
        {"run --interval 10x " + target, "--interval: bad duration '10x'"},
        {"run --interval 0.1ms " + target, "--interval"},
        {"run --duration -1s " + target, "--duration"},
        {"run --top 0 " + target, "--top"},
        {"run --probe kprobe " + target, "--probe: bad value 'kprobe'"},
        {"run --redact maybe " + target, "--redact: bad value 'maybe'"},
        {"run --target mongodb://127.0.0.1:27017", "unsupported protocol 'mongodb'"},
        {"run --target redis://127.0.0.1", "missing :PORT"},
        {"run --target redis://127.0.0.1:70000", "port must be 1-65535"},
        {"run --target redis://example.org:6379", "host must be an IP address"},
        {"run --no-such-flag " + target, "no-such-flag"},
        {"run --target redis://127.0.0.1:" + std::to_string(keyscope::test::free_port()),
         "no process listens there"},
        {"run --pid 1", "--pid 1: no redis-server, valkey-server, keydb-server or memcached listener"},
        {"run --act maybe " + target, "--act: bad value 'maybe'"},
        {"run --act-action slow " + target, "--act-action: bad value 'slow'"},
        {"run --throttle-rate extreme=5 " + target, "--throttle-rate: bad value 'extreme=5'"},
        {"run --allow-client 10.0.0.300 " + target, "--allow-client: bad address '10.0.0.300'"},
        {"run --allow-client 10.0.0.3:80 " + target,
         "--allow-client: '10.0.0.3:80': allowlist an address, not a port"},
        {"run --throttle-rate critical=0.001 " + target, "--throttle-rate: bad value 'critical=0.001'"},
        {"run --allow-command FROB " + target, "--allow-command: unknown Redis command 'FROB'"},
        {"run --rule-ttl 3s --interval 2s " + target, "--rule-ttl: 3s is under twice --interval (2s)"},
        {"throttle add --connect 127.0.0.1:1 --key k --rate 5", "--connect 127.0.0.1:1"},
        {"frobnicate", "frobnicate"},
    };
    for (const auto& c : cases) {
        INFO("keyscope " << c.args);
        Outcome o = run_keyscope(c.args);
        INFO("output: " << o.out);
        CHECK(o.exit_code != 0);
        CHECK(lines(o.out) == 1);
        CHECK(o.out.find(c.says) != std::string::npos);
    }
    CHECK(keyscope_programs_loaded() == 0);
}

TEST_CASE("without root keyscope says so and loads nothing", "[cli]") {
    keyscope::test::RedisServer redis;
    Outcome o = run_keyscope("run --duration 1s --target redis://127.0.0.1:" + std::to_string(redis.port()),
                             "runuser -u nobody -- ");
    INFO("output: " << o.out);
    CHECK(o.exit_code == 1);
    CHECK(lines(o.out) == 1);
    CHECK(o.out.find("needs root") != std::string::npos);
    CHECK(keyscope_programs_loaded() == 0);
}

TEST_CASE("--duration ends the run with a summary and detaches everything", "[cli]") {
    keyscope::test::RedisServer redis;
    Outcome o = run_keyscope("run -o json --interval 200ms --duration 700ms --target redis://127.0.0.1:" +
                             std::to_string(redis.port()));
    CHECK(o.exit_code == 0);
    CHECK(o.out.find("\"type\":\"summary\"") != std::string::npos);
    CHECK(keyscope_programs_loaded() == 0);
}
