//! Hostile input and faults (issue 13), as processes on real components.
//!
//! Each case is an attack or a breakage a cluster admin would call
//! critical because it gets a healthy node fenced (a stop that fails),
//! reports a running resource stopped (so the cluster starts it twice), or
//! makes root write where it should not. They run against what the agents
//! really touch: loop-backed ext4 mounted by the agent, an unprivileged
//! user (`nobody`) planting files in a world-writable mount, read-only
//! state directories, the `xl` test double for Xen. Each one failed before
//! the change that fixed it and stays here so it stays fixed:
//! - the depth-20 status file is never written or deleted through a
//!   symlink, FIFO or foreign directory, and never outside the mount;
//! - huge timeouts from the cluster manager do not panic an agent;
//! - a broken private state directory never blocks a stop or a probe;
//! - a mount of the right device with the wrong type is never "stopped";
//! - no parameter value ever lands where a tool reads options.
//!
//! Fixtures remove what they made in `Drop`, also when an assertion fails.

mod doubles;
mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{expect, is_mounted, rc, Agent, LoopDevice};

const FILESYSTEM: &str = env!("CARGO_BIN_EXE_Filesystem");
const FS_PERSONA: &str = env!("CARGO_BIN_EXE_fs");
const XEN: &str = env!("CARGO_BIN_EXE_Xen");

/// The kernel's host name: the node part of the status file name.
fn hostname() -> String {
    nix::unistd::gethostname().unwrap().into_string().unwrap()
}

/// `nobody`'s uid and gid.
fn nobody() -> (u32, u32) {
    let u = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("a nobody user");
    (u.uid.as_raw(), u.gid.as_raw())
}

