//! Processes run side by side, each under a time limit: what the faults and storm scenarios
//! start, kill and wait for. A process still running at its limit is killed and counted as
//! hung, so a scenario never waits for ever.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A started process.
#[derive(Debug)]
pub struct Job {
    child: Option<Child>,
    argv: Vec<String>,
    started: Instant,
    /// Why it could not be started.
    spawn_error: Option<String>,
}

/// What a process did.
#[derive(Debug, Clone, Default)]
pub struct Done {
    pub argv: Vec<String>,
    /// Exit code; `None` when killed by a signal, hung or not started.
    pub status: Option<i32>,
    /// The signal that ended it.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Still running at its time limit (then killed).
    pub hung: bool,
    pub elapsed: Duration,
}

impl Done {
    /// Exit status 0 and nothing on stderr.
    pub fn clean(&self) -> bool {
        self.status == Some(0) && self.stderr.is_empty()
    }

    /// One line for the transcript.
    pub fn summary(&self) -> String {
        let how = match (self.status, self.signal, self.hung) {
            (_, _, true) => "hung (killed at its time limit)".to_string(),
            (Some(code), _, _) => format!("exit {code}"),
            (None, Some(signal), _) => format!("killed by signal {signal}"),
            (None, None, _) => "not started".to_string(),
        };
        format!(
            "$ {} -> {how} ({:.2} s) stdout {:?} stderr {:?}",
            self.argv.join(" "),
            self.elapsed.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }
}

/// Starts `argv` with an empty environment (but `PATH`), stdout and stderr captured.
pub fn spawn<S: AsRef<str>>(argv: &[S]) -> Job {
    let argv: Vec<String> = argv.iter().map(|a| a.as_ref().to_string()).collect();
    let started = Instant::now();
    let result = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", "/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    match result {
        Ok(child) => Job {
            child: Some(child),
            argv,
            started,
            spawn_error: None,
        },
        Err(err) => Job {
            child: None,
            argv,
            started,
            spawn_error: Some(format!("could not start: {err}")),
        },
    }
}

impl Job {
    /// SIGKILL (what `Child::kill` sends).
    pub fn kill(&mut self) -> std::io::Result<()> {
        match &mut self.child {
            Some(child) => child.kill(),
            None => Ok(()),
        }
    }

    /// Whether it has ended (without reaping it).
    fn poll(&mut self) -> bool {
        match &mut self.child {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Waits until it ends, or kills it at `deadline`.
    pub fn wait_until(mut self, deadline: Instant) -> Done {
        while !self.poll() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.finish()
    }

    /// Reaps it (killing it first if it still runs) and collects its output.
    fn finish(mut self) -> Done {
        let mut done = Done {
            argv: std::mem::take(&mut self.argv),
            ..Done::default()
        };
        let Some(mut child) = self.child.take() else {
            done.stderr = self.spawn_error.take().unwrap_or_default();
            return done;
        };
        if matches!(child.try_wait(), Ok(None)) {
            done.hung = true;
            let _ = child.kill();
        }
        let status = child.wait();
        done.elapsed = self.started.elapsed();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut done.stdout);
        }
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut done.stderr);
        }
        if let Ok(status) = status
            && !done.hung
        {
            done.status = status.code();
            done.signal = status.signal();
        }
        done
    }
}

/// Starts every command at once and waits for all of them, killing those still running
/// after `limit`.
pub fn run_all(commands: &[Vec<String>], limit: Duration) -> Vec<Done> {
    let mut jobs: Vec<Option<Job>> = commands.iter().map(|argv| Some(spawn(argv))).collect();
    let deadline = Instant::now() + limit;
    let mut done: Vec<Option<Done>> = vec![None; jobs.len()];
    loop {
        let mut running = 0;
        for (slot, job) in jobs.iter_mut().enumerate() {
            let Some(j) = job else { continue };
            if j.poll() {
                done[slot] = job.take().map(Job::finish);
            } else {
                running += 1;
            }
        }
        if running == 0 || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for (slot, job) in jobs.into_iter().enumerate() {
        if let Some(job) = job {
            done[slot] = Some(job.finish());
        }
    }
    done.into_iter().flatten().collect()
}

/// Runs one command to its end or its limit.
pub fn run<S: AsRef<str>>(argv: &[S], limit: Duration) -> Done {
    spawn(argv).wait_until(Instant::now() + limit)
}
