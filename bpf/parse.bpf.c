// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The RESP and memcached window steps as BPF global functions (see proto/resp.h): defined
 * here once, called by both capture paths, verified once each.
 */
/* vmlinux.h must come first */
// clang-format off
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
// clang-format on

#define KS_PARSE_IMPL
#include "keyscope_abi.h"
#include "proto/resp.h"
#include "proto/memcache.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
