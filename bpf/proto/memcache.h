/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * memcache.h - resumable parsers for the memcached text protocol (classic
 * and meta commands), requests and replies.
 *
 * Same shape as resp.h: header-only C, no helpers, no buffer access of its
 * own. A step is handed one window of a chunk and a position, consumes at
 * least one byte and reports events as a bit mask (common.h). Per step the
 * work is bounded: at most one token of up to KS_MC_RUN bytes, a CRLF, and
 * the skip of a data block. Every window access is masked (KS_WIN_AT).
 *
 * Unlike RESP the parser knows the commands itself: on KS_EV_CMD it has set
 * st->cmd and st->cls and it reports the keys itself; no table is consulted.
 *
 * After malformed bytes a parser goes LOST: it skips the rest of the chunk
 * and resumes at the next chunk only if that chunk starts with a known
 * command (requests) or a known reply line (replies), the "strict" start.
 *
 * Binary protocol: a request starting with the magic byte 0x80 (a reply with
 * 0x81) is reported as KS_EV_BINARY and the rest of its chunk is skipped
 * unparsed (state BINARY, fast-skippable). Memcached fixes the protocol per
 * connection, so later chunks of that connection also start with the magic
 * (reported again: the caller counts binary chunks) or inside a binary body:
 * those are skipped silently, not counted as parse errors, until a chunk
 * parses as text again.
 *
 * Calling it, as bpf/count.bpf.h and bpf/walk.bpf.h call resp.h:
 *   chunk start       ks_mc_req_new_chunk(st) / ks_mc_rep_new_chunk(rp)
 *   before a window   n = ks_mc_*_fast_skip(st, avail); if (n) ks_mc_*_skip(st, n)
 *   in a window       ks_mc_*_step() until it is used up (>= 1 byte per step)
 *   TCP gap           ks_mc_*_lose()
 * In BPF the steps are global functions: bpf/parse.bpf.c, which defines
 * KS_PARSE_IMPL, must include this header to define them.
 *
 * No reply: NOREPLY at KS_EV_END ("noreply" last, or quit) means none will
 * come: queue nothing. QUIET (meta q) means the nominal reply is suppressed:
 * queue it marked quiet and match replies with ks_mc_quiet_reply().
 */
#ifndef KS_PROTO_MEMCACHE_H
#define KS_PROTO_MEMCACHE_H

#include "common.h"
#include "keyscope_abi.h" /* enum ks_cmd_class */

#define KS_MC_MAX_KEY 250	  /* memcached KEY_MAX_LENGTH: longer keys are invalid */
#define KS_MC_MAX_LINE 2048	  /* memcached drops longer lines (get/gets excepted) */
#define KS_MC_MAX_DATA (1U << 30) /* largest data block (memcached -I tops at 1 GiB) */
#define KS_MC_RUN 64		  /* token or text bytes one step handles at most */
#define KS_MC_BIN_REQ 0x80	  /* binary protocol magic, request */
#define KS_MC_BIN_REP 0x81	  /* binary protocol magic, response */

/* The first 8 bytes of a token, packed little-endian: "get" is
 * KS_MC_W('g', 'e', 't', 0, 0, 0, 0, 0). Longer words compare their first 8
 * bytes and their length. */
#define KS_MC_W(a, b, c, d, e, f, g, h)                                                                                \
	((__u64)(a) | ((__u64)(b) << 8) | ((__u64)(c) << 16) | ((__u64)(d) << 24) | ((__u64)(e) << 32) |               \
	 ((__u64)(f) << 40) | ((__u64)(g) << 48) | ((__u64)(h) << 56))

/* What a token is for; decided when its first byte is seen. */
enum ks_mc_role {
	KS_MC_ROLE_SKIP = 0, /* only its end matters */
	KS_MC_ROLE_WORD,     /* first 8 bytes packed into word (reply codes, "noreply") */
	KS_MC_ROLE_NAME,     /* command name: packed, and hashed upper-cased */
	KS_MC_ROLE_KEY,	     /* a key: hashed (and kept, in requests); KS_MC_MAX_KEY at most */
	KS_MC_ROLE_NUM,	     /* a data length: digits only, KS_MC_MAX_DATA at most */
	KS_MC_ROLE_OPAQUE,   /* meta O flag's value: hashed into opaque */
	KS_MC_ROLE_OFLAG,    /* the 'O' of an O flag: not hashed, then OPAQUE */
	KS_MC_ROLE_KFLAG,    /* the 'k' of a returned key flag (replies): then KEY */
};

static __always_inline int ks_mc_is_sep(__u8 c)
{
	return c == ' ' || c == '\r' || c == '\n';
}

static __always_inline __u64 ks_mc_pack(__u64 w, __u32 at, __u8 c)
{
	if (at < 8)
		w |= (__u64)c << (at * 8);
	return w;
}

/* ---- commands ------------------------------------------------------------ */

/* Commands, grouped so their class and layout are ranges. */
enum ks_mc_cmd {
	KS_MC_CMD_UNKNOWN = 0, /* not a command (or an empty name): memcached answers ERROR */
	/* reads: KS_CMD_READ */
	KS_MC_CMD_GET,	/* get <key>* */
	KS_MC_CMD_GETS, /* gets <key>* */
	KS_MC_CMD_GAT,	/* gat <exptime> <key>* */
	KS_MC_CMD_GATS, /* gats <exptime> <key>* */
	KS_MC_CMD_MG,	/* mg <key> <flag>* */
	KS_MC_CMD_ME,	/* me <key> [b] */
	/* writes followed by a data block: KS_CMD_WRITE */
	KS_MC_CMD_SET, /* set <key> <flags> <exptime> <bytes> [noreply] */
	KS_MC_CMD_ADD, /* add, replace, append, prepend: as set */
	KS_MC_CMD_REPLACE,
	KS_MC_CMD_APPEND,
	KS_MC_CMD_PREPEND,
	KS_MC_CMD_CAS, /* cas <key> <flags> <exptime> <bytes> <cas unique> [noreply] */
	KS_MC_CMD_MS,  /* ms <key> <datalen> <flag>* */
	/* other writes: KS_CMD_WRITE */
	KS_MC_CMD_INCR,	  /* incr <key> <value> [noreply] */
	KS_MC_CMD_DECR,	  /* decr <key> <value> [noreply] */
	KS_MC_CMD_DELETE, /* delete <key> [0] [noreply] */
	KS_MC_CMD_TOUCH,  /* touch <key> <exptime> [noreply] */
	KS_MC_CMD_MD,	  /* md <key> <flag>* */
	KS_MC_CMD_MA,	  /* ma <key> <flag>* */
	/* keyless: KS_CMD_KEYLESS */
	KS_MC_CMD_MN,
	KS_MC_CMD_VERSION,
	KS_MC_CMD_STATS,
	KS_MC_CMD_FLUSH_ALL,
	KS_MC_CMD_VERBOSITY,
	KS_MC_CMD_QUIT,
	KS_MC_CMD_SHUTDOWN,
	KS_MC_CMD_WATCH,
	KS_MC_CMD_ADMIN, /* slabs, lru, lru_crawler, cache_memlimit, extstore, debug... */
};

/* A command from its name (packed first 8 bytes and length). Names longer
 * than 8 bytes are told apart by those and their length only. */
