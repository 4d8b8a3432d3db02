// Host tests of userspace/output/key_format.{hpp,cpp}: key escaping and redaction.
#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <string>
#include "error_of.hpp"

#include "output/key_format.hpp"
#include "util/error.hpp"

using keyscope::escape_key;
using keyscope::KeyFormatter;
using keyscope::parse_redaction;
using keyscope::Redaction;

namespace {

std::string bytes(std::initializer_list<unsigned char> b) {
    return std::string(b.begin(), b.end());
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;  // upper case is not what escape_key writes
}

// Inverse of escape_key, strict: nullopt for any text escape_key cannot produce.
std::optional<std::string> unescape(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c >= 0x7f) return std::nullopt;
        if (c != '\\') {
            out += static_cast<char>(c);
            continue;
        }
        if (i + 1 < text.size() && text[i + 1] == '\\') {
            out += '\\';
            i += 1;
        } else if (i + 3 < text.size() && text[i + 1] == 'x' && hex_digit(text[i + 2]) >= 0 &&
                   hex_digit(text[i + 3]) >= 0) {
            out += static_cast<char>(hex_digit(text[i + 2]) * 16 + hex_digit(text[i + 3]));
            i += 3;
        } else {
            return std::nullopt;
        }
    }
    return out;
}

std::string error_of(std::string_view text) {
    return keyscope::test::error_of([&] { parse_redaction(text); });
}

}  // namespace

// ---- escape_key --------------------------------------------------------------

TEST_CASE("escape_key: printable ASCII is unchanged") {
    std::string all;
    for (int c = 0x20; c < 0x7f; ++c)
        if (c != '\\') all += static_cast<char>(c);
    CHECK(escape_key(all) == all);
    CHECK(escape_key("user:42") == "user:42");
    CHECK(escape_key("a b\"c'{}[]~") == "a b\"c'{}[]~");
    CHECK(escape_key("") == "");
}

TEST_CASE("escape_key: backslash is doubled") {
    CHECK(escape_key("\\") == "\\\\");
    CHECK(escape_key("a\\b") == "a\\\\b");
    CHECK(escape_key("\\\\") == "\\\\\\\\");
    CHECK(escape_key("\\x00") == "\\\\x00");
}

TEST_CASE("escape_key: other bytes as \\xHH in lower case") {
    CHECK(escape_key("\r") == "\\x0d");
    CHECK(escape_key("\n") == "\\x0a");
    CHECK(escape_key("\t") == "\\x09");
    CHECK(escape_key(std::string(1, '\0')) == "\\x00");
    CHECK(escape_key("\x7f") == "\\x7f");
    CHECK(escape_key("\x80") == "\\x80");
    CHECK(escape_key("\xab") == "\\xab");
    CHECK(escape_key("\xff") == "\\xff");
    CHECK(escape_key("a\r\nb") == "a\\x0d\\x0ab");
    CHECK(escape_key(bytes({'k', 0, 0xff, '\\', 'z'})) == "k\\x00\\xff\\\\z");
}

TEST_CASE("escape_key: every single byte") {
    static const char* hex = "0123456789abcdef";
    for (int c = 0; c < 256; ++c) {
        INFO("byte " << c);
        std::string want;
        if (c == '\\')
            want = "\\\\";
        else if (c >= 0x20 && c < 0x7f)
            want = std::string(1, static_cast<char>(c));
        else
            want = std::string("\\x") + hex[c >> 4] + hex[c & 15];
        REQUIRE(escape_key(std::string(1, static_cast<char>(c))) == want);
    }
}

TEST_CASE("escape_key: tricky pairs escape differently") {
    const std::pair<std::string, std::string> pairs[] = {
        {"\\x00", std::string(1, '\0')},  // literal text vs the NUL byte
        {"\\xff", "\xff"},
        {"\\x0a", "\n"},
        {"\\\\", "\\"},
        {"\\\\x00", std::string("\\\0", 2)},
        {"\\x5c", "\\"},  // 0x5c is the backslash itself
        {"x00", std::string(1, '\0')},
        {"\\", "\\\\"},
    };
    for (const auto& [a, b] : pairs) {
        INFO("'" << escape_key(a) << "' vs '" << escape_key(b) << "'");
        REQUIRE(a != b);
        CHECK(escape_key(a) != escape_key(b));
    }
}

TEST_CASE("escape_key: output is printable and decodes back to the bytes") {
    std::mt19937 rng(7);
    for (int i = 0; i < 2000; ++i) {
        std::string s(rng() % 24, '\0');
        for (auto& c : s) c = static_cast<char>(rng() % 4 == 0 ? "\\x0f"[rng() % 4] : rng() % 256);
        auto e = escape_key(s);
        for (unsigned char c : e) REQUIRE((c >= 0x20 && c < 0x7f));
        auto back = unescape(e);
        REQUIRE(back.has_value());
        REQUIRE(*back == s);
    }
}

TEST_CASE("escape_key: injective over all short strings of a nasty alphabet") {
    const std::string alphabet = bytes({'\\', 'x', '0', 'a', 'f', 0x00, 0x0a, 0x7f, 0xff});
    std::set<std::string> inputs{""}, frontier{""};
    for (int len = 1; len <= 4; ++len) {
        std::set<std::string> next;
        for (const auto& s : frontier)
            for (char c : alphabet) next.insert(s + c);
        inputs.insert(next.begin(), next.end());
        frontier = std::move(next);
    }
    REQUIRE(inputs.size() == 1 + 9 + 81 + 729 + 6561);
    std::set<std::string> outputs;
    for (const auto& s : inputs) outputs.insert(escape_key(s));
    CHECK(outputs.size() == inputs.size());
}

