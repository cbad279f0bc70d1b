//! Turning a guest's console output into a verdict: pure functions over the text, so every way
//! a boot can go wrong is unit-tested without a VM.
//!
//! The guest prints lines `MODKIT-VMTEST plan|begin|log|end|error|verdict`; the grammar and its
//! parser are the vmtest crate's (`vmtest::protocol`), shared by both sides. Kernel messages may
//! share the console, so a protocol line is found anywhere in a console line, and anything else
//! is kept as context.

use std::fmt::Write as _;

use ::vmtest::protocol::Message;

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    /// It began but never ended (the guest hung, crashed or was killed meanwhile).
    Unfinished,
    /// Requested, but it never began.
    NotRun,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Unfinished => "UNFINISHED",
            Status::NotRun => "NOT RUN",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioResult {
    pub name: String,
    pub status: Status,
    /// The guest's transcript: commands, their output and exit status, kernel log lines, checks.
    pub transcript: Vec<String>,
}

/// Everything one boot said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootReport {
    /// The requested scenarios, each with its outcome, then any the guest ran unasked.
    pub scenarios: Vec<ScenarioResult>,
    /// `Some(true)` for `verdict pass`; `None` when the guest never said.
    pub verdict: Option<bool>,
    /// Why the run failed, beyond the scenario statuses (panic, no verdict, harness errors...).
    pub problems: Vec<String>,
    /// Console lines around a kernel panic or oops.
    pub kernel_trouble: Vec<String>,
    /// The last console lines, shown when the guest never reached a verdict.
    pub tail: Vec<String>,
}

impl BootReport {
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && self.scenarios.iter().all(|s| s.status == Status::Pass)
    }
}

/// Lines of context kept before and after a kernel panic/oops line, and at the end of the log.
const CONTEXT_BEFORE: usize = 5;
const CONTEXT_AFTER: usize = 30;
const TAIL: usize = 25;

/// Markers of a kernel in trouble (kernel/panic.c, arch/x86/kernel/dumpstack.c, lib/bug.c).
const PANIC_MARKER: &str = "Kernel panic - not syncing";
const OOPS_MARKERS: &[&str] = &[
    "BUG: ",
    "Oops: ",
    "general protection fault",
    "WARNING: CPU: ",
];

/// Parses the console output of one boot that was asked to run `requested`.
pub fn parse(console: &str, requested: &[&str]) -> BootReport {
    let lines: Vec<&str> = console
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .collect();
    let mut scenarios: Vec<ScenarioResult> = requested
        .iter()
        .map(|name| ScenarioResult {
            name: name.to_string(),
            status: Status::NotRun,
            transcript: vec![],
        })
        .collect();
    let mut verdict = None;
    let mut problems = Vec::new();
    let mut plan = None;
    let mut trouble_ranges: Vec<(usize, usize)> = Vec::new();
    let mut panicked = None;
    let mut oopsed = None;

    for (index, line) in lines.iter().enumerate() {
        if let Some(at) = line.find(PANIC_MARKER) {
            panicked.get_or_insert_with(|| line[at..].to_string());
            trouble_ranges.push((index.saturating_sub(CONTEXT_BEFORE), index + CONTEXT_AFTER));
        } else if let Some(at) = OOPS_MARKERS.iter().find_map(|marker| line.find(marker)) {
            oopsed.get_or_insert_with(|| line[at..].to_string());
            trouble_ranges.push((index.saturating_sub(CONTEXT_BEFORE), index + CONTEXT_AFTER));
        }
        let Some(message) = Message::find(line) else {
            continue;
        };
        match message {
            Message::Plan(names) => plan = Some(names),
            Message::Begin(name) => entry(&mut scenarios, &name).status = Status::Unfinished,
            Message::Log { scenario, text } => {
                entry(&mut scenarios, &scenario).transcript.push(text)
            }
            Message::End { scenario, passed } => {
                entry(&mut scenarios, &scenario).status =
                    if passed { Status::Pass } else { Status::Fail };
            }
            Message::Error(text) => problems.push(format!("the guest's harness failed: {text}")),
            Message::Verdict(passed) => verdict = Some(passed),
            Message::Unknown(_) => problems.push(format!("unknown protocol line: {line}")),
        }
    }

    if let Some(panic) = &panicked {
        problems.push(format!("the kernel panicked: {panic}"));
    }
    if let Some(oops) = &oopsed {
        problems.push(format!("the kernel reported trouble: {oops}"));
    }
    match &plan {
        None if verdict.is_none() && panicked.is_none() => {
            problems.push("the guest never started (no plan line on the console)".into());
        }
        Some(plan)
            if plan
                .iter()
                .map(String::as_str)
                .ne(requested.iter().copied()) =>
        {
            problems.push(format!(
                "the guest planned [{}], the host asked for [{}]",
                plan.join(", "),
                requested.join(", ")
            ))
        }
        _ => {}
    }
    match verdict {
        None => problems.push("no verdict: the guest did not finish".into()),
        Some(true) if scenarios.iter().any(|s| s.status != Status::Pass) => {
            problems.push("the guest said pass, but not every scenario passed".into());
        }
        Some(_) => {}
    }

    let mut kernel_trouble = Vec::new();
    let mut shown_until = 0;
    for (start, end) in trouble_ranges {
        let start = start.max(shown_until);
        let end = end.min(lines.len());
        if start >= end {
            continue;
        }
        if shown_until != 0 && start > shown_until {
            kernel_trouble.push("...".into());
        }
        kernel_trouble.extend(lines[start..end].iter().map(|l| printable(l)));
        shown_until = end;
    }
    let tail = if verdict.is_none() {
        lines[lines.len().saturating_sub(TAIL)..]
            .iter()
            .map(|l| printable(l))
            .collect()
    } else {
        Vec::new()
    };
    BootReport {
        scenarios,
        verdict,
        problems,
        kernel_trouble,
        tail,
    }
}

