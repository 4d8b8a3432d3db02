/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * resp.h - resumable RESP (Redis protocol) parsers for requests and replies.
 *
 * Header-only C with no helpers and no buffer access: the caller hands one
 * byte and the number of bytes available from it, the parser says how many it
 * consumed and whether an event happened. The same code runs in the BPF
 * programs (tc and syscall paths), in the Catch2 tests and under libFuzzer.
 *
 * Requests (client -> server):
 *
 *   *<argc>\r\n  { $<len>\r\n <len bytes> \r\n } x argc      array of bulk strings
 *   WORD WORD ...\n  (optionally \r\n)                       inline command
 *
 *   argument 0 is the command name; the caller looks it up in the command
 *   table on KS_EV_CMD and sets the key positions (ks_req_set_spec). The
 *   parser remembers the last answer: when the next command has the same
 *   name, one step reports its name and its first argument (KS_EV_CMD with
 *   KS_EV_KEY, even KS_EV_END), so the caller reads the name's hash from
 *   cmd_hash, never from hash.
 *
 * Replies (server -> client), RESP2 and RESP3:
 *
 *   + - : _ , # (   <line>\r\n                               simple types
 *   $ = !           <len>\r\n <len bytes> \r\n  ($-1: null)   blob types
 *   * % ~ > |       <count>\r\n then count (x2 for % and |) elements
 *
 *   A reply is complete when its outermost element is; one counter of
 *   elements still to come replaces a stack. '-' / '!' first means error;
 *   "-MOVED " and "-ASK " are redirects. '>' (push) is not a reply to a request.
 *
 * After malformed bytes a parser goes KS_*_LOST: it skips the rest of the
 * chunk and resumes at the next chunk (segment or read) only if that chunk
 * starts like a message ("strict" start), so garbage never desynchronises the
 * counts of later, well-formed traffic.
 */
#ifndef KS_PROTO_RESP_H
#define KS_PROTO_RESP_H

#include "common.h"

#define KS_RESP_MAX_ARGS (1024 * 1024)
#define KS_RESP_MAX_BULK (512U * 1024 * 1024)
#define KS_RESP_MAX_INLINE (64 * 1024)
#define KS_RESP_MAX_COUNT (1U << 30)

/* Events (KS_EV_*), the key hash and the window come from common.h. */

/* ---- requests ---------------------------------------------------------- */

enum ks_rq_state {
	KS_RQ_START = 0,
	KS_RQ_ARGC,
	KS_RQ_ARGC_LF,
	KS_RQ_BULK_HDR,
	KS_RQ_BULK_LEN,
	KS_RQ_BULK_LEN_LF,
	KS_RQ_BULK_DATA,
	KS_RQ_BULK_CR,
	KS_RQ_BULK_LF,
	KS_RQ_INLINE,
	KS_RQ_LOST,
};

enum ks_arg_role {
	KS_ROLE_SKIP = 0,
	KS_ROLE_NAME = 1,
	KS_ROLE_KEY = 2,
};

#define KS_RQF_STRICT 1 /* next command must start with '*' (after a resync) */
#define KS_RQF_DIGIT 2	/* a digit was seen in the number being parsed */
#define KS_RQF_TOKEN 4	/* inline: inside a token */

struct ks_resp_req {
	__u8 state;
	__u8 role;
	__u8 flags;
	__u8 _pad0;
	__u32 argc;	 /* array arguments, 0 for inline */
	__u32 argi;	 /* index of the current argument */
	__u32 num;	 /* number being parsed */
	__u32 bulk_left; /* bytes left in the current bulk string */
	__u32 key_len;	 /* full length of the current token */
	__u32 cmd_bytes; /* bytes of the current command so far */
	__u32 nkeys;	 /* keys seen in the current command */
	__u64 hash;	 /* FNV-1a of the current name, or the key hash (common.h) of a key */
	__u64 kh_word;	 /* key bytes not yet mixed into hash (ks_kh_byte) */
	__u64 cmd_hash;	 /* FNV-1a of the current command's name */
	/* Key positions of the current command, set by the caller on KS_EV_CMD
	 * (ks_req_set_spec). */
	__u8 cls;
	__s8 first_key;
	__s8 last_key;
	__u8 step;
	/* The last command name the caller answered, and its answer: pipelines
	 * repeat one command, so the next one's key positions are known at once. */
	__u8 memo_cls;
	__s8 memo_first_key;
	__s8 memo_last_key;
	__u8 memo_step;
	__u64 memo_hash;
	__u8 key[KS_KEY_MAX];
};

