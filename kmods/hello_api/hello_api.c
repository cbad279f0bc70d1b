// SPDX-License-Identifier: GPL-2.0
/*
 * hello_api: modkit's sample module that exports a symbol.
 *
 * Loading it prints a greeting (the `greeting` parameter can change it);
 * api_test() is called by hello_feature, which therefore depends on us.
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

static char *greeting = "Hello, World!";
module_param(greeting, charp, 0444);
MODULE_PARM_DESC(greeting, "Message printed when the module is loaded");

/* hello_feature declares it too; this prototype keeps -Wmissing-prototypes quiet. */
void api_test(void);

void api_test(void)
{
	pr_info("[hello_api] this is a test message.\n");
}
EXPORT_SYMBOL(api_test);

static int __init hello_api_init(void)
{
	pr_info("[hello_api] %s\n", greeting);
	return 0;
}

static void __exit hello_api_exit(void)
{
	pr_info("[hello_api] Bye bye, World!\n");
}

module_init(hello_api_init);
module_exit(hello_api_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("modkit developers");
MODULE_DESCRIPTION("modkit sample module exporting api_test()");
MODULE_VERSION("1.0");
MODULE_ALIAS("modkit:hello-api");
