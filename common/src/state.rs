//! Per-resource state files and the per-instance lock, under `HA_RSCTMP`.
//!
//! `HA_RSCTMP` (default `/run/resource-agents`, shared with the heartbeat
//! agents) holds a directory of ours, `heartbeat-rs/`, mode 0700. Files in it
//! are opened with `O_NOFOLLOW` and mode 0600, so a symlink planted there
//! cannot redirect a root write. Instance names are encoded so any name maps
//! to one file name and two names never share one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use crate::deadline::Deadline;
use crate::env::Env;
use crate::status::Failure;

pub const DEFAULT_RSCTMP: &str = "/run/resource-agents";

/// Our directory under `HA_RSCTMP`.
#[derive(Clone, Debug)]
pub struct StateDir {
    dir: PathBuf,
}

/// Encode an instance name as one safe file-name component: letters, digits,
/// `-`, `_` and `.` stay, everything else becomes `%XX` (so `a/b` and `a_b`
/// stay apart, and `..` cannot climb).
pub fn encode_name(name: &str) -> String {
    let mut s = String::new();
    for (i, b) in name.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if keep {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    if s.is_empty() {
        s.push_str("%00");
    }
    s
}

/// One small value an instance keeps between calls in the [`StateDir`]:
/// the domain name it started, "we started this" for a monitor that must
/// tell "lost" from "never started". Reading never fails (no file, no
/// value); keeping and clearing are best effort and warn, because what they
/// record only sharpens a later answer and must not fail the action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    key: String,
}

impl Record {
    /// The record named by `parts` (each encoded with [`encode_name`],
    /// joined by `.`: `["Xen", instance, "domain"]`).
    pub fn new(parts: &[&str]) -> Record {
        let key = parts
            .iter()
            .map(|p| encode_name(p))
            .collect::<Vec<_>>()
            .join(".");
        Record { key }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn read(&self, env: &Env) -> Option<String> {
        StateDir::open(env).ok()?.read(&self.key)
    }

    /// Write `value` (or fail, for a caller that must know).
    pub fn write(&self, env: &Env, value: &str) -> Result<(), Failure> {
        StateDir::open(env)?.write(&self.key, value)
    }

    /// Write `value` unless it is there already; a failure is a warning.
    pub fn keep(&self, env: &Env, value: &str) {
        if self.read(env).as_deref() == Some(value) {
            return;
        }
        if let Err(e) = self.write(env, value) {
            crate::warn!("{}", e.reason);
        }
    }

    pub fn clear(&self, env: &Env) {
        if let Ok(d) = StateDir::open(env) {
            d.remove(&self.key);
        }
    }
}

impl StateDir {
    /// `$HA_RSCTMP/heartbeat-rs`, created if needed.
    pub fn open(env: &Env) -> Result<StateDir, Failure> {
        let base = PathBuf::from(env.non_empty("HA_RSCTMP").unwrap_or(DEFAULT_RSCTMP));
        StateDir::open_in(&base)
    }

