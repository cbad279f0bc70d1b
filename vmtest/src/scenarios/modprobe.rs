//! The modprobe scenarios: the sample modules installed in `/lib/modules/RELEASE/extra` and
//! indexed by our depmod, then loaded and removed by name, by alias, with options from
//! modprobe.d, the kernel command line and the modprobe command line, and under a blacklist.
//!
//! Expected outputs and precedence are kmod 30's, checked on the host with kmod's modprobe over
//! the same files (and a bind-mounted `/proc/cmdline`): config options come first, then the
//! kernel command line's, then modprobe's own arguments, and the kernel keeps the last value;
//! a blacklisted alias is skipped silently with exit status 0; `-b` applies the blacklist to the
//! name given, never to dependencies.

use std::path::{Path, PathBuf};

use vmtest::KMODS_DIR;
use vmtest::cmdline::{
    BLACKLIST as CMDLINE_BLACKLIST, GREETING as CMDLINE_GREETING, GREETING_VALUE as FROM_CMDLINE,
};

use super::{Ctx, HELLO_API, kernel_release};

/// hello_api's parameter in sysfs.
const GREETING: &str = "/sys/module/hello_api/parameters/greeting";
/// The module's default greeting (kmods/hello_api/hello_api.c).
const DEFAULT_GREETING: &str = "Hello, World!";
/// hello_api's alias (`MODULE_ALIAS` in kmods/hello_api/hello_api.c).
const ALIAS: &str = "modkit:hello-api";
/// The configuration file the scenarios write, removed again at the end.
const CONF_DIR: &str = "/etc/modprobe.d";
const CONF: &str = "/etc/modprobe.d/vmtest.conf";

/// The index files `depmod -a` must write (kmod 30's set; the builtin ones are empty here).
const INDEX_FILES: &[&str] = &[
    "modules.dep",
    "modules.dep.bin",
    "modules.alias",
    "modules.alias.bin",
    "modules.symbols",
    "modules.symbols.bin",
    "modules.softdep",
    "modules.devname",
    "modules.builtin.bin",
    "modules.builtin.alias.bin",
];

/// `/lib/modules/RELEASE` with the sample modules installed in `extra/` and indexed; restored
/// to what it was (other scenarios may have their own modules and indexes there) by `restore`.
struct ModuleDir {
    /// `/lib/modules/RELEASE`.
    dir: PathBuf,
    /// The extension of the installed files: `ko` or `ko.xz`.
    ext: String,
    /// `modules.*` files that were there before, with their contents.
    saved: Vec<(PathBuf, Vec<u8>)>,
}

impl ModuleDir {
    /// `/lib/modules/RELEASE` as modprobe will look for it; nothing is changed yet.
    fn new(ctx: &Ctx<'_>) -> ModuleDir {
        let release = kernel_release();
        let dir = PathBuf::from(format!("/lib/modules/{release}"));
        let saved = index_files(&dir)
            .into_iter()
            .filter_map(|path| Some((path.clone(), std::fs::read(&path).ok()?)))
            .collect();
        ModuleDir {
            dir,
            ext: ctx.env.module_ext.clone(),
            saved,
        }
    }

    fn display(&self) -> String {
        self.dir.display().to_string()
    }

    /// Where `module` is installed.
    fn path(&self, module: &str) -> String {
        format!("{}/extra/{module}.{}", self.display(), self.ext)
    }

    /// Copies the sample modules into `extra/` and runs `depmod -a`; false when that failed.
    fn install(&self, ctx: &mut Ctx<'_>) -> bool {
        let extra = self.dir.join("extra");
        if let Err(err) = std::fs::create_dir_all(&extra) {
            return ctx.check(false, format!("mkdir -p {}: {err}", extra.display()));
        }
        for module in ["hello_api", "hello_feature"] {
            let from = format!("{KMODS_DIR}/{module}.{}", self.ext);
            let to = self.path(module);
            ctx.log(format!("# cp {from} {to}"));
            if let Err(err) = std::fs::copy(&from, &to) {
                return ctx.check(false, format!("copying {from} to {to}: {err}"));
            }
        }
        let out = ctx.run(&["/sbin/depmod", "-a"]);
        if !ctx.expect_success(&out) {
            return false;
        }
        let mut all = true;
        for name in INDEX_FILES {
            let path = self.dir.join(name);
            all &= ctx.check(path.is_file(), format!("depmod wrote {}", path.display()));
        }
        all
    }

