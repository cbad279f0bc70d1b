//! The faults scenario: the kernel refusing and stalling loads, and removals of a busy
//! module, with the sample modules (`kmods/`) in a private tree (`/tmp/faults`) indexed by our
//! depmod.
//!
//! What kmod 30 does, which modprobe must do too (kmod's tools/modprobe.c and
//! libkmod-module.c): a module whose init fails is reported as `could not insert 'NAME':
//! STRERROR` (exit 1), and the dependencies loaded for it stay loaded (kmod never unloads
//! them); `modprobe -r` of a module in use says so and fails; `rmmod` names the holders;
//! `modprobe -r --wait MSEC` asks the kernel again until the module is free or the time is
//! up (kmod 30 then exits 0 silently; modkit says so and exits 1, see the README). A load
//! that meets the module already there or still coming (`EEXIST`) counts as done.
//!
//! The kernel finishes a module's init even when the process that loads it is killed
//! (`msleep` is uninterruptible, and the signal is only acted on when `finit_module`
//! returns), so a modprobe killed during `fault_sleep`'s init leaves the module live and its
//! dependency held once; the next modprobe finds it and finishes the rest of its list.

use std::path::Path;
use std::time::{Duration, Instant};

use vmtest::{FAULT_SLEEP_MS, KMODS_DIR};

use super::jobs::{self, Done};
use super::{Ctx, holders, kernel_release, proc_state, read_trimmed, refcnt};

/// The tree the scenario builds and indexes.
const ROOT: &str = "/tmp/faults";

/// The modules copied into `ROOT/lib/modules/RELEASE/extra`.
const MODULES: &[&str] = &["hello_api", "hello_feature", "fault_nodev", "fault_sleep"];

fn log_done(ctx: &Ctx<'_>, done: &Done) {
    ctx.log(format!("  {}", done.summary()));
}

pub fn faults(ctx: &mut Ctx<'_>) {
    let release = kernel_release();
    let moddir = format!("{ROOT}/lib/modules/{release}");
    let extra = format!("{moddir}/extra");
    if let Err(err) = std::fs::create_dir_all(&extra) {
        ctx.check(false, format!("mkdir -p {extra}: {err}"));
        return;
    }
    let ext = ctx.env.module_ext.clone();
    for module in MODULES {
        let from = format!("{KMODS_DIR}/{module}.{ext}");
        let to = format!("{extra}/{module}.{ext}");
        if let Err(err) = std::fs::copy(&from, &to) {
            ctx.check(false, format!("copying {from} to {to}: {err}"));
            return;
        }
    }
    let out = ctx.run(&["/sbin/depmod", "-b", ROOT, &release]);
    if !ctx.expect_success(&out) {
        return;
    }

    init_fails(ctx);
    busy(ctx);
    killed_mid_load(ctx);

    if let Err(err) = std::fs::remove_dir_all(ROOT) {
        ctx.check(false, format!("removing {ROOT}: {err}"));
    }
}

/// fault_nodev's init returns -ENODEV: modprobe says so as kmod does and leaves hello_api,
/// loaded for it, in the kernel, unused.
fn init_fails(ctx: &mut Ctx<'_>) {
    ctx.log("# an init that fails with -ENODEV");
    let out = ctx.run(&["/sbin/modprobe", "-d", ROOT, "fault_nodev"]);
    ctx.check(out.status == Some(1), "modprobe exits with status 1");
    ctx.check(
        out.stderr == "modprobe: ERROR: could not insert 'fault_nodev': No such device\n",
        "stderr is exactly kmod's \"modprobe: ERROR: could not insert 'fault_nodev': No such device\"",
    );
    ctx.expect_kmsg(&out, "[fault_nodev] no device here");
    ctx.expect_loaded("fault_nodev", false);
    ctx.expect_loaded("hello_api", true);
    ctx.check(
        refcnt("hello_api") == Some(0) && holders("hello_api").is_empty(),
        format!(
            "hello_api is unused again: refcnt {:?}, holders {:?}",
            refcnt("hello_api"),
            holders("hello_api")
        ),
    );
    // The same through insmod, which has kmod's own words for it.
    let file = format!(
        "{ROOT}/lib/modules/{}/extra/fault_nodev.{}",
        kernel_release(),
        ctx.env.module_ext
    );
    let out = ctx.run(&["/sbin/insmod", &file]);
    ctx.check(out.status == Some(1), "insmod exits with status 1");
    ctx.check(
        out.stderr == format!("insmod: ERROR: could not insert module {file}: No such device\n"),
        "insmod says \"could not insert module FILE: No such device\"",
    );
    let out = ctx.run(&["/sbin/modprobe", "-d", ROOT, "-r", "hello_api"]);
    ctx.expect_success(&out);
    ctx.expect_loaded("hello_api", false);
}

