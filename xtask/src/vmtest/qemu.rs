//! Running QEMU: install it when missing, boot one kernel with a time limit, collect the console.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

const QEMU: &str = "qemu-system-x86_64";

/// Makes sure `qemu-system-x86_64` can be run: installs Debian's package when root, else says
/// what to run.
pub fn ensure_installed(sh: &Shell) -> Result<()> {
    if crate::tools::runs(cmd!(sh, "{QEMU} --version")) {
        return Ok(());
    }
    if !crate::tools::is_root(sh) {
        bail!(
            "{QEMU} is not installed; run `sudo apt-get install -y qemu-system-x86` and try again"
        );
    }
    eprintln!("installing qemu-system-x86...");
    let install = || {
        cmd!(sh, "apt-get install -y -q qemu-system-x86")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .run()
    };
    if install().is_err() {
        // Stale or missing package lists are the usual reason on a fresh machine.
        crate::tools::apt_update(sh, "apt-get install qemu-system-x86 failed")?;
        install().context("apt-get install -y qemu-system-x86 failed")?;
    }
    cmd!(sh, "{QEMU} --version")
        .quiet()
        .ignore_stdout()
        .run()
        .context("qemu still cannot run")?;
    Ok(())
}

/// Which accelerator runs the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// QEMU's emulator: slow but works everywhere (KVM cannot boot a stock kernel here).
    Tcg,
    /// Hardware virtualisation, falling back to TCG when KVM is unavailable.
    Kvm,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Tcg => "TCG",
            Accel::Kvm => "KVM",
        }
    }
}

/// One boot to run.
#[derive(Debug)]
pub struct Boot {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: String,
    pub accel: Accel,
    pub timeout: Duration,
    /// Where the console goes (also kept in memory).
    pub console_log: PathBuf,
    /// Also copy the console to our stderr as it comes.
    pub echo: bool,
    /// QEMU arguments for extra devices (the coldplug scenario's).
    pub devices: Vec<String>,
}

#[derive(Debug)]
pub struct BootOutput {
    pub console: String,
    pub timed_out: bool,
    pub elapsed: Duration,
    /// QEMU's own complaints (bad options, missing files...).
    pub qemu_stderr: String,
    pub qemu_status: Option<std::process::ExitStatus>,
}

/// Boots and waits for QEMU to end (the guest powers off, or panics with `panic=-1`), killing it
/// after `boot.timeout`.
pub fn run(sh: &Shell, boot: &Boot) -> Result<BootOutput> {
    let (kernel, initrd, append) = (&boot.kernel, &boot.initrd, &boot.append);
    let devices = &boot.devices;
    let accel: &[&str] = match boot.accel {
        Accel::Tcg => &["-accel", "tcg", "-cpu", "max"],
        Accel::Kvm => &["-accel", "kvm", "-accel", "tcg", "-cpu", "max"],
    };
    let command = cmd!(
        sh,
        "{QEMU} -nodefaults -no-user-config -nographic -serial stdio -no-reboot
            -machine pc -smp 1 -m 512M {accel...}
            -kernel {kernel} -initrd {initrd} -append {append} {devices...}"
    );
    let mut command = Command::from(command);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {QEMU}"))?;

    let console = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut log = std::fs::File::create(&boot.console_log)
        .with_context(|| format!("cannot create {}", boot.console_log.display()))?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let echo = boot.echo;
    let reader = {
        let console = Arc::clone(&console);
        std::thread::spawn(move || {
            let mut stdout = stdout;
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                let _ = log.write_all(&buf[..n]);
                if echo {
                    let _ = std::io::stderr().write_all(&buf[..n]);
                }
                console
                    .lock()
                    .expect("console lock")
                    .extend_from_slice(&buf[..n]);
            }
        })
    };
    let mut stderr = child.stderr.take().context("no stderr pipe")?;
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for qemu")? {
            break Some(status);
        }
        if start.elapsed() > boot.timeout {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = start.elapsed();
    let _ = reader.join();
    let qemu_stderr = err_reader.join().unwrap_or_default();
    let console = String::from_utf8_lossy(&console.lock().expect("console lock")).into_owned();
    Ok(BootOutput {
        console,
        timed_out,
        elapsed,
        qemu_stderr,
        qemu_status: status,
    })
}
