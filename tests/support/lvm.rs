//! One case of a guest-kernel LVM suite (tests/lvm.rs, tests/rgmanager_lvm.rs):
//! loop devices as PVs, VGs named after the case, the case's own lvm.conf
//! directory for the test's LVM commands (`LVM_SYSTEM_DIR`), and the clean-up
//! (the VGs' dm devices, then the loops, then the directory) in `Drop`, which
//! also runs when a case fails.
//!
//! The suites differ only in their lvm.conf files, so that is the fixture's
//! parameter ([`LvmSuite`]): the LVM-activate suite keeps the guest's own
//! lvm.conf closed (nothing activates behind the agents' backs) and gives
//! each case a configuration of its own to change; the rgmanager suite runs
//! its agent as rgmanager does, on the node's lvm.conf (HA LVM's
//! `volume_list`), and the test's commands get a permissive one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use super::guest::in_guest;
use super::LoopDevice;

/// Where the LVM suites differ.
pub struct LvmSuite {
    /// The host test that boots the guest, named when a case runs
    /// anywhere else.
    pub host_test: &'static str,
    /// The start of every case's name, and so of its VGs' names.
    pub prefix: &'static str,
    /// The guest's `/etc/lvm/lvm.conf`, written before the first case: what
    /// LVM reads where no `LVM_SYSTEM_DIR` is given (udev's autoactivation,
    /// an agent run as rgmanager runs it).
    pub node_conf: fn() -> String,
    /// The case's own lvm.conf, for the test's LVM commands; "" for none
    /// (LVM's built-in defaults).
    pub case_conf: &'static str,
}

/// One case: its directory, lvm.conf directory, loop PVs and VGs.
pub struct LvmCase {
    pub name: String,
    pub conf: PathBuf,
    pub vgs: Vec<String>,
    pub loops: Vec<LoopDevice>,
    pub dir: tempfile::TempDir,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl LvmCase {
    pub fn new(suite: &LvmSuite, label: &str) -> LvmCase {
        assert!(
            in_guest(),
            "guest_* cases need device-mapper: they run inside the guest kernel ({})",
            suite.host_test
        );
        static NODE_CONF: std::sync::Once = std::sync::Once::new();
        NODE_CONF.call_once(|| {
            std::fs::write("/etc/lvm/lvm.conf", (suite.node_conf)())
                .expect("write the guest's /etc/lvm/lvm.conf");
        });
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let name = format!("{}-{label}-{}{n}", suite.prefix, std::process::id() % 1000);
        let dir = super::tempdir(label);
        let conf = dir.path().join("lvm");
        std::fs::create_dir_all(&conf).unwrap();
        write_conf(&conf, suite.case_conf);
        LvmCase {
            name,
            conf,
            vgs: Vec::new(),
            loops: Vec::new(),
            dir,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write this case's lvm.conf ("" removes it: built-in defaults).
    pub fn lvm_conf(&self, body: &str) {
        write_conf(&self.conf, body);
    }

    /// A separate lvm.conf directory, as another node would have.
    pub fn node_conf(&self, node: &str, body: &str) -> PathBuf {
        let d = self.path().join(format!("node-{node}"));
        std::fs::create_dir_all(&d).unwrap();
        write_conf(&d, body);
        d
    }

    pub fn lvm_in(&self, conf: &Path, args: &[&str]) -> Output {
        Command::new("lvm")
            .args(args)
            .env("LVM_SYSTEM_DIR", conf)
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .output()
            .unwrap()
    }

    pub fn lvm(&self, args: &[&str]) -> Output {
        self.lvm_in(&self.conf, args)
    }

    pub fn lvm_ok(&self, args: &[&str]) -> String {
        let out = self.lvm(args);
        assert!(
            out.status.success(),
            "lvm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new loop device of `mb` MiB.
    pub fn pv(&mut self, mb: u64) -> String {
        let d = self.path().join(format!("pv{}", self.loops.len()));
        std::fs::create_dir_all(&d).unwrap();
        let l = LoopDevice::new(&d, mb, "none");
        let dev = l.device.clone();
        self.loops.push(l);
        dev
    }

    /// A VG named after the case (suffix `sfx`) on `pvs`, with 8M LVs
    /// `lvs` on the first PV, all left inactive.
    pub fn vg(&mut self, sfx: &str, pvs: &[String], lvs: &[&str]) -> String {
        let vg = format!("{}-{sfx}", self.name);
        let mut args = vec!["vgcreate", "-q", vg.as_str()];
        args.extend(pvs.iter().map(String::as_str));
        self.lvm_ok(&args);
        self.vgs.push(vg.clone());
        for lv in lvs {
            self.lvm_ok(&["lvcreate", "-q", "-L", "8M", "-n", lv, &vg, &pvs[0]]);
        }
        self.lvm_ok(&["vgchange", "-q", "-an", &vg]);
        vg
    }

    /// The LV's state as LVM reports it.
    pub fn active(&self, vg: &str, lv: &str) -> bool {
        let out = self.lvm(&[
            "lvs",
            "--foreign",
            "--noheadings",
            "-o",
            "lv_attr",
            &format!("{vg}/{lv}"),
        ]);
        assert!(
            out.status.success(),
            "lvs {vg}/{lv}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().chars().nth(4) == Some('a')
    }

    pub fn vg_field(&self, vg: &str, field: &str) -> String {
        self.lvm_ok(&["vgs", "--foreign", "--noheadings", "-o", field, vg])
            .trim()
            .to_string()
    }

    pub fn tags(&self, vg: &str) -> Vec<String> {
        self.vg_field(vg, "vg_tags")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub fn system_id(&self, vg: &str) -> String {
        self.vg_field(vg, "vg_systemid")
    }
}

/// `dir`'s lvm.conf: `body`, or none for "".
fn write_conf(dir: &Path, body: &str) {
    let f = dir.join("lvm.conf");
    if body.is_empty() {
        let _ = std::fs::remove_file(f);
    } else {
        std::fs::write(f, body).unwrap();
    }
}

impl Drop for LvmCase {
    fn drop(&mut self) {
        // Remove our VGs' dm devices whatever their owner, then the loops
        // (fields) go, then the directory.
        for vg in &self.vgs {
            super::remove_dm_devices_of_vg(vg);
        }
    }
}
