// How a key is shown in every output. Redaction is one switch applied here,
// so no output can show a key another one hides.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keyscope {

enum class Redaction { none, hash, prefix };

/// Parses "none" | "hash" | "prefix"; throws keyscope::Error otherwise.
Redaction parse_redaction(std::string_view text);

/// Escapes key bytes unambiguously: printable ASCII as is, '\' as "\\",
/// every other byte as "\xHH" (lower-case hex).
std::string escape_key(std::string_view bytes);
/// The inverse of escape_key(); nullopt for text escape_key() cannot produce.
std::optional<std::string> unescape_key(std::string_view shown);

class KeyFormatter {
public:
    explicit KeyFormatter(Redaction mode = Redaction::none, char delimiter = ':')
        : mode_(mode), delimiter_(delimiter) {}

    /// The key as outputs show it: escaped, "..." appended when truncated;
    /// or "#<hash>" (hash mode: the key hash, bpf/proto/common.h); or
    /// "<prefix><delim>*" (prefix mode).
    std::string format(std::string_view bytes, bool truncated, std::uint64_t hash) const;
    /// A key prefix or glob ("user:*"): shown as is unless keys are hashed,
    /// then as "#<key hash of the prefix>".
    std::string format_prefix(std::string_view prefix) const;
    Redaction mode() const { return mode_; }

private:
    Redaction mode_;
    char delimiter_;
};

}  // namespace keyscope
