// SPDX-License-Identifier: GPL-2.0
/*
 * fault_nodev: modkit's sample module whose init fails with -ENODEV, as a driver
 * does when its hardware is absent.
 *
 * It calls hello_api's api_test() first, so it depends on hello_api: modprobe
 * loads hello_api, then the kernel refuses this module ("No such device") and
 * drops its reference on hello_api; kmod leaves hello_api loaded.
 */
#include <linux/errno.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

extern void api_test(void);

static int __init fault_nodev_init(void)
{
	api_test();
	pr_info("[fault_nodev] no device here: init returns -ENODEV\n");
	return -ENODEV;
}

static void __exit fault_nodev_exit(void)
{
	/* Never runs: the module never goes live. */
}

module_init(fault_nodev_init);
module_exit(fault_nodev_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("modkit developers");
MODULE_DESCRIPTION("modkit sample module whose init fails with -ENODEV");
MODULE_VERSION("1.0");
