//! The Filesystem agent on real loop devices, real ext4/xfs, real mounts.
//!
//! Every test makes its own image, loop device and mount point under a
//! fresh directory in /var/tmp, and the fixtures unmount and detach them in
//! `Drop`, so a failing assertion still cleans up.

mod support;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{RwLock, RwLockReadGuard};
use std::time::Duration;

use assert_cmd::prelude::*;
use predicates::prelude::*;
use predicates::str::contains;
use support::{is_mounted, rc, Agent, Holder, LoopDevice};

const BIN: &str = env!("CARGO_BIN_EXE_Filesystem");

/// The tests of this file run in parallel threads, and where `/` has
/// shared propagation (systemd's default) mount propagation ties their
/// mounts together: while `/` is bind-mounted (a peer of `/`), another
/// test's mount under /var/tmp is copied into the bind, and unmounting
/// those copies with the bind propagates back to the original. So the bind-of-`/` case runs alone (`write`); every
/// other case that mounts holds `read` for as long as its mounts exist.
static MOUNTS: RwLock<()> = RwLock::new(());

fn mounting() -> RwLockReadGuard<'static, ()> {
    MOUNTS.read().unwrap_or_else(|e| e.into_inner())
}

/// A loop-backed filesystem and an agent configured for it. Fields drop
/// after `Drop::drop` unmounted: the loop device, then the lock.
struct Fs {
    dir: tempfile::TempDir,
    dev: Option<LoopDevice>,
    mnt: PathBuf,
    _mounting: RwLockReadGuard<'static, ()>,
}

impl Fs {
    fn new(fstype: &str) -> Fs {
        Fs::with_mount_name(fstype, "mnt")
    }

    fn with_mount_name(fstype: &str, name: &str) -> Fs {
        let guard = mounting();
        let dir = support::tempdir("fs");
        let dev = LoopDevice::new(dir.path(), if fstype == "xfs" { 320 } else { 64 }, fstype);
        let mnt = dir.path().join(name);
        Fs {
            dir,
            dev: Some(dev),
            mnt,
            _mounting: guard,
        }
    }

    fn device(&self) -> &str {
        &self.dev.as_ref().unwrap().device
    }

    fn agent(&self, fstype: &str) -> Agent {
        Agent::new(BIN, self.dir.path())
            .env("OCF_RESOURCE_INSTANCE", "fs1")
            .env("OCF_RESKEY_CRM_meta_timeout", "20000")
            .param("device", self.device())
            .param("directory", &self.mnt)
            .param("fstype", fstype)
    }
}

impl Drop for Fs {
    fn drop(&mut self) {
        support::unmount_tree(&self.mnt);
        self.dev.take();
    }
}

#[test]
fn ext4_lifecycle_with_every_monitor_depth() {
    let fs = Fs::new("ext4");
    let a = fs.agent("ext4");
    a.expect("monitor", rc::NOT_RUNNING);
    a.clone().recurring().expect("monitor", rc::NOT_RUNNING);
    a.expect("start", rc::SUCCESS);
    assert!(is_mounted(&fs.mnt));
    a.expect("start", rc::SUCCESS);
    a.expect("monitor", rc::SUCCESS);
    a.clone().check_level(10).expect("monitor", rc::SUCCESS);
    a.clone().check_level(20).expect("monitor", rc::SUCCESS);
    let status = fs.mnt.join(".Filesystem_status");
    // count, do not keep the entries: each one holds the directory open,
    // and the agent rightly stops processes that keep the mount busy
    let files = std::fs::read_dir(&status).unwrap().count();
    assert_eq!(files, 1, "one status file for this node");
    a.expect("status", rc::SUCCESS);
    a.clone().check_level(20).expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&fs.mnt));
    a.expect("stop", rc::SUCCESS);
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("status", rc::NOT_RUNNING);
    // the status file went with the stop at depth 20
    a.expect("start", rc::SUCCESS);
    assert_eq!(std::fs::read_dir(&status).unwrap().count(), 0);
    a.expect("stop", rc::SUCCESS);
}