static __always_inline __u8 ks_mc_cmd_of(__u64 w, __u32 len)
{
	switch (len) {
	case 2:
		if (w == KS_MC_W('m', 'g', 0, 0, 0, 0, 0, 0))
			return KS_MC_CMD_MG;
		if (w == KS_MC_W('m', 's', 0, 0, 0, 0, 0, 0))
			return KS_MC_CMD_MS;
		if (w == KS_MC_W('m', 'd', 0, 0, 0, 0, 0, 0))
			return KS_MC_CMD_MD;
		if (w == KS_MC_W('m', 'a', 0, 0, 0, 0, 0, 0))
			return KS_MC_CMD_MA;
		if (w == KS_MC_W('m', 'n', 0, 0, 0, 0, 0, 0))
			return KS_MC_CMD_MN;
		if (w == KS_MC_W('m', 'e', 0, 0, 0, 0, 0, 0))
			return KS_MC_CMD_ME;
		break;
	case 3:
		if (w == KS_MC_W('g', 'e', 't', 0, 0, 0, 0, 0))
			return KS_MC_CMD_GET;
		if (w == KS_MC_W('s', 'e', 't', 0, 0, 0, 0, 0))
			return KS_MC_CMD_SET;
		if (w == KS_MC_W('g', 'a', 't', 0, 0, 0, 0, 0))
			return KS_MC_CMD_GAT;
		if (w == KS_MC_W('a', 'd', 'd', 0, 0, 0, 0, 0))
			return KS_MC_CMD_ADD;
		if (w == KS_MC_W('c', 'a', 's', 0, 0, 0, 0, 0))
			return KS_MC_CMD_CAS;
		if (w == KS_MC_W('l', 'r', 'u', 0, 0, 0, 0, 0))
			return KS_MC_CMD_ADMIN;
		break;
	case 4:
		if (w == KS_MC_W('g', 'e', 't', 's', 0, 0, 0, 0))
			return KS_MC_CMD_GETS;
		if (w == KS_MC_W('g', 'a', 't', 's', 0, 0, 0, 0))
			return KS_MC_CMD_GATS;
		if (w == KS_MC_W('i', 'n', 'c', 'r', 0, 0, 0, 0))
			return KS_MC_CMD_INCR;
		if (w == KS_MC_W('d', 'e', 'c', 'r', 0, 0, 0, 0))
			return KS_MC_CMD_DECR;
		if (w == KS_MC_W('q', 'u', 'i', 't', 0, 0, 0, 0))
			return KS_MC_CMD_QUIT;
		break;
	case 5:
		if (w == KS_MC_W('t', 'o', 'u', 'c', 'h', 0, 0, 0))
			return KS_MC_CMD_TOUCH;
		if (w == KS_MC_W('s', 't', 'a', 't', 's', 0, 0, 0))
			return KS_MC_CMD_STATS;
		if (w == KS_MC_W('w', 'a', 't', 'c', 'h', 0, 0, 0))
			return KS_MC_CMD_WATCH;
		if (w == KS_MC_W('s', 'l', 'a', 'b', 's', 0, 0, 0))
			return KS_MC_CMD_ADMIN;
		break;
	case 6:
		if (w == KS_MC_W('d', 'e', 'l', 'e', 't', 'e', 0, 0))
			return KS_MC_CMD_DELETE;
		if (w == KS_MC_W('a', 'p', 'p', 'e', 'n', 'd', 0, 0))
			return KS_MC_CMD_APPEND;
		break;
	case 7:
		if (w == KS_MC_W('r', 'e', 'p', 'l', 'a', 'c', 'e', 0))
			return KS_MC_CMD_REPLACE;
		if (w == KS_MC_W('p', 'r', 'e', 'p', 'e', 'n', 'd', 0))
			return KS_MC_CMD_PREPEND;
		if (w == KS_MC_W('v', 'e', 'r', 's', 'i', 'o', 'n', 0))
			return KS_MC_CMD_VERSION;
		break;
	case 8:
		if (w == KS_MC_W('s', 'h', 'u', 't', 'd', 'o', 'w', 'n'))
			return KS_MC_CMD_SHUTDOWN;
		if (w == KS_MC_W('e', 'x', 't', 's', 't', 'o', 'r', 'e'))
			return KS_MC_CMD_ADMIN;
		break;
	case 9:
		if (w == KS_MC_W('f', 'l', 'u', 's', 'h', '_', 'a', 'l')) /* flush_all */
			return KS_MC_CMD_FLUSH_ALL;
		if (w == KS_MC_W('v', 'e', 'r', 'b', 'o', 's', 'i', 't')) /* verbosity */
			return KS_MC_CMD_VERBOSITY;
		if (w == KS_MC_W('d', 'e', 'b', 'u', 'g', 't', 'i', 'm') || /* debugtime */
		    w == KS_MC_W('d', 'e', 'b', 'u', 'g', 'i', 't', 'e') || /* debugitem */
		    w == KS_MC_W('m', 'i', 's', 'b', 'e', 'h', 'a', 'v'))   /* misbehave */
			return KS_MC_CMD_ADMIN;
		break;
	case 11:
		if (w == KS_MC_W('l', 'r', 'u', '_', 'c', 'r', 'a', 'w')) /* lru_crawler */
			return KS_MC_CMD_ADMIN;
		break;
	case 13:
		if (w == KS_MC_W('r', 'e', 'f', 'r', 'e', 's', 'h', '_')) /* refresh_certs */
			return KS_MC_CMD_ADMIN;
		break;
	case 14:
		if (w == KS_MC_W('c', 'a', 'c', 'h', 'e', '_', 'm', 'e')) /* cache_memlimit */
			return KS_MC_CMD_ADMIN;
		break;
	default:
		break;
	}
	return KS_MC_CMD_UNKNOWN;
}

static __always_inline __u8 ks_mc_cmd_class(__u8 cmd)
{
	if (cmd == KS_MC_CMD_UNKNOWN)
		return KS_CMD_UNKNOWN;
	if (cmd <= KS_MC_CMD_ME)
		return KS_CMD_READ;
	if (cmd <= KS_MC_CMD_MA)
		return KS_CMD_WRITE;
	return KS_CMD_KEYLESS;
}

static __always_inline int ks_mc_cmd_is_meta(__u8 cmd)
{
	return cmd == KS_MC_CMD_MG || cmd == KS_MC_CMD_ME || cmd == KS_MC_CMD_MS || cmd == KS_MC_CMD_MD ||
	       cmd == KS_MC_CMD_MA || cmd == KS_MC_CMD_MN;
}

/* Does a trailing "noreply" token silence the reply (memcached checks the
 * last token of every non-retrieval, non-meta command)? */
static __always_inline int ks_mc_cmd_noreply_ok(__u8 cmd)
{
	return !(cmd >= KS_MC_CMD_GET && cmd <= KS_MC_CMD_ME) && !ks_mc_cmd_is_meta(cmd) && cmd != KS_MC_CMD_VERSION &&
	       cmd != KS_MC_CMD_STATS && cmd != KS_MC_CMD_WATCH;
}

/* Only get and gets lines may exceed KS_MC_MAX_LINE (large multi-gets). */
static __always_inline int ks_mc_cmd_unbounded(__u8 cmd)
{
	return cmd == KS_MC_CMD_GET || cmd == KS_MC_CMD_GETS;
}

/* ---- requests -------------------------------------------------------------
 *
 *   <name> <token>* [noreply]\r\n                 classic (a bare \n ends a line too)
 *   <name> <key> <flags> <exptime> <bytes> [<cas>] [noreply]\r\n <bytes of data>\r\n
 *   mg|md|ma|me <key> <flag>*\r\n                  meta; flags: q (quiet), O<opaque>, ...
 *   ms <key> <datalen> <flag>*\r\n <datalen bytes of data>\r\n
 *   0x80 ...                                       binary protocol: skipped
 *
 *   Tokens are separated by runs of spaces; the name ends at the first space
 *   (a line starting with a space has an empty name: memcached answers ERROR,
 *   so it is a command, UNKNOWN, with no KS_EV_CMD). Every line is a command,
 *   an empty one too. Data blocks are skipped whole, never looked at.
 *
 * Events (in this order within one step): KS_EV_CMD when the name ends
 * (st->cmd, st->cls, st->hash = FNV-1a of the upper-cased name), KS_EV_KEY
 * per key (st->hash, st->key, st->key_len, st->nkeys), KS_EV_END when the
 * command ends, after its data block (st->cmd_bytes, st->flags: NOREPLY,
 * QUIET, OPAQUE, DATA; st->data_len). Fields stay valid until the next step.
 */
enum ks_mc_rq_state {
	KS_MC_RQ_START = 0, /* before the first byte of a command line */
	KS_MC_RQ_SPACE,	    /* between tokens */
	KS_MC_RQ_TOKEN,	    /* inside a token */
	KS_MC_RQ_LF,	    /* after the line's '\r' */
	KS_MC_RQ_DATA,	    /* inside a data block: data_left bytes to skip */
	KS_MC_RQ_DATA_CR,   /* after a data block: its "\r\n" */
	KS_MC_RQ_DATA_LF,
	KS_MC_RQ_BINARY, /* a binary-protocol chunk: skipped to its end */
	KS_MC_RQ_LOST,	 /* after malformed input: skipped to the chunk's end */
};

/* ks_mc_req.flags; the first four are for the caller, valid at KS_EV_END */
#define KS_MC_RQF_NOREPLY 1 /* no reply will come: "noreply", or quit */
#define KS_MC_RQF_QUIET 2   /* meta q flag: the nominal reply is suppressed (see ks_mc_quiet_reply) */
#define KS_MC_RQF_OPAQUE 4  /* meta O flag: st->opaque holds its hash */
#define KS_MC_RQF_DATA 8    /* a data block of st->data_len bytes followed the line */
/* parser-internal */
#define KS_MC_RQF_STRICT 16   /* after a resync: the line must name a known command */
#define KS_MC_RQF_BIN 32      /* the previous chunk was binary: failures are silent */
#define KS_MC_RQF_LASTNR 64   /* the last token so far is "noreply" */
#define KS_MC_RQF_HAVELEN 128 /* the data length token was seen */

