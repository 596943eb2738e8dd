//! The rgmanager `fs` persona, run exactly as rgmanager runs fs.sh.
//!
//! rgmanager's `build_env` (restree.c) gives the agent nothing but OCF
//! variables: no PATH, no LANG, `OCF_ROOT=/usr/share/cluster`,
//! `OCF_RESOURCE_TYPE=fs`, `OCF_RESOURCE_INSTANCE=fs:<name>`,
//! `OCF_CHECK_LEVEL` (the status depth), `OCF_RESKEY_<attr>` for every
//! attribute, `OCF_RESKEY_RGMANAGER_meta_refcnt` and (RHEL6)
//! `OCF_RESKEY_RGMANAGER_meta_timeout` in seconds. Every run here starts from
//! `env_clear` and that list only.
//!
//! Each test makes its own loop-backed ext4 under a fresh directory in
//! /var/tmp; the fixtures unmount and detach in `Drop`, also when an
//! assertion fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use predicates::str::contains;
use support::rgmanager::{assert_only_ocf, depth, get};
use support::{is_mounted, rc, Agent, Holder, LoopDevice};

const BIN: &str = env!("CARGO_BIN_EXE_fs");

/// A loop-backed ext4 and the rgmanager `fs` resource for it.
struct Fs {
    dir: tempfile::TempDir,
    dev: Option<LoopDevice>,
    mnt: PathBuf,
    name: String,
}

impl Fs {
    fn new(tag: &str) -> Fs {
        let dir = support::tempdir("rgm-fs");
        let dev = LoopDevice::new(dir.path(), 64, "ext4");
        Fs {
            mnt: dir.path().join("mnt"),
            name: format!("{tag}{}", std::process::id()),
            dir,
            dev: Some(dev),
        }
    }

    fn device(&self) -> &str {
        &self.dev.as_ref().unwrap().device
    }

    /// The agent with exactly rgmanager's environment.
    fn agent(&self) -> Agent {
        rgmanager(&self.name)
            .param("mountpoint", &self.mnt)
            .param("device", self.device())
            .param("fstype", "ext4")
    }
}

impl Drop for Fs {
    fn drop(&mut self) {
        support::unmount_tree(&self.mnt);
        self.dev.take();
    }
}

/// What rgmanager passes for resource `fs:<name>`.
fn rgmanager(name: &str) -> Agent {
    support::rgmanager::agent(BIN, "fs", name, 20)
}

fn status_files(mnt: &Path) -> usize {
    std::fs::read_dir(mnt.join(".Filesystem_status"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn lifecycle_with_every_status_depth() {
    let fs = Fs::new("life");
    let a = fs.agent();
    assert_only_ocf(&a);
    a.expect("status", rc::NOT_RUNNING);
    a.expect("start", rc::SUCCESS);
    assert!(is_mounted(&fs.mnt));
    a.expect("start", rc::SUCCESS);
    for level in [0, 10, 20] {
        depth(&a, level).expect("status", rc::SUCCESS);
        depth(&a, level).expect("monitor", rc::SUCCESS);
    }
    assert_eq!(status_files(&fs.mnt), 1, "depth 20 wrote its status file");
    // rgmanager stops at depth 0: the status file goes anyway
    a.expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&fs.mnt));
    a.expect("stop", rc::SUCCESS);
    a.expect("status", rc::NOT_RUNNING);
    depth(&a, 20).expect("status", rc::NOT_RUNNING);
    a.expect("start", rc::SUCCESS);
    assert_eq!(status_files(&fs.mnt), 0, "stop left a status file behind");
    a.expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&fs.mnt));
}

#[test]
fn depths_fail_when_the_filesystem_does() {
    let fs = Fs::new("deep");
    let a = fs.agent();
    a.expect("start", rc::SUCCESS);
    support::sh("mount", &["-o", "remount,ro", fs.mnt.to_str().unwrap()]);
    depth(&a, 20)
        .expect("status", rc::ERR_GENERIC)
        .stderr(contains("Read-only file system"));
    depth(&a, 10).expect("status", rc::SUCCESS);
    a.expect("status", rc::SUCCESS);
    // quick_status never goes past depth 0; ro in options stops at 10
    depth(&a, 20)
        .param("quick_status", "1")
        .expect("status", rc::SUCCESS);
    depth(&a, 20)
        .param("options", "ro")
        .expect("status", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&fs.mnt));
}

