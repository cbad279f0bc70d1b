/*
 * A libkmod client for the differential test (tests/client.rs): built once against Debian's
 * libkmod.h and run with Debian's libkmod.so.2 and with modkit's (LD_LIBRARY_PATH), it prints
 * what the library answers, and the test compares the two outputs.
 *
 * usage: client MODULE_DIR CONFIG_DIR QUERIES
 * QUERIES has one request a line: "lookup ALIAS", "name NAME", "path FILE", "namelookup NAME",
 * "probe NAME" (a real probe: only for names without a module file, so nothing is loaded; the
 * test runs the client without CAP_SYS_MODULE all the same). Every module a lookup finds is
 * also probed with KMOD_PROBE_DRY_RUN, with and without the blacklist.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libkmod.h>

static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static const char *s(const char *text)
{
	return text ? text : "(null)";
}

static void print_modules(const char *label, struct kmod_list *list)
{
	struct kmod_list *l;

	printf("  %s:", label);
	kmod_list_foreach(l, list) {
		struct kmod_module *m = kmod_module_get_module(l);
		printf(" %s", kmod_module_get_name(m));
		kmod_module_unref(m);
	}
	printf("\n");
}

static void describe(struct kmod_module *mod)
{
	struct kmod_list *list = NULL, *pre = NULL, *post = NULL, *l;
	uint64_t h;
	int n;

	printf("module %s\n", kmod_module_get_name(mod));
	printf("  path: %s\n", s(kmod_module_get_path(mod)));
	printf("  options: %s\n", s(kmod_module_get_options(mod)));
	printf("  install: %s\n", s(kmod_module_get_install_commands(mod)));
	printf("  remove: %s\n", s(kmod_module_get_remove_commands(mod)));
	n = kmod_module_get_initstate(mod);
	printf("  initstate: %d %s\n", n, n >= 0 ? s(kmod_module_initstate_str(n)) : "-");

	list = kmod_module_get_dependencies(mod);
	print_modules("dependencies", list);
	kmod_module_unref_list(list);

	n = kmod_module_get_softdeps(mod, &pre, &post);
	printf("  softdeps: %d\n", n);
	print_modules("pre", pre);
	print_modules("post", post);
	kmod_module_unref_list(pre);
	kmod_module_unref_list(post);

	list = NULL;
	n = kmod_module_get_info(mod, &list);
	printf("  info: %d\n", n);
	kmod_list_foreach(l, list)
		printf("    %s=%s\n", kmod_module_info_get_key(l), kmod_module_info_get_value(l));
	kmod_module_info_free_list(list);

	list = NULL;
	n = kmod_module_get_versions(mod, &list);
	h = 0xcbf29ce484222325ULL;
	kmod_list_foreach(l, list) {
		uint64_t crc = kmod_module_version_get_crc(l);
		const char *sym = kmod_module_version_get_symbol(l);
		h = fnv(fnv(h, sym, strlen(sym) + 1), &crc, sizeof(crc));
	}
	printf("  versions: %d %016" PRIx64 "\n", n, h);
	kmod_module_versions_free_list(list);

	list = NULL;
	n = kmod_module_get_symbols(mod, &list);
	h = 0xcbf29ce484222325ULL;
	kmod_list_foreach(l, list) {
		uint64_t crc = kmod_module_symbol_get_crc(l);
		const char *sym = kmod_module_symbol_get_symbol(l);
		h = fnv(fnv(h, sym, strlen(sym) + 1), &crc, sizeof(crc));
	}
	printf("  symbols: %d %016" PRIx64 "\n", n, h);
	kmod_module_symbols_free_list(list);

	list = NULL;
	n = kmod_module_get_dependency_symbols(mod, &list);
	h = 0xcbf29ce484222325ULL;
	kmod_list_foreach(l, list) {
		uint64_t crc = kmod_module_dependency_symbol_get_crc(l);
		int bind = kmod_module_dependency_symbol_get_bind(l);
		const char *sym = kmod_module_dependency_symbol_get_symbol(l);
		h = fnv(fnv(fnv(h, sym, strlen(sym) + 1), &crc, sizeof(crc)), &bind, sizeof(bind));
	}
	printf("  dependency symbols: %d %016" PRIx64 "\n", n, h);
	kmod_module_dependency_symbols_free_list(list);
}

static void config(const char *label, struct kmod_config_iter *iter)
{
	printf("config %s\n", label);
	while (kmod_config_iter_next(iter))
		printf("  %s -> %s\n", s(kmod_config_iter_get_key(iter)),
		       s(kmod_config_iter_get_value(iter)));
	kmod_config_iter_free_iter(iter);
}

static void dump(struct kmod_ctx *ctx, enum kmod_index index)
{
	FILE *f = tmpfile();
	char line[8192];
	uint64_t h = 0xcbf29ce484222325ULL;
	long lines = 0;
	int ret;

	ret = kmod_dump_index(ctx, index, fileno(f));
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		h = fnv(h, line, strlen(line));
		lines++;
	}
	fclose(f);
	printf("dump %d: %d %ld %016" PRIx64 "\n", (int)index, ret, lines, h);
}

int main(int argc, char *argv[])
{
	const char *config_paths[2];
	struct kmod_ctx *ctx;
	char line[4096];
	FILE *queries;

	if (argc != 4) {
		fprintf(stderr, "usage: %s MODULE_DIR CONFIG_DIR QUERIES\n", argv[0]);
		return 2;
	}
	config_paths[0] = argv[2];
	config_paths[1] = NULL;
	ctx = kmod_new(argv[1], config_paths);
	if (ctx == NULL) {
		fprintf(stderr, "kmod_new failed\n");
		return 1;
	}
	printf("dirname: %s\n", kmod_get_dirname(ctx));
	printf("load_resources: %d\n", kmod_load_resources(ctx));
	printf("validate_resources: %d\n", kmod_validate_resources(ctx));

	config("blacklists", kmod_config_get_blacklists(ctx));
	config("install", kmod_config_get_install_commands(ctx));
	config("remove", kmod_config_get_remove_commands(ctx));
	config("aliases", kmod_config_get_aliases(ctx));
	config("options", kmod_config_get_options(ctx));
	config("softdeps", kmod_config_get_softdeps(ctx));

	dump(ctx, KMOD_INDEX_MODULES_DEP);
	dump(ctx, KMOD_INDEX_MODULES_ALIAS);
	dump(ctx, KMOD_INDEX_MODULES_SYMBOL);
	dump(ctx, KMOD_INDEX_MODULES_BUILTIN_ALIAS);
	dump(ctx, KMOD_INDEX_MODULES_BUILTIN);

	queries = fopen(argv[3], "r");
	if (queries == NULL) {
		perror(argv[3]);
		return 1;
	}
	while (fgets(line, sizeof(line), queries)) {
		char *arg = strchr(line, ' ');
		struct kmod_module *mod = NULL;
		int ret;

		line[strcspn(line, "\n")] = '\0';
		if (arg == NULL)
			continue;
		*arg++ = '\0';
		printf("> %s %s\n", line, arg);
		if (strcmp(line, "lookup") == 0) {
			struct kmod_list *list = NULL, *filtered = NULL, *l;

			ret = kmod_module_new_from_lookup(ctx, arg, &list);
			printf("lookup: %d\n", ret);
			kmod_list_foreach(l, list) {
				struct kmod_module *m = kmod_module_get_module(l);
				describe(m);
				printf("  dry run: %d blacklist: %d\n",
				       kmod_module_probe_insert_module(m, KMOD_PROBE_DRY_RUN, NULL,
								       NULL, NULL, NULL),
				       kmod_module_probe_insert_module(
					       m, KMOD_PROBE_DRY_RUN | KMOD_PROBE_APPLY_BLACKLIST,
					       NULL, NULL, NULL, NULL));
				kmod_module_unref(m);
			}
			printf("reverse:");
			kmod_list_foreach_reverse(l, list) {
				struct kmod_module *m = kmod_module_get_module(l);
				printf(" %s", kmod_module_get_name(m));
				kmod_module_unref(m);
			}
			printf("\n");
			ret = kmod_module_apply_filter(ctx, KMOD_FILTER_BLACKLIST, list, &filtered);
			printf("filter blacklist: %d\n", ret);
			print_modules("kept", filtered);
			kmod_module_unref_list(filtered);
			filtered = NULL;
			ret = kmod_module_apply_filter(ctx, KMOD_FILTER_BUILTIN, list, &filtered);
			printf("filter builtin: %d\n", ret);
			print_modules("kept", filtered);
			kmod_module_unref_list(filtered);
			kmod_module_unref_list(list);
			continue;
		}
		if (strcmp(line, "probe") == 0) {
			ret = kmod_module_new_from_name(ctx, arg, &mod);
			printf("probe: %d %d\n", ret,
			       kmod_module_probe_insert_module(mod, 0, NULL, NULL, NULL, NULL));
			kmod_module_unref(mod);
			continue;
		}
		if (strcmp(line, "name") == 0)
			ret = kmod_module_new_from_name(ctx, arg, &mod);
		else if (strcmp(line, "path") == 0)
			ret = kmod_module_new_from_path(ctx, arg, &mod);
		else if (strcmp(line, "namelookup") == 0)
			ret = kmod_module_new_from_name_lookup(ctx, arg, &mod);
		else
			continue;
		printf("%s: %d\n", line, ret);
		if (mod != NULL) {
			describe(mod);
			kmod_module_unref(mod);
		}
	}
	fclose(queries);

	printf("unref: %s\n", kmod_unref(ctx) == NULL ? "freed" : "alive");
	return 0;
}
