//! Running the node's tools (mount, fsck, lvm, iscsiadm, ...).
//!
//! Always an argument vector, never a shell: a parameter holding `;`, `$(..)`
//! or a quote reaches the tool as one literal argument. Each run has
//! `LC_ALL=C` (we parse English output), a default `PATH` when the caller
//! passed none (rgmanager passes no PATH at all), captured output, and a time
//! limit no later than the operation deadline; a tool that overruns is killed
//! with its whole process group.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::deadline::Deadline;
use crate::env::Env;
use crate::status::Failure;

/// How long a killed tool is waited for: it dies at once unless it is in
/// uninterruptible I/O, and then waiting does not help.
const REAP_WAIT: Duration = Duration::from_millis(500);

/// The search path used when the caller passes none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Finds tools on this node, honouring `OCF_TESTER_FAIL_HAVE_BINARY`.
#[derive(Clone, Debug)]
pub struct Tools {
    path: String,
    fail_all: bool,
}

impl Tools {
    pub fn from_env(env: &Env) -> Tools {
        Tools {
            path: env.non_empty("PATH").unwrap_or(DEFAULT_PATH).to_string(),
            fail_all: env.get("OCF_TESTER_FAIL_HAVE_BINARY") == Some("1"),
        }
    }

    /// The search path children get.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Where `name` is, like `have_binary`: `None` when it is missing, not
    /// executable, or ocf-tester asked us to pretend nothing is installed.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        if self.fail_all {
            return None;
        }
        let candidates: Vec<PathBuf> = if name.contains('/') {
            vec![PathBuf::from(name)]
        } else {
            self.path
                .split(':')
                .filter(|d| !d.is_empty())
                .map(|d| Path::new(d).join(name))
                .collect()
        };
        candidates.into_iter().find(|p| is_executable(p))
    }

    /// Like [`Tools::find`], but a missing tool is OCF_ERR_INSTALLED.
    pub fn require(&self, name: &str) -> Result<PathBuf, Failure> {
        self.find(name)
            .ok_or_else(|| Failure::installed(format!("required tool '{name}' not found")))
    }

    /// Run each of `scripts` (found like any tool, run as an argument vector
    /// with no arguments) in turn within `deadline`; the first one missing or
    /// failing is the failure. `what` names them in messages ("monitor
    /// script").
    pub fn run_scripts(
        &self,
        what: &str,
        scripts: &[String],
        deadline: &Deadline,
    ) -> Result<(), Failure> {
        for script in scripts {
            let path = self
                .find(script)
                .ok_or_else(|| Failure::generic(format!("{what} {script} not found")))?;
            let out = Cmd::new(path).path(&self.path).run(deadline)?;
            if !out.success() {
                return Err(Failure::generic(format!(
                    "{what} {script} failed: {}",
                    out.message()
                )));
            }
        }
        Ok(())
    }

    /// Self-fence (rgmanager's `self_fence`): log why and reboot the node at
    /// once with `reboot -f -n`. Never fails: there is nothing left to do if
    /// the reboot cannot be run, beyond logging it.
    pub fn self_fence(&self, why: &str) {
        crate::error!("{why}; self_fence is set: rebooting this node (reboot -fn)");
        match self.command("reboot") {
            Ok(cmd) => {
                let deadline = Deadline::after(Duration::from_secs(10));
                if let Err(e) = cmd.args(["-f", "-n"]).run(&deadline) {
                    crate::error!("self-fence: reboot failed: {e}");
                }
            }
            Err(e) => crate::error!("self-fence: {}", e.reason),
        }
    }

    /// A command for the tool `name`, or OCF_ERR_INSTALLED if it is missing.
    pub fn command(&self, name: &str) -> Result<Cmd, Failure> {
        Ok(Cmd::new(self.require(name)?).path(&self.path))
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What a finished tool left behind.
#[derive(Clone, Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }
    /// The exit code, or None when killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    /// stderr, else stdout, trimmed to one line for an exit reason.
    pub fn message(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        text.trim().lines().last().unwrap_or("").to_string()
    }
}

/// Why a tool did not finish.
#[derive(Debug)]
pub enum RunError {
    /// Could not start it at all.
    Spawn(PathBuf, std::io::Error),
    /// Still running when its time was up; it was killed.
    TimedOut(PathBuf, Duration),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(p, e) => write!(f, "cannot run {}: {e}", p.display()),
            RunError::TimedOut(p, d) => {
                write!(
                    f,
                    "{} did not finish within {:.1}s and was killed",
                    p.display(),
                    d.as_secs_f64()
                )
            }
        }
    }
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Failure {
        Failure::generic(e.to_string())
    }
}

