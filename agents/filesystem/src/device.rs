//! What the `device` parameter names, and how to find it on this node.
//!
//! The value reaches mount(8) (and blkid, fsck) on their command lines, so
//! [`Device::check`] accepts only what a device can be: a path, a UUID or a
//! label (given to `-U`/`-L` as their argument), `server:/export`,
//! `//server/share` or a source name such as `tmpfs` that does not start
//! with `-`. `-T/some/fstab`, `-o remount,ro` or `--bind` would otherwise
//! be read as options of mount; the callers also put `--` before operands.

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

    /// Whether this value can name a device (see the module documentation);
    /// `bind`: the source of a bind mount, which must be an absolute
    /// directory path. `Err` says what is wrong, in one line.
    pub fn check(&self, bind: bool) -> Result<(), String> {
        let control = |v: &str| v.chars().any(char::is_control);
        match self {
            Device::Path(p) if control(&p.to_string_lossy()) => {
                Err(format!("device {p:?} holds control characters"))
            }
            Device::Path(_) => Ok(()),
            _ if bind => Err(format!(
                "device '{}': the source of a bind mount must be an absolute directory",
                self.mount_args().join(" ")
            )),
            Device::Uuid(u) => {
                if !u.is_empty() && u.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    Ok(())
                } else {
                    Err(format!(
                        "device: UUID '{u}' is not a UUID (hexadecimal digits and dashes)"
                    ))
                }
            }
            Device::Label(l) => {
                if l.is_empty() || l == "." || l == ".." || control(l) {
                    Err(format!("device: '{l}' is not a filesystem label"))
                } else {
                    Ok(())
                }
            }
            Device::Other(o) => {
                let o = o.trim();
                if o.is_empty() || o.starts_with('-') || control(o) {
                    Err(format!(
                        "device '{o}' is not a device: a block device path, UUID=/LABEL=, server:/export, //server/share or the source directory of a bind mount"
                    ))
                } else {
                    Ok(())
                }
            }
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
    fn option_shaped_values_are_no_devices() {
        for bad in [
            "-T/some/fstab",
            "-o remount,ro",
            "--bind",
            "-",
            "--uuid=-T/x",
            "UUID=a b",
            "-L",
            "LABEL=..",
            "srv:/e\nx",
        ] {
            assert!(Device::parse(bad).check(false).is_err(), "{bad}");
        }
        for good in [
            "/dev/sdb1",
            "-U 0a1b-2c3d",
            "UUID=6f1c1b3a-8d5e-4f0e-9c2b-1a2b3c4d5e6f",
            "LABEL=-data",
            "-L my data",
            "srv:/export",
            "[fe80::1]:/export",
            "//srv/my share",
            "tmpfs",
            "pool/dataset",
        ] {
            assert!(Device::parse(good).check(false).is_ok(), "{good}");
        }
        assert!(Device::parse("/srv/data").check(true).is_ok());
        assert!(Device::parse("srv:/export").check(true).is_err());
        assert!(Device::parse("-U x").check(true).is_err());
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
