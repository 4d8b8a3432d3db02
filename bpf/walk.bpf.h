/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Walks one chunk (a TCP payload, a syscall buffer) window by window. The
 * including path defines ks_copy_window(), the only step that differs:
 * bpf_skb_load_bytes() on the socket path, bpf_probe_read_user() on the
 * syscall path.
 */
#ifndef KS_WALK_BPF_H
#define KS_WALK_BPF_H

#include "count.bpf.h"

struct ks_chunk {
	struct ks_walk w;
	void *src; /* struct __sk_buff * or a user buffer */
	__u32 off; /* next byte to walk, as an offset into src */
	__u32 end;
	int dir;
	__u32 target; /* socket path: the segment's target (in the padding: the stack is full) */
};

static __always_inline long ks_copy_window(struct ks_chunk *ck, __u32 n);

static long ks_chunk_window_cb(__u64 i, void *ctx)
{
	struct ks_chunk *ck = ctx;
	__u32 left, n;

	if (ck->off >= ck->end)
		return 1;
	left = ck->end - ck->off;
	n = ks_fast_skip(ck->w.flow, ck->dir, left);
	if (n) {
		ks_skip(&ck->w, ck->dir, n);
		ck->off += n;
		return 0;
	}
	n = left < KS_SCRATCH ? left : KS_SCRATCH;
	if (n == 0 || n > KS_SCRATCH)
		return 1;
	if (ks_copy_window(ck, n))
		return 1;
	ck->off += ks_parse_window(&ck->w, ck->dir, n);
	ks_flush_key_ops(&ck->w);
	return 0;
}

/* Walk [off, end) of src; bytes beyond the window budget lose the stream. */
static __always_inline void ks_walk_chunk(struct ks_chunk *ck, int new_chunk)
{
	if (new_chunk)
		ks_new_chunk(ck->w.flow, ck->dir);
	bpf_loop(KS_MAX_WINDOWS, ks_chunk_window_cb, ck, 0);
	if (ck->off < ck->end) {
		ck->w.cnt->truncated_windows++;
		ks_lose(ck->w.flow, ck->dir);
	}
}

#endif
