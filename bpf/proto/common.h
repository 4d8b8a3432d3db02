/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * common.h - what every protocol parser in proto/ shares: the event bits a
 * step reports, the key hash (FNV-1a 64) and the window a step looks at.
 *
 * Header-only C with no helpers, for BPF and host code alike (see resp.h).
 */
#ifndef KS_PROTO_COMMON_H
#define KS_PROTO_COMMON_H

#include "types.h"

#define KS_FNV_OFFSET 0xcbf29ce484222325ULL
#define KS_FNV_PRIME 0x100000001b3ULL

#ifndef KS_KEY_MAX
#define KS_KEY_MAX 64
#endif
#ifndef KS_KEY_HASH_MAX
#define KS_KEY_HASH_MAX 4096
#endif

/* Events returned through *ev: a bit mask. One window step may report a
 * token and the end of its command together; handle the bits in the order
 * CMD, KEY, END (requests) and VALUE, REPLY (replies). INVALID and BINARY
 * come alone. */
enum ks_proto_event {
	KS_EV_NONE = 0,
	KS_EV_CMD = 1,	    /* command name complete: st->cmd_hash; set the key spec now */
	KS_EV_KEY = 2,	    /* a key argument complete: st->hash, st->key, st->key_len */
	KS_EV_END = 4,	    /* request complete: st->cmd_bytes */
	KS_EV_REPLY = 8,    /* reply complete: rp->flags, rp->value_bytes, rp->bytes */
	KS_EV_INVALID = 16, /* malformed input: parser is LOST until the next chunk */
	KS_EV_VALUE = 32,   /* memcache replies: a value is announced (rp->key_hash, rp->value_len) */
	KS_EV_BINARY = 64,  /* memcache: a binary-protocol chunk, skipped unparsed */
};

static __always_inline __u64 ks_fnv_byte(__u64 h, __u8 c)
{
	return (h ^ c) * KS_FNV_PRIME;
}

/* Keys longer than the hashed prefix also mix in their length. */
static __always_inline __u64 ks_key_hash_finish(__u64 h, __u32 len)
{
	if (len > KS_KEY_HASH_MAX)
		h = ks_fnv_byte(
			ks_fnv_byte(ks_fnv_byte(ks_fnv_byte(h, len & 0xff), (len >> 8) & 0xff), (len >> 16) & 0xff),
			(len >> 24) & 0xff);
	return h;
}

static __always_inline __u8 ks_upper(__u8 c)
{
	return (c >= 'a' && c <= 'z') ? c - 32 : c;
}

static __always_inline __u32 ks_min_u32(__u32 a, __u32 b)
{
	return a < b ? a : b;
}

/* Accumulate a decimal digit; returns 0 on a non-digit or overflow past max. */
static __always_inline int ks_digit(__u32 *num, __u8 c, __u32 max)
{
	if (c < '0' || c > '9')
		return 0;
	if (*num > max / 10)
		return 0;
	*num = *num * 10 + (c - '0');
	return *num <= max;
}

/* ---- windows -------------------------------------------------------------
 *
 * The BPF walkers hold a window of at most KS_SCRATCH bytes; every access a
 * step makes is masked to it, so no input can make it read outside.
 */
#ifndef KS_SCRATCH
#define KS_SCRATCH 1024
#endif
#define KS_WIN_MASK (KS_SCRATCH - 1)
#define KS_WIN_AT(buf, i) ((buf)[(i)&KS_WIN_MASK])

/* The bytes a step looks at: one copied window of a chunk. */
struct ks_window {
	__u8 buf[KS_SCRATCH];
};

/*
 * Step functions are BPF global functions, defined once in bpf/parse.bpf.c
 * (KS_PARSE_IMPL) so the verifier checks each on its own, once; elsewhere
 * they are ordinary inline functions.
 */
#ifdef __bpf__
#define KS_STEP_FN __attribute__((noinline))
#else
#define KS_STEP_FN static inline
#endif

#endif /* KS_PROTO_COMMON_H */