struct ks_mc_req {
	__u8 state; /* enum ks_mc_rq_state */
	__u8 role;  /* enum ks_mc_role of the current token */
	__u16 flags;
	__u8 cmd; /* enum ks_mc_cmd of the current command (from KS_EV_CMD) */
	__u8 cls; /* enum ks_cmd_class, with cmd */
	__u16 _pad0;
	__u32 tok;	 /* index of the current token; 0 is the name */
	__u32 key_len;	 /* bytes of the current token: the key's length at KS_EV_KEY */
	__u32 line_len;	 /* bytes of the command line so far */
	__u32 num;	 /* data length being parsed */
	__u32 data_len;	 /* the command's data block length (KS_MC_RQF_DATA) */
	__u32 data_left; /* data block bytes still to skip */
	__u32 cmd_bytes; /* bytes of the command so far, data block included */
	__u32 nkeys;	 /* keys in the current command so far */
	__u32 run;	 /* window step scratch: see ks_mc_reload() */
	__u32 _pad1;
	__u64 word;    /* first 8 bytes of the current token, packed */
	__u64 hash;    /* FNV-1a of the command name (upper-cased), key hash (common.h) of a key */
	__u64 kh_word; /* key bytes not yet mixed into hash (ks_kh_byte) */
	__u64 opaque;  /* FNV-1a of the meta O flag's value (KS_MC_RQF_OPAQUE) */
	__u8 key[KS_KEY_MAX];
};

static __always_inline void ks_mc_req_reset(struct ks_mc_req *st)
{
	st->state = KS_MC_RQ_START;
	st->flags = 0;
	st->cmd = KS_MC_CMD_UNKNOWN;
	st->cls = KS_CMD_UNKNOWN;
	st->nkeys = 0;
	st->cmd_bytes = 0;
}

/* Call at the start of every chunk (segment, read buffer). */
static __always_inline void ks_mc_req_new_chunk(struct ks_mc_req *st)
{
	if (st->state == KS_MC_RQ_LOST) {
		ks_mc_req_reset(st);
		st->flags = KS_MC_RQF_STRICT;
	} else if (st->state == KS_MC_RQ_BINARY || (st->flags & KS_MC_RQF_BIN)) {
		/* after a binary chunk, until a chunk names a known command */
		ks_mc_req_reset(st);
		st->flags = KS_MC_RQF_STRICT | KS_MC_RQF_BIN;
	}
}

/* Drop what is known of the stream and wait for a chunk that starts with a
 * command (TCP gaps, attaching to a connection mid-stream). */
static __always_inline void ks_mc_req_lose(struct ks_mc_req *st)
{
	st->state = KS_MC_RQ_LOST;
}

/* Bytes at the current position that need not be looked at, nor copied:
 * the rest of a lost or binary chunk, or data block bytes when they reach
 * the end of the chunk (`avail` bytes left in it) or fill a window. 0: parse
 * them. Consume them with ks_mc_req_skip(). */
static __always_inline __u32 ks_mc_req_fast_skip(const struct ks_mc_req *st, __u32 avail)
{
	if (st->state == KS_MC_RQ_LOST || st->state == KS_MC_RQ_BINARY)
		return avail;
	if (st->state == KS_MC_RQ_DATA && (st->data_left >= avail || st->data_left >= KS_SCRATCH))
		return ks_min_u32(st->data_left, avail);
	return 0;
}

/* Malformed input: LOST (KS_EV_INVALID), or silently BINARY when the stream
 * was binary just before (a chunk starting inside a binary body). */
static __always_inline int ks_mc_req_fail(struct ks_mc_req *st)
{
	if (st->flags & KS_MC_RQF_BIN) {
		st->state = KS_MC_RQ_BINARY;
		return KS_EV_NONE;
	}
	st->state = KS_MC_RQ_LOST;
	return KS_EV_INVALID;
}

static __always_inline void ks_mc_req_begin_cmd(struct ks_mc_req *st)
{
	st->flags &= KS_MC_RQF_STRICT | KS_MC_RQF_BIN;
	st->cmd = KS_MC_CMD_UNKNOWN;
	st->cls = KS_CMD_UNKNOWN;
	st->tok = 0;
	st->nkeys = 0;
	st->line_len = 0;
	st->cmd_bytes = 0;
	st->data_len = 0;
	st->opaque = 0;
	st->state = KS_MC_RQ_SPACE;
}

/* The role of the token starting with byte c. */
static __always_inline __u8 ks_mc_req_role(struct ks_mc_req *st, __u8 c)
{
	__u32 t = st->tok;
	__u8 cmd = st->cmd;

	if (t == 0)
		return KS_MC_ROLE_NAME;
	if (cmd == KS_MC_CMD_GET || cmd == KS_MC_CMD_GETS)
		return KS_MC_ROLE_KEY;
	if (cmd == KS_MC_CMD_GAT || cmd == KS_MC_CMD_GATS)
		return t >= 2 ? KS_MC_ROLE_KEY : KS_MC_ROLE_SKIP;
	if (cmd == KS_MC_CMD_UNKNOWN || cmd > KS_MC_CMD_MA)
		return KS_MC_ROLE_WORD; /* keyless: only a trailing "noreply" matters */
	if (t == 1)
		return KS_MC_ROLE_KEY;
	if (ks_mc_cmd_is_meta(cmd)) {
		if (cmd == KS_MC_CMD_MS && t == 2)
			return KS_MC_ROLE_NUM;
		/* meta flags: one letter, maybe a value glued to it */
		if (c == 'q')
			st->flags |= KS_MC_RQF_QUIET;
		return c == 'O' ? KS_MC_ROLE_OFLAG : KS_MC_ROLE_SKIP;
	}
	if (t == 4 && cmd >= KS_MC_CMD_SET && cmd <= KS_MC_CMD_CAS)
		return KS_MC_ROLE_NUM;
	return KS_MC_ROLE_WORD;
}

static __always_inline void ks_mc_req_begin_token(struct ks_mc_req *st, __u8 c)
{
	st->key_len = 0;
	st->word = 0;
	st->num = 0;
	st->role = ks_mc_req_role(st, c);
	st->hash = st->role == KS_MC_ROLE_KEY ? KS_KH_SEED : KS_FNV_OFFSET;
	st->kh_word = 0;
}

/* One byte of the current token; 0 when it makes the command malformed. */
static __always_inline int ks_mc_req_token_byte(struct ks_mc_req *st, __u8 c)
{
	__u32 n = st->key_len;

	switch (st->role) {
	case KS_MC_ROLE_NAME:
		st->hash = ks_fnv_byte(st->hash, ks_upper(c));
		st->word = ks_mc_pack(st->word, n, c);
		break;
	case KS_MC_ROLE_WORD:
		st->word = ks_mc_pack(st->word, n, c);
		break;
	case KS_MC_ROLE_KEY:
		if (n >= KS_MC_MAX_KEY)
			return 0;
		st->hash = ks_kh_byte(st->hash, &st->kh_word, n, c);
		if (n < KS_KEY_MAX)
			st->key[n & (KS_KEY_MAX - 1)] = c;
		break;
	case KS_MC_ROLE_NUM:
		if (!ks_digit(&st->num, c, KS_MC_MAX_DATA))
			return 0;
		break;
	case KS_MC_ROLE_OFLAG:
		st->role = KS_MC_ROLE_OPAQUE; /* the flag letter is not part of the value */
		return 1;
	case KS_MC_ROLE_OPAQUE:
		st->hash = ks_fnv_byte(st->hash, c);
		break;
	default:
		break;
	}
	st->key_len = n + 1;
	return 1;
}

/* The current token ended: its event (KS_EV_INVALID if the name is not a
 * command while a known one is required). */
static __always_inline int ks_mc_req_end_token(struct ks_mc_req *st)
{
	__u8 role = st->role;

	st->flags &= ~KS_MC_RQF_LASTNR;
	st->tok++;
	switch (role) {
	case KS_MC_ROLE_NAME:
		st->cmd = ks_mc_cmd_of(st->word, st->key_len);
		st->cls = ks_mc_cmd_class(st->cmd);
		if (st->flags & KS_MC_RQF_STRICT) {
			if (st->cmd == KS_MC_CMD_UNKNOWN)
				return ks_mc_req_fail(st);
			st->flags &= ~(KS_MC_RQF_STRICT | KS_MC_RQF_BIN);
		}
		return KS_EV_CMD;
	case KS_MC_ROLE_KEY:
		st->hash = ks_kh_finish(st->hash, st->kh_word, st->key_len);
		st->nkeys++;
		return KS_EV_KEY;
	case KS_MC_ROLE_NUM:
		st->data_len = st->num;
		st->flags |= KS_MC_RQF_HAVELEN;
		break;
	case KS_MC_ROLE_OPAQUE:
		st->opaque = st->hash;
		st->flags |= KS_MC_RQF_OPAQUE;
		break;
	case KS_MC_ROLE_WORD:
		if (st->key_len == 7 && st->word == KS_MC_W('n', 'o', 'r', 'e', 'p', 'l', 'y', 0))
			st->flags |= KS_MC_RQF_LASTNR;
		break;
	default:
		break;
	}
	return KS_EV_NONE;
}

