// SPDX-License-Identifier: GPL-2.0
/*
 * check_control: the case of `modkit check`'s VM scenario that loads.
 *
 * GPL, no imports but printk: the kernel accepts it, so `modkit check` must say
 * "would load" (out-of-tree and, where signatures are checked, unsigned: taints only).
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

static int __init check_control_init(void)
{
	pr_info("[check_control] loaded\n");
	return 0;
}

static void __exit check_control_exit(void)
{
}

module_init(check_control_init);
module_exit(check_control_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modkit check sample: a module the kernel accepts");
