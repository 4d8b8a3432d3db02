// Host tests of bpf/proto/resp.h: the same header the BPF programs compile.
#include <catch2/catch.hpp>
#include <random>

#include "act/enforcer.hpp"
#include "resp_driver.hpp"

using keyscope::test::fnv;
using keyscope::test::key_hash;
using keyscope::test::ReplyDriver;
using keyscope::test::RequestDriver;
using keyscope::test::resp_command;

namespace {

std::vector<std::string> all_keys(const RequestDriver& d) {
    std::vector<std::string> out;
    for (const auto& c : d.commands)
        for (const auto& k : c.keys) out.push_back(k);
    return out;
}

const std::string kPipeline =
    resp_command({"GET", "user:1"}) + resp_command({"SET", "user:2", "value with \r\n inside"}) +
    resp_command({"MGET", "a", "b", "c"}) + resp_command({"PING"}) +
    resp_command({"MSET", "k1", "v1", "k2", "v2"}) + resp_command({"DEL", "x", "y"}) +
    resp_command({"AUTH", "secret-user", "secret-pass"}) + resp_command({"BLPOP", "q1", "q2", "0"}) +
    "GET inline:key\r\n" + resp_command({"INCR", "counter"});

const std::vector<std::string> kPipelineKeys = {"user:1", "user:2", "a",  "b",  "c",          "k1",     "k2",
                                                "x",      "y",      "q1", "q2", "inline:key", "counter"};

}  // namespace

TEST_CASE("single GET yields one read of its key") {
    RequestDriver d;
    d.chunk(resp_command({"GET", "foo"}));
    REQUIRE(d.commands.size() == 1);
    CHECK(d.commands[0].cls == KS_CMD_READ);
    CHECK(d.commands[0].keys == std::vector<std::string>{"foo"});
    CHECK(d.commands[0].key_hashes[0] == key_hash("foo"));
    CHECK(d.commands[0].bytes == resp_command({"GET", "foo"}).size());
    CHECK(d.invalid == 0);
}

TEST_CASE("command names are case-insensitive") {
    RequestDriver d;
    d.chunk(resp_command({"get", "a"}) + resp_command({"GeT", "b"}));
    REQUIRE(d.commands.size() == 2);
    CHECK(d.commands[0].cls == KS_CMD_READ);
    CHECK(d.commands[1].cls == KS_CMD_READ);
}

TEST_CASE("a pipeline of mixed commands yields every key in order") {
    RequestDriver d;
    d.chunk(kPipeline);
    CHECK(d.invalid == 0);
    REQUIRE(d.commands.size() == 10);
    CHECK(all_keys(d) == kPipelineKeys);
    CHECK(d.commands[1].cls == KS_CMD_WRITE);    // SET
    CHECK(d.commands[3].cls == KS_CMD_KEYLESS);  // PING
    CHECK(d.commands[3].keys.empty());
    CHECK(d.commands[6].keys.empty());      // AUTH: arguments never captured
    CHECK(d.commands[7].keys.size() == 2);  // BLPOP: the timeout is not a key
    std::size_t total = 0;
    for (const auto& c : d.commands) total += c.bytes;
    CHECK(total == kPipeline.size());
}

TEST_CASE("pipelining depth 32 counts every command") {
    std::string buf;
    for (int i = 0; i < 32; ++i) buf += resp_command({"GET", "key:" + std::to_string(i)});
    RequestDriver d;
    d.chunk(buf);
    REQUIRE(d.commands.size() == 32);
    CHECK(d.commands[31].keys[0] == "key:31");
}

TEST_CASE("a split at every offset gives the same result as one chunk") {
    for (std::size_t i = 0; i <= kPipeline.size(); ++i) {
        RequestDriver d;
        d.chunk(std::string_view(kPipeline).substr(0, i));
        d.chunk(std::string_view(kPipeline).substr(i));
        INFO("split at " << i);
        REQUIRE(d.invalid == 0);
        REQUIRE(all_keys(d) == kPipelineKeys);
        REQUIRE(d.commands.size() == 10);
    }
}

TEST_CASE("a split into three chunks at every pair of offsets") {
    const std::string buf =
        resp_command({"SET", "k:1", "v"}) + "GET k:2\r\n" + resp_command({"MGET", "k:3", "k:4"});
    for (std::size_t i = 0; i <= buf.size(); ++i) {
        for (std::size_t j = i; j <= buf.size(); ++j) {
            RequestDriver d;
            d.chunk(std::string_view(buf).substr(0, i));
            d.chunk(std::string_view(buf).substr(i, j - i));
            d.chunk(std::string_view(buf).substr(j));
            INFO("splits at " << i << "," << j);
            REQUIRE(d.invalid == 0);
            REQUIRE(all_keys(d) == std::vector<std::string>{"k:1", "k:2", "k:3", "k:4"});
        }
    }
}

