/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The counting core shared by both capture paths: it walks a window of bytes
 * through the RESP parsers and turns parser events into map updates.
 * Each path only decides which connection a chunk belongs to and how to copy
 * its bytes into the per-CPU scratch window.
 */
#ifndef KS_COUNT_BPF_H
#define KS_COUNT_BPF_H

#include "maps.bpf.h"
#include "hist.h"
#include "key_table.bpf.h"

enum ks_dir {
	KS_DIR_REQ = 0, /* client -> server */
	KS_DIR_REP = 1, /* server -> client */
};

/* One walk over a window held in scratch->buf. */
struct ks_walk {
	struct ks_flow *flow;
	struct ks_scratch *scr;
	struct ks_counters *cnt;
	__u64 now;
	__u32 gen;
	__u32 epoch;	   /* ks_config.epoch when this walk began */
	__u32 key_buckets; /* ks_config.key_buckets */
	__u32 pos;	   /* next byte of scr->win.buf */
	__u32 len;	   /* bytes in scr->win.buf */
	__u32 watching;	   /* some keys have their clients counted (ks_watch) */
	__u32 parser;	   /* enum ks_parser: the one ks_parse_window() runs */
};

enum ks_parser {
	KS_PARSER_REQ = 0,
	KS_PARSER_REP,
	KS_PARSER_MC_REQ,
	KS_PARSER_MC_REP,
};

static __always_inline void ks_walk_init(struct ks_walk *w, struct ks_flow *f, struct ks_scratch *scr,
					 struct ks_counters *cnt, const struct ks_config *cfg)
{
	w->flow = f;
	w->scr = scr;
	w->cnt = cnt;
	w->now = bpf_ktime_get_ns();
	w->gen = cfg->gen & 1;
	w->epoch = cfg->epoch;
	w->key_buckets = cfg->key_buckets;
}

static __always_inline struct ks_counters *ks_counters_get(__u32 gen, __u32 target)
{
	__u32 idx = (gen & 1) * KS_MAX_TARGETS + (target & (KS_MAX_TARGETS - 1));

	return bpf_map_lookup_elem(&ks_counters, &idx);
}

/*
 * The table slot of a key in the interval being filled, claimed if needed
 * (key_table.bpf.h). `name` (KS_KEY_MAX bytes, or NULL for a reply that does
 * not carry it) names a claimed slot. target_len = target << 32 | key length,
 * gen_buckets = generation << 32 | buckets per generation. -1 when the key's bucket
 * is full: the caller counts the operation as unattributed.
 */
__s64 ks_key_table_slot(__u64 hash, __u64 target_len, __u64 gen_buckets, const struct ks_key_name *name,
			__u64 *map_full);

/*
 * Look up and count the key operations recorded in `ops`, then empty it
 * (key_table.bpf.c). gen_buckets as for ks_key_table_slot(); `watching`:
 * some keys have their clients counted.
 */
int ks_key_ops_flush(struct ks_key_ops *ops, struct ks_flow *f, struct ks_counters *cnt, __u64 gen_buckets,
		     __u64 watching);

/*
 * The slot of a key seen in a reply (which does not carry its name), claimed
 * if needed; -1 when its bucket is full. Requests' keys are looked up by
 * ks_key_ops_flush(), with their names.
 */
static __always_inline __s64 ks_key_slot(struct ks_walk *w, __u64 hash)
{
	struct ks_flow *f = w->flow;
#ifdef KS_KEY_TABLE_INLINE
	__s64 slot = ks_key_table_probe(hash, f->target, w->gen, w->key_buckets);

	if (slot == -1)
		w->cnt->key_map_full = 1;
	if (slot != KS_KEY_SLOW)
		return slot;
#endif
	/* packed: BPF calls take five arguments at most */
	return ks_key_table_slot(hash, (__u64)f->target << 32, (__u64)w->gen << 32 | w->key_buckets, NULL,
				 &w->cnt->key_map_full);
}

static __always_inline struct ks_key_stats *ks_key_at(__s64 slot)
{
	__u32 idx = (__u32)slot;

	if (slot < 0)
		return NULL;
	return bpf_map_lookup_elem(&ks_keys, &idx);
}

