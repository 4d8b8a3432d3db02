// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Syscall path: one tp_btf program on sys_exit. On x86-64 the syscall's
 * arguments are still in pt_regs at exit, so no sys_enter program (and no
 * per-call map write) is needed. read/recvfrom/readv/recvmsg carry requests,
 * write/sendto/writev/sendmsg replies; close() forgets the connection.
 * Serves clients on unix sockets and cross-checks the socket path.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "defs.bpf.h"
#include "walk.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define KS_NR_READ 0
#define KS_NR_WRITE 1
#define KS_NR_CLOSE 3
#define KS_NR_READV 19
#define KS_NR_WRITEV 20
#define KS_NR_SENDTO 44
#define KS_NR_RECVFROM 45
#define KS_NR_SENDMSG 46 /* memcached writes its replies with sendmsg */
#define KS_NR_RECVMSG 47
#define KS_NR_ACCEPT 43
#define KS_NR_ACCEPT4 288
/* UIO_MAXIOV: every iovec of a readv/writev/sendmsg is walked
 * (memcached gathers a whole pipeline's replies into one sendmsg) */
#define KS_IOV_MAX 1024

#define KS_SYSF_NOT_TARGET 0x100 /* fd is no target connection: ignore cheaply */

static __always_inline long ks_copy_window(struct ks_chunk *ck, __u32 n)
{
	return bpf_probe_read_user(ck->w.scr->win.buf, n, (const __u8 *)ck->src + ck->off);
}

/* The target an fd of a target process belongs to, or -1. */
static __always_inline int ks_fd_target(__u32 tgid, int fd, __u64 *sock_out)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ks_target_key tk = {};
	struct ks_target_val *tv;
	struct file **fds;
	struct file *file = NULL;
	struct socket *so;
	struct sock *sk;
	__u32 *pid_target;
	__u16 family;
	__u32 max_fds;

	max_fds = BPF_CORE_READ(task, files, fdt, max_fds);
	if ((__u32)fd >= max_fds)
		return -1;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), fds + fd) || !file)
		return -1;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return -1;
	so = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(so, sk);
	if (!sk)
		return -1;
	*sock_out = (__u64)sk;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == 1 /* AF_UNIX */) {
		/* clients on unix sockets belong to the process's target */
		pid_target = bpf_map_lookup_elem(&ks_target_pids, &tgid);
		return pid_target ? (int)*pid_target : -1;
	}
	tk.port = bpf_htons(BPF_CORE_READ(sk, __sk_common.skc_num));
	if (family == AF_INET) {
		__be32 a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);

		tk.addr[10] = 0xff;
		tk.addr[11] = 0xff;
		__builtin_memcpy(tk.addr + 12, &a, 4);
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&tk.addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	} else {
		return -1;
	}
	tv = bpf_map_lookup_elem(&ks_targets, &tk);
	if (!tv) {
		__builtin_memset(tk.addr, 0, sizeof(tk.addr));
		tv = bpf_map_lookup_elem(&ks_targets, &tk);
	}
	return tv ? (int)tv->id : -1;
}

static __always_inline struct ks_flow *ks_sys_flow(struct ks_sys_flow_key *fk, int fresh)
{
	struct ks_flow *f = bpf_map_lookup_elem(&ks_sys_flows, fk);
	struct ks_flow *tmpl;
	__u32 zero = 0;
	__u64 sock = 0;
	int target;

	if (f)
		return f;
	tmpl = bpf_map_lookup_elem(&ks_zero_flow, &zero);
	if (!tmpl)
		return NULL;
	target = ks_fd_target(fk->tgid, fk->fd, &sock);
	bpf_map_update_elem(&ks_sys_flows, fk, tmpl, BPF_NOEXIST);
	f = bpf_map_lookup_elem(&ks_sys_flows, fk);
	if (!f)
		return NULL;
	f->sock = sock;
	if (target < 0) {
		f->flags |= KS_SYSF_NOT_TARGET;
	} else {
		f->target = target;
		ks_flow_set_proto(f);
		if (!fresh) {
			/* older than keyscope: resume at a read that starts a message */
			ks_lose(f, KS_DIR_REQ);
			ks_lose(f, KS_DIR_REP);
		}
	}
	return f;
}

