// SPDX-License-Identifier: GPL-2.0
/*
 * check_signed: signed at build time with a throwaway key the kernel does not
 * trust (xtask/src/kmods/check.rs). Under module.sig_enforce=1 the kernel
 * rejects it: "Loading of module with unavailable key is rejected".
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

static int __init check_signed_init(void)
{
	pr_info("[check_signed] loaded\n");
	return 0;
}

static void __exit check_signed_exit(void)
{
}

module_init(check_signed_init);
module_exit(check_signed_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modkit check sample: signed with an untrusted throwaway key");
