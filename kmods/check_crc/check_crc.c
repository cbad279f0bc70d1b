// SPDX-License-Identifier: GPL-2.0
/*
 * check_crc: calls api_test(int), as check_api_v2 exports it; built against
 * check_api_v2's Module.symvers, so its CRC for api_test disagrees with
 * hello_api's, which is what the kernel has loaded.
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

void api_test(int times);

static int __init check_crc_init(void)
{
	api_test(1);
	return 0;
}

static void __exit check_crc_exit(void)
{
}

module_init(check_crc_init);
module_exit(check_crc_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modkit check sample: api_test() with a CRC hello_api does not have");