TEST_CASE("a command name answered before is recognised in the same step as its first key") {
    // runs of one command (the parser remembers the last answer) between
    // commands whose keys sit elsewhere, split at every offset
    struct Want {
        std::string name;
        int cls;
        std::vector<std::string> keys;
    };
    const std::vector<Want> want = {
        {"GET", KS_CMD_READ, {"a"}},
        {"GET", KS_CMD_READ, {"b"}},
        {"SET", KS_CMD_WRITE, {"c"}},
        {"SET", KS_CMD_WRITE, {"d"}},
        {"MGET", KS_CMD_READ, {"e", "f"}},
        {"MGET", KS_CMD_READ, {"g", "h"}},
        {"PING", KS_CMD_KEYLESS, {}},
        {"PING", KS_CMD_KEYLESS, {}},
        {"BLPOP", KS_CMD_WRITE, {"q1", "q2"}},
        {"BLPOP", KS_CMD_WRITE, {"q3"}},
        {"NOSUCHCMD", KS_CMD_UNKNOWN, {}},
        {"NOSUCHCMD", KS_CMD_UNKNOWN, {}},
        {"get", KS_CMD_READ, {""}},
        {"GET", KS_CMD_READ, {"i"}},
    };
    std::string buf;
    for (const auto& w : want) {
        std::vector<std::string> args{w.name};
        if (w.name == "SET")
            args.insert(args.end(), {w.keys[0], "v"});
        else if (w.name == "BLPOP") {
            args.insert(args.end(), w.keys.begin(), w.keys.end());
            args.push_back("0");
        } else if (w.name == "NOSUCHCMD")
            args.push_back("x");
        else
            args.insert(args.end(), w.keys.begin(), w.keys.end());
        buf += resp_command(args);
    }
    auto check = [&](const RequestDriver& d) {
        REQUIRE(d.invalid == 0);
        REQUIRE(d.commands.size() == want.size());
        std::size_t total = 0;
        for (std::size_t i = 0; i < want.size(); ++i) {
            INFO("command " << i << " " << want[i].name);
            std::string upper = want[i].name;
            for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            CHECK(d.commands[i].name_hash == fnv(upper));
            CHECK(d.commands[i].cls == want[i].cls);
            CHECK(d.commands[i].keys == want[i].keys);
            total += d.commands[i].bytes;
        }
        CHECK(total == buf.size());
    };
    RequestDriver whole;
    whole.chunk(buf);
    check(whole);
    // GET b, SET d (with its value), MGET g, BLPOP q3 and GET i (after "get")
    // come in one step each
    CHECK(whole.fused == 5);
    // GET b, SET d, BLPOP q3 (its timeout is no key) and GET i: the whole command in one step
    CHECK(whole.whole_commands == 4);
    for (std::size_t i = 0; i <= buf.size(); ++i) {
        RequestDriver d;
        d.chunk(std::string_view(buf).substr(0, i));
        d.chunk(std::string_view(buf).substr(i));
        INFO("split at " << i);
        check(d);
    }
}

TEST_CASE("the key hash: parsers (word and byte paths), daemon and definition agree") {
    std::mt19937 rng(7);
    std::vector<std::size_t> lengths;
    for (std::size_t n = 0; n <= 130; ++n) lengths.push_back(n);
    for (std::size_t n : {4088, 4095, 4096, 4097, 4100, 5000}) lengths.push_back(n);
    for (std::size_t n : lengths) {
        std::string key(n, '\0');
        for (auto& c : key) c = static_cast<char>(rng());
        INFO("length " << n);
        const std::uint64_t want = key_hash(key);  // the test's own implementation
        CHECK(ks_key_hash(key.data(), static_cast<__u32>(n)) == want);
        CHECK(keyscope::key_hash(key) == want);  // what rules are keyed by
        RequestDriver whole;                     // word steps
        whole.chunk(resp_command({"GET", key}));
        REQUIRE(whole.commands.size() == 1);
        CHECK(whole.commands[0].key_hashes[0] == want);
        const std::string cmd = resp_command({"GET", key});
        RequestDriver split;  // a chunk boundary in mid-word, then word steps again
        split.chunk(std::string_view(cmd).substr(0, cmd.size() / 2));
        split.chunk(std::string_view(cmd).substr(cmd.size() / 2));
        REQUIRE(split.commands.size() == 1);
        CHECK(split.commands[0].key_hashes[0] == want);
    }
    // a length is mixed in: a trailing NUL makes another key
    CHECK(key_hash("a") != key_hash(std::string("a\0", 2)));
}