/// Run `program args` as `nobody`, requiring success (the attacker's move).
#[track_caller]
fn as_nobody(program: &str, args: &[&std::ffi::OsStr]) {
    let (uid, gid) = nobody();
    let out = Command::new(program)
        .args(args)
        .uid(uid)
        .gid(gid)
        .current_dir("/")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "as nobody: {program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `nobody` makes directory `dir`.
#[track_caller]
fn nobody_mkdir(dir: &Path) {
    as_nobody("mkdir", &[dir.as_os_str()]);
}

/// `nobody` makes `link` a symlink to `target`.
#[track_caller]
fn nobody_symlink(target: &Path, link: &Path) {
    as_nobody("ln", &["-s".as_ref(), target.as_os_str(), link.as_os_str()]);
}

/// A loop-backed ext4 in a fresh directory that `nobody` may traverse, and
/// the Filesystem agent for it (instance `fs1`).
struct Fs {
    dir: tempfile::TempDir,
    dev: Option<LoopDevice>,
    mnt: PathBuf,
}

impl Fs {
    fn new(tag: &str) -> Fs {
        let dir = support::tempdir(&format!("hostile-{tag}"));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let dev = LoopDevice::new(dir.path(), 64, "ext4");
        Fs {
            mnt: dir.path().join("mnt"),
            dir,
            dev: Some(dev),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn device(&self) -> &str {
        &self.dev.as_ref().unwrap().device
    }

    fn agent(&self) -> Agent {
        Agent::new(FILESYSTEM, self.path())
            .env("OCF_RESOURCE_INSTANCE", "fs1")
            .env("OCF_RESKEY_CRM_meta_timeout", "20000")
            .param("device", self.device())
            .param("directory", &self.mnt)
            .param("fstype", "ext4")
    }

    /// Make the mounted filesystem's root world-writable (`1777`), as a
    /// shared scratch volume is.
    fn world_writable(&self) {
        assert!(is_mounted(&self.mnt));
        std::fs::set_permissions(&self.mnt, std::fs::Permissions::from_mode(0o1777)).unwrap();
    }

    /// A root-owned file outside the mount holding "precious".
    fn victim(&self, name: &str) -> PathBuf {
        let v = self.path().join(name);
        std::fs::write(&v, "precious").unwrap();
        v
    }
}

impl Drop for Fs {
    fn drop(&mut self) {
        support::unmount_tree(&self.mnt);
        self.dev.take();
    }
}

#[track_caller]
fn assert_untouched(victim: &Path) {
    let m = std::fs::symlink_metadata(victim).expect("the victim file still exists");
    assert_eq!(m.uid(), 0);
    assert_eq!(
        std::fs::read_to_string(victim).unwrap(),
        "precious",
        "{} was written through a planted link",
        victim.display()
    );
}

/// The status directory is root's own directory and the status file a
/// regular file in it, not what was planted.
#[track_caller]
fn assert_status_file_is_ours(dir: &Path, file: &str) {
    let d = std::fs::symlink_metadata(dir).unwrap();
    assert!(d.is_dir(), "{} is not a directory", dir.display());
    assert_eq!(d.uid(), 0, "{} is not root's", dir.display());
    let f = std::fs::symlink_metadata(dir.join(file)).unwrap();
    assert!(f.is_file(), "status file is not a regular file");
    assert_eq!(f.uid(), 0);
    assert_eq!(f.nlink(), 1);
}

// Part 2: the depth-20 status file cannot be turned against root.

#[test]
fn depth_20_never_writes_through_a_symlink_planted_by_another_user() {
    let fs = Fs::new("plant-link");
    let a = fs.agent();
    a.expect("start", rc::SUCCESS);
    fs.world_writable();
    let victim = fs.victim("victim");
    let status_dir = fs.mnt.join(".Filesystem_status");
    let file = format!("fs1_{}", hostname());
    nobody_mkdir(&status_dir);
    nobody_symlink(&victim, &status_dir.join(&file));
    let stderr = expect(&a.clone().check_level(20), "monitor", rc::SUCCESS);
    assert_untouched(&victim);
    assert!(
        stderr.contains("planted"),
        "the plant was not reported: {stderr}"
    );
    assert_status_file_is_ours(&status_dir, &file);
    a.clone().check_level(20).expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&fs.mnt));
    assert_untouched(&victim);
}

#[test]
fn a_foreign_status_directory_with_other_contents_is_left_alone_and_fails_depth_20() {
    let fs = Fs::new("plant-full");
    let a = fs.agent();
    a.expect("start", rc::SUCCESS);
    fs.world_writable();
    let status_dir = fs.mnt.join(".Filesystem_status");
    nobody_mkdir(&status_dir);
    nobody_mkdir(&status_dir.join("mine"));
    // not safe to clean: neither written into nor removed
    let stderr = expect(&a.clone().check_level(20), "monitor", rc::ERR_GENERIC);
    let reasons = support::exit_reasons(&stderr);
    assert_eq!(reasons.len(), 1, "{stderr}");
    assert!(reasons[0].contains(".Filesystem_status"), "{}", reasons[0]);
    assert_eq!(std::fs::read_dir(&status_dir).unwrap().count(), 1);
    assert_eq!(std::fs::metadata(&status_dir).unwrap().uid(), nobody().0);
    a.expect("monitor", rc::SUCCESS);
    a.clone().check_level(20).expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&fs.mnt));
}

#[test]
fn a_symlinked_status_directory_is_neither_written_nor_emptied() {
    let fs = Fs::new("plant-dir");
    let a = fs.agent();
    a.expect("start", rc::SUCCESS);
    fs.world_writable();
    let elsewhere = fs.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let file = format!("fs1_{}", hostname());
    let victim = elsewhere.join(&file);
    std::fs::write(&victim, "precious").unwrap();
    let status_dir = fs.mnt.join(".Filesystem_status");
    nobody_symlink(&elsewhere, &status_dir);
    a.clone().check_level(20).expect("monitor", rc::SUCCESS);
    assert_untouched(&victim);
    assert_status_file_is_ours(&status_dir, &file);
    // planted again after the monitor: stop removes nothing through it
    std::fs::remove_dir_all(&status_dir).unwrap();
    nobody_symlink(&elsewhere, &status_dir);
    a.clone().check_level(20).expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&fs.mnt));
    assert_untouched(&victim);
}

#[test]
fn a_fifo_as_the_status_file_is_replaced_and_the_monitor_answers() {
    let fs = Fs::new("fifo");
    let a = fs.agent().env("OCF_RESKEY_CRM_meta_timeout", "10000");
    a.expect("start", rc::SUCCESS);
    let status_dir = fs.mnt.join(".Filesystem_status");
    std::fs::create_dir(&status_dir).unwrap();
    let file = format!("fs1_{}", hostname());
    support::sh("mkfifo", &[status_dir.join(&file).to_str().unwrap()]);
    let t = std::time::Instant::now();
    let stderr = expect(&a.clone().check_level(20), "monitor", rc::SUCCESS);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "the monitor overran its timeout"
    );
    assert!(
        stderr.contains("FIFO"),
        "the FIFO was not reported: {stderr}"
    );
    assert_status_file_is_ours(&status_dir, &file);
    a.expect("stop", rc::SUCCESS);
}

