// SPDX-License-Identifier: GPL-2.0
/*
 * hello_feature: modkit's sample module that needs hello_api.
 *
 * It calls api_test() on load, so the kernel refuses it ("Unknown symbol in
 * module") unless hello_api is loaded first; depmod records the dependency.
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

extern void api_test(void);

static int __init hello_feature_init(void)
{
	pr_info("[hello_feature] Hello, World!\n");
	api_test();
	return 0;
}

static void __exit hello_feature_exit(void)
{
	pr_info("[hello_feature] Bye Bye, World!\n");
}

module_init(hello_feature_init);
module_exit(hello_feature_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("modkit developers");
MODULE_DESCRIPTION("modkit sample module calling hello_api's api_test()");
MODULE_VERSION("1.0");
