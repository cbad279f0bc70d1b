/*
 * The C boundary of modkit's libkmod.so.2 under misuse (tests/boundary.rs runs it against
 * modkit's library only: Debian's crashes on several of these). NULL handles, handles used
 * after their last unref, double unrefs, list nodes after their list is freed, nodes of one
 * kind of list handed to another's getter: each answers NULL, 0 or a negative errno, and the
 * process lives on. Prints one line per check and "checks: N" at the end; exits 1 on a wrong
 * answer.
 *
 * usage: boundary MODULE_DIR MODULE_FILE
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libkmod.h>

static int checks, failures;

#define CHECK(cond)                                                              \
	do {                                                                     \
		checks++;                                                        \
		if (cond) {                                                      \
			printf("ok %s\n", #cond);                                \
		} else {                                                         \
			printf("FAILED %s (line %d)\n", #cond, __LINE__);        \
			failures++;                                              \
		}                                                                \
	} while (0)

static int logged;

static void count_log(void *data, int priority, const char *file, int line, const char *fn,
		      const char *format, va_list args)
{
	char buf[512];

	(void)data; (void)priority; (void)file; (void)line; (void)fn;
	vsnprintf(buf, sizeof(buf), format, args);
	/* A log function may call the library: its context must still answer. */
	if (kmod_get_log_priority((struct kmod_ctx *)data) >= 0 && buf[0] != '\0')
		logged++;
}