static __always_inline void ks_on_cmd(struct ks_walk *w)
{
	struct ks_resp_req *rq = &w->flow->req;
	struct ks_cmd_spec *spec;

	/* pipelines repeat one command: the parser remembers the last answer */
	if (ks_req_recall_spec(rq))
		return;
	spec = bpf_map_lookup_elem(&ks_cmds, &rq->cmd_hash);
	if (spec)
		ks_req_set_spec(rq, spec->cls, spec->first_key, spec->last_key, spec->step);
	else
		ks_req_set_spec(rq, KS_CMD_UNKNOWN, 0, 0, 0);
}

/* Who sends requests for a hot key: only for watched keys, so the common path
 * pays one predictable branch, and a key nobody watches one bit test. A pair
 * already counted needs one lookup; the watch list is asked only for a new
 * pair (a pair left from a key watched no more is ignored by the daemon). */
static __always_inline void ks_count_client(struct ks_flow *f, __u64 hash)
{
	__u32 bit = ks_watch_bit(hash, f->target), zero = 0;
	struct ks_watch_bits *bits = bpf_map_lookup_elem(&ks_watch_bits, &zero);
	__u64 one = 1, *n;

	if (!bits || !(bits->w[(bit / 64) & (KS_WATCH_BITS / 64 - 1)] & (1ULL << (bit & 63))))
		return;
	/* the map keys are built only for a key that passed the filter */
	struct ks_key_ref ref = {.hash = hash, .target = f->target};
	struct ks_client_key ck = {.hash = hash, .target = f->target};

	__builtin_memcpy(ck.addr, f->caddr, 16);
	n = bpf_map_lookup_elem(&ks_key_clients, &ck);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return;
	}
	if (bpf_map_lookup_elem(&ks_watch, &ref))
		bpf_map_update_elem(&ks_key_clients, &ck, &one, BPF_NOEXIST);
}

/* Look up and count the window's key operations recorded so far. */
static __always_inline void ks_flush_key_ops(struct ks_walk *w)
{
	if (w->scr->ops.n)
		ks_key_ops_flush(&w->scr->ops, w->flow, w->cnt, (__u64)w->gen << 32 | w->key_buckets, w->watching);
}

/* Room for a step's ops: else the window's parse stops, and goes on after a flush. */
static __always_inline int ks_key_ops_room(struct ks_walk *w)
{
	return w->scr->ops.n <= KS_KEY_OPS - KS_KEY_OPS_PER_STEP;
}

/* One key argument of a request (either protocol): recorded with its name,
 * looked up and counted by the flush. */
static __always_inline void ks_count_key(struct ks_walk *w, __u64 hash, __u32 nkeys, __u8 cls)
{
	struct ks_flow *f = w->flow;
	struct ks_key_ops *ops = &w->scr->ops;
	__u32 i = ops->n;
	struct ks_key_op *op;

	w->cnt->key_ops++;
	if (i >= KS_KEY_OPS) {
		w->cnt->unattributed++; /* cannot happen: ks_key_ops_room() */
		return;
	}
	op = &ops->op[i];
	op->hash = hash;
	op->kind = cls == KS_CMD_WRITE ? KS_OP_WRITE : KS_OP_READ;
	op->bytes = 0;
	op->pend = 0;
	op->first = nkeys == 1;
	if (f->proto == KS_PROTO_MEMCACHED) {
		op->key_len = f->mreq.key_len;
		__builtin_memcpy(op->name.bytes, f->mreq.key, KS_KEY_MAX);
	} else {
		op->key_len = f->req.key_len;
		__builtin_memcpy(op->name.bytes, f->req.key, KS_KEY_MAX);
	}
	ops->n = i + 1;
	if (nkeys == 1) {
		/* the slot is the flush's to fill in */
		f->first_key_hash = hash;
		f->first_key_slot = (__u32)-1;
		f->first_key_epoch = w->epoch;
		ops->first = i;
	}
}

/*
 * The slot a key was counted in by an earlier walk (the request side, for a
 * reply), if the table has not flipped since; else found again (without a
 * name: a reply does not carry it) in the half being filled now.
 */