    /// Removes what the scenario added: `extra/`, the index files depmod wrote (putting back
    /// those that were there before) and the modprobe.d file.
    fn restore(self, ctx: &mut Ctx<'_>) {
        let mut problems = Vec::new();
        let extra = self.dir.join("extra");
        if extra.exists()
            && let Err(err) = std::fs::remove_dir_all(&extra)
        {
            problems.push(format!("removing {}: {err}", extra.display()));
        }
        for path in index_files(&self.dir) {
            if !self.saved.iter().any(|(saved, _)| *saved == path)
                && let Err(err) = std::fs::remove_file(&path)
            {
                problems.push(format!("removing {}: {err}", path.display()));
            }
        }
        for (path, bytes) in &self.saved {
            if let Err(err) = std::fs::write(path, bytes) {
                problems.push(format!("restoring {}: {err}", path.display()));
            }
        }
        if Path::new(CONF).exists()
            && let Err(err) = std::fs::remove_file(CONF)
        {
            problems.push(format!("removing {CONF}: {err}"));
        }
        ctx.log(format!(
            "# restored {} and removed {CONF} (for the next scenario)",
            self.display()
        ));
        for problem in problems {
            ctx.check(false, problem);
        }
    }
}

/// The `modules.*` files in `dir`.
fn index_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("modules."))
        .map(|e| e.path())
        .collect()
}

/// Writes the modprobe.d file, showing it in the transcript.
fn write_conf(ctx: &mut Ctx<'_>, text: &str) -> bool {
    ctx.log(format!("# {CONF}:"));
    for line in text.lines() {
        ctx.log(format!("#   {line}"));
    }
    let result = std::fs::create_dir_all(CONF_DIR).and_then(|()| std::fs::write(CONF, text));
    ctx.check(result.is_ok(), format!("writing {CONF}: {result:?}"))
}

/// `hello_api`'s line in `/proc/modules` names `hello_feature` as a user.
fn used_by_feature() -> bool {
    std::fs::read_to_string("/proc/modules")
        .unwrap_or_default()
        .lines()
        .find(|line| line.split_whitespace().next() == Some("hello_api"))
        .and_then(|line| line.split_whitespace().nth(3).map(str::to_string))
        .is_some_and(|users| users.split(',').any(|u| u == "hello_feature"))
}

/// The `insmod` lines `modprobe -v`/`--show-depends` print for hello_feature (kmod's
/// `print_action`: path, a space, the options).
fn insmod_lines(dir: &ModuleDir, api_options: &str) -> String {
    format!(
        "insmod {} {api_options}\ninsmod {} \n",
        dir.path("hello_api"),
        dir.path("hello_feature")
    )
}

/// Loads hello_api through `argv` and checks the greeting it got, in sysfs and in its kernel
/// message; then removes it with `modprobe -r`.
fn load_api_expecting(ctx: &mut Ctx<'_>, argv: &[&str], greeting: &str) {
    let out = ctx.run(argv);
    ctx.expect_success(&out);
    ctx.expect_kmsg(&out, &format!("[hello_api] {greeting}"));
    ctx.expect_file(GREETING, greeting);
    let out = ctx.run(&["/sbin/modprobe", "-r", "hello_api"]);
    ctx.expect_success(&out);
    ctx.expect_loaded("hello_api", false);
}

/// Removes hello_feature and, as an unused dependency, hello_api, checking the goodbyes.
fn remove_feature(ctx: &mut Ctx<'_>) {
    let out = ctx.run(&["/sbin/modprobe", "-r", "hello_feature"]);
    ctx.expect_success(&out);
    ctx.expect_kmsg(&out, "[hello_feature] Bye Bye, World!");
    ctx.expect_kmsg(&out, "[hello_api] Bye bye, World!");
    ctx.expect_loaded("hello_feature", false);
    ctx.expect_loaded("hello_api", false);
}