/* The command line ended (its '\n' counted): a data block, or the end. */
static __always_inline int ks_mc_req_line_end(struct ks_mc_req *st)
{
	__u8 cmd = st->cmd;

	if (st->flags & KS_MC_RQF_STRICT)
		return ks_mc_req_fail(st); /* no known command on the line */
	if (((st->flags & KS_MC_RQF_LASTNR) && ks_mc_cmd_noreply_ok(cmd)) || cmd == KS_MC_CMD_QUIT)
		st->flags |= KS_MC_RQF_NOREPLY;
	/* memcached reads a data block only once it has its length token */
	if ((st->flags & KS_MC_RQF_HAVELEN) && cmd >= KS_MC_CMD_SET && cmd <= KS_MC_CMD_MS) {
		st->flags |= KS_MC_RQF_DATA;
		st->data_left = st->data_len;
		st->state = st->data_len ? KS_MC_RQ_DATA : KS_MC_RQ_DATA_CR;
		return KS_EV_NONE;
	}
	st->state = KS_MC_RQ_START;
	return KS_EV_END;
}

/* A byte of the command line in state SPACE or TOKEN. */
static __always_inline int ks_mc_req_line_byte(struct ks_mc_req *st, __u8 c)
{
	int e = KS_EV_NONE;

	st->line_len++;
	st->cmd_bytes++;
	if (st->line_len > KS_MC_MAX_LINE && !ks_mc_cmd_unbounded(st->cmd))
		return ks_mc_req_fail(st);
	if (ks_mc_is_sep(c)) {
		if (st->state == KS_MC_RQ_TOKEN) {
			e = ks_mc_req_end_token(st);
			if (st->state >= KS_MC_RQ_BINARY)
				return e;
			st->state = KS_MC_RQ_SPACE;
		}
		if (c == '\r')
			st->state = KS_MC_RQ_LF;
		else if (c == '\n')
			e |= ks_mc_req_line_end(st);
		return e;
	}
	if (st->state != KS_MC_RQ_TOKEN) {
		ks_mc_req_begin_token(st, c);
		st->state = KS_MC_RQ_TOKEN;
	}
	if (!ks_mc_req_token_byte(st, c))
		return ks_mc_req_fail(st);
	return e;
}

/*
 * Feed the parser one byte: `c` is the byte at the current position and
 * `avail` >= 1 the bytes available from there in this chunk. Returns the
 * bytes consumed (always >= 1; a data block, a lost or a binary chunk may be
 * consumed up to `avail` at once, so c may be anything then) and sets *ev.
 */
static __always_inline __u32 ks_mc_req_feed(struct ks_mc_req *st, __u8 c, __u32 avail, int *ev)
{
	__u32 used = 1;
	int e = KS_EV_NONE;

	*ev = KS_EV_NONE;
	switch (st->state) {
	case KS_MC_RQ_START:
		if (c == KS_MC_BIN_REQ) {
			st->state = KS_MC_RQ_BINARY;
			*ev = KS_EV_BINARY;
			return avail;
		}
		ks_mc_req_begin_cmd(st);
		if (c == ' ')
			st->tok = 1; /* the name ends at the first space: empty */
		e = ks_mc_req_line_byte(st, c);
		break;
	case KS_MC_RQ_SPACE:
	case KS_MC_RQ_TOKEN:
		e = ks_mc_req_line_byte(st, c);
		break;
	case KS_MC_RQ_LF:
		if (c != '\n') {
			e = ks_mc_req_fail(st);
			break;
		}
		st->line_len++;
		st->cmd_bytes++;
		e = ks_mc_req_line_end(st);
		break;
	case KS_MC_RQ_DATA:
		used = ks_min_u32(st->data_left, avail);
		st->data_left -= used;
		st->cmd_bytes += used;
		if (st->data_left == 0)
			st->state = KS_MC_RQ_DATA_CR;
		break;
	case KS_MC_RQ_DATA_CR:
		if (c != '\r') {
			e = ks_mc_req_fail(st);
			break;
		}
		st->cmd_bytes++;
		st->state = KS_MC_RQ_DATA_LF;
		break;
	case KS_MC_RQ_DATA_LF:
		if (c != '\n') {
			e = ks_mc_req_fail(st);
			break;
		}
		st->cmd_bytes++;
		st->state = KS_MC_RQ_START;
		e = KS_EV_END;
		break;
	default: /* LOST, BINARY: skip the rest of this chunk */
		return avail;
	}
	if (st->state >= KS_MC_RQ_BINARY) {
		/* the rest of the chunk is lost: INVALID (or nothing) comes alone */
		*ev = e & KS_EV_INVALID;
		return avail;
	}
	*ev = e;
	return used;
}

/* Consume `n` bytes ks_mc_req_fast_skip() allowed, without their content. */
static __always_inline void ks_mc_req_skip(struct ks_mc_req *st, __u32 n)
{
	int ev = 0;

	if (n)
		ks_mc_req_feed(st, 0, n, &ev);
}

/* ---- replies ----------------------------------------------------------------
 *
 *   VALUE <key> <flags> <bytes> [<cas>]\r\n <bytes of data>\r\n   x hits, then
 *   END\r\n                                    one reply (get/gets/gat/gats)
 *   STAT <name> <value>\r\n ... END\r\n        one reply (stats; ITEM lines too)
 *   STORED | NOT_STORED | EXISTS | NOT_FOUND | DELETED | TOUCHED | OK\r\n
 *   <digits>\r\n                               incr/decr
 *   VERSION <text>\r\n
 *   ERROR [<text>] | CLIENT_ERROR <text> | SERVER_ERROR <text>\r\n  (error)
 *   VA <size> <flag>*\r\n <size bytes of data>\r\n              meta hit
 *   HD | EN | NF | NS | EX | MN <flag>*\r\n    meta; flags k<key>, O<opaque>
 *   ME <key> <k>=<v>*\r\n                      meta debug
 *   <UPPER-CASE WORD> [<text>]\r\n             others (RESET, BUSY, ...)
 *   0x81 ...                                   binary protocol: skipped
 *
 * Events: KS_EV_VALUE when a VALUE or VA line ends, before its data
 * (rp->value_len, rp->hits so far, rp->key_hash and rp->key_len when
 * KS_MC_RPF_KEY: always for VALUE, with the k flag for VA); KS_EV_REPLY when
 * the reply is complete (rp->kind, rp->flags, rp->hits, rp->value_bytes,
 * rp->bytes; rp->opaque with KS_MC_RPF_OPAQUE). A VA whose data is in the
 * window gives VALUE | REPLY in one step: handle VALUE first.
 *
 * Lines memcached never sends as a reply (lower case first, e.g. "watch" or
 * "lru_crawler metadump" streams) are INVALID.
 */
enum ks_mc_rp_state {
	KS_MC_RP_START = 0, /* before the first byte of a reply line */
	KS_MC_RP_SPACE,
	KS_MC_RP_TOKEN,
	KS_MC_RP_TEXT, /* free text up to the line's end */
	KS_MC_RP_LF,
	KS_MC_RP_DATA,
	KS_MC_RP_DATA_CR,
	KS_MC_RP_DATA_LF,
	KS_MC_RP_BINARY,
	KS_MC_RP_LOST,
};

/* What a reply (at KS_EV_REPLY) or the line being parsed is. */
enum ks_mc_rp_kind {
	KS_MC_RK_NONE = 0,
	KS_MC_RK_END, /* END: a retrieval (rp->hits VALUE blocks) or a STAT list */
	KS_MC_RK_STORED,
	KS_MC_RK_NOT_STORED,
	KS_MC_RK_EXISTS,
	KS_MC_RK_NOT_FOUND,
	KS_MC_RK_DELETED,
	KS_MC_RK_TOUCHED,
	KS_MC_RK_OK,
	KS_MC_RK_NUMBER, /* incr/decr result */
	KS_MC_RK_VERSION,
	KS_MC_RK_ERROR, /* also "ERROR: <text>" */
	KS_MC_RK_CLIENT_ERROR,
	KS_MC_RK_SERVER_ERROR,
	KS_MC_RK_VA, /* meta hit with a value (rp->hits = 1) */
	KS_MC_RK_HD, /* meta success (an mg hit without v) */
	KS_MC_RK_EN, /* meta miss */
	KS_MC_RK_NF,
	KS_MC_RK_NS,
	KS_MC_RK_EX,
	KS_MC_RK_MN,
	KS_MC_RK_ME,
	KS_MC_RK_OTHER, /* another upper-case word */
	/* lines inside a multi-line reply, never a reply's kind */
	KS_MC_RK_VALUE,
	KS_MC_RK_STAT,
};

/* ks_mc_rep.flags */
#define KS_MC_RPF_ERROR 1  /* ERROR, CLIENT_ERROR, SERVER_ERROR (same bit as KS_RPF_ERROR) */
#define KS_MC_RPF_KEY 2	   /* rp->key_hash / key_len hold this line's key */
#define KS_MC_RPF_OPAQUE 4 /* rp->opaque holds the O flag's hash */
/* parser-internal */
#define KS_MC_RPF_MULTI 8    /* inside VALUE / STAT lines: END completes the reply */
#define KS_MC_RPF_STRICT 16  /* after a resync: the line must be a known reply */
#define KS_MC_RPF_BIN 32     /* the previous chunk was binary: failures are silent */
#define KS_MC_RPF_HAVELEN 64 /* the data length token was seen */

