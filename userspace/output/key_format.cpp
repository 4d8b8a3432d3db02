#include "output/key_format.hpp"

#include <cctype>

#include <cstdio>

#include "util/error.hpp"

extern "C" {
#include "proto/common.h"
}

namespace keyscope {

Redaction parse_redaction(std::string_view text) {
    if (text == "none") return Redaction::none;
    if (text == "hash") return Redaction::hash;
    if (text == "prefix") return Redaction::prefix;
    throw Error("--redact: bad value '" + std::string(text) + "' (use none, hash or prefix)");
}

std::string escape_key(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    for (unsigned char c : bytes) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out;
}

std::optional<std::string> unescape_key(std::string_view shown) {
    std::string out;
    for (std::size_t i = 0; i < shown.size(); ++i) {
        char c = shown[i];
        if (c != '\\') {
            out += c;
            continue;
        }
        if (i + 1 < shown.size() && shown[i + 1] == '\\') {
            out += '\\';
            ++i;
        } else if (i + 3 < shown.size() && shown[i + 1] == 'x' &&
                   std::isxdigit(static_cast<unsigned char>(shown[i + 2])) &&
                   std::isxdigit(static_cast<unsigned char>(shown[i + 3]))) {
            out += static_cast<char>(std::stoi(std::string(shown.substr(i + 2, 2)), nullptr, 16));
            i += 3;
        } else {
            return std::nullopt;
        }
    }
    return out;
}

std::string KeyFormatter::format(std::string_view bytes, bool truncated, std::uint64_t hash) const {
    switch (mode_) {
        case Redaction::hash: {
            char buf[20];
            std::snprintf(buf, sizeof buf, "#%016llx", static_cast<unsigned long long>(hash));
            return buf;
        }
        case Redaction::prefix: {
            auto pos = bytes.find(delimiter_);
            if (pos == std::string_view::npos) return "*";
            return escape_key(bytes.substr(0, pos + 1)) + "*";
        }
        case Redaction::none:
            break;
    }
    return escape_key(bytes) + (truncated ? "..." : "");
}

std::string KeyFormatter::format_prefix(std::string_view prefix) const {
    if (mode_ != Redaction::hash) return escape_key(prefix);
    // the hash keys are shown by, so a prefix and a key never look alike
    return format(prefix, false, ks_key_hash(prefix.data(), static_cast<__u32>(prefix.size())));
}

}  // namespace keyscope
