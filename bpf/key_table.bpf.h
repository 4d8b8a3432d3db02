/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The per-key table's lookups (see keyscope_abi.h), included by
 * count.bpf.h. The syscall path calls it through the BPF global function
 * ks_key_table_slot() (key_table.bpf.c), so the verifier checks its probing
 * loop once instead of at every call site, which exceeded its budget there.
 * The socket path first tries ks_key_table_probe() inline (KS_KEY_TABLE_INLINE):
 * it settles every lookup but a claim, and saves a call whose return costs
 * about as much as the rest of a lookup under the kernel's SRSO return thunk.
 */
#ifndef KS_KEY_TABLE_BPF_H
#define KS_KEY_TABLE_BPF_H

#include "maps.bpf.h"

/* A key's name as the parsers keep it: sized, so the verifier knows what
 * may be read; aligned, so it is copied in words, not bytes spilled to the
 * stack. */
struct ks_key_name {
	__u8 bytes[KS_KEY_MAX];
} __attribute__((aligned(8)));

/*
 * A key's tag in the table: its hash and target, mixed (the SplitMix64
 * finaliser) so that the high bits, which pick the bucket, depend on every
 * bit of both. Never 0 (free).
 */
static __always_inline __u64 ks_key_tag(__u64 hash, __u32 target)
{
	__u64 z = hash ^ ((__u64)(target + 1) * 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return z ? z : 1;
}

/* The bucket of a tag in generation `gen`, and its index in *bi: the tag's
 * high half picks it (multiply-shift: any number of buckets). NULL only for
 * what cannot happen (no table, an index past it). */
static __always_inline struct ks_key_bucket *ks_key_bucket_of(__u64 tag, __u32 gen, __u32 buckets, __u32 *bi)
{
	if (buckets == 0)
		return NULL;
	*bi = (gen & 1) * buckets + (__u32)(((tag >> 32) * buckets) >> 32);
	return bpf_map_lookup_elem(&ks_key_tags, bi);
}

/* Fill a slot just claimed (the daemon left it zeroed). */
static __always_inline void ks_key_name(struct ks_key_stats *s, const struct ks_key_name *name, __u32 key_len)
{
	if (!name) {
		s->flags = KS_KEYF_NONAME;
		return;
	}
	__builtin_memcpy(s->key, name->bytes, KS_KEY_MAX);
	s->key_len = key_len;
	s->flags = key_len > KS_KEY_MAX ? KS_KEYF_TRUNCATED : 0;
}

static __always_inline __s64 ks_key_table_find(__u64 hash, __u64 target_len, __u64 gen_buckets,
					       const struct ks_key_name *name, __u64 *map_full)
{
	__u32 target = target_len >> 32, key_len = (__u32)target_len;
	__u32 gen = gen_buckets >> 32, buckets = (__u32)gen_buckets;
	__u64 tag = ks_key_tag(hash, target), t;
	struct ks_key_bucket *bk;
	struct ks_key_stats *s;
	__u32 bi, slot, i;

	bk = ks_key_bucket_of(tag, gen, buckets, &bi);
	if (!bk)
		return -1;
		/* not unrolled: eight copies of the claim path cost 464 bytes of stack */
#pragma clang loop unroll(disable)
	for (i = 0; i < KS_KEY_WAYS; i++) {
		t = READ_ONCE(bk->tag[i]);
		if (t == 0) {
			t = __sync_val_compare_and_swap(&bk->tag[i], 0, tag);
			if (t == 0) {
				slot = bi * KS_KEY_WAYS + i;
				s = bpf_map_lookup_elem(&ks_keys, &slot);
				if (!s)
					return -1;
				s->hash = hash;
				s->target = target;
				ks_key_name(s, name, key_len);
				return slot;
			}
		}
		if (t == tag) {
			slot = bi * KS_KEY_WAYS + i;
			if (name) {
				s = bpf_map_lookup_elem(&ks_keys, &slot);
				/* first seen through a reply: the request now names it */
				if (s && (READ_ONCE(s->flags) & KS_KEYF_NONAME))
					ks_key_name(s, name, key_len);
			}
			return slot;
		}
	}
	if (map_full)
		*map_full = 1;
	return -1;
}

/* ks_key_table_probe(): the lookup must claim a slot or name one (the global
 * function does that). */
#define KS_KEY_SLOW (-2)

/*
 * The common lookups without a call: the key's slot when its tag is there, -1
 * when its bucket is full without it, KS_KEY_SLOW when it must be claimed, or
 * named (`named`: the caller has the name, and a reply created the slot), and
 * for what cannot happen (the global function answers those the same way).
 */
static __always_inline __s64 ks_key_table_probe(__u64 hash, __u32 target, __u32 gen, __u32 buckets, int named)
{
	__u64 tag = ks_key_tag(hash, target), t;
	struct ks_key_bucket *bk;
	struct ks_key_stats *s;
	__u32 bi, slot, i;

	bk = ks_key_bucket_of(tag, gen, buckets, &bi);
	if (!bk)
		return KS_KEY_SLOW;
	for (i = 0; i < KS_KEY_WAYS; i++) {
		t = READ_ONCE(bk->tag[i]);
		if (t == tag) {
			slot = bi * KS_KEY_WAYS + i;
			if (named) {
				s = bpf_map_lookup_elem(&ks_keys, &slot);
				if (s && (READ_ONCE(s->flags) & KS_KEYF_NONAME))
					return KS_KEY_SLOW;
			}
			return slot;
		}
		if (t == 0)
			return KS_KEY_SLOW; /* ways fill in order: the key is not further on */
	}
	return -1;
}

#endif
