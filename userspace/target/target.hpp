// A server keyscope observes: protocol, address, port and (when known) pid.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace keyscope {

struct Target {
    std::string proto = "redis";
    std::string host;                     // as written or discovered
    std::array<std::uint8_t, 16> addr{};  // v4-mapped IPv6; all zero = any address
    std::uint16_t port = 0;               // host byte order
    int pid = 0;                          // 0 = unknown
    std::string comm;                     // process name when discovered

    /// "HOST:PORT" as printed in every output ("[::1]:6379" for IPv6).
    std::string server() const;
    bool any_address() const;
    bool loopback() const;
};

/// Parses "redis://HOST:PORT" (HOST: IPv4, [IPv6], localhost, or * for any).
/// Throws keyscope::Error naming the bad value.
Target parse_target(std::string_view url);

/// Formats a 16-byte (v4-mapped) address.
std::string format_addr(const std::array<std::uint8_t, 16>& addr);

}  // namespace keyscope
