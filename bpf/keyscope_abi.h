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
/* Windows walked per packet or syscall at most (KS_SCRATCH each: 256 KiB). */
#define KS_MAX_WINDOWS 256

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

/* Key of the per-key statistics maps. */
struct ks_key_ref {
	__u64 hash; /* FNV-1a 64 of the whole key (see KS_KEY_HASH_MAX) */
	__u32 target;
	__u32 _pad;
};

/* ks_key_stats.flags */
#define KS_KEYF_TRUNCATED 1 /* key longer than KS_KEY_MAX: key[] is a prefix */
#define KS_KEYF_NONAME 2    /* created by a reply only: key[] not known */

/* Per-key statistics for one interval (double-buffered, see ks_gen). */
struct ks_key_stats {
	__u64 reads;
	__u64 writes;
	__u64 errors;
	__u64 redirects;
	__u64 bytes_in;
	__u64 bytes_out;
	__u64 max_value;
	__u64 hits;    /* memcached: VALUE/VA blocks returned for this key (misses = reads - hits) */
	__u32 key_len; /* full length of the key */
	__u32 flags;
	__u8 key[KS_KEY_MAX];
	__u32 lat[KS_LAT_BUCKETS];
};

/* Per-target counters for one interval; a per-CPU array indexed by
 * gen * KS_MAX_TARGETS + target. */
struct ks_counters {
	__u64 requests;	     /* commands parsed */
	__u64 key_ops;	     /* key operations (one per key argument) */
	__u64 keyless;	     /* commands without a key (PING, INFO, AUTH, ...) */
	__u64 unknown_cmds;  /* commands not in the table (counted keyless too) */
	__u64 replies;	     /* replies parsed */
	__u64 errors;	     /* error replies, redirects excluded */
	__u64 redirects;     /* -MOVED / -ASK replies */
	__u64 unattributed;  /* key ops that found the key map full */
	__u64 reply_unmatched; /* replies with no remembered request */
	__u64 parse_errors;  /* malformed bytes: stream resynchronised */
	__u64 seq_retrans;   /* segments (or parts) seen twice and skipped */
	__u64 seq_gaps;	     /* missing bytes: stream resynchronised */
	__u64 flow_full;     /* connections that found the flow map full */
	__u64 truncated_windows; /* payloads longer than the window budget */
	__u64 bytes_in;
	__u64 bytes_out;
	__u64 key_map_full; /* set once an insert found the key map full: later
			     * keys of this interval skip the (costly) attempt */
	__u64 hits;	    /* memcached: keys a retrieval found */
	__u64 misses;	    /* memcached: keys a retrieval did not find */
	__u64 unparsed;	    /* memcached: binary-protocol chunks, counted but not parsed */
};

/* Global configuration written by the daemon (array map ks_config[0]). */
struct ks_config {
	__u32 gen; /* which key map / counters slot the programs fill */
	__u32 _pad;
};

#endif /* KEYSCOPE_ABI_H */
