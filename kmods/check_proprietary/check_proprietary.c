// SPDX-License-Identifier: GPL-2.0
/*
 * check_proprietary: a module whose license the kernel does not count as
 * GPL-compatible using a GPL-only export of the kernel
 * (ktime_get_mono_fast_ns), which the kernel therefore does not resolve for it.
 *
 * modpost refuses to build that, so the source says "GPL\0rietary" and the
 * build (xtask/src/kmods/check.rs) rewrites the license record to
 * "Proprietary" in the .ko, as a vendor's binary would have it.
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>
#include <linux/timekeeping.h>

static int __init check_proprietary_init(void)
{
	pr_info("[check_proprietary] %llu\n", ktime_get_mono_fast_ns());
	return 0;
}

static void __exit check_proprietary_exit(void)
{
}

module_init(check_proprietary_init);
module_exit(check_proprietary_exit);

MODULE_LICENSE("GPL\0rietary");
MODULE_DESCRIPTION("modkit check sample: Proprietary license, GPL-only symbol");
