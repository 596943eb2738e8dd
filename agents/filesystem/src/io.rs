//! The I/O behind monitor depths 10 and 20, bounded by the deadline.
//!
//! Reads and writes bypass the page cache (`O_DIRECT`, with `O_SYNC` for
//! writes) so they test the storage, not memory. They run on a helper thread:
//! I/O to dead storage can block in the kernel for minutes, and the monitor
//! must still answer before its deadline.
//!
//! The depth-20 status file lives on the managed filesystem, which may be
//! writable by anyone (a shared `1777` scratch volume): any user can create
//! `.Filesystem_status` or the file itself before root does. Root must not
//! then write, truncate or delete through what was planted, so the file is
//! reached by a walk of directory handles from the mount point:
//! - every component is opened with `openat(.., O_NOFOLLOW)` from the
//!   handle of the one before, so no symlink is followed and a rename
//!   behind our back changes nothing we hold;
//! - a directory must be a directory owned by us (root), a file a regular
//!   file owned by us with one link (a hard link to a root file elsewhere on
//!   the filesystem has two); decisions are made on `fstat` of the open
//!   handle, never on the name;
//! - the directory is created `0700`, the file `0600` with `O_EXCL`;
//! - the file is opened `O_NONBLOCK`, so a FIFO never blocks the open;
//! - removal is `unlinkat` on the directory handle, which never follows the
//!   last component either.
//!
//! Anything else found on the way is reported in one line and cleaned up
//! where that is safe: a non-directory entry is unlinked (that removes the
//! name, never what a symlink points at), a foreign directory is removed
//! when it is empty or holds nothing but a non-directory at our name.
//! What cannot be cleaned is an error, not a write.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use ocf::{warn, Deadline};

const BLOCK: usize = 4096;

/// One zeroed block, aligned as `O_DIRECT` requires.
#[repr(C, align(4096))]
struct Block([u8; BLOCK]);

impl Block {
    fn zeroed() -> Box<Block> {
        Box::new(Block([0; BLOCK]))
    }
}

/// Run `f` on a helper thread; give up when the deadline passes (a read
/// of dead storage can block in the kernel for much longer).
fn bounded<F>(deadline: &Deadline, what: String, f: F) -> Result<(), String>
where
    F: FnOnce() -> Result<(), String> + Send + 'static,
{
    deadline
        .on_thread(std::time::Duration::ZERO, f)
        .unwrap_or_else(|| {
            Err(format!(
                "{what} did not complete before the operation deadline"
            ))
        })
}

/// Depth 10: read the first block of the device, uncached.
pub fn read_device(node: &Path, deadline: &Deadline) -> Result<(), String> {
    let node = node.to_path_buf();
    let what = format!("reading {}", node.display());
    bounded(deadline, what, move || {
        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&node)
            .map_err(|e| format!("cannot open {}: {e}", node.display()))?;
        let mut buf = Block::zeroed();
        f.read(&mut buf.0)
            .map_err(|e| format!("cannot read {}: {e}", node.display()))?;
        Ok(())
    })
}

/// Where a relative status file path leads: its directories and its name.
/// Absolute paths and `..` are refused: the file stays inside the mount.
pub fn split_relative(rel: &Path) -> Result<(Vec<OsString>, OsString), String> {
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_os_string()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "{} is not relative to the mount point",
                    rel.display()
                ))
            }
            Component::ParentDir => {
                return Err(format!(
                    "{} climbs out of the mount point (..)",
                    rel.display()
                ))
            }
        }
    }
    let name = parts
        .pop()
        .ok_or_else(|| format!("'{}' names no file", rel.display()))?;
    Ok((parts, name))
}

/// What a stat says a file is, for the log.
fn kind(st: &FileStat) -> &'static str {
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFLNK => "a symlink",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFREG => "a regular file",
        _ => "an unknown file type",
    }
}

