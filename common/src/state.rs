//! Per-resource state files and the per-instance lock, under `HA_RSCTMP`.
//!
//! `HA_RSCTMP` (default `/run/resource-agents`, shared with the heartbeat
//! agents) holds a directory of ours, `heartbeat-rs/`, mode 0700. Files in it
//! are opened with `O_NOFOLLOW` and mode 0600, so a symlink planted there
//! cannot redirect a root write. Instance names are encoded so any name maps
//! to one file name and two names never share one, and a name too long for
//! the filesystem (NAME_MAX) keeps its head and replaces its tail by a hash.
//!
//! What is kept here only sharpens later answers and keeps two actions on
//! one instance apart; it is not what a stop or a probe is about. So when
//! the directory cannot be used (HA_RSCTMP read-only, `heartbeat-rs` made
//! by another user), [`lock_instance`] lets stop and probes go on without
//! the lock, with one warning, while start and recurring monitors keep
//! refusing a directory that is not safe. `HA_RSCTMP` is taken as the
//! operating system gives it, not only when it is UTF-8.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use crate::action::Action;
use crate::context::Context;
use crate::deadline::Deadline;
use crate::env::Env;
use crate::status::Failure;

pub const DEFAULT_RSCTMP: &str = "/run/resource-agents";

/// The longest file name we make: NAME_MAX (255) on every Linux filesystem,
/// less room for a temporary suffix.
const MAX_KEY: usize = 240;

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

/// `key` if it fits in a file name, else its head, `~` and a hash of the
/// whole key (FNV-1a, stable across builds): two long names that differ
/// only in their tails still get two files.
pub fn fit_name(key: String) -> String {
    if key.len() <= MAX_KEY {
        return key;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut head = MAX_KEY - 17;
    while !key.is_char_boundary(head) {
        head -= 1;
    }
    format!("{}~{h:016x}", &key[..head])
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
    /// joined by `.`: `["Xen", instance, "domain"]`, fitted to a file name
    /// with [`fit_name`]).
    pub fn new(parts: &[&str]) -> Record {
        let key = parts
            .iter()
            .map(|p| encode_name(p))
            .collect::<Vec<_>>()
            .join(".");
        Record { key: fit_name(key) }
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
        let base = PathBuf::from(
            env.non_empty_os("HA_RSCTMP")
                .unwrap_or(OsStr::new(DEFAULT_RSCTMP)),
        );
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
        self.try_lock(resource_type, instance, deadline)
            .map_err(|e| match e {
                LockError::Unusable(f) | LockError::Busy(f) => f,
            })
    }

    fn try_lock(
        &self,
        resource_type: &str,
        instance: &str,
        deadline: &Deadline,
    ) -> Result<InstanceLock, LockError> {
        let key = fit_name(format!(
            "{}.{}.lock",
            encode_name(resource_type),
            encode_name(instance)
        ));
        let mut file = Some(self.open_file(&key, true, false).map_err(|e| {
            LockError::Unusable(Failure::generic(format!(
                "cannot open lock file {}: {e}",
                self.file(&key).display()
            )))
        })?);
        let path = self.file(&key);
        let mut reopen_error = None;
        let got = deadline.wait_for(Duration::from_millis(20), || {
            let f = file.take()?;
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                // The holder before us removes the file as it lets go: a
                // lock on a file no longer at `path` locks nothing anyone
                // else will see, so open the path afresh and try again.
                Ok(l) if same_file(&l, &path) => Some(l),
                Ok(_) => {
                    match self.open_file(&key, true, false) {
                        Ok(f) => file = Some(f),
                        Err(e) => reopen_error = Some(e),
                    }
                    None
                }
                Err((f, _)) => {
                    file = Some(f);
                    None
                }
            }
        });
        if let Some(e) = reopen_error.filter(|_| got.is_none()) {
            return Err(LockError::Unusable(Failure::generic(format!(
                "cannot open lock file {}: {e}",
                path.display()
            ))));
        }
        got.map(|flock| InstanceLock {
            flock: Some(flock),
            path,
        })
        .ok_or_else(|| {
            LockError::Busy(Failure::generic(format!(
                "another operation on {resource_type} {instance} is still running; gave up waiting for it"
            )))
        })
    }
}

/// Why the lock was not taken.
enum LockError {
    /// The state directory or the lock file cannot be used.
    Unusable(Failure),
    /// Another action holds the lock past the deadline.
    Busy(Failure),
}

/// The instance lock for the action in `ctx`, as the dispatcher takes it
/// (`name`: the lock name of the instance). Another action holding it is
/// always an error; a state directory that cannot be used is one for start,
/// recurring monitors and everything else that relies on what is kept
/// there, but stop and probes go on without the lock (`Ok(None)`) after one
/// warning: a stop that fails gets the node fenced, and a probe that fails
/// keeps the resource from starting anywhere.
pub fn lock_instance(ctx: &Context, name: &str) -> Result<Option<InstanceLock>, Failure> {
    let deadline = ctx.deadline();
    let r = StateDir::open(&ctx.env)
        .map_err(LockError::Unusable)
        .and_then(|d| d.try_lock(&ctx.resource_type, name, &deadline));
    match r {
        Ok(l) => Ok(Some(l)),
        Err(LockError::Unusable(f)) if ctx.action == Action::Stop || ctx.is_probe() => {
            crate::warn!(
                "{}; {} goes on without the instance lock",
                f.reason,
                if ctx.is_probe() { "the probe" } else { "stop" }
            );
            Ok(None)
        }
        Err(LockError::Unusable(f) | LockError::Busy(f)) => Err(f),
    }
}

