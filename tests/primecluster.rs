//! PRIMECLUSTER Cmdline resources: the Filesystem binary as their start,
//! stop and check commands, with `--exit-codes=cmdline`.
//!
//! RMS runs each command line as given (no OCF environment): parameters come
//! with `-o`, and the check command must exit 0 when the resource is online,
//! 1 when offline, and (read as "faulted" with `ALLEXITCODES=yes`) 2 when the
//! check itself failed. Start and stop: 0 is success.
//!
//! Then a KVM guest as the Cmdline resource of a host-OS cluster
//! application (VirtualDomain with `-o config=... -o hypervisor=...`), moved
//! the three ways PRIMECLUSTER's guide names for KVM: live migration (a
//! running guest), offline migration (a suspended guest: libvirt's non-live
//! migration, our `migration_mode=paused`) and export/import (the guest
//! stopped on one host and started from the same XML on a spare host). Each
//! runs the README's command lines against real QEMU guests under two
//! private libvirt daemons (`support::libvirt::QemuLab`, skipped without
//! libvirtd/QEMU unless RA_REQUIRE_GUEST is set). Whether the guest moved
//! or booted again is read from its serial console: the guest prints
//! `RAVM: ready` once per boot and its uptime every second.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::prelude::*;
use predicates::str::contains;
use support::libvirt::{QemuLab, BOOT_LIMIT, POWER_BUTTON, READY, UPTIME};
use support::{is_mounted, LoopDevice};

const BIN: &str = env!("CARGO_BIN_EXE_Filesystem");
const VD: &str = env!("CARGO_BIN_EXE_VirtualDomain");

struct Fixture {
    dir: tempfile::TempDir,
    dev: Option<LoopDevice>,
    mnt: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = support::tempdir("cmdline");
        let dev = LoopDevice::new(dir.path(), 64, "ext4");
        Fixture {
            mnt: dir.path().join("mnt"),
            dir,
            dev: Some(dev),
        }
    }

    /// `Filesystem <action> --exit-codes=cmdline -o device=... ...`, with
    /// the plain environment of a command run by RMS.
    fn cmdline(&self, action: &str, extra: &[&str]) -> Command {
        let mut c = self.ocf(action, extra);
        c.arg("--exit-codes=cmdline");
        c
    }

    /// The same command without `--exit-codes`.
    fn ocf(&self, action: &str, extra: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HA_RSCTMP", self.dir.path().join("rsctmp"))
            .env("HA_LOGFACILITY", "none")
            .arg(action)
            .arg("-o")
            .arg(format!("device={}", self.dev.as_ref().unwrap().device))
            .arg("-o")
            .arg(format!("directory={}", self.mnt.display()))
            .args(["-o", "fstype=ext4"])
            .args(extra);
        c
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        support::unmount_tree(&self.mnt);
        self.dev.take();
    }
}

#[test]
fn check_exits_0_online_1_offline_2_faulted() {
    let f = Fixture::new();
    f.cmdline("monitor", &[])
        .assert()
        .code(1)
        .stdout(contains("OCF_NOT_RUNNING (7), Cmdline exit 1 (offline)"));
    f.cmdline("start", &[]).assert().code(0);
    assert!(is_mounted(&f.mnt));
    f.cmdline("monitor", &[])
        .assert()
        .code(0)
        .stdout(contains("Cmdline exit 0 (online)"));
    f.cmdline("status", &[]).assert().code(0);
    f.cmdline("monitor", &["-o", "OCF_CHECK_LEVEL=20"])
        .assert()
        .code(0);
    // the check itself fails: faulted, not offline
    support::sh("mount", &["-o", "remount,ro", f.mnt.to_str().unwrap()]);
    f.cmdline("monitor", &["-o", "OCF_CHECK_LEVEL=20"])
        .assert()
        .code(2)
        .stdout(contains("OCF_ERR_GENERIC (1), Cmdline exit 2 (faulted)"));
    // a check command sets no interval: it is a probe, and a probe never
    // fails on what it does not need (issue 13): an unsupported depth is
    // checked at depth 0, with one warning
    f.cmdline("monitor", &["-o", "OCF_CHECK_LEVEL=30"])
        .assert()
        .code(0)
        .stderr(contains("unsupported monitor level 30"));
    f.cmdline("monitor", &[]).assert().code(0);
    f.ocf("monitor", &["-o", "OCF_CHECK_LEVEL=20"])
        .assert()
        .code(1);
    f.cmdline("stop", &[]).assert().code(0);
    assert!(!is_mounted(&f.mnt));
    f.cmdline("monitor", &[]).assert().code(1);
    // without the flag the OCF codes stay
    f.ocf("monitor", &[]).assert().code(7);
    f.cmdline("stop", &[]).assert().code(0);
}

