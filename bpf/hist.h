/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Log-linear latency buckets (see KS_LAT_* in keyscope_abi.h); compiled into
 * BPF and into the daemon, which turns buckets back into quantiles. */
#ifndef KS_HIST_H
#define KS_HIST_H

#include "keyscope_abi.h"

static __always_inline __u32 ks_log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1) {
		r += 1;
	}
	return r;
}

static __always_inline __u32 ks_lat_bucket(__u64 ns)
{
	__u32 l, sub;

	if (ns < (1ULL << KS_LAT_MIN_LOG2))
		return 0;
	l = ks_log2_u64(ns);
	if (l >= KS_LAT_MIN_LOG2 + KS_LAT_OCTAVES)
		return KS_LAT_BUCKETS - 1;
	sub = (ns >> (l - KS_LAT_SUB_BITS)) & ((1 << KS_LAT_SUB_BITS) - 1);
	return 1 + (l - KS_LAT_MIN_LOG2) * (1 << KS_LAT_SUB_BITS) + sub;
}

/* Lower bound in ns of a bucket (host side, for quantiles). */
static inline __u64 ks_lat_bucket_low(__u32 b)
{
	__u32 o, sub;

	if (b == 0)
		return 0;
	o = (b - 1) >> KS_LAT_SUB_BITS;
	sub = (b - 1) & ((1 << KS_LAT_SUB_BITS) - 1);
	return (1ULL << (KS_LAT_MIN_LOG2 + o)) + ((__u64)sub << (KS_LAT_MIN_LOG2 + o - KS_LAT_SUB_BITS));
}

#endif