/* The caller's answer to KS_EV_CMD: the command's key positions. */
static __always_inline void ks_req_set_spec(struct ks_resp_req *st, __u8 cls, __s8 first_key, __s8 last_key, __u8 step)
{
	st->cls = cls;
	st->first_key = first_key;
	st->last_key = last_key;
	st->step = step;
	st->memo_hash = st->cmd_hash;
	st->memo_cls = cls;
	st->memo_first_key = first_key;
	st->memo_last_key = last_key;
	st->memo_step = step;
}

/* The current command's key positions, if its name was answered last time. */
static __always_inline int ks_req_recall_spec(struct ks_resp_req *st)
{
	if (!st->memo_hash || st->memo_hash != st->cmd_hash)
		return 0;
	st->cls = st->memo_cls;
	st->first_key = st->memo_first_key;
	st->last_key = st->memo_last_key;
	st->step = st->memo_step;
	return 1;
}

static __always_inline void ks_req_reset(struct ks_resp_req *st)
{
	st->state = KS_RQ_START;
	st->flags = 0;
	st->argc = 0;
	st->argi = 0;
	st->cmd_bytes = 0;
	st->nkeys = 0;
	st->first_key = 0;
}

/* Call at the start of every chunk (segment, read buffer). */
static __always_inline void ks_req_new_chunk(struct ks_resp_req *st)
{
	if (st->state == KS_RQ_LOST) {
		ks_req_reset(st);
		st->flags = KS_RQF_STRICT;
	}
}

/* Drop what is known of the stream and wait for a chunk that starts with '*'
 * (used on TCP gaps and when attaching to a connection mid-stream). */
static __always_inline void ks_req_lose(struct ks_resp_req *st)
{
	st->state = KS_RQ_LOST;
}

/* Is argument `argi` of the current command a key? */
static __always_inline int ks_req_is_key(const struct ks_resp_req *st, __u32 argi)
{
	__s32 last;

	if (st->first_key <= 0 || argi < (__u32)st->first_key)
		return 0;
	if (st->last_key >= 0) {
		last = st->last_key;
	} else if (st->argc) {
		last = (__s32)st->argc + st->last_key;
	} else {
		/* inline: argc unknown until the line ends; "to the end" */
		last = 0x7fffffff;
	}
	if ((__s32)argi > last)
		return 0;
	return st->step <= 1 || ((argi - (__u32)st->first_key) % st->step) == 0;
}

static __always_inline void ks_req_begin_token(struct ks_resp_req *st)
{
	st->hash = KS_FNV_OFFSET;
	st->kh_word = 0;
	st->key_len = 0;
	if (st->argi == 0) {
		st->role = KS_ROLE_NAME;
	} else if (ks_req_is_key(st, st->argi)) {
		st->role = KS_ROLE_KEY;
		st->hash = KS_KH_SEED;
	} else {
		st->role = KS_ROLE_SKIP;
	}
}

/* Consume one byte of a name or key token. */
static __always_inline void ks_req_token_byte(struct ks_resp_req *st, __u8 c)
{
	__u32 n = st->key_len;

	if (st->role == KS_ROLE_NAME) {
		st->hash = ks_fnv_byte(st->hash, ks_upper(c));
	} else if (st->role == KS_ROLE_KEY) {
		if (n < KS_KEY_HASH_MAX)
			st->hash = ks_kh_byte(st->hash, &st->kh_word, n, c);
		if (n < KS_KEY_MAX)
			st->key[n & (KS_KEY_MAX - 1)] = c;
	}
	st->key_len = n + 1;
}

/* Token finished: the event to report for it. */
static __always_inline int ks_req_end_token(struct ks_resp_req *st)
{
	if (st->role == KS_ROLE_NAME) {
		st->cmd_hash = st->hash;
		return KS_EV_CMD;
	}
	if (st->role == KS_ROLE_KEY) {
		st->hash = ks_kh_finish(st->hash, st->kh_word, st->key_len);
		st->nkeys++;
		return KS_EV_KEY;
	}
	return KS_EV_NONE;
}

static __always_inline __u32 ks_req_invalid(struct ks_resp_req *st, __u32 avail, int *ev)
{
	st->state = KS_RQ_LOST;
	*ev = KS_EV_INVALID;
	return avail;
}

/*
 * Feed the parser: `c` is the byte at the current position and `avail` >= 1
 * the bytes available from there in this chunk. Returns the bytes consumed
 * (0 only when an event is reported without consuming) and sets *ev.
 */