fn is(st: &FileStat, t: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == t
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

fn lstat_at(dir: &OwnedFd, name: &OsStr) -> nix::Result<FileStat> {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// Unlink the planted non-directory `name` (never what it points at).
fn remove_planted(dir: &OwnedFd, name: &OsStr, shown: &Path) -> Result<(), String> {
    unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
        .or_else(|e| if e == Errno::ENOENT { Ok(()) } else { Err(e) })
        .map_err(|e| format!("cannot remove {}: {e}", shown.display()))
}

/// A directory someone else made at one of our names: remove it if that
/// is safe (empty, or nothing in it but a non-directory at `inner`).
fn remove_foreign_dir(
    parent: &OwnedFd,
    name: &OsStr,
    fd: &OwnedFd,
    inner: &OsStr,
    shown: &Path,
) -> Result<(), String> {
    if let Ok(st) = lstat_at(fd, inner) {
        if !is(&st, SFlag::S_IFDIR) {
            remove_planted(fd, inner, &shown.join(inner))?;
        }
    }
    unlinkat(parent, name, UnlinkatFlags::RemoveDir).map_err(|e| {
        format!(
            "{} is not ours and cannot be removed ({e}); remove it to use monitor depth 20",
            shown.display()
        )
    })
}

/// Open (creating it 0700 if missing) the directory `name` in `parent`,
/// requiring a directory of ours; `inner` is the name we use inside it.
fn own_dir(parent: &OwnedFd, name: &OsStr, inner: &OsStr, shown: &Path) -> Result<OwnedFd, String> {
    for _ in 0..3 {
        match lstat_at(parent, name) {
            Err(Errno::ENOENT) => match mkdirat(parent, name, Mode::S_IRWXU) {
                Ok(()) | Err(Errno::EEXIST) => continue,
                Err(e) => return Err(format!("cannot create {}: {e}", shown.display())),
            },
            Err(e) => return Err(format!("cannot stat {}: {e}", shown.display())),
            Ok(st) if !is(&st, SFlag::S_IFDIR) => {
                warn!(
                    "{} is {}, not a directory (planted?): removing it",
                    shown.display(),
                    kind(&st)
                );
                remove_planted(parent, name, shown)?;
            }
            Ok(_) => {
                let fd = match nix::fcntl::openat(parent, name, dir_flags(), Mode::empty()) {
                    Ok(fd) => fd,
                    // swapped for something else since the stat: look again
                    Err(Errno::ELOOP | Errno::ENOTDIR | Errno::ENOENT) => continue,
                    Err(e) => return Err(format!("cannot open {}: {e}", shown.display())),
                };
                let st = fstat(&fd).map_err(|e| format!("cannot stat {}: {e}", shown.display()))?;
                if st.st_uid == euid() {
                    return Ok(fd);
                }
                warn!(
                    "{} is a directory of uid {}, not root's (planted?): removing it",
                    shown.display(),
                    st.st_uid
                );
                remove_foreign_dir(parent, name, &fd, inner, shown)?;
            }
        }
    }
    Err(format!(
        "{} keeps changing under us; refusing to use it",
        shown.display()
    ))
}

/// Open the status file `name` in `dir` for reading and writing, creating
/// it 0600 if missing; only a regular file of ours with one link will do.
fn own_file(dir: &OwnedFd, name: &OsStr, direct: bool, shown: &Path) -> Result<File, String> {
    let mut flags = OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    flags |= OFlag::O_SYNC;
    if direct {
        flags |= OFlag::O_DIRECT;
    }
    let cannot = |e: Errno| format!("cannot write status file {}: {e}", shown.display());
    for _ in 0..3 {
        let st = match lstat_at(dir, name) {
            Err(Errno::ENOENT) => {
                let mode = Mode::S_IRUSR | Mode::S_IWUSR;
                match nix::fcntl::openat(dir, name, flags | OFlag::O_CREAT | OFlag::O_EXCL, mode) {
                    Ok(fd) => return Ok(File::from(fd)),
                    Err(Errno::EEXIST) => continue,
                    Err(e) => return Err(cannot(e)),
                }
            }
            Err(e) => return Err(cannot(e)),
            Ok(st) => st,
        };
        if is(&st, SFlag::S_IFDIR) {
            return Err(format!(
                "status file {} is a directory; refusing to use it",
                shown.display()
            ));
        }
        if is(&st, SFlag::S_IFREG) {
            let fd = match nix::fcntl::openat(dir, name, flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ELOOP | Errno::ENOENT | Errno::ENXIO) => continue,
                Err(e) => return Err(cannot(e)),
            };
            let st = fstat(&fd).map_err(cannot)?;
            if is(&st, SFlag::S_IFREG) && st.st_uid == euid() && st.st_nlink == 1 {
                return Ok(File::from(fd));
            }
            warn!(
                "status file {} is {} of uid {} with {} link(s), not root's own (planted?): removing it",
                shown.display(),
                kind(&st),
                st.st_uid,
                st.st_nlink
            );
        } else {
            warn!(
                "status file {} is {} (planted?): removing it",
                shown.display(),
                kind(&st)
            );
        }
        remove_planted(dir, name, shown)?;
    }
    Err(format!(
        "status file {} keeps changing under us; refusing to use it",
        shown.display()
    ))
}

/// The mount point, as a handle the walk starts from.
fn open_mount(mount: &Path) -> Result<OwnedFd, String> {
    nix::fcntl::open(mount, dir_flags(), Mode::empty())
        .map_err(|e| format!("cannot open mount point {}: {e}", mount.display()))
}

/// Depth 20: write `content` to the status file `rel` (relative to the
/// mount point `mount`) synchronously, uncached on block devices, then read
/// it back and compare. See the module documentation for what is refused.
pub fn write_status_file(
    mount: &Path,
    rel: &Path,
    content: &str,
    direct: bool,
    deadline: &Deadline,
) -> Result<(), String> {
    let (dirs, name) = split_relative(rel)?;
    let mount = mount.to_path_buf();
    let shown: PathBuf = mount.join(rel);
    let content = content.to_string();
    let what = format!("writing status file {}", shown.display());
    bounded(deadline, what, move || {
        let mut dir = open_mount(&mount)?;
        let mut at = mount.clone();
        for (i, d) in dirs.iter().enumerate() {
            at.push(d);
            let inner = dirs.get(i + 1).unwrap_or(&name);
            dir = own_dir(&dir, d, inner, &at)?;
        }
        let f = own_file(&dir, &name, direct, &shown)?;
        let io = |e: std::io::Error| format!("cannot write status file {}: {e}", shown.display());
        let mut buf = Block::zeroed();
        let data = content.as_bytes();
        let n = data.len().min(BLOCK);
        buf.0[..n].copy_from_slice(&data[..n]);
        if f.metadata().map_err(io)?.len() != BLOCK as u64 {
            f.set_len(BLOCK as u64).map_err(io)?;
        }
        f.write_all_at(&buf.0, 0).map_err(io)?;
        f.sync_all().map_err(io)?;
        let mut back = Block::zeroed();
        let got = f
            .read_at(&mut back.0, 0)
            .map_err(|e| format!("cannot read status file {}: {e}", shown.display()))?;
        if got < n || back.0[..n] != data[..n] {
            return Err(format!(
                "status file {} reads back different data",
                shown.display()
            ));
        }
        Ok(())
    })
}

/// Remove the status file `rel` of the mount point `mount`, bounded like
/// the rest. Walks like [`write_status_file`] without creating anything;
/// what is not a directory on the way ends the walk with a warning.
pub fn remove_status_file(mount: &Path, rel: &Path, deadline: &Deadline) {
    let mount = mount.to_path_buf();
    let rel = rel.to_path_buf();
    let r = bounded(deadline, "removing status file".into(), move || {
        let (dirs, name) = split_relative(&rel)?;
        let mut dir = open_mount(&mount)?;
        let mut at = mount.clone();
        for d in &dirs {
            at.push(d);
            dir = match nix::fcntl::openat(&dir, d.as_os_str(), dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => return Ok(()),
                Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                    return Err(format!(
                        "{} is not a directory ({e}; planted?): status file not removed",
                        at.display()
                    ))
                }
                Err(e) => return Err(format!("cannot open {}: {e}", at.display())),
            };
        }
        match unlinkat(&dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(format!(
                "cannot remove status file {}: {e}",
                mount.join(&rel).display()
            )),
        }
    });
    if let Err(e) = r {
        warn!("{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fs-io-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn status_file_round_trip_without_direct_io() {
        let dir = scratch("trip");
        let rel = Path::new(".Filesystem_status/fs1_node");
        let file = dir.join(rel);
        let d = Deadline::after(Duration::from_secs(10));
        write_status_file(&dir, rel, "fs1\n", false, &d).unwrap();
        let text = std::fs::read(&file).unwrap();
        assert_eq!(text.len(), BLOCK);
        assert!(text.starts_with(b"fs1\n"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(".Filesystem_status"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        write_status_file(&dir, rel, "fs1\n", false, &d).unwrap();
        remove_status_file(&dir, rel, &d);
        assert!(!file.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_paths_inside_the_mount() {
        assert!(split_relative(Path::new("/etc/x")).is_err());
        assert!(split_relative(Path::new("a/../../x")).is_err());
        assert!(split_relative(Path::new("")).is_err());
        let (d, n) = split_relative(Path::new("./a//b/c")).unwrap();
        assert_eq!(d, vec![OsString::from("a"), OsString::from("b")]);
        assert_eq!(n, OsString::from("c"));
    }

    #[test]
    fn planted_symlinks_are_removed_not_followed() {
        let dir = scratch("plant");
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let mnt = dir.join("mnt");
        std::fs::create_dir_all(mnt.join("st")).unwrap();
        std::os::unix::fs::symlink(&victim, mnt.join("st/f")).unwrap();
        let d = Deadline::after(Duration::from_secs(10));
        write_status_file(&mnt, Path::new("st/f"), "x\n", false, &d).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!mnt.join("st/f").is_symlink());
        // a symlinked directory: the write goes to a fresh directory, and
        // removal never reaches through a symlink
        std::fs::create_dir(dir.join("elsewhere")).unwrap();
        std::fs::write(dir.join("elsewhere/f"), "precious").unwrap();
        std::fs::remove_dir_all(mnt.join("st")).unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), mnt.join("st")).unwrap();
        remove_status_file(&mnt, Path::new("st/f"), &d);
        assert!(dir.join("elsewhere/f").exists());
        write_status_file(&mnt, Path::new("st/f"), "x\n", false, &d).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("elsewhere/f")).unwrap(),
            "precious"
        );
        assert!(mnt.join("st").is_dir() && !mnt.join("st").is_symlink());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fifo_is_removed_without_blocking() {
        let dir = scratch("fifo");
        std::fs::create_dir(dir.join("st")).unwrap();
        nix::unistd::mkfifo(&dir.join("st/f"), Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
        let d = Deadline::after(Duration::from_secs(10));
        write_status_file(&dir, Path::new("st/f"), "x\n", false, &d).unwrap();
        assert!(std::fs::symlink_metadata(dir.join("st/f"))
            .unwrap()
            .is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_hard_link_is_not_written_through() {
        let dir = scratch("hardlink");
        std::fs::create_dir(dir.join("st")).unwrap();
        std::fs::write(dir.join("victim"), "precious").unwrap();
        std::fs::hard_link(dir.join("victim"), dir.join("st/f")).unwrap();
        let d = Deadline::after(Duration::from_secs(10));
        write_status_file(&dir, Path::new("st/f"), "x\n", false, &d).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("victim")).unwrap(),
            "precious"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_device_is_an_error_not_a_hang() {
        let d = Deadline::after(Duration::from_secs(10));
        let e = read_device(Path::new("/dev/no-such-device"), &d).unwrap_err();
        assert!(e.contains("cannot open"));
    }

    #[test]
    fn io_that_overruns_the_deadline_is_abandoned() {
        let d = Deadline::after(Duration::from_millis(100));
        let e = bounded(&d, "sleeping".into(), || {
            std::thread::sleep(Duration::from_secs(5));
            Ok(())
        })
        .unwrap_err();
        assert!(e.contains("did not complete"));
    }
}
