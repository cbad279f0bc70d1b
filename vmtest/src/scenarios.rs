//! The end-to-end scenarios: each runs modkit's tools as a user would (`/sbin/insmod ...`) and
//! checks their exit status, output and the kernel log. Add one by writing a function, listing
//! it in `FUNCTIONS` and naming it in the library's `vmtest::SCENARIOS` (with the kernel
//! arguments it needs), which the host reads too.

use std::fmt::Display;
use std::process::{Command, Stdio};

use vmtest::protocol::Message;
use vmtest::{FAULT_MODULES, MODKIT, SAMPLE_MODULES, TOOLS};

use crate::emit;
use crate::kmsg::Kmsg;

mod check;
mod coldplug;
mod faults;
mod jobs;
mod libkmod;
mod modprobe;
mod storm;

/// A scenario: runs its steps through the context, which records pass/fail.
pub type Scenario = fn(&mut Ctx<'_>);

/// The function of every scenario of `vmtest::SCENARIOS` and `vmtest::SELFTESTS` (which break
/// on purpose: they prove the host notices).
const FUNCTIONS: &[(&str, Scenario)] = &[
    ("boot", boot),
    ("insmod", insmod),
    ("in-use", in_use),
    ("compressed", compressed),
    ("params", params),
    ("modprobe", modprobe::modprobe),
    ("options", modprobe::options),
    ("cmdline", modprobe::cmdline),
    ("blacklist", modprobe::blacklist),
    ("coldplug", coldplug::coldplug),
    ("no-proc", modprobe::no_proc),
    ("libkmod", libkmod::libkmod),
    ("faults", faults::faults),
    ("storm", storm::storm),
    ("check", check::check),
    ("check-sig", check::check_sig),
    ("selftest-fail", selftest_fail),
    ("selftest-panic", selftest_panic),
    ("selftest-hang", selftest_hang),
    ("selftest-exit", selftest_exit),
];

pub fn find(name: &str) -> Option<Scenario> {
    FUNCTIONS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// What the host told the guest on the kernel command line.
#[derive(Debug)]
pub struct Env {
    /// The kernel release the host booted (`vmtest.release=`).
    pub release: Option<String>,
    /// The extension of the sample modules installed in `/lib/modules` (`vmtest.modext=`):
    /// `ko` or `ko.xz`, as the distribution ships modules for this kernel.
    pub module_ext: String,
    /// The whole kernel command line, as `/proc/cmdline` gives it.
    pub cmdline: String,
}

/// What one command did.
#[derive(Debug, Default)]
pub struct Output {
    /// Exit code; `None` when killed by a signal or not started.
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Kernel messages logged while it ran.
    pub kmsg: Vec<String>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    fn kmsg_has(&self, needle: &str) -> bool {
        self.kmsg.iter().any(|line| line.contains(needle))
    }
}

/// A running scenario: runs commands, prints the transcript, counts failed checks.
#[derive(Debug)]
pub struct Ctx<'a> {
    name: &'a str,
    kmsg: &'a mut Kmsg,
    env: &'a Env,
    failures: usize,
    /// Every kernel message seen during this scenario, in order.
    kernel_log: Vec<String>,
}

impl<'a> Ctx<'a> {
    pub fn new(name: &'a str, kmsg: &'a mut Kmsg, env: &'a Env) -> Ctx<'a> {
        let stale = kmsg.drain();
        let ctx = Ctx {
            name,
            kmsg,
            env,
            failures: 0,
            kernel_log: Vec::new(),
        };
        for line in stale {
            ctx.log(format!("  kmsg (before the scenario)| {line}"));
        }
        ctx
    }

    pub fn passed(&self) -> bool {
        self.failures == 0
    }

    pub fn log(&self, text: impl Display) {
        emit(Message::Log {
            scenario: self.name.to_string(),
            text: text.to_string(),
        });
    }

    /// Runs `argv` with an empty environment (but `PATH`), capturing everything.
    pub fn run(&mut self, argv: &[&str]) -> Output {
        self.run_env(argv, &[])
    }

    /// [`Ctx::run`] with these environment variables too.
    pub fn run_env(&mut self, argv: &[&str], env: &[(&str, &str)]) -> Output {
        for line in self.kmsg.drain() {
            self.log(format!("  kmsg (earlier)| {line}"));
            self.kernel_log.push(line);
        }
        let assignments: String = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        self.log(format!("$ {assignments}{}", argv.join(" ")));
        let started = std::time::Instant::now();
        let result = Command::new(argv[0])
            .args(&argv[1..])
            .env_clear()
            .env("PATH", "/sbin:/bin")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output();
        let mut out = Output::default();
        match result {
            Ok(output) => {
                out.status = output.status.code();
                out.stdout = String::from_utf8_lossy(&output.stdout).into_owned();
                out.stderr = String::from_utf8_lossy(&output.stderr).into_owned();
                for line in out.stdout.lines() {
                    self.log(format!("  stdout| {line}"));
                }
                for line in out.stderr.lines() {
                    self.log(format!("  stderr| {line}"));
                }
                // The time shows where a slow boot goes (everything is emulated: TCG).
                self.log(format!(
                    "  exit status: {} ({:.2} s)",
                    describe_status(&output.status),
                    started.elapsed().as_secs_f64()
                ));
            }
            Err(err) => self.log(format!("  could not start: {err}")),
        }
        out.kmsg = self.kmsg.drain();
        for line in &out.kmsg {
            self.log(format!("  kmsg| {line}"));
        }
        self.kernel_log.extend(out.kmsg.iter().cloned());
        out
    }

    /// Records one check; returns `ok` so callers can skip what depends on it.
    pub fn check(&mut self, ok: bool, what: impl Display) -> bool {
        if ok {
            self.log(format!("  ok: {what}"));
        } else {
            self.failures += 1;
            self.log(format!("  FAIL: {what}"));
        }
        ok
    }

    pub fn expect_success(&mut self, out: &Output) -> bool {
        self.check(out.success(), "exits with status 0")
    }

    pub fn expect_failure(&mut self, out: &Output) -> bool {
        self.check(
            out.status.is_some_and(|code| code != 0),
            "exits with a non-zero status",
        )
    }

    pub fn expect_kmsg(&mut self, out: &Output, needle: &str) -> bool {
        self.check(out.kmsg_has(needle), format!("kernel log shows {needle:?}"))
    }

    pub fn expect_stderr(&mut self, out: &Output, needle: &str) -> bool {
        self.check(
            out.stderr.contains(needle),
            format!("stderr contains {needle:?}"),
        )
    }

    /// `first` was logged before `second` in this scenario's kernel log.
    pub fn expect_kmsg_order(&mut self, first: &str, second: &str) -> bool {
        let position = |needle: &str| {
            self.kernel_log
                .iter()
                .position(|line| line.contains(needle))
        };
        let ok = matches!((position(first), position(second)), (Some(a), Some(b)) if a < b);
        self.check(ok, format!("kernel log shows {first:?} before {second:?}"))
    }

    /// Exactly this on stdout.
    pub fn expect_stdout(&mut self, out: &Output, expected: &str) -> bool {
        let ok = out.stdout == expected;
        if !ok {
            self.log(format!("  want stdout: {expected:?}"));
            self.log(format!("  got stdout:  {:?}", out.stdout));
        }
        self.check(ok, "stdout is exactly as expected")
    }

    /// Nothing on stdout or stderr.
    pub fn expect_silent(&mut self, out: &Output) -> bool {
        self.check(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "prints nothing",
        )
    }

    /// No kernel message of this command contains `needle`.
    pub fn expect_no_kmsg(&mut self, out: &Output, needle: &str) -> bool {
        self.check(
            !out.kmsg_has(needle),
            format!("kernel log has no {needle:?}"),
        )
    }

    /// A file (a sysfs attribute, say) reads `expected`, ignoring the final newline.
    pub fn expect_file(&mut self, path: &str, expected: &str) -> bool {
        let value = read_trimmed(path);
        self.check(
            value == expected,
            format!("{path} reads {value:?}, want {expected:?}"),
        )
    }

    pub fn expect_loaded(&mut self, module: &str, loaded: bool) -> bool {
        let is_loaded = loaded_modules().iter().any(|m| m == module);
        let what = if loaded { "is loaded" } else { "is not loaded" };
        self.check(
            is_loaded == loaded,
            format!("/proc/modules: {module} {what}"),
        )
    }

    /// Removes the sample modules (`FAULT_MODULES`, then `SAMPLE_MODULES` in unload order) a
    /// failed scenario left behind, with the syscall rather than our rmmod (which may be what
    /// failed), so the next scenario starts clean.
    pub fn cleanup(&mut self) {
        let loaded = loaded_modules();
        for module in FAULT_MODULES
            .iter()
            .chain(SAMPLE_MODULES)
            .filter(|m| loaded.iter().any(|l| l == *m))
        {
            let result = delete_module(module);
            self.log(format!("  cleanup: delete_module({module}): {result:?}"));
            for line in self.kmsg.drain() {
                self.log(format!("  kmsg| {line}"));
            }
        }
    }
}

fn describe_status(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code.to_string(),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "unknown".into(),
    }
}

/// Module names in `/proc/modules`.
pub(crate) fn loaded_modules() -> Vec<String> {
    std::fs::read_to_string("/proc/modules")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}

/// A module's state in `/proc/modules` (`Live`, `Loading`, `Unloading`), `None` when absent.
fn proc_state(module: &str) -> Option<String> {
    std::fs::read_to_string("/proc/modules")
        .ok()?
        .lines()
        .find(|line| line.split_whitespace().next() == Some(module))
        .and_then(|line| line.split_whitespace().nth(4).map(str::to_string))
}

/// `/sys/module/NAME/refcnt`, `None` when it cannot be read.
fn refcnt(module: &str) -> Option<u64> {
    read_trimmed(&format!("/sys/module/{module}/refcnt"))
        .parse()
        .ok()
}

/// The modules in `/sys/module/NAME/holders`, sorted.
fn holders(module: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/sys/module/{module}/holders"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[allow(
    unsafe_code,
    reason = "delete_module(2) has no safe wrapper, and the guest links no modkit crate: it tests the tools from outside"
)]
fn delete_module(name: &str) -> std::io::Result<()> {
    let name = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: delete_module(2) reads a NUL-terminated name and takes flags by value.
    let ret = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

pub(crate) fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

/// The booted kernel's release, as the tools take it (empty if uname fails).
fn kernel_release() -> String {
    modkit_syscalls::kernel_release().unwrap_or_default()
}

/// The sample modules, uncompressed, in `vmtest::KMODS_DIR`.
const HELLO_API: &str = "/kmods/hello_api.ko";
const HELLO_FEATURE: &str = "/kmods/hello_feature.ko";

/// The booted kernel is the one the host meant, and the static tools run in it.
fn boot(ctx: &mut Ctx<'_>) {
    let release = kernel_release();
    match ctx.env.release.clone() {
        Some(expected) => {
            ctx.check(
                release == expected,
                format!("kernel release {release:?} is {expected:?}"),
            );
        }
        None => {
            ctx.check(false, "vmtest.release=... is on the kernel command line");
        }
    }
    let out = ctx.run(&[MODKIT, "--version"]);
    ctx.expect_success(&out);
    ctx.check(
        out.stdout.starts_with("modkit "),
        "prints \"modkit VERSION\"",
    );
    for tool in TOOLS {
        let path = format!("/sbin/{tool}");
        let target = std::fs::read_link(&path)
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        ctx.check(target == MODKIT, format!("{path} links to {MODKIT}"));
    }
}

/// Loading with a missing dependency fails helpfully; in order, everything loads and unloads.
fn insmod(ctx: &mut Ctx<'_>) {
    let out = ctx.run(&["/sbin/insmod", HELLO_FEATURE]);
    ctx.expect_failure(&out);
    ctx.expect_stderr(&out, "Unknown symbol in module");
    ctx.expect_kmsg(&out, "hello_feature: Unknown symbol api_test (err -2)");
    ctx.check(
        out.stderr.contains("hello_api"),
        "stderr hints at hello_api, which exports api_test",
    );
    ctx.expect_loaded("hello_feature", false);

    let out = ctx.run(&["/sbin/insmod", HELLO_API]);
    ctx.expect_success(&out);
    ctx.expect_kmsg(&out, "[hello_api] Hello, World!");

    let out = ctx.run(&["/sbin/insmod", HELLO_FEATURE]);
    ctx.expect_success(&out);
    ctx.expect_kmsg(&out, "[hello_feature] Hello, World!");
    ctx.expect_kmsg(&out, "[hello_api] this is a test message.");

    let out = ctx.run(&["/sbin/lsmod"]);
    ctx.expect_success(&out);
    let line_of = |module: &str| {
        out.stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(module))
            .map(str::to_string)
    };
    ctx.check(
        line_of("hello_feature").is_some(),
        "lsmod lists hello_feature",
    );
    let api = line_of("hello_api").unwrap_or_default();
    ctx.check(
        api.contains("hello_feature"),
        "lsmod lists hello_api, used by hello_feature",
    );

    let out = ctx.run(&["/sbin/modinfo", "-F", "depends", HELLO_FEATURE]);
    ctx.expect_success(&out);
    ctx.check(
        out.stdout == "hello_api\n",
        "modinfo -F depends prints \"hello_api\"",
    );

    let out = ctx.run(&["/sbin/rmmod", "hello_feature"]);
    ctx.expect_success(&out);
    ctx.expect_kmsg(&out, "[hello_feature] Bye Bye, World!");
    let out = ctx.run(&["/sbin/rmmod", "hello_api"]);
    ctx.expect_success(&out);
    ctx.expect_kmsg(&out, "[hello_api] Bye bye, World!");
    ctx.expect_kmsg_order(
        "[hello_feature] Bye Bye, World!",
        "[hello_api] Bye bye, World!",
    );
    ctx.expect_loaded("hello_api", false);

    let out = ctx.run(&["/sbin/lsmod"]);
    ctx.expect_success(&out);
    ctx.check(
        !out.stdout.contains("hello_"),
        "lsmod no longer lists the sample modules",
    );
}