/// The modprobe story: nothing before indexing; after `depmod -a`, dependencies in order, by
/// name and by alias, and `modprobe -r` removing the unused dependency too.
pub fn modprobe(ctx: &mut Ctx<'_>) {
    let dir = ModuleDir::new(ctx);
    ctx.log(format!(
        "  note: installing the .{} modules in {}/extra",
        dir.ext,
        dir.display()
    ));
    let out = ctx.run(&["/sbin/modprobe", "hello_feature"]);
    ctx.check(out.status == Some(1), "exits with status 1");
    ctx.expect_stderr(
        &out,
        &format!(
            "modprobe: FATAL: Module hello_feature not found in directory {}",
            dir.display()
        ),
    );
    ctx.expect_loaded("hello_feature", false);

    if dir.install(ctx) {
        modprobe_indexed(ctx, &dir);
    }
    dir.restore(ctx);
}

fn modprobe_indexed(ctx: &mut Ctx<'_>, dir: &ModuleDir) {
    let modules_dep = std::fs::read_to_string(dir.dir.join("modules.dep")).unwrap_or_default();
    for line in modules_dep.lines() {
        ctx.log(format!("  modules.dep| {line}"));
    }
    let ext = &dir.ext;
    for want in [
        format!("extra/hello_api.{ext}:"),
        format!("extra/hello_feature.{ext}: extra/hello_api.{ext}"),
    ] {
        ctx.check(
            modules_dep.lines().any(|line| line == want),
            format!("modules.dep has the line {want:?}"),
        );
    }

    let out = ctx.run(&["/sbin/modprobe", "--show-depends", "hello_feature"]);
    ctx.expect_success(&out);
    ctx.expect_stdout(&out, &insmod_lines(dir, ""));
    ctx.expect_loaded("hello_api", false);

    let out = ctx.run(&["/sbin/modprobe", "-v", "hello_feature"]);
    ctx.expect_success(&out);
    ctx.expect_stdout(&out, &insmod_lines(dir, ""));
    ctx.expect_kmsg(&out, "[hello_api] Hello, World!");
    ctx.expect_kmsg(&out, "[hello_feature] Hello, World!");
    ctx.expect_kmsg_order("[hello_api] Hello, World!", "[hello_feature] Hello, World!");
    ctx.expect_loaded("hello_api", true);
    ctx.expect_loaded("hello_feature", true);
    ctx.check(
        used_by_feature(),
        "/proc/modules: hello_api is used by hello_feature",
    );
    let out = ctx.run(&["/sbin/lsmod"]);
    ctx.expect_success(&out);
    let api_line = out
        .stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some("hello_api"))
        .unwrap_or_default();
    ctx.check(
        api_line.split_whitespace().nth(3) == Some("hello_feature"),
        "lsmod: hello_api used by hello_feature",
    );

    // Already loaded: nothing to do, and that is success.
    let out = ctx.run(&["/sbin/modprobe", "hello_feature"]);
    ctx.expect_success(&out);
    ctx.expect_silent(&out);

    remove_feature(ctx);
    ctx.expect_kmsg_order(
        "[hello_feature] Bye Bye, World!",
        "[hello_api] Bye bye, World!",
    );
    for module in ["hello_feature", "hello_api"] {
        let path = format!("/sys/module/{module}");
        ctx.check(!Path::new(&path).exists(), format!("{path} is gone"));
    }

    // By alias, through modules.alias.bin.
    let out = ctx.run(&["/sbin/modprobe", ALIAS]);
    ctx.expect_success(&out);
    ctx.expect_kmsg(&out, "[hello_api] Hello, World!");
    ctx.expect_loaded("hello_api", true);
    let out = ctx.run(&["/sbin/modprobe", "-r", ALIAS]);
    ctx.expect_success(&out);
    ctx.expect_kmsg(&out, "[hello_api] Bye bye, World!");
    ctx.expect_loaded("hello_api", false);
}

/// `options` in modprobe.d reach the module, loaded by name or as a dependency; arguments on
/// modprobe's command line come after them and win.
pub fn options(ctx: &mut Ctx<'_>) {
    ctx.check(
        !ctx.env.cmdline.contains("hello_api."),
        "no hello_api.* options on the kernel command line of this boot",
    );
    let dir = ModuleDir::new(ctx);
    if dir.install(ctx)
        && write_conf(
            ctx,
            "# written by vmtest-init\noptions hello_api greeting=\"Hello from modprobe.d\"\n",
        )
    {
        let out = ctx.run(&["/sbin/modprobe", "--show-depends", "hello_feature"]);
        ctx.expect_success(&out);
        ctx.expect_stdout(
            &out,
            &insmod_lines(&dir, "greeting=\"Hello from modprobe.d\" "),
        );
        load_api_expecting(
            ctx,
            &["/sbin/modprobe", "hello_api"],
            "Hello from modprobe.d",
        );

        let out = ctx.run(&["/sbin/modprobe", "hello_feature"]);
        ctx.expect_success(&out);
        ctx.expect_kmsg(&out, "[hello_api] Hello from modprobe.d");
        ctx.expect_file(GREETING, "Hello from modprobe.d");
        remove_feature(ctx);

        load_api_expecting(
            ctx,
            &["/sbin/modprobe", "hello_api", "greeting=from-argv"],
            "from-argv",
        );
    }
    dir.restore(ctx);
}

