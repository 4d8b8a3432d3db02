/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Enforcement at the socket capture point (tc ingress). Before a new request
 * segment is counted, a throw-away copy of the connection's request parser
 * walks it and every key operation is judged against the rules. A segment
 * judged "drop" is dropped whole and leaves the connection's state untouched:
 * its retransmission is judged afresh, and a segment that was let through is
 * never judged (or charged) again, because its bytes are then behind the
 * connection's TCP sequence. Throttle charges of a dropped segment are
 * refunded; a segment let through after KS_MAX_DROPS_IN_ROW drops is judged
 * once more to charge every request it carries. Anything the parser does not
 * fully understand passes.
 */
#ifndef KS_ENFORCE_BPF_H
#define KS_ENFORCE_BPF_H

#include "count.bpf.h"

enum ks_verdict {
	KS_PASS = 0,
	KS_DROP = 1,
};

/* One judging walk over a request segment. */
struct ks_judge {
	/* of the segment's walk, only what judging uses: the stack is full */
	struct ks_flow *flow;
	struct ks_scratch *scr; /* scr->judge is the parser copy */
	__u32 pos, len;		/* in scr->win */
	struct __sk_buff *skb;
	__u32 start, off, end;
	__u8 verdict;
	__u8 invalid; /* the parser gave up: pass */
	__u8 _pad[2];
	struct ks_judge_args *a; /* in the per-CPU scratch: the stack is too small */
};

static __always_inline struct ks_rule_stats *ks_rule_stats_of(struct ks_rule *r)
{
	__u32 slot = r->slot;

	return bpf_map_lookup_elem(&ks_rule_stats, &slot);
}

/* GCRA: one compare-and-swap on the rule's theoretical arrival time.
 * `force` charges even over the rate (a capped segment let through). */
static __always_inline int ks_gcra_admit(struct ks_rule *r, __u64 now, int force)
{
	for (int i = 0; i < 4; i++) {
		__u64 tat = r->tat;
		__u64 base = tat > now ? tat : now;
		__u64 next = base + r->interval_ns;

		if (!force && next - now > r->tolerance_ns + r->interval_ns)
			return 0; /* over the rate and the burst */
		if (__sync_val_compare_and_swap(&r->tat, tat, next) == tat)
			return 1;
	}
	return 2; /* heavy contention: fail open, uncharged (nothing to refund) */
}

/* Remembers a charge for a refund: consecutive charges to one rule (the usual
 * pipeline of one hot key) share an entry. Over KS_MAX_REFUNDS distinct rules
 * in one segment, the rest are not refunded. */
static __always_inline void ks_note_charge(struct ks_judge_args *a, struct ks_rule_key *rk)
{
	__u8 n = a->n_charged;

	if (n > 0 && n <= KS_MAX_REFUNDS) {
		const __u64 *x = (const __u64 *)&a->charged[(n - 1) & (KS_MAX_REFUNDS - 1)];
		const __u64 *y = (const __u64 *)rk;

		_Static_assert(sizeof(*rk) == 32, "compared as four words");
		if (x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3]) {
			a->charges[(n - 1) & (KS_MAX_REFUNDS - 1)]++;
			return;
		}
	}
	if (n < KS_MAX_REFUNDS) {
		a->charged[n & (KS_MAX_REFUNDS - 1)] = *rk;
		a->charges[n & (KS_MAX_REFUNDS - 1)] = 1;
		a->n_charged = n + 1;
	}
}

/* Whether the matching requests of a connection are shed right now. */
static __always_inline int ks_shed_pick(struct ks_rule *r, __u32 pick, __u64 now)
{
	__u32 epoch = (__u32)(now >> KS_SHED_EPOCH_SHIFT);
	/* a golden-ratio step per epoch rotates which connections are picked */
	__u32 place = (pick + epoch * 0x9e3779b9u) >> 16;

	return place < r->shed_share;
}

/* The rule under `rk`, if any, applied: 1 when an enforcing rule asks for a
 * drop. A dry-run rule that would drop is noted and judging goes on, so it
 * never hides an enforcing rule. */