TEST_CASE("one byte per chunk") {
    RequestDriver d;
    for (char c : kPipeline) d.chunk(std::string_view(&c, 1));
    CHECK(d.invalid == 0);
    CHECK(all_keys(d) == kPipelineKeys);
}

TEST_CASE("a truncated command never completes and never errs") {
    const std::string cmd = resp_command({"SET", "key", "value"});
    for (std::size_t n = 0; n < cmd.size(); ++n) {
        RequestDriver d;
        d.chunk(std::string_view(cmd).substr(0, n));
        INFO("length " << n);
        REQUIRE(d.commands.empty());
        REQUIRE(d.invalid == 0);
    }
}

TEST_CASE("inline commands") {
    RequestDriver d;
    d.chunk("GET foo\r\nSET  bar 1\nPING\r\n\r\nMGET a b\n");
    CHECK(d.invalid == 0);
    REQUIRE(d.commands.size() == 4);
    CHECK(all_keys(d) == std::vector<std::string>{"foo", "bar", "a", "b"});
    CHECK(d.commands[2].cls == KS_CMD_KEYLESS);
}

TEST_CASE("binary-safe keys: spaces, CRLF and NUL inside a bulk key") {
    const std::string key("a b\r\n\0c", 7);
    RequestDriver d;
    d.chunk(resp_command({"GET", key}));
    REQUIRE(d.commands.size() == 1);
    CHECK(d.commands[0].keys[0] == key);
    CHECK(d.commands[0].key_hashes[0] == key_hash(key));
}

TEST_CASE("keys longer than the stored length are hashed whole and truncated") {
    const std::string long_a(100, 'a');
    std::string long_b = long_a;
    long_b[99] = 'b';  // differs only past the stored prefix
    RequestDriver d;
    d.chunk(resp_command({"GET", long_a}) + resp_command({"GET", long_b}));
    REQUIRE(d.commands.size() == 2);
    CHECK(d.commands[0].keys[0] == long_a.substr(0, KS_KEY_MAX));
    CHECK(d.commands[0].key_lens[0] == 100);
    CHECK(d.commands[0].key_hashes[0] == key_hash(long_a));
    CHECK(d.commands[0].key_hashes[0] != d.commands[1].key_hashes[0]);
}

TEST_CASE("keys past the hashed length mix in their length") {
    const std::string k1(KS_KEY_HASH_MAX + 10, 'z');
    const std::string k2(KS_KEY_HASH_MAX + 11, 'z');
    RequestDriver d;
    d.chunk(resp_command({"GET", k1}) + resp_command({"GET", k2}));
    REQUIRE(d.commands.size() == 2);
    CHECK(d.commands[0].key_lens[0] == k1.size());
    CHECK(d.commands[0].key_hashes[0] != d.commands[1].key_hashes[0]);
}

TEST_CASE("unknown commands are counted without keys") {
    RequestDriver d;
    d.chunk(resp_command({"NOSUCHCMD", "a", "b"}));
    REQUIRE(d.commands.size() == 1);
    CHECK(d.commands[0].cls == KS_CMD_UNKNOWN);
    CHECK(d.commands[0].keys.empty());
}

TEST_CASE("empty bulk key and empty array") {
    RequestDriver d;
    d.chunk("*0\r\n" + resp_command({"GET", ""}));
    CHECK(d.invalid == 0);
    REQUIRE(d.commands.size() == 1);
    CHECK(d.commands[0].keys == std::vector<std::string>{""});
}

TEST_CASE("malformed requests are rejected and the next chunk resynchronises") {
    const std::vector<std::string> bad = {
        "*2\r\n$3\r\nGET\r\nXX",        // missing '$'
        "*x\r\n",                       // non-digit count
        "*2\r\n$3\r\nGETT\r\n",         // bulk longer than declared
        "*2\r\n$99999999999\r\n",       // length overflow
        "*\r\n",                        // no digits
        "*2\r\n$3\r\nGET\r\n$1\r\nab",  // missing CRLF after bulk
    };
    for (const auto& b : bad) {
        RequestDriver d;
        d.chunk(b + resp_command({"GET", "lost"}));
        INFO("input " << b);
        REQUIRE(d.invalid == 1);
        // the rest of that chunk is skipped; a chunk starting with '*' resumes
        d.chunk(resp_command({"GET", "ok"}));
        REQUIRE(all_keys(d) == std::vector<std::string>{"ok"});
        // a chunk not starting with '*' after a resync keeps skipping
        RequestDriver d2;
        d2.chunk(b);
        d2.chunk("GET nope\r\n");
        d2.chunk(resp_command({"GET", "back"}));
        REQUIRE(all_keys(d2) == std::vector<std::string>{"back"});
    }
}