/// `hello_api.greeting=` on the kernel command line: the kernel itself ignores it (insmod gets
/// the default), modprobe applies it, after modprobe.d's options, so it wins over them.
pub fn cmdline(ctx: &mut Ctx<'_>) {
    if !ctx.check(
        ctx.env.cmdline.contains(CMDLINE_GREETING),
        format!("/proc/cmdline has {CMDLINE_GREETING}"),
    ) {
        ctx.log(format!("  /proc/cmdline: {}", ctx.env.cmdline));
        return;
    }
    // Not the kernel's business: a plain insmod gets the module's default.
    let out = ctx.run(&["/sbin/insmod", HELLO_API]);
    ctx.expect_success(&out);
    ctx.expect_kmsg(&out, &format!("[hello_api] {DEFAULT_GREETING}"));
    ctx.expect_file(GREETING, DEFAULT_GREETING);
    let out = ctx.run(&["/sbin/rmmod", "hello_api"]);
    ctx.expect_success(&out);

    let dir = ModuleDir::new(ctx);
    if dir.install(ctx) {
        load_api_expecting(ctx, &["/sbin/modprobe", "hello_api"], FROM_CMDLINE);

        if write_conf(
            ctx,
            "# written by vmtest-init\noptions hello_api greeting=from-modprobe.d\n",
        ) {
            let out = ctx.run(&["/sbin/modprobe", "--show-depends", "hello_api"]);
            ctx.expect_success(&out);
            ctx.expect_stdout(
                &out,
                &format!(
                    "insmod {} greeting=from-modprobe.d greeting=\"{FROM_CMDLINE}\" \n",
                    dir.path("hello_api")
                ),
            );
            load_api_expecting(ctx, &["/sbin/modprobe", "hello_api"], FROM_CMDLINE);
            load_api_expecting(
                ctx,
                &["/sbin/modprobe", "hello_api", "greeting=from-argv"],
                "from-argv",
            );
        }
    }
    dir.restore(ctx);
}

/// `modprobe.blacklist=hello_api` on the kernel command line: aliases of hello_api are skipped
/// silently, the name itself still loads (unless `-b`), and it still loads as a dependency.
pub fn blacklist(ctx: &mut Ctx<'_>) {
    if !ctx.check(
        ctx.env.cmdline.contains(CMDLINE_BLACKLIST),
        format!("/proc/cmdline has {CMDLINE_BLACKLIST}"),
    ) {
        ctx.log(format!("  /proc/cmdline: {}", ctx.env.cmdline));
        return;
    }
    let dir = ModuleDir::new(ctx);
    if dir.install(ctx) {
        blacklist_indexed(ctx);
    }
    dir.restore(ctx);
}

