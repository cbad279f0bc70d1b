// SPDX-License-Identifier: GPL-2.0
/*
 * fault_sleep: modkit's sample module whose init sleeps (delay_ms, 3000 by
 * default) before it succeeds, so a test can kill the modprobe loading it, or
 * race a second modprobe against it, while the module is still "coming".
 *
 * It calls hello_api's api_test(), so it depends on hello_api and holds one
 * reference on it once live.
 */
#include <linux/delay.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

extern void api_test(void);

static unsigned int delay_ms = 3000;
module_param(delay_ms, uint, 0444);
MODULE_PARM_DESC(delay_ms, "How long init sleeps, in milliseconds");

static int __init fault_sleep_init(void)
{
	pr_info("[fault_sleep] init sleeps %u ms\n", delay_ms);
	/* msleep is uninterruptible: SIGKILL to the loader waits for us. */
	msleep(delay_ms);
	api_test();
	pr_info("[fault_sleep] init done\n");
	return 0;
}

static void __exit fault_sleep_exit(void)
{
	pr_info("[fault_sleep] Bye bye, World!\n");
}

module_init(fault_sleep_init);
module_exit(fault_sleep_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("modkit developers");
MODULE_DESCRIPTION("modkit sample module whose init sleeps");
MODULE_VERSION("1.0");
