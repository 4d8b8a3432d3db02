/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Constants vmlinux.h cannot carry (it has no macros). */
#ifndef KS_DEFS_BPF_H
#define KS_DEFS_BPF_H

#define TC_ACT_UNSPEC (-1) /* tcx: TCX_NEXT, cls_bpf: continue with the next filter */
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_HLEN 14
#define IPPROTO_TCP 6
#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EEXIST 17

/* One real load of a word other CPUs may change meanwhile. */
#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))

#endif