__noinline int ks_rule_verdict(struct ks_rule_key *rk, struct ks_judge_args *a)
{
	struct ks_rule_stats *st;
	struct ks_rule *r;
	int dry, drop;

	if (!rk || !a)
		return 0;
	r = bpf_map_lookup_elem(&ks_rules, rk);
	if (!r || a->now > r->expires_ns)
		return 0; /* no rule, or the daemon stopped renewing it */
	dry = (r->flags & KS_RULEF_DRY_RUN) != 0;
	if (dry && (a->no_dry || a->force))
		return 0;
	st = ks_rule_stats_of(r);
	if (st && !a->force)
		__sync_fetch_and_add(&st->matched, 1);
	if (r->action == KS_ACT_THROTTLE) {
		int admit = ks_gcra_admit(r, a->now, a->force);

		drop = !admit;
		if (admit == 1 && !a->force && !dry)
			ks_note_charge(a, rk);
	} else {
		drop = !a->force && ks_shed_pick(r, a->pick, a->now);
	}
	if (!drop)
		return 0;
	if (dry) {
		if (!a->dry) {
			a->dry = 1;
			a->dry_rule = *rk;
		}
		return 0;
	}
	a->dropper = *rk; /* counted once the segment's fate is known */
	return 1;
}

/* Rules for `match`/`hash`: the client's own first, then everyone's. */
static __always_inline int ks_judge_hash(struct ks_judge_args *a, __u8 match, __u64 hash, int per_client)
{
	struct ks_rule_key rk = {.hash = hash, .match = match, .target = a->target};

	if (per_client) {
		__builtin_memcpy(rk.addr, a->caddr, 16);
		if (ks_rule_verdict(&rk, a))
			return 1;
		__builtin_memset(rk.addr, 0, 16);
	}
	return ks_rule_verdict(&rk, a);
}

struct ks_prefix_walk {
	struct ks_judge_args *a;
	const struct ks_resp_req *rq;
	__u64 h;
	__u32 len;
	int drop;
};

/* Every prefix of the key that ends with the delimiter, shortest first. */
static long ks_prefix_cb(__u64 i, void *ctx)
{
	struct ks_prefix_walk *pw = ctx;
	__u8 c;

	if (i >= pw->len || i >= KS_KEY_MAX)
		return 1;
	c = pw->rq->key[i & (KS_KEY_MAX - 1)];
	pw->h = ks_fnv_byte(pw->h, c);
	if (c != (__u8)pw->a->delimiter)
		return 0;
	if (ks_judge_hash(pw->a, KS_MATCH_PREFIX, pw->h, pw->a->rule_kinds & KS_RK_PREFIX_CLIENT)) {
		pw->drop = 1;
		return 1;
	}
	return 0;
}

/* One key operation of a segment: 1 = drop the segment. */
__noinline int ks_judge_key(const struct ks_resp_req *rq, struct ks_judge_args *a)
{
	__u32 kinds;

	if (!rq || !a)
		return 0;
	kinds = a->rule_kinds;
	if (kinds & KS_RK_ALLOW) {
		struct ks_rule_key ak = {.hash = rq->hash, .match = KS_MATCH_KEY, .target = a->target};

		if (bpf_map_lookup_elem(&ks_allow, &ak))
			return 0;
	}
	if ((kinds & (KS_RK_KEY | KS_RK_KEY_CLIENT)) &&
	    ks_judge_hash(a, KS_MATCH_KEY, rq->hash, kinds & KS_RK_KEY_CLIENT))
		return 1;
	if (kinds & (KS_RK_PREFIX | KS_RK_PREFIX_CLIENT)) {
		struct ks_prefix_walk pw = {.a = a, .rq = rq, .h = KS_FNV_OFFSET, .len = rq->key_len};

		bpf_loop(KS_KEY_MAX, ks_prefix_cb, &pw, 0);
		if (pw.drop)
			return 1;
	}
	if (kinds & KS_RK_CLIENT) {
		struct ks_rule_key rk = {.match = KS_MATCH_CLIENT, .target = a->target, .port = a->cport};

		__builtin_memcpy(rk.addr, a->caddr, 16);
		if (ks_rule_verdict(&rk, a))
			return 1;
		rk.port = 0;
		if (ks_rule_verdict(&rk, a))
			return 1;
	}
	return 0;
}