#[test]
fn start_and_stop_failures_are_nonzero() {
    let f = Fixture::new();
    // start of a device that is not there
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("HA_RSCTMP", f.dir.path().join("rsctmp"))
        .env("HA_LOGFACILITY", "none")
        .args(["start", "--exit-codes=cmdline"])
        .args(["-o", "device=/dev/no-such-device-cmdline"])
        .arg("-o")
        .arg(format!("directory={}", f.mnt.display()))
        .args(["-o", "fstype=ext4", "-o", "CRM_meta_timeout=3000"]);
    c.assert().code(5);
    // a stop that cannot unmount (busy, force_unmount=false)
    f.cmdline("start", &[]).assert().code(0);
    let mut holder = Command::new("sleep")
        .arg("300")
        .current_dir(&f.mnt)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let stop = f
        .cmdline(
            "stop",
            &["-o", "force_unmount=false", "-o", "CRM_meta_timeout=2000"],
        )
        .output()
        .unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(stop.status.code(), Some(1));
    f.cmdline("stop", &[]).assert().code(0);
    // a bad option is an error for every action
    f.cmdline("monitor", &["--exit-codes=lsb"]).assert().code(2);
}

// ---------------------------------------------------------------------------
// KVM guests: VirtualDomain as the Cmdline resource, and the three ways to
// move a guest. Host 0 is "hosta", host 1 "hostb" (the spare host for
// export/import).
// ---------------------------------------------------------------------------

const HOSTS: [&str; 2] = ["hosta", "hostb"];

/// `VirtualDomain <action> -o config=... -o hypervisor=<host h> <extra>`
/// as RMS (or an admin's shell) runs it on host `h`: a plain environment,
/// no OCF variables. Only `HA_RSCTMP` is set, so the agent's state stays
/// in the test's directory.
fn vd(lab: &QemuLab, h: usize, cfg: &Path, action: &str, extra: &[&str]) -> Command {
    let state = lab.path().join(format!("rsctmp-{h}"));
    std::fs::create_dir_all(&state).unwrap();
    let mut c = Command::new(VD);
    c.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HA_RSCTMP", state)
        .env("HA_LOGFACILITY", "none")
        .arg(action)
        .arg("-o")
        .arg(format!("config={}", cfg.display()))
        .arg("-o")
        .arg(format!("hypervisor={}", lab.daemons[h].qemu_uri()))
        .args(extra);
    c
}

/// The CheckCommands line on host `h`: its Cmdline exit code.
fn check(lab: &QemuLab, h: usize, cfg: &Path) -> Option<i32> {
    let out = vd(lab, h, cfg, "monitor", &["--exit-codes=cmdline"])
        .output()
        .unwrap();
    out.status.code()
}