/// A module another one uses cannot be removed, and rmmod names the holder.
fn in_use(ctx: &mut Ctx<'_>) {
    let out = ctx.run(&["/sbin/insmod", HELLO_API]);
    ctx.expect_success(&out);
    let out = ctx.run(&["/sbin/insmod", HELLO_FEATURE]);
    ctx.expect_success(&out);

    let out = ctx.run(&["/sbin/rmmod", "hello_api"]);
    ctx.expect_failure(&out);
    ctx.check(
        out.stderr.contains("hello_feature"),
        "stderr names hello_feature as the holder",
    );
    ctx.expect_loaded("hello_api", true);

    let out = ctx.run(&["/sbin/rmmod", "hello_feature"]);
    ctx.expect_success(&out);
    let out = ctx.run(&["/sbin/rmmod", "hello_api"]);
    ctx.expect_success(&out);
    ctx.expect_loaded("hello_api", false);
}

/// `.ko.xz` loads: through the kernel's decompressor where it has one (6.12), else through
/// insmod's user-space fallback (6.1).
fn compressed(ctx: &mut Ctx<'_>) {
    // CONFIG_MODULE_DECOMPRESS adds /sys/module/compression, naming the format the kernel
    // decompresses (kernel/module/decompress.c).
    let in_kernel = read_trimmed("/sys/module/compression");
    let kernel_decompresses = in_kernel == "xz";
    ctx.log(format!(
        "  note: kernel {}, /sys/module/compression: {in_kernel:?}; expecting {}",
        kernel_release(),
        if kernel_decompresses {
            "in-kernel decompression"
        } else {
            "the user-space fallback"
        }
    ));
    let (path, how) = if kernel_decompresses {
        ("finit_module(MODULE_INIT_COMPRESSED_FILE)", "by the kernel")
    } else {
        ("the user-space fallback", "here, then loaded")
    };
    for module in ["hello_api", "hello_feature"] {
        let file = format!("/kmods/{module}.ko.xz");
        let out = ctx.run(&["/sbin/insmod", "-v", &file]);
        ctx.expect_success(&out);
        ctx.expect_kmsg(&out, &format!("[{module}] Hello, World!"));
        ctx.check(
            out.stderr.contains(how),
            format!("insmod -v says it loaded through {path} ({how:?})"),
        );
        ctx.expect_loaded(module, true);
    }

    let out = ctx.run(&["/sbin/rmmod", "hello_feature"]);
    ctx.expect_success(&out);
    ctx.expect_kmsg(&out, "[hello_feature] Bye Bye, World!");
    let out = ctx.run(&["/sbin/rmmod", "hello_api"]);
    ctx.expect_success(&out);
    ctx.expect_kmsg(&out, "[hello_api] Bye bye, World!");
    ctx.expect_loaded("hello_api", false);
}

