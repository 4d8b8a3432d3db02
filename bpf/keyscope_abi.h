/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * keyscope_abi.h - the ONE definition of every struct and constant shared by
 * the BPF programs and the userspace daemon. Pure C with __u* types so it
 * compiles in both worlds; C++ adds static_asserts in userspace/bpf/abi.hpp.
 */
#ifndef KEYSCOPE_ABI_H
#define KEYSCOPE_ABI_H

#include "proto/types.h"

/* Bytes of a key kept for display; longer keys are hashed whole and flagged. */
#define KS_KEY_MAX 64
/* Key bytes hashed at most; longer keys hash their first KS_KEY_HASH_MAX
 * bytes plus their full length (documented in README "Limits"). */
#define KS_KEY_HASH_MAX 4096
/* Targets (servers) observed at once. */
#define KS_MAX_TARGETS 64
/* Outstanding requests remembered per connection for latency matching. */
#define KS_PENDING 64
/* Bytes copied from a packet or a user buffer per parse window. */
#define KS_SCRATCH 1024
#define KS_SCRATCH_MASK (KS_SCRATCH - 1)
/* Windows walked per packet or syscall at most: KS_SCRATCH bytes each (1 MiB),
 * fewer when a window's parse stops to count its key operations (at least
 * 17 keys of 7 bytes or more: 119 KiB). */
#define KS_MAX_WINDOWS 1024

/*
 * Latency histogram: log-linear, 4 sub-buckets per power of two, in ns.
 * Bucket 0 holds < 1024 ns; bucket 1 + 4*(log2(v)-10) + next two bits.
 * Relative error of a quantile is at most about 19 %.
 */
#define KS_LAT_SUB_BITS 2
#define KS_LAT_MIN_LOG2 10
#define KS_LAT_OCTAVES 24 /* up to 2^34 ns, about 17 s */
#define KS_LAT_BUCKETS (1 + KS_LAT_OCTAVES * (1 << KS_LAT_SUB_BITS))

/* Command classes in the command table. */
enum ks_cmd_class {
	KS_CMD_UNKNOWN = 0, /* not in the table: counted as keyless */
	KS_CMD_READ = 1,
	KS_CMD_WRITE = 2,
	KS_CMD_KEYLESS = 3,
};

/* Protocols a target speaks. */
enum ks_proto {
	KS_PROTO_REDIS = 1,
	KS_PROTO_MEMCACHED = 2, /* text and meta protocols; binary is counted as unparsed */
};

/* Key of the command table map: FNV-1a 64 of the upper-cased command name. */
struct ks_cmd_spec {
	__u8 cls;	/* enum ks_cmd_class */
	__s8 first_key; /* argument index of the first key, 0 = no key */
	__s8 last_key;	/* last key index; negative counts from the end (-1 = last) */
	__u8 step;	/* distance between keys (MSET: 2) */
};

/* Syscall path flow key: the server's process and file descriptor. */
struct ks_sys_flow_key {
	__u32 tgid;
	__u32 fd;
};

/* Identity of a target: its listening address (v4-mapped, or all zero for
 * "any address") and port, in network byte order. */
struct ks_target_key {
	__u8 addr[16];
	__u16 port;
	__u16 _pad;
};

struct ks_target_val {
	__u32 id; /* index into per-target arrays, < KS_MAX_TARGETS */
	__u32 proto;
};

/* A key and its target, as in ks_watch and the clients map. */
struct ks_key_ref {
	__u64 hash; /* the key hash of the whole key (proto/common.h, KS_KEY_HASH_MAX) */
	__u32 target;
	__u32 _pad;
};

/* ks_key_stats.flags */
#define KS_KEYF_TRUNCATED 1 /* key longer than KS_KEY_MAX: key[] is a prefix */
#define KS_KEYF_NONAME 2    /* created by a reply only: key[] not known */

/*
 * The per-key table: open addressing in plain arrays, so a lookup is index
 * arithmetic (inlined by the verifier) instead of a hash-map call, and the
 * daemon reads it through mmap instead of a syscall per batch.
 *   ks_key_tags  bucket b of generation g at g * buckets + b: KS_KEY_WAYS
 *                tags in one cache line (0 = free; claimed by compare-and-swap)
 *   ks_keys      the statistics of way w of that bucket at
 *                (g * buckets + b) * KS_KEY_WAYS + w
 * A key whose bucket is full is counted as unattributed.
 */