// ---- KeyFormatter ------------------------------------------------------------------

TEST_CASE("KeyFormatter: defaults to none with ':'") {
    KeyFormatter f;
    CHECK(f.mode() == Redaction::none);
    CHECK(f.format("user:42", false, 1) == "user:42");
    CHECK(KeyFormatter(Redaction::hash).mode() == Redaction::hash);
    CHECK(KeyFormatter(Redaction::prefix).mode() == Redaction::prefix);
}

TEST_CASE("KeyFormatter none: escaped key, \"...\" when truncated") {
    KeyFormatter f(Redaction::none);
    CHECK(f.format("user:42", false, 0x1234) == "user:42");
    CHECK(f.format("user:42", true, 0x1234) == "user:42...");
    CHECK(f.format("a\nb\\", false, 0) == "a\\x0ab\\\\");
    CHECK(f.format("a\nb\\", true, 0) == "a\\x0ab\\\\...");
    CHECK(f.format("", false, 0) == "");
    CHECK(f.format("", true, 0) == "...");
}

TEST_CASE("KeyFormatter hash: '#' and 16 lower-case hex digits of the hash") {
    KeyFormatter f(Redaction::hash);
    CHECK(f.format("user:42", false, 0x0123456789abcdefULL) == "#0123456789abcdef");
    CHECK(f.format("user:42", true, 0x0123456789abcdefULL) == "#0123456789abcdef");
    CHECK(f.format("anything else", false, 0x0123456789abcdefULL) == "#0123456789abcdef");
    CHECK(f.format("user:42", false, 0) == "#0000000000000000");
    CHECK(f.format("user:42", false, 0xff) == "#00000000000000ff");
    CHECK(f.format("", false, 0xFEDCBA9876543210ULL) == "#fedcba9876543210");
    CHECK(f.format("k", false, ~0ULL) == "#ffffffffffffffff");
    CHECK(f.format("k", false, 1ULL << 63) == "#8000000000000000");
}

TEST_CASE("KeyFormatter prefix: everything up to the first delimiter, then '*'") {
    KeyFormatter f(Redaction::prefix);
    CHECK(f.format("user:42", false, 1) == "user:*");
    CHECK(f.format("user:42", true, 1) == "user:*");
    CHECK(f.format("user:42:name", false, 1) == "user:*");
    CHECK(f.format(":42", false, 1) == ":*");
    CHECK(f.format("user:", false, 1) == "user:*");
    CHECK(f.format("nodelimiter", false, 1) == "*");
    CHECK(f.format("nodelimiter", true, 1) == "*");
    CHECK(f.format("", false, 1) == "*");
}

TEST_CASE("KeyFormatter prefix: the prefix is escaped too") {
    KeyFormatter f(Redaction::prefix);
    CHECK(f.format("a\nb:secret", false, 1) == "a\\x0ab:*");
    CHECK(f.format("\\x:secret", false, 1) == "\\\\x:*");
    CHECK(f.format(bytes({0x00, 0xff, ':', 's'}), false, 1) == "\\x00\\xff:*");
    CHECK(f.format("secret\n", false, 1) == "*");
}

TEST_CASE("KeyFormatter prefix: other delimiters") {
    KeyFormatter slash(Redaction::prefix, '/');
    CHECK(slash.format("tenant/7/obj", false, 1) == "tenant/*");
    CHECK(slash.format("user:42", false, 1) == "*");
    KeyFormatter nul(Redaction::prefix, '\0');
    CHECK(nul.format(std::string("ab\0cd", 5), false, 1) == "ab\\x00*");
    // the delimiter does not matter in the other modes
    CHECK(KeyFormatter(Redaction::none, '/').format("a/b", false, 1) == "a/b");
    CHECK(KeyFormatter(Redaction::hash, '/').format("a/b", false, 1) == "#0000000000000001");
}

// ---- parse_redaction -------------------------------------------------------------------

TEST_CASE("parse_redaction: the three modes") {
    CHECK(parse_redaction("none") == Redaction::none);
    CHECK(parse_redaction("hash") == Redaction::hash);
    CHECK(parse_redaction("prefix") == Redaction::prefix);
}

TEST_CASE("parse_redaction: anything else throws keyscope::Error naming it") {
    for (const char* bad : {"", "None", "HASH", " none", "prefix ", "hashes", "pre", "off", "true", "0"}) {
        INFO("'" << bad << "'");
        CHECK_THROWS_AS(parse_redaction(bad), keyscope::Error);
        CHECK_THAT(error_of(bad),
                   Catch::Contains("--redact") && Catch::Contains("'" + std::string(bad) + "'"));
    }
    CHECK_THROWS_AS(parse_redaction(std::string_view("none\0", 5)), keyscope::Error);
}

TEST_CASE("unescape_key inverts escape_key and refuses what it never writes", "[key_format]") {
    using keyscope::escape_key;
    using keyscope::unescape_key;
    const std::string samples[] = {"user:42", std::string("a\0b", 3), "back\\slash", "\r\n\xff tail", ""};
    for (const auto& k : samples) CHECK(unescape_key(escape_key(k)) == k);
    CHECK(!unescape_key("bad\\q"));
    CHECK(!unescape_key("cut\\x4"));
    CHECK(!unescape_key("trailing\\"));
}