static __always_inline __u32 ks_req_feed(struct ks_resp_req *st, __u8 c, __u32 avail, int *ev)
{
	__u32 used = 1;

	*ev = KS_EV_NONE;
	switch (st->state) {
	case KS_RQ_START:
		if (c == '*') {
			st->argi = 0;
			st->nkeys = 0;
			st->cmd_bytes = 0;
			st->num = 0;
			st->flags = 0;
			st->state = KS_RQ_ARGC;
			break;
		}
		if (st->flags & KS_RQF_STRICT)
			return ks_req_invalid(st, avail, ev);
		if (c == '\r' || c == '\n')
			return 1; /* blank line between inline commands */
		/* inline command: the first token starts here */
		st->argc = 0;
		st->argi = 0;
		st->nkeys = 0;
		st->cmd_bytes = 0;
		st->first_key = 0;
		st->state = KS_RQ_INLINE;
		st->flags = 0;
		return 0; /* reprocess this byte in KS_RQ_INLINE */
	case KS_RQ_ARGC:
		if (c == '\r' && (st->flags & KS_RQF_DIGIT)) {
			st->state = KS_RQ_ARGC_LF;
			break;
		}
		if (!ks_digit(&st->num, c, KS_RESP_MAX_ARGS))
			return ks_req_invalid(st, avail, ev);
		st->flags |= KS_RQF_DIGIT;
		break;
	case KS_RQ_ARGC_LF:
		if (c != '\n')
			return ks_req_invalid(st, avail, ev);
		st->cmd_bytes++;
		if (st->num == 0) { /* "*0": an empty command, ignored by Redis */
			st->state = KS_RQ_START;
			return 1;
		}
		st->argc = st->num;
		st->first_key = 0;
		st->state = KS_RQ_BULK_HDR;
		return 1;
	case KS_RQ_BULK_HDR:
		if (c != '$')
			return ks_req_invalid(st, avail, ev);
		st->num = 0;
		st->flags &= ~KS_RQF_DIGIT;
		st->state = KS_RQ_BULK_LEN;
		break;
	case KS_RQ_BULK_LEN:
		if (c == '\r' && (st->flags & KS_RQF_DIGIT)) {
			st->state = KS_RQ_BULK_LEN_LF;
			break;
		}
		if (!ks_digit(&st->num, c, KS_RESP_MAX_BULK))
			return ks_req_invalid(st, avail, ev);
		st->flags |= KS_RQF_DIGIT;
		break;
	case KS_RQ_BULK_LEN_LF:
		if (c != '\n')
			return ks_req_invalid(st, avail, ev);
		st->bulk_left = st->num;
		ks_req_begin_token(st);
		st->cmd_bytes++;
		if (st->bulk_left == 0) {
			st->state = KS_RQ_BULK_CR;
			*ev = ks_req_end_token(st);
		} else {
			st->state = KS_RQ_BULK_DATA;
		}
		return 1;
	case KS_RQ_BULK_DATA:
		if (st->role == KS_ROLE_SKIP) {
			/* values are skipped whole, never looked at */
			used = ks_min_u32(st->bulk_left, avail);
			st->key_len += used;
		} else {
			ks_req_token_byte(st, c);
		}
		st->bulk_left -= used;
		st->cmd_bytes += used;
		if (st->bulk_left == 0) {
			st->state = KS_RQ_BULK_CR;
			*ev = ks_req_end_token(st);
		}
		return used;
	case KS_RQ_BULK_CR:
		if (c != '\r')
			return ks_req_invalid(st, avail, ev);
		st->state = KS_RQ_BULK_LF;
		break;
	case KS_RQ_BULK_LF:
		if (c != '\n')
			return ks_req_invalid(st, avail, ev);
		st->cmd_bytes++;
		st->argi++;
		if (st->argi >= st->argc) {
			st->state = KS_RQ_START;
			*ev = KS_EV_END;
		} else {
			st->state = KS_RQ_BULK_HDR;
		}
		return 1;
	case KS_RQ_INLINE:
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			if (st->flags & KS_RQF_TOKEN) {
				/* report the token first; the separator is seen again */
				st->flags &= ~KS_RQF_TOKEN;
				st->argi++;
				*ev = ks_req_end_token(st);
				return 0;
			}
			if (c == '\n') {
				st->cmd_bytes++;
				st->state = KS_RQ_START;
				st->argc = st->argi;
				if (st->argi > 0)
					*ev = KS_EV_END;
				return 1;
			}
			break;
		}
		if (!(st->flags & KS_RQF_TOKEN)) {
			st->flags |= KS_RQF_TOKEN;
			ks_req_begin_token(st);
		}
		ks_req_token_byte(st, c);
		st->cmd_bytes++;
		if (st->cmd_bytes > KS_RESP_MAX_INLINE)
			return ks_req_invalid(st, avail, ev);
		return 1;
	default: /* KS_RQ_LOST: skip the rest of this chunk */
		return avail;
	}
	st->cmd_bytes++;
	return used;
}