static __always_inline __s64 ks_key_slot_again(struct ks_walk *w, __u64 hash, __u32 slot, __u32 epoch)
{
	if (epoch == w->epoch)
		return (__s32)slot;
	return ks_key_slot(w, hash);
}

static __always_inline struct ks_key_stats *ks_key_again(struct ks_walk *w, __u64 hash, __u32 slot, __u32 epoch)
{
	return ks_key_at(ks_key_slot_again(w, hash, slot, epoch));
}

static __always_inline void ks_on_key(struct ks_walk *w)
{
	struct ks_resp_req *rq = &w->flow->req;

	ks_count_key(w, rq->hash, rq->nkeys, rq->cls);
}

/* A request is complete; `expect_reply` is false for memcached noreply/quiet. */
static __always_inline void ks_count_end(struct ks_walk *w, __u32 cmd_bytes, __u32 nkeys, __u8 cls, int expect_reply,
					 int retrieval)
{
	struct ks_flow *f = w->flow;
	struct ks_pending *p = &f->pending[f->req_seq & (KS_PENDING - 1)];
	struct ks_key_ops *ops = &w->scr->ops;
	__u32 first = ops->first, i;
	__s64 slot;

	w->cnt->requests++;
	w->cnt->bytes_in += cmd_bytes;
	if (nkeys == 0) {
		w->cnt->keyless++;
		if (cls == KS_CMD_UNKNOWN)
			w->cnt->unknown_cmds++;
	} else if (first < ops->n && first < KS_KEY_OPS) {
		/* the command's bytes go to its first key, still to be looked up:
		 * the flush fills in the pending request's slot too */
		ops->op[first].bytes += cmd_bytes;
		if (expect_reply)
			ops->op[first].pend = 1 + (f->req_seq & (KS_PENDING - 1));
	} else {
		/* its first key was looked up by an earlier flush */
		slot = ks_key_slot_again(w, f->first_key_hash, f->first_key_slot, f->first_key_epoch);
		i = ops->n;
		if (slot >= 0 && i < KS_KEY_OPS) {
			ops->op[i].slot = (__s32)slot;
			ops->op[i].kind = KS_OP_BYTES;
			ops->op[i].bytes = cmd_bytes;
			ops->op[i].first = 0;
			ops->op[i].pend = 0;
			ops->n = i + 1;
		}
	}
	if (!expect_reply)
		return;
	/* remember it for its reply: pipelined replies come back in order */
	p->ts_ns = w->now;
	p->key_hash = f->first_key_hash;
	p->key_slot = f->first_key_slot;
	p->key_epoch = f->first_key_epoch;
	p->retrieval = retrieval != 0;
	p->nkeys = nkeys;
	p->seq = f->req_seq;
	f->req_seq++;
}

static __always_inline void ks_on_end(struct ks_walk *w)
{
	struct ks_resp_req *rq = &w->flow->req;

	ks_count_end(w, rq->cmd_bytes, rq->nkeys, rq->cls, 1, 0);
}

/*
 * A reply is complete: match it to its request, then count it on the key.
 * memcached (`counts_hits`): `hits` values came back; `key_hit` says the one
 * hit belongs to the request's key (a meta VA names no key of its own).
 */