static long ks_judge_step_cb(__u64 i, void *ctx)
{
	struct ks_judge *j = ctx;
	struct ks_resp_req *rq = &j->scr->judge;
	__u32 pos = j->pos;
	int ev = 0;

	if (pos >= j->len)
		return 1;
	j->pos = pos + ks_req_step(rq, &j->scr->win, pos, j->len, &ev);
	if (!ev)
		return 0;
	if (ev & KS_EV_INVALID) {
		j->invalid = 1;
		return 1;
	}
	if (ev & KS_EV_CMD) {
		struct ks_cmd_spec *spec = bpf_map_lookup_elem(&ks_cmds, &rq->cmd_hash);

		rq->cls = spec ? spec->cls : KS_CMD_UNKNOWN;
		rq->first_key = spec ? spec->first_key : 0;
		rq->last_key = spec ? spec->last_key : 0;
		rq->step = spec ? spec->step : 0;
		if (j->a->rule_kinds & KS_RK_ALLOW_CMD) {
			struct ks_rule_key ak = {.hash = rq->cmd_hash, .match = KS_MATCH_CMD, .target = j->a->target};

			/* the judging copy only: its keys are then never judged */
			if (bpf_map_lookup_elem(&ks_allow, &ak))
				rq->cls = KS_CMD_KEYLESS;
		}
	}
	/* keyless and unknown commands are never touched */
	if ((ev & KS_EV_KEY) && (rq->cls == KS_CMD_READ || rq->cls == KS_CMD_WRITE) && ks_judge_key(rq, j->a)) {
		j->verdict = KS_DROP;
		return 1;
	}
	return 0;
}

static long ks_judge_window_cb(__u64 i, void *ctx)
{
	struct ks_judge *j = ctx;
	struct ks_resp_req *rq = &j->scr->judge;
	__u32 left, n;

	if (j->off >= j->end || j->verdict == KS_DROP || j->invalid)
		return 1;
	left = j->end - j->off;
	if (rq->state == KS_RQ_BULK_DATA && rq->role == KS_ROLE_SKIP && rq->bulk_left >= left)
		return 1; /* the rest is a value being skipped: nothing to judge */
	n = left < KS_SCRATCH ? left : KS_SCRATCH;
	if (n == 0 || n > KS_SCRATCH)
		return 1;
	if (bpf_skb_load_bytes(j->skb, j->off, j->scr->win.buf, n))
		return 1;
	j->pos = 0;
	j->len = n;
	bpf_loop(2 * KS_SCRATCH + 2, ks_judge_step_cb, j, 0);
	j->off += j->pos;
	return 0;
}

/* Gives back what a segment that is not going through was charged. Never
 * below `now` (a full bucket): the daemon's renewal may have copied the
 * bucket from before a charge, and must not be refunded into a wrap-around. */
static __always_inline void ks_refund(struct ks_judge_args *a)
{
	for (__u32 i = 0; i < KS_MAX_REFUNDS; i++) {
		struct ks_rule *r;
		__u64 back;

		if (i >= a->n_charged)
			break;
		r = bpf_map_lookup_elem(&ks_rules, &a->charged[i]);
		if (!r)
			continue;
		back = (__u64)a->charges[i] * r->interval_ns;
		for (int k = 0; k < 4; k++) {
			__u64 tat = r->tat;
			__u64 next = tat > a->now + back ? tat - back : a->now;

			if (tat <= a->now || __sync_val_compare_and_swap(&r->tat, tat, next) == tat)
				break;
		}
	}
	a->n_charged = 0;
}

/* One judging pass over the segment (two when the capped pass follows). */
static long ks_judge_pass_cb(__u64 pass, void *ctx)
{
	struct ks_judge *j = ctx;
	struct ks_judge_args *a = j->a;
	struct ks_flow *f = j->flow;

	if (!f)
		return 1;
	j->scr->judge = f->req;
	ks_req_new_chunk(&j->scr->judge);
	j->off = j->start;
	j->verdict = KS_PASS;
	bpf_loop(KS_MAX_WINDOWS, ks_judge_window_cb, j, 0);
	if (pass > 0 || j->invalid || j->verdict != KS_DROP || f->drops_in_row < KS_MAX_DROPS_IN_ROW)
		return 1;
	/* bounded stall: this segment goes through, and the buckets pay for
	 * every request in it, so the rules' rates still hold overall */
	ks_refund(a);
	a->force = 1;
	return 0;
}

/*
 * Judges the request segment [off, end) of a connection whose parser is in
 * step with the stream. Drops only with a rule in enforce mode; a connection
 * that had KS_MAX_DROPS_IN_ROW segments dropped gets the next one through.
 */