struct ks_mc_rep {
	__u8 state; /* enum ks_mc_rp_state */
	__u8 role;  /* enum ks_mc_role of the current token */
	__u16 flags;
	__u8 kind; /* enum ks_mc_rp_kind of the current line / the reply */
	__u8 _pad0[3];
	__u32 tok;	 /* index of the current token on the line */
	__u32 tok_len;	 /* bytes of the current token */
	__u32 line_len;	 /* bytes of the current line so far */
	__u32 num;	 /* data length being parsed */
	__u32 data_left; /* data block bytes still to skip */
	__u32 value_len; /* data length of the last VALUE / VA line (KS_EV_VALUE) */
	__u32 hits;	 /* VALUE / VA blocks in the reply */
	__u32 key_len;	 /* length of the key in key_hash */
	__u32 run;	 /* window step scratch: see ks_mc_reload() */
	__u32 _pad1;
	__u64 word;	   /* first 8 bytes of the line's first token, packed */
	__u64 hash;	   /* running key hash (common.h) of a key, FNV-1a of an opaque token */
	__u64 kh_word;	   /* key bytes not yet mixed into hash (ks_kh_byte) */
	__u64 key_hash;	   /* key hash of the key of a VALUE line or k flag (KS_MC_RPF_KEY) */
	__u64 opaque;	   /* FNV-1a of the O flag's value (KS_MC_RPF_OPAQUE) */
	__u64 value_bytes; /* data bytes of the reply */
	__u64 bytes;	   /* all bytes of the reply */
};

static __always_inline void ks_mc_rep_reset(struct ks_mc_rep *rp)
{
	rp->state = KS_MC_RP_START;
	rp->flags = 0;
	rp->kind = KS_MC_RK_NONE;
}

static __always_inline void ks_mc_rep_new_chunk(struct ks_mc_rep *rp)
{
	if (rp->state == KS_MC_RP_LOST) {
		ks_mc_rep_reset(rp);
		rp->flags = KS_MC_RPF_STRICT;
	} else if (rp->state == KS_MC_RP_BINARY || (rp->flags & KS_MC_RPF_BIN)) {
		ks_mc_rep_reset(rp);
		rp->flags = KS_MC_RPF_STRICT | KS_MC_RPF_BIN;
	}
}

static __always_inline void ks_mc_rep_lose(struct ks_mc_rep *rp)
{
	rp->state = KS_MC_RP_LOST;
}

/* Same contract as ks_mc_req_fast_skip(). */
static __always_inline __u32 ks_mc_rep_fast_skip(const struct ks_mc_rep *rp, __u32 avail)
{
	if (rp->state == KS_MC_RP_LOST || rp->state == KS_MC_RP_BINARY)
		return avail;
	if (rp->state == KS_MC_RP_DATA && (rp->data_left >= avail || rp->data_left >= KS_SCRATCH))
		return ks_min_u32(rp->data_left, avail);
	return 0;
}

static __always_inline int ks_mc_rep_fail(struct ks_mc_rep *rp)
{
	if (rp->flags & KS_MC_RPF_BIN) {
		rp->state = KS_MC_RP_BINARY;
		return KS_EV_NONE;
	}
	rp->state = KS_MC_RP_LOST;
	return KS_EV_INVALID;
}

static __always_inline int ks_mc_rep_is_error(__u8 kind)
{
	return kind == KS_MC_RK_ERROR || kind == KS_MC_RK_CLIENT_ERROR || kind == KS_MC_RK_SERVER_ERROR;
}

/* Kinds whose line goes on with meta flags (tokens) rather than free text. */
static __always_inline int ks_mc_rep_has_tokens(__u8 kind)
{
	return kind == KS_MC_RK_VALUE || (kind >= KS_MC_RK_VA && kind <= KS_MC_RK_MN);
}

static __always_inline void ks_mc_rep_begin_line(struct ks_mc_rep *rp)
{
	if (!(rp->flags & KS_MC_RPF_MULTI)) {
		/* a new reply */
		rp->flags &= KS_MC_RPF_STRICT | KS_MC_RPF_BIN;
		rp->hits = 0;
		rp->value_bytes = 0;
		rp->bytes = 0;
		rp->value_len = 0;
		rp->opaque = 0;
	}
	rp->flags &= ~(KS_MC_RPF_KEY | KS_MC_RPF_HAVELEN);
	rp->kind = KS_MC_RK_NONE;
	rp->tok = 0;
	rp->line_len = 0;
	rp->word = 0;
	rp->state = KS_MC_RP_SPACE;
}

static __always_inline __u8 ks_mc_rep_role(const struct ks_mc_rep *rp, __u8 c)
{
	__u32 t = rp->tok;

	if (t == 0)
		return KS_MC_ROLE_WORD;
	if (rp->kind == KS_MC_RK_VALUE)
		return t == 1 ? KS_MC_ROLE_KEY : t == 3 ? KS_MC_ROLE_NUM : KS_MC_ROLE_SKIP;
	if (rp->kind == KS_MC_RK_VA && t == 1)
		return KS_MC_ROLE_NUM;
	/* meta return flags */
	if (c == 'k')
		return KS_MC_ROLE_KFLAG;
	if (c == 'O')
		return KS_MC_ROLE_OFLAG;
	return KS_MC_ROLE_SKIP;
}

static __always_inline void ks_mc_rep_begin_token(struct ks_mc_rep *rp, __u8 c)
{
	rp->tok_len = 0;
	rp->num = 0;
	rp->role = ks_mc_rep_role(rp, c);
	/* a k flag's value is a key */
	rp->hash = rp->role == KS_MC_ROLE_KEY || rp->role == KS_MC_ROLE_KFLAG ? KS_KH_SEED : KS_FNV_OFFSET;
	rp->kh_word = 0;
}

static __always_inline int ks_mc_rep_token_byte(struct ks_mc_rep *rp, __u8 c)
{
	__u32 n = rp->tok_len;

	switch (rp->role) {
	case KS_MC_ROLE_WORD:
		rp->word = ks_mc_pack(rp->word, n, c);
		break;
	case KS_MC_ROLE_KEY:
		if (n >= KS_MC_MAX_KEY)
			return 0;
		rp->hash = ks_kh_byte(rp->hash, &rp->kh_word, n, c);
		break;
	case KS_MC_ROLE_NUM:
		if (!ks_digit(&rp->num, c, KS_MC_MAX_DATA))
			return 0;
		break;
	case KS_MC_ROLE_KFLAG:
		rp->role = KS_MC_ROLE_KEY;
		return 1;
	case KS_MC_ROLE_OFLAG:
		rp->role = KS_MC_ROLE_OPAQUE;
		return 1;
	case KS_MC_ROLE_OPAQUE:
		rp->hash = ks_fnv_byte(rp->hash, c);
		break;
	default:
		break;
	}
	rp->tok_len = n + 1;
	return 1;
}

/* The kind of a line from its first token. */
static __always_inline __u8 ks_mc_rep_kind_of(__u64 w, __u32 len)
{
	__u8 c = w & 0xff;

	switch (len) {
	case 2:
		if (w == KS_MC_W('V', 'A', 0, 0, 0, 0, 0, 0))
			return KS_MC_RK_VA;
		if (w == KS_MC_W('H', 'D', 0, 0, 0, 0, 0, 0))
			return KS_MC_RK_HD;
		if (w == KS_MC_W('E', 'N', 0, 0, 0, 0, 0, 0))
			return KS_MC_RK_EN;
		if (w == KS_MC_W('N', 'F', 0, 0, 0, 0, 0, 0))
			return KS_MC_RK_NF;
		if (w == KS_MC_W('N', 'S', 0, 0, 0, 0, 0, 0))
			return KS_MC_RK_NS;
		if (w == KS_MC_W('E', 'X', 0, 0, 0, 0, 0, 0))
			return KS_MC_RK_EX;
		if (w == KS_MC_W('M', 'N', 0, 0, 0, 0, 0, 0))
			return KS_MC_RK_MN;
		if (w == KS_MC_W('M', 'E', 0, 0, 0, 0, 0, 0))
			return KS_MC_RK_ME;
		if (w == KS_MC_W('O', 'K', 0, 0, 0, 0, 0, 0))
			return KS_MC_RK_OK;
		break;
	case 3:
		if (w == KS_MC_W('E', 'N', 'D', 0, 0, 0, 0, 0))
			return KS_MC_RK_END;
		break;
	case 4:
		if (w == KS_MC_W('S', 'T', 'A', 'T', 0, 0, 0, 0) || w == KS_MC_W('I', 'T', 'E', 'M', 0, 0, 0, 0))
			return KS_MC_RK_STAT;
		break;
	case 5:
		if (w == KS_MC_W('V', 'A', 'L', 'U', 'E', 0, 0, 0))
			return KS_MC_RK_VALUE;
		if (w == KS_MC_W('E', 'R', 'R', 'O', 'R', 0, 0, 0))
			return KS_MC_RK_ERROR;
		break;
	case 6:
		if (w == KS_MC_W('S', 'T', 'O', 'R', 'E', 'D', 0, 0))
			return KS_MC_RK_STORED;
		if (w == KS_MC_W('E', 'X', 'I', 'S', 'T', 'S', 0, 0))
			return KS_MC_RK_EXISTS;
		if (w == KS_MC_W('E', 'R', 'R', 'O', 'R', ':', 0, 0)) /* "ERROR: shutdown not enabled" */
			return KS_MC_RK_ERROR;
		break;
	case 7:
		if (w == KS_MC_W('D', 'E', 'L', 'E', 'T', 'E', 'D', 0))
			return KS_MC_RK_DELETED;
		if (w == KS_MC_W('T', 'O', 'U', 'C', 'H', 'E', 'D', 0))
			return KS_MC_RK_TOUCHED;
		if (w == KS_MC_W('V', 'E', 'R', 'S', 'I', 'O', 'N', 0))
			return KS_MC_RK_VERSION;
		break;
	case 9:
		if (w == KS_MC_W('N', 'O', 'T', '_', 'F', 'O', 'U', 'N')) /* NOT_FOUND */
			return KS_MC_RK_NOT_FOUND;
		break;
	case 10:
		if (w == KS_MC_W('N', 'O', 'T', '_', 'S', 'T', 'O', 'R')) /* NOT_STORED */
			return KS_MC_RK_NOT_STORED;
		break;
	case 12:
		if (w == KS_MC_W('C', 'L', 'I', 'E', 'N', 'T', '_', 'E')) /* CLIENT_ERROR */
			return KS_MC_RK_CLIENT_ERROR;
		if (w == KS_MC_W('S', 'E', 'R', 'V', 'E', 'R', '_', 'E')) /* SERVER_ERROR */
			return KS_MC_RK_SERVER_ERROR;
		break;
	default:
		break;
	}
	if (c >= '0' && c <= '9')
		return KS_MC_RK_NUMBER;
	if (c >= 'A' && c <= 'Z')
		return KS_MC_RK_OTHER;
	return KS_MC_RK_NONE;
}

