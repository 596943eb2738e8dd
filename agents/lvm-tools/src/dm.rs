//! Device-mapper state read from sysfs, without running any LVM command.
//!
//! Every active LV is a dm device `/sys/block/dm-N` whose `dm/uuid` starts
//! with `LVM-` and whose `dm/name` is `VG-LV[-layer]`, with every `-` inside
//! a VG or LV name doubled (`my-vg/lv-1` is `my--vg-lv--1`). Reading these
//! files is what monitor depth 0 does: no fork, no disk scan, no LVM lock.

use std::path::{Path, PathBuf};

/// The sysfs directory holding the block devices.
pub const SYS_BLOCK: &str = "/sys/block";

/// One active LVM device-mapper device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmLv {
    /// Kernel name, `dm-3`; the device node is `/dev/dm-3`.
    pub kname: String,
    pub vg: String,
    pub lv: String,
    /// `real`, `cow`, `tpool`, ... for internal layers; `None` for the LV
    /// itself.
    pub layer: Option<String>,
}

impl DmLv {
    pub fn dev_node(&self) -> PathBuf {
        Path::new("/dev").join(&self.kname)
    }
}

/// Split a dm name made by LVM into VG, LV and layer, undoing the `--`
/// escaping. `None` when the name has no single `-` separator.
pub fn split_name(name: &str) -> Option<(String, String, Option<String>)> {
    let mut parts: Vec<String> = vec![String::new()];
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '-' {
            if chars.peek() == Some(&'-') {
                chars.next();
                parts.last_mut().unwrap().push('-');
            } else {
                parts.push(String::new());
            }
        } else {
            parts.last_mut().unwrap().push(c);
        }
    }
    match parts.len() {
        2 => {
            let lv = parts.pop()?;
            let vg = parts.pop()?;
            (!vg.is_empty() && !lv.is_empty()).then_some((vg, lv, None))
        }
        3 => {
            let layer = parts.pop()?;
            let lv = parts.pop()?;
            let vg = parts.pop()?;
            (!vg.is_empty() && !lv.is_empty()).then_some((vg, lv, Some(layer)))
        }
        _ => None,
    }
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim_end_matches('\n').to_string())
}

/// Every active LVM dm device under `sys_block`.
pub fn lvm_devices_in(sys_block: &Path) -> Vec<DmLv> {
    let Ok(dir) = std::fs::read_dir(sys_block) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let kname = entry.file_name().to_string_lossy().into_owned();
        if !kname.starts_with("dm-") {
            continue;
        }
        let dm = entry.path().join("dm");
        let Some(uuid) = read_trimmed(&dm.join("uuid")) else {
            continue;
        };
        if !uuid.starts_with("LVM-") {
            continue;
        }
        let Some(name) = read_trimmed(&dm.join("name")) else {
            continue;
        };
        if let Some((vg, lv, layer)) = split_name(&name) {
            out.push(DmLv {
                kname,
                vg,
                lv,
                layer,
            });
        }
    }
    out.sort_by(|a, b| (&a.vg, &a.lv, &a.layer).cmp(&(&b.vg, &b.lv, &b.layer)));
    out
}

/// Every active LVM dm device on this node.
pub fn lvm_devices() -> Vec<DmLv> {
    lvm_devices_in(Path::new(SYS_BLOCK))
}

/// The active devices of `vg` (any LV, any layer).
pub fn vg_devices(vg: &str) -> Vec<DmLv> {
    lvm_devices().into_iter().filter(|d| d.vg == vg).collect()
}

/// The active top-level LVs of `vg`, or just `lv` when given.
pub fn active_lvs(vg: &str, lv: Option<&str>) -> Vec<DmLv> {
    vg_devices(vg)
        .into_iter()
        .filter(|d| d.layer.is_none() && lv.map_or(true, |l| d.lv == l))
        .collect()
}

/// Who holds the dm device `kname` open, as far as this node shows it:
/// the mount points it is mounted on (`/proc/self/mountinfo`), the devices
/// stacked on it (`/sys/block/KNAME/holders`) and the processes with it
/// open (`/proc/PID/fd`, "PID (comm)"). Empty when nothing shows (a kernel
/// user sysfs does not list, or the opener just left). Bounded by the
/// number of processes; never blocks on storage (only /proc and /sys).
pub fn users(kname: &str) -> Vec<String> {
    let mut out = Vec::new();
    let sys = Path::new(SYS_BLOCK).join(kname);
    let devno = std::fs::read_to_string(sys.join("dev"))
        .map(|d| d.trim().to_string())
        .unwrap_or_default();
    if !devno.is_empty() {
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            for l in info.lines() {
                let f: Vec<&str> = l.split(' ').collect();
                if f.len() > 4 && f[2] == devno {
                    out.push(format!("mounted on {}", f[4]));
                }
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(sys.join("holders")) {
        for e in rd.flatten() {
            out.push(format!("held by {}", e.file_name().to_string_lossy()));
        }
    }
    let node = Path::new("/dev").join(kname);
    let mapper = std::fs::read_to_string(sys.join("dm/name"))
        .map(|n| Path::new("/dev/mapper").join(n.trim()))
        .ok();
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let name = p.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
                continue;
            };
            let open = fds.flatten().any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|t| t == node || mapper.as_deref() == Some(t.as_path()))
            });
            if open {
                let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
                out.push(format!("by PID {pid} {}", comm.trim()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashes_are_unescaped() {
        assert_eq!(
            split_name("my--vg-lv--1"),
            Some(("my-vg".into(), "lv-1".into(), None))
        );
        assert_eq!(split_name("vg-lv"), Some(("vg".into(), "lv".into(), None)));
        assert_eq!(
            split_name("a--b--c-d-real"),
            Some(("a-b-c".into(), "d".into(), Some("real".into())))
        );
        assert_eq!(
            split_name("vg-pool_tdata"),
            Some(("vg".into(), "pool_tdata".into(), None))
        );
        assert_eq!(split_name("novg"), None);
        assert_eq!(split_name("a-b-c-d"), None);
        assert_eq!(split_name("-lv"), None);
    }

    #[test]
    fn sysfs_is_read_and_non_lvm_devices_skipped() {
        let d = std::env::temp_dir().join(format!("ra-dm-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let mk = |k: &str, name: &str, uuid: &str| {
            let p = d.join(k).join("dm");
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("name"), format!("{name}\n")).unwrap();
            std::fs::write(p.join("uuid"), format!("{uuid}\n")).unwrap();
        };
        mk("dm-0", "my--vg-lv--1", "LVM-aaaabbbb");
        mk("dm-1", "my--vg-lv--1-real", "LVM-aaaabbbb-real");
        mk("dm-2", "crypt-thing", "CRYPT-LUKS2-xyz");
        mk("dm-3", "other-lv", "LVM-cccc");
        std::fs::create_dir_all(d.join("loop0")).unwrap();
        let all = lvm_devices_in(&d);
        assert_eq!(all.len(), 3, "{all:?}");
        let mine: Vec<_> = all.iter().filter(|x| x.vg == "my-vg").collect();
        assert_eq!(mine.len(), 2);
        assert_eq!(mine[0].lv, "lv-1");
        assert_eq!(mine[0].layer, None);
        assert_eq!(mine[1].layer.as_deref(), Some("real"));
        assert_eq!(mine[0].dev_node(), PathBuf::from("/dev/dm-0"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