/* ---- replies ----------------------------------------------------------- */

enum ks_rp_state {
	KS_RP_START = 0,
	KS_RP_LINE,
	KS_RP_LINE_LF,
	KS_RP_NUM,
	KS_RP_NUM_LF,
	KS_RP_BULK,
	KS_RP_BULK_CR,
	KS_RP_BULK_LF,
	KS_RP_LOST,
};

/* ks_resp_rep.flags: describe the reply in progress / just completed */
#define KS_RPF_ERROR 1	  /* error reply */
#define KS_RPF_REDIRECT 2 /* -MOVED or -ASK */
#define KS_RPF_PUSH 4	  /* RESP3 push: not a reply to a request */
#define KS_RPF_TOPSET 8	  /* the reply's own type has been seen */
/* parser-internal */
#define KS_RPF_NEG 16	   /* '-' sign on the number being parsed */
#define KS_RPF_DIGIT 32	   /* a digit was seen */
#define KS_RPF_STRICT 64   /* after a resync: the chunk must start a reply */
#define KS_RPF_ERRLINE 128 /* the current line is the reply's error text */

struct ks_resp_rep {
	__u8 state;
	__u8 type; /* type byte of the current element */
	__u8 flags;
	__u8 errlen;	 /* bytes of the error line captured in errhead */
	__u32 remaining; /* elements of the current reply not yet started */
	__u32 num;
	__u32 bulk_left;
	__u64 value_bytes; /* payload bytes of blob strings in the reply */
	__u64 bytes;	   /* all bytes of the reply */
	__u8 errhead[8];   /* first bytes of an error line, for MOVED/ASK */
};

static __always_inline void ks_rep_reset(struct ks_resp_rep *rp)
{
	rp->state = KS_RP_START;
	rp->flags = 0;
	rp->remaining = 0;
}

static __always_inline void ks_rep_new_chunk(struct ks_resp_rep *rp)
{
	if (rp->state == KS_RP_LOST) {
		ks_rep_reset(rp);
		rp->flags = KS_RPF_STRICT;
	}
}

static __always_inline void ks_rep_lose(struct ks_resp_rep *rp)
{
	rp->state = KS_RP_LOST;
}

static __always_inline __u32 ks_rep_invalid(struct ks_resp_rep *rp, __u32 avail, int *ev)
{
	rp->state = KS_RP_LOST;
	*ev = KS_EV_INVALID;
	return avail;
}

/* An element finished: the reply is complete when none is left to come. */
static __always_inline void ks_rep_element_done(struct ks_resp_rep *rp, int *ev)
{
	rp->state = KS_RP_START;
	if (rp->remaining == 0) {
		if ((rp->flags & KS_RPF_ERROR) && rp->errlen >= 4) {
			const __u8 *h = rp->errhead;
			if ((rp->errlen >= 6 && h[0] == 'M' && h[1] == 'O' && h[2] == 'V' && h[3] == 'E' &&
			     h[4] == 'D' && h[5] == ' ') ||
			    (h[0] == 'A' && h[1] == 'S' && h[2] == 'K' && h[3] == ' '))
				rp->flags = (rp->flags & ~KS_RPF_ERROR) | KS_RPF_REDIRECT;
		}
		*ev = KS_EV_REPLY;
	}
}

/* A number line of the element in progress ended (after its '\n'). */
static __always_inline __u32 ks_rep_number_done(struct ks_resp_rep *rp, __u32 avail, int *ev)
{
	__u32 n = rp->num;

	if (rp->flags & KS_RPF_NEG) {
		/* only -1 (null) is legal */
		if (n != 1)
			return ks_rep_invalid(rp, avail, ev);
		ks_rep_element_done(rp, ev);
		return 0;
	}
	switch (rp->type) {
	case '$':
	case '=':
	case '!':
		rp->bulk_left = n;
		rp->value_bytes += n;
		rp->state = n ? KS_RP_BULK : KS_RP_BULK_CR;
		return 0;
	case '%':
		n *= 2;
		break;
	case '|':
		n = n * 2 + 1; /* attribute pairs, then the reply they annotate */
		break;
	default:
		break;
	}
	if (rp->remaining + n < rp->remaining || rp->remaining + n > KS_RESP_MAX_COUNT)
		return ks_rep_invalid(rp, avail, ev);
	rp->remaining += n;
	if (n == 0)
		ks_rep_element_done(rp, ev);
	else
		rp->state = KS_RP_START;
	return 0;
}

