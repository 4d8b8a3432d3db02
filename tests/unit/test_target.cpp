// Host tests of userspace/target/target.{hpp,cpp} and userspace/util/duration.{hpp,cpp}.
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include "error_of.hpp"

#include "target/target.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"

using keyscope::format_addr;
using keyscope::parse_duration;
using keyscope::parse_target;
using keyscope::Target;
using std::chrono::milliseconds;

using keyscope::test::error_of;

namespace {

using Addr = std::array<std::uint8_t, 16>;

Addr v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

const Addr kV6Loopback = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

}  // namespace

// ---- parse_target --------------------------------------------------------------

TEST_CASE("parse_target: IPv4 address") {
    auto t = parse_target("redis://127.0.0.1:6379");
    CHECK(t.proto == "redis");
    CHECK(t.host == "127.0.0.1");
    CHECK(t.addr == v4(127, 0, 0, 1));
    CHECK(t.port == 6379);
    CHECK(t.pid == 0);
    CHECK(t.comm.empty());
    CHECK(t.server() == "127.0.0.1:6379");
    CHECK(t.loopback());
    CHECK_FALSE(t.any_address());

    auto u = parse_target("redis://10.1.2.3:7000");
    CHECK(u.addr == v4(10, 1, 2, 3));
    CHECK(u.port == 7000);
    CHECK(u.server() == "10.1.2.3:7000");
    CHECK_FALSE(u.loopback());
    CHECK_FALSE(u.any_address());
}

TEST_CASE("parse_target: localhost is 127.0.0.1") {
    auto t = parse_target("redis://localhost:6379");
    CHECK(t.host == "localhost");
    CHECK(t.addr == v4(127, 0, 0, 1));
    CHECK(t.port == 6379);
    CHECK(t.server() == "127.0.0.1:6379");
    CHECK(t.loopback());
    CHECK_FALSE(t.any_address());
}

TEST_CASE("parse_target: bracketed IPv6") {
    auto t = parse_target("redis://[::1]:6380");
    CHECK(t.host == "::1");
    CHECK(t.addr == kV6Loopback);
    CHECK(t.port == 6380);
    CHECK(t.server() == "[::1]:6380");
    CHECK(t.loopback());
    CHECK_FALSE(t.any_address());

    auto u = parse_target("redis://[2001:db8::42]:6379");
    CHECK(u.addr == Addr{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42});
    CHECK(u.server() == "[2001:db8::42]:6379");
    CHECK_FALSE(u.loopback());

    // a v4-mapped IPv6 address is the IPv4 address
    auto m = parse_target("redis://[::ffff:127.0.0.2]:6379");
    CHECK(m.addr == v4(127, 0, 0, 2));
    CHECK(m.server() == "127.0.0.2:6379");
    CHECK(m.loopback());
}

TEST_CASE("parse_target: any address") {
    for (const char* url : {"redis://*:6379", "redis://0.0.0.0:6379", "redis://[::]:6379"}) {
        INFO(url);
        auto t = parse_target(url);
        CHECK(t.any_address());
        CHECK(t.addr == Addr{});
        CHECK(t.host == "*");
        CHECK(t.port == 6379);
        CHECK(t.server() == "*:6379");
        CHECK_FALSE(t.loopback());
    }
}

TEST_CASE("parse_target: port bounds and a trailing slash") {
    CHECK(parse_target("redis://127.0.0.1:1").port == 1);
    CHECK(parse_target("redis://127.0.0.1:65535").port == 65535);
    CHECK(parse_target("redis://127.0.0.1:65535").server() == "127.0.0.1:65535");
    auto t = parse_target("redis://127.0.0.1:6379/");
    CHECK(t.port == 6379);
    CHECK(t.server() == "127.0.0.1:6379");
}

TEST_CASE("parse_target: bad input throws keyscope::Error naming it") {
    const char* bad[] = {
        "",                               // nothing
        "127.0.0.1:6379",                 // missing scheme
        "redis:/127.0.0.1:6379",          // broken scheme separator
        "mongodb://127.0.0.1:27017",      // unsupported
        "http://127.0.0.1:6379",          //
        "redis://",                       // nothing after the scheme
        "redis://127.0.0.1",              // missing port
        "redis://localhost",              //
        "redis://127.0.0.1:",             // empty port
        "redis://127.0.0.1:0",            // port 0
        "redis://127.0.0.1:65536",        // port too large
        "redis://127.0.0.1:99999999999",  // port far too large
        "redis://127.0.0.1:-1",           //
        "redis://127.0.0.1:+6379",        //
        "redis://127.0.0.1:63a9",         // non-numeric port
        "redis://127.0.0.1:abc",          //
        "redis://127.0.0.1: 6379",        //
        "redis://127.0.0.1:6379 ",        //
        "redis://127.0.0.1:6379//",       //
        "redis://example.com:6379",       // a host name that is not an IP or localhost
        "redis://localhost.localdomain:6379",
        "redis://redis-server:6379",  //
        "redis://:6379",              // empty host
        "redis://256.0.0.1:6379",     // not an IPv4 address
        "redis://1.2.3:6379",         //
        "redis://[::1]6379",          // no ':' after ']'
        "redis://[::1]",              //
        "redis://[::1]:",             //
        "redis://[::1:6379",          // no ']'
        "redis://[]:6379",            // empty brackets
        "redis://[zz::1]:6379",       //
        "redis://[::1]:0",            //
    };
    for (const char* url : bad) {
        INFO("'" << url << "'");
        CHECK_THROWS_AS(parse_target(url), keyscope::Error);
        CHECK_THAT(error_of([&] { parse_target(url); }),
                   Catch::Contains("--target") && Catch::Contains("'" + std::string(url) + "'"));
    }
}