static __always_inline void ks_count_reply(struct ks_walk *w, __u64 bytes, __u64 value_bytes, int error, int redirect,
					   int counts_hits, __u32 hits, int key_hit)
{
	struct ks_flow *f = w->flow;
	struct ks_counters *cnt = w->cnt;
	struct ks_pending *p;
	struct ks_key_stats *s;
	__u32 seq, bucket;
	__u64 lat;

	cnt->replies++;
	cnt->bytes_out += bytes;
	if (error)
		cnt->errors++;
	if (redirect)
		cnt->redirects++;
	if (f->rep_seq == f->req_seq) {
		cnt->reply_unmatched++;
		return;
	}
	seq = f->rep_seq++;
	p = &f->pending[seq & (KS_PENDING - 1)];
	if (p->seq != seq) {
		/* more requests in flight than remembered, or replies never seen:
		 * start matching afresh rather than stay behind for good */
		cnt->reply_unmatched++;
		f->rep_seq = f->req_seq;
		return;
	}
	if (counts_hits && p->retrieval) {
		cnt->hits += hits;
		cnt->misses += p->nkeys > hits ? p->nkeys - hits : 0;
	}
	if (!p->nkeys)
		return;
	s = ks_key_again(w, p->key_hash, p->key_slot, p->key_epoch);
	if (!s)
		return; /* the request side counted it as unattributed */
	__sync_fetch_and_add(&s->bytes_out, bytes);
	if (error)
		__sync_fetch_and_add(&s->errors, 1);
	if (redirect)
		__sync_fetch_and_add(&s->redirects, 1);
	if (key_hit)
		__sync_fetch_and_add(&s->hits, 1);
	if ((!counts_hits || key_hit) && value_bytes > s->max_value)
		s->max_value = value_bytes; /* racy max: a lost update only under-reports */
	lat = w->now > p->ts_ns ? w->now - p->ts_ns : 0;
	bucket = ks_lat_bucket(lat);
	asm volatile("" : "+r"(bucket)); /* keep the bound check below for the verifier */
	if (bucket < KS_LAT_BUCKETS)
		__sync_fetch_and_add(&s->lat[bucket], 1);
}

/* Replies counted per segment at most before their key lines are loaded. */
#define KS_TOUCH_AHEAD 16

/*
 * Load the reply-side line of the keys of the next requests in flight before
 * parsing their replies. The lines are cold under a load over many keys, and
 * counting a reply waits for its line: loaded one after another the misses
 * add up, loaded here together they overlap.
 */
static __always_inline void ks_touch_reply_lines(struct ks_walk *w)
{
	struct ks_flow *f = w->flow;
	__u32 seq = f->rep_seq, end = f->req_seq, i;
	struct ks_pending *p;
	struct ks_key_stats *s;

	for (i = 0; i < KS_TOUCH_AHEAD; i++) {
		if (seq + i == end)
			break;
		p = &f->pending[(seq + i) & (KS_PENDING - 1)];
		if (!p->nkeys || p->key_epoch != w->epoch)
			continue;
		s = ks_key_at((__s32)p->key_slot);
		if (s)
			(void)*(volatile __u64 *)&s->bytes_out;
	}
}

static __always_inline void ks_on_reply(struct ks_walk *w)
{
	struct ks_resp_rep *rp = &w->flow->rep;

	if (rp->flags & KS_RPF_PUSH)
		return; /* out of band: answers no request */
	ks_count_reply(w, rp->bytes, rp->value_bytes, rp->flags & KS_RPF_ERROR, rp->flags & KS_RPF_REDIRECT, 0, 0, 0);
}

/* ---- memcached ----------------------------------------------------------- */

static __always_inline void ks_mc_on_end(struct ks_walk *w)
{
	struct ks_mc_req *rq = &w->flow->mreq;
	/* noreply sends nothing back; a quiet meta request may or may not answer,
	 * so it is not queued either (its reply, if any, counts as unmatched) */
	int expect = !(rq->flags & (KS_MC_RQF_NOREPLY | KS_MC_RQF_QUIET));
	int retrieval = rq->cmd >= KS_MC_CMD_GET && rq->cmd <= KS_MC_CMD_MG;

	ks_count_end(w, rq->cmd_bytes, rq->nkeys, rq->cls, expect, retrieval);
}

/* A VALUE block: a hit, and its size, for the key it names (meta VA hits
 * go to their request's key when the reply completes). */
static __always_inline void ks_mc_on_value(struct ks_walk *w)
{
	struct ks_mc_rep *rp = &w->flow->mrep;
	struct ks_key_stats *s;

	if (rp->kind != KS_MC_RK_VALUE || !(rp->flags & KS_MC_RPF_KEY))
		return;
	s = ks_key_at(ks_key_slot(w, rp->key_hash));
	if (!s)
		return;
	__sync_fetch_and_add(&s->hits, 1);
	if (rp->value_len > s->max_value)
		s->max_value = rp->value_len;
}