/* Feed the reply parser; same contract as ks_req_feed(). */
static __always_inline __u32 ks_rep_feed(struct ks_resp_rep *rp, __u8 c, __u32 avail, int *ev)
{
	__u32 used = 1;

	*ev = KS_EV_NONE;
	switch (rp->state) {
	case KS_RP_START:
		if (rp->remaining == 0) {
			/* a new reply */
			rp->flags &= KS_RPF_STRICT;
			rp->value_bytes = 0;
			rp->bytes = 0;
			rp->errlen = 0;
			rp->remaining = 1;
		}
		rp->flags &= ~(KS_RPF_NEG | KS_RPF_DIGIT | KS_RPF_ERRLINE | KS_RPF_STRICT);
		rp->remaining--;
		rp->type = c;
		rp->num = 0;
		if (!(rp->flags & KS_RPF_TOPSET) && c != '|') {
			rp->flags |= KS_RPF_TOPSET;
			if (c == '-' || c == '!')
				rp->flags |= KS_RPF_ERROR;
			if (c == '-')
				rp->flags |= KS_RPF_ERRLINE;
			if (c == '>')
				rp->flags |= KS_RPF_PUSH;
		}
		switch (c) {
		case '+':
		case '-':
		case ':':
		case '_':
		case ',':
		case '#':
		case '(':
			rp->state = KS_RP_LINE;
			break;
		case '$':
		case '=':
		case '!':
		case '*':
		case '%':
		case '~':
		case '>':
		case '|':
			rp->state = KS_RP_NUM;
			break;
		default:
			return ks_rep_invalid(rp, avail, ev);
		}
		break;
	case KS_RP_LINE:
		if (c == '\r') {
			rp->state = KS_RP_LINE_LF;
		} else if (c == '\n') {
			return ks_rep_invalid(rp, avail, ev);
		} else if ((rp->flags & KS_RPF_ERRLINE) && rp->errlen < 8) {
			rp->errhead[rp->errlen & 7] = c;
			rp->errlen++;
		}
		break;
	case KS_RP_LINE_LF:
		if (c != '\n')
			return ks_rep_invalid(rp, avail, ev);
		rp->bytes++;
		ks_rep_element_done(rp, ev);
		return 1;
	case KS_RP_NUM:
		if (c == '\r' && (rp->flags & KS_RPF_DIGIT)) {
			rp->state = KS_RP_NUM_LF;
			break;
		}
		if (c == '-' && !(rp->flags & (KS_RPF_DIGIT | KS_RPF_NEG))) {
			rp->flags |= KS_RPF_NEG;
			break;
		}
		if (!ks_digit(&rp->num, c, KS_RESP_MAX_COUNT))
			return ks_rep_invalid(rp, avail, ev);
		rp->flags |= KS_RPF_DIGIT;
		break;
	case KS_RP_NUM_LF:
		if (c != '\n')
			return ks_rep_invalid(rp, avail, ev);
		rp->bytes++;
		if (ks_rep_number_done(rp, avail, ev))
			return avail;
		return 1;
	case KS_RP_BULK:
		used = ks_min_u32(rp->bulk_left, avail);
		rp->bulk_left -= used;
		if (rp->bulk_left == 0)
			rp->state = KS_RP_BULK_CR;
		break;
	case KS_RP_BULK_CR:
		if (c != '\r')
			return ks_rep_invalid(rp, avail, ev);
		rp->state = KS_RP_BULK_LF;
		break;
	case KS_RP_BULK_LF:
		if (c != '\n')
			return ks_rep_invalid(rp, avail, ev);
		rp->bytes++;
		ks_rep_element_done(rp, ev);
		return 1;
	default: /* KS_RP_LOST */
		return avail;
	}
	rp->bytes += used;
	return used;
}

/* ---- window-level steps -------------------------------------------------
 *
 * The BPF walkers hold a window of at most KS_SCRATCH bytes. These steps
 * consume a whole token at once when it lies inside the window (a number
 * line, a CRLF, up to KS_TOKEN_RUN bytes of a name, key or simple line) and
 * fall back to the byte-at-a-time machine above at window edges and on
 * anything unusual, which then reports errors exactly as before. Same events,
 * a fraction of the BPF instructions per request. Every access is masked to
 * the window, so no input can make them read outside it (see common.h).
 *
 * In BPF the two step functions are global functions defined once in
 * bpf/parse.bpf.c: the verifier then checks each on its own, once, instead of
 * again for every state of every caller (which exceeded its 1M-instruction
 * budget). Elsewhere they are ordinary inline functions.
 */