#define KS_KEY_WAYS 8

struct ks_key_bucket {
	__u64 tag[KS_KEY_WAYS]; /* ks_key_tag(hash, target), never 0 */
};

/*
 * Per-key statistics for one interval (double-buffered, see ks_config.gen).
 * Laid out in cache lines by writer: the request side (on `lo`, the client's
 * CPU) and the reply side (the server's CPU) never write the same line, so
 * counting a request and its reply does not bounce a line between CPUs.
 */
struct ks_key_stats {
	/* line 0: identity and request-side counters */
	__u64 hash;
	__u32 target;
	__u32 flags;
	__u32 key_len; /* full length of the key */
	__u32 _pad0;
	__u64 reads;
	__u64 writes;
	__u64 bytes_in;
	__u64 _pad1[2];
	/* line 1: the name, written once */
	__u8 key[KS_KEY_MAX];
	/* lines 2-8: reply side */
	__u64 errors;
	__u64 redirects;
	__u64 bytes_out;
	__u64 max_value;
	__u64 hits; /* memcached: VALUE/VA blocks returned for this key (misses = reads - hits) */
	__u32 lat[KS_LAT_BUCKETS];
	__u8 _pad2[20];
};

/* Per-target counters for one interval; a per-CPU array indexed by
 * gen * KS_MAX_TARGETS + target. */
struct ks_counters {
	__u64 requests;		 /* commands parsed */
	__u64 key_ops;		 /* key operations (one per key argument) */
	__u64 keyless;		 /* commands without a key (PING, INFO, AUTH, ...) */
	__u64 unknown_cmds;	 /* commands not in the table (counted keyless too) */
	__u64 replies;		 /* replies parsed */
	__u64 errors;		 /* error replies, redirects excluded */
	__u64 redirects;	 /* -MOVED / -ASK replies */
	__u64 unattributed;	 /* key ops that found the key table full */
	__u64 reply_unmatched;	 /* replies with no remembered request */
	__u64 parse_errors;	 /* malformed bytes: stream resynchronised */
	__u64 seq_retrans;	 /* segments (or parts) seen twice and skipped */
	__u64 seq_gaps;		 /* missing bytes: stream resynchronised */
	__u64 flow_full;	 /* connections that found the flow map full */
	__u64 truncated_windows; /* payloads longer than the window budget */
	__u64 bytes_in;
	__u64 bytes_out;
	__u64 key_map_full;	  /* set once a new key found its bucket of the key table full */
	__u64 hits;		  /* memcached: keys a retrieval found */
	__u64 misses;		  /* memcached: keys a retrieval did not find */
	__u64 unparsed;		  /* memcached: binary-protocol chunks, counted but not parsed */
	__u64 enforce_dropped;	  /* request segments dropped by a rule */
	__u64 enforce_would_drop; /* dry run: segments a rule would have dropped */
	__u64 enforce_skipped;	  /* segments rules could not judge (gap, lost parser, memcached): passed */
};

/* ---- enforcement (the Act issue): rules the tc ingress program applies ---- */

/* Rules installed at once. */
#define KS_MAX_RULES 1024
/* Segments dropped in a row on one connection before one is let through:
 * bounds the stall of any request (see README "Throttling"). */
#define KS_MAX_DROPS_IN_ROW 2
/* Dry run models the stall a real drop causes: the client's TCP retransmits
 * after its RTO, at least 200 ms (TCP_RTO_MIN), doubled for each drop in a row. */
#define KS_DRY_RTO_NS 200000000ull
/* Shedding picks connections in rotation: a new pick every 2^30 ns (~1.07 s). */
#define KS_SHED_EPOCH_SHIFT 30

enum ks_rule_match {
	KS_MATCH_KEY = 1,    /* hash = key hash; addr/port = the client, or zero for all */
	KS_MATCH_PREFIX = 2, /* hash = FNV-1a of the prefix bytes, delimiter included */
	KS_MATCH_CLIENT = 3, /* addr (+ port, or 0 for any) = the client */
	KS_MATCH_CONN = 4,   /* new connections (SYNs) to the target */
	KS_MATCH_CMD = 5,    /* ks_allow only: hash = the command's ks_cmds key */
};