#[test]
fn xfs_lifecycle() {
    let fs = Fs::new("xfs");
    let a = fs.agent("xfs");
    a.expect("start", rc::SUCCESS);
    assert!(is_mounted(&fs.mnt));
    a.clone().check_level(10).expect("monitor", rc::SUCCESS);
    a.clone().check_level(20).expect("monitor", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&fs.mnt));
    a.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn depth_20_on_a_read_only_remount_fails() {
    let fs = Fs::new("ext4");
    let a = fs.agent("ext4");
    a.expect("start", rc::SUCCESS);
    support::sh("mount", &["-o", "remount,ro", fs.mnt.to_str().unwrap()]);
    a.clone()
        .check_level(20)
        .expect("monitor", rc::ERR_GENERIC)
        .stderr(contains("ocf-exit-reason:").and(contains("Read-only file system")));
    a.expect("monitor", rc::SUCCESS); // still mounted
    a.clone().check_level(10).expect("monitor", rc::SUCCESS); // device readable
    a.expect("stop", rc::SUCCESS);
}

#[test]
fn unsupported_check_levels_are_not_configured() {
    let fs = Fs::new("ext4");
    let a = fs.agent("ext4");
    // a recurring monitor refuses them; a probe answers at depth 0
    // (tests/hostile_stop.rs)
    a.clone()
        .recurring()
        .check_level(30)
        .expect("monitor", rc::ERR_CONFIGURED)
        .stderr(contains("unsupported monitor level 30"));
    a.clone()
        .recurring()
        .env("OCF_CHECK_LEVEL", "deep")
        .expect("monitor", rc::ERR_CONFIGURED);
    a.clone().check_level(30).expect("monitor", rc::NOT_RUNNING);
    // the rgmanager spelling of the level
    a.expect("start", rc::SUCCESS);
    a.clone()
        .env("OCF_RESKEY_OCF_CHECK_LEVEL", "20")
        .expect("monitor", rc::SUCCESS);
    assert!(fs.mnt.join(".Filesystem_status").is_dir());
    a.expect("stop", rc::SUCCESS);
}

#[test]
fn stop_kills_holders_and_fsynced_data_survives() {
    let fs = Fs::new("ext4");
    let a = fs.agent("ext4");
    a.expect("start", rc::SUCCESS);
    let data = fs.mnt.join("data.bin");
    let payload: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&data)
            .unwrap();
        f.write_all(&payload).unwrap();
        f.sync_all().unwrap();
    }
    std::fs::create_dir(fs.mnt.join("work")).unwrap();
    let mut cwd_holder = Holder::new(&fs.mnt.join("work"));
    let mut fd_holder = Holder::with_open_file(&data);
    let bystander = Holder::new(fs.dir.path()); // next to the mount, not in it
    a.expect("stop", rc::SUCCESS)
        .stderr(contains("sending term signals"));
    assert!(!is_mounted(&fs.mnt));
    assert!(
        cwd_holder.is_dead(),
        "process with its cwd in the mount was not stopped"
    );
    assert!(
        fd_holder.is_dead(),
        "process holding a file open was not stopped"
    );
    let mut bystander = bystander;
    assert!(
        !bystander.is_dead(),
        "a process outside the mount was killed"
    );
    a.expect("start", rc::SUCCESS);
    assert_eq!(std::fs::read(&data).unwrap(), payload);
    a.expect("stop", rc::SUCCESS);
}

#[test]
fn a_holder_ignoring_term_gets_kill_within_the_deadline() {
    let fs = Fs::new("ext4");
    let a = fs.agent("ext4");
    a.expect("start", rc::SUCCESS);
    // a shell that ignores TERM, its cwd on the mount
    let mut stubborn = Holder(
        Command::new("sh")
            .args(["-c", "trap '' TERM; while :; do sleep 0.1; done"])
            .current_dir(&fs.mnt)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(100));
    let t = std::time::Instant::now();
    a.clone()
        .env("OCF_RESKEY_CRM_meta_timeout", "8000")
        .expect("stop", rc::SUCCESS)
        .stderr(contains("sending kill signals"));
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "stop overran its timeout: {:?}",
        t.elapsed()
    );
    assert!(stubborn.is_dead());
    assert!(!is_mounted(&fs.mnt));
}

