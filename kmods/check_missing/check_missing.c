// SPDX-License-Identifier: GPL-2.0
/*
 * check_missing: needs a symbol that nobody exports, neither the kernel nor any
 * module, so the kernel refuses it: "Unknown symbol check_missing_nowhere (err -2)".
 * Built with KBUILD_MODPOST_WARN=1 (modpost would refuse the undefined symbol).
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

void check_missing_nowhere(void);

static int __init check_missing_init(void)
{
	check_missing_nowhere();
	return 0;
}

static void __exit check_missing_exit(void)
{
}

module_init(check_missing_init);
module_exit(check_missing_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modkit check sample: a symbol nobody exports");