static __always_inline long ks_mc_req_cb(void *ctx)
{
	struct ks_walk *w = ctx;
	struct ks_mc_req *rq = &w->flow->mreq;
	__u32 pos = w->pos;
	int ev = 0;

	if (pos >= w->len || !ks_key_ops_room(w))
		return 1;
	w->pos = pos + ks_mc_req_step(rq, &w->scr->win, pos, w->len, &ev);
	if (!ev)
		return 0;
	if (ev & KS_EV_INVALID) {
		w->cnt->parse_errors++;
		return 0;
	}
	if (ev & KS_EV_BINARY) {
		w->cnt->unparsed++;
		return 0;
	}
	if (ev & KS_EV_KEY)
		ks_count_key(w, rq->hash, rq->nkeys, rq->cls);
	if (ev & KS_EV_END)
		ks_mc_on_end(w);
	return 0;
}

static __always_inline long ks_mc_rep_cb(void *ctx)
{
	struct ks_walk *w = ctx;
	struct ks_mc_rep *rp = &w->flow->mrep;
	__u32 pos = w->pos;
	int ev = 0;

	if (pos >= w->len)
		return 1;
	w->pos = pos + ks_mc_rep_step(rp, &w->scr->win, pos, w->len, &ev);
	if (!ev)
		return 0;
	if (ev & KS_EV_INVALID) {
		w->cnt->parse_errors++;
		w->flow->rep_seq = w->flow->req_seq;
		return 0;
	}
	if (ev & KS_EV_BINARY)
		return 0; /* counted on the request side */
	if (ev & KS_EV_VALUE)
		ks_mc_on_value(w);
	if (ev & KS_EV_REPLY)
		ks_count_reply(w, rp->bytes, rp->value_bytes, rp->flags & KS_MC_RPF_ERROR, 0, 1, rp->hits,
			       rp->kind == KS_MC_RK_VA);
	return 0;
}

/* Request steps per callback: each callback is a call and a return (through
 * the SRSO return thunk on this kernel), and a pipeline's commands are one
 * step each. */
#define KS_REQ_STEPS_PER_CB 4

static __always_inline long ks_req_cb(void *ctx)
{
	struct ks_walk *w = ctx;
	__u32 pos, k;
	int ev;

	for (k = 0; k < KS_REQ_STEPS_PER_CB; k++) {
		pos = w->pos;
		if (pos >= w->len || !ks_key_ops_room(w))
			return 1;
		ev = 0;
		w->pos = pos + ks_req_step(&w->flow->req, &w->scr->win, pos, w->len, &ev);
		if (!ev)
			continue;
		if (ev & KS_EV_INVALID) {
			w->cnt->parse_errors++;
			continue;
		}
		/* one step can finish a token and its command: this order */
		if (ev & KS_EV_CMD)
			ks_on_cmd(w);
		if (ev & KS_EV_KEY)
			ks_on_key(w);
		if (ev & KS_EV_END)
			ks_on_end(w);
	}
	return 0;
}

/* Reply steps per callback, for the same reason (see KS_REQ_STEPS_PER_CB). */
#define KS_REP_STEPS_PER_CB 4

static __always_inline long ks_rep_cb(void *ctx)
{
	struct ks_walk *w = ctx;
	__u32 pos, k;
	int ev;

	for (k = 0; k < KS_REP_STEPS_PER_CB; k++) {
		pos = w->pos;
		if (pos >= w->len)
			return 1;
		ev = 0;
		w->pos = pos + ks_rep_step(&w->flow->rep, &w->scr->win, pos, w->len, &ev);
		if (ev == KS_EV_REPLY) {
			ks_on_reply(w);
		} else if (ev == KS_EV_INVALID) {
			w->cnt->parse_errors++;
			/* replies can no longer be matched to requests */
			w->flow->rep_seq = w->flow->req_seq;
		}
	}
	return 0;
}

/*
 * Bytes that can be consumed without looking at them (values being skipped,
 * a lost stream): the walkers then need not copy them at all.
 */