#[test]
fn force_unmount_false_leaves_holders_and_fails_inside_the_deadline() {
    let fs = Fs::new("ext4");
    let a = fs.agent("ext4").param("force_unmount", "false");
    a.expect("start", rc::SUCCESS);
    let mut holder = Holder::new(&fs.mnt);
    let t = std::time::Instant::now();
    a.clone()
        .env("OCF_RESKEY_CRM_meta_timeout", "4000")
        .expect("stop", rc::ERR_GENERIC)
        .stderr(contains("Couldn't unmount"));
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "stop overran: {:?}",
        t.elapsed()
    );
    assert!(!holder.is_dead());
    assert!(is_mounted(&fs.mnt));
    drop(holder);
    a.expect("stop", rc::SUCCESS);
}

#[test]
fn fast_stop_gives_each_mount_six_seconds() {
    let fs = Fs::new("ext4");
    let a = fs
        .agent("ext4")
        .param("fast_stop", "yes")
        .param("force_unmount", "false");
    a.expect("start", rc::SUCCESS);
    let holder = Holder::new(&fs.mnt);
    let t = std::time::Instant::now();
    a.clone()
        .env("OCF_RESKEY_CRM_meta_timeout", "60000")
        .expect("stop", rc::ERR_GENERIC);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(9),
        "took {took:?}"
    );
    drop(holder);
    a.expect("stop", rc::SUCCESS);
}

#[test]
fn sub_mounts_are_unmounted_deepest_first_and_refused_at_start() {
    let fs = Fs::new("ext4");
    let a = fs.agent("ext4");
    // something mounted below the mount point before start: refused
    std::fs::create_dir_all(fs.mnt.join("inner")).unwrap();
    support::sh(
        "mount",
        &[
            "-t",
            "tmpfs",
            "tmpfs",
            fs.mnt.join("inner").to_str().unwrap(),
        ],
    );
    a.expect("start", rc::ERR_CONFIGURED)
        .stderr(contains("mounted under"));
    support::sh("umount", &[fs.mnt.join("inner").to_str().unwrap()]);
    std::fs::remove_dir(fs.mnt.join("inner")).unwrap();
    // after start, two levels of sub-mounts with a holder in the deepest
    a.expect("start", rc::SUCCESS);
    let l1 = fs.mnt.join("l1");
    std::fs::create_dir(&l1).unwrap();
    support::sh("mount", &["-t", "tmpfs", "tmpfs", l1.to_str().unwrap()]);
    let l2 = l1.join("l2");
    std::fs::create_dir(&l2).unwrap();
    support::sh("mount", &["-t", "tmpfs", "tmpfs", l2.to_str().unwrap()]);
    let mut holder = Holder::new(&l2);
    a.expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&l2) && !is_mounted(&l1) && !is_mounted(&fs.mnt));
    assert!(holder.is_dead());
}

#[test]
fn missing_device_start_5_probe_7_stop_0_nothing_mounted() {
    let dir = support::tempdir("fs-nodev");
    let mnt = dir.path().join("mnt");
    let a = Agent::new(BIN, dir.path())
        .param("device", "/dev/no-such-disk-ra-rs")
        .param("directory", &mnt)
        .param("fstype", "ext4");
    a.expect("start", rc::ERR_INSTALLED)
        .stderr(contains("ocf-exit-reason:Couldn't find device"));
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("stop", rc::SUCCESS);
    a.expect("validate-all", rc::ERR_INSTALLED);
    assert!(!is_mounted(&mnt));
}

#[test]
fn a_loop_device_without_medium_fails_start_and_mounts_nothing() {
    let fs = Fs::new("ext4");
    fs.dev.as_ref().unwrap().remove_medium();
    let a = fs.agent("ext4");
    a.expect("start", rc::ERR_GENERIC)
        .stderr(contains("Couldn't mount device"));
    assert!(!is_mounted(&fs.mnt));
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("stop", rc::SUCCESS);
}

