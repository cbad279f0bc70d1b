// SPDX-License-Identifier: GPL-2.0
/*
 * check_api_v2: hello_api's api_test() with a changed prototype (it takes an
 * int). Never loaded: check_crc is built against its Module.symvers, so its
 * __versions CRC for api_test is not hello_api's, and loading check_crc after
 * hello_api fails: "disagrees about version of symbol api_test".
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

void api_test(int times);

void api_test(int times)
{
	pr_info("[check_api_v2] api_test(%d)\n", times);
}
EXPORT_SYMBOL(api_test);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modkit check sample: api_test() with another prototype");