#if defined(__bpf__) && !defined(KS_PARSE_IMPL)
__u32 ks_req_step(struct ks_resp_req *st, const struct ks_window *win, __u32 pos, __u32 len, int *ev);
__u32 ks_rep_step(struct ks_resp_rep *rp, const struct ks_window *win, __u32 pos, __u32 len, int *ev);
#else
#define KS_TOKEN_RUN 48
#define KS_NUM_DIGITS_MAX 10

/* "<digits>\r\n" entirely inside the window: 1 and *num, *used (with CRLF);
 * 0 when it is not (or is not canonical): the byte path decides then. */
static __always_inline int ks_win_number(const __u8 *buf, __u32 pos, __u32 len, __u32 max, __u32 *num, __u32 *used)
{
	__u64 n = 0;
	__u32 i;
	__u8 c;

	for (i = 0; i < KS_NUM_DIGITS_MAX; i++) {
		if (pos + i >= len)
			return 0;
		c = KS_WIN_AT(buf, pos + i);
		if (c == '\r')
			break;
		if (c < '0' || c > '9')
			return 0;
		n = n * 10 + (c - '0');
	}
	if (i == 0 || i == KS_NUM_DIGITS_MAX || pos + i + 1 >= len || n > max)
		return 0;
	if (KS_WIN_AT(buf, pos + i + 1) != '\n')
		return 0;
	*num = (__u32)n;
	*used = i + 2;
	return 1;
}

/* Hash (and keep) up to KS_TOKEN_RUN bytes of the current name or key.
 * Returns 0 where the byte path must do it: a key resumed off a word's start
 * (it was split in mid-word), or crossing the hashed length. */
static __always_inline __u32 ks_req_token_run(struct ks_resp_req *st, const __u8 *buf, __u32 pos, __u32 len)
{
	__u32 n = ks_min_u32(ks_min_u32(st->bulk_left, len - pos), KS_TOKEN_RUN);
	__u32 k = st->key_len, i;
	__u64 h = st->hash;

	if (st->role == KS_ROLE_NAME) {
		for (i = 0; i < KS_TOKEN_RUN && i < n; i++)
			h = ks_fnv_byte(h, ks_upper(KS_WIN_AT(buf, pos + i)));
		st->hash = h;
	} else if ((k & 7) == 0 && k + n <= KS_KEY_HASH_MAX) {
		ks_kh_words(&st->hash, &st->kh_word, st->key, buf, pos, n, k);
	} else {
		return 0; /* off a word's start: the byte path takes it there */
	}
	st->key_len = k + n;
	st->bulk_left -= n;
	st->cmd_bytes += n;
	return n;
}

/* After the last CRLF of an argument: the next one, or the command's end. */
static __always_inline int ks_req_next_arg(struct ks_resp_req *st)
{
	st->argi++;
	if (st->argi >= st->argc) {
		st->state = KS_RQ_START;
		return KS_EV_END;
	}
	st->state = KS_RQ_BULK_HDR;
	return KS_EV_NONE;
}

/* "$<len>\r\n" at pos, entirely in the window: 1 and *num, *used (the
 * header's bytes after '$'); else 0. */
static __always_inline int ks_win_bulk_header(const __u8 *buf, __u32 pos, __u32 len, __u32 *num, __u32 *used)
{
	return pos < len && KS_WIN_AT(buf, pos) == '$' && ks_win_number(buf, pos + 1, len, KS_RESP_MAX_BULK, num, used);
}

/* The `num` bytes of a bulk string at p and their CRLF lie in the window. */
static __always_inline int ks_win_bulk_whole(const __u8 *buf, __u32 p, __u32 num, __u32 len)
{
	return p + num + 2 <= len && KS_WIN_AT(buf, p + num) == '\r' && KS_WIN_AT(buf, p + num + 1) == '\n';
}

/*
 * "$<len>\r\n" at pos and, when the whole argument and its CRLF are in the
 * window (names and keys up to KS_TOKEN_RUN bytes, values of any length),
 * the argument too. Returns the bytes consumed, 0 if the byte path must do it.
 */