#[test]
fn a_status_file_prefix_outside_the_mount_is_refused_but_stop_still_stops() {
    let fs = Fs::new("prefix");
    let outside = fs.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let absolute = format!("{}/", outside.display());
    let file = format!("fs1_{}", hostname());
    for (prefix, would_be) in [
        (absolute.as_str(), outside.join(&file)),
        ("../escape-", fs.path().join(format!("escape-{file}"))),
        ("st/../../up-", fs.path().join(format!("up-{file}"))),
    ] {
        let bad = fs.agent().param("statusfile_prefix", prefix);
        support::expect_reason(&bad, "start", rc::ERR_CONFIGURED, "statusfile_prefix");
        assert!(!is_mounted(&fs.mnt), "{prefix}: start mounted anyway");
        fs.agent().expect("start", rc::SUCCESS);
        support::expect_reason(
            &bad.clone().recurring().check_level(20),
            "monitor",
            rc::ERR_CONFIGURED,
            "statusfile_prefix",
        );
        bad.clone()
            .recurring()
            .expect("monitor", rc::ERR_CONFIGURED);
        // a probe (depth 0) needs no prefix (tests/hostile_stop.rs)
        bad.expect("monitor", rc::SUCCESS);
        assert!(!would_be.exists(), "{prefix}: wrote {}", would_be.display());
        // stop needs no prefix: it warns, skips the clean-up and unmounts
        bad.clone().check_level(20).expect("stop", rc::SUCCESS);
        assert!(!is_mounted(&fs.mnt), "{prefix}: stop left it mounted");
        assert!(!would_be.exists());
    }
}

#[test]
fn the_rgmanager_fs_persona_depth_20_never_writes_through_a_plant() {
    let fs = Fs::new("rgm-plant");
    let name = format!("hostile{}", std::process::id());
    // rgmanager's environment, but the lock in our directory rather than
    // /run/resource-agents (rgmanager passes no HA_RSCTMP)
    let a = support::rgmanager::agent(FS_PERSONA, "fs", &name, 30)
        .env("HA_RSCTMP", fs.path().join("rsctmp"))
        .param("mountpoint", &fs.mnt)
        .param("device", fs.device())
        .param("fstype", "ext4");
    a.expect("start", rc::SUCCESS);
    fs.world_writable();
    let victim = fs.victim("victim");
    let status_dir = fs.mnt.join(".Filesystem_status");
    let file = format!("fs:{name}_{}", hostname());
    nobody_mkdir(&status_dir);
    nobody_symlink(&victim, &status_dir.join(&file));
    // rgmanager schedules depth 20 every 60 s
    support::rgmanager::depth(&a, 20).expect("status", rc::SUCCESS);
    assert_untouched(&victim);
    assert_status_file_is_ours(&status_dir, &file);
    a.expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&fs.mnt));
    assert_untouched(&victim);
}

// Part 7: a timeout too large for the clock is capped, never a panic.

/// What a caller may pass as a timeout: the largest u64 in rgmanager's
/// seconds, and in Pacemaker's milliseconds.
const HUGE_TIMEOUTS: [(&str, &str); 2] = [
    ("OCF_RESKEY_RGMANAGER_meta_timeout", "18446744073709551615"),
    ("OCF_RESKEY_CRM_meta_timeout", "18446744073709551615"),
];

#[track_caller]
fn assert_no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("internal error"),
        "{stderr}"
    );
}

#[test]
fn huge_timeouts_stop_and_monitor_a_filesystem() {
    let fs = Fs::new("huge-timeout");
    for (key, value) in HUGE_TIMEOUTS {
        let a = fs
            .agent()
            .unset("OCF_RESKEY_CRM_meta_timeout")
            .env(key, value);
        assert_no_panic(&expect(&a, "monitor", rc::NOT_RUNNING));
        fs.agent().expect("start", rc::SUCCESS);
        assert_no_panic(&expect(&a, "monitor", rc::SUCCESS));
        assert_no_panic(&expect(&a.clone().check_level(20), "monitor", rc::SUCCESS));
        assert_no_panic(&expect(&a, "stop", rc::SUCCESS));
        assert!(!is_mounted(&fs.mnt), "{key}: stop left it mounted");
    }
}