/* The line's first token ended: its kind, or failure. */
static __always_inline int ks_mc_rep_set_kind(struct ks_mc_rep *rp)
{
	__u8 kind = ks_mc_rep_kind_of(rp->word, rp->tok_len);

	if (kind == KS_MC_RK_NONE)
		return ks_mc_rep_fail(rp);
	/* a multi-line reply goes on with its own lines, or ends */
	if ((rp->flags & KS_MC_RPF_MULTI) && kind != KS_MC_RK_VALUE && kind != KS_MC_RK_STAT && kind != KS_MC_RK_END &&
	    !ks_mc_rep_is_error(kind))
		return ks_mc_rep_fail(rp);
	if (rp->flags & KS_MC_RPF_STRICT) {
		/* a chunk start could be inside a value: accept only known words */
		if (kind == KS_MC_RK_NUMBER || kind == KS_MC_RK_OTHER)
			return ks_mc_rep_fail(rp);
		rp->flags &= ~(KS_MC_RPF_STRICT | KS_MC_RPF_BIN);
	}
	if (ks_mc_rep_is_error(kind))
		rp->flags |= KS_MC_RPF_ERROR;
	rp->kind = kind;
	return KS_EV_NONE;
}

static __always_inline int ks_mc_rep_end_token(struct ks_mc_rep *rp)
{
	__u8 role = rp->role;

	rp->tok++;
	switch (role) {
	case KS_MC_ROLE_WORD:
		return ks_mc_rep_set_kind(rp);
	case KS_MC_ROLE_KEY:
		rp->key_hash = ks_kh_finish(rp->hash, rp->kh_word, rp->tok_len);
		rp->key_len = rp->tok_len;
		rp->flags |= KS_MC_RPF_KEY;
		break;
	case KS_MC_ROLE_NUM:
		rp->value_len = rp->num;
		rp->flags |= KS_MC_RPF_HAVELEN;
		break;
	case KS_MC_ROLE_OPAQUE:
		rp->opaque = rp->hash;
		rp->flags |= KS_MC_RPF_OPAQUE;
		break;
	default:
		break;
	}
	return KS_EV_NONE;
}

/* The line ended (its '\n' counted). */
static __always_inline int ks_mc_rep_line_end(struct ks_mc_rep *rp)
{
	__u8 kind = rp->kind;

	if (kind == KS_MC_RK_NONE)
		return ks_mc_rep_fail(rp); /* an empty line */
	if (kind == KS_MC_RK_VALUE || kind == KS_MC_RK_VA) {
		if (!(rp->flags & KS_MC_RPF_HAVELEN) || (kind == KS_MC_RK_VALUE && !(rp->flags & KS_MC_RPF_KEY)))
			return ks_mc_rep_fail(rp);
		if (kind == KS_MC_RK_VALUE)
			rp->flags |= KS_MC_RPF_MULTI;
		rp->value_bytes += rp->value_len;
		rp->hits++;
		rp->data_left = rp->value_len;
		rp->state = rp->value_len ? KS_MC_RP_DATA : KS_MC_RP_DATA_CR;
		return KS_EV_VALUE;
	}
	rp->state = KS_MC_RP_START;
	if (kind == KS_MC_RK_STAT) {
		rp->flags |= KS_MC_RPF_MULTI;
		return KS_EV_NONE;
	}
	/* END, an error (which also ends a multi-line reply), a single line */
	rp->flags &= ~KS_MC_RPF_MULTI;
	return KS_EV_REPLY;
}

/* The data block's "\r\n" ended: a VA reply is complete, a VALUE block
 * lets its reply go on. */
static __always_inline int ks_mc_rep_data_end(struct ks_mc_rep *rp)
{
	rp->state = KS_MC_RP_START;
	return rp->kind == KS_MC_RK_VA ? KS_EV_REPLY : KS_EV_NONE;
}

/* A byte of a line in state SPACE, TOKEN or TEXT. */
static __always_inline int ks_mc_rep_line_byte(struct ks_mc_rep *rp, __u8 c)
{
	int e = KS_EV_NONE;

	rp->line_len++;
	rp->bytes++;
	if (rp->line_len > KS_MC_MAX_LINE)
		return ks_mc_rep_fail(rp);
	if (c == '\r' || c == '\n' || (c == ' ' && rp->state != KS_MC_RP_TEXT)) {
		if (rp->state == KS_MC_RP_TOKEN) {
			e = ks_mc_rep_end_token(rp);
			if (rp->state >= KS_MC_RP_BINARY)
				return e;
			/* past the first token, only some lines have tokens */
			rp->state = ks_mc_rep_has_tokens(rp->kind) ? KS_MC_RP_SPACE : KS_MC_RP_TEXT;
		}
		if (c == '\r')
			rp->state = KS_MC_RP_LF;
		else if (c == '\n')
			e |= ks_mc_rep_line_end(rp);
		return e;
	}
	if (rp->state == KS_MC_RP_TEXT)
		return e;
	if (rp->state != KS_MC_RP_TOKEN) {
		ks_mc_rep_begin_token(rp, c);
		rp->state = KS_MC_RP_TOKEN;
	}
	if (!ks_mc_rep_token_byte(rp, c))
		return ks_mc_rep_fail(rp);
	return e;
}

/* Feed the reply parser one byte; same contract as ks_mc_req_feed(). */
static __always_inline __u32 ks_mc_rep_feed(struct ks_mc_rep *rp, __u8 c, __u32 avail, int *ev)
{
	__u32 used = 1;
	int e = KS_EV_NONE;

	*ev = KS_EV_NONE;
	switch (rp->state) {
	case KS_MC_RP_START:
		if (c == KS_MC_BIN_REP && !(rp->flags & KS_MC_RPF_MULTI)) {
			rp->state = KS_MC_RP_BINARY;
			*ev = KS_EV_BINARY;
			return avail;
		}
		if (c == ' ') {
			e = ks_mc_rep_fail(rp); /* replies never start with a space */
			break;
		}
		ks_mc_rep_begin_line(rp);
		e = ks_mc_rep_line_byte(rp, c);
		break;
	case KS_MC_RP_SPACE:
	case KS_MC_RP_TOKEN:
	case KS_MC_RP_TEXT:
		e = ks_mc_rep_line_byte(rp, c);
		break;
	case KS_MC_RP_LF:
		if (c != '\n') {
			e = ks_mc_rep_fail(rp);
			break;
		}
		rp->line_len++;
		rp->bytes++;
		e = ks_mc_rep_line_end(rp);
		break;
	case KS_MC_RP_DATA:
		used = ks_min_u32(rp->data_left, avail);
		rp->data_left -= used;
		rp->bytes += used;
		if (rp->data_left == 0)
			rp->state = KS_MC_RP_DATA_CR;
		break;
	case KS_MC_RP_DATA_CR:
		if (c != '\r') {
			e = ks_mc_rep_fail(rp);
			break;
		}
		rp->bytes++;
		rp->state = KS_MC_RP_DATA_LF;
		break;
	case KS_MC_RP_DATA_LF:
		if (c != '\n') {
			e = ks_mc_rep_fail(rp);
			break;
		}
		rp->bytes++;
		e = ks_mc_rep_data_end(rp);
		break;
	default: /* LOST, BINARY */
		return avail;
	}
	if (rp->state >= KS_MC_RP_BINARY) {
		*ev = e & KS_EV_INVALID;
		return avail;
	}
	*ev = e;
	return used;
}