static __always_inline __u32 ks_req_bulk_token(struct ks_resp_req *st, const __u8 *buf, __u32 pos, __u32 len, int *ev)
{
	__u32 num = 0, used = 0, p, i;
	__u64 h;

	if (!ks_win_bulk_header(buf, pos, len, &num, &used))
		return 0;
	p = pos + 1 + used;
	st->cmd_bytes += 1 + used;
	st->bulk_left = num;
	ks_req_begin_token(st);
	if (!ks_win_bulk_whole(buf, p, num, len) || (st->role != KS_ROLE_SKIP && num > KS_TOKEN_RUN)) {
		/* only the header: the argument continues past this window */
		if (num == 0) {
			st->state = KS_RQ_BULK_CR;
			*ev |= ks_req_end_token(st);
		} else {
			st->state = KS_RQ_BULK_DATA;
		}
		return 1 + used;
	}
	if (st->role == KS_ROLE_NAME) {
		h = st->hash;
		for (i = 0; i < KS_TOKEN_RUN && i < num; i++)
			h = ks_fnv_byte(h, ks_upper(KS_WIN_AT(buf, p + i)));
		st->hash = h;
	} else if (st->role == KS_ROLE_KEY) {
		ks_kh_words(&st->hash, &st->kh_word, st->key, buf, p, num, 0);
	}
	st->key_len = num;
	st->bulk_left = 0;
	st->cmd_bytes += num + 2;
	*ev |= ks_req_end_token(st);
	*ev |= ks_req_next_arg(st);
	return 1 + used + num + 2;
}

/*
 * "$<len>\r\n<value>\r\n" of an argument that is not a key, entirely in the
 * window, skipped without touching the key just reported (hash, key_len,
 * key). Returns the bytes consumed, 0 if a later step must do it.
 */
static __always_inline __u32 ks_req_skip_value(struct ks_resp_req *st, const __u8 *buf, __u32 pos, __u32 len, int *ev)
{
	__u32 num = 0, used = 0, p;

	if (st->state != KS_RQ_BULK_HDR || ks_req_is_key(st, st->argi) ||
	    !ks_win_bulk_header(buf, pos, len, &num, &used))
		return 0;
	p = pos + 1 + used;
	if (!ks_win_bulk_whole(buf, p, num, len))
		return 0;
	st->cmd_bytes += 1 + used + num + 2;
	*ev |= ks_req_next_arg(st);
	return 1 + used + num + 2;
}

/* One step over the window win->buf[0..len), at pos < len; same contract
 * as ks_req_feed(). */
KS_STEP_FN __u32 ks_req_step(struct ks_resp_req *st, const struct ks_window *win, __u32 pos, __u32 len, int *ev)
{
	const __u8 *buf;
	__u32 num = 0, used = 0, n;
	__u8 c;

	if (!st || !win || !ev || pos >= len || len > KS_SCRATCH)
		return 1; /* cannot happen; lets the verifier check this function alone */
	buf = win->buf;
	c = KS_WIN_AT(buf, pos);
	*ev = KS_EV_NONE;
	switch (st->state) {
	case KS_RQ_START:
		if (c != '*' || !ks_win_number(buf, pos + 1, len, KS_RESP_MAX_ARGS, &num, &used))
			break;
		st->argi = 0;
		st->nkeys = 0;
		st->flags = 0;
		st->cmd_bytes = 1 + used;
		if (num == 0)
			return 1 + used; /* "*0": ignored */
		st->argc = num;
		st->first_key = 0;
		st->state = KS_RQ_BULK_HDR;
		/* the command name usually follows in the same window */
		n = 1 + used + ks_req_bulk_token(st, buf, pos + 1 + used, len, ev);
		/* a name answered before: its key positions are known, so its first
		 * argument (a key, mostly) is taken in this step too */
		if ((*ev & KS_EV_CMD) && st->state == KS_RQ_BULK_HDR && ks_req_recall_spec(st)) {
			/* n goes through memory (num is free until the next '$'): the
			 * verifier then checks the second token once, not once for
			 * every length the name can have */
			st->num = n;
			n = *(volatile __u32 *)&st->num;
			n += ks_req_bulk_token(st, buf, pos + n, len, ev);
			/* and a value after it (SET's): one step per command */
			st->num = n;
			n = *(volatile __u32 *)&st->num;
			n += ks_req_skip_value(st, buf, pos + n, len, ev);
		}
		return n;
	case KS_RQ_BULK_HDR:
		n = ks_req_bulk_token(st, buf, pos, len, ev);
		if (!n)
			break;
		return n;
	case KS_RQ_BULK_DATA:
		if (st->role == KS_ROLE_SKIP)
			break; /* the byte path skips values whole already */
		n = ks_req_token_run(st, buf, pos, len);
		if (!n)
			break;
		if (st->bulk_left == 0) {
			st->state = KS_RQ_BULK_CR;
			*ev = ks_req_end_token(st);
		}
		return n;
	case KS_RQ_BULK_CR:
		if (c != '\r' || pos + 1 >= len || KS_WIN_AT(buf, pos + 1) != '\n')
			break;
		st->cmd_bytes += 2;
		*ev = ks_req_next_arg(st);
		return 2;
	default:
		break;
	}
	return ks_req_feed(st, c, len - pos, ev);
}

