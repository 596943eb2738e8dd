//! Reading a configuration file a parameter names, bounded in kind, size
//! and time.
//!
//! Some agents read a file on every action, stop and monitor included: the
//! guest definition of VirtualDomain (`config`), the vm persona (`xmlfile`)
//! and Xen (`xmfile`). A plain `read_to_string` of what the parameter names
//! trusts that path too much: a FIFO blocks `open` until a writer comes
//! (forever, and the cluster manager kills the agent at its timeout), a
//! hung network filesystem blocks `stat`, `open` and `read` the same way,
//! and `/dev/zero` is read until memory runs out. So [`read_config`]:
//!
//! - reads regular files only: `stat` first, so a device or FIFO is never
//!   even opened (opening a tape rewinds it, a watchdog device starts
//!   counting), then `open` with `O_NONBLOCK | O_NOCTTY` and `fstat` again,
//!   so a file swapped between the two is caught too;
//! - reads at most [`MAX_CONFIG_SIZE`] bytes (1 MiB: a guest definition is a
//!   few KiB);
//! - runs on a helper thread that the caller waits for only until the
//!   deadline it passes ([`Deadline::on_thread`]), like every other wait:
//!   a read blocked on dead storage is left behind and dies with the
//!   process, and the agent answers with what it knows without the file.
//!
//! Each refusal is one line ([`ReadError`]'s `Display`) naming the path and
//! what is wrong with it; [`ReadKind`] tells the agent which OCF answer
//! fits (a file that is not there, one that is not a configuration file,
//! storage that did not answer).

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::deadline::Deadline;

/// The largest configuration file [`read_config`] reads.
pub const MAX_CONFIG_SIZE: u64 = 1 << 20;