/// One tool invocation.
#[derive(Clone, Debug)]
pub struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    path: String,
    limit: Option<Duration>,
}

impl Cmd {
    pub fn new(program: impl Into<PathBuf>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            path: DEFAULT_PATH.to_string(),
            limit: None,
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Cmd {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// The `PATH` the child gets.
    pub fn path(mut self, path: &str) -> Cmd {
        self.path = path.to_string();
        self
    }

    /// A limit shorter than the deadline for this one call.
    pub fn limit(mut self, d: Duration) -> Cmd {
        self.limit = Some(d);
        self
    }

    /// The command line, for logs.
    pub fn display(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    /// Run to completion or until the deadline (or the call's own limit),
    /// whichever is first; on time-out the process group is killed.
    pub fn run(&self, deadline: &Deadline) -> Result<Output, RunError> {
        let deadline = match self.limit {
            Some(l) => deadline.capped(l),
            None => *deadline,
        };
        crate::debug!("running: {}", self.display());
        let started = std::time::Instant::now();
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_remove("LANG")
            .env_remove("LANGUAGE")
            .env("LC_ALL", "C")
            .env("PATH", &self.path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| RunError::Spawn(self.program.clone(), e))?;
        let out = child.stdout.take().map(drain);
        let err = child.stderr.take().map(drain);
        let finished = wait_until(&mut child, &deadline);
        let status = match finished {
            Some(s) => s,
            None => {
                let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                // Reap it, but only briefly: a tool in uninterruptible I/O
                // (a read from a suspended device-mapper device, a hung
                // NFS server) does not die of SIGKILL until that I/O ends,
                // and `wait` would block with it. Unreaped, it is left to
                // init when the agent exits.
                let reaped = wait_until(&mut child, &Deadline::after(REAP_WAIT));
                if reaped.is_none() {
                    crate::debug!(
                        "{} (pid {}) is in uninterruptible I/O; not waiting for it",
                        self.program.display(),
                        child.id()
                    );
                }
                crate::debug!(
                    "killed: {} did not finish within {:.1}s",
                    self.program.display(),
                    deadline.total().as_secs_f64()
                );
                return Err(RunError::TimedOut(self.program.clone(), deadline.total()));
            }
        };
        // The result, never the output: a tool's output may hold secrets
        // (iSCSI records), which only the agent can mask.
        crate::debug!(
            "finished: {} ({}) in {} ms",
            self.program.display(),
            status,
            started.elapsed().as_millis()
        );
        // A daemon the tool left behind may keep the pipe open: take what
        // arrived by the deadline and do not wait for the rest.
        let collect = |rx: Option<mpsc::Receiver<Vec<u8>>>| {
            rx.and_then(|rx| {
                rx.recv_timeout(deadline.remaining().max(Duration::from_millis(100)))
                    .ok()
            })
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
        };
        Ok(Output {
            status,
            stdout: collect(out),
            stderr: collect(err),
        })
    }
}

/// Wait for `child` to exit, until `deadline`; `None` when it is still
/// running then (it is not killed here).
///
/// The wait blocks in poll(2) on a pidfd, which becomes readable the moment
/// the child exits, so a tool that takes 1 ms costs 1 ms. A sleep-and-check
/// loop cost a whole interval whenever the tool outlived the first check
/// (the 5 ms of every monitor that ran a dynamically linked tool), and a
/// blocking wait(2) could not be bounded: a child in uninterruptible I/O
/// would hold the agent past its timeout. Without pidfds (Linux < 5.3, or a
/// seccomp filter refusing them) it checks with a backoff from 50 µs to
/// 5 ms instead.
fn wait_until(child: &mut Child, deadline: &Deadline) -> Option<ExitStatus> {
    let Some(pidfd) = pidfd_open(child.id()) else {
        return wait_by_checking(child, deadline);
    };
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let left = deadline.remaining();
        if left.is_zero() {
            return None;
        }
        // whole milliseconds, rounded up: never wake before the deadline
        // only to find time left
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            // cannot happen with a valid pidfd; do not spin on it
            Err(_) => return wait_by_checking(child, deadline),
        }
    }
}

/// [`wait_until`] without a pidfd: check, sleep, check again, the sleep
/// growing from 50 µs to 5 ms so a quick tool is not charged 5 ms.
fn wait_by_checking(child: &mut Child, deadline: &Deadline) -> Option<ExitStatus> {
    let mut interval = Duration::from_micros(50);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if !deadline.sleep(interval) {
            return child.try_wait().ok().flatten();
        }
        interval = (interval * 2).min(Duration::from_millis(5));
    }
}