#[test]
fn bind_mount_with_read_only_option_leaves_the_source_writable() {
    let _mounting = mounting();
    let dir = support::tempdir("fs-bind");
    let src = dir.path().join("source dir");
    let mnt = dir.path().join("bound");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "x").unwrap();
    let a = Agent::new(BIN, dir.path())
        .param("device", &src)
        .param("directory", &mnt)
        .param("fstype", "none")
        .param("options", "bind,ro");
    a.expect("start", rc::SUCCESS);
    assert!(is_mounted(&mnt));
    assert_eq!(std::fs::read_to_string(mnt.join("f")).unwrap(), "x");
    assert!(
        std::fs::write(mnt.join("g"), "y").is_err(),
        "bind mount should be read-only"
    );
    std::fs::write(src.join("h"), "z").expect("the source must stay writable");
    a.expect("monitor", rc::SUCCESS);
    a.clone().check_level(10).expect("monitor", rc::SUCCESS); // noop for bind
    a.expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&mnt));
    support::unmount_tree(&mnt);
}

#[test]
fn stopping_a_bind_mount_of_root_kills_only_what_is_inside_it() {
    // alone: no other case's mount may be propagated into this bind
    let _alone = MOUNTS.write().unwrap_or_else(|e| e.into_inner());
    let dir = support::tempdir("fs-bindroot");
    let mnt = dir.path().join("root");
    let a = Agent::new(BIN, dir.path())
        .env("OCF_RESKEY_CRM_meta_timeout", "20000")
        .param("device", "/")
        .param("directory", &mnt)
        .param("fstype", "none")
        .param("options", "bind");
    a.expect("start", rc::SUCCESS);
    // A process using the root filesystem through its usual path, and one
    // using it through the bind mount.
    let outside_dir = dir.path().join("outside");
    std::fs::create_dir_all(&outside_dir).unwrap();
    let mut outside = Holder::new(&outside_dir);
    let inside_dir = mnt.join(outside_dir.strip_prefix("/").unwrap());
    let mut inside = Holder::new(&inside_dir);
    a.expect("stop", rc::SUCCESS);
    let cleanup = scopeguard_unmount(&mnt);
    assert!(
        inside.is_dead(),
        "the process inside the bind mount survived"
    );
    assert!(
        !outside.is_dead(),
        "a process outside the bind mount was killed"
    );
    drop(cleanup);
}

/// Unmounts `dir` (and below) when dropped.
fn scopeguard_unmount(dir: &Path) -> impl Drop + '_ {
    struct G<'a>(&'a Path);
    impl Drop for G<'_> {
        fn drop(&mut self) {
            support::unmount_tree(self.0);
        }
    }
    G(dir)
}

#[test]
fn mount_points_with_spaces_and_shell_syntax_are_taken_literally() {
    let canary = PathBuf::from(format!("/var/tmp/ra-rs-pwned-{}", std::process::id()));
    let name = format!(
        "odd dir; touch {} $(touch {}) `touch {}`",
        canary.display(),
        canary.display(),
        canary.display()
    );
    let fs = Fs::with_mount_name("ext4", &name);
    let a = fs.agent("ext4");
    a.expect("start", rc::SUCCESS);
    assert!(is_mounted(&fs.mnt), "mounted at the literal path");
    a.clone().check_level(20).expect("monitor", rc::SUCCESS);
    let mut h = Holder::new(&fs.mnt);
    a.expect("stop", rc::SUCCESS);
    assert!(h.is_dead());
    assert!(!is_mounted(&fs.mnt));
    assert!(!canary.exists(), "something was executed");
}

#[test]
fn mount_by_uuid_and_label() {
    let fs = Fs::new("none");
    support::sh(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-L",
            "ra-rs-lbl",
            "-U",
            "3f0d6c36-5b8e-4e8b-9a51-1c2d3e4f5a6b",
            fs.device(),
        ],
    );
    let uuid = fs
        .agent("ext4")
        .param("device", "-U 3f0d6c36-5b8e-4e8b-9a51-1c2d3e4f5a6b");
    uuid.expect("start", rc::SUCCESS);
    assert!(is_mounted(&fs.mnt));
    uuid.clone().check_level(10).expect("monitor", rc::SUCCESS);
    uuid.expect("stop", rc::SUCCESS);
    let label = fs.agent("ext4").param("device", "LABEL=ra-rs-lbl");
    label.expect("start", rc::SUCCESS);
    label.expect("monitor", rc::SUCCESS);
    label.expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&fs.mnt));
}