static __always_inline void ks_mc_rep_skip(struct ks_mc_rep *rp, __u32 n)
{
	int ev = 0;

	if (n)
		ks_mc_rep_feed(rp, 0, n, &ev);
}

/*
 * Quiet meta requests (KS_MC_RQF_QUIET) suppress their nominal reply: EN for
 * mg, HD for ms, md and ma (a success). Anything else still comes back: an mg
 * hit (VA, HD), NS / EX / NF, errors. So a pending quiet request of command
 * `cmd` may be the one a reply of kind `kind` answers only if this returns 1;
 * if it returns 0 (MN, a nominal code, a kind that command never gets), the
 * quiet request got no reply and the reply belongs to a later request. When
 * both sides carry a key (k flag) or an opaque (O flag), compare those too:
 * pipelined quiet requests are told apart only that way.
 */
static __always_inline int ks_mc_quiet_reply(__u8 cmd, __u8 kind)
{
	if (ks_mc_rep_is_error(kind))
		return 1;
	switch (cmd) {
	case KS_MC_CMD_MG:
		return kind == KS_MC_RK_VA || kind == KS_MC_RK_HD;
	case KS_MC_CMD_MS:
		return kind == KS_MC_RK_NS || kind == KS_MC_RK_EX || kind == KS_MC_RK_NF;
	case KS_MC_CMD_MD:
		return kind == KS_MC_RK_NF || kind == KS_MC_RK_EX;
	case KS_MC_CMD_MA:
		return kind == KS_MC_RK_NF || kind == KS_MC_RK_NS || kind == KS_MC_RK_EX;
	default:
		return 0;
	}
}

/* ---- window-level steps -----------------------------------------------------
 *
 * Like resp.h: a step handles a whole token (up to KS_MC_RUN bytes) and the
 * separator after it when they lie inside the window, a whole data block and
 * its CRLF when the window holds them, and falls back to the byte machine
 * above at window edges and on anything unusual (which then reports errors
 * exactly as before). Every step consumes at least one byte.
 */
#if defined(__bpf__) && !defined(KS_PARSE_IMPL)
__u32 ks_mc_req_step(struct ks_mc_req *st, const struct ks_window *win, __u32 pos, __u32 len, int *ev);
__u32 ks_mc_rep_step(struct ks_mc_rep *rp, const struct ks_window *win, __u32 pos, __u32 len, int *ev);
#else

/*
 * The verifier and loops: a loop over a run leaves its length known exactly
 * on each exit (one constant per exit, or "n == i" after `i < n` fails), and
 * all that follows would then be checked once per length: far over the
 * 1M-instruction budget. So a run length is kept in st->run (map memory in
 * BPF) and read back after each loop: one unknown value in [0, KS_MC_RUN],
 * checked once. In host code this is a plain store and load.
 */
static __always_inline __u32 ks_mc_reload(const __u32 *slot)
{
	__u32 v = *(const volatile __u32 *)slot;

	return v < KS_MC_RUN ? v : KS_MC_RUN;
}

static __always_inline __u32 ks_mc_unknown(__u32 *slot, __u32 v)
{
	*(volatile __u32 *)slot = v;
	return ks_mc_reload(slot);
}

/* Bytes of the token at pos inside the window, at most KS_MC_RUN. */
static __always_inline __u32 ks_mc_token_extent(const __u8 *buf, __u32 pos, __u32 len)
{
	__u32 i;

	for (i = 0; i < KS_MC_RUN; i++) {
		if (pos + i >= len || ks_mc_is_sep(KS_WIN_AT(buf, pos + i)))
			break;
	}
	return i;
}

/* Pack bytes [pos, pos + n) as bytes k.. of *w (only the first 8 count). */
static __always_inline void ks_mc_pack_run(__u64 *w, const __u8 *buf, __u32 pos, __u32 n, __u32 k)
{
	__u64 v = *w;
	__u32 i;

	for (i = 0; i < 8; i++) {
		if (i >= n || k + i >= 8)
			break;
		v |= (__u64)KS_WIN_AT(buf, pos + i) << ((k + i) * 8);
	}
	*w = v;
}

/* FNV-1a over bytes [pos, pos + n), n <= KS_MC_RUN. */
static __always_inline __u64 ks_mc_hash_run(__u64 h, const __u8 *buf, __u32 pos, __u32 n)
{
	__u32 i;

	for (i = 0; i < KS_MC_RUN && i < n; i++)
		h = ks_fnv_byte(h, KS_WIN_AT(buf, pos + i));
	return h;
}

/* "<digits>" of [pos, pos + n) onto *num; 0 if not all digits or too big. */
static __always_inline int ks_mc_num_run(__u32 *num, const __u8 *buf, __u32 pos, __u32 n, __u32 k)
{
	__u64 v = *num;
	__u32 i;
	__u8 c;

	if (k + n > 10)
		return 0;
	for (i = 0; i < 10 && i < n; i++) {
		c = KS_WIN_AT(buf, pos + i);
		if (c < '0' || c > '9')
			return 0;
		v = v * 10 + (c - '0');
	}
	if (v > KS_MC_MAX_DATA)
		return 0;
	*num = (__u32)v;
	return 1;
}

/*
 * The n bytes at pos are the next bytes of the current request token (none
 * a separator): apply them. Returns 0 (nothing applied) when the byte path
 * must look: a key, number or line over its bound, a non-digit.
 */
static __always_inline int ks_mc_req_token_run(struct ks_mc_req *st, const __u8 *buf, __u32 pos, __u32 n)
{
	__u32 k = st->key_len, i, skip;
	__u64 h = st->hash;

	/* all checks first: a 0 must leave the state untouched */
	if (!ks_mc_cmd_unbounded(st->cmd) && st->line_len + n + 2 > KS_MC_MAX_LINE)
		return 0;
	/* a key resumed off a word's start goes byte by byte to the next one */
	if (st->role == KS_MC_ROLE_KEY && ((k & 7) || k + n > KS_MC_MAX_KEY))
		return 0;
	if (st->role == KS_MC_ROLE_NUM && !ks_mc_num_run(&st->num, buf, pos, n, k))
		return 0;
	st->line_len += n;
	st->cmd_bytes += n;
	/* an O flag's letter is not part of its value */
	skip = st->role == KS_MC_ROLE_OFLAG && n;
	if (skip)
		st->role = KS_MC_ROLE_OPAQUE;
	pos += skip;
	n -= skip;
	st->key_len = k + n;
	switch (st->role) {
	case KS_MC_ROLE_NAME:
		ks_mc_pack_run(&st->word, buf, pos, n, k);
		for (i = 0; i < KS_MC_RUN && i < n; i++)
			h = ks_fnv_byte(h, ks_upper(KS_WIN_AT(buf, pos + i)));
		st->hash = h;
		break;
	case KS_MC_ROLE_WORD:
		ks_mc_pack_run(&st->word, buf, pos, n, k);
		break;
	case KS_MC_ROLE_KEY:
		ks_kh_words(&st->hash, &st->kh_word, st->key, buf, pos, n, k);
		break;
	case KS_MC_ROLE_OPAQUE:
		st->hash = ks_mc_hash_run(h, buf, pos, n);
		break;
	default:
		break;
	}
	return 1;
}

/* In a data block (or at its CRLF) at p: skip what the window holds of it
 * and finish the command when its CRLF follows in the window. */
static __always_inline __u32 ks_mc_req_data_run(struct ks_mc_req *st, const __u8 *buf, __u32 p, __u32 len, int *ev)
{
	__u32 n = ks_min_u32(st->data_left, len - p);

	st->data_left -= n;
	st->cmd_bytes += n;
	if (st->data_left)
		return n;
	st->state = KS_MC_RQ_DATA_CR;
	if (p + n + 2 <= len && KS_WIN_AT(buf, p + n) == '\r' && KS_WIN_AT(buf, p + n + 1) == '\n') {
		st->cmd_bytes += 2;
		st->state = KS_MC_RQ_START;
		*ev |= KS_EV_END;
		return n + 2;
	}
	return n;
}

/* One step over the window win->buf[0..len), at pos < len; same contract
 * as ks_mc_req_feed(). */
