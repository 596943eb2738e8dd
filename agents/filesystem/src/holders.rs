//! Who keeps a mount busy, and stopping them.
//!
//! A walk of `/proc` that can never hang: `fuser` and `lsof` stat files and
//! block forever on a dead NFS server (heartbeat PR #423); we only *read*
//! kernel text and links. Per process (in our own mount namespace only):
//! - every open file: `/proc/PID/fdinfo/FD` names its mount ID (`mnt_id:`),
//!   which identifies the exact mount, not merely the device, so a bind mount
//!   of `/` matches only what is open through that bind mount (heartbeat
//!   issue #1304: `fuser -m` killed nearly everything);
//! - `cwd`, `root`, `exe` and memory-mapped files (`/proc/PID/maps`): their
//!   paths, compared whole-component with the mount points.
//!
//! The agent's own process is never a holder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// What we look for: a set of mounts (IDs) and their mount points.
pub struct Targets {
    pub ids: BTreeSet<u64>,
    pub dirs: Vec<PathBuf>,
}

impl Targets {
    fn path_hits(&self, p: &Path) -> bool {
        self.dirs.iter().any(|d| p.starts_with(d))
    }
}

fn link(path: &Path) -> Option<PathBuf> {
    std::fs::read_link(path).ok()
}

/// A deleted file's link ends in " (deleted)".
fn strip_deleted(p: PathBuf) -> PathBuf {
    let s = p.to_string_lossy();
    match s.strip_suffix(" (deleted)") {
        Some(base) => PathBuf::from(base),
        None => p,
    }
}

fn holds(pid: &str, t: &Targets) -> bool {
    let base = Path::new("/proc").join(pid);
    for name in ["cwd", "root", "exe"] {
        if let Some(p) = link(&base.join(name)) {
            if t.path_hits(&strip_deleted(p)) {
                return true;
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir(base.join("fdinfo")) {
        for e in dir.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            let mnt = text
                .lines()
                .find_map(|l| l.strip_prefix("mnt_id:"))
                .and_then(|v| v.trim().parse::<u64>().ok());
            if mnt.is_some_and(|id| t.ids.contains(&id)) {
                return true;
            }
        }
    }
    if let Ok(maps) = std::fs::read(base.join("maps")) {
        for line in String::from_utf8_lossy(&maps).lines() {
            // addr perms offset dev inode   path
            let path = line.splitn(6, ' ').nth(5).map(str::trim_start);
            if let Some(p) = path.filter(|p| p.starts_with('/')) {
                if t.path_hits(&strip_deleted(PathBuf::from(p))) {
                    return true;
                }
            }
        }
    }
    false
}

/// PIDs of processes (in our mount namespace, other than us) using any of
/// the targets.
pub fn find(t: &Targets) -> Vec<i32> {
    let me = std::process::id() as i32;
    let our_ns = link(Path::new("/proc/self/ns/mnt"));
    ocf::procs::pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            let pid = pid.to_string();
            let ns = link(&Path::new("/proc").join(&pid).join("ns/mnt"));
            // gone, a kernel thread, or another namespace's paths: not ours
            ns.is_some() && ns == our_ns && holds(&pid, t)
        })
        .collect()
}

/// Parse a signal list as heartbeat takes it: names (`TERM`, `SIGTERM`) or
/// numbers, separated by whitespace (commas accepted too).
pub fn parse_signals(spec: &str) -> Result<Vec<Signal>, String> {
    let mut v = Vec::new();
    for word in spec
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
    {
        let sig = if let Ok(n) = word.parse::<i32>() {
            Signal::try_from(n).map_err(|_| format!("unknown signal number {n}"))?
        } else {
            let up = word.to_ascii_uppercase();
            let name = if up.starts_with("SIG") {
                up
            } else {
                format!("SIG{up}")
            };
            name.parse::<Signal>()
                .map_err(|_| format!("unknown signal {word}"))?
        };
        v.push(sig);
    }
    if v.is_empty() {
        return Err("no signal given".into());
    }
    Ok(v)
}

/// Send each signal to each process; returns how many processes were
/// signalled.
pub fn signal(pids: &[i32], signals: &[Signal]) -> usize {
    let mut n = 0;
    for &pid in pids {
        let mut hit = false;
        for &s in signals {
            if kill(Pid::from_raw(pid), s).is_ok() {
                hit = true;
            }
        }
        if hit {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_lists_take_names_numbers_and_sig_prefix() {
        assert_eq!(parse_signals("TERM").unwrap(), vec![Signal::SIGTERM]);
        assert_eq!(
            parse_signals("SIGHUP  term\t9").unwrap(),
            vec![Signal::SIGHUP, Signal::SIGTERM, Signal::SIGKILL]
        );
        assert!(parse_signals("").is_err());
        assert!(parse_signals("TERM FOO").unwrap_err().contains("FOO"));
        assert!(parse_signals("99").is_err());
    }

    #[test]
    fn a_process_with_its_cwd_in_a_directory_is_found_and_a_sibling_prefix_is_not() {
        let base = std::env::temp_dir().join(format!("holders-{}", std::process::id()));
        let inside = base.join("u");
        let sibling = base.join("usr");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::create_dir_all(&sibling).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(&sibling)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let found_inside = find(&Targets {
            ids: BTreeSet::new(),
            dirs: vec![inside.clone()],
        });
        let found_sibling = find(&Targets {
            ids: BTreeSet::new(),
            dirs: vec![sibling.clone()],
        });
        let _ = child.kill();
        let _ = child.wait();
        std::fs::remove_dir_all(&base).unwrap();
        assert!(!found_inside.contains(&pid), "/u must not match /usr");
        assert!(found_sibling.contains(&pid));
    }
}
