//! What the `device` parameter names, and how to find it on this node.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Filesystems that never live on a local block device.
const NOT_BLOCK: &[&str] = &[
    "nfs4",
    "nfs",
    "aznfs",
    "efs",
    "smbfs",
    "cifs",
    "none",
    "glusterfs",
    "ceph",
    "tmpfs",
    "overlay",
    "overlayfs",
    "rozofs",
    "zfs",
    "cvfs",
    "lustre",
];

/// The device parameter, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    /// A path to a block device (or anything else mount takes as a path).
    Path(PathBuf),
    /// `-U x`, `--uuid=x`, `UUID=x`.
    Uuid(String),
    /// `-L x`, `--label=x`, `LABEL=x`.
    Label(String),
    /// Not a local device: `server:/export`, `//server/share`, `tmpfs`, a
    /// bind-mount source directory...
    Other(String),
}

impl Device {
    pub fn parse(spec: &str) -> Device {
        let s = spec.trim();
        let value = |rest: &str| rest.trim_start_matches(['=', ' ', '\t']).trim().to_string();
        if let Some(r) = s.strip_prefix("--uuid") {
            return Device::Uuid(value(r));
        }
        if let Some(r) = s.strip_prefix("--label") {
            return Device::Label(value(r));
        }
        if let Some(r) = s.strip_prefix("-U") {
            return Device::Uuid(value(r));
        }
        if let Some(r) = s.strip_prefix("-L") {
            return Device::Label(value(r));
        }
        if let Some(r) = s.strip_prefix("UUID=") {
            return Device::Uuid(r.trim_matches('"').to_string());
        }
        if let Some(r) = s.strip_prefix("LABEL=") {
            return Device::Label(r.trim_matches('"').to_string());
        }
        if s.starts_with('/') && !s.starts_with("//") {
            Device::Path(PathBuf::from(spec))
        } else {
            Device::Other(spec.to_string())
        }
    }

    /// The arguments naming this device on mount's command line.
    pub fn mount_args(&self) -> Vec<String> {
        match self {
            Device::Path(p) => vec![p.to_string_lossy().into_owned()],
            Device::Uuid(u) => vec!["-U".into(), u.clone()],
            Device::Label(l) => vec!["-L".into(), l.clone()],
            Device::Other(o) => vec![o.clone()],
        }
    }

    /// The device node this spec names now, if it exists: a path as is, a
    /// UUID or label through udev's `/dev/disk/by-*` links.
    pub fn node(&self) -> Option<PathBuf> {
        let p = match self {
            Device::Path(p) => p.clone(),
            Device::Uuid(u) => Path::new("/dev/disk/by-uuid").join(u),
            Device::Label(l) => Path::new("/dev/disk/by-label").join(l.replace('/', "\\x2f")),
            Device::Other(_) => return None,
        };
        p.exists().then_some(p)
    }
}

/// Whether this resource lives on a local block device (as heartbeat's
/// `set_blockdevice_var` decides): not a network or virtual fstype, no
/// `loop` option, and the device is not a directory.
pub fn is_block_resource(dev: &Device, fstype: &str, options: &[String]) -> bool {
    if NOT_BLOCK.contains(&fstype) || options.iter().any(|o| o == "loop") {
        return false;
    }
    match dev {
        Device::Path(p) => !p.is_dir(),
        Device::Uuid(_) | Device::Label(_) => true,
        Device::Other(_) => false,
    }
}

/// (major, minor) of a block device node.
pub fn dev_number(node: &Path) -> Option<(u32, u32)> {
    let m = std::fs::metadata(node).ok()?;
    if !m.file_type().is_block_device() {
        return None;
    }
    let rdev = m.rdev();
    Some((
        nix::sys::stat::major(rdev) as u32,
        nix::sys::stat::minor(rdev) as u32,
    ))
}

/// The `/dev` node of a block device number, from sysfs (no udev needed).
pub fn node_of(dev: (u32, u32)) -> Option<PathBuf> {
    let uevent =
        std::fs::read_to_string(format!("/sys/dev/block/{}:{}/uevent", dev.0, dev.1)).ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    Some(Path::new("/dev").join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_uuid_and_label() {
        for s in [
            "-U abc-1",
            "-Uabc-1",
            "--uuid=abc-1",
            "--uuid abc-1",
            "UUID=abc-1",
            "UUID=\"abc-1\"",
        ] {
            assert_eq!(Device::parse(s), Device::Uuid("abc-1".into()), "{s}");
        }
        for s in ["-L data", "--label=data", "LABEL=data"] {
            assert_eq!(Device::parse(s), Device::Label("data".into()), "{s}");
        }
        assert_eq!(Device::parse("-U x").mount_args(), vec!["-U", "x"]);
    }

    #[test]
    fn paths_and_network_specs() {
        assert_eq!(Device::parse("/dev/sdb1"), Device::Path("/dev/sdb1".into()));
        assert_eq!(
            Device::parse("srv:/export"),
            Device::Other("srv:/export".into())
        );
        assert_eq!(
            Device::parse("//srv/share"),
            Device::Other("//srv/share".into())
        );
        assert_eq!(Device::parse("tmpfs"), Device::Other("tmpfs".into()));
    }

    #[test]
    fn block_resources_as_heartbeat_decides() {
        let none: Vec<String> = vec![];
        assert!(is_block_resource(
            &Device::parse("/dev/sdb1"),
            "ext4",
            &none
        ));
        assert!(is_block_resource(&Device::parse("-U x"), "xfs", &none));
        assert!(!is_block_resource(&Device::parse("srv:/e"), "nfs", &none));
        assert!(!is_block_resource(
            &Device::parse("/srv/data"),
            "none",
            &none
        ));
        assert!(!is_block_resource(&Device::parse("/"), "ext4", &none)); // a directory
        assert!(!is_block_resource(
            &Device::parse("/img"),
            "ext4",
            &["loop".to_string()]
        ));
    }

    #[test]
    fn dev_numbers_only_for_block_devices() {
        assert_eq!(dev_number(Path::new("/dev/null")), None);
        assert_eq!(dev_number(Path::new("/no/such")), None);
    }
}
