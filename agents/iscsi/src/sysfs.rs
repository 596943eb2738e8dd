//! iSCSI sessions as the kernel reports them in sysfs: what the monitor
//! reads instead of forking `iscsiadm -m session` (which reads the same
//! files, and asks iscsid over IPC for the connection state).
//!
//! `/sys/class/iscsi_session/sessionN/{targetname,state}` is the session
//! (`LOGGED_IN`, `FAILED` while the initiator recovers, `FREE`);
//! `/sys/class/iscsi_connection/connectionN:C/{persistent_address,
//! persistent_port}` is the portal it logged in to (`address`/`port` may be
//! a redirected one); the session's disks are under
//! `sessionN/device/targetH:B:T/H:B:T:L/block/`. The session's `password`
//! attributes are never read.

use std::path::{Path, PathBuf};

/// The sysfs root the agent reads (tests point it elsewhere).
pub const SYS: &str = "/sys";

/// One iSCSI session of this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The number in `sessionN` (the `-r` of iscsiadm).
    pub sid: u32,
    pub target: String,
    /// `LOGGED_IN`, `FAILED`, `FREE`.
    pub state: String,
    /// The connection's state where the kernel reports it (`up`,
    /// `failed`, ...).
    pub conn_state: Option<String>,
    /// The portal it logged in to.
    pub address: String,
    pub port: u16,
}

impl Session {
    pub fn logged_in(&self) -> bool {
        self.state == "LOGGED_IN"
    }

    /// For messages: `session 3 (FAILED, connection failed)`.
    pub fn describe(&self) -> String {
        match &self.conn_state {
            Some(c) => format!("session {} ({}, connection {c})", self.sid, self.state),
            None => format!("session {} ({})", self.sid, self.state),
        }
    }
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim_end_matches(['\n', '\0']).trim().to_string())
}

/// The sessions under `sys` whose target is `target` (all of them when
/// `None`), in session order. A session half torn down (files vanishing
/// while we read) is skipped.
pub fn sessions(sys: &Path, target: Option<&str>) -> Vec<Session> {
    let Ok(dir) = std::fs::read_dir(sys.join("class/iscsi_session")) else {
        return Vec::new();
    };
    let mut out: Vec<Session> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let sid: u32 = name.strip_prefix("session")?.parse().ok()?;
            let path = e.path();
            let tname = read(&path.join("targetname"))?;
            if target.is_some_and(|t| t != tname) {
                return None;
            }
            let state = read(&path.join("state"))?;
            let (address, port, conn_state) = connection(sys, sid)?;
            Some(Session {
                sid,
                target: tname,
                state,
                conn_state,
                address,
                port,
            })
        })
        .collect();
    out.sort_by_key(|s| s.sid);
    out
}

/// The persistent address, port and state of session `sid`'s (lowest
/// numbered) connection.
fn connection(sys: &Path, sid: u32) -> Option<(String, u16, Option<String>)> {
    let prefix = format!("connection{sid}:");
    let mut conns: Vec<PathBuf> = std::fs::read_dir(sys.join("class/iscsi_connection"))
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    conns.sort();
    let c = conns.first()?;
    let address = read(&c.join("persistent_address"))
        .filter(|a| !a.is_empty())
        .or_else(|| read(&c.join("address")))?;
    let port = read(&c.join("persistent_port"))
        .and_then(|p| p.parse().ok())
        .or_else(|| read(&c.join("port")).and_then(|p| p.parse().ok()))?;
    Some((address, port, read(&c.join("state"))))
}

/// The block devices (`sdb`, ...) of session `sid`.
pub fn disks(sys: &Path, sid: u32) -> Vec<String> {
    let dev = sys.join(format!("class/iscsi_session/session{sid}/device"));
    let mut out = Vec::new();
    let Ok(targets) = std::fs::read_dir(&dev) else {
        return out;
    };
    for t in targets.flatten() {
        if !t.file_name().to_string_lossy().starts_with("target") {
            continue;
        }
        let Ok(luns) = std::fs::read_dir(t.path()) else {
            continue;
        };
        for lun in luns.flatten() {
            if let Ok(blocks) = std::fs::read_dir(lun.path().join("block")) {
                out.extend(
                    blocks
                        .flatten()
                        .map(|b| b.file_name().to_string_lossy().into_owned()),
                );
            }
        }
    }
    out.sort();
    out
}