/// Parameters on the insmod command line reach the module.
fn params(ctx: &mut Ctx<'_>) {
    let out = ctx.run(&["/sbin/insmod", HELLO_API, "greeting=Hi-from-modkit"]);
    ctx.expect_success(&out);
    ctx.expect_kmsg(&out, "[hello_api] Hi-from-modkit");
    ctx.expect_file(
        "/sys/module/hello_api/parameters/greeting",
        "Hi-from-modkit",
    );
    let out = ctx.run(&["/sbin/rmmod", "hello_api"]);
    ctx.expect_success(&out);
    ctx.expect_loaded("hello_api", false);
}

/// Always fails: the host must report it.
fn selftest_fail(ctx: &mut Ctx<'_>) {
    let out = ctx.run(&[MODKIT, "--version"]);
    ctx.expect_success(&out);
    ctx.check(false, "selftest-fail fails on purpose");
}

/// Crashes the kernel: the host must report a panic and a missing verdict.
fn selftest_panic(ctx: &mut Ctx<'_>) {
    ctx.log("  crashing the kernel through /proc/sysrq-trigger");
    let result = std::fs::write("/proc/sysrq-trigger", "c");
    ctx.check(false, format!("the kernel survived sysrq 'c' ({result:?})"));
}

/// Never ends: the host must kill QEMU at its time limit and say so.
fn selftest_hang(ctx: &mut Ctx<'_>) {
    ctx.log("  hanging until the host's time limit");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// Ends PID 1 without powering off, which panics the kernel ("Attempted to kill init").
fn selftest_exit(ctx: &mut Ctx<'_>) {
    ctx.log("  exiting from /init");
    std::process::exit(3);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guest has a function for every scenario the host may ask for, and no other.
    #[test]
    fn every_scenario_has_its_function() {
        let known: Vec<&str> = vmtest::SCENARIOS
            .iter()
            .chain(vmtest::SELFTESTS)
            .map(|s| s.name)
            .collect();
        for name in &known {
            assert!(find(name).is_some(), "no function for {name}");
        }
        for (name, _) in FUNCTIONS {
            assert!(known.contains(name), "{name} is not in vmtest::SCENARIOS");
        }
        assert_eq!(FUNCTIONS.len(), known.len());
    }

    #[test]
    fn sample_module_paths() {
        for (path, name) in [(HELLO_API, "hello_api"), (HELLO_FEATURE, "hello_feature")] {
            assert_eq!(path, format!("{}/{name}.ko", vmtest::KMODS_DIR));
            assert!(SAMPLE_MODULES.contains(&name));
        }
    }
}
