//! The kernel's mount table, read from `/proc/self/mountinfo`.
//!
//! Not `/etc/mtab`, not `/proc/mounts`, not `findmnt`: mountinfo has the
//! mount ID (which `/proc/PID/fdinfo` refers to), the device number of every
//! mount (so a bind mount is told from its source without a stat), and
//! escapes whitespace in paths (`\040`, `\011`, `\012`, `\134`), which we
//! undo. Paths are compared as whole components, so `/u` never matches `/usr`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub id: u64,
    pub parent: u64,
    /// Device number (major, minor) of the mounted filesystem.
    pub dev: (u32, u32),
    /// The directory mounted here.
    pub target: PathBuf,
    pub fstype: String,
    /// What was mounted: a device, an NFS spec, `tmpfs`...
    pub source: String,
    /// Per-mount options (`rw`, `ro`, `nosuid`, ...).
    pub options: String,
    /// Superblock options.
    pub super_options: String,
}

impl Mount {
    /// The same mount as `other`, not merely one with its ID: the kernel
    /// hands a freed mount ID to the next mount made anywhere on the
    /// machine, so "ID still listed" alone does not mean "still mounted".
    pub fn is_same(&self, other: &Mount) -> bool {
        self.id == other.id
            && self.parent == other.parent
            && self.dev == other.dev
            && self.target == other.target
    }

    pub fn read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

/// Undo the octal escapes the kernel uses in mountinfo fields.
pub fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if v <= 255 {
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn parse_line(line: &str) -> Option<Mount> {
    // id parent maj:min root target options [optional...] - fstype source super
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let id = l.next()?.parse().ok()?;
    let parent = l.next()?.parse().ok()?;
    let (maj, min) = l.next()?.split_once(':')?;
    let _root = l.next()?;
    let target = PathBuf::from(OsString::from_vec(unescape(l.next()?)));
    let options = l.next()?.to_string();
    let mut r = right.split(' ');
    let fstype = r.next()?.to_string();
    let source = String::from_utf8_lossy(&unescape(r.next()?)).into_owned();
    let super_options = r.next().unwrap_or("").to_string();
    Some(Mount {
        id,
        parent,
        dev: (maj.parse().ok()?, min.parse().ok()?),
        target,
        fstype,
        source,
        options,
        super_options,
    })
}

/// Parse a whole mountinfo text.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

/// The current mount table. Read twice until two reads agree (a mount
/// table changing under a reader gives torn reads; heartbeat PR #1337).
pub fn read() -> std::io::Result<Vec<Mount>> {
    let mut last = std::fs::read_to_string("/proc/self/mountinfo")?;
    for _ in 0..5 {
        let again = std::fs::read_to_string("/proc/self/mountinfo")?;
        if again == last {
            break;
        }
        last = again;
    }
    Ok(parse(&last))
}

/// `path` equals `dir` or lies below it, compared component-wise.
pub fn is_within(path: &Path, dir: &Path) -> bool {
    path.starts_with(dir)
}

/// The mounts at `dir`: the topmost one is last (mounts stack).
pub fn at<'a>(mounts: &'a [Mount], dir: &Path) -> Vec<&'a Mount> {
    mounts.iter().filter(|m| m.target == dir).collect()
}

/// Mounts strictly below `dir`, deepest first.
pub fn below<'a>(mounts: &'a [Mount], dir: &Path) -> Vec<&'a Mount> {
    let mut v: Vec<&Mount> = mounts
        .iter()
        .filter(|m| m.target != dir && is_within(&m.target, dir))
        .collect();
    v.sort_by_key(|m| std::cmp::Reverse(m.target.components().count()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
100 27 7:0 / /srv/my\\040data rw,relatime shared:1 - ext4 /dev/loop0 rw
101 100 7:1 / /srv/my\\040data/sub rw - xfs /dev/loop1 rw,attr2
102 27 7:0 /dir /mnt/tab\\011here ro,relatime - ext4 /dev/loop0 rw
103 27 0:40 / /u rw - tmpfs tmpfs rw
104 27 0:41 / /usr/local rw - nfs srv:/export\\134x rw,vers=4.2
";

    #[test]
    fn parses_ids_devices_and_escaped_paths() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 7);
        assert_eq!(m[2].target, PathBuf::from("/srv/my data"));
        assert_eq!(m[2].dev, (7, 0));
        assert_eq!(m[2].id, 100);
        assert_eq!(m[2].fstype, "ext4");
        assert_eq!(m[2].source, "/dev/loop0");
        assert_eq!(m[4].target, PathBuf::from("/mnt/tab\there"));
        assert!(m[4].read_only());
        assert!(!m[2].read_only());
        assert_eq!(m[6].source, "srv:/export\\x");
        assert_eq!(m[3].super_options, "rw,attr2");
    }

    #[test]
    fn a_reused_mount_id_is_not_the_same_mount() {
        let m = parse(SAMPLE);
        assert!(m[2].is_same(&m[2].clone()));
        // our mount went; another test's mount got its ID
        let reused = parse("100 27 7:3 / /var/tmp/other rw - ext4 /dev/loop3 rw\n");
        assert!(!m[2].is_same(&reused[0]));
    }

    #[test]
    fn prefixes_are_whole_components() {
        let m = parse(SAMPLE);
        assert_eq!(at(&m, Path::new("/u")).len(), 1);
        assert!(below(&m, Path::new("/u")).is_empty());
        assert!(!is_within(Path::new("/usr/local"), Path::new("/u")));
        let sub = below(&m, Path::new("/srv/my data"));
        assert_eq!(sub.len(), 1);
        assert_eq!(sub[0].target, PathBuf::from("/srv/my data/sub"));
    }

    #[test]
    fn deepest_submount_first() {
        let text = "\
1 0 0:1 / / rw - ext4 r rw
2 1 0:2 / /m rw - ext4 a rw
3 2 0:3 / /m/a rw - ext4 b rw
4 3 0:4 / /m/a/b rw - ext4 c rw
5 2 0:5 / /m/z rw - ext4 d rw
";
        let m = parse(text);
        let order: Vec<_> = below(&m, Path::new("/m"))
            .iter()
            .map(|m| m.target.clone())
            .collect();
        assert_eq!(order[0], PathBuf::from("/m/a/b"));
        assert_eq!(order.len(), 3);
    }

    #[test]
    fn unescape_leaves_other_backslashes() {
        assert_eq!(unescape("a\\040b"), b"a b");
        assert_eq!(unescape("a\\b"), b"a\\b");
        assert_eq!(unescape("end\\04"), b"end\\04");
    }

    #[test]
    fn reads_the_real_table() {
        let m = read().unwrap();
        assert!(m.iter().any(|m| m.target == Path::new("/proc")));
    }
}