TEST_CASE("parse_target: the error says what is wrong") {
    CHECK_THAT(error_of([] { parse_target("127.0.0.1:6379"); }), Catch::Contains("scheme"));
    CHECK_THAT(error_of([] { parse_target("mongodb://127.0.0.1:27017"); }),
               Catch::Contains("unsupported protocol 'mongodb'"));
    CHECK_THAT(error_of([] { parse_target("redis://127.0.0.1"); }), Catch::Contains("PORT"));
    CHECK_THAT(error_of([] { parse_target("redis://127.0.0.1:0"); }), Catch::Contains("1-65535"));
    CHECK_THAT(error_of([] { parse_target("redis://example.com:6379"); }), Catch::Contains("IP address"));
    CHECK_THAT(error_of([] { parse_target("redis://[::1]6379"); }), Catch::Contains("IPv6"));
}

// ---- Target / format_addr --------------------------------------------------------

TEST_CASE("format_addr: IPv4-mapped as dotted quad, IPv6 in brackets") {
    CHECK(format_addr(v4(127, 0, 0, 1)) == "127.0.0.1");
    CHECK(format_addr(v4(192, 168, 10, 254)) == "192.168.10.254");
    CHECK(format_addr(v4(0, 0, 0, 0)) == "0.0.0.0");
    CHECK(format_addr(kV6Loopback) == "[::1]");
    CHECK(format_addr(Addr{}) == "[::]");
    CHECK(format_addr(Addr{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34}) == "[fe80::1234]");
}

TEST_CASE("Target: server() of a hand-made target") {
    Target t;
    CHECK(t.any_address());
    CHECK(t.server() == "*:0");
    t.port = 6379;
    CHECK(t.server() == "*:6379");
    t.host = "0.0.0.0";  // any address shows the host as written
    CHECK(t.server() == "0.0.0.0:6379");
    t.addr = v4(10, 0, 0, 1);  // otherwise the address wins over the host text
    CHECK(t.server() == "10.0.0.1:6379");
    CHECK_FALSE(t.any_address());
}

TEST_CASE("Target: loopback()") {
    Target t;
    CHECK_FALSE(t.loopback());  // any address
    t.addr = v4(127, 0, 0, 1);
    CHECK(t.loopback());
    t.addr = v4(127, 255, 3, 9);
    CHECK(t.loopback());
    t.addr = v4(128, 0, 0, 1);
    CHECK_FALSE(t.loopback());
    t.addr = v4(10, 0, 0, 127);
    CHECK_FALSE(t.loopback());
    t.addr = kV6Loopback;
    CHECK(t.loopback());
    t.addr[15] = 2;  // ::2
    CHECK_FALSE(t.loopback());
    t.addr = Addr{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 127, 0, 0, 1};  // ::127.0.0.1 is not v4-mapped
    CHECK_FALSE(t.loopback());
}

// ---- parse_duration ----------------------------------------------------------------

TEST_CASE("parse_duration: units") {
    CHECK(parse_duration("500ms", "--interval") == milliseconds(500));
    CHECK(parse_duration("1ms", "--interval") == milliseconds(1));
    CHECK(parse_duration("2s", "--interval") == milliseconds(2000));
    CHECK(parse_duration("1.5s", "--interval") == milliseconds(1500));
    CHECK(parse_duration("0.25s", "--interval") == milliseconds(250));
    CHECK(parse_duration("5m", "--interval") == milliseconds(300000));
    CHECK(parse_duration("1.5m", "--interval") == milliseconds(90000));
    CHECK(parse_duration("1h", "--interval") == milliseconds(3600000));
    CHECK(parse_duration("24h", "--interval") == milliseconds(86400000));
    CHECK(parse_duration("2500ms", "--interval") == milliseconds(2500));
}

TEST_CASE("parse_duration: a bare number is seconds") {
    CHECK(parse_duration("3", "--duration") == milliseconds(3000));
    CHECK(parse_duration("0.5", "--duration") == milliseconds(500));
    CHECK(parse_duration("60", "--duration") == milliseconds(60000));
}

TEST_CASE("parse_duration: bad input throws keyscope::Error naming the option and the value") {
    for (const char* bad :
         {"",      "s",   "ms",  "-1s", "0s",    "0",   "0ms", "0.0s", "10x", "abc",
          "10sec", "1 s", " 1s", "1s ", "10mss", "5hm", ".",   ".s",   "1e3", "1000000000h"}) {
        INFO("'" << bad << "'");
        CHECK_THROWS_AS(parse_duration(bad, "--interval"), keyscope::Error);
        CHECK_THAT(error_of([&] { parse_duration(bad, "--interval"); }),
                   Catch::Contains("--interval") && Catch::Contains("'" + std::string(bad) + "'"));
    }
}

// A value that is positive as written but would round to 0 ms must be rejected:
// run() treats --duration 0 as "no limit" and --interval 0 as "report
// continuously".
TEST_CASE("parse_duration: sub-millisecond values must not become 0 ms") {
    for (const char* tiny : {"0.4ms", "0.0001s", "0.1ms"}) {
        INFO("'" << tiny << "'");
        milliseconds got{-1};
        CHECK_THROWS_AS(got = parse_duration(tiny, "--duration"), keyscope::Error);
        if (got.count() != -1) CHECK(got.count() > 0);
    }
}

// A malformed number with a second "." is an error, not its longest valid
// prefix ("1.2.3s" is not 1200 ms).
TEST_CASE("parse_duration: malformed numbers are rejected") {
    for (const char* bad : {"1.2.3s", "1..5s", "2.5.0"}) {
        INFO("'" << bad << "'");
        CHECK_THROWS_AS(parse_duration(bad, "--interval"), keyscope::Error);
    }
}
