/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The per-key table's lookups (see keyscope_abi.h), included by
 * count.bpf.h. A request's keys are looked up a window at a time by the
 * global function ks_key_ops_flush() (key_table.bpf.c), which probes buckets
 * inline (ks_key_bucket_probe) and calls the global ks_key_table_slot() only
 * to claim or name a slot: the verifier checks each once instead of at every
 * call site, which exceeded its budget. A reply's key is looked up where it
 * is counted; the socket path first tries ks_key_table_probe() inline there
 * (KS_KEY_TABLE_INLINE), saving a call whose return costs about as much as
 * the rest of a lookup under the kernel's SRSO return thunk.
 */
#ifndef KS_KEY_TABLE_BPF_H
#define KS_KEY_TABLE_BPF_H

#include "maps.bpf.h"

/*
 * A key's tag in the table: its hash and target. The key hash is mixed
 * already (proto/common.h: each word goes through a multiply whose high half
 * is folded down), so its high bits, which pick the bucket, depend on every
 * byte; the target moves them too. Never 0 (free); bit 0 is KS_TAG_NONAME's.
 */
static __always_inline __u64 ks_key_tag(__u64 hash, __u32 target)
{
	__u64 z = (hash ^ ((__u64)(target + 1) * 0x9e3779b97f4a7c15ULL)) & ~1ULL;

	return z ? z : 2;
}

/* In a stored tag: a reply claimed the slot, and no request has named it
 * yet. Kept in the tag (as well as in the entry's flags, for the daemon) so
 * that a lookup need not read the entry to know. */
#define KS_TAG_NONAME 1ULL

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
			t = __sync_val_compare_and_swap(&bk->tag[i], 0, name ? tag : tag | KS_TAG_NONAME);
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
		if ((t & ~KS_TAG_NONAME) == tag) {
			slot = bi * KS_KEY_WAYS + i;
			if (name && (t & KS_TAG_NONAME)) {
				/* first seen through a reply: the request now names it */
				s = bpf_map_lookup_elem(&ks_keys, &slot);
				if (s)
					ks_key_name(s, name, key_len);
				__sync_val_compare_and_swap(&bk->tag[i], t, tag);
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
 * The common lookups without a call, in the bucket `bk` (index `bi`) of
 * `tag`: the key's slot when its tag is there, -1 when the bucket is full
 * without it, KS_KEY_SLOW when it must be claimed, or named (`named`: the
 * caller has the name, and a reply created the slot).
 */
static __always_inline __s64 ks_key_bucket_probe(struct ks_key_bucket *bk, __u32 bi, __u64 tag, int named)
{
	__u64 t;
	__u32 i;

	for (i = 0; i < KS_KEY_WAYS; i++) {
		t = READ_ONCE(bk->tag[i]);
		if ((t & ~KS_TAG_NONAME) == tag) {
			if (named && (t & KS_TAG_NONAME))
				return KS_KEY_SLOW;
			return bi * KS_KEY_WAYS + i;
		}
		if (t == 0)
			return KS_KEY_SLOW; /* ways fill in order: the key is not further on */
	}
	return -1;
}

/* The same from the key's hash, for a caller without the key's name (a
 * reply); KS_KEY_SLOW also for what cannot happen (the global function
 * answers those the same way). */
static __always_inline __s64 ks_key_table_probe(__u64 hash, __u32 target, __u32 gen, __u32 buckets)
{
	__u64 tag = ks_key_tag(hash, target);
	struct ks_key_bucket *bk;
	__u32 bi;

	bk = ks_key_bucket_of(tag, gen, buckets, &bi);
	if (!bk)
		return KS_KEY_SLOW;
	return ks_key_bucket_probe(bk, bi, tag, 0);
}

#endif
