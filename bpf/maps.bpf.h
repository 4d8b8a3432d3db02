/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Maps shared by every keyscope BPF object. Declared __weak so each .bpf.c
 * can include this header and `bpftool gen object` links them into one.
 */
#ifndef KS_MAPS_BPF_H
#define KS_MAPS_BPF_H

#include "keyscope_abi.h"
#include "proto/resp.h"
#include "proto/memcache.h"

/* One remembered request, waiting for its reply (latency, reply stats).
 * 32 bytes: the request side writes and the reply side reads these, so
 * every line of them crosses between CPUs once. */
struct ks_pending {
	__u64 ts_ns;
	__u64 key_hash;	 /* first key of the command; valid if nkeys */
	__u32 seq;	 /* request number on this connection */
	__u32 key_slot;	 /* where the request side counted that key ... */
	__u32 key_epoch; /* ... valid in this ks_config.epoch only */
	__u32 nkeys : 31;
	__u32 retrieval : 1; /* memcached get/gets/gat/gats/mg: misses = nkeys - hits */
};

#define KS_FLOWF_REQ_SEQ 1 /* next_seq_req is known */
#define KS_FLOWF_REP_SEQ 2 /* next_seq_rep is known */
#define KS_FLOWF_FIN_REQ 4
#define KS_FLOWF_FIN_REP 8
#define KS_FLOWF_HOLE 16 /* enforcement dropped the next expected request segment */

/*
 * Per-connection parser state (both capture paths). On the socket path over
 * `lo` the request side runs on the client's CPU and the reply side on the
 * server's, so the fields are grouped by writer, a line of padding apart (a
 * hash map value need not start on a line): a line one side writes for every
 * segment is never one the other side touches.
 */
struct ks_flow {
	/* set when the connection is created, then only read by both sides */
	__u32 target;
	__u32 proto;	 /* enum ks_proto of the target */
	__u32 flags;	 /* KS_FLOWF_*: written once per connection event, not per segment */
	__u32 conn_pick; /* enforcement: this connection's place in the shedding rotation */
	__u64 sock;	 /* syscall path: struct sock * the fd pointed to */
	__u8 caddr[16];	 /* socket path: the client's address (zero on the syscall path) */
	/* request side */
	union { /* the parser of the target's protocol (proto) */
		struct ks_resp_req req;
		struct ks_mc_req mreq;
	} __attribute__((aligned(64)));
	__u32 next_seq_req; /* socket path: next expected TCP sequence number */
	__u32 req_seq;	    /* requests pushed to pending[] */
	__u64 first_key_hash;
	__u32 first_key_slot;	/* ks_keys index of the current command's first key ... */
	__u32 first_key_epoch;	/* ... in this epoch */
	__u32 drops_in_row;	/* enforcement: request segments dropped in a row */
	__u32 dry_drops_in_row; /* dry run: segments that would have been dropped in a row */
	__u32 hole_slot;	/* enforcement: 1 + ks_rule_stats slot of the rule that made the hole */
	__u64 dry_stall_until;	/* dry run: until when a real drop would still be stalling this connection */
	__u8 _pad_req[64];
	/* reply side */
	union {
		struct ks_resp_rep rep;
		struct ks_mc_rep mrep;
	} __attribute__((aligned(64)));
	__u32 next_seq_rep;
	__u32 rep_seq; /* replies matched */
	__u8 _pad_rep[64];
	/* written by the request side, read by the reply side */
	struct ks_pending pending[KS_PENDING];
};

/* Both sides read flags for every segment: write it only when it changes. */
static __always_inline void ks_flow_clear_hole(struct ks_flow *f)
{
	if (f->flags & KS_FLOWF_HOLE)
		f->flags &= ~KS_FLOWF_HOLE;
}

/* Socket path flow key: the connection as seen from the server. */
struct ks_flow_key {
	__u8 caddr[16];
	__u8 saddr[16];
	__u16 cport;
	__u16 sport;
	__u32 _pad;
};