int main(int argc, char *argv[])
{
	struct kmod_ctx *ctx, *dead;
	struct kmod_module *mod = NULL, *other = NULL;
	struct kmod_list *list = NULL, *node, *info = NULL, *out = NULL, *pre = NULL, *post = NULL;
	struct kmod_config_iter *iter;
	const char *empty[] = { NULL };

	if (argc != 3) {
		fprintf(stderr, "usage: %s MODULE_DIR MODULE_FILE\n", argv[0]);
		return 2;
	}

	/* NULL everywhere. */
	CHECK(kmod_ref(NULL) == NULL);
	CHECK(kmod_unref(NULL) == NULL);
	CHECK(kmod_load_resources(NULL) < 0);
	CHECK(kmod_validate_resources(NULL) < 0);
	CHECK(kmod_get_dirname(NULL) == NULL);
	CHECK(kmod_get_userdata(NULL) == NULL);
	CHECK(kmod_dump_index(NULL, KMOD_INDEX_MODULES_DEP, 1) < 0);
	kmod_set_log_priority(NULL, 7);
	kmod_set_log_fn(NULL, NULL, NULL);
	kmod_unload_resources(NULL);
	CHECK(kmod_list_next(NULL, NULL) == NULL);
	CHECK(kmod_list_prev(NULL, NULL) == NULL);
	CHECK(kmod_list_last(NULL) == NULL);
	CHECK(kmod_config_get_aliases(NULL) == NULL);
	CHECK(kmod_config_iter_next(NULL) == false);
	CHECK(kmod_config_iter_get_key(NULL) == NULL);
	kmod_config_iter_free_iter(NULL);
	CHECK(kmod_module_new_from_name(NULL, "x", &mod) == -ENOENT);
	CHECK(kmod_module_new_from_lookup(NULL, "x", &list) == -ENOENT);
	CHECK(kmod_module_new_from_loaded(NULL, &list) < 0);
	CHECK(kmod_module_ref(NULL) == NULL);
	CHECK(kmod_module_unref(NULL) == NULL);
	CHECK(kmod_module_unref_list(NULL) == 0);
	CHECK(kmod_module_get_module(NULL) == NULL);
	CHECK(kmod_module_get_name(NULL) == NULL);
	CHECK(kmod_module_get_path(NULL) == NULL);
	CHECK(kmod_module_get_options(NULL) == NULL);
	CHECK(kmod_module_get_dependencies(NULL) == NULL);
	CHECK(kmod_module_get_softdeps(NULL, &pre, &post) < 0);
	CHECK(kmod_module_get_initstate(NULL) == -ENOENT);
	CHECK(kmod_module_get_refcnt(NULL) < 0);
	CHECK(kmod_module_get_size(NULL) < 0);
	CHECK(kmod_module_get_holders(NULL) == NULL);
	CHECK(kmod_module_get_sections(NULL) == NULL);
	CHECK(kmod_module_get_info(NULL, &info) < 0);
	CHECK(kmod_module_get_versions(NULL, &info) < 0);
	CHECK(kmod_module_get_symbols(NULL, &info) < 0);
	CHECK(kmod_module_get_dependency_symbols(NULL, &info) < 0);
	CHECK(kmod_module_info_get_key(NULL) == NULL);
	CHECK(kmod_module_version_get_crc(NULL) == 0);
	CHECK(kmod_module_section_get_address(NULL) == (unsigned long)-1);
	CHECK(kmod_module_insert_module(NULL, 0, NULL) == -ENOENT);
	CHECK(kmod_module_remove_module(NULL, 0) == -ENOENT);
	CHECK(kmod_module_probe_insert_module(NULL, 0, NULL, NULL, NULL, NULL) == -ENOENT);
	CHECK(kmod_module_apply_filter(NULL, KMOD_FILTER_BLACKLIST, NULL, &out) < 0);
	CHECK(kmod_module_initstate_str(99) == NULL);

	/* A context, its modules, and misuse of each. */
	ctx = kmod_new(argv[1], empty);
	CHECK(ctx != NULL);
	kmod_set_log_fn(ctx, count_log, ctx);
	kmod_set_log_priority(ctx, 7);
	CHECK(kmod_get_log_priority(ctx) == 7);
	kmod_set_userdata(ctx, &checks);
	CHECK(kmod_get_userdata(ctx) == &checks);
	CHECK(kmod_module_new_from_name(ctx, NULL, &mod) == -ENOENT);
	CHECK(kmod_module_new_from_name(ctx, "x", NULL) == -ENOENT);
	CHECK(kmod_module_new_from_lookup(ctx, "x", NULL) == -ENOSYS);
	list = (struct kmod_list *)&checks;
	CHECK(kmod_module_new_from_lookup(ctx, "x", &list) == -ENOSYS);
	list = NULL;
	CHECK(kmod_module_new_from_lookup(ctx, "bad]alias", &list) == -EINVAL && list == NULL);
	CHECK(kmod_module_new_from_path(ctx, "/nonexistent/x.ko", &mod) == -ENOENT);

	CHECK(kmod_module_new_from_path(ctx, argv[2], &mod) == 0 && mod != NULL);
	CHECK(kmod_module_new_from_name(ctx, kmod_module_get_name(mod), &other) == 0);
	CHECK(other == mod); /* the context's pool: one handle per module */
	CHECK(kmod_module_unref(other) == mod); /* still referenced */
	CHECK(kmod_module_get_info(mod, &info) > 0 && info != NULL);
	CHECK(kmod_module_get_module(info) == NULL); /* an info node holds no module */
	CHECK(kmod_module_version_get_symbol(info) == NULL);
	CHECK(kmod_module_info_get_key(info) != NULL);
	node = kmod_list_last(info);
	CHECK(node != NULL && kmod_list_next(info, node) == NULL);
	CHECK(kmod_list_prev(info, info) == NULL);
	kmod_module_info_free_list(info);
	CHECK(kmod_module_info_get_key(info) == NULL); /* freed list: nothing */
	CHECK(kmod_list_next(info, info) == NULL);
	kmod_module_info_free_list(info); /* double free: ignored */

	CHECK(kmod_module_new_from_lookup(ctx, "no_such_module_anywhere", &list) == 0 && list == NULL);
	CHECK(kmod_module_probe_insert_module(mod, KMOD_PROBE_DRY_RUN, NULL, NULL, NULL,
					      (void *)1) == -EOPNOTSUPP);

	CHECK(kmod_module_unref(mod) == NULL); /* last reference */
	CHECK(kmod_module_unref(mod) == NULL); /* double unref */
	CHECK(kmod_module_get_name(mod) == NULL); /* use after free */
	CHECK(kmod_module_get_path(mod) == NULL);
	CHECK(kmod_module_ref(mod) == NULL);
	CHECK(kmod_module_get_initstate(mod) == -ENOENT);
	CHECK(kmod_module_get_info(mod, &info) < 0);
	CHECK(kmod_module_insert_module(mod, 0, "") == -ENOENT);
	CHECK(kmod_module_remove_module(mod, 0) == -ENOENT);

	iter = kmod_config_get_blacklists(ctx);
	CHECK(iter != NULL && kmod_config_iter_next(iter) == false);
	kmod_config_iter_free_iter(iter);
	CHECK(kmod_config_iter_next(iter) == false);
	kmod_config_iter_free_iter(iter);

	/* A made-up pointer is no handle. */
	CHECK(kmod_module_get_name((struct kmod_module *)&checks) == NULL);
	CHECK(kmod_list_next((struct kmod_list *)&checks, (struct kmod_list *)&checks) == NULL);
	CHECK(kmod_get_dirname((struct kmod_ctx *)&failures) == NULL);

	/* The context lives while a module holds it. */
	CHECK(kmod_module_new_from_name(ctx, "held", &mod) == 0);
	dead = kmod_unref(ctx);
	CHECK(dead == ctx); /* a module still holds it */
	CHECK(kmod_module_get_name(mod) != NULL && strcmp(kmod_module_get_name(mod), "held") == 0);
	CHECK(kmod_module_unref(mod) == NULL);
	CHECK(kmod_get_dirname(ctx) == NULL); /* gone with its last module */
	CHECK(kmod_unref(ctx) == NULL); /* double unref of the context */
	CHECK(kmod_load_resources(ctx) < 0);
	CHECK(logged > 0);

	printf("checks: %d failures: %d\n", checks, failures);
	return failures ? 1 : 0;
}