fn blacklist_indexed(ctx: &mut Ctx<'_>) {
    let out = ctx.run(&["/sbin/modprobe", "-c"]);
    ctx.expect_success(&out);
    ctx.check(
        out.stdout.lines().any(|line| line == "blacklist hello_api"),
        "modprobe -c shows \"blacklist hello_api\"",
    );

    // An alias of a blacklisted module: skipped, silently, successfully.
    for argv in [
        &["/sbin/modprobe", ALIAS][..],
        &["/sbin/modprobe", "--show-depends", ALIAS][..],
    ] {
        let out = ctx.run(argv);
        ctx.expect_success(&out);
        ctx.expect_silent(&out);
        ctx.expect_no_kmsg(&out, "[hello_api]");
        ctx.expect_loaded("hello_api", false);
    }

    // By name the blacklist does not apply...
    let out = ctx.run(&["/sbin/modprobe", "hello_api"]);
    ctx.expect_success(&out);
    ctx.expect_kmsg(&out, &format!("[hello_api] {FROM_CMDLINE}"));
    ctx.expect_loaded("hello_api", true);
    let out = ctx.run(&["/sbin/modprobe", "-r", "hello_api"]);
    ctx.expect_success(&out);
    ctx.expect_loaded("hello_api", false);

    // ...unless asked with -b.
    let out = ctx.run(&["/sbin/modprobe", "-b", "hello_api"]);
    ctx.expect_success(&out);
    ctx.expect_silent(&out);
    ctx.expect_no_kmsg(&out, "[hello_api]");
    ctx.expect_loaded("hello_api", false);

    // A dependency is loaded whatever the blacklist says, with -b too.
    for argv in [
        &["/sbin/modprobe", "hello_feature"][..],
        &["/sbin/modprobe", "-b", "hello_feature"][..],
    ] {
        let out = ctx.run(argv);
        ctx.expect_success(&out);
        ctx.expect_kmsg(&out, &format!("[hello_api] {FROM_CMDLINE}"));
        ctx.expect_kmsg(&out, "[hello_feature] Hello, World!");
        ctx.expect_loaded("hello_api", true);
        ctx.expect_loaded("hello_feature", true);
        remove_feature(ctx);
    }
}

/// The tools before `/proc` is mounted, as in early boot or an initramfs: the kernel release
/// comes from uname(2), as in kmod, so `modinfo` and `modprobe` find `/lib/modules/RELEASE`
/// without `/proc/sys/kernel/osrelease`, and loading and removing by name work without
/// `/proc/cmdline` and `/proc/modules` (loaded state is read from `/sys/module`).
pub fn no_proc(ctx: &mut Ctx<'_>) {
    let dir = ModuleDir::new(ctx);
    if dir.install(ctx) {
        ctx.log("# umount /proc");
        match sys_mount::unmount("/proc", sys_mount::UnmountFlags::DETACH) {
            Ok(()) => {
                without_proc(ctx, &dir);
                ctx.log("# mount -t proc proc /proc");
                let mounted = sys_mount::Mount::builder()
                    .fstype("proc")
                    .mount("proc", "/proc");
                ctx.check(
                    mounted.is_ok(),
                    format!("mounting /proc again: {mounted:?}"),
                );
            }
            Err(err) => {
                ctx.check(false, format!("unmounting /proc: {err}"));
            }
        }
        ctx.expect_loaded("hello_feature", false);
        ctx.expect_loaded("hello_api", false);
    }
    dir.restore(ctx);
}

fn without_proc(ctx: &mut Ctx<'_>, dir: &ModuleDir) {
    let gone =
        !Path::new("/proc/sys/kernel/osrelease").exists() && !Path::new("/proc/modules").exists();
    if !ctx.check(
        gone,
        "/proc/modules and /proc/sys/kernel/osrelease are absent",
    ) {
        return;
    }
    let out = ctx.run(&["/sbin/modinfo", "-F", "depends", "hello_feature"]);
    ctx.expect_success(&out);
    ctx.expect_stdout(&out, "hello_api\n");
    let out = ctx.run(&["/sbin/modinfo", "-n", "hello_api"]);
    ctx.expect_success(&out);
    ctx.expect_stdout(&out, &format!("{}\n", dir.path("hello_api")));

    let out = ctx.run(&["/sbin/modprobe", "-v", "hello_feature"]);
    ctx.expect_success(&out);
    ctx.expect_stdout(&out, &insmod_lines(dir, ""));
    ctx.expect_kmsg_order("[hello_api] Hello, World!", "[hello_feature] Hello, World!");
    for module in ["hello_api", "hello_feature"] {
        let state = format!("/sys/module/{module}/initstate");
        ctx.expect_file(&state, "live");
    }
    // Loaded already: modprobe sees it in /sys/module and does nothing.
    let out = ctx.run(&["/sbin/modprobe", "hello_feature"]);
    ctx.expect_success(&out);
    ctx.expect_silent(&out);

    let out = ctx.run(&["/sbin/modprobe", "-r", "hello_feature"]);
    ctx.expect_success(&out);
    ctx.expect_kmsg(&out, "[hello_feature] Bye Bye, World!");
    ctx.expect_kmsg(&out, "[hello_api] Bye bye, World!");
    for module in ["hello_api", "hello_feature"] {
        let path = format!("/sys/module/{module}");
        ctx.check(!Path::new(&path).exists(), format!("{path} is gone"));
    }
}
