// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Socket path: tc programs on the interfaces that carry a target's traffic.
 * Ingress sees requests (to the server's port), egress sees replies (from
 * it). Per-connection state follows TCP sequence numbers so retransmitted
 * bytes are skipped and a gap resynchronises the parser.
 * Changes a packet's fate only when the daemon installed enforcement rules
 * (enforce.bpf.h): then ingress may drop a request segment or a SYN; all
 * else, and everything when no rule is installed, returns TC_ACT_UNSPEC.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "defs.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* key table lookups inline but for claims (key_table.bpf.h) */
#define KS_KEY_TABLE_INLINE
#include "walk.bpf.h"
#include "enforce.bpf.h"

#define TC_ACT_SHOT 2

static __always_inline long ks_copy_window(struct ks_chunk *ck, __u32 n)
{
	return bpf_skb_load_bytes(ck->src, ck->off, ck->w.scr->win.buf, n);
}

static __always_inline void ks_addr4(__u8 *dst, __be32 a)
{
	/* v4-mapped IPv6: ::ffff:a.b.c.d */
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &a, 4);
}

static __always_inline struct ks_target_val *ks_find_target(struct ks_target_key *tk)
{
	struct ks_target_val *tv = bpf_map_lookup_elem(&ks_targets, tk);

	if (tv)
		return tv;
	__builtin_memset(tk->addr, 0, sizeof(tk->addr)); /* listening on any address */
	return bpf_map_lookup_elem(&ks_targets, tk);
}

/* Is `port` (network byte order) a target's? */
static __always_inline int ks_target_port(__u16 port)
{
	struct ks_port_bits *bits;
	__u32 zero = 0;

	bits = bpf_map_lookup_elem(&ks_target_ports, &zero);
	return bits && (bits->w[(port / 64) & (KS_PORT_WORDS - 1)] & (1ULL << (port & 63)));
}

