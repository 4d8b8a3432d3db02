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

/*
 * The key hash (command names and memcached opaques keep FNV-1a): the key's
 * first KS_KEY_HASH_MAX bytes as 8-byte little-endian words, the last one
 * zero-padded, each mixed in by a multiply and a xor-shift, then its full
 * length. Both steps are invertible, so keys of one length that differ in
 * one word never collide. A window step mixes a whole word at once (FNV-1a's
 * multiply per byte was the longest chain of a request's parse); a byte step
 * collects bytes in a word (`word`) and mixes every eighth.
 */
#define KS_KH_SEED 0x2d358dccaa6c78a5ULL
#define KS_KH_MUL 0x9e3779b97f4a7c15ULL

static __always_inline __u64 ks_kh_mix(__u64 h, __u64 w)
{
	h = (h ^ w) * KS_KH_MUL;
	return h ^ (h >> 32);
}

/* Byte n (from 0) of a key; n < KS_KEY_HASH_MAX. */
static __always_inline __u64 ks_kh_byte(__u64 h, __u64 *word, __u32 n, __u8 c)
{
	*word |= (__u64)c << ((n & 7) * 8);
	if ((n & 7) == 7) {
		h = ks_kh_mix(h, *word);
		*word = 0;
	}
	return h;
}

/* The hash of a key of `len` bytes, once all its hashed bytes are in. */
static __always_inline __u64 ks_kh_finish(__u64 h, __u64 word, __u32 len)
{
	if ((len < KS_KEY_HASH_MAX ? len : KS_KEY_HASH_MAX) & 7)
		h = ks_kh_mix(h, word);
	return ks_kh_mix(h, len);
}

/* The 8 bytes at p as a little-endian word (the machines keyscope runs on),
 * and back. Unaligned: one load in BPF (the x86-64 JIT allows it); memcpy on
 * the host. */
static __always_inline __u64 ks_load_le64(const __u8 *p)
{
#ifdef __bpf__
	return *(const __u64 *)p;
#else
	__u64 w;

	__builtin_memcpy(&w, p, 8);
	return w;
#endif
}

static __always_inline void ks_store_le64(__u8 *p, __u64 w)
{
#ifdef __bpf__
	*(__u64 *)p = w;
#else
	__builtin_memcpy(p, &w, 8);
#endif
}

/* The low n (< 8) bytes of w. */
static __always_inline __u64 ks_low_bytes(__u64 w, __u32 n)
{
	return w & ((1ULL << ((n & 7) * 8)) - 1);
}

#ifndef __bpf__
/* The key hash of a whole key, for the daemon and the tests. */
static inline __u64 ks_key_hash(const void *key, __u32 len)
{
	const __u8 *p = (const __u8 *)key;
	__u64 h = KS_KH_SEED, word = 0;
	__u32 i;

	for (i = 0; i < len && i < KS_KEY_HASH_MAX; i++)
		h = ks_kh_byte(h, &word, i, p[i]);
	return ks_kh_finish(h, word, len);
}
#endif

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
	__u8 over[8]; /* a word read at the window's last byte stays inside */
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

/* Runs of key bytes a window step hashes at most (words: 8 at a time). */
#define KS_KH_RUN 64

/*
 * Key bytes [p, p + n) of a window, the key's bytes k on (k a multiple of 8,
 * k + n <= KS_KEY_HASH_MAX, n <= KS_KH_RUN): mixed into *hash a word at a
 * time, the last partial word left in *word, and kept in key[KS_KEY_MAX] (if
 * given) below KS_KEY_MAX, in whole words: what follows a key there is never
 * read. The window must have 8 readable bytes past its last (ks_window.over).
 */
static __always_inline void ks_kh_words(__u64 *hash, __u64 *word, __u8 *key, const __u8 *buf, __u32 p, __u32 n, __u32 k)
{
	__u64 h = *hash, w;
	__u32 i;

	for (i = 0; i < KS_KH_RUN && i + 8 <= n; i += 8) {
		w = ks_load_le64(buf + ((p + i) & KS_WIN_MASK));
		h = ks_kh_mix(h, w);
		if (key && k + i < KS_KEY_MAX)
			ks_store_le64(key + ((k + i) & (KS_KEY_MAX - 8)), w);
	}
	if (i < n) {
		w = ks_low_bytes(ks_load_le64(buf + ((p + i) & KS_WIN_MASK)), n - i);
		*word = w;
		if (key && k + i < KS_KEY_MAX)
			ks_store_le64(key + ((k + i) & (KS_KEY_MAX - 8)), w);
	}
	*hash = h;
}

#endif /* KS_PROTO_COMMON_H */
