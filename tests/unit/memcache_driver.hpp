// Host-side driver of the memcached parsers in bpf/proto/memcache.h: feeds
// chunks window by window exactly as the BPF walkers do (fast skip first,
// then steps over a copied window) or byte by byte through the feed
// functions, and records what the parser reported.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "key_hash_ref.hpp"

extern "C" {
#include "keyscope_abi.h"
#include "proto/memcache.h"
}

namespace keyscope::test::mc {

using keyscope::test::key_hash;

/// FNV-1a 64, written out independently of the header under test.
constexpr std::uint64_t fnv(std::string_view s) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (char c : s) h = (h ^ static_cast<std::uint8_t>(c)) * 0x100000001b3ULL;
    return h;
}

/// Hash of a command name as reported on KS_EV_CMD (upper-cased, like RESP).
inline std::uint64_t name_hash(std::string_view s) {
    std::string up(s);
    for (auto& c : up) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
    return fnv(up);
}

constexpr std::uint16_t kPublicReqFlags =
    KS_MC_RQF_NOREPLY | KS_MC_RQF_QUIET | KS_MC_RQF_OPAQUE | KS_MC_RQF_DATA;
constexpr std::uint16_t kPublicRepFlags = KS_MC_RPF_ERROR | KS_MC_RPF_KEY | KS_MC_RPF_OPAQUE;

struct Command {
    bool named = false;  // a KS_EV_CMD came (not for an empty name)
    int cmd = KS_MC_CMD_UNKNOWN;
    int cls = KS_CMD_UNKNOWN;
    std::uint64_t name_hash = 0;
    std::vector<std::string> keys;  // stored bytes (at most KS_KEY_MAX)
    std::vector<std::uint32_t> key_lens;
    std::vector<std::uint64_t> key_hashes;
    std::uint32_t bytes = 0;
    std::uint16_t flags = 0;  // public KS_MC_RQF_* bits
    std::uint32_t data_len = 0;
    std::uint64_t opaque = 0;
    bool operator==(const Command&) const = default;
};

struct Value {
    bool has_key = false;
    std::uint64_t key_hash = 0;
    std::uint32_t key_len = 0;
    std::uint32_t len = 0;
    bool operator==(const Value&) const = default;
};

struct Reply {
    int kind = KS_MC_RK_NONE;
    std::uint16_t flags = 0;  // public KS_MC_RPF_* bits
    std::uint32_t hits = 0;
    std::uint64_t value_bytes = 0;
    std::uint64_t bytes = 0;
    std::uint64_t key_hash = 0;  // with KS_MC_RPF_KEY
    std::uint64_t opaque = 0;    // with KS_MC_RPF_OPAQUE
    std::vector<Value> values;   // KS_EV_VALUE events of this reply
    bool operator==(const Reply&) const = default;
};

enum class Mode {
    Window,  // fast skip, then window steps: what the BPF walkers do
    Byte,    // the byte machine alone (ks_mc_*_feed)
};

/// Bytes past the window's end are filled with this, so a step reading past
/// `len` would see command-like text and disagree with the byte machine.
inline void poison_tail(ks_window& w, std::size_t from) {
    static const char kJunk[] = "get junk\r\nVALUE junk 0 1\r\nx\r\nEND\r\n";
    for (std::size_t i = from; i < KS_SCRATCH; ++i)
        w.buf[i] = static_cast<__u8>(kJunk[i % (sizeof kJunk - 1)]);
}

/// Walks chunks through one direction's parser. P supplies the C functions.
template <typename P>
class Walker {
public:
    explicit Walker(Mode mode = Mode::Window) : mode_(mode) {}

    void chunk(std::string_view data) {
        P::new_chunk(&st);
        std::size_t off = 0;
        while (off < data.size()) {
            const auto left = static_cast<std::uint32_t>(data.size() - off);
            if (mode_ == Mode::Byte) {
                int ev = 0;
                auto used = P::feed(&st, static_cast<__u8>(data[off]), left, &ev);
                check_used(used, left);
                off += used;
                on_event(ev);
                continue;
            }
            if (auto n = P::fast_skip(&st, left)) {
                if (n > left) throw std::runtime_error("fast skip past the chunk");
                P::skip(&st, n);
                skipped += n;
                off += n;
                continue;
            }
            const auto len = std::min<std::uint32_t>(left, KS_SCRATCH);
            std::memcpy(window_.buf, data.data() + off, len);
            poison_tail(window_, len);
            std::uint32_t pos = 0;
            while (pos < len) {
                int ev = 0;
                auto used = P::step(&st, &window_, pos, len, &ev);
                check_used(used, len - pos);
                pos += used;
                steps++;
                on_event(ev);
            }
            off += pos;
        }
    }

