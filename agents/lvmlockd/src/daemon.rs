//! Finding a daemon of ours in the process table, and stopping it, without
//! ever signalling a process that is not it.
//!
//! The heartbeat agent trusts its pid file: whatever number is in it is
//! "lvmlockd", checked with `[ -d /proc/$pid ]` and then sent SIGTERM. A
//! stale pid file whose number now belongs to another process (pids wrap,
//! and /run survives a daemon crash) makes its monitor say "running" and its
//! stop kill a random process. Here a pid counts only when the process's
//! command name is the daemon's; the pid file must be a regular file (not a
//! symlink) holding one decimal number; and the check is repeated right
//! before each signal.
//!
//! A daemon started outside the pid file's knowledge (by systemd's
//! `lvmlockd.service`, or with a pid file since removed) is still found:
//! every process of that name whose argument vector names our socket is
//! ours, so a monitor never reports "not running" while it serves our
//! socket, and stop stops it.
//!
//! A command name is not enough on its own: this agent is installed under
//! the daemon's name (`ocf:heartbeat-rs:lvmlockd`, comm `lvmlockd`, and its
//! argument vector names no socket, so it would match the default one), and
//! so is the heartbeat shell agent. A process is the daemon only when it
//! runs the daemon's program: `/proc/<pid>/exe` is the `lvmlockd` found on
//! PATH (a program replaced by a package upgrade reads `... (deleted)` and
//! still counts), or, when none is found there, at least not this agent's
//! own executable.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ocf::Deadline;

/// The pid in a pid file's text: one decimal number > 1, surrounding white
/// space allowed, nothing else.
pub fn parse_pid(text: &str) -> Option<i32> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<i32>().ok().filter(|&p| p > 1)
}

/// What the pid file says, read without following a symlink; `None` when it
/// is missing, not a regular file, or does not hold a pid.
pub fn read_pidfile(path: &Path) -> Option<i32> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    f.by_ref().take(64).read_to_string(&mut text).ok()?;
    parse_pid(&text)
}

/// The program `pid` runs (`/proc/<pid>/exe`), without the ` (deleted)`
/// the kernel appends once the file was replaced.
pub fn exe(pid: &str) -> Option<std::path::PathBuf> {
    let link = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let text = link.to_string_lossy();
    Some(match text.strip_suffix(" (deleted)") {
        Some(t) => t.into(),
        None => link,
    })
}

/// Whether `pid`, whose program is `exe`, named `comm`, is the daemon
/// `name` of the program `program` (when known); `me` is this process's
/// own program.
pub fn is_daemon(
    comm: Option<&str>,
    exe: Option<&Path>,
    name: &str,
    program: Option<&Path>,
    me: Option<&Path>,
) -> bool {
    if comm != Some(name) {
        return false;
    }
    match (exe, program) {
        (Some(exe), Some(program)) => exe == program,
        (Some(exe), None) => Some(exe) != me,
        (None, _) => false,
    }
}

/// Whether an argument vector of the daemon names `socket` as its socket:
/// `-s PATH`, `-sPATH`, `--socket-path PATH` or `--socket-path=PATH`; no
/// socket option at all means the daemon's built-in default `default`.
pub fn argv_names_socket(argv: &[String], socket: &str, default: &str) -> bool {
    let mut named = None;
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        if a == "-s" || a == "--socket-path" {
            named = args.next().map(String::as_str);
        } else if let Some(v) = a.strip_prefix("--socket-path=") {
            named = Some(v);
        } else if let Some(v) = a.strip_prefix("-s").filter(|v| !v.is_empty()) {
            if !a.starts_with("--") {
                named = Some(v);
            }
        }
    }
    named.unwrap_or(default) == socket
}

/// One daemon: its program name, pid file and socket.
#[derive(Clone, Debug)]
pub struct Daemon {
    /// The command name (`comm`) it runs as.
    pub name: &'static str,
    pub pidfile: std::path::PathBuf,
    /// The socket it serves, and its built-in default, for the process
    /// table scan; `None` when it has no socket to tell instances apart.
    pub socket: Option<(String, &'static str)>,
    /// Its program, canonical, when found on PATH.
    pub program: Option<std::path::PathBuf>,
}

/// How a daemon was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// Through the pid file.
    Pidfile(i32),
    /// In the process table, serving our socket; the pid file does not
    /// name it.
    Scan(i32),
}

impl Found {
    pub fn pid(self) -> i32 {
        match self {
            Found::Pidfile(p) | Found::Scan(p) => p,
        }
    }
}

impl Daemon {
    /// Whether `pid` is this daemon now.
    pub fn is(&self, pid: i32) -> bool {
        let comm = ocf::procs::comm(pid);
        let me = exe("self");
        is_daemon(
            comm.as_deref(),
            exe(&pid.to_string()).as_deref(),
            self.name,
            self.program.as_deref(),
            me.as_deref(),
        )
    }

    /// The running daemon, if any (no fork: pid file and /proc).
    pub fn find(&self) -> Option<Found> {
        if let Some(pid) = read_pidfile(&self.pidfile) {
            if self.is(pid) {
                return Some(Found::Pidfile(pid));
            }
            if ocf::procs::comm(pid).is_some() {
                ocf::debug!(
                    "{}: pid {pid} is not {}; ignoring the pid file",
                    self.pidfile.display(),
                    self.name
                );
            }
        }
        self.scan().map(Found::Scan)
    }

    fn scan(&self) -> Option<i32> {
        ocf::procs::pids()
            .into_iter()
            .filter(|&p| self.is(p))
            .find(|&p| match &self.socket {
                Some((socket, default)) => ocf::procs::argv(p)
                    .is_some_and(|a| !a.is_empty() && argv_names_socket(&a, socket, default)),
                None => true,
            })
    }

