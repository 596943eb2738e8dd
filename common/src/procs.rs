//! Processes, read from `/proc` directly: no `ps | grep`, no fork.
//!
//! Agents ask two questions of the process table: "does a daemon with this
//! name run" (iscsid, clvmd, lvmlockd: the heartbeat agents use `pgrep` or
//! `ps`) and "which process runs with this argument vector" (a guest's
//! emulator while libvirtd is down). Both only read `comm` and `cmdline` of
//! each numeric `/proc` entry; a process that exits while we look is
//! skipped, not an error.

use std::path::{Path, PathBuf};

/// The `/proc` this process reads (a test may point it elsewhere by
/// calling the `_in` variants).
const PROC: &str = "/proc";

/// Every process ID listed under `proc`.
pub fn pids_in(proc: &Path) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir(proc) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect()
}

/// Every process ID in `/proc`.
pub fn pids() -> Vec<i32> {
    pids_in(Path::new(PROC))
}

fn entry(proc: &Path, pid: i32) -> PathBuf {
    proc.join(pid.to_string())
}

/// The command name (`comm`, at most 15 bytes) of `pid`.
pub fn comm(pid: i32) -> Option<String> {
    comm_in(Path::new(PROC), pid)
}

fn comm_in(proc: &Path, pid: i32) -> Option<String> {
    std::fs::read_to_string(entry(proc, pid).join("comm"))
        .ok()
        .map(|c| c.trim_end_matches('\n').to_string())
}

/// The argument vector of `pid` (empty for kernel threads and zombies).
pub fn argv(pid: i32) -> Option<Vec<String>> {
    argv_in(Path::new(PROC), pid)
}

fn argv_in(proc: &Path, pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(entry(proc, pid).join("cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Whether a process whose command name is `name` runs.
pub fn running(name: &str) -> bool {
    running_in(Path::new(PROC), name)
}

pub fn running_in(proc: &Path, name: &str) -> bool {
    pids_in(proc)
        .into_iter()
        .any(|p| comm_in(proc, p).is_some_and(|c| c == name))
}

/// The processes whose argument vector satisfies `pred`.
pub fn find_by_argv(pred: impl Fn(&[String]) -> bool) -> Vec<i32> {
    find_by_argv_in(Path::new(PROC), pred)
}

pub fn find_by_argv_in(proc: &Path, pred: impl Fn(&[String]) -> bool) -> Vec<i32> {
    pids_in(proc)
        .into_iter()
        .filter(|&p| argv_in(proc, p).is_some_and(|a| !a.is_empty() && pred(&a)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_proc() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = |pid: &str, comm: &str, cmdline: &[u8]| {
            let e = d.path().join(pid);
            std::fs::create_dir(&e).unwrap();
            std::fs::write(e.join("comm"), format!("{comm}\n")).unwrap();
            std::fs::write(e.join("cmdline"), cmdline).unwrap();
        };
        p("1", "init", b"/sbin/init\0");
        p("42", "iscsid", b"/sbin/iscsid\0-f\0");
        p(
            "77",
            "qemu-system-x86",
            b"/usr/bin/qemu-system-x86_64\0-name\0guest=vm 1,debug-threads=on\0",
        );
        p("90", "kthreadd", b"");
        std::fs::create_dir(d.path().join("self")).unwrap();
        std::fs::write(d.path().join("meminfo"), "x").unwrap();
        d
    }

    #[test]
    fn pids_are_the_numeric_entries() {
        let d = fake_proc();
        let mut p = pids_in(d.path());
        p.sort();
        assert_eq!(p, vec![1, 42, 77, 90]);
    }

    #[test]
    fn running_matches_the_whole_command_name() {
        let d = fake_proc();
        assert!(running_in(d.path(), "iscsid"));
        assert!(!running_in(d.path(), "iscsi"));
        assert!(!running_in(d.path(), "clvmd"));
    }

    #[test]
    fn argv_keeps_spaces_inside_arguments() {
        let d = fake_proc();
        let found = find_by_argv_in(d.path(), |a| {
            a.windows(2)
                .any(|w| w[0] == "-name" && w[1].starts_with("guest=vm 1,"))
        });
        assert_eq!(found, vec![77]);
        // kernel threads have no argv and never match
        assert!(find_by_argv_in(d.path(), |_| true).iter().all(|&p| p != 90));
    }

    #[test]
    fn this_process_is_seen_in_the_real_proc() {
        let me = std::process::id() as i32;
        assert!(pids().contains(&me));
        assert!(argv(me).is_some_and(|a| !a.is_empty()));
        assert!(comm(me).is_some());
    }
}