enum ks_rule_action {
	KS_ACT_THROTTLE = 1, /* GCRA token bucket: rate per second and burst */
	KS_ACT_SHED = 2,     /* drop the matching requests of a share of connections */
};

#define KS_RULEF_DRY_RUN 1 /* count what would be dropped; drop nothing */

/* Key of ks_rules and ks_allow. */
struct ks_rule_key {
	__u64 hash;
	__u8 addr[16]; /* v4-mapped client address, all zero = any client */
	__u16 port;    /* client port, network order; 0 = any */
	__u8 match;    /* enum ks_rule_match */
	__u8 _pad;
	__u32 target;
};

struct ks_rule {
	__u64 interval_ns;  /* throttle: 1e9 / rate */
	__u64 tolerance_ns; /* throttle: (burst - 1) * interval_ns */
	__u64 tat;	    /* throttle: GCRA theoretical arrival time (compare-and-swap) */
	__u64 expires_ns;   /* bpf_ktime_get_ns() after which the rule is ignored */
	__u32 action;	    /* enum ks_rule_action */
	__u32 shed_share;   /* shed: share of connections, in 1/65536 */
	__u32 flags;	    /* KS_RULEF_* */
	__u32 slot;	    /* index of its counters in ks_rule_stats */
};

/* What a rule did, counted by the programs (ks_rule_stats[slot]); kept apart
 * from the rule so the daemon can renew a rule without losing counts. */
struct ks_rule_stats {
	__u64 matched;	  /* requests that matched */
	__u64 dropped;	  /* segments dropped because of this rule */
	__u64 would_drop; /* dry run: segments that would have been dropped */
	__u64 capped;	  /* let through: their connection hit KS_MAX_DROPS_IN_ROW */
};

/* ks_config.rule_kinds: which lookups a request needs (none: no extra work) */
#define KS_RK_KEY 1
#define KS_RK_KEY_CLIENT 2 /* key rules for one client exist */
#define KS_RK_PREFIX 4
#define KS_RK_PREFIX_CLIENT 8
#define KS_RK_CLIENT 16
#define KS_RK_CONN 32
#define KS_RK_ALLOW 64	    /* the allowlist is not empty */
#define KS_RK_ALLOW_CMD 128 /* it holds commands */
#define KS_RK_RULES 63	    /* any rule at all */

/* Global configuration written by the daemon (array map ks_config[0]). */
struct ks_config {
	__u32 gen;	   /* which key table half / counters slot the programs fill */
	__u32 rule_kinds;  /* KS_RK_*: 0 = no enforcement, the fast path */
	__u32 delimiter;   /* prefix delimiter byte for prefix rules (':') */
	__u32 watching;	   /* ks_watch is not empty: count clients of watched keys */
	__u32 epoch;	   /* bumped at every flip of gen: a remembered key slot is valid only in its epoch */
	__u32 key_buckets; /* buckets per generation of the key table */
};

/* Keys whose clients are counted (hot keys; the daemon keeps the list short). */
#define KS_MAX_WATCH 64
/*
 * A filter in front of ks_watch: bit ks_watch_bit() of every watched key is
 * set, so a key op on a key nobody watches costs one load instead of a
 * hash-map lookup (a false positive only costs that lookup).
 */
#define KS_WATCH_BITS 4096
struct ks_watch_bits {
	__u64 w[KS_WATCH_BITS / 64];
};
static inline __u32 ks_watch_bit(__u64 hash, __u32 target)
{
	return (__u32)(hash ^ (hash >> 29) ^ (hash >> 47) ^ target) & (KS_WATCH_BITS - 1);
}

/*
 * The targets' ports as a bitmap, indexed by the port in network byte order:
 * a segment of other traffic leaves after one load instead of two hash-map
 * lookups (the exact target check comes after).
 */
#define KS_PORT_WORDS (65536 / 64)
struct ks_port_bits {
	__u64 w[KS_PORT_WORDS];
};

/* (watched key, client address) pairs counted at once. */
#define KS_MAX_KEY_CLIENTS 4096

/* Key of ks_key_clients: who sends requests for a watched key. */
struct ks_client_key {
	__u64 hash;    /* the key's hash */
	__u8 addr[16]; /* the client's address, v4-mapped */
	__u32 target;
	__u32 _pad;
};

#endif /* KEYSCOPE_ABI_H */