/// A pidfd for our child `pid` (not yet reaped, so the pid is still its),
/// or `None` where the kernel has none.
#[allow(unsafe_code)] // FFI: pidfd_open(2), which libc and nix do not wrap
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new file
    // descriptor or -1; it touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just returned by the kernel, is open, and nothing
    // else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn drain<R: Read + Send + 'static>(mut r: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn tools() -> Tools {
        Tools::from_env(&Env::default())
    }

    #[test]
    fn default_path_when_the_caller_passes_none() {
        let t = tools();
        assert_eq!(t.path(), DEFAULT_PATH);
        assert!(t.find("sh").is_some());
        assert!(t.find("no-such-tool-here").is_none());
        let e = t.require("no-such-tool-here").unwrap_err();
        assert_eq!(e.status, crate::OcfStatus::ErrInstalled);
    }

    #[test]
    fn ocf_tester_can_hide_every_tool() {
        let t = Tools::from_env(&Env::from_pairs([("OCF_TESTER_FAIL_HAVE_BINARY", "1")]));
        assert!(t.find("sh").is_none());
        assert!(t.find("/bin/sh").is_none());
    }

    #[test]
    fn arguments_are_passed_literally_never_through_a_shell() {
        let d = Deadline::after(Duration::from_secs(10));
        let tricky = "a b; echo pwned $(id) `id` 'q' \"dq\" %n";
        let out = tools()
            .command("printf")
            .unwrap()
            .args(["%s|", tricky])
            .run(&d)
            .unwrap();
        assert!(out.success());
        assert_eq!(out.stdout, format!("{tricky}|"));
    }

    #[test]
    fn children_get_c_locale_and_our_path() {
        let d = Deadline::after(Duration::from_secs(10));
        let out = tools().command("env").unwrap().run(&d).unwrap();
        assert!(out.stdout.lines().any(|l| l == "LC_ALL=C"));
        assert!(out
            .stdout
            .lines()
            .any(|l| l == format!("PATH={DEFAULT_PATH}")));
        assert!(!out.stdout.lines().any(|l| l.starts_with("LANG=")));
    }

    #[test]
    fn exit_codes_and_stderr_are_captured() {
        let d = Deadline::after(Duration::from_secs(10));
        let out = tools()
            .command("ls")
            .unwrap()
            .arg("/no/such/path")
            .run(&d)
            .unwrap();
        assert!(!out.success());
        assert_eq!(out.code(), Some(2));
        assert!(out.message().contains("No such file"));
    }

    #[test]
    fn scripts_run_in_turn_and_the_first_failure_is_reported() {
        let d = Deadline::after(Duration::from_secs(10));
        let t = tools();
        t.run_scripts("monitor script", &["true".into(), "true".into()], &d)
            .unwrap();
        let e = t
            .run_scripts("monitor script", &["true".into(), "false".into()], &d)
            .unwrap_err();
        assert_eq!(e.reason, "monitor script false failed: ");
        let e = t
            .run_scripts("check", &["no-such-script-here".into()], &d)
            .unwrap_err();
        assert_eq!(e.reason, "check no-such-script-here not found");
    }

    #[test]
    fn a_tool_that_overruns_is_killed_at_the_deadline() {
        let d = Deadline::after(Duration::from_secs(10));
        let t = Instant::now();
        let r = tools()
            .command("sleep")
            .unwrap()
            .arg("30")
            .limit(Duration::from_millis(200))
            .run(&d);
        assert!(matches!(r, Err(RunError::TimedOut(..))), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn without_a_pidfd_a_wait_still_sees_the_exit_and_ends_at_the_deadline() {
        let mut quick = Command::new("false").spawn().unwrap();
        let status = wait_by_checking(&mut quick, &Deadline::after(Duration::from_secs(10)));
        assert_eq!(status.and_then(|s| s.code()), Some(1));

        let mut slow = Command::new("sleep").arg("30").spawn().unwrap();
        let status = wait_by_checking(&mut slow, &Deadline::after(Duration::from_millis(100)));
        assert!(status.is_none(), "{status:?}");
        slow.kill().unwrap();
        assert!(slow.wait().unwrap().code().is_none());
    }
}