/// Whether the locked file is still the one at `path` (same device and
/// inode; `path` not followed if it became a symbolic link).
fn same_file(locked: &Flock<File>, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (locked.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Held while an action runs. Released on drop, which also removes the lock
/// file (while still holding it), so lock files do not pile up in the state
/// directory; a waiter that opened the old file notices (`same_file`) and
/// locks the path afresh. At exit without drop the kernel releases the lock
/// and the file stays until the next action on the instance.
#[derive(Debug)]
pub struct InstanceLock {
    flock: Option<Flock<File>>,
    path: PathBuf,
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        if let Some(flock) = self.flock.take() {
            if same_file(&flock, &self.path) {
                let _ = std::fs::remove_file(&self.path);
            }
            drop(flock);
        }
    }
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
    fn long_names_fit_a_file_name_and_stay_apart() {
        let a = "f".repeat(250);
        let b = format!("{}g", "f".repeat(249));
        let r = Record::new(&["Filesystem", &a, "started"]);
        assert!(r.key().len() <= 255, "{}", r.key());
        assert_ne!(r.key(), Record::new(&["Filesystem", &b, "started"]).key());
        assert_eq!(fit_name("short".into()), "short");
        let base = base("long");
        let s = StateDir::open_in(&base).unwrap();
        let d = Deadline::after(Duration::from_secs(10));
        let _held = s.lock("Filesystem", &a, &d).unwrap();
        let short = Deadline::after(Duration::from_millis(50));
        assert!(s.lock("Filesystem", &a, &short).is_err());
        let _other = s.lock("Filesystem", &b, &short).unwrap();
        std::fs::remove_dir_all(base).unwrap();
    }

    fn ctx(action: Action, pairs: &[(&str, &str)]) -> Context {
        Context::from_env(action, "Dummy", Env::from_pairs(pairs.iter().copied())).unwrap()
    }

    #[test]
    fn stop_and_probes_go_on_without_an_unusable_state_dir() {
        let b = base("unusable");
        std::fs::create_dir_all(&b).unwrap();
        // a file where our directory belongs: it cannot be used
        std::fs::write(b.join("heartbeat-rs"), "").unwrap();
        let rsc = b.to_str().unwrap();
        let env = [("HA_RSCTMP", rsc)];
        assert!(lock_instance(&ctx(Action::Stop, &env), "r")
            .unwrap()
            .is_none());
        assert!(lock_instance(&ctx(Action::Monitor, &env), "r")
            .unwrap()
            .is_none());
        let recurring = [
            ("HA_RSCTMP", rsc),
            ("OCF_RESKEY_CRM_meta_interval", "10000"),
        ];
        assert!(lock_instance(&ctx(Action::Monitor, &recurring), "r").is_err());
        assert!(lock_instance(&ctx(Action::Start, &env), "r").is_err());
        assert!(lock_instance(&ctx(Action::Status, &env), "r").is_err());
        std::fs::remove_dir_all(b).unwrap();
    }

    #[test]
    fn a_state_dir_that_is_not_utf8_is_used_as_given() {
        use std::os::unix::ffi::OsStrExt;
        let b = base("raw");
        let mut raw = b.as_os_str().as_bytes().to_vec();
        raw.extend_from_slice(b"-\xff");
        let raw = std::path::PathBuf::from(OsStr::from_bytes(&raw));
        let env = Env::from_pairs([("HA_RSCTMP", raw.as_os_str())]);
        let s = StateDir::open(&env).unwrap();
        assert_eq!(s.path(), raw.join("heartbeat-rs"));
        std::fs::remove_dir_all(&raw).unwrap();
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
    fn lock_files_go_with_their_lock_and_a_waiter_relocks_the_path() {
        let b = base("lockfiles");
        let s = StateDir::open_in(&b).unwrap();
        let locks = |s: &StateDir| {
            std::fs::read_dir(s.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".lock")
                })
                .count()
        };
        let held = s
            .lock(
                "Filesystem",
                "fs1",
                &Deadline::after(Duration::from_secs(10)),
            )
            .unwrap();
        assert_eq!(locks(&s), 1);
        let waiter = {
            let s = StateDir::open_in(&b).unwrap();
            std::thread::spawn(move || {
                let l = s
                    .lock(
                        "Filesystem",
                        "fs1",
                        &Deadline::after(Duration::from_secs(10)),
                    )
                    .unwrap();
                // the waiter holds a lock on the file now at the path
                assert_eq!(locks(&s), 1);
                let third = s.lock(
                    "Filesystem",
                    "fs1",
                    &Deadline::after(Duration::from_millis(100)),
                );
                assert!(third.is_err(), "two holders at once");
                drop(l);
            })
        };
        std::thread::sleep(Duration::from_millis(150));
        drop(held);
        waiter.join().unwrap();
        assert_eq!(locks(&s), 0, "a lock file was left behind");
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