/* Parses and counts one segment; returns KS_DROP when a rule drops it. */
static __always_inline int ks_tc(struct __sk_buff *skb, int dir)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ks_flow_key *fk;
	struct ks_target_key *tk;
	struct ks_chunk ck = {};
	struct ks_target_val *tv;
	struct ks_counters *cnt;
	struct ks_scratch *scr;
	struct ks_flow *f;
	struct tcphdr *th;
	__u32 l4_off, payload_off, payload_len, ip_payload, seq, zero = 0;
	struct ks_config *cfg;
	__u16 sport, dport;
	__s32 diff;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + ETH_HLEN;

		if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP)
			return KS_PASS;
		if (ip->frag_off & bpf_htons(0x3fff))
			return KS_PASS; /* fragments: not parsed */
		l4_off = ETH_HLEN + ip->ihl * 4;
		ip_payload = bpf_ntohs(ip->tot_len) - ip->ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_TCP)
			return KS_PASS; /* extension headers: not parsed */
		l4_off = ETH_HLEN + sizeof(*ip6);
		ip_payload = bpf_ntohs(ip6->payload_len);
	} else {
		return KS_PASS;
	}
	if (l4_off > 120)
		return KS_PASS;
	th = data + l4_off;
	if ((void *)(th + 1) > data_end)
		return KS_PASS;
	sport = th->source;
	dport = th->dest;
	if (!ks_target_port(dir == KS_DIR_REQ ? dport : sport))
		return KS_PASS; /* other traffic, and on `lo` the other direction */

	/* the connection and target keys live in the per-CPU scratch: the
	 * stack is needed for the walk's call chain (512 bytes in all) */
	scr = bpf_map_lookup_elem(&ks_scratch, &zero);
	if (!scr)
		return KS_PASS;
	fk = &scr->fk;
	tk = &scr->tk;
	__builtin_memset(fk, 0, sizeof(*fk));
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + ETH_HLEN;

		if ((void *)(ip + 1) > data_end)
			return KS_PASS;
		ks_addr4(fk->caddr, dir == KS_DIR_REQ ? ip->saddr : ip->daddr);
		ks_addr4(fk->saddr, dir == KS_DIR_REQ ? ip->daddr : ip->saddr);
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > data_end)
			return KS_PASS;
		__builtin_memcpy(fk->caddr, dir == KS_DIR_REQ ? &ip6->saddr : &ip6->daddr, 16);
		__builtin_memcpy(fk->saddr, dir == KS_DIR_REQ ? &ip6->daddr : &ip6->saddr, 16);
	}
	fk->cport = dir == KS_DIR_REQ ? sport : dport;
	fk->sport = dir == KS_DIR_REQ ? dport : sport;

	/* a known connection names its target; only a new one is looked up */
	f = bpf_map_lookup_elem(&ks_flows, fk);
	if (f) {
		ck.target = f->target;
	} else {
		__builtin_memset(tk, 0, sizeof(*tk));
		__builtin_memcpy(tk->addr, fk->saddr, 16);
		tk->port = fk->sport;
		tv = ks_find_target(tk);
		if (!tv)
			return KS_PASS; /* a target's port, but not its address */
		ck.target = tv->id;
	}

	if (th->doff * 4 > ip_payload)
		return KS_PASS;
	payload_len = ip_payload - th->doff * 4;
	payload_off = l4_off + th->doff * 4;
	seq = bpf_ntohl(th->seq);

	cfg = bpf_map_lookup_elem(&ks_config, &zero);
	if (!cfg)
		return KS_PASS;
	cnt = ks_counters_get(cfg->gen, ck.target);
	if (!cnt)
		return KS_PASS;

	if (th->rst) {
		if (f)
			bpf_map_delete_elem(&ks_flows, fk);
		return KS_PASS;
	}
	if (!f || (th->syn && dir == KS_DIR_REQ)) {
		struct ks_flow *tmpl;

		if (!f && payload_len == 0 && !th->syn)
			return KS_PASS;
		if (th->syn && !th->ack && dir == KS_DIR_REQ && (cfg->rule_kinds & KS_RK_CONN)) {
			ks_walk_init(&ck.w, NULL, scr, cnt, cfg);
			if (ks_judge_syn(&ck.w, cfg, ck.target, fk->caddr) == KS_DROP)
				return KS_DROP; /* the client retries its SYN */
		}
		tmpl = bpf_map_lookup_elem(&ks_zero_flow, &zero);
		if (!tmpl)
			return KS_PASS;
		/* a new connection, or a reused 4-tuple: start from zero */
		bpf_map_update_elem(&ks_flows, fk, tmpl, BPF_ANY);
		f = bpf_map_lookup_elem(&ks_flows, fk);
		if (!f) {
			cnt->flow_full++;
			return KS_PASS;
		}
		f->target = ck.target;
		f->conn_pick = bpf_get_prandom_u32();
		__builtin_memcpy(f->caddr, fk->caddr, 16);
		ks_flow_set_proto(f);
		if (!th->syn) {
			/* joined mid-stream: wait for a segment that starts a message */
			ks_lose(f, KS_DIR_REQ);
			ks_lose(f, KS_DIR_REP);
		}
	}

	if (dir == KS_DIR_REQ) {
		if (th->syn) {
			f->next_seq_req = seq + 1;
			f->flags |= KS_FLOWF_REQ_SEQ;
		}
		if (th->fin)
			f->flags |= KS_FLOWF_FIN_REQ;
	} else {
		if (th->syn) {
			f->next_seq_rep = seq + 1;
			f->flags |= KS_FLOWF_REP_SEQ;
		}
		if (th->fin)
			f->flags |= KS_FLOWF_FIN_REP;
	}
	if (payload_len == 0 || th->syn)
		goto out;

	if (dir == KS_DIR_REQ) {
		if (!(f->flags & KS_FLOWF_REQ_SEQ)) {
			f->next_seq_req = seq;
			f->flags |= KS_FLOWF_REQ_SEQ;
		}
		diff = (__s32)(seq - f->next_seq_req);
	} else {
		if (!(f->flags & KS_FLOWF_REP_SEQ)) {
			f->next_seq_rep = seq;
			f->flags |= KS_FLOWF_REP_SEQ;
		}
		diff = (__s32)(seq - f->next_seq_rep);
	}
	ck.off = payload_off;
	if (diff > 0 && dir == KS_DIR_REQ && (f->flags & KS_FLOWF_HOLE) && (cfg->rule_kinds & KS_RK_RULES)) {
		/* data behind a dropped segment: it waits for the retransmission,
		 * which must be judged in order, not skipped as a gap; counted
		 * against the rule that dropped it */
		__u32 slot = f->hole_slot - 1;
		struct ks_rule_stats *st = f->hole_slot ? bpf_map_lookup_elem(&ks_rule_stats, &slot) : NULL;

		if (st)
			__sync_fetch_and_add(&st->dropped, 1);
		cnt->enforce_dropped++;
		return KS_DROP;
	}
	if (diff > 0) {
		/* bytes we never saw: resynchronise at a message start */
		cnt->seq_gaps++;
		ks_lose(f, dir);
	} else if (diff < 0) {
		if ((__u32)(-diff) >= payload_len) {
			cnt->seq_retrans++; /* all seen before: never count twice */
			goto out;
		}
		cnt->seq_retrans++;
		ck.off += -diff;
	}
	ks_walk_init(&ck.w, f, scr, cnt, cfg);
	ck.w.watching = cfg->watching;
	if (dir == KS_DIR_REQ && diff <= 0 && (cfg->rule_kinds & KS_RK_RULES)) {
		/* before anything is counted or the sequence advances: a dropped
		 * segment comes back as new bytes and is judged again (only its
		 * new bytes, when it overlaps what went through before) */
		if (ks_judge_segment(&ck.w, cfg, skb, ck.off, payload_off + payload_len, fk->caddr, fk->cport) ==
		    KS_DROP)
			return KS_DROP;
	}
	if (dir == KS_DIR_REQ) {
		f->next_seq_req = seq + payload_len;
		ks_flow_clear_hole(f); /* in order again, judged or not */
	} else {
		f->next_seq_rep = seq + payload_len;
	}

	ck.src = skb;
	ck.end = payload_off + payload_len;
	ck.dir = dir;
	if (dir == KS_DIR_REP)
		ks_touch_reply_lines(&ck.w);
	ks_walk_chunk(&ck, 1);
out:
	if ((f->flags & (KS_FLOWF_FIN_REQ | KS_FLOWF_FIN_REP)) == (KS_FLOWF_FIN_REQ | KS_FLOWF_FIN_REP))
		bpf_map_delete_elem(&ks_flows, fk);
	return KS_PASS;
}

SEC("tc")
int ks_tc_ingress(struct __sk_buff *skb)
{
	return ks_tc(skb, KS_DIR_REQ) == KS_DROP ? TC_ACT_SHOT : TC_ACT_UNSPEC;
}

SEC("tc")
int ks_tc_egress(struct __sk_buff *skb)
{
	ks_tc(skb, KS_DIR_REP);
	return TC_ACT_UNSPEC;
}
