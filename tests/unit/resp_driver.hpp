// Host-side driver of the BPF RESP parsers: feeds chunks byte by byte exactly
// as the BPF window walkers do and records what the parser reported.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

extern "C" {
#include "keyscope_abi.h"
#include "proto/resp.h"
}
#include "key_hash_ref.hpp"
#include "proto/redis_commands.hpp"

namespace keyscope::test {

struct ParsedCommand {
    std::uint64_t name_hash = 0;
    int cls = KS_CMD_UNKNOWN;
    std::vector<std::string> keys;  // stored bytes (at most KS_KEY_MAX)
    std::vector<std::uint32_t> key_lens;
    std::vector<std::uint64_t> key_hashes;
    std::uint32_t bytes = 0;
};

struct ParsedReply {
    std::uint8_t flags = 0;
    std::uint64_t value_bytes = 0;
    std::uint64_t bytes = 0;
};

class RequestDriver {
public:
    void chunk(std::string_view data) {
        ks_req_new_chunk(&st_);
        // windows of at most KS_SCRATCH bytes, exactly as the BPF walkers see them
        for (std::size_t base = 0; base < data.size(); base += KS_SCRATCH) {
            std::uint32_t len =
                static_cast<std::uint32_t>(std::min<std::size_t>(KS_SCRATCH, data.size() - base));
            std::memcpy(window_.buf, data.data() + base, len);
            std::uint32_t pos = 0;
            int idle = 0;
            while (pos < len) {
                int ev = 0;
                auto used = ks_req_step(&st_, &window_, pos, len, &ev);
                if (used > len - pos) throw std::runtime_error("parser consumed past the window");
                pos += used;
                idle = used ? 0 : idle + 1;
                if (idle > 2) throw std::runtime_error("parser made no progress");
                if ((ev & KS_EV_CMD) && (ev & KS_EV_KEY)) fused++;
                if ((ev & KS_EV_CMD) && (ev & KS_EV_KEY) && (ev & KS_EV_END)) whole_commands++;
                handle(ev);
            }
        }
    }
    void feed_all(std::string_view data) { chunk(data); }

    std::vector<ParsedCommand> commands;
    int invalid = 0;
    int fused = 0;           // steps that reported a name and its first key together
    int whole_commands = 0;  // ... and the command's end
    ks_resp_req st_{};

private:
    ks_window window_{};
    void handle(int ev) {
        if (ev & KS_EV_INVALID) {
            invalid++;
            current_ = {};
            return;
        }
        // one step can finish a token and its command: handle in this order
        for (int bit : {KS_EV_CMD, KS_EV_KEY, KS_EV_END})
            if (ev & bit) handle_one(bit);
    }
    void handle_one(int ev) {
        switch (ev) {
            case KS_EV_CMD: {
                current_ = {};
                current_.name_hash = st_.cmd_hash;
                // as the BPF programs answer: the parser's memory of the last name first
                if (!ks_req_recall_spec(&st_)) {
                    ks_cmd_spec s = proto::find_command(st_.cmd_hash).value_or(ks_cmd_spec{});
                    ks_req_set_spec(&st_, s.cls, s.first_key, s.last_key, s.step);
                }
                current_.cls = st_.cls;
                break;
            }
            case KS_EV_KEY:
                current_.keys.emplace_back(reinterpret_cast<const char*>(st_.key),
                                           std::min<std::uint32_t>(st_.key_len, KS_KEY_MAX));
                current_.key_lens.push_back(st_.key_len);
                current_.key_hashes.push_back(st_.hash);
                break;
            case KS_EV_END:
                current_.bytes = st_.cmd_bytes;
                commands.push_back(current_);
                current_ = {};
                break;
            default:
                break;
        }
    }
    ParsedCommand current_;
};

class ReplyDriver {
public:
    void chunk(std::string_view data) {
        ks_rep_new_chunk(&rp_);
        for (std::size_t base = 0; base < data.size(); base += KS_SCRATCH) {
            std::uint32_t len =
                static_cast<std::uint32_t>(std::min<std::size_t>(KS_SCRATCH, data.size() - base));
            std::memcpy(window_.buf, data.data() + base, len);
            std::uint32_t pos = 0;
            while (pos < len) {
                int ev = 0;
                auto used = ks_rep_step(&rp_, &window_, pos, len, &ev);
                if (used == 0) throw std::runtime_error("reply parser made no progress");
                if (used > len - pos) throw std::runtime_error("reply parser consumed past the window");
                pos += used;
                if (ev & KS_EV_REPLY) replies.push_back({rp_.flags, rp_.value_bytes, rp_.bytes});
                if (ev & KS_EV_INVALID) invalid++;
            }
        }
    }
    std::vector<ParsedReply> replies;
    int invalid = 0;
    ks_resp_rep rp_{};

private:
    ks_window window_{};
};

/// RESP array-of-bulk-strings encoding of a command.
inline std::string resp_command(const std::vector<std::string>& args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    return out;
}

/// FNV-1a 64 of a command name or prefix, as the parsers hash those.
inline std::uint64_t fnv(std::string_view s) {
    std::uint64_t h = KS_FNV_OFFSET;
    for (char c : s) h = ks_fnv_byte(h, static_cast<__u8>(c));
    return h;
}

}  // namespace keyscope::test