#[test]
fn force_unmount_kills_a_holder() {
    let fs = Fs::new("force");
    let a = fs.agent().param("force_unmount", "1");
    a.expect("start", rc::SUCCESS);
    std::fs::create_dir(fs.mnt.join("work")).unwrap();
    let mut holder = Holder::new(&fs.mnt.join("work"));
    let bystander = Holder::new(fs.dir.path());
    a.expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&fs.mnt));
    assert!(holder.is_dead(), "the process using the mount survived");
    let mut bystander = bystander;
    assert!(
        !bystander.is_dead(),
        "a process outside the mount was killed"
    );
}

#[test]
fn without_force_unmount_a_busy_stop_fails_inside_rgmanagers_timeout() {
    let fs = Fs::new("busy");
    let a = fs.agent();
    a.expect("start", rc::SUCCESS);
    let mut holder = Holder::new(&fs.mnt);
    let t = Instant::now();
    a.clone()
        .env("OCF_RESKEY_RGMANAGER_meta_timeout", "3")
        .expect("stop", rc::ERR_GENERIC)
        .stderr(contains("Couldn't unmount"));
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "stop overran the 3 s timeout (seconds, not ms): {:?}",
        t.elapsed()
    );
    assert!(!holder.is_dead(), "force_unmount is off: nothing is killed");
    assert!(is_mounted(&fs.mnt));
    drop(holder);
    a.expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&fs.mnt));
}

#[test]
fn recover_mounts_again() {
    let fs = Fs::new("recover");
    let a = fs.agent();
    a.expect("start", rc::SUCCESS);
    support::sh("umount", &[fs.mnt.to_str().unwrap()]);
    a.expect("status", rc::NOT_RUNNING);
    a.expect("recover", rc::SUCCESS);
    a.expect("status", rc::SUCCESS);
    a.expect("recover", rc::SUCCESS);
    a.expect("status", rc::SUCCESS);
    // fs.sh's restart (do_restart): unmount, mount again
    support::sh("umount", &[fs.mnt.to_str().unwrap()]);
    a.expect("restart", rc::SUCCESS);
    a.expect("status", rc::SUCCESS);
    a.expect("restart", rc::SUCCESS);
    a.expect("status", rc::SUCCESS);
    a.expect("reload", rc::SUCCESS);
    a.expect("reconfig", rc::SUCCESS);
    a.expect("verify-all", rc::SUCCESS);
    a.expect("validate-all", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&fs.mnt));
}