/// hello_api used by hello_feature: `modprobe -r`, `rmmod` and `modprobe -r --wait` refuse
/// it; `--wait` succeeds once the holder goes.
fn busy(ctx: &mut Ctx<'_>) {
    ctx.log("# removing a module in use");
    let out = ctx.run(&["/sbin/modprobe", "-d", ROOT, "hello_feature"]);
    if !ctx.expect_success(&out) {
        return;
    }
    ctx.check(
        holders("hello_api") == ["hello_feature"] && refcnt("hello_api") == Some(1),
        format!(
            "hello_api is held by hello_feature: holders {:?}, refcnt {:?}",
            holders("hello_api"),
            refcnt("hello_api")
        ),
    );

    let out = ctx.run(&["/sbin/rmmod", "hello_api"]);
    ctx.check(out.status == Some(1), "rmmod exits with status 1");
    ctx.check(
        out.stderr == "rmmod: ERROR: Module hello_api is in use by: hello_feature\n",
        "rmmod says kmod's \"Module hello_api is in use by: hello_feature\"",
    );

    let out = ctx.run(&["/sbin/modprobe", "-d", ROOT, "-r", "hello_api"]);
    ctx.check(out.status == Some(1), "modprobe -r exits with status 1");
    // kmod 30: "modprobe: FATAL: Module hello_api is in use."; modkit names the holder.
    ctx.expect_stderr(&out, "modprobe: FATAL: Module hello_api is in use");
    ctx.expect_loaded("hello_api", true);

    // The kernel keeps answering EAGAIN: modprobe asks until the time is up.
    let wait_ms = 1500;
    let started = Instant::now();
    let out = ctx.run(&[
        "/sbin/modprobe",
        "-d",
        ROOT,
        "-r",
        "--wait",
        &wait_ms.to_string(),
        "hello_api",
    ]);
    let waited = started.elapsed();
    ctx.check(
        waited >= Duration::from_millis(wait_ms),
        format!("modprobe -r --wait {wait_ms} waited {waited:?}"),
    );
    ctx.check(
        out.status == Some(1)
            && out.stderr
                == "modprobe: ERROR: could not remove 'hello_api': Resource temporarily unavailable\n",
        "after the wait: \"could not remove 'hello_api': Resource temporarily unavailable\", exit 1",
    );
    ctx.expect_loaded("hello_api", true);

    // The holder goes during the wait: the removal succeeds.
    let waiter = jobs::spawn(&[
        "/sbin/modprobe",
        "-d",
        ROOT,
        "-r",
        "--wait",
        "20000",
        "hello_api",
    ]);
    std::thread::sleep(Duration::from_millis(700));
    let out = ctx.run(&["/sbin/rmmod", "hello_feature"]);
    ctx.expect_success(&out);
    let done = waiter.wait_until(Instant::now() + Duration::from_secs(25));
    log_done(ctx, &done);
    ctx.check(
        done.clean() && done.stdout.is_empty(),
        "modprobe -r --wait 20000 hello_api succeeds once hello_feature is gone",
    );
    ctx.check(
        done.elapsed < Duration::from_secs(10),
        format!("... well before its limit ({:?})", done.elapsed),
    );
    ctx.expect_loaded("hello_api", false);
}