static __always_inline int ks_judge_segment(struct ks_walk *w, struct ks_config *cfg, struct __sk_buff *skb, __u32 off,
					    __u32 end, __u8 *caddr, __u16 cport)
{
	struct ks_flow *f = w->flow;
	struct ks_judge j = {
		.flow = w->flow, .scr = w->scr, .skb = skb, .start = off, .end = end, .a = &w->scr->judge_args};
	struct ks_judge_args *a = &w->scr->judge_args;
	struct ks_rule_stats *st;
	struct ks_rule *r;

	if (f->proto != KS_PROTO_REDIS || f->req.state == KS_RQ_LOST) {
		w->cnt->enforce_skipped++;
		return KS_PASS;
	}
	__builtin_memset(a, 0, sizeof(*a));
	a->now = w->now;
	__builtin_memcpy(a->caddr, caddr, 16);
	a->target = f->target;
	a->rule_kinds = cfg->rule_kinds;
	a->delimiter = cfg->delimiter;
	a->pick = f->conn_pick;
	a->cport = cport;
	a->no_dry = w->now < f->dry_stall_until;
	if (cfg->rule_kinds & KS_RK_ALLOW) {
		struct ks_rule_key ak = {.match = KS_MATCH_CLIENT, .target = f->target};

		__builtin_memcpy(ak.addr, caddr, 16);
		if (bpf_map_lookup_elem(&ks_allow, &ak))
			return KS_PASS;
	}
	bpf_loop(2, ks_judge_pass_cb, &j, 0);
	if (j.invalid && !a->force) {
		/* it passes: what it was charged for is served */
		w->cnt->enforce_skipped++;
		return KS_PASS;
	}
	if (a->force) {
		/* the capped pass let it through */
		r = bpf_map_lookup_elem(&ks_rules, &a->dropper);
		st = r ? ks_rule_stats_of(r) : NULL;
		if (st)
			__sync_fetch_and_add(&st->capped, 1);
		f->drops_in_row = 0;
		ks_flow_clear_hole(f);
		return KS_PASS;
	}
	if (j.verdict == KS_DROP) {
		ks_refund(a);
		f->drops_in_row++;
		f->flags |= KS_FLOWF_HOLE;
		w->cnt->enforce_dropped++;
		r = bpf_map_lookup_elem(&ks_rules, &a->dropper);
		f->hole_slot = r ? r->slot + 1 : 0;
		st = r ? ks_rule_stats_of(r) : NULL;
		if (st)
			__sync_fetch_and_add(&st->dropped, 1);
		return KS_DROP;
	}
	f->drops_in_row = 0;
	ks_flow_clear_hole(f);
	if (!a->dry) {
		if (!a->no_dry)
			f->dry_drops_in_row = 0;
		return KS_PASS;
	}
	/* a dry-run rule would have dropped: model what dropping does */
	r = bpf_map_lookup_elem(&ks_rules, &a->dry_rule);
	st = r ? ks_rule_stats_of(r) : NULL;
	if (f->dry_drops_in_row >= KS_MAX_DROPS_IN_ROW) {
		f->dry_drops_in_row = 0;
		if (r && r->action == KS_ACT_THROTTLE)
			__sync_fetch_and_add(&r->tat, r->interval_ns);
		if (st)
			__sync_fetch_and_add(&st->capped, 1);
		return KS_PASS;
	}
	f->dry_drops_in_row++;
	/* no request of this connection would arrive until the retransmission,
	 * so dry-run rules judge none till then */
	f->dry_stall_until = w->now + (KS_DRY_RTO_NS << (f->dry_drops_in_row - 1));
	w->cnt->enforce_would_drop++;
	if (st)
		__sync_fetch_and_add(&st->would_drop, 1);
	return KS_PASS;
}

/* A SYN to a target with a new-connection rule. */
static __always_inline int ks_judge_syn(struct ks_walk *w, struct ks_config *cfg, __u32 target, __u8 *caddr)
{
	struct ks_rule_key rk = {.match = KS_MATCH_CONN, .target = target};
	struct ks_judge_args *a = &w->scr->judge_args;
	struct ks_rule_stats *st;
	struct ks_rule *r;
	int drop;

	if (cfg->rule_kinds & KS_RK_ALLOW) {
		struct ks_rule_key ak = {.match = KS_MATCH_CLIENT, .target = target};

		__builtin_memcpy(ak.addr, caddr, 16);
		if (bpf_map_lookup_elem(&ks_allow, &ak))
			return KS_PASS;
	}
	__builtin_memset(a, 0, sizeof(*a));
	a->now = w->now;
	a->target = target;
	a->pick = bpf_get_prandom_u32();
	drop = ks_rule_verdict(&rk, a);
	if (!drop && !a->dry)
		return KS_PASS;
	r = bpf_map_lookup_elem(&ks_rules, &rk);
	st = r ? ks_rule_stats_of(r) : NULL;
	if (!drop) {
		w->cnt->enforce_would_drop++;
		if (st)
			__sync_fetch_and_add(&st->would_drop, 1);
		return KS_PASS;
	}
	if (st)
		__sync_fetch_and_add(&st->dropped, 1);
	w->cnt->enforce_dropped++;
	return KS_DROP;
}

#endif