/*
 * What judging a key needs, scalars only: the rule checks are BPF global
 * functions (verified once, not once per call site), and those take pointers
 * to plain memory.
 */
/* Throttle charges of one segment remembered for a refund if it is dropped. */
#define KS_MAX_REFUNDS 8

struct ks_judge_args {
	__u64 now;
	__u8 caddr[16]; /* the client's address */
	__u32 target;
	__u32 rule_kinds;
	__u32 delimiter;
	__u32 pick; /* the connection's place in the shedding rotation */
	__u16 cport;
	__u8 dry;    /* a dry-run rule would have dropped (dry_rule) */
	__u8 no_dry; /* dry run's modelled stall: dry-run rules do not see this segment */
	__u8 force;  /* the capped pass: charge every match, drop nothing */
	__u8 n_charged;
	__u8 _pad[6];
	struct ks_rule_key dropper;		    /* the enforcing rule that asked for the drop */
	struct ks_rule_key dry_rule;		    /* the first dry-run rule that would have dropped */
	struct ks_rule_key charged[KS_MAX_REFUNDS]; /* enforcing throttles charged by this segment ... */
	__u32 charges[KS_MAX_REFUNDS];		    /* ... and how many requests each */
};

/* A key's name as the parsers keep it: sized, so the verifier knows what
 * may be read; aligned, so it is copied in words, not bytes spilled to the
 * stack. */
struct ks_key_name {
	__u8 bytes[KS_KEY_MAX];
} __attribute__((aligned(8)));

/*
 * The key operations of one window, looked up and counted once the window
 * is parsed (ks_key_ops_flush): under a load over many keys each key's bucket
 * and entry are cold, and a lookup at each request waits for its lines alone;
 * done for the window in short loops, the misses overlap.
 */
#define KS_KEY_OPS 18
/* Ops one parser step can record: a key, and its command's bytes. A window's
 * parse stops for a flush when fewer are free (ks_req_cb). */
#define KS_KEY_OPS_PER_STEP 2

enum ks_key_op_kind {
	KS_OP_BYTES = 0, /* bytes_in only, on a slot found before (`slot`) */
	KS_OP_READ = 1,
	KS_OP_WRITE = 2,
};

struct ks_key_op {
	__u64 hash;
	__u64 tag;    /* the flush's: ks_key_tag() */
	__s32 slot;   /* in ks_keys, -1 if none; the flush finds it for reads and writes */
	__u32 bucket; /* the flush's: index in ks_key_tags */
	__u32 key_len;
	__u32 bytes; /* added to bytes_in */
	__u8 kind;   /* enum ks_key_op_kind */
	__u8 first;  /* a command's first key: its slot becomes the flow's first_key_slot */
	__u8 pend;   /* 1 + the pending request whose key_slot is this slot, or 0 */
	__u8 _pad[5];
	struct ks_key_name name;
};

struct ks_key_ops {
	__u32 n;
	__u32 first; /* op of the current command's first key, KS_KEY_OPS if none here */
	struct ks_key_op op[KS_KEY_OPS];
};

/* Per-CPU scratch space: a window of payload, the window's key counts, and
 * what judging needs. */
struct ks_scratch {
	struct ks_window win;
	struct ks_key_ops ops;
	struct ks_flow_key fk;	  /* socket path: this segment's connection ... */
	struct ks_target_key tk;  /* ... and its server */
	struct ks_resp_req judge; /* enforcement: a throw-away copy of the request parser */
	struct ks_judge_args judge_args;
};

/* One map as libbpf reads its BTF definition (maps with flags are spelled out). */
#define KS_MAP(name, map_type, entries, key_type, value_type)                                                          \
	struct {                                                                                                       \
		__uint(type, map_type);                                                                                \
		__uint(max_entries, entries);                                                                          \
		__type(key, key_type);                                                                                 \
		__type(value, value_type);                                                                             \
	} name SEC(".maps") __weak