/// Waits until `/sys/module/NAME/initstate` reads `state`; false at the limit.
fn wait_for_initstate(module: &str, state: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let path = format!("/sys/module/{module}/initstate");
    while Instant::now() < deadline {
        if read_trimmed(&path) == state {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// A modprobe killed during fault_sleep's init, and a second one racing it: the module ends
/// live, hello_api held once by it, and the next modprobe does the rest of its list.
fn killed_mid_load(ctx: &mut Ctx<'_>) {
    ctx.log("# SIGKILL during a module's init, and a second modprobe racing it");
    let limit = Duration::from_millis(FAULT_SLEEP_MS) + Duration::from_secs(20);
    let list = [
        "/sbin/modprobe",
        "-d",
        ROOT,
        "-a",
        "fault_sleep",
        "hello_feature",
    ];
    let mut first = jobs::spawn(&list);
    let coming = wait_for_initstate("fault_sleep", "coming", Duration::from_secs(10));
    if !ctx.check(coming, "fault_sleep's init is running (initstate coming)") {
        let _ = first.kill();
        log_done(ctx, &first.wait_until(Instant::now() + limit));
        return;
    }
    ctx.expect_loaded("hello_api", true);
    // A second modprobe of the same module while it is still coming.
    let racer = jobs::spawn(&["/sbin/modprobe", "-d", ROOT, "fault_sleep"]);
    std::thread::sleep(Duration::from_millis(300));
    let killed = first.kill();
    ctx.check(killed.is_ok(), format!("SIGKILL sent ({killed:?})"));
    let first = first.wait_until(Instant::now() + limit);
    log_done(ctx, &first);
    ctx.check(
        first.signal == Some(libc::SIGKILL),
        "the first modprobe died of SIGKILL",
    );
    let racer = racer.wait_until(Instant::now() + limit);
    log_done(ctx, &racer);
    ctx.check(
        racer.clean() && racer.stdout.is_empty(),
        "the racing modprobe finished quietly with status 0 (EEXIST, or the kernel's answer to the first load, counts as done)",
    );
    ctx.check(
        proc_state("fault_sleep").as_deref() == Some("Live"),
        format!(
            "fault_sleep is Live in /proc/modules ({:?})",
            proc_state("fault_sleep")
        ),
    );
    ctx.expect_file("/sys/module/fault_sleep/initstate", "live");
    ctx.expect_loaded("hello_feature", false);
    ctx.check(
        holders("hello_api") == ["fault_sleep"] && refcnt("hello_api") == Some(1),
        format!(
            "hello_api is held once, by fault_sleep: holders {:?}, refcnt {:?}",
            holders("hello_api"),
            refcnt("hello_api")
        ),
    );
    ctx.check(
        refcnt("fault_sleep") == Some(0),
        format!("fault_sleep's refcnt is 0 ({:?})", refcnt("fault_sleep")),
    );

    // The next modprobe finishes the killed one's list.
    let out = ctx.run(&list);
    ctx.expect_success(&out);
    ctx.expect_silent(&out);
    ctx.expect_no_kmsg(&out, "[fault_sleep] init sleeps");
    ctx.expect_kmsg(&out, "[hello_feature] Hello, World!");
    ctx.check(
        holders("hello_api") == ["fault_sleep", "hello_feature"] && refcnt("hello_api") == Some(2),
        format!(
            "hello_api is held by fault_sleep and hello_feature: holders {:?}, refcnt {:?}",
            holders("hello_api"),
            refcnt("hello_api")
        ),
    );

    let out = ctx.run(&[
        "/sbin/modprobe",
        "-d",
        ROOT,
        "-r",
        "-a",
        "fault_sleep",
        "hello_feature",
    ]);
    ctx.expect_success(&out);
    for module in ["fault_sleep", "hello_feature", "hello_api"] {
        ctx.expect_loaded(module, false);
    }
    ctx.check(
        !Path::new("/sys/module/hello_api").exists(),
        "/sys/module/hello_api is gone",
    );
}