#[test]
fn a_device_mounted_elsewhere_is_not_mounted_twice() {
    let fs = Fs::new("twice");
    let other = fs.dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    support::sh("mount", &[fs.device(), other.to_str().unwrap()]);
    let a = fs.agent();
    a.expect("start", rc::ERR_GENERIC)
        .stderr(contains("already mounted on"));
    assert!(!is_mounted(&fs.mnt));
    a.expect("status", rc::NOT_RUNNING);
    support::unmount_tree(&other);
    a.expect("start", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
}

#[test]
fn bad_parameters() {
    let fs = Fs::new("bad");
    let a = fs.agent();
    // every action, not only start
    for action in ["start", "stop", "status", "verify-all"] {
        a.clone()
            .unset("OCF_RESKEY_name")
            .expect(action, rc::ERR_CONFIGURED)
            .stderr(contains("name"));
        a.clone()
            .unset("OCF_RESKEY_mountpoint")
            .expect(action, rc::ERR_CONFIGURED)
            .stderr(contains("mountpoint"));
    }
    // what does not name the resource fails every action but stop, which
    // takes the default with a warning (tests/hostile_stop.rs)
    for action in ["start", "status", "verify-all"] {
        a.clone()
            .param("fstype", "nfs")
            .expect(action, rc::ERR_CONFIGURED)
            .stderr(contains("fstype"));
        a.clone()
            .param("force_unmount", "maybe")
            .expect(action, rc::ERR_CONFIGURED);
    }
    a.clone().param("fstype", "nfs").expect("stop", rc::SUCCESS);
    a.clone()
        .param("force_unmount", "maybe")
        .expect("stop", rc::SUCCESS);
    a.clone()
        .param("mountpoint", "/")
        .expect("start", rc::ERR_CONFIGURED);
    depth(&a, 0)
        .env("OCF_CHECK_LEVEL", "deep")
        .expect("status", rc::ERR_CONFIGURED);
    // a mount point that is a file: start refuses, stop and status answer
    let file = fs.dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let f = a.clone().param("mountpoint", &file);
    f.expect("start", rc::ERR_CONFIGURED)
        .stderr(contains("not a directory"));
    f.expect("stop", rc::SUCCESS);
    f.expect("status", rc::NOT_RUNNING);
    // a device that does not exist
    a.clone()
        .param("device", "/dev/no-such-device-rgm")
        .env("OCF_RESKEY_RGMANAGER_meta_timeout", "3")
        .expect("start", rc::ERR_INSTALLED);
    assert!(!is_mounted(&fs.mnt));
    // unknown actions, usage
    a.expect("migrate", rc::ERR_ARGS);
    a.expect("frobnicate", rc::ERR_UNIMPLEMENTED);
    Command::new(BIN)
        .env_clear()
        .output()
        .map(|o| assert_eq!(o.status.code(), Some(rc::ERR_ARGS)))
        .unwrap();
}

#[test]
fn self_fence_reboots_when_the_unmount_fails() {
    let fs = Fs::new("fence");
    // a reboot that only records how it was called, first on PATH
    let reboot = support::rgmanager::RecordingReboot::new(fs.dir.path());
    let path = reboot.path.clone();
    let a = fs
        .agent()
        .env("PATH", &path)
        .param("self_fence", "1")
        .env("OCF_RESKEY_RGMANAGER_meta_timeout", "2");
    a.expect("start", rc::SUCCESS);
    // a successful stop never fences
    a.expect("stop", rc::SUCCESS);
    assert_eq!(reboot.called_with(), None);
    a.expect("start", rc::SUCCESS);
    let holder = Holder::new(&fs.mnt);
    a.expect("stop", rc::ERR_GENERIC)
        .stderr(contains("self_fence"));
    let args = reboot.called_with().expect("reboot was not called");
    assert_eq!(args.trim(), "-f -n");
    drop(holder);
    a.expect("stop", rc::SUCCESS);
}

#[test]
fn meta_data_carries_the_rgmanager_extensions() {
    // the DTD's structure, one primary `name`: checked by the reader
    let md = support::rgmanager::meta_data(BIN, "fs");
    // fs.sh's parameters, in its order
    assert_eq!(
        md.param_names(),
        [
            "name",
            "mountpoint",
            "device",
            "fstype",
            "force_unmount",
            "quick_status",
            "self_fence",
            "nfslock",
            "nfsrestart",
            "fsid",
            "force_fsck",
            "options",
            "use_findmnt"
        ]
    );
    for n in ["mountpoint", "device"] {
        assert_eq!(get(md.param(n), "required"), Some("1"), "{n}");
        assert_eq!(get(md.param(n), "unique"), Some("1"), "{n}");
    }
    assert_eq!(get(md.param("nfslock"), "inherit"), Some("nfslock"));

    // actions: fs.sh's, status at 0/10/20 with its timeouts
    for n in [
        "start",
        "stop",
        "recover",
        "reload",
        "reconfig",
        "meta-data",
        "verify-all",
    ] {
        assert!(md.has_action(n), "{n}");
    }
    let status: Vec<(Option<&str>, Option<&str>, Option<&str>)> = md
        .actions
        .iter()
        .filter(|a| get(a, "name") == Some("status"))
        .map(|a| (get(a, "depth"), get(a, "timeout"), get(a, "interval")))
        .collect();
    assert_eq!(
        status,
        [
            (None, Some("10s"), Some("60s")),
            (Some("10"), Some("30s"), Some("30s")),
            (Some("20"), Some("30s"), Some("60s")),
        ]
    );
    let start = md.actions.iter().find(|a| get(a, "name") == Some("start"));
    assert_eq!(start.and_then(|a| get(a, "timeout")), Some("900s"));

    // special: attributes first, then the child ordering of fs.sh
    let special = &md.special;
    assert_eq!(special[0].0, "attributes");
    assert_eq!(get(&special[0].1, "maxinstances"), Some("1"));
    let children: Vec<(&str, &str, &str)> = special[1..]
        .iter()
        .map(|(el, a)| {
            assert_eq!(el, "child");
            (
                get(a, "type").unwrap(),
                get(a, "start").unwrap(),
                get(a, "stop").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        children,
        [
            ("fs", "1", "3"),
            ("clusterfs", "1", "3"),
            ("nfsexport", "3", "1")
        ]
    );
}