/** Command table: FNV-1a of the upper-cased name -> key positions. */
KS_MAP(ks_cmds, BPF_MAP_TYPE_HASH, 1024, __u64, struct ks_cmd_spec);

/** Observed servers: listening address (or any) and port -> target id. */
KS_MAP(ks_targets, BPF_MAP_TYPE_HASH, 2 * KS_MAX_TARGETS, struct ks_target_key, struct ks_target_val);

/** Syscall path: processes observed -> 1. */
KS_MAP(ks_target_pids, BPF_MAP_TYPE_HASH, KS_MAX_TARGETS, __u32, __u32);

/** Protocol of each target (enum ks_proto), indexed by target id. */
KS_MAP(ks_target_protos, BPF_MAP_TYPE_ARRAY, KS_MAX_TARGETS, __u32, __u32);

/** The per-key table of both generations (see keyscope_abi.h); the daemon
 * flips ks_config.gen, reads the other half through mmap and clears it.
 * Sizes set at load from --max-keys. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2 * 2048);
	__type(key, __u32);
	__type(value, struct ks_key_bucket);
} ks_key_tags SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2 * 2048 * KS_KEY_WAYS);
	__type(key, __u32);
	__type(value, struct ks_key_stats);
} ks_keys SEC(".maps") __weak;

/** Per-target counters, indexed gen * KS_MAX_TARGETS + target. */
KS_MAP(ks_counters, BPF_MAP_TYPE_PERCPU_ARRAY, 2 * KS_MAX_TARGETS, __u32, struct ks_counters);

/** Socket path connections. LRU: abandoned connections age out. */
KS_MAP(ks_flows, BPF_MAP_TYPE_LRU_HASH, 8192, struct ks_flow_key, struct ks_flow);

/** Syscall path connections. */
KS_MAP(ks_sys_flows, BPF_MAP_TYPE_LRU_HASH, 8192, struct ks_sys_flow_key, struct ks_flow);

/** A zeroed flow, the template for new connections (never written). */
KS_MAP(ks_zero_flow, BPF_MAP_TYPE_ARRAY, 1, __u32, struct ks_flow);

KS_MAP(ks_scratch, BPF_MAP_TYPE_PERCPU_ARRAY, 1, __u32, struct ks_scratch);

KS_MAP(ks_config, BPF_MAP_TYPE_ARRAY, 1, __u32, struct ks_config);

/** Enforcement rules (see keyscope_abi.h); written by the daemon. */
KS_MAP(ks_rules, BPF_MAP_TYPE_HASH, KS_MAX_RULES, struct ks_rule_key, struct ks_rule);

/** Counters of each rule, indexed by ks_rule.slot. */
KS_MAP(ks_rule_stats, BPF_MAP_TYPE_ARRAY, KS_MAX_RULES, __u32, struct ks_rule_stats);

/** Watched keys (ks_key_ref): their requests are counted per client too. */
KS_MAP(ks_watch, BPF_MAP_TYPE_HASH, KS_MAX_WATCH, struct ks_key_ref, __u32);

/** Bits of the watched keys (see struct ks_watch_bits). */
KS_MAP(ks_watch_bits, BPF_MAP_TYPE_ARRAY, 1, __u32, struct ks_watch_bits);

/** Ports of the targets (see struct ks_port_bits). */
KS_MAP(ks_target_ports, BPF_MAP_TYPE_ARRAY, 1, __u32, struct ks_port_bits);

/** Requests per (watched key, client address); drained by the daemon. */
KS_MAP(ks_key_clients, BPF_MAP_TYPE_LRU_HASH, KS_MAX_KEY_CLIENTS, struct ks_client_key, __u64);

/** Allowlist: keys, prefixes and clients no rule may touch. */
KS_MAP(ks_allow, BPF_MAP_TYPE_HASH, KS_MAX_RULES, struct ks_rule_key, __u32);

#endif