/// Start on host 0 and wait for the guest to boot; the check commands say
/// online on host 0 and offline on host 1.
fn started(lab: &QemuLab, cfg: &Path) {
    assert_eq!(check(lab, 0, cfg), Some(1), "offline before start");
    vd(lab, 0, cfg, "start", &["--exit-codes=cmdline"])
        .assert()
        .code(0);
    lab.wait_serial(0, READY, BOOT_LIMIT);
    // a few seconds of uptime on host 0 to compare with later
    let t = std::time::Instant::now();
    while uptimes(lab, 0).len() < 3 {
        assert!(t.elapsed() < BOOT_LIMIT, "no uptimes:\n{}", lab.serial(0));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(check(lab, 0, cfg), Some(0));
    assert_eq!(check(lab, 1, cfg), Some(1));
}

/// The uptimes the guest printed on host `h`'s serial console, in order.
fn uptimes(lab: &QemuLab, h: usize) -> Vec<f64> {
    lab.serial(h)
        .lines()
        .filter_map(|l| l.split_once(UPTIME))
        .filter_map(|(_, v)| v.trim().parse().ok())
        .collect()
}

/// After a migration from host 0 to host 1: the guest runs on host 1 only,
/// the check commands agree, and it is the same guest (no second boot on
/// host 1, and its uptime goes on from where host 0 last saw it).
fn moved_without_reboot(lab: &QemuLab, cfg: &Path) {
    assert_eq!(lab.domstate(1), "running");
    assert_eq!(lab.domstate(0), "", "gone from hosta");
    assert_eq!(lab.emulators().len(), 1);
    assert_eq!(check(lab, 1, cfg), Some(0), "online on hostb");
    assert_eq!(check(lab, 0, cfg), Some(1), "offline on hosta");
    let before = *uptimes(lab, 0).last().unwrap();
    lab.wait_serial(1, UPTIME, BOOT_LIMIT);
    let after = uptimes(lab, 1);
    assert!(
        !lab.serial(1).contains(READY),
        "the guest booted again on hostb:\n{}",
        lab.serial(1)
    );
    assert!(
        after[0] >= before,
        "uptime on hostb {after:?} does not continue hosta's {before}"
    );
}

/// `migrate_to` on host 0 and `migrate_from` on host 1, with the target
/// given as `-o CRM_meta_migrate_target` (Pacemaker's variable; RMS sets
/// none). `remoteuri` is host 1's daemon here (default: `qemu+ssh://hostb/
/// system`) and the migration stream stays on loopback.
fn migrate(lab: &QemuLab, cfg: &Path, mode: &str) -> String {
    let remote = format!("remoteuri={}", lab.daemons[1].qemu_uri());
    let mode = format!("migration_mode={mode}");
    let common = [
        "-o",
        &mode,
        "-o",
        "CRM_meta_migrate_source=hosta",
        "-o",
        "CRM_meta_migrate_target=hostb",
    ];
    let mut to = vd(lab, 0, cfg, "migrate_to", &common);
    to.args(["-o", &remote, "-o", "migrateuri=tcp://127.0.0.1"])
        .args(["-o", "migrate_options=--listen-address 127.0.0.1"]);
    let out = to.assert().code(0);
    let log = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    vd(lab, 1, cfg, "migrate_from", &common).assert().code(0);
    log
}

#[test]
fn kvm_guest_live_migration_keeps_it_running() {
    let Some(lab) = QemuLab::new("pcl-live", 2) else {
        return;
    };
    let cfg = lab.config("guest1.xml", "ra_uptime");
    started(&lab, &cfg);
    let log = migrate(&lab, &cfg, "live");
    assert!(log.contains("Starting live migration"), "{log}");
    assert!(log.contains(HOSTS[1]), "{log}");
    moved_without_reboot(&lab, &cfg);
    vd(&lab, 1, &cfg, "stop", &["--exit-codes=cmdline"])
        .assert()
        .code(0);
    assert!(lab.serial(1).contains(POWER_BUTTON), "{}", lab.serial(1));
    assert_eq!(check(&lab, 1, &cfg), Some(1));
}

#[test]
fn kvm_guest_offline_migration_moves_it_suspended() {
    let Some(lab) = QemuLab::new("pcl-offline", 2) else {
        return;
    };
    let cfg = lab.config("guest1.xml", "ra_uptime");
    started(&lab, &cfg);
    let log = migrate(&lab, &cfg, "paused");
    assert!(log.contains("Starting offline migration"), "{log}");
    assert!(log.contains("suspended for offline migration"), "{log}");
    moved_without_reboot(&lab, &cfg);
    vd(&lab, 1, &cfg, "stop", &["--exit-codes=cmdline"])
        .assert()
        .code(0);
    assert_eq!(check(&lab, 1, &cfg), Some(1));
}

#[test]
fn kvm_guest_export_import_starts_it_on_the_spare_host() {
    let Some(lab) = QemuLab::new("pcl-export", 2) else {
        return;
    };
    // the XML on storage both hosts see (here: the lab's directory)
    let cfg = lab.config("guest1.xml", "ra_uptime");
    started(&lab, &cfg);
    // export: a graceful stop on hosta (the guest saw its power button)
    vd(&lab, 0, &cfg, "stop", &["--exit-codes=cmdline"])
        .assert()
        .code(0);
    assert!(lab.serial(0).contains(POWER_BUTTON), "{}", lab.serial(0));
    assert!(lab.emulators().is_empty());
    assert_eq!(check(&lab, 0, &cfg), Some(1));
    assert_eq!(check(&lab, 1, &cfg), Some(1));
    // import: start on the spare host from the same XML, a fresh boot
    vd(&lab, 1, &cfg, "start", &["--exit-codes=cmdline"])
        .assert()
        .code(0);
    lab.wait_serial(1, READY, BOOT_LIMIT);
    assert_eq!(lab.domstate(1), "running");
    assert_eq!(lab.domstate(0), "");
    assert_eq!(check(&lab, 1, &cfg), Some(0));
    assert_eq!(check(&lab, 0, &cfg), Some(1));
    vd(&lab, 1, &cfg, "stop", &["--exit-codes=cmdline"])
        .assert()
        .code(0);
    assert_eq!(check(&lab, 1, &cfg), Some(1));
}