#[test]
fn another_filesystem_on_the_mount_point_is_not_ours() {
    let fs = Fs::new("ext4");
    std::fs::create_dir_all(&fs.mnt).unwrap();
    support::sh("mount", &["-t", "tmpfs", "tmpfs", fs.mnt.to_str().unwrap()]);
    let a = fs.agent("ext4");
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("start", rc::ERR_GENERIC)
        .stderr(contains("refusing to mount"));
    a.expect("stop", rc::SUCCESS);
    assert!(
        is_mounted(&fs.mnt),
        "stop must not unmount what is not ours"
    );
}

#[test]
fn local_filesystems_as_clones_need_force_clones() {
    let fs = Fs::new("ext4");
    let clone = fs
        .agent("ext4")
        .env("OCF_RESKEY_CRM_meta_clone_max", "2")
        .env("OCF_RESKEY_CRM_meta_clone", "0");
    clone
        .expect("start", rc::ERR_CONFIGURED)
        .stderr(contains("NOT cluster-aware"));
    assert!(!is_mounted(&fs.mnt));
    let forced = clone.clone().param("force_clones", "true");
    forced.expect("start", rc::SUCCESS);
    forced
        .clone()
        .check_level(20)
        .expect("monitor", rc::SUCCESS);
    let names: Vec<String> = std::fs::read_dir(fs.mnt.join(".Filesystem_status"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names[0].starts_with("fs1_0_"),
        "clone number in the status file name: {names:?}"
    );
    forced.expect("stop", rc::SUCCESS);
}

#[test]
fn bad_parameters_are_one_line_and_exit_6() {
    let dir = support::tempdir("fs-badparam");
    let base = Agent::new(BIN, dir.path())
        .param("device", "/dev/null")
        .param("directory", dir.path().join("m"))
        .param("fstype", "ext4");
    for action in ["start", "stop", "monitor", "validate-all"] {
        base.clone()
            .unset("OCF_RESKEY_device")
            .expect(action, rc::ERR_CONFIGURED)
            .stderr(contains(
                "ocf-exit-reason:required parameter 'device' is not set",
            ));
    }
    base.clone()
        .param("run_fsck", "sometimes")
        .expect("start", rc::ERR_CONFIGURED)
        .stderr(contains(
            "parameter 'run_fsck': 'sometimes' is not one of auto, force, no",
        ));
    // stop needs only the identity: the rest falls back with a warning
    // (tests/hostile_stop.rs)
    base.clone()
        .param("fast_stop", "perhaps")
        .expect("start", rc::ERR_CONFIGURED)
        .stderr(contains("'perhaps' is not a boolean"));
    base.clone()
        .param("fast_stop", "perhaps")
        .expect("stop", rc::SUCCESS)
        .stderr(contains("'perhaps' is malformed"));
    base.clone()
        .param("term_signals", "TERM NOSUCH")
        .expect("validate-all", rc::ERR_CONFIGURED)
        .stderr(contains("unknown signal NOSUCH"));
    base.clone()
        .param("directory", "/")
        .expect("start", rc::ERR_CONFIGURED);
    base.expect("frobnicate", rc::ERR_UNIMPLEMENTED);
    base.command(&[])
        .assert()
        .code(rc::ERR_ARGS)
        .stderr(contains("usage: Filesystem"));
}

#[test]
fn ocf_tester_hides_tools_probe_still_answers() {
    let dir = support::tempdir("fs-nobin");
    let a = Agent::new(BIN, dir.path())
        .env("OCF_TESTER_FAIL_HAVE_BINARY", "1")
        .param("device", "/dev/null")
        .param("directory", dir.path().join("m"))
        .param("fstype", "ext4");
    a.expect("meta-data", rc::SUCCESS);
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("start", rc::ERR_INSTALLED)
        .stderr(contains("required tool 'mount' not found"));
    a.expect("stop", rc::SUCCESS);
}

#[test]
fn ocf_tester_passes() {
    let fs = Fs::new("ext4");
    let (device, mnt) = (fs.device(), fs.mnt.to_string_lossy());
    let params = [("device", device), ("directory", &*mnt), ("fstype", "ext4")];
    support::ocf_tester("fs1", &params, BIN, |c| {
        c.env("HA_RSCTMP", fs.dir.path().join("rsctmp"));
    });
    assert!(!is_mounted(&fs.mnt));
}

#[test]
fn fsck_runs_as_run_fsck_says_and_a_broken_filesystem_fails_start() {
    let fs = Fs::new("ext4");
    // force: a healthy filesystem passes fsck and mounts
    let forced = fs.agent("ext4").param("run_fsck", "force");
    forced
        .expect("start", rc::SUCCESS)
        .stderr(contains("Starting filesystem check"));
    forced.expect("stop", rc::SUCCESS);
    // auto skips fsck for ext4
    fs.agent("ext4")
        .expect("start", rc::SUCCESS)
        .stderr(contains("Starting filesystem check").not());
    fs.agent("ext4").expect("stop", rc::SUCCESS);
    // a destroyed superblock: fsck exits >= 4, start fails, nothing mounted
    let zeros = vec![0u8; 64 * 1024];
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(fs.device())
            .unwrap();
        f.write_all_at(&zeros, 0).unwrap();
        f.sync_all().unwrap();
    }
    forced
        .expect("start", rc::ERR_GENERIC)
        .stderr(contains("ocf-exit-reason:Couldn't successfully fsck"));
    assert!(!is_mounted(&fs.mnt));
    fs.agent("ext4")
        .param("run_fsck", "no")
        .expect("start", rc::ERR_GENERIC);
    assert!(!is_mounted(&fs.mnt));
}