/* The buffers of one read/write (one) or readv/writev/sendmsg/recvmsg (up to KS_IOV_MAX). */
struct ks_sys_walk {
	struct ks_chunk ck;
	struct iovec *iov; /* NULL: a plain buffer */
	void *buf;
	__u32 iovcnt;
	__u32 left; /* bytes the call moved that are not walked yet */
};

static long ks_sys_iov_cb(__u64 i, void *ctx)
{
	struct ks_sys_walk *sw = ctx;
	struct iovec v = {.iov_base = sw->buf, .iov_len = sw->left};

	if (i >= sw->iovcnt || sw->left == 0)
		return 1;
	if (sw->iov && bpf_probe_read_user(&v, sizeof(v), &sw->iov[i]))
		return 1;
	sw->ck.src = v.iov_base;
	sw->ck.off = 0;
	sw->ck.end = v.iov_len < sw->left ? v.iov_len : sw->left;
	sw->left -= sw->ck.end;
	ks_walk_chunk(&sw->ck, i == 0);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(ks_sys_exit, struct pt_regs *regs, long ret)
{
	struct ks_sys_flow_key fk;
	struct ks_sys_walk sw = {};
	struct ks_counters *cnt;
	struct ks_config *cfg;
	struct ks_scratch *scr;
	struct ks_flow *f;
	__u32 zero = 0;
	long nr = regs->orig_ax;
	int dir, vec = 0;

	switch (nr) {
	case KS_NR_READ:
	case KS_NR_RECVFROM:
		dir = KS_DIR_REQ;
		break;
	case KS_NR_READV:
	case KS_NR_RECVMSG:
		dir = KS_DIR_REQ;
		vec = 1;
		break;
	case KS_NR_WRITE:
	case KS_NR_SENDTO:
		dir = KS_DIR_REP;
		break;
	case KS_NR_WRITEV:
	case KS_NR_SENDMSG:
		dir = KS_DIR_REP;
		vec = 1;
		break;
	case KS_NR_CLOSE:
	case KS_NR_ACCEPT:
	case KS_NR_ACCEPT4:
		dir = -1;
		break;
	default:
		return 0;
	}
	fk.tgid = bpf_get_current_pid_tgid() >> 32;
	if (!bpf_map_lookup_elem(&ks_target_pids, &fk.tgid))
		return 0;
	if (nr == KS_NR_ACCEPT || nr == KS_NR_ACCEPT4) {
		if (ret < 0)
			return 0;
		/* a new connection: parse it from its first byte */
		fk.fd = ret;
		bpf_map_delete_elem(&ks_sys_flows, &fk);
		ks_sys_flow(&fk, 1);
		return 0;
	}
	fk.fd = (__u32)regs->di;
	if (nr == KS_NR_CLOSE) {
		bpf_map_delete_elem(&ks_sys_flows, &fk);
		return 0;
	}
	if (ret <= 0)
		return 0;
	f = ks_sys_flow(&fk, 0);
	if (!f || (f->flags & KS_SYSF_NOT_TARGET))
		return 0;
	cfg = bpf_map_lookup_elem(&ks_config, &zero);
	if (!cfg)
		return 0;
	cnt = ks_counters_get(cfg->gen & 1, f->target);
	scr = bpf_map_lookup_elem(&ks_scratch, &zero);
	if (!cnt || !scr)
		return 0;
	ks_walk_init(&sw.ck.w, f, scr, cnt, cfg);
	sw.ck.dir = dir;
	sw.iov = vec ? (struct iovec *)regs->si : NULL;
	sw.buf = (void *)regs->si;
	sw.iovcnt = vec ? regs->dx : 1;
	if (nr == KS_NR_SENDMSG || nr == KS_NR_RECVMSG) {
		struct user_msghdr mh;

		if (bpf_probe_read_user(&mh, sizeof(mh), (void *)regs->si))
			return 0;
		sw.iov = mh.msg_iov;
		sw.iovcnt = mh.msg_iovlen;
	}
	sw.left = ret;
	if (dir == KS_DIR_REP)
		ks_touch_reply_lines(&sw.ck.w);
	/* one walk call site: each one is verified on its own, and one per
	 * iovec exceeded the verifier's budget once memcached was added */
	bpf_loop(KS_IOV_MAX, ks_sys_iov_cb, &sw, 0);
	if (sw.left) {
		cnt->truncated_windows++;
		ks_lose(f, dir);
	}
	return 0;
}
