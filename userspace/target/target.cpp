#include "target/target.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "util/error.hpp"

namespace keyscope {
namespace {

bool v4_mapped(const std::array<std::uint8_t, 16>& a) {
    static const std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(a.data(), prefix, 12) == 0;
}

}  // namespace

std::string format_addr(const std::array<std::uint8_t, 16>& addr) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (v4_mapped(addr)) {
        inet_ntop(AF_INET, addr.data() + 12, buf, sizeof buf);
        return buf;
    }
    inet_ntop(AF_INET6, addr.data(), buf, sizeof buf);
    return std::string("[") + buf + "]";
}

bool Target::any_address() const {
    for (auto b : addr)
        if (b) return false;
    return true;
}

bool Target::loopback() const {
    if (v4_mapped(addr)) return addr[12] == 127;
    static const std::uint8_t v6_lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return std::memcmp(addr.data(), v6_lo, 16) == 0;
}

std::string Target::server() const {
    std::string h = any_address() ? (host.empty() ? "*" : host) : format_addr(addr);
    return h + ":" + std::to_string(port);
}

Target parse_target(std::string_view url) {
    auto bad = [&](const std::string& why) {
        return Error("--target: bad target '" + std::string(url) + "': " + why +
                     " (expected redis://HOST:PORT or memcached://HOST:PORT)");
    };
    Target t;
    auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) throw bad("missing scheme");
    t.proto = std::string(url.substr(0, scheme_end));
    if (t.proto != "redis" && t.proto != "memcached") throw bad("unsupported protocol '" + t.proto + "'");
    std::string_view rest = url.substr(scheme_end + 3);
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    std::string_view host, port;
    if (!rest.empty() && rest.front() == '[') {
        auto close = rest.find(']');
        if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
            throw bad("bad [IPv6]:PORT");
        host = rest.substr(1, close - 1);
        port = rest.substr(close + 2);
    } else {
        auto colon = rest.rfind(':');
        if (colon == std::string_view::npos) throw bad("missing :PORT");
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    }
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535)
        throw bad("port must be 1-65535");
    t.port = static_cast<std::uint16_t>(p);
    t.host = std::string(host);
    std::string h(host);
    if (h == "localhost") h = "127.0.0.1";
    if (h == "*" || h == "0.0.0.0" || h == "::") {
        t.addr = {};
        t.host = "*";
        return t;
    }
    in_addr a4{};
    in6_addr a6{};
    if (inet_pton(AF_INET, h.c_str(), &a4) == 1) {
        t.addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        std::memcpy(t.addr.data() + 12, &a4, 4);
    } else if (inet_pton(AF_INET6, h.c_str(), &a6) == 1) {
        std::memcpy(t.addr.data(), &a6, 16);
    } else {
        throw bad("host must be an IP address, localhost or *");
    }
    return t;
}

}  // namespace keyscope