TEST_CASE("random bytes never crash the request parser") {
    std::mt19937 rng(42);
    for (int round = 0; round < 2000; ++round) {
        std::string buf(rng() % 200, '\0');
        for (auto& c : buf) c = "*$\r\n0123456789GETSabc \x00\xff"[rng() % 22];
        RequestDriver d;
        d.chunk(buf);
        d.chunk(buf);
        REQUIRE(d.st_.state <= KS_RQ_LOST);
    }
}

// ---- replies --------------------------------------------------------------

TEST_CASE("reply types are classified") {
    ReplyDriver d;
    d.chunk(
        "+OK\r\n-ERR wrong\r\n-MOVED 3999 127.0.0.1:6381\r\n-ASK 3999 127.0.0.1:6381\r\n"
        ":42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n$1\r\na\r\n$-1\r\n*-1\r\n"
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    CHECK(d.invalid == 0);
    REQUIRE(d.replies.size() == 10);
    CHECK(d.replies[0].flags == KS_RPF_TOPSET);
    CHECK((d.replies[1].flags & KS_RPF_ERROR));
    CHECK((d.replies[2].flags & KS_RPF_REDIRECT));
    CHECK(!(d.replies[2].flags & KS_RPF_ERROR));
    CHECK((d.replies[3].flags & KS_RPF_REDIRECT));
    CHECK(d.replies[5].value_bytes == 5);
    CHECK(d.replies[5].bytes == 11);
    CHECK(d.replies[7].value_bytes == 1);
    CHECK((d.replies[9].flags & KS_RPF_ERROR));
}

TEST_CASE("RESP3 replies: maps, sets, attributes, pushes, nulls, blob errors") {
    ReplyDriver d;
    d.chunk(
        "%2\r\n+a\r\n:1\r\n+b\r\n$3\r\nxyz\r\n"                    // map of 2 pairs
        "~2\r\n,1.5\r\n#t\r\n"                                     // set
        "|1\r\n+key\r\n+val\r\n$2\r\nhi\r\n"                       // attribute then the reply
        ">3\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n$1\r\nx\r\n"  // push
        "_\r\n"                                                    // null
        "!5\r\nERR x\r\n"                                          // blob error
        "=7\r\ntxt:abc\r\n(12345678901234567890\r\n");
    CHECK(d.invalid == 0);
    REQUIRE(d.replies.size() == 8);
    CHECK(d.replies[0].value_bytes == 3);
    CHECK(d.replies[2].value_bytes == 2);
    CHECK((d.replies[3].flags & KS_RPF_PUSH));
    CHECK((d.replies[5].flags & KS_RPF_ERROR));
    CHECK(d.replies[6].value_bytes == 7);
}

TEST_CASE("nested aggregates complete only with their last element") {
    ReplyDriver d;
    d.chunk("*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n$3\r\nabc\r\n");
    REQUIRE(d.replies.size() == 1);
    CHECK(d.replies[0].value_bytes == 3);
    CHECK(d.replies[0].bytes == 29);
}

TEST_CASE("a reply stream split at every offset") {
    const std::string buf = "+OK\r\n$12\r\nhello\r\nworld\r\n*3\r\n:1\r\n$-1\r\n-ERR x\r\n-MOVED 1 h:1\r\n";
    for (std::size_t i = 0; i <= buf.size(); ++i) {
        ReplyDriver d;
        d.chunk(std::string_view(buf).substr(0, i));
        d.chunk(std::string_view(buf).substr(i));
        INFO("split at " << i);
        REQUIRE(d.invalid == 0);
        REQUIRE(d.replies.size() == 4);
        REQUIRE(d.replies[1].value_bytes == 12);
        REQUIRE((d.replies[3].flags & KS_RPF_REDIRECT));
    }
}

TEST_CASE("malformed replies are rejected and the next chunk resynchronises") {
    for (std::string bad : {"?what\r\n", "$x\r\n", "*-2\r\n", "$3\r\nabcd\r\n", "+a\nb\r\n"}) {
        ReplyDriver d;
        d.chunk(bad + "+OK\r\n");
        INFO("input " << bad);
        REQUIRE(d.invalid == 1);
        d.chunk("+OK\r\n");
        REQUIRE(d.replies.size() == 1);
    }
}

TEST_CASE("random bytes never crash the reply parser") {
    std::mt19937 rng(7);
    for (int round = 0; round < 2000; ++round) {
        std::string buf(rng() % 200, '\0');
        for (auto& c : buf) c = "*$%|>+-:\r\n0123456789-"[rng() % 21];
        ReplyDriver d;
        d.chunk(buf);
        d.chunk(buf);
        REQUIRE(d.rp_.state <= KS_RP_LOST);
    }
}