    pub fn open_in(base: &Path) -> Result<StateDir, Failure> {
        let perm = |e: std::io::Error, what: &Path| {
            let msg = format!("cannot create state directory {}: {e}", what.display());
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                Failure::perm(msg)
            } else {
                Failure::generic(msg)
            }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(base)
            .map_err(|e| perm(e, base))?;
        let dir = base.join("heartbeat-rs");
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(perm(e, &dir)),
        }
        // Refuse a symlink or a directory someone else owns or can write.
        let meta = std::fs::symlink_metadata(&dir).map_err(|e| perm(e, &dir))?;
        let euid = nix::unistd::geteuid().as_raw();
        if !meta.is_dir() || meta.uid() != euid || meta.permissions().mode() & 0o022 != 0 {
            return Err(Failure::generic(format!(
                "state directory {} is not a private directory of ours; refusing to use it",
                dir.display()
            )));
        }
        Ok(StateDir { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file for `key` (already encoded with [`encode_name`] by callers
    /// that take names from outside).
    pub fn file(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    fn open_file(&self, key: &str, write: bool, truncate: bool) -> std::io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(write)
            .create(write)
            .truncate(truncate)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(self.file(key))
    }

    /// Write a state file atomically enough for our use (one writer holds the
    /// instance lock).
    pub fn write(&self, key: &str, contents: &str) -> Result<(), Failure> {
        let mut f = self
            .open_file(key, true, true)
            .map_err(|e| Failure::generic(format!("cannot write state file {key}: {e}")))?;
        f.write_all(contents.as_bytes())
            .map_err(|e| Failure::generic(format!("cannot write state file {key}: {e}")))
    }

    /// Read a state file; `None` if it does not exist.
    pub fn read(&self, key: &str) -> Option<String> {
        let mut s = String::new();
        self.open_file(key, false, false)
            .ok()?
            .read_to_string(&mut s)
            .ok()?;
        Some(s)
    }

    pub fn remove(&self, key: &str) {
        let _ = std::fs::remove_file(self.file(key));
    }

    /// Take the lock of one resource instance, waiting (bounded by
    /// `deadline`) while another action holds it.
    pub fn lock(
        &self,
        resource_type: &str,
        instance: &str,
        deadline: &Deadline,
    ) -> Result<InstanceLock, Failure> {
        let key = format!(
            "{}.{}.lock",
            encode_name(resource_type),
            encode_name(instance)
        );
        let mut file = Some(
            self.open_file(&key, true, false)
                .map_err(|e| Failure::generic(format!("cannot open lock file {key}: {e}")))?,
        );
        let got = deadline.wait_for(Duration::from_millis(20), || {
            let f = file.take()?;
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(l) => Some(l),
                Err((f, _)) => {
                    file = Some(f);
                    None
                }
            }
        });
        got.map(|flock| InstanceLock { _flock: flock }).ok_or_else(|| {
            Failure::generic(format!(
                "another operation on {resource_type} {instance} is still running; gave up waiting for it"
            ))
        })
    }
}

/// Held while an action runs; released on drop (or at exit).
#[derive(Debug)]
pub struct InstanceLock {
    _flock: Flock<File>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ocf-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn names_encode_uniquely_and_safely() {
        assert_eq!(encode_name("fs1"), "fs1");
        assert_eq!(encode_name("a/b"), "a%2Fb");
        assert_ne!(encode_name("a/b"), encode_name("a_b"));
        assert_eq!(encode_name(".."), "%2E.");
        assert_eq!(encode_name("vm:1 x"), "vm%3A1%20x");
        assert_eq!(encode_name(""), "%00");
    }

    #[test]
    fn state_dir_is_private_and_files_are_0600() {
        let b = base("perm");
        let s = StateDir::open_in(&b).unwrap();
        let mode = std::fs::metadata(s.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        s.write("k", "v1").unwrap();
        assert_eq!(s.read("k").as_deref(), Some("v1"));
        let mode = std::fs::metadata(s.file("k")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        s.remove("k");
        assert_eq!(s.read("k"), None);
        std::fs::remove_dir_all(b).unwrap();
    }

    #[test]
    fn a_planted_symlink_is_not_followed() {
        let b = base("symlink");
        let s = StateDir::open_in(&b).unwrap();
        let victim = b.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, s.file("k")).unwrap();
        assert!(s.write("k", "overwritten").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        std::fs::remove_dir_all(b).unwrap();
    }

    #[test]
    fn a_group_writable_state_dir_is_refused() {
        let b = base("loose");
        std::fs::create_dir_all(b.join("heartbeat-rs")).unwrap();
        std::fs::set_permissions(
            b.join("heartbeat-rs"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let e = StateDir::open_in(&b).unwrap_err();
        assert!(e.reason.contains("not a private directory"), "{e}");
        std::fs::remove_dir_all(b).unwrap();
    }

    #[test]
    fn the_instance_lock_excludes_a_second_holder_until_released() {
        let b = base("lock");
        let s = StateDir::open_in(&b).unwrap();
        let long = Deadline::after(Duration::from_secs(10));
        let held = s.lock("Filesystem", "fs1", &long).unwrap();
        let short = Deadline::after(Duration::from_millis(100));
        let e = s.lock("Filesystem", "fs1", &short).unwrap_err();
        assert!(e.reason.contains("still running"), "{e}");
        // another instance is independent
        let _other = s.lock("Filesystem", "fs2", &short).unwrap();
        drop(held);
        let _again = s.lock("Filesystem", "fs1", &short).unwrap();
        std::fs::remove_dir_all(b).unwrap();
    }

    #[test]
    fn records_keep_read_and_clear_one_value() {
        let b = base("record");
        let env = crate::env::Env::from_pairs([("HA_RSCTMP", b.to_str().unwrap())]);
        let r = Record::new(&["Xen", "vm/1", "domain"]);
        assert_eq!(r.key(), "Xen.vm%2F1.domain");
        assert_eq!(r.read(&env), None);
        r.keep(&env, "guest one");
        assert_eq!(r.read(&env).as_deref(), Some("guest one"));
        r.clear(&env);
        assert_eq!(r.read(&env), None);
        let _ = std::fs::remove_dir_all(&b);
    }
}