    typename P::State st{};
    int invalid = 0;
    int binary = 0;
    std::uint64_t skipped = 0;  // bytes consumed by fast skip, never copied
    std::uint64_t steps = 0;

protected:
    virtual void on_event(int ev) = 0;
    ~Walker() = default;

private:
    static void check_used(std::uint32_t used, std::uint32_t avail) {
        if (used == 0) throw std::runtime_error("parser made no progress");
        if (used > avail) throw std::runtime_error("parser consumed past its input");
    }
    Mode mode_;
    ks_window window_{};
};

struct ReqFns {
    using State = ks_mc_req;
    static void new_chunk(State* s) { ks_mc_req_new_chunk(s); }
    static __u32 feed(State* s, __u8 c, __u32 a, int* ev) { return ks_mc_req_feed(s, c, a, ev); }
    static __u32 fast_skip(const State* s, __u32 a) { return ks_mc_req_fast_skip(s, a); }
    static void skip(State* s, __u32 n) { ks_mc_req_skip(s, n); }
    static __u32 step(State* s, const ks_window* w, __u32 p, __u32 l, int* ev) {
        return ks_mc_req_step(s, w, p, l, ev);
    }
};

struct RepFns {
    using State = ks_mc_rep;
    static void new_chunk(State* s) { ks_mc_rep_new_chunk(s); }
    static __u32 feed(State* s, __u8 c, __u32 a, int* ev) { return ks_mc_rep_feed(s, c, a, ev); }
    static __u32 fast_skip(const State* s, __u32 a) { return ks_mc_rep_fast_skip(s, a); }
    static void skip(State* s, __u32 n) { ks_mc_rep_skip(s, n); }
    static __u32 step(State* s, const ks_window* w, __u32 p, __u32 l, int* ev) {
        return ks_mc_rep_step(s, w, p, l, ev);
    }
};

class RequestDriver final : public Walker<ReqFns> {
public:
    using Walker::Walker;
    std::vector<Command> commands;

    std::vector<std::string> all_keys() const {
        std::vector<std::string> out;
        for (const auto& c : commands) out.insert(out.end(), c.keys.begin(), c.keys.end());
        return out;
    }

private:
    void on_event(int ev) override {
        if (ev & KS_EV_INVALID) {
            if (ev != KS_EV_INVALID) throw std::runtime_error("INVALID with other events");
            invalid++;
            current_ = {};
            return;
        }
        if (ev & KS_EV_BINARY) {
            if (ev != KS_EV_BINARY) throw std::runtime_error("BINARY with other events");
            binary++;
            current_ = {};
            return;
        }
        if (ev & ~(KS_EV_CMD | KS_EV_KEY | KS_EV_END)) throw std::runtime_error("unexpected request event");
        if (ev & KS_EV_CMD) {
            current_ = {};
            current_.named = true;
            current_.name_hash = st.hash;
            current_.cmd = st.cmd;
            current_.cls = st.cls;
        }
        if (ev & KS_EV_KEY) {
            if (st.nkeys != current_.keys.size() + 1) throw std::runtime_error("nkeys out of step");
            current_.keys.emplace_back(reinterpret_cast<const char*>(st.key),
                                       std::min<std::uint32_t>(st.key_len, KS_KEY_MAX));
            current_.key_lens.push_back(st.key_len);
            current_.key_hashes.push_back(st.hash);
        }
        if (ev & KS_EV_END) {
            current_.cmd = st.cmd;
            current_.cls = st.cls;
            current_.bytes = st.cmd_bytes;
            current_.flags = st.flags & kPublicReqFlags;
            current_.data_len = (st.flags & KS_MC_RQF_DATA) ? st.data_len : 0;
            current_.opaque = (st.flags & KS_MC_RQF_OPAQUE) ? st.opaque : 0;
            if (st.nkeys != current_.keys.size()) throw std::runtime_error("nkeys differs at END");
            commands.push_back(current_);
            current_ = {};
        }
    }
    Command current_;
};