static __always_inline __u32 ks_fast_skip(struct ks_flow *f, int dir, __u32 avail)
{
	if (f->proto == KS_PROTO_MEMCACHED)
		return dir == KS_DIR_REQ ? ks_mc_req_fast_skip(&f->mreq, avail) : ks_mc_rep_fast_skip(&f->mrep, avail);
	if (dir == KS_DIR_REQ) {
		if (f->req.state == KS_RQ_LOST)
			return avail;
		if (f->req.state == KS_RQ_BULK_DATA && f->req.role == KS_ROLE_SKIP && f->req.bulk_left >= avail)
			return avail;
	} else {
		if (f->rep.state == KS_RP_LOST)
			return avail;
		if (f->rep.state == KS_RP_BULK && f->rep.bulk_left >= avail)
			return avail;
	}
	return 0;
}

/* Consume `n` bytes the caller proved need not be looked at. */
static __always_inline void ks_skip(struct ks_walk *w, int dir, __u32 n)
{
	struct ks_flow *f = w->flow;
	int ev = 0;

	if (f->proto == KS_PROTO_MEMCACHED) {
		if (dir == KS_DIR_REQ)
			ks_mc_req_skip(&f->mreq, n);
		else
			ks_mc_rep_skip(&f->mrep, n);
		return;
	}
	if (dir == KS_DIR_REQ) {
		ks_req_feed(&f->req, 0, n, &ev);
	} else {
		ks_rep_feed(&f->rep, 0, n, &ev);
	}
}

/*
 * One step of whichever parser the walk runs. A single callback, so that
 * ks_parse_window() has one bpf_loop call site, which the verifier inlines
 * into a plain loop. With a call site per parser clang merged them into one
 * call taking the callback in a register; the verifier then leaves it to the
 * helper, which makes an indirect call (a retpoline here) for every step.
 */
static long ks_parse_cb(__u64 i, void *ctx)
{
	struct ks_walk *w = ctx;

	switch (w->parser) {
	case KS_PARSER_REQ:
		return ks_req_cb(ctx);
	case KS_PARSER_REP:
		return ks_rep_cb(ctx);
	case KS_PARSER_MC_REQ:
		return ks_mc_req_cb(ctx);
	default:
		return ks_mc_rep_cb(ctx);
	}
}

/* Parse the `n` bytes now in scr->win.buf; returns the bytes consumed. */
static __always_inline __u32 ks_parse_window(struct ks_walk *w, int dir, __u32 n)
{
	w->pos = 0;
	w->len = n;
	if (w->flow->proto == KS_PROTO_MEMCACHED)
		w->parser = dir == KS_DIR_REQ ? KS_PARSER_MC_REQ : KS_PARSER_MC_REP;
	else
		w->parser = dir == KS_DIR_REQ ? KS_PARSER_REQ : KS_PARSER_REP;
	/* every step consumes at least one byte, but a request step may also
	 * report an event without consuming: at most two steps per byte */
	bpf_loop(2 * KS_SCRATCH + 2, ks_parse_cb, w, 0);
	return w->pos;
}

/* Start of a chunk: lets a lost parser resynchronise. */
static __always_inline void ks_new_chunk(struct ks_flow *f, int dir)
{
	if (f->proto == KS_PROTO_MEMCACHED) {
		if (dir == KS_DIR_REQ)
			ks_mc_req_new_chunk(&f->mreq);
		else
			ks_mc_rep_new_chunk(&f->mrep);
	} else if (dir == KS_DIR_REQ) {
		ks_req_new_chunk(&f->req);
	} else {
		ks_rep_new_chunk(&f->rep);
	}
}

static __always_inline void ks_lose(struct ks_flow *f, int dir)
{
	if (f->proto == KS_PROTO_MEMCACHED) {
		if (dir == KS_DIR_REQ)
			ks_mc_req_lose(&f->mreq);
		else
			ks_mc_rep_lose(&f->mrep);
	} else if (dir == KS_DIR_REQ) {
		ks_req_lose(&f->req);
	} else {
		ks_rep_lose(&f->rep);
	}
	if (dir == KS_DIR_REP)
		f->rep_seq = f->req_seq;
}

/* The protocol of a new connection's target. */
static __always_inline void ks_flow_set_proto(struct ks_flow *f)
{
	__u32 *proto = bpf_map_lookup_elem(&ks_target_protos, &f->target);

	f->proto = proto ? *proto : KS_PROTO_REDIS;
}

#endif
