// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The per-key table's lookup as a BPF global function, for the syscall path
 * (see key_table.bpf.h).
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