    /// Send `sig` to `pid` if it still runs as this daemon.
    fn signal(&self, pid: i32, sig: Signal) -> bool {
        self.is(pid) && kill(Pid::from_raw(pid), sig).is_ok()
    }

    /// Whether `pid` is gone (or no longer this daemon).
    fn gone(&self, pid: i32) -> bool {
        !self.is(pid)
    }

    /// Stop `pid`: SIGTERM, wait until half the time left; then SIGKILL and
    /// wait for the rest. True when it is gone.
    pub fn terminate(&self, pid: i32, deadline: &Deadline) -> bool {
        let poll = Duration::from_millis(50);
        ocf::info!("stopping {} (pid {pid}) with SIGTERM", self.name);
        self.signal(pid, Signal::SIGTERM);
        let half = deadline.capped(deadline.remaining() / 2);
        if half
            .wait_for(poll, || self.gone(pid).then_some(()))
            .is_some()
        {
            return true;
        }
        ocf::warn!(
            "{} (pid {pid}) still runs after SIGTERM; sending SIGKILL",
            self.name
        );
        self.signal(pid, Signal::SIGKILL);
        deadline
            .wait_for(poll, || self.gone(pid).then_some(()))
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pid_files_hold_one_number() {
        assert_eq!(parse_pid("1234\n"), Some(1234));
        assert_eq!(parse_pid("  77 "), Some(77));
        for bad in [
            "",
            "\n",
            "1",
            "0",
            "-5",
            "12 34",
            "12abc",
            "99999999999",
            "+12",
        ] {
            assert_eq!(parse_pid(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_socket_is_read_from_every_spelling() {
        let d = "/run/lvm/lvmlockd.socket";
        assert!(argv_names_socket(&v(&["lvmlockd"]), d, d));
        assert!(argv_names_socket(&v(&["lvmlockd", "-A", "1"]), d, d));
        assert!(!argv_names_socket(&v(&["lvmlockd"]), "/x.sock", d));
        assert!(argv_names_socket(
            &v(&["lvmlockd", "-s", "/x.sock"]),
            "/x.sock",
            d
        ));
        assert!(argv_names_socket(
            &v(&["lvmlockd", "-s/x.sock"]),
            "/x.sock",
            d
        ));
        assert!(argv_names_socket(
            &v(&["lvmlockd", "--socket-path", "/x.sock", "-g", "dlm"]),
            "/x.sock",
            d
        ));
        assert!(argv_names_socket(
            &v(&["lvmlockd", "--socket-path=/x.sock"]),
            "/x.sock",
            d
        ));
        assert!(!argv_names_socket(
            &v(&["lvmlockd", "-s", "/y.sock"]),
            "/x.sock",
            d
        ));
        assert!(!argv_names_socket(&v(&["lvmlockd", "-s", "/y.sock"]), d, d));
        // the last one wins, as with getopt
        assert!(argv_names_socket(
            &v(&["lvmlockd", "-s", "/y.sock", "-s", "/x.sock"]),
            "/x.sock",
            d
        ));
    }

    #[test]
    fn the_daemon_runs_the_daemons_program_not_the_agent() {
        let daemon = Path::new("/usr/sbin/lvmlockd");
        let agent = Path::new("/usr/lib/ocf/resource.d/heartbeat-rs/lvmlockd");
        let name = "lvmlockd";
        let is = |comm, exe, program, me| is_daemon(Some(comm), exe, name, program, me);
        assert!(is("lvmlockd", Some(daemon), Some(daemon), Some(agent)));
        // this agent, the heartbeat shell agent: named alike, other programs
        assert!(!is("lvmlockd", Some(agent), Some(daemon), Some(agent)));
        assert!(!is(
            "lvmlockd",
            Some(Path::new("/usr/bin/dash")),
            Some(daemon),
            Some(agent)
        ));
        assert!(!is("sleep", Some(daemon), Some(daemon), Some(agent)));
        // no lvmlockd on PATH: anything of that name but ourselves
        assert!(is("lvmlockd", Some(daemon), None, Some(agent)));
        assert!(!is("lvmlockd", Some(agent), None, Some(agent)));
        // a process whose program cannot be read is not taken for it
        assert!(!is_daemon(
            Some("lvmlockd"),
            None,
            name,
            Some(daemon),
            Some(agent)
        ));
        assert!(!is_daemon(
            None,
            Some(daemon),
            name,
            Some(daemon),
            Some(agent)
        ));
    }

    #[test]
    fn a_symlinked_or_foreign_pid_file_names_no_daemon() {
        let dir = std::env::temp_dir().join(format!("ra-lvmlockd-pid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let real = dir.join("real.pid");
        // our own pid: a live process that is not lvmlockd
        std::fs::write(&real, format!("{}\n", std::process::id())).unwrap();
        assert_eq!(read_pidfile(&real), Some(std::process::id() as i32));
        let link = dir.join("link.pid");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(read_pidfile(&link), None, "a symlink is not followed");
        assert_eq!(read_pidfile(&dir), None, "a directory is no pid file");
        assert_eq!(read_pidfile(&dir.join("missing")), None);
        let d = Daemon {
            name: "lvmlockd-none",
            pidfile: real.clone(),
            socket: Some(("/nonexistent/sock".into(), "/nonexistent/default")),
            program: None,
        };
        assert_eq!(d.find(), None, "a foreign pid is not the daemon");
        assert!(!d.signal(std::process::id() as i32, Signal::SIGTERM));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