class ReplyDriver final : public Walker<RepFns> {
public:
    using Walker::Walker;
    std::vector<Reply> replies;

private:
    void on_event(int ev) override {
        if (ev & KS_EV_INVALID) {
            if (ev != KS_EV_INVALID) throw std::runtime_error("INVALID with other events");
            invalid++;
            current_ = {};
            return;
        }
        if (ev & KS_EV_BINARY) {
            if (ev != KS_EV_BINARY) throw std::runtime_error("BINARY with other events");
            binary++;
            current_ = {};
            return;
        }
        if (ev & ~(KS_EV_VALUE | KS_EV_REPLY)) throw std::runtime_error("unexpected reply event");
        if (ev & KS_EV_VALUE) {
            Value v;
            v.has_key = st.flags & KS_MC_RPF_KEY;
            v.key_hash = v.has_key ? st.key_hash : 0;
            v.key_len = v.has_key ? st.key_len : 0;
            v.len = st.value_len;
            current_.values.push_back(v);
            if (st.hits != current_.values.size()) throw std::runtime_error("hits out of step");
        }
        if (ev & KS_EV_REPLY) {
            current_.kind = st.kind;
            current_.flags = st.flags & kPublicRepFlags;
            current_.hits = st.hits;
            current_.value_bytes = st.value_bytes;
            current_.bytes = st.bytes;
            current_.key_hash = (st.flags & KS_MC_RPF_KEY) ? st.key_hash : 0;
            current_.opaque = (st.flags & KS_MC_RPF_OPAQUE) ? st.opaque : 0;
            replies.push_back(current_);
            current_ = {};
        }
    }
    Reply current_;
};

/// One request as a caller would remember it for its reply.
struct Pending {
    int cmd = KS_MC_CMD_UNKNOWN;
    bool quiet = false;
    std::uint64_t key_hash = 0;  // first key, if any
    bool has_key = false;
    std::uint64_t opaque = 0;
    bool has_opaque = false;
    std::size_t index = 0;  // position among all requests
};

/// The matching a caller is advised to do (see ks_mc_quiet_reply): NOREPLY
/// requests are never queued; quiet ones are, and are dropped from the head
/// of the queue when a reply cannot be theirs. Returns, per reply, the index
/// of the request it answers (or -1: unmatched), and the quiet requests that
/// got no reply.
struct MatchResult {
    std::vector<long> answered;
    std::vector<std::size_t> silent;
};

inline MatchResult match_replies(const std::vector<Command>& cmds, const std::vector<Reply>& reps) {
    std::vector<Pending> q;
    for (std::size_t i = 0; i < cmds.size(); ++i) {
        const auto& c = cmds[i];
        if (c.flags & KS_MC_RQF_NOREPLY) continue;
        q.push_back({c.cmd, (c.flags & KS_MC_RQF_QUIET) != 0, c.key_hashes.empty() ? 0 : c.key_hashes[0],
                     !c.key_hashes.empty(), c.opaque, (c.flags & KS_MC_RQF_OPAQUE) != 0, i});
    }
    MatchResult out;
    std::size_t head = 0;
    for (const auto& r : reps) {
        while (head < q.size() && q[head].quiet) {
            const auto& p = q[head];
            bool mine = ks_mc_quiet_reply(static_cast<__u8>(p.cmd), static_cast<__u8>(r.kind));
            if (mine && (r.flags & KS_MC_RPF_KEY) && p.has_key && r.key_hash != p.key_hash) mine = false;
            if (mine && (r.flags & KS_MC_RPF_OPAQUE) && p.has_opaque && r.opaque != p.opaque) mine = false;
            if (mine) break;
            out.silent.push_back(p.index);
            head++;
        }
        out.answered.push_back(head < q.size() ? static_cast<long>(q[head++].index) : -1);
    }
    return out;
}

}  // namespace keyscope::test::mc