KS_STEP_FN __u32 ks_mc_req_step(struct ks_mc_req *st, const struct ks_window *win, __u32 pos, __u32 len, int *ev)
{
	const __u8 *buf;
	__u32 n, used;
	int e;
	__u8 c;

	if (!st || !win || !ev || pos >= len || len > KS_SCRATCH)
		return 1; /* cannot happen; lets the verifier check this function alone */
	buf = win->buf;
	c = KS_WIN_AT(buf, pos);
	*ev = KS_EV_NONE;
	if (!ks_mc_is_sep(c)) {
		/* a token starts here: let the run below take it */
		if (st->state == KS_MC_RQ_START && c != KS_MC_BIN_REQ)
			ks_mc_req_begin_cmd(st);
		if (st->state == KS_MC_RQ_SPACE) {
			ks_mc_req_begin_token(st, c);
			st->state = KS_MC_RQ_TOKEN;
		}
	}
	switch (st->state) {
	case KS_MC_RQ_TOKEN:
		n = ks_mc_unknown(&st->run, ks_mc_token_extent(buf, pos, len));
		if (!ks_mc_req_token_run(st, buf, pos, n))
			break;
		n = ks_mc_reload(&st->run);
		if (pos + n >= len || n == KS_MC_RUN)
			return n; /* the token goes on past this run */
		/* its separator, inside the window */
		c = KS_WIN_AT(buf, pos + n);
		st->line_len++;
		st->cmd_bytes++;
		used = n + 1;
		e = ks_mc_req_end_token(st);
		if (st->state >= KS_MC_RQ_BINARY) {
			*ev = e & KS_EV_INVALID;
			return len - pos;
		}
		st->state = KS_MC_RQ_SPACE;
		if (c == '\r') {
			st->state = KS_MC_RQ_LF;
			if (pos + used < len && KS_WIN_AT(buf, pos + used) == '\n') {
				st->line_len++;
				st->cmd_bytes++;
				used++;
				c = '\n';
			}
		}
		if (c == '\n') {
			e |= ks_mc_req_line_end(st);
			if (st->state >= KS_MC_RQ_BINARY) {
				*ev = e & KS_EV_INVALID;
				return len - pos;
			}
			/* a data block inside the window goes with its line */
			if (st->state == KS_MC_RQ_DATA || st->state == KS_MC_RQ_DATA_CR)
				used += ks_mc_req_data_run(st, buf, pos + used, len, &e);
		}
		*ev = e;
		return used;
	case KS_MC_RQ_DATA:
	case KS_MC_RQ_DATA_CR:
		n = ks_mc_req_data_run(st, buf, pos, len, ev);
		if (n)
			return n;
		break;
	default:
		break;
	}
	return ks_mc_req_feed(st, c, len - pos, ev);
}

/* Reply counterpart of ks_mc_req_token_run(). */
static __always_inline int ks_mc_rep_token_run(struct ks_mc_rep *rp, const __u8 *buf, __u32 pos, __u32 n)
{
	__u32 k = rp->tok_len, skip;

	if (rp->line_len + n + 2 > KS_MC_MAX_LINE)
		return 0;
	if (rp->role == KS_MC_ROLE_KEY && ((k & 7) || k + n > KS_MC_MAX_KEY))
		return 0;
	if (rp->role == KS_MC_ROLE_NUM && !ks_mc_num_run(&rp->num, buf, pos, n, k))
		return 0;
	rp->line_len += n;
	rp->bytes += n;
	/* the letter of a k or O flag is not part of its value (a k value is
	 * at most KS_MC_RUN - 1 bytes here: no bound to check) */
	skip = (rp->role == KS_MC_ROLE_OFLAG || rp->role == KS_MC_ROLE_KFLAG) && n;
	if (skip)
		rp->role = rp->role == KS_MC_ROLE_OFLAG ? KS_MC_ROLE_OPAQUE : KS_MC_ROLE_KEY;
	pos += skip;
	n -= skip;
	rp->tok_len = k + n;
	switch (rp->role) {
	case KS_MC_ROLE_WORD:
		ks_mc_pack_run(&rp->word, buf, pos, n, k);
		break;
	case KS_MC_ROLE_KEY:
		ks_kh_words(&rp->hash, &rp->kh_word, NULL, buf, pos, n, k);
		break;
	case KS_MC_ROLE_OPAQUE:
		rp->hash = ks_mc_hash_run(rp->hash, buf, pos, n);
		break;
	default:
		break;
	}
	return 1;
}

static __always_inline __u32 ks_mc_rep_data_run(struct ks_mc_rep *rp, const __u8 *buf, __u32 p, __u32 len, int *ev)
{
	__u32 n = ks_min_u32(rp->data_left, len - p);

	rp->data_left -= n;
	rp->bytes += n;
	if (rp->data_left)
		return n;
	rp->state = KS_MC_RP_DATA_CR;
	if (p + n + 2 <= len && KS_WIN_AT(buf, p + n) == '\r' && KS_WIN_AT(buf, p + n + 1) == '\n') {
		rp->bytes += 2;
		*ev |= ks_mc_rep_data_end(rp);
		return n + 2;
	}
	return n;
}

/* Free text up to KS_MC_RUN bytes, not its CR or LF. */
static __always_inline __u32 ks_mc_text_extent(const __u8 *buf, __u32 pos, __u32 len)
{
	__u32 i;
	__u8 c;

	for (i = 0; i < KS_MC_RUN; i++) {
		if (pos + i >= len)
			break;
		c = KS_WIN_AT(buf, pos + i);
		if (c == '\r' || c == '\n')
			break;
	}
	return i;
}

/* The line's CR or LF was at pos + used - 1 (counted): finish the line and
 * take a data block that follows inside the window. */
static __always_inline __u32 ks_mc_rep_eol(struct ks_mc_rep *rp, const __u8 *buf, __u32 pos, __u32 used, __u32 len,
					   __u8 c, int e, int *ev)
{
	if (c == '\r') {
		rp->state = KS_MC_RP_LF;
		if (pos + used < len && KS_WIN_AT(buf, pos + used) == '\n') {
			rp->line_len++;
			rp->bytes++;
			used++;
			c = '\n';
		}
	}
	if (c == '\n') {
		e |= ks_mc_rep_line_end(rp);
		if (rp->state >= KS_MC_RP_BINARY) {
			*ev = e & KS_EV_INVALID;
			return len - pos;
		}
		if (rp->state == KS_MC_RP_DATA || rp->state == KS_MC_RP_DATA_CR)
			used += ks_mc_rep_data_run(rp, buf, pos + used, len, &e);
	}
	*ev = e;
	return used;
}

/* One step over the window; same contract as ks_mc_rep_feed(). */
KS_STEP_FN __u32 ks_mc_rep_step(struct ks_mc_rep *rp, const struct ks_window *win, __u32 pos, __u32 len, int *ev)
{
	const __u8 *buf;
	__u32 n;
	int e;
	__u8 c;

	if (!rp || !win || !ev || pos >= len || len > KS_SCRATCH)
		return 1;
	buf = win->buf;
	c = KS_WIN_AT(buf, pos);
	*ev = KS_EV_NONE;
	if (!ks_mc_is_sep(c)) {
		/* a token starts here: let the run below take it */
		if (rp->state == KS_MC_RP_START && (c != KS_MC_BIN_REP || (rp->flags & KS_MC_RPF_MULTI)))
			ks_mc_rep_begin_line(rp);
		if (rp->state == KS_MC_RP_SPACE) {
			ks_mc_rep_begin_token(rp, c);
			rp->state = KS_MC_RP_TOKEN;
		}
	}
	switch (rp->state) {
	case KS_MC_RP_TOKEN:
		n = ks_mc_unknown(&rp->run, ks_mc_token_extent(buf, pos, len));
		if (!ks_mc_rep_token_run(rp, buf, pos, n))
			break;
		n = ks_mc_reload(&rp->run);
		if (pos + n >= len || n == KS_MC_RUN)
			return n; /* the token goes on past this run */
		/* its separator, inside the window */
		c = KS_WIN_AT(buf, pos + n);
		rp->line_len++;
		rp->bytes++;
		e = ks_mc_rep_end_token(rp);
		if (rp->state >= KS_MC_RP_BINARY) {
			*ev = e & KS_EV_INVALID;
			return len - pos;
		}
		/* past the first token, only some lines have tokens */
		rp->state = ks_mc_rep_has_tokens(rp->kind) ? KS_MC_RP_SPACE : KS_MC_RP_TEXT;
		if (c == ' ') {
			*ev = e;
			return n + 1;
		}
		return ks_mc_rep_eol(rp, buf, pos, n + 1, len, c, e, ev);
	case KS_MC_RP_TEXT:
		n = ks_mc_unknown(&rp->run, ks_mc_text_extent(buf, pos, len));
		if (rp->line_len + n + 2 > KS_MC_MAX_LINE)
			break;
		if (pos + n >= len || n == KS_MC_RUN) {
			rp->line_len += n;
			rp->bytes += n;
			return n;
		}
		c = KS_WIN_AT(buf, pos + n);
		rp->line_len += n + 1;
		rp->bytes += n + 1;
		return ks_mc_rep_eol(rp, buf, pos, n + 1, len, c, KS_EV_NONE, ev);
	case KS_MC_RP_DATA:
	case KS_MC_RP_DATA_CR:
		n = ks_mc_rep_data_run(rp, buf, pos, len, ev);
		if (n)
			return n;
		break;
	default:
		break;
	}
	return ks_mc_rep_feed(rp, c, len - pos, ev);
}
#endif /* step definitions */

#endif /* KS_PROTO_MEMCACHE_H */