#[test]
fn huge_timeouts_stop_and_monitor_a_xen_guest() {
    let dir = support::tempdir("hostile-xen");
    let xen = doubles::XenHost::new(dir.path());
    let xmfile = doubles::vm1_xmfile(dir.path());
    let agent = Agent::new(XEN, dir.path())
        .env("PATH", &xen.path)
        .env("XL_DOUBLE_STATE", &xen.state)
        .env("OCF_RESOURCE_INSTANCE", "vm1")
        .param("xmfile", &xmfile);
    let listed = || xen.vm1_listed();
    for (key, value) in HUGE_TIMEOUTS {
        let a = agent.clone().env(key, value);
        agent.expect("start", rc::SUCCESS);
        assert!(listed());
        assert_no_panic(&expect(&a, "monitor", rc::SUCCESS));
        assert_no_panic(&expect(&a, "stop", rc::SUCCESS));
        assert!(!listed(), "{key}: stop left the guest running");
        assert_no_panic(&expect(&a, "monitor", rc::NOT_RUNNING));
    }
}

// Part 5: a broken private state directory never blocks a stop or a probe.

/// Stop of a mounted filesystem returns 0 and unmounts it; probes say 0
/// while it is mounted and 7 after, all through `broken` (an agent whose
/// state directory cannot be used), each with the one warning.
#[track_caller]
fn stop_and_probe_go_on(fs: &Fs, broken: &Agent) {
    fs.agent().expect("start", rc::SUCCESS);
    let stderr = expect(broken, "monitor", rc::SUCCESS);
    assert!(stderr.contains("without the instance lock"), "{stderr}");
    let stderr = expect(broken, "stop", rc::SUCCESS);
    assert!(stderr.contains("without the instance lock"), "{stderr}");
    assert!(!is_mounted(&fs.mnt), "stop left it mounted");
    expect(broken, "monitor", rc::NOT_RUNNING);
}

#[test]
fn a_read_only_state_directory_does_not_block_stop_or_probe() {
    let fs = Fs::new("rsctmp-ro");
    let rsctmp = fs.path().join("rsctmp-ro");
    std::fs::create_dir(&rsctmp).unwrap();
    // unmounted with the fixture (LoopDevice unmounts under its directory)
    support::sh(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "ro,size=1m",
            "tmpfs",
            rsctmp.to_str().unwrap(),
        ],
    );
    let broken = fs.agent().env("HA_RSCTMP", &rsctmp);
    stop_and_probe_go_on(&fs, &broken);
    // start relies on the lock: it refuses
    support::expect_reason(&broken, "start", rc::ERR_GENERIC, "state directory");
    assert!(!is_mounted(&fs.mnt));
}