/* Up to KS_TOKEN_RUN bytes of a simple line; completes it when its CRLF is
 * in the window. Returns 0 when the byte path must look (window edge at the
 * first byte, a bare '\n'). */
static __always_inline __u32 ks_rep_line_run(struct ks_resp_rep *rp, const __u8 *buf, __u32 pos, __u32 len, int *ev)
{
	__u32 i;
	__u8 c;

	for (i = 0; i < KS_TOKEN_RUN; i++) {
		if (pos + i >= len)
			break;
		c = KS_WIN_AT(buf, pos + i);
		if (c == '\r') {
			if (pos + i + 1 >= len || KS_WIN_AT(buf, pos + i + 1) != '\n')
				break;
			rp->bytes += i + 2;
			ks_rep_element_done(rp, ev);
			return i + 2;
		}
		if (c == '\n')
			break;
		if ((rp->flags & KS_RPF_ERRLINE) && rp->errlen < 8) {
			rp->errhead[rp->errlen & 7] = c;
			rp->errlen++;
		}
	}
	rp->bytes += i;
	return i;
}

/* A length or count line ("-1" included) entirely in the window. */
static __always_inline __u32 ks_rep_number_run(struct ks_resp_rep *rp, const __u8 *buf, __u32 pos, __u32 len, int *ev)
{
	__u32 num = 0, used = 0, neg = 0;

	if (pos < len && KS_WIN_AT(buf, pos) == '-')
		neg = 1;
	if (!ks_win_number(buf, pos + neg, len, KS_RESP_MAX_COUNT, &num, &used))
		return 0;
	rp->num = num;
	if (neg)
		rp->flags |= KS_RPF_NEG;
	rp->bytes += neg + used;
	if (ks_rep_number_done(rp, len - pos, ev))
		return len - pos;
	return neg + used;
}

/* One step over the window; same contract as ks_rep_feed(). */
KS_STEP_FN __u32 ks_rep_step(struct ks_resp_rep *rp, const struct ks_window *win, __u32 pos, __u32 len, int *ev)
{
	const __u8 *buf;
	__u32 used = 0;
	__u8 c;

	if (!rp || !win || !ev || pos >= len || len > KS_SCRATCH)
		return 1;
	buf = win->buf;
	c = KS_WIN_AT(buf, pos);
	*ev = KS_EV_NONE;
	switch (rp->state) {
	case KS_RP_START:
		/* the type byte through the byte path, then its line or number */
		if (ks_rep_feed(rp, c, len - pos, ev) != 1 || *ev)
			return len - pos; /* invalid: the rest of the window is lost */
		if (pos + 1 >= len)
			return 1;
		if (rp->state == KS_RP_LINE)
			return 1 + ks_rep_line_run(rp, buf, pos + 1, len, ev);
		if (rp->state != KS_RP_NUM)
			return 1;
		used = 1 + ks_rep_number_run(rp, buf, pos + 1, len, ev);
		/* a blob whose payload and CRLF are in the window: skip it now */
		if (rp->state == KS_RP_BULK && pos + used + rp->bulk_left + 2 <= len &&
		    KS_WIN_AT(buf, pos + used + rp->bulk_left) == '\r' &&
		    KS_WIN_AT(buf, pos + used + rp->bulk_left + 1) == '\n') {
			used += rp->bulk_left + 2;
			rp->bytes += rp->bulk_left + 2;
			rp->bulk_left = 0;
			ks_rep_element_done(rp, ev);
		}
		return used;
	case KS_RP_LINE:
		used = ks_rep_line_run(rp, buf, pos, len, ev);
		if (used)
			return used;
		break;
	case KS_RP_BULK_CR:
		if (c != '\r' || pos + 1 >= len || KS_WIN_AT(buf, pos + 1) != '\n')
			break;
		rp->bytes += 2;
		ks_rep_element_done(rp, ev);
		return 2;
	default:
		break;
	}
	return ks_rep_feed(rp, c, len - pos, ev);
}
#endif /* step definitions */

#endif /* KS_PROTO_RESP_H */
