//! The decision logic of probe, remove and the Guix operations against a recording kernel over
//! a fake module directory and fake `/sys/module`, with the sample modules and small configs:
//! exact syscalls, action lines, messages and commands.
#![forbid(unsafe_code)]

use std::ffi::CStr;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use modkit::config::modprobe::ModprobeConfig;
use modkit::guix;
use modkit::syscalls::{Call, Errno, Kernel, ProcDir, RecordingKernel, SysModule, Syscall};
use modkit::{Blacklist, Context, Level, ProbeOptions, ProbeOutcome, Recorder, RemoveOptions};
use modkit_index::{IndexBuilder, Layout};

const VERSION: &str = "1.0-test";

/// A fake root: `lib/modules/1.0-test` with the sample modules (and two copies of hello_api
/// named `other` and `other2`), its indexes, and fake `/sys/module` and `/proc` trees.
struct Fixture {
    root: PathBuf,
}

fn write_index(path: &Path, entries: &[(&str, &str)]) {
    let mut builder = IndexBuilder::new();
    for (i, (key, value)) in entries.iter().enumerate() {
        builder.insert(key, value, i as u32).unwrap();
    }
    fs::write(path, builder.write(Layout::PostOrder).unwrap()).unwrap();
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let root = std::env::temp_dir().join(format!("modkit-probe-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dir = root.join("lib/modules").join(VERSION);
        fs::create_dir_all(dir.join("extra")).unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kmods/fixtures/6.1");
        for (file, from) in [
            ("hello_api.ko", "hello_api.ko"),
            ("hello_feature.ko", "hello_feature.ko"),
            ("other.ko", "hello_api.ko"),
            ("other2.ko", "hello_api.ko"),
        ] {
            fs::copy(fixtures.join(from), dir.join("extra").join(file)).unwrap();
        }
        write_index(
            &dir.join("modules.dep.bin"),
            &[
                ("hello_api", "extra/hello_api.ko:"),
                (
                    "hello_feature",
                    "extra/hello_feature.ko: extra/hello_api.ko",
                ),
                ("other", "extra/other.ko:"),
                ("other2", "extra/other2.ko:"),
            ],
        );
        write_index(
            &dir.join("modules.alias.bin"),
            &[("modkit:hello_api", "hello_api")],
        );
        write_index(
            &dir.join("modules.symbols.bin"),
            &[("symbol:api_test", "hello_api")],
        );
        write_index(&dir.join("modules.builtin.bin"), &[("ext4", "")]);
        write_index(
            &dir.join("modules.builtin.alias.bin"),
            &[("fs_ext4", "ext4")],
        );
        fs::create_dir_all(root.join("sys/module")).unwrap();
        fs::create_dir_all(root.join("proc")).unwrap();
        fs::write(root.join("proc/modules"), "").unwrap();
        Fixture { root }
    }

    fn dir(&self) -> PathBuf {
        self.root.join("lib/modules").join(VERSION)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir().join("extra").join(format!("{name}.ko"))
    }

    /// A context with `config` (modprobe.d text) and the softdep that depmod writes for
    /// hello_feature from its `MODULE_SOFTDEP("post: hello_api")`.
    fn context(&self, config: &str) -> Context {
        let mut parsed = ModprobeConfig::default();
        let mut warnings = Vec::new();
        parsed.parse(config, Path::new("test.conf"), &mut warnings);
        parsed.parse(
            "softdep hello_feature post: hello_api\n",
            &self.dir().join("modules.softdep"),
            &mut warnings,
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        Context::new(self.dir(), parsed)
    }

    fn kernel(&self) -> LiveKernel {
        LiveKernel {
            inner: RecordingKernel::new(
                SysModule::new(self.root.join("sys/module")),
                ProcDir::new(self.root.join("proc")),
            ),
            sys: self.root.join("sys/module"),
        }
    }

    /// Mark a module as loaded in the fake `/sys/module`.
    fn loaded(&self, name: &str, refcnt: u32, holders: &[&str]) {
        let dir = self.root.join("sys/module").join(name);
        fs::create_dir_all(dir.join("holders")).unwrap();
        fs::write(dir.join("initstate"), "live\n").unwrap();
        fs::write(dir.join("refcnt"), format!("{refcnt}\n")).unwrap();
        for holder in holders {
            File::create(dir.join("holders").join(holder)).unwrap();
        }
    }

    fn builtin(&self, name: &str) {
        fs::create_dir_all(self.root.join("sys/module").join(name).join("parameters")).unwrap();
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// A recording kernel whose fake `/sys/module` follows the calls, as the real one does: a
/// loaded module becomes live, an unloaded one disappears and stops holding others.
struct LiveKernel {
    inner: RecordingKernel,
    sys: PathBuf,
}

impl LiveKernel {
    /// The calls as (syscall, module file name or module name, params).
    fn calls(&self) -> Vec<(&'static str, String, String)> {
        self.inner
            .calls()
            .into_iter()
            .map(|call| match call {
                Call::FinitModule { file, params, .. } => (
                    "finit",
                    file.file_name().unwrap().to_string_lossy().into_owned(),
                    params,
                ),
                Call::InitModule { params, .. } => ("init", String::new(), params),
                Call::DeleteModule { name, flags } => ("delete", name, flags.to_string()),
            })
            .collect()
    }
}

impl Kernel for LiveKernel {
    fn finit_module(&self, file: &File, params: &CStr, flags: u32) -> Result<(), Errno> {
        self.inner.finit_module(file, params, flags)?;
        let calls = self.inner.calls();
        if let Some(Call::FinitModule { file, .. }) = calls.last() {
            let name = modkit::name::path_to_modname(file).unwrap();
            let dir = self.sys.join(&name);
            fs::create_dir_all(dir.join("holders")).unwrap();
            fs::write(dir.join("initstate"), "live\n").unwrap();
            fs::write(dir.join("refcnt"), "0\n").unwrap();
        }
        Ok(())
    }
    fn init_module(&self, image: &[u8], params: &CStr) -> Result<(), Errno> {
        self.inner.init_module(image, params)
    }
    fn delete_module(&self, name: &CStr, flags: u32) -> Result<(), Errno> {
        self.inner.delete_module(name, flags)?;
        let name = name.to_string_lossy().into_owned();
        let _ = fs::remove_dir_all(self.sys.join(&name));
        for entry in fs::read_dir(&self.sys).unwrap().flatten() {
            let holder = entry.path().join("holders").join(&name);
            if holder.exists() {
                fs::remove_file(holder).unwrap();
                let refcnt = entry.path().join("refcnt");
                let count: u32 = fs::read_to_string(&refcnt).unwrap().trim().parse().unwrap();
                fs::write(refcnt, format!("{}\n", count - 1)).unwrap();
            }
        }
        Ok(())
    }
    fn sys_module(&self) -> &SysModule {
        self.inner.sys_module()
    }
    fn proc_dir(&self) -> &ProcDir {
        self.inner.proc_dir()
    }
}

fn show() -> ProbeOptions {
    ProbeOptions {
        show: true,
        ..ProbeOptions::default()
    }
}

fn probe_name(
    ctx: &mut Context,
    kernel: &LiveKernel,
    name: &str,
    extra: &str,
    options: &ProbeOptions,
    rec: &mut Recorder,
) -> Vec<Result<ProbeOutcome, Errno>> {
    let ids = ctx.lookup(name).unwrap();
    assert!(!ids.is_empty(), "{name} not found");
    let mut runner = rec.clone();
    let results = ids
        .into_iter()
        .map(|id| modkit::probe(ctx, kernel, id, extra, options, rec, &mut runner))
        .collect();
    rec.commands = runner.commands;
    results
}

fn finit(name: &str, params: &str) -> (&'static str, String, String) {
    ("finit", format!("{name}.ko"), params.to_owned())
}

#[test]
fn dependencies_first_then_the_module_then_its_post_softdep() {
    let fx = Fixture::new("order");
    let kernel = fx.kernel();
    let mut ctx = fx.context("");
    let mut rec = Recorder::default();
    let result = probe_name(&mut ctx, &kernel, "hello-feature", "", &show(), &mut rec);
    assert_eq!(result, vec![Ok(ProbeOutcome::Done)]);
    // hello_api is loaded as a dependency; as the post softdep it is then already live.
    assert_eq!(
        kernel.calls(),
        vec![finit("hello_api", ""), finit("hello_feature", "")]
    );
    let api = fx.file("hello_api").display().to_string();
    let feature = fx.file("hello_feature").display().to_string();
    assert_eq!(
        rec.shown,
        vec![format!("insmod {api} "), format!("insmod {feature} ")]
    );
    assert!(rec.messages.is_empty());
}

#[test]
fn a_dry_run_shows_what_kmod_shows_and_loads_nothing() {
    let fx = Fixture::new("dry");
    let kernel = fx.kernel();
    let mut ctx = fx.context("");
    let mut rec = Recorder::default();
    let options = ProbeOptions {
        dry_run: true,
        ignore_loaded: true,
        ..show()
    };
    probe_name(&mut ctx, &kernel, "hello_feature", "", &options, &mut rec);
    let api = fx.file("hello_api").display().to_string();
    let feature = fx.file("hello_feature").display().to_string();
    // kmod 30 lists hello_api twice: as a dependency and as the post soft dependency.
    assert_eq!(
        rec.shown,
        vec![
            format!("insmod {api} "),
            format!("insmod {feature} "),
            format!("insmod {api} "),
        ]
    );
    assert!(kernel.calls().is_empty());
}

#[test]
fn options_from_config_then_arguments_for_the_module_only() {
    let fx = Fixture::new("options");
    let kernel = fx.kernel();
    let mut ctx = fx.context("options hello_api greeting=hi\noptions hello_feature a=1 b=2\n");
    let mut rec = Recorder::default();
    probe_name(
        &mut ctx,
        &kernel,
        "hello_feature",
        "c=\"x y\"",
        &show(),
        &mut rec,
    );
    assert_eq!(
        kernel.calls(),
        vec![
            finit("hello_api", "greeting=hi "),
            finit("hello_feature", "a=1 b=2 c=\"x y\"")
        ]
    );
}

#[test]
fn every_softdep_line_counts_unless_asked_to_do_as_kmod() {
    let config = "softdep hello_api pre: other\nsoftdep hello_api post: other2\n";
    let fx = Fixture::new("softdeps");
    let kernel = fx.kernel();
    let mut ctx = fx.context(config);
    let mut rec = Recorder::default();
    probe_name(&mut ctx, &kernel, "hello_api", "", &show(), &mut rec);
    assert_eq!(
        kernel.calls(),
        vec![
            finit("other", ""),
            finit("hello_api", ""),
            finit("other2", "")
        ]
    );

    let fx = Fixture::new("softdeps-kmod");
    let kernel = fx.kernel();
    let mut ctx = fx.context(config);
    ctx.set_first_softdep_only(true);
    probe_name(
        &mut ctx,
        &kernel,
        "hello_api",
        "",
        &show(),
        &mut Recorder::default(),
    );
    assert_eq!(
        kernel.calls(),
        vec![finit("other", ""), finit("hello_api", "")]
    );
}

#[test]
fn a_failing_soft_dependency_does_not_stop_the_probe_but_a_dependency_does() {
    let fx = Fixture::new("failures");
    let kernel = fx.kernel();
    kernel
        .inner
        .script(Syscall::FinitModule, Err(Errno(libc::EINVAL)));
    let mut ctx = fx.context("softdep hello_api pre: other\n");
    let mut rec = Recorder::default();
    let result = probe_name(&mut ctx, &kernel, "hello_api", "", &show(), &mut rec);
    assert_eq!(result, vec![Ok(ProbeOutcome::Done)]);
    assert_eq!(
        kernel.calls(),
        vec![finit("other", ""), finit("hello_api", "")]
    );

    let fx = Fixture::new("failures-dep");
    let kernel = fx.kernel();
    kernel
        .inner
        .script(Syscall::FinitModule, Err(Errno(libc::ENOENT)));
    let mut ctx = fx.context("");
    let mut rec = Recorder::default();
    let result = probe_name(&mut ctx, &kernel, "hello_feature", "", &show(), &mut rec);
    assert_eq!(result, vec![Err(Errno(libc::ENOENT))]);
    assert_eq!(kernel.calls(), vec![finit("hello_api", "")]);
    let api = fx.file("hello_api").display().to_string();
    assert_eq!(
        rec.messages,
        vec![(
            Level::Info,
            format!("Failed to insert module '{api}': No such file or directory")
        )]
    );
}

#[test]
fn the_blacklist_applies_to_aliases_and_with_b_to_names() {
    let config = "blacklist hello_api\n";
    let fx = Fixture::new("blacklist");
    let kernel = fx.kernel();
    let mut ctx = fx.context(config);
    let mut rec = Recorder::default();
    for alias in ["modkit:hello_api", "symbol:api_test"] {
        let result = probe_name(&mut ctx, &kernel, alias, "", &show(), &mut rec);
        assert_eq!(result, vec![Ok(ProbeOutcome::Blacklisted)], "{alias}");
    }
    let with_b = ProbeOptions {
        blacklist: Blacklist::Module,
        ..show()
    };
    let result = probe_name(&mut ctx, &kernel, "hello_api", "", &with_b, &mut rec);
    assert_eq!(result, vec![Ok(ProbeOutcome::Blacklisted)]);
    assert!(kernel.calls().is_empty() && rec.shown.is_empty());
    // By name, without -b: loaded; and a blacklisted dependency is loaded all the same.
    let result = probe_name(&mut ctx, &kernel, "hello_feature", "", &show(), &mut rec);
    assert_eq!(result, vec![Ok(ProbeOutcome::Done)]);
    assert_eq!(
        kernel.calls(),
        vec![finit("hello_api", ""), finit("hello_feature", "")]
    );
}

#[test]
fn install_commands_replace_loading_with_cmdline_opts_substituted() {
    let config = "install hello_api /bin/echo $CMDLINE_OPTS; modprobe -i hello_api\noptions hello_api greeting=hi\n";
    let fx = Fixture::new("install");
    let kernel = fx.kernel();
    let mut ctx = fx.context(config);
    let mut rec = Recorder::default();
    let result = probe_name(&mut ctx, &kernel, "hello_api", "x=1", &show(), &mut rec);
    assert_eq!(result, vec![Ok(ProbeOutcome::Done)]);
    assert!(kernel.calls().is_empty());
    assert_eq!(
        rec.commands,
        vec![(
            "/bin/echo greeting=hi x=1; modprobe -i hello_api".to_owned(),
            "hello_api".to_owned()
        )]
    );
    assert_eq!(
        rec.shown,
        vec!["install /bin/echo $CMDLINE_OPTS; modprobe -i hello_api greeting=hi x=1"]
    );

    // -i: loaded instead.
    let mut rec = Recorder::default();
    let ignore = ProbeOptions {
        ignore_commands: true,
        ..show()
    };
    probe_name(&mut ctx, &kernel, "hello_api", "", &ignore, &mut rec);
    assert_eq!(kernel.calls(), vec![finit("hello_api", "greeting=hi ")]);
    assert!(rec.commands.is_empty());
}

#[test]
fn a_failing_install_command_gives_its_exit_status() {
    let fx = Fixture::new("install-fails");
    let kernel = fx.kernel();
    let mut ctx = fx.context("install hello_api false\n");
    let id = ctx.lookup("hello_api").unwrap()[0];
    let mut rec = Recorder::default();
    let mut runner = Recorder::default();
    runner.exit_statuses.push_back(3);
    let result = modkit::probe(&mut ctx, &kernel, id, "", &show(), &mut rec, &mut runner);
    assert_eq!(result, Err(Errno(3)));
    assert_eq!(
        rec.messages,
        vec![(
            Level::Error,
            "Error running install command for hello_api".to_owned()
        )]
    );
}

#[test]
fn already_loaded_and_builtin_modules_are_left_alone() {
    let fx = Fixture::new("loaded");
    fx.loaded("hello_feature", 0, &[]);
    fx.builtin("ext4");
    let kernel = fx.kernel();
    let mut ctx = fx.context("");
    let mut rec = Recorder::default();
    let result = probe_name(&mut ctx, &kernel, "hello_feature", "", &show(), &mut rec);
    assert_eq!(result, vec![Ok(ProbeOutcome::AlreadyLoaded)]);
    let first_time = ProbeOptions {
        first_time: true,
        ..show()
    };
    let result = probe_name(
        &mut ctx,
        &kernel,
        "hello_feature",
        "",
        &first_time,
        &mut rec,
    );
    assert_eq!(result, vec![Err(Errno(libc::EEXIST))]);
    // Built in: by name (modules.builtin.bin) and by alias (modules.builtin.alias.bin).
    for name in ["ext4", "fs-ext4"] {
        let result = probe_name(&mut ctx, &kernel, name, "", &show(), &mut rec);
        assert_eq!(result, vec![Ok(ProbeOutcome::AlreadyLoaded)], "{name}");
    }
    assert!(kernel.calls().is_empty() && rec.shown.is_empty());
    let depends = ProbeOptions {
        dry_run: true,
        ignore_loaded: true,
        ..show()
    };
    probe_name(&mut ctx, &kernel, "ext4", "", &depends, &mut rec);
    assert_eq!(rec.shown, vec!["builtin ext4"]);
}

#[test]
fn lookup_order_config_alias_first_then_names_then_commands() {
    let fx = Fixture::new("lookup");
    let mut ctx =
        fx.context("alias hello_api hello_feature\ninstall fake echo fake\nalias fs-* other\n");
    let names = |ctx: &mut Context, name: &str| -> Vec<String> {
        let ids = ctx.lookup(name).unwrap();
        ids.iter().map(|&id| ctx.name(id).to_owned()).collect()
    };
    assert_eq!(names(&mut ctx, "hello-api"), ["hello_feature"]);
    assert_eq!(names(&mut ctx, "hello_feature"), ["hello_feature"]);
    assert_eq!(names(&mut ctx, "symbol:api_test"), ["hello_api"]);
    assert_eq!(names(&mut ctx, "fake"), ["fake"]);
    assert_eq!(names(&mut ctx, "fs-ext4"), ["other"]);
    assert_eq!(names(&mut ctx, "modkit:hello_api"), ["hello_api"]);
    assert_eq!(names(&mut ctx, "ext4"), ["ext4"]);
    assert!(names(&mut ctx, "nosuch").is_empty());
    let fake = ctx.lookup("fake").unwrap()[0];
    assert_eq!(ctx.install_command(fake).as_deref(), Some("echo fake"));
}

#[test]
fn removal_takes_unused_dependencies_and_softdeps_along() {
    let fx = Fixture::new("remove");
    fx.loaded("hello_feature", 0, &[]);
    fx.loaded("hello_api", 1, &["hello_feature"]);
    let kernel = fx.kernel();
    let mut ctx = fx.context("");
    let id = ctx.lookup("hello_feature").unwrap()[0];
    let mut rec = Recorder::default();
    let options = RemoveOptions {
        show: true,
        ..RemoveOptions::default()
    };
    let mut runner = Recorder::default();
    let result = modkit::remove(&mut ctx, &kernel, id, &options, &mut rec, &mut runner);
    assert_eq!(result, Ok(()));
    let flags = (libc::O_NONBLOCK as u32).to_string();
    assert_eq!(
        kernel.calls(),
        vec![
            ("delete", "hello_feature".to_owned(), flags.clone()),
            ("delete", "hello_api".to_owned(), flags),
        ]
    );
    assert_eq!(rec.shown, vec!["rmmod hello_feature", "rmmod hello_api"]);
    // kmod 30 first tries the post softdep hello_api, still used by hello_feature.
    assert_eq!(
        rec.messages,
        vec![(Level::Log, "Module hello_api is in use.".to_owned())]
    );
}

#[test]
fn a_module_in_use_is_refused_naming_its_holders_unless_they_go_first() {
    let fx = Fixture::new("inuse");
    fx.loaded("hello_feature", 0, &[]);
    fx.loaded("hello_api", 1, &["hello_feature"]);
    let kernel = fx.kernel();
    let mut ctx = fx.context("");
    let id = ctx.lookup("hello_api").unwrap()[0];
    let mut rec = Recorder::default();
    let mut runner = Recorder::default();
    let options = RemoveOptions::default();
    let result = modkit::remove(&mut ctx, &kernel, id, &options, &mut rec, &mut runner);
    assert_eq!(result, Err(Errno(libc::EBUSY)));
    assert_eq!(
        rec.messages,
        vec![(
            Level::Log,
            "Module hello_api is in use by: hello_feature".to_owned()
        )]
    );
    assert!(kernel.calls().is_empty());

    let holders = RemoveOptions {
        remove_holders: true,
        ..options
    };
    let result = modkit::remove(&mut ctx, &kernel, id, &holders, &mut rec, &mut runner);
    assert_eq!(result, Ok(()));
    // As in kmod 30, hello_api goes once as hello_feature's unused dependency and is then
    // asked for again (a real kernel answers ENOENT to that second call).
    let names: Vec<String> = kernel.calls().into_iter().map(|c| c.1).collect();
    assert_eq!(names, ["hello_feature", "hello_api", "hello_api"]);
}

#[test]
fn removing_what_is_not_loaded_or_built_in() {
    let fx = Fixture::new("notloaded");
    fx.builtin("ext4");
    let kernel = fx.kernel();
    let mut ctx = fx.context("remove other echo bye $CMDLINE_OPTS\n");
    let mut runner = Recorder::default();
    let mut rec = Recorder::default();
    let id = ctx.lookup("hello_api").unwrap()[0];
    let options = RemoveOptions::default();
    assert_eq!(
        modkit::remove(&mut ctx, &kernel, id, &options, &mut rec, &mut runner),
        Ok(())
    );
    let first = RemoveOptions {
        first_time: true,
        ..options
    };
    assert_eq!(
        modkit::remove(&mut ctx, &kernel, id, &first, &mut rec, &mut runner),
        Err(Errno(libc::ENOENT))
    );
    let ext4 = ctx.lookup("ext4").unwrap()[0];
    assert_eq!(
        modkit::remove(&mut ctx, &kernel, ext4, &options, &mut rec, &mut runner),
        Err(Errno(libc::ENOENT))
    );
    assert_eq!(
        rec.messages,
        vec![
            (Level::Log, "Module hello_api is not in kernel.".to_owned()),
            (Level::Log, "Module ext4 is builtin.".to_owned()),
        ]
    );
    // A remove command runs whether or not the module is loaded.
    let other = ctx.lookup("other").unwrap()[0];
    assert_eq!(
        modkit::remove(&mut ctx, &kernel, other, &options, &mut rec, &mut runner),
        Ok(())
    );
    assert_eq!(
        runner.commands,
        vec![("echo bye ".to_owned(), "other".to_owned())]
    );
    assert!(kernel.calls().is_empty());
}

#[test]
fn with_wait_a_module_in_use_is_asked_for_again_until_the_kernel_lets_it_go() {
    let fx = Fixture::new("wait");
    fx.loaded("hello_api", 1, &[]);
    let kernel = fx.kernel();
    let busy = Err(Errno(libc::EAGAIN));
    kernel.inner.script(Syscall::DeleteModule, busy);
    kernel.inner.script(Syscall::DeleteModule, busy);
    let mut ctx = fx.context("");
    let id = ctx.lookup("hello_api").unwrap()[0];
    let (mut rec, mut runner) = (Recorder::default(), Recorder::default());
    let options = RemoveOptions {
        wait: Some(std::time::Duration::from_secs(5)),
        ..RemoveOptions::default()
    };
    let result = modkit::remove(&mut ctx, &kernel, id, &options, &mut rec, &mut runner);
    assert_eq!(result, Ok(()));
    // Its reference count is 1, yet it is not refused: the kernel answers, twice "in use".
    let names: Vec<String> = kernel.calls().into_iter().map(|c| c.1).collect();
    assert_eq!(names, ["hello_api", "hello_api", "hello_api"]);
    assert!(rec.messages.is_empty(), "{:?}", rec.messages);
}

#[test]
fn guix_operations() {
    let fx = Fixture::new("guix");
    let kernel = fx.kernel();
    let extra = fx.dir().join("extra");
    assert_eq!(
        guix::find_module_file(&fx.dir(), "hello-feature").unwrap(),
        Some(extra.join("hello_feature.ko"))
    );
    // A file name finds its file too, as kmod names it (up to the first `.`).
    assert_eq!(
        guix::find_module_file(&fx.dir(), "hello-feature.ko").unwrap(),
        Some(extra.join("hello_feature.ko"))
    );
    assert_eq!(guix::find_module_file(&fx.dir(), "nosuch").unwrap(), None);
    assert_eq!(
        guix::module_dependencies(&extra.join("hello_feature.ko")).unwrap(),
        ["hello_api"]
    );

    // Blacklisted: nothing is loaded.
    let blacklist = vec!["hello-api".to_owned()];
    guix::load_modules_from_directory(&kernel, &["hello_feature"], &fx.dir(), &blacklist).unwrap();
    assert!(kernel.calls().is_empty());

    guix::load_modules_from_directory(&kernel, &["hello_feature"], &fx.dir(), &[]).unwrap();
    assert_eq!(
        kernel.calls(),
        vec![finit("hello_api", ""), finit("hello_feature", "")]
    );
    // Already loaded (EEXIST) is fine when loading recursively.
    kernel
        .inner
        .script(Syscall::FinitModule, Err(Errno(libc::EEXIST)));
    guix::load_modules_from_directory(&kernel, &["hello_api"], &fx.dir(), &[]).unwrap();
    let err = guix::load_modules_from_directory(&kernel, &["nosuch"], &fx.dir(), &[]).unwrap_err();
    assert!(
        err.to_string().starts_with("module nosuch not found in "),
        "{err}"
    );

    fs::write(
        fx.root.join("proc/modules"),
        "hello_feature 16384 0 - Live 0x0000000000000000 (OE)\nhello_api 16384 1 hello_feature, Live 0x0000000000000000 (OE)\n",
    )
    .unwrap();
    assert_eq!(
        guix::loaded_modules(&kernel).unwrap(),
        ["hello_feature", "hello_api"]
    );
}