#[test]
fn a_state_directory_made_by_another_user_is_refused_by_start_only() {
    let fs = Fs::new("rsctmp-foreign");
    let rsctmp = fs.path().join("rsctmp-shared");
    std::fs::create_dir(&rsctmp).unwrap();
    std::fs::set_permissions(&rsctmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    nobody_mkdir(&rsctmp.join("heartbeat-rs"));
    let broken = fs.agent().env("HA_RSCTMP", &rsctmp);
    stop_and_probe_go_on(&fs, &broken);
    support::expect_reason(&broken, "start", rc::ERR_GENERIC, "not a private directory");
    assert!(!is_mounted(&fs.mnt));
    fs.agent().expect("start", rc::SUCCESS);
    support::expect_reason(
        &broken.clone().recurring(),
        "monitor",
        rc::ERR_GENERIC,
        "not a private directory",
    );
    // nothing of nobody's was used or changed
    let m = std::fs::symlink_metadata(rsctmp.join("heartbeat-rs")).unwrap();
    assert_eq!(m.uid(), nobody().0);
    assert_eq!(
        std::fs::read_dir(rsctmp.join("heartbeat-rs"))
            .unwrap()
            .count(),
        0
    );
    fs.agent().expect("stop", rc::SUCCESS);
}

#[test]
fn an_instance_name_of_250_characters_still_locks_starts_and_stops() {
    let fs = Fs::new("long-name");
    let a = fs.agent().env("OCF_RESOURCE_INSTANCE", "f".repeat(250));
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("start", rc::SUCCESS);
    a.expect("monitor", rc::SUCCESS);
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    let stderr = expect(&a, "stop", rc::SUCCESS);
    assert!(!stderr.contains("without the instance lock"), "{stderr}");
    assert!(!is_mounted(&fs.mnt));
    a.expect("monitor", rc::NOT_RUNNING);
    // the lock was taken under a name that fits (else stop would have
    // warned above), and its file went with it: nothing piles up
    let locks: Vec<_> = std::fs::read_dir(fs.path().join("rsctmp/heartbeat-rs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".lock"))
        .collect();
    assert!(locks.is_empty(), "{locks:?}");
}

#[test]
fn a_state_directory_path_that_is_not_utf8_is_used_as_given() {
    use std::os::unix::ffi::OsStrExt;
    let fs = Fs::new("rsctmp-raw");
    let raw = fs.path().join(std::ffi::OsStr::from_bytes(b"rsc-\xff-tmp"));
    let a = fs.agent().env("HA_RSCTMP", &raw);
    a.expect("start", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    assert!(
        raw.join("heartbeat-rs").is_dir(),
        "the state directory went elsewhere"
    );
}

// Part 6: a monitor never calls a possibly-running resource stopped.

#[test]
fn our_device_mounted_as_another_type_is_running_but_wrong_never_stopped() {
    let fs = Fs::new("wrong-type");
    std::fs::create_dir(&fs.mnt).unwrap();
    // the ext4 device, configured as xfs, mounted behind the agent's back
    support::sh(
        "mount",
        &["-t", "ext4", fs.device(), fs.mnt.to_str().unwrap()],
    );
    let a = fs.agent().param("fstype", "xfs");
    for probe_or_not in [a.clone(), a.clone().recurring()] {
        let stderr = expect(&probe_or_not, "monitor", rc::ERR_GENERIC);
        let reasons = support::exit_reasons(&stderr);
        assert_eq!(reasons.len(), 1, "{stderr}");
        assert!(
            reasons[0].contains("ext4") && reasons[0].contains("xfs"),
            "both types named: {}",
            reasons[0]
        );
    }
    a.expect("status", rc::ERR_GENERIC);
    a.expect("start", rc::ERR_GENERIC);
    assert!(is_mounted(&fs.mnt));
    // it is ours: stop unmounts it, so the cluster may mount it elsewhere
    a.expect("stop", rc::SUCCESS);
    assert!(!is_mounted(&fs.mnt), "stop left our device mounted");
    a.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn another_filesystem_on_the_mount_point_is_named_with_what_differs() {
    let fs = Fs::new("foreign");
    std::fs::create_dir(&fs.mnt).unwrap();
    support::sh(
        "mount",
        &["-t", "tmpfs", "scratch", fs.mnt.to_str().unwrap()],
    );
    let a = fs.agent();
    let stderr = expect(&a, "monitor", rc::NOT_RUNNING);
    let line = stderr
        .lines()
        .find(|l| l.contains("another filesystem"))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    assert!(
        line.contains("scratch") && line.contains(fs.device()),
        "{line}"
    );
    assert!(line.contains("type tmpfs instead of ext4"), "{line}");
    a.expect("stop", rc::SUCCESS);
    assert!(
        is_mounted(&fs.mnt),
        "stop must not unmount what is not ours"
    );
}

// Part 3: no value becomes an option of a tool.

/// A directory of wrappers, first in the agent's `PATH`, that record each
/// call's argv (one line, arguments separated by 0x1f) and run the real
/// tool with it.
struct Recorder {
    bin: PathBuf,
    log: PathBuf,
}

const RECORDED: &[&str] = &[
    "mount", "umount", "modprobe", "fsck", "blkid", "blockdev", "udevadm",
];

impl Recorder {
    fn new(dir: &Path) -> Recorder {
        let bin = dir.join("recording-bin");
        std::fs::create_dir(&bin).unwrap();
        let log = dir.join("argv.log");
        for tool in RECORDED {
            let Some(real) = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(tool))
                .find(|p| p.is_file())
            else {
                continue; // not installed: the agent cannot find it either
            };
            let script = format!(
                "#!/bin/sh\n{{ printf '%s' {tool}; for a in \"$@\"; do printf '\\037%s' \"$a\"; done; printf '\\n'; }} >> '{}'\nexec '{}' \"$@\"\n",
                log.display(),
                real.display()
            );
            let w = bin.join(tool);
            std::fs::write(&w, script).unwrap();
            std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Recorder { bin, log }
    }

    fn path(&self) -> String {
        format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", self.bin.display())
    }

    /// Every recorded call: the tool, then its arguments.
    fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split('\u{1f}').map(str::to_string).collect())
            .collect()
    }

    fn clear(&self) {
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The calls of `tool`.
fn calls_of(calls: &[Vec<String>], tool: &str) -> Vec<Vec<String>> {
    calls.iter().filter(|c| c[0] == tool).cloned().collect()
}

#[test]
fn option_shaped_identity_values_never_reach_a_tool() {
    let fs = Fs::new("inject");
    let rec = Recorder::new(fs.path());
    // an attacker's fstab naming our device on our mount point: with
    // device=-T<fstab>, mount(8) would read it and mount what it names
    let fstab = fs.path().join("evil.fstab");
    std::fs::write(
        &fstab,
        format!("{} {} ext4 defaults 0 0\n", fs.device(), fs.mnt.display()),
    )
    .unwrap();
    std::fs::create_dir(&fs.mnt).unwrap();
    let dash_t = format!("-T{}", fstab.display());
    let base = fs.agent().env("PATH", rec.path());
    // What heartbeat's Filesystem answers for each: start 5 (OCF_ERR_INSTALLED,
    // "Couldn't find device [..]. Expected /dev/??? to exist" for the
    // devices, "failed to load kernel module" for fstype=-r, after running
    // `modprobe -r`), probe 7 and stop 0 (nothing is mounted). Ours give
    // the same codes without running any tool with the value.
    let cases = [
        ("device", dash_t.as_str()),
        ("device", "-o remount,ro"),
        ("device", "--bind"),
        ("fstype", "-r"),
    ];
    for (param, value) in cases {
        rec.clear();
        let a = base.clone().param(param, value);
        support::expect_reason(&a, "start", rc::ERR_INSTALLED, param);
        assert!(!is_mounted(&fs.mnt), "{param}={value}: start mounted");
        a.expect("validate-all", rc::ERR_INSTALLED);
        a.expect("monitor", rc::NOT_RUNNING);
        a.expect("stop", rc::SUCCESS);
        let calls = rec.calls();
        assert!(
            !calls.iter().flatten().any(|arg| arg == value),
            "{param}={value} reached a tool: {calls:?}"
        );
    }
}

#[test]
fn operands_follow_double_dash_on_every_tool_that_takes_it() {
    let fs = Fs::new("dashdash");
    let rec = Recorder::new(fs.path());
    let a = fs.agent().env("PATH", rec.path());
    let dir = fs.mnt.to_str().unwrap().to_string();
    let dev = fs.device().to_string();
    a.expect("start", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    let calls = rec.calls();
    let mount = calls_of(&calls, "mount");
    assert_eq!(mount.len(), 1, "{calls:?}");
    assert!(
        mount[0].ends_with(&["--".into(), dev.clone(), dir.clone()]),
        "{mount:?}"
    );
    let umount = calls_of(&calls, "umount");
    assert!(!umount.is_empty(), "{calls:?}");
    for u in &umount {
        assert!(u.ends_with(&["--".into(), dir.clone()]), "{u:?}");
    }
    // by UUID: -U takes the UUID as its argument, the mount point follows --
    let uuid = support::sh("blkid", &["-s", "UUID", "-o", "value", &dev])
        .trim()
        .to_string();
    rec.clear();
    let by_uuid = a.clone().param("device", format!("UUID={uuid}"));
    by_uuid.expect("start", rc::SUCCESS);
    by_uuid.expect("stop", rc::SUCCESS);
    let mount = calls_of(&rec.calls(), "mount");
    assert_eq!(mount.len(), 1, "{mount:?}");
    assert!(
        mount[0].ends_with(&["-U".into(), uuid.clone(), "--".into(), dir.clone()]),
        "{mount:?}"
    );
    // a type the kernel does not know yet: modprobe gets it after --
    rec.clear();
    let unknown = a.clone().param("fstype", "nosuchfs0");
    unknown.expect("start", rc::ERR_INSTALLED);
    let modprobe = calls_of(&rec.calls(), "modprobe");
    assert_eq!(
        modprobe,
        vec![vec![
            "modprobe".to_string(),
            "--".into(),
            "nosuchfs0".into()
        ]]
    );
}
