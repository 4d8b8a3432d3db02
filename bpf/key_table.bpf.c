// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The per-key table's lookups as BPF global functions, each verified once
 * (see key_table.bpf.h): a slot's claim, and the lookup and count of a
 * window's key operations.
 */
/* vmlinux.h must come first */
// clang-format off
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
// clang-format on

#include "defs.bpf.h"
#include "count.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

__noinline __s64 ks_key_table_slot(__u64 hash, __u64 target_len, __u64 gen_buckets, const struct ks_key_name *name,
				   __u64 *map_full)
{
	return ks_key_table_find(hash, target_len, gen_buckets, name, map_full);
}

/*
 * In four passes over the window's ops (struct ks_key_ops): load each key's
 * bucket; find each slot (claiming or naming it with the recorded name);
 * load each slot's line; count. Under a load over many keys the buckets and
 * lines are cold, and each pass issues its loads back to back, so their
 * misses overlap instead of following one another at each request.
 */
__noinline int ks_key_ops_flush(struct ks_key_ops *ops, struct ks_flow *f, struct ks_counters *cnt, __u64 gen_buckets,
				__u64 watching)
{
	__u32 gen = gen_buckets >> 32, buckets = (__u32)gen_buckets;
	struct ks_key_bucket *bk;
	struct ks_key_stats *s;
	struct ks_key_op *op;
	__u32 n, i, bi;
	__s64 slot;

	if (!ops || !f || !cnt)
		return 0;
	n = ops->n;
	for (i = 0; i < KS_KEY_OPS && i < n; i++) {
		op = &ops->op[i];
		if (op->kind == KS_OP_BYTES)
			continue;
		op->tag = ks_key_tag(op->hash, f->target);
		bk = ks_key_bucket_of(op->tag, gen, buckets, &op->bucket);
		if (bk)
			(void)*(volatile __u64 *)&bk->tag[0];
	}
	for (i = 0; i < KS_KEY_OPS && i < n; i++) {
		op = &ops->op[i];
		if (op->kind == KS_OP_BYTES)
			continue;
		bi = op->bucket;
		bk = bpf_map_lookup_elem(&ks_key_tags, &bi);
		slot = bk ? ks_key_bucket_probe(bk, bi, op->tag, 1) : KS_KEY_SLOW;
		if (slot == KS_KEY_SLOW)
			slot = ks_key_table_slot(op->hash, (__u64)f->target << 32 | op->key_len, gen_buckets, &op->name,
						 &cnt->key_map_full);
		else if (slot < 0)
			cnt->key_map_full = 1;
		op->slot = slot < 0 ? -1 : (__s32)slot;
		if (slot < 0)
			cnt->unattributed++;
	}
	for (i = 0; i < KS_KEY_OPS && i < n; i++) {
		s = ks_key_at(ops->op[i].slot);
		if (s)
			(void)*(volatile __u64 *)&s->reads;
	}
	for (i = 0; i < KS_KEY_OPS && i < n; i++) {
		op = &ops->op[i];
		if (op->first)
			f->first_key_slot = (__u32)op->slot;
		if (op->pend)
			f->pending[(op->pend - 1) & (KS_PENDING - 1)].key_slot = (__u32)op->slot;
		s = ks_key_at(op->slot);
		if (!s)
			continue;
		if (op->kind == KS_OP_READ)
			__sync_fetch_and_add(&s->reads, 1);
		else if (op->kind == KS_OP_WRITE)
			__sync_fetch_and_add(&s->writes, 1);
		if (op->bytes)
			__sync_fetch_and_add(&s->bytes_in, op->bytes);
		if (watching && op->kind != KS_OP_BYTES)
			ks_count_client(f, op->hash);
	}
	ops->n = 0;
	ops->first = KS_KEY_OPS;
	return 0;
}
