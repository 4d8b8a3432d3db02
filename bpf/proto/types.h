/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Fixed-width types for headers compiled both into BPF (vmlinux.h already
 * defines them) and into host code (linux/types.h). */
#ifndef KS_PROTO_TYPES_H
#define KS_PROTO_TYPES_H

#ifdef __bpf__
/* vmlinux.h has been included by the BPF translation unit. */
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#else
#include <linux/types.h>
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#endif

#endif
