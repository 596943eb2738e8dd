//! PRIMECLUSTER Cmdline resources: the Filesystem binary as their start,
//! stop and check commands, with `--exit-codes=cmdline`.
//!
//! RMS runs each command line as given (no OCF environment): parameters come
//! with `-o`, and the check command must exit 0 when the resource is online,
//! 1 when offline, and (read as "faulted" with `ALLEXITCODES=yes`) 2 when the
//! check itself failed. Start and stop: 0 is success.

mod support;

use std::path::PathBuf;
use std::process::Command;

use assert_cmd::prelude::*;
use predicates::str::contains;
use support::{is_mounted, LoopDevice};

const BIN: &str = env!("CARGO_BIN_EXE_Filesystem");

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
    f.cmdline("monitor", &["-o", "OCF_CHECK_LEVEL=30"])
        .assert()
        .code(2);
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