/// The `/dev/disk/by-path` links (under `by_path`) udev made for any of
/// `disks`.
pub fn by_path_links(by_path: &Path, disks: &[String]) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(by_path) else {
        return Vec::new();
    };
    let mut out: Vec<String> = dir
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| {
                t.file_name()
                    .is_some_and(|n| disks.iter().any(|d| n.to_string_lossy() == *d))
            })
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
pub mod fake {
    //! A sysfs tree with iSCSI sessions, for unit tests.
    use std::path::{Path, PathBuf};

    pub struct FakeSys {
        pub root: PathBuf,
    }

    impl FakeSys {
        pub fn new(name: &str) -> FakeSys {
            let root =
                std::env::temp_dir().join(format!("ra-iscsi-sys-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(root.join("class/iscsi_session")).unwrap();
            std::fs::create_dir_all(root.join("class/iscsi_connection")).unwrap();
            FakeSys { root }
        }

        fn write(p: &Path, v: &str) {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, format!("{v}\n")).unwrap();
        }

        /// Session `sid` to `target` at `addr:port` in `state`, with `disk`.
        pub fn session(
            &self,
            sid: u32,
            target: &str,
            addr: &str,
            port: u16,
            state: &str,
            disk: Option<&str>,
        ) {
            let s = self.root.join(format!("class/iscsi_session/session{sid}"));
            Self::write(&s.join("targetname"), target);
            Self::write(&s.join("state"), state);
            Self::write(&s.join("password"), "must-never-be-read");
            let c = self
                .root
                .join(format!("class/iscsi_connection/connection{sid}:0"));
            Self::write(&c.join("persistent_address"), addr);
            Self::write(&c.join("persistent_port"), &port.to_string());
            Self::write(&c.join("address"), "198.51.100.99");
            Self::write(&c.join("port"), "9999");
            Self::write(
                &c.join("state"),
                if state == "LOGGED_IN" { "up" } else { "failed" },
            );
            if let Some(d) = disk {
                let b = s.join(format!("device/target2:0:0/2:0:0:0/block/{d}"));
                std::fs::create_dir_all(b).unwrap();
            }
        }

        pub fn set_state(&self, sid: u32, state: &str) {
            let s = self.root.join(format!("class/iscsi_session/session{sid}"));
            Self::write(&s.join("state"), state);
        }
    }

    impl Drop for FakeSys {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeSys;
    use super::*;

    #[test]
    fn sessions_are_read_with_their_persistent_portal() {
        let f = FakeSys::new("read");
        f.session(3, "iqn.t:a", "127.0.0.1", 3261, "LOGGED_IN", Some("sdc"));
        f.session(1, "iqn.t:a", "127.0.0.1", 3260, "FAILED", None);
        f.session(2, "iqn.t:b", "127.0.0.1", 3260, "LOGGED_IN", None);
        let all = sessions(&f.root, None);
        assert_eq!(all.iter().map(|s| s.sid).collect::<Vec<_>>(), vec![1, 2, 3]);
        let a = sessions(&f.root, Some("iqn.t:a"));
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].port, 3260);
        assert!(!a[0].logged_in());
        assert_eq!(a[0].describe(), "session 1 (FAILED, connection failed)");
        assert_eq!(a[1].address, "127.0.0.1");
        assert!(a[1].logged_in());
        assert!(sessions(&f.root, Some("iqn.t:c")).is_empty());
        assert_eq!(disks(&f.root, 3), vec!["sdc"]);
        assert!(disks(&f.root, 1).is_empty());
    }

    #[test]
    fn no_iscsi_in_the_kernel_is_no_session() {
        let root = std::env::temp_dir().join(format!("ra-iscsi-nosys-{}", std::process::id()));
        assert!(sessions(&root, None).is_empty());
    }

    #[test]
    fn by_path_links_point_at_our_disks_only() {
        let f = FakeSys::new("bypath");
        let d = f.root.join("by-path");
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::symlink("../../sdb", d.join("ip-127.0.0.1:3260-iscsi-iqn.t:a-lun-0"))
            .unwrap();
        std::os::unix::fs::symlink(
            "../../sdb1",
            d.join("ip-127.0.0.1:3260-iscsi-iqn.t:a-lun-0-part1"),
        )
        .unwrap();
        std::os::unix::fs::symlink("../../sdc", d.join("ip-127.0.0.1:3261-iscsi-iqn.t:a-lun-0"))
            .unwrap();
        assert_eq!(
            by_path_links(&d, &["sdb".into()]),
            vec!["ip-127.0.0.1:3260-iscsi-iqn.t:a-lun-0"]
        );
        assert!(by_path_links(&d, &["sdz".into()]).is_empty());
    }
}