#[test]
fn admins_run_actions_with_dash_o_and_see_the_result_by_name() {
    let fs = Fs::new("ext4");
    let base = Agent::new(BIN, fs.dir.path());
    let args = |action: &'static str| {
        vec![
            action.to_string(),
            "-o".into(),
            format!("device={}", fs.device()),
            "-o".into(),
            format!("directory={}", fs.mnt.display()),
            "--param".into(),
            "fstype=ext4".into(),
        ]
    };
    let run = |action: &'static str| {
        let a = args(action);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        base.command(&a).assert()
    };
    run("start")
        .code(rc::SUCCESS)
        .stdout(contains("Filesystem start: OCF_SUCCESS (0)"));
    assert!(is_mounted(&fs.mnt));
    run("monitor")
        .code(rc::SUCCESS)
        .stdout(contains("OCF_SUCCESS"));
    run("stop").code(rc::SUCCESS);
    run("monitor")
        .code(rc::NOT_RUNNING)
        .stdout(contains("Filesystem monitor: OCF_NOT_RUNNING (7)"));
    base.command(&["--help"])
        .assert()
        .code(rc::SUCCESS)
        .stdout(contains("statusfile_prefix").and(contains("default \".Filesystem_status/\"")));
    base.command(&["monitor", "-o", "devcie=/dev/x"])
        .assert()
        .code(rc::ERR_ARGS)
        .stderr(contains("no parameter 'devcie'"));
}

#[test]
fn trace_ra_writes_decisions_and_commands_where_resource_agents_does() {
    let fs = Fs::new("ext4");
    let varlib = fs.dir.path().join("varlib");
    let a = fs
        .agent("ext4")
        .env("HA_VARLIB", &varlib)
        .param("trace_ra", "1");
    a.expect("start", rc::SUCCESS);
    let dir = varlib.join("trace_ra/Filesystem");
    let traces: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(traces.len(), 1, "{traces:?}");
    let name = traces[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.starts_with("fs1.start.20"), "{name}");
    let text = std::fs::read_to_string(&traces[0]).unwrap();
    // what ran, its parameters, every command and its result, at debug level
    // although HA_debug is not set
    assert!(text.contains("DEBUG: trace: Filesystem start"), "{text}");
    assert!(text.contains("parameter fstype=\"ext4\""), "{text}");
    assert!(
        text.contains("running: ") && text.contains("mount"),
        "{text}"
    );
    assert!(
        text.contains("finished: ") && text.contains("exit status: 0"),
        "{text}"
    );
    // trace_file: an absolute path
    let file = fs.dir.path().join("mine/stop.trace");
    a.clone()
        .param("trace_file", &file)
        .expect("stop", rc::SUCCESS);
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("trace: Filesystem stop"));
    // off: no new file
    a.clone()
        .param("trace_ra", "0")
        .expect("monitor", rc::NOT_RUNNING);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}
