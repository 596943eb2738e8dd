//! The I/O behind monitor depths 10 and 20, bounded by the deadline.
//!
//! Reads and writes bypass the page cache (`O_DIRECT`, with `O_SYNC` for
//! writes) so they test the storage, not memory. They run on a helper thread:
//! I/O to dead storage can block in the kernel for minutes, and the monitor
//! must still answer before its deadline.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ocf::Deadline;

const BLOCK: usize = 4096;

/// A zeroed, 4 KiB-aligned buffer, as O_DIRECT requires.
struct Aligned {
    ptr: *mut u8,
    layout: Layout,
}

impl Aligned {
    fn new() -> Aligned {
        let layout = Layout::from_size_align(BLOCK, BLOCK).expect("valid layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory");
        Aligned { ptr, layout }
    }
    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: ptr is valid for `layout.size()` bytes and uniquely owned.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.layout.size()) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) }
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
        let mut buf = Aligned::new();
        f.read(buf.bytes())
            .map_err(|e| format!("cannot read {}: {e}", node.display()))?;
        Ok(())
    })
}

/// Depth 20: write `content` to the status file synchronously (and uncached
/// on block devices), then read it back and compare.
pub fn write_status_file(
    path: &Path,
    content: &str,
    direct: bool,
    deadline: &Deadline,
) -> Result<(), String> {
    let path: PathBuf = path.to_path_buf();
    let content = content.to_string();
    let what = format!("writing status file {}", path.display());
    bounded(deadline, what, move || {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let flags = libc::O_SYNC | if direct { libc::O_DIRECT } else { 0 };
        let mut buf = Aligned::new();
        let data = content.as_bytes();
        let n = data.len().min(BLOCK);
        buf.bytes()[..n].copy_from_slice(&data[..n]);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(flags)
            .open(&path)
            .map_err(|e| format!("cannot write status file {}: {e}", path.display()))?;
        f.write_all(buf.bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| format!("cannot write status file {}: {e}", path.display()))?;
        drop(f);
        let mut back = Aligned::new();
        let mut r = OpenOptions::new()
            .read(true)
            .custom_flags(if direct { libc::O_DIRECT } else { 0 })
            .open(&path)
            .map_err(|e| format!("cannot read status file {}: {e}", path.display()))?;
        let got = r
            .read(back.bytes())
            .map_err(|e| format!("cannot read status file {}: {e}", path.display()))?;
        if got < n || back.bytes()[..n] != data[..n] {
            return Err(format!(
                "status file {} reads back different data",
                path.display()
            ));
        }
        Ok(())
    })
}

/// Remove the status file, bounded like the rest.
pub fn remove_status_file(path: &Path, deadline: &Deadline) {
    let path = path.to_path_buf();
    let _ = bounded(deadline, "removing status file".into(), move || {
        let _ = std::fs::remove_file(&path);
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn status_file_round_trip_without_direct_io() {
        let dir = std::env::temp_dir().join(format!("fs-io-{}", std::process::id()));
        let file = dir.join(".Filesystem_status/fs1_node");
        let d = Deadline::after(Duration::from_secs(10));
        write_status_file(&file, "fs1\n", false, &d).unwrap();
        let text = std::fs::read(&file).unwrap();
        assert_eq!(text.len(), BLOCK);
        assert!(text.starts_with(b"fs1\n"));
        remove_status_file(&file, &d);
        assert!(!file.exists());
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