/// The least time a read is given even when the deadline is (nearly)
/// spent: a local file answers in far less.
const MIN_WAIT: Duration = Duration::from_millis(100);

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadKind {
    /// Not there: `ENOENT`, `ENOTDIR`.
    NotFound(std::io::Error),
    /// There, but `stat`, `open` or `read` failed (`EACCES`, `EIO`, ...).
    Io(std::io::Error),
    /// Not a regular file; what it is instead ("a FIFO", ...).
    NotRegular(&'static str),
    /// Larger than the limit: at least `size` bytes.
    TooLarge { size: u64, limit: u64 },
    /// Not UTF-8 text ([`read_config`] only).
    NotText,
    /// The storage did not answer within the time given.
    TimedOut(Duration),
}

/// A file that could not be read, and why: one line for the admin.
#[derive(Debug)]
pub struct ReadError {
    pub path: PathBuf,
    pub kind: ReadKind,
}

impl ReadError {
    /// The file is not there (a configuration on shared storage that is
    /// not mounted here, a typo).
    pub fn not_found(&self) -> bool {
        matches!(self.kind, ReadKind::NotFound(_))
    }

    /// The path names something that is not a configuration file: not a
    /// regular file, too large, not text. Wrong on every node that sees it.
    pub fn not_a_config(&self) -> bool {
        matches!(
            self.kind,
            ReadKind::NotRegular(_) | ReadKind::TooLarge { .. } | ReadKind::NotText
        )
    }

    /// Its storage did not answer in time: the file may be fine.
    pub fn timed_out(&self) -> bool {
        matches!(self.kind, ReadKind::TimedOut(_))
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.path.display();
        match &self.kind {
            ReadKind::NotFound(e) => write!(f, "{p} does not exist ({e})"),
            ReadKind::Io(e) => write!(f, "{p} cannot be read: {e}"),
            ReadKind::NotRegular(what) => write!(f, "{p} is {what}, not a regular file"),
            ReadKind::TooLarge { size, limit } => write!(
                f,
                "{p} is larger than a configuration file may be ({size} bytes or more, at most {limit})"
            ),
            ReadKind::NotText => write!(f, "{p} is not text (UTF-8)"),
            ReadKind::TimedOut(d) => write!(
                f,
                "{p} could not be read within {:.1}s (its storage does not answer)",
                d.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// What a file that is not regular is, for the message.
fn what_it_is(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

fn io_kind(e: std::io::Error) -> ReadKind {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => ReadKind::NotFound(e),
        _ => ReadKind::Io(e),
    }
}

fn check(meta: &Metadata, limit: u64) -> Result<(), ReadKind> {
    if let Some(what) = what_it_is(meta) {
        return Err(ReadKind::NotRegular(what));
    }
    if meta.len() > limit {
        return Err(ReadKind::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    Ok(())
}

/// The read itself, blocking (run on the helper thread).
fn read_now(path: &Path, limit: u64) -> Result<Vec<u8>, ReadKind> {
    check(&std::fs::metadata(path).map_err(io_kind)?, limit)?;
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io_kind)?;
    check(&file.metadata().map_err(ReadKind::Io)?, limit)?;
    let mut buf = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(ReadKind::Io)?;
    // a file that grew since the stat
    if buf.len() as u64 > limit {
        return Err(ReadKind::TooLarge {
            size: buf.len() as u64,
            limit,
        });
    }
    Ok(buf)
}

/// The bytes of the regular file `path`, at most `limit` of them, read
/// before `dl` passes (see the module documentation).
pub fn read_bounded(path: &Path, limit: u64, dl: &Deadline) -> Result<Vec<u8>, ReadError> {
    let t = Instant::now();
    let p = path.to_path_buf();
    dl.on_thread(MIN_WAIT, move || read_now(&p, limit))
        .unwrap_or_else(|| Err(ReadKind::TimedOut(t.elapsed())))
        .map_err(|kind| ReadError {
            path: path.to_path_buf(),
            kind,
        })
}

/// The text of the configuration file `path`: a regular file of at most
/// [`MAX_CONFIG_SIZE`] bytes of UTF-8, read before `dl` passes.
pub fn read_config(path: &Path, dl: &Deadline) -> Result<String, ReadError> {
    let bytes = read_bounded(path, MAX_CONFIG_SIZE, dl)?;
    String::from_utf8(bytes).map_err(|_| ReadError {
        path: path.to_path_buf(),
        kind: ReadKind::NotText,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dl() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    #[test]
    fn a_regular_file_is_read() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("vm.xml");
        std::fs::write(&f, "<domain/>\n").unwrap();
        assert_eq!(read_config(&f, &dl()).unwrap(), "<domain/>\n");
        // through a symlink too: configs are often linked into place
        let l = d.path().join("link.xml");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        assert_eq!(read_config(&l, &dl()).unwrap(), "<domain/>\n");
    }

    #[test]
    fn a_fifo_is_refused_at_once_without_a_writer() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("fifo");
        nix::unistd::mkfifo(&f, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let t = Instant::now();
        let e = read_config(&f, &dl()).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert!(e.not_a_config(), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("{} is a FIFO, not a regular file", f.display())
        );
    }

    #[test]
    fn devices_directories_and_large_files_are_refused() {
        let e = read_config(Path::new("/dev/zero"), &dl()).unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let e = read_config(d.path(), &dl()).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        let big = d.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_CONFIG_SIZE as usize + 1]).unwrap();
        let e = read_config(&big, &dl()).unwrap_err();
        assert!(matches!(e.kind, ReadKind::TooLarge { .. }), "{e:?}");
        assert!(!e.to_string().contains('\n'));
        let just = d.path().join("just");
        std::fs::write(&just, vec![b'x'; MAX_CONFIG_SIZE as usize]).unwrap();
        assert_eq!(read_config(&just, &dl()).unwrap().len(), 1 << 20);
        let bin = d.path().join("bin");
        std::fs::write(&bin, [0xff, 0xfe, 0]).unwrap();
        assert!(read_config(&bin, &dl()).unwrap_err().not_a_config());
    }

    #[test]
    fn a_missing_file_is_not_found() {
        let e = read_config(Path::new("/nonexistent/vm.xml"), &dl()).unwrap_err();
        assert!(e.not_found(), "{e:?}");
        assert!(!e.not_a_config() && !e.timed_out());
        let e = read_config(Path::new("/etc/passwd/x"), &dl()).unwrap_err();
        assert!(e.not_found(), "ENOTDIR: {e:?}");
    }
}