/// The result of scenario `name`, added when the guest ran one the host did not ask for.
fn entry<'a>(scenarios: &'a mut Vec<ScenarioResult>, name: &str) -> &'a mut ScenarioResult {
    let index = match scenarios.iter().position(|s| s.name == name) {
        Some(index) => index,
        None => {
            scenarios.push(ScenarioResult {
                name: name.to_string(),
                status: Status::NotRun,
                transcript: vec![],
            });
            scenarios.len() - 1
        }
    };
    &mut scenarios[index]
}

/// A console line without terminal escapes (SeaBIOS clears the screen) or control characters.
fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ parameters final-byte; otherwise ESC and one character.
                if chars.next_if_eq(&'[').is_some() {
                    while chars.next().is_some_and(|c| !('@'..='~').contains(&c)) {}
                } else {
                    chars.next();
                }
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A readable report of one boot: one line per scenario, and for what failed the transcript and
/// the kernel's trouble.
pub fn render(title: &str, report: &BootReport) -> String {
    let mut out = String::new();
    let passed = report
        .scenarios
        .iter()
        .filter(|s| s.status == Status::Pass)
        .count();
    let verdict = if report.passed() { "ok" } else { "FAILED" };
    let _ = writeln!(
        out,
        "{title}: {verdict}, {passed}/{} scenarios passed",
        report.scenarios.len()
    );
    for scenario in &report.scenarios {
        let _ = writeln!(out, "  {:<10} {}", scenario.status.label(), scenario.name);
        if scenario.status != Status::Pass {
            for line in &scenario.transcript {
                let _ = writeln!(out, "      | {line}");
            }
        } else {
            for row in scenario
                .transcript
                .iter()
                .filter_map(|line| line.strip_prefix(::vmtest::protocol::ROW))
            {
                let _ = writeln!(out, "      {row}");
            }
        }
    }
    for problem in &report.problems {
        let _ = writeln!(out, "  problem: {problem}");
    }
    if !report.kernel_trouble.is_empty() {
        let _ = writeln!(out, "  kernel console around the trouble:");
        for line in &report.kernel_trouble {
            let _ = writeln!(out, "      > {line}");
        }
    }
    if !report.tail.is_empty() && report.kernel_trouble.is_empty() {
        let _ = writeln!(out, "  last console lines:");
        for line in &report.tail {
            let _ = writeln!(out, "      > {line}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOT_NOISE: &str = "\x1bc\x1b[2J\
[    0.000000] Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org)
[    0.812345] Run /init as init process
";

    fn passing_log() -> String {
        format!(
            "{BOOT_NOISE}\
MODKIT-VMTEST plan insmod params
MODKIT-VMTEST begin insmod
MODKIT-VMTEST log insmod $ /sbin/insmod /kmods/hello_api.ko
MODKIT-VMTEST log insmod   exit status: 0
MODKIT-VMTEST log insmod   kmsg| [hello_api] Hello, World!
MODKIT-VMTEST log insmod   ok: kernel log shows \"[hello_api] Hello, World!\"
MODKIT-VMTEST end insmod pass
MODKIT-VMTEST begin params
MODKIT-VMTEST log params   ok: exits with status 0
MODKIT-VMTEST end params pass
MODKIT-VMTEST verdict pass
[    3.100000] reboot: Power down
"
        )
    }

    #[test]
    fn passing_run() {
        let report = parse(&passing_log(), &["insmod", "params"]);
        assert!(report.passed(), "{report:#?}");
        assert_eq!(report.verdict, Some(true));
        assert_eq!(report.scenarios.len(), 2);
        assert_eq!(
            report.scenarios[0].transcript[2],
            "  kmsg| [hello_api] Hello, World!"
        );
        let text = render("6.1.0-56-amd64", &report);
        assert_eq!(
            text,
            "6.1.0-56-amd64: ok, 2/2 scenarios passed\n  PASS       insmod\n  PASS       params\n"
        );
    }

    #[test]
    fn carriage_returns_and_interleaved_kernel_text() {
        let log = passing_log().replace('\n', "\r\n").replace(
            "MODKIT-VMTEST end params pass",
            "[    2.5] random: crng initMODKIT-VMTEST end params pass",
        );
        let report = parse(&log, &["insmod", "params"]);
        assert!(report.passed(), "{report:#?}");
    }

    #[test]
    fn failing_scenario() {
        let log = format!(
            "{BOOT_NOISE}\
MODKIT-VMTEST plan insmod in-use
MODKIT-VMTEST begin insmod
MODKIT-VMTEST log insmod $ /sbin/insmod /kmods/hello_feature.ko
MODKIT-VMTEST log insmod   stderr| insmod: ERROR: could not insert module: Unknown symbol in module
MODKIT-VMTEST log insmod   exit status: 1
MODKIT-VMTEST log insmod   kmsg| hello_feature: Unknown symbol api_test (err -2)
MODKIT-VMTEST log insmod   FAIL: stderr hints at hello_api, which exports api_test \\x28tab:\\x09\\\\\\x29
MODKIT-VMTEST end insmod fail
MODKIT-VMTEST begin in-use
MODKIT-VMTEST end in-use pass
MODKIT-VMTEST verdict fail
"
        );
        let report = parse(&log, &["insmod", "in-use"]);
        assert!(!report.passed());
        assert_eq!(report.verdict, Some(false));
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.scenarios[0].status, Status::Fail);
        assert_eq!(report.scenarios[1].status, Status::Pass);
        assert_eq!(
            report.scenarios[0].transcript.last().unwrap(),
            "  FAIL: stderr hints at hello_api, which exports api_test (tab:\t\\)"
        );
        let text = render("6.12.117+deb12-amd64", &report);
        assert!(text.starts_with(
            "6.12.117+deb12-amd64: FAILED, 1/2 scenarios passed\n  FAIL       insmod\n"
        ));
        assert!(
            text.contains("      |   kmsg| hello_feature: Unknown symbol api_test (err -2)\n"),
            "{text}"
        );
        assert!(text.contains("\n  PASS       in-use\n"), "{text}");
        assert!(!text.contains("problem:"), "{text}");
    }

    #[test]
    fn kernel_panic() {
        let log = format!(
            "{BOOT_NOISE}\
MODKIT-VMTEST plan selftest-panic
MODKIT-VMTEST begin selftest-panic
MODKIT-VMTEST log selftest-panic   crashing the kernel through /proc/sysrq-trigger
[    2.901000] sysrq: Trigger a crash
[    2.902000] Kernel panic - not syncing: sysrq triggered crash
[    2.903000] CPU: 0 PID: 1 Comm: init Tainted: G           OE      6.1.0-56-amd64 #1
[    2.904000] Call Trace:
"
        );
        let report = parse(&log, &["selftest-panic"]);
        assert!(!report.passed());
        assert_eq!(report.verdict, None);
        assert_eq!(report.scenarios[0].status, Status::Unfinished);
        assert_eq!(
            report.problems,
            vec![
                "the kernel panicked: Kernel panic - not syncing: sysrq triggered crash"
                    .to_string(),
                "no verdict: the guest did not finish".to_string(),
            ]
        );
        assert!(
            report
                .kernel_trouble
                .iter()
                .any(|l| l.contains("sysrq: Trigger a crash"))
        );
        assert!(
            report
                .kernel_trouble
                .iter()
                .any(|l| l.contains("Call Trace:"))
        );
        let text = render("6.1.0-56-amd64", &report);
        assert!(text.contains("  UNFINISHED selftest-panic\n"), "{text}");
        assert!(
            text.contains("      > [    2.902000] Kernel panic - not syncing"),
            "{text}"
        );
    }

    #[test]
    fn init_exits_and_kernel_panics_before_the_plan() {
        let log = format!(
            "{BOOT_NOISE}[    0.9] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n"
        );
        let report = parse(&log, &["insmod"]);
        assert!(!report.passed());
        assert_eq!(report.scenarios[0].status, Status::NotRun);
        assert!(
            report.problems[0].contains("Attempted to kill init"),
            "{:?}",
            report.problems
        );
    }

    #[test]
    fn truncated_log_without_verdict() {
        let log = format!(
            "{BOOT_NOISE}\
MODKIT-VMTEST plan insmod params
MODKIT-VMTEST begin insmod
MODKIT-VMTEST log insmod $ /sbin/insmod /kmods/hello_api.ko
"
        );
        let report = parse(&log, &["insmod", "params"]);
        assert!(!report.passed());
        assert_eq!(report.scenarios[0].status, Status::Unfinished);
        assert_eq!(report.scenarios[1].status, Status::NotRun);
        assert_eq!(
            report.problems,
            vec!["no verdict: the guest did not finish".to_string()]
        );
        assert_eq!(
            report.tail[0],
            "[    0.000000] Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org)"
        );
        assert_eq!(
            report.tail.last().unwrap(),
            "MODKIT-VMTEST log insmod $ /sbin/insmod /kmods/hello_api.ko"
        );
        let text = render("k", &report);
        assert!(text.contains("  NOT RUN    params\n"), "{text}");
        assert!(text.contains("  last console lines:\n"), "{text}");
    }

    #[test]
    fn empty_console() {
        let report = parse("", &["insmod"]);
        assert!(!report.passed());
        assert_eq!(
            report.problems,
            vec![
                "the guest never started (no plan line on the console)".to_string(),
                "no verdict: the guest did not finish".to_string(),
            ]
        );
    }

    #[test]
    fn harness_error_and_inconsistent_verdict() {
        let log = "\
MODKIT-VMTEST plan insmod
MODKIT-VMTEST error vmtest-init panicked: oops\\x0a
MODKIT-VMTEST verdict pass
";
        let report = parse(log, &["insmod"]);
        assert!(!report.passed());
        assert_eq!(
            report.problems,
            vec![
                "the guest's harness failed: vmtest-init panicked: oops\n".to_string(),
                "the guest said pass, but not every scenario passed".to_string(),
            ]
        );
    }

    #[test]
    fn plan_differs_from_request() {
        let log = passing_log();
        let report = parse(&log, &["insmod"]);
        assert!(!report.passed());
        assert_eq!(
            report.problems,
            vec!["the guest planned [insmod, params], the host asked for [insmod]".to_string()]
        );
        // The extra scenario is still shown.
        assert_eq!(report.scenarios[1].name, "params");
    }

    #[test]
    fn oops_without_panic_fails_the_boot() {
        let log = passing_log().replace(
            "MODKIT-VMTEST end insmod pass",
            "[ 2.0] BUG: kernel NULL pointer dereference, address: 0000000000000000\nMODKIT-VMTEST end insmod pass",
        );
        let report = parse(&log, &["insmod", "params"]);
        assert!(!report.passed());
        assert_eq!(
            report.problems,
            vec!["the kernel reported trouble: BUG: kernel NULL pointer dereference, address: 0000000000000000".to_string()]
        );
        assert_eq!(report.kernel_trouble[0], "MODKIT-VMTEST begin insmod");
        assert!(
            report
                .kernel_trouble
                .iter()
                .any(|l| l.starts_with("[ 2.0] BUG:"))
        );
    }

    #[test]
    fn console_escapes_are_dropped() {
        assert_eq!(
            printable("\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2)\x07\tok"),
            "SeaBIOS (version 1.16.2)\tok"
        );
        assert_eq!(printable("plain"), "plain");
        assert_eq!(printable("cut \x1b["), "cut ");
    }
}
