//! iscsi against a real iSCSI target and the open-iscsi initiator, inside a
//! guest kernel (`support::guest`: one boot for every `guest_*` case).
//!
//! The target is LIO, set up by hand through configfs (no targetcli: it
//! needs D-Bus and takes seconds per call under TCG), exporting a
//! loop-backed LUN on 127.0.0.1; iscsid is started by the first case that
//! needs it. Every case has its own target IQN, loop device and ports, and
//! its [`Target`] fixture logs out every session of that IQN, deletes the
//! node and discovery records, removes the LIO configuration and detaches
//! the loop in `Drop`, which also runs when an assertion fails.
//!
//! Cases that need no iSCSI (parameter errors) run on the host.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ocf::procs;

use support::guest::{in_guest, PATH};
use support::{
    bench_line, bench_start_stop, exit_reasons, expect, local_copy, monitor_median_ms,
    program_median_ms, rc, run, Agent, LoopDevice,
};

const ISCSI: &str = env!("CARGO_BIN_EXE_iscsi");
const HB_ISCSI: &str = "/usr/lib/ocf/resource.d/heartbeat/iscsi";
const CFS: &str = "/sys/kernel/config/target";

// ---------------------------------------------------------------------------
// Host side.

#[test]
fn iscsi_suite_in_guest_kernel() {
    support::guest::run(&support::guest::Suite {
        name: "iscsi",
        modules: "kernel/drivers/target/iscsi",
        env: &[],
        setup: "modprobe -a configfs target_core_mod target_core_iblock iscsi_target_mod \
                scsi_transport_iscsi libiscsi libiscsi_tcp iscsi_tcp sd_mod loop; \
                mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config",
        limit: Duration::from_secs(15 * 60),
    });
}

/// Require 6 with one exit reason containing `needle`, for every action
/// (a malformed portal or target: what names the session).
#[track_caller]
fn expect_configured(agent: &Agent, needle: &str) {
    expect_configured_for(agent, needle, &["start", "stop", "monitor", "validate-all"]);
}

/// A malformed value stop and probes do not need: 6 for start, a recurring
/// monitor and validate-all; stop and a probe of a session that does not
/// exist answer with the default and a warning (tests/hostile_stop.rs).
#[track_caller]
fn expect_configured_but_stop(agent: &Agent, needle: &str) {
    expect_configured_for(&agent.clone().recurring(), needle, &["monitor"]);
    expect_configured_for(agent, needle, &["start", "validate-all"]);
    expect(agent, "stop", rc::SUCCESS);
    expect(agent, "monitor", rc::NOT_RUNNING);
}

#[track_caller]
fn expect_configured_for(agent: &Agent, needle: &str, actions: &[&str]) {
    for &action in actions {
        let stderr = expect(agent, action, rc::ERR_CONFIGURED);
        let reasons = exit_reasons(&stderr);
        assert!(
            reasons.len() == 1 && reasons[0].contains(needle),
            "{action}: wanted one exit reason with {needle:?}: {stderr}"
        );
    }
}

#[test]
fn missing_or_malformed_parameters_are_6_with_one_line() {
    let dir = support::tempdir("iscsi-params");
    let base = Agent::new(ISCSI, dir.path());
    let t = "iqn.2003-01.org.example:t1";
    expect_configured(&base.clone().param("target", t), "'portal' is not set");
    expect_configured(
        &base.clone().param("portal", "127.0.0.1"),
        "'target' is not set",
    );
    let ok = base.param("target", t).param("portal", "127.0.0.1:3260");
    for bad in ["127.0.0.1:", "127.0.0.1:port", "[fe80::1", "a b"] {
        expect_configured(&ok.clone().param("portal", bad), "parameter 'portal'");
    }
    expect_configured_but_stop(
        &ok.clone().param("discovery_type", "dns"),
        "parameter 'discovery_type'",
    );
    expect_configured(&ok.clone().param("target", "iqn.x y"), "parameter 'target'");
    expect_configured_but_stop(&ok.clone().param("try_recovery", "maybe"), "try_recovery");
    let stderr = expect(&ok.clone().check_level(10), "monitor", rc::ERR_CONFIGURED);
    assert!(stderr.contains("depth 10"), "{stderr}");
}

#[test]
fn probe_and_stop_without_any_session_need_no_tool() {
    if in_guest() {
        return;
    }
    let dir = support::tempdir("iscsi-notool");
    let a = Agent::new(ISCSI, dir.path())
        .param("target", "iqn.2003-01.org.example:nothing-here")
        .param("portal", "127.0.0.1")
        .param("iscsiadm", "/nonexistent/iscsiadm");
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&a, "stop", rc::SUCCESS);
    expect(
        &a.clone().env("OCF_TESTER_FAIL_HAVE_BINARY", "1"),
        "monitor",
        rc::NOT_RUNNING,
    );
    let stderr = expect(&a, "start", rc::ERR_INSTALLED);
    assert!(stderr.contains("/nonexistent/iscsiadm"), "{stderr}");
}

// ---------------------------------------------------------------------------
// Guest side: fixtures.

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Run a command, ignoring how it ends (cleanup).
fn quiet(program: &str, args: &[&str]) {
    let _ = Command::new(program).args(args).output();
}

fn iscsiadm(args: &[&str]) -> std::process::Output {
    Command::new("iscsiadm").args(args).output().unwrap()
}

fn process_pids(name: &str) -> Vec<i32> {
    procs::pids()
        .into_iter()
        .filter(|&p| procs::comm(p).is_some_and(|c| c == name))
        .collect()
}

/// Start iscsid (it daemonizes) unless it runs; wait until it answers.
fn ensure_iscsid() {
    if process_pids("iscsid").is_empty() {
        support::sh("iscsid", &[]);
    }
    let t = Instant::now();
    while !Path::new("/run/iscsid.pid").exists() || process_pids("iscsid").is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "iscsid did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write(path: &Path, value: &str) {
    std::fs::write(path, value).unwrap_or_else(|e| panic!("write {value:?} to {path:?}: {e}"));
}

/// An LIO iSCSI target with one LUN on a loop device, on the portals
/// given, torn down (with every initiator record of it) on drop.
struct Target {
    iqn: String,
    portals: Vec<String>,
    backstore: PathBuf,
    removed: bool,
    _loop: LoopDevice,
    dir: tempfile::TempDir,
}

impl Target {
    fn new(label: &str, portals: &[&str]) -> Target {
        assert!(
            in_guest(),
            "guest_* cases need LIO and iSCSI: they run inside the guest kernel (iscsi_suite_in_guest_kernel)"
        );
        ensure_iscsid();
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let iqn = format!(
            "iqn.2003-01.org.resource-agents-rs:{label}-{}{n}",
            std::process::id() % 1000
        );
        let dir = support::tempdir(label);
        let lo = LoopDevice::new(dir.path(), 64, "none");
        let backstore = Path::new(CFS).join(format!("core/iblock_{n}/{label}"));
        let t = Target {
            iqn,
            portals: portals.iter().map(|p| p.to_string()).collect(),
            backstore,
            removed: false,
            _loop: lo,
            dir,
        };
        std::fs::create_dir_all(&t.backstore).unwrap();
        write(
            &t.backstore.join("control"),
            &format!("udev_path={}", t._loop.device),
        );
        write(&t.backstore.join("enable"), "1");
        let tpg = t.tpg();
        std::fs::create_dir_all(tpg.join("lun/lun_0")).unwrap();
        for p in &t.portals {
            std::fs::create_dir_all(tpg.join("np").join(p)).unwrap();
        }
        std::os::unix::fs::symlink(&t.backstore, tpg.join("lun/lun_0/lnk0")).unwrap();
        for (attr, v) in [
            ("authentication", "0"),
            ("generate_node_acls", "1"),
            ("cache_dynamic_acls", "1"),
            ("demo_mode_write_protect", "0"),
        ] {
            write(&tpg.join("attrib").join(attr), v);
        }
        t.enable(true);
        t
    }

    fn tpg(&self) -> PathBuf {
        Path::new(CFS).join("iscsi").join(&self.iqn).join("tpgt_1")
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Enable or disable the portal group: disabling drops every session
    /// (the initiator keeps trying to recover).
    fn enable(&self, on: bool) {
        write(&self.tpg().join("enable"), if on { "1" } else { "0" });
    }

    /// Remove the target from LIO (sessions to it fail for good).
    fn remove(&mut self) {
        if self.removed {
            return;
        }
        self.removed = true;
        let tpg = self.tpg();
        let _ = std::fs::write(tpg.join("enable"), "0");
        let _ = std::fs::remove_file(tpg.join("lun/lun_0/lnk0"));
        let _ = std::fs::remove_dir(tpg.join("lun/lun_0"));
        for p in &self.portals {
            let _ = std::fs::remove_dir(tpg.join("np").join(p));
        }
        let _ = std::fs::remove_dir(&tpg);
        let _ = std::fs::remove_dir(tpg.parent().unwrap());
        let _ = std::fs::remove_dir(&self.backstore);
        let _ = std::fs::remove_dir(self.backstore.parent().unwrap());
    }

    fn agent(&self, portal: &str) -> Agent {
        Agent::new(ISCSI, self.path())
            .env("OCF_RESOURCE_INSTANCE", format!("isc-{portal}"))
            .env("OCF_RESKEY_CRM_meta_timeout", "60000")
            .param("portal", portal)
            .param("target", self.iqn.as_str())
    }

    /// Our sessions in sysfs: (sid, state, persistent address:port).
    fn sessions(&self) -> Vec<(u32, String, String)> {
        let mut out = Vec::new();
        let Ok(dir) = std::fs::read_dir("/sys/class/iscsi_session") else {
            return out;
        };
        for e in dir.flatten() {
            let p = e.path();
            let read = |f: &Path| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            };
            if read(&p.join("targetname")) != self.iqn {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let sid: u32 = name.trim_start_matches("session").parse().unwrap();
            let conn = Path::new("/sys/class/iscsi_connection").join(format!("connection{sid}:0"));
            out.push((
                sid,
                read(&p.join("state")),
                format!(
                    "{}:{}",
                    read(&conn.join("persistent_address")),
                    read(&conn.join("persistent_port"))
                ),
            ));
        }
        out.sort();
        out
    }

    /// Wait (at most `secs`) until every session is in `state`.
    #[track_caller]
    fn wait_state(&self, state: &str, secs: u64) {
        let t = Instant::now();
        loop {
            let s = self.sessions();
            if !s.is_empty() && s.iter().all(|(_, st, _)| st == state) {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(secs),
                "sessions did not become {state}: {s:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The disk (`/dev/sdX`) of our session at `portal`.
    fn disk(&self, portal: &str) -> String {
        let (sid, _, _) = self
            .sessions()
            .into_iter()
            .find(|(_, _, p)| p == portal)
            .unwrap_or_else(|| panic!("no session at {portal}: {:?}", self.sessions()));
        let dev = PathBuf::from(format!("/sys/class/iscsi_session/session{sid}/device"));
        let t = Instant::now();
        loop {
            for t in std::fs::read_dir(&dev).unwrap().flatten() {
                if !t.file_name().to_string_lossy().starts_with("target") {
                    continue;
                }
                for lun in std::fs::read_dir(t.path()).unwrap().flatten() {
                    if let Ok(mut b) = std::fs::read_dir(lun.path().join("block")) {
                        if let Some(b) = b.next() {
                            return format!("/dev/{}", b.unwrap().file_name().to_string_lossy());
                        }
                    }
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "no disk for session {sid}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn node_record(&self, portal: &str) -> Option<String> {
        let out = iscsiadm(&["-m", "node", "-T", &self.iqn, "-p", portal]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        support::unmount_tree(self.path());
        for (sid, _, _) in self.sessions() {
            quiet("iscsiadm", &["-m", "session", "-r", &sid.to_string(), "-u"]);
        }
        quiet("iscsiadm", &["-m", "node", "-T", &self.iqn, "-o", "delete"]);
        for p in &self.portals {
            quiet(
                "iscsiadm",
                &["-m", "discoverydb", "-t", "st", "-p", p, "-o", "delete"],
            );
        }
        self.remove();
        // then the loop device (field drop)
    }
}

/// The records discovery at `portal` left, whatever their target.
fn discovered_targets(portal: &str) -> Vec<String> {
    let out = iscsiadm(&["-m", "node"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(&format!("{portal},")))
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect()
}

// ---------------------------------------------------------------------------
// Guest side: cases.

#[test]
#[ignore = "runs inside the guest kernel: see iscsi_suite_in_guest_kernel"]
fn guest_lifecycle_disk_and_node_record_kept() {
    let t = Target::new("life", &["127.0.0.1:3260"]);
    let portal = "127.0.0.1:3260";
    // No port: 3260, and only 3260.
    let a = t.agent("127.0.0.1");
    assert!(t.node_record(portal).is_none());
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&a.clone().recurring(), "monitor", rc::NOT_RUNNING);
    expect(&a, "validate-all", rc::SUCCESS);
    expect(&a, "start", rc::SUCCESS);
    assert_eq!(t.sessions().len(), 1, "{:?}", t.sessions());
    assert_eq!(t.sessions()[0].2, portal);
    assert!(t.node_record(portal).is_some(), "discovery made the record");
    // udev=yes: the by-path link exists when start returns
    let links: Vec<String> = std::fs::read_dir("/dev/disk/by-path")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&t.iqn))
        .collect();
    assert!(
        links
            .iter()
            .any(|l| l.starts_with(&format!("ip-{portal}-iscsi-{}", t.iqn))),
        "{links:?}"
    );
    expect(&a, "monitor", rc::SUCCESS);
    expect(&a.clone().recurring(), "monitor", rc::SUCCESS);
    expect(&a, "status", rc::SUCCESS);
    expect(&a, "start", rc::SUCCESS);
    assert_eq!(t.sessions().len(), 1, "double start made a second session");

    // mkfs + mount + write + read on the LUN
    let disk = t.disk(portal);
    support::sh("mkfs.ext4", &["-q", "-F", &disk]);
    let mnt = t.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    support::sh("mount", &[&disk, mnt.to_str().unwrap()]);
    std::fs::write(mnt.join("hello"), "over iSCSI").unwrap();
    support::sh("umount", &[mnt.to_str().unwrap()]);
    support::sh("mount", &[&disk, mnt.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(mnt.join("hello")).unwrap(),
        "over iSCSI"
    );
    support::sh("umount", &[mnt.to_str().unwrap()]);

    expect(&a, "stop", rc::SUCCESS);
    assert!(t.sessions().is_empty(), "{:?}", t.sessions());
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&a, "stop", rc::SUCCESS);
    expect(&a, "monitor", rc::NOT_RUNNING);

    // A record that exists is used as it is: no discovery rewrites it.
    support::sh(
        "iscsiadm",
        &[
            "-m",
            "node",
            "-T",
            &t.iqn,
            "-p",
            portal,
            "-o",
            "update",
            "-n",
            "node.session.queue_depth",
            "-v",
            "77",
        ],
    );
    expect(&a, "start", rc::SUCCESS);
    let record = t.node_record(portal).unwrap();
    assert!(
        record.contains("node.session.queue_depth = 77"),
        "the node record was rewritten:\n{record}"
    );
    expect(&a, "stop", rc::SUCCESS);
}

/// Set `key` of the node record of `iqn` at `portal`.
fn update_record(iqn: &str, portal: &str, key: &str, value: &str) {
    support::sh(
        "iscsiadm",
        &[
            "-m", "node", "-T", iqn, "-p", portal, "-o", "update", "-n", key, "-v", value,
        ],
    );
}

#[test]
#[ignore = "runs inside the guest kernel: see iscsi_suite_in_guest_kernel"]
fn guest_chap_login_and_secrets_never_reach_the_logs() {
    let t = Target::new("chap", &["127.0.0.1:3302"]);
    let portal = "127.0.0.1:3302";
    let secret = "Sup3rSecretChapValue";
    let wrong = "Wr0ngSecretChapValue";
    // The target demands CHAP (demo-mode ACLs authenticate with the
    // portal group's credentials).
    write(&t.tpg().join("auth/userid"), "ra-user");
    write(&t.tpg().join("auth/password"), secret);
    write(&t.tpg().join("attrib/authentication"), "1");
    // The admin made the node record and put the credentials in it.
    support::sh("iscsiadm", &["-m", "discovery", "-t", "st", "-p", portal]);
    update_record(&t.iqn, portal, "node.session.auth.authmethod", "CHAP");
    update_record(&t.iqn, portal, "node.session.auth.username", "ra-user");
    update_record(&t.iqn, portal, "node.session.auth.password", secret);
    let log = t.path().join("ha-debug.log");
    let a = t
        .agent(portal)
        .env("HA_debug", "1")
        .env("HA_LOGFILE", &log)
        .env("HA_DEBUGLOG", &log);
    let mut all = String::new();
    for (action, want) in [
        ("start", 0),
        ("monitor", 0),
        ("start", 0),
        ("stop", 0),
        ("monitor", 7),
    ] {
        let (code, out, err) = run(&a, action);
        assert_eq!(code, want, "{action}: {err}");
        all.push_str(&out);
        all.push_str(&err);
    }
    // the record kept the credentials (never rewritten)
    let record = t.node_record(portal).unwrap();
    assert!(
        record.contains("node.session.auth.authmethod = CHAP"),
        "{record}"
    );
    // a wrong password: the login fails, and neither secret is shown
    update_record(&t.iqn, portal, "node.session.auth.password", wrong);
    let (code, out, err) = run(
        &a.clone().env("OCF_RESKEY_CRM_meta_timeout", "30000"),
        "start",
    );
    assert_eq!(code, rc::ERR_GENERIC, "login with a wrong password: {err}");
    assert!(err.contains("login to"), "{err}");
    all.push_str(&out);
    all.push_str(&err);
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("-m node"),
        "debug log lacks iscsiadm: {logged}"
    );
    for s in [secret, wrong] {
        assert!(
            !all.contains(s) && !logged.contains(s),
            "secret leaked:\n{all}\n{logged}"
        );
    }
    assert!(t.sessions().is_empty(), "{:?}", t.sessions());
}

#[test]
#[ignore = "runs inside the guest kernel: see iscsi_suite_in_guest_kernel"]
fn guest_unknown_target_dead_portal_and_missing_tools() {
    let t = Target::new("unknown", &["127.0.0.1:3304"]);
    let portal = "127.0.0.1:3304";
    // an existing record of another target at that portal, tuned by hand
    support::sh("iscsiadm", &["-m", "discovery", "-t", "st", "-p", portal]);
    update_record(&t.iqn, portal, "node.session.queue_depth", "77");
    let nosuch = t
        .agent(portal)
        .param("target", "iqn.2003-01.org.example:nosuch");
    let stderr = expect(&nosuch, "start", rc::ERR_GENERIC);
    assert!(stderr.contains("not found at portal"), "{stderr}");
    // discovery (-o new) only adds records: none for the unknown target,
    // and the existing one is not rewritten
    assert_eq!(discovered_targets(portal), vec![t.iqn.clone()]);
    let record = t.node_record(portal).unwrap();
    assert!(
        record.contains("node.session.queue_depth = 77"),
        "discovery rewrote an existing record:\n{record}"
    );
    expect(&nosuch, "monitor", rc::NOT_RUNNING);
    expect(&nosuch, "stop", rc::SUCCESS);

    // nothing listens there: an error inside the timeout
    let dead = t
        .agent("127.0.0.1:3999")
        .env("OCF_RESKEY_CRM_meta_timeout", "20000");
    let t0 = Instant::now();
    let (code, _, stderr) = run(&dead, "start");
    assert_eq!(code, rc::ERR_GENERIC, "{stderr}");
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    quiet(
        "iscsiadm",
        &[
            "-m",
            "discoverydb",
            "-t",
            "st",
            "-p",
            "127.0.0.1:3999",
            "-o",
            "delete",
        ],
    );

    // no portal -> 6, even with iSCSI up
    let noportal = t.agent(portal).unset("OCF_RESKEY_portal");
    expect(&noportal, "start", rc::ERR_CONFIGURED);
    expect(&noportal, "monitor", rc::ERR_CONFIGURED);

    // iscsiadm missing: start 5, probe 7, stop 0
    let notool = t.agent(portal).param("iscsiadm", "/nonexistent/iscsiadm");
    expect(&notool, "start", rc::ERR_INSTALLED);
    expect(&notool, "validate-all", rc::ERR_INSTALLED);
    expect(&notool, "monitor", rc::NOT_RUNNING);
    expect(&notool, "stop", rc::SUCCESS);
    assert!(t.sessions().is_empty());
}

/// Kills iscsid for a case and starts it again on drop.
struct IscsidDown;

impl IscsidDown {
    fn new() -> IscsidDown {
        for pid in process_pids("iscsid") {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let t = Instant::now();
        while !process_pids("iscsid").is_empty() {
            assert!(t.elapsed() < Duration::from_secs(20), "iscsid did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_file("/run/iscsid.pid");
        IscsidDown
    }
}

impl Drop for IscsidDown {
    fn drop(&mut self) {
        ensure_iscsid();
    }
}

#[test]
#[ignore = "runs inside the guest kernel: see iscsi_suite_in_guest_kernel"]
fn guest_iscsid_not_running() {
    let t = Target::new("noiscsid", &["127.0.0.1:3306"]);
    let a = t.agent("127.0.0.1:3306");
    let down = IscsidDown::new();
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&a, "stop", rc::SUCCESS);
    // Debian's iscsid.conf has iscsid.startup (systemctl), which cannot
    // start it here: still 5, not 1.
    let stderr = expect(&a, "start", rc::ERR_INSTALLED);
    assert!(stderr.contains("iscsid is not running"), "{stderr}");
    drop(down);
    expect(&a, "start", rc::SUCCESS);
    expect(&a, "monitor", rc::SUCCESS);
    expect(&a, "stop", rc::SUCCESS);
}

#[test]
#[ignore = "runs inside the guest kernel: see iscsi_suite_in_guest_kernel"]
fn guest_session_killed_behind_the_agents_back_then_recovery() {
    let t = Target::new("killed", &["127.0.0.1:3308"]);
    let portal = "127.0.0.1:3308";
    let a = t.agent(portal);
    let recurring = a.clone().recurring();
    expect(&a, "start", rc::SUCCESS);
    // The target drops the session: the initiator keeps recovering.
    t.enable(false);
    t.wait_state("FAILED", 30);
    let stderr = expect(&recurring, "monitor", rc::ERR_GENERIC);
    assert!(stderr.contains("FAILED"), "{stderr}");
    expect(&a, "monitor", rc::ERR_GENERIC);
    // It comes back: monitor 0 again.
    t.enable(true);
    t.wait_state("LOGGED_IN", 60);
    expect(&recurring, "monitor", rc::SUCCESS);

    // try_recovery: the monitor waits for the recovery, inside its timeout.
    let patient = recurring.clone().param("try_recovery", "true");
    t.enable(false);
    t.wait_state("FAILED", 30);
    // (from the guest's tmpfs: a debug binary over 9p takes long to exec,
    // which no agent can count in its own deadline)
    let local = t.path().join("iscsi");
    std::fs::copy(ISCSI, &local).unwrap();
    let t0 = Instant::now();
    let (code, _, stderr) = run(
        &Agent::new(local.to_str().unwrap(), t.path())
            .env("OCF_RESOURCE_INSTANCE", "patient")
            .env("OCF_RESKEY_CRM_meta_timeout", "10000")
            .recurring()
            .param("portal", portal)
            .param("target", t.iqn.as_str())
            .param("try_recovery", "yes"),
        "monitor",
    );
    let took = t0.elapsed();
    assert_eq!(code, rc::ERR_GENERIC, "{stderr}");
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(10),
        "a 10 s monitor took {took:?}"
    );
    // a probe never waits
    expect(
        &a.clone().param("try_recovery", "true"),
        "monitor",
        rc::ERR_GENERIC,
    );
    let enabler = {
        let tpg = t.tpg();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            std::fs::write(tpg.join("enable"), "1").unwrap();
        })
    };
    let t0 = Instant::now();
    let stderr = expect(&patient, "monitor", rc::SUCCESS);
    enabler.join().unwrap();
    assert!(t0.elapsed() >= Duration::from_secs(2), "{stderr}");

    // logged out behind its back: not running
    support::sh(
        "iscsiadm",
        &["-m", "node", "-T", &t.iqn, "-p", portal, "-u"],
    );
    expect(&recurring, "monitor", rc::NOT_RUNNING);
    expect(&a, "stop", rc::SUCCESS);
}

#[test]
#[ignore = "runs inside the guest kernel: see iscsi_suite_in_guest_kernel"]
fn guest_target_removed() {
    let mut t = Target::new("removed", &["127.0.0.1:3310"]);
    let a = t.agent("127.0.0.1:3310");
    expect(&a, "start", rc::SUCCESS);
    t.remove();
    t.wait_state("FAILED", 30);
    expect(&a.clone().recurring(), "monitor", rc::ERR_GENERIC);
    // start does not pretend: the session stays failed (short timeout)
    expect(
        &a.clone().env("OCF_RESKEY_CRM_meta_timeout", "5000"),
        "start",
        rc::ERR_GENERIC,
    );
    let t0 = Instant::now();
    expect(&a, "stop", rc::SUCCESS);
    println!("stop of a failed session took {:?}", t0.elapsed());
    assert!(t.sessions().is_empty(), "{:?}", t.sessions());
    expect(&a, "monitor", rc::NOT_RUNNING);
}

#[test]
#[ignore = "runs inside the guest kernel: see iscsi_suite_in_guest_kernel"]
fn guest_two_portals_one_target() {
    let (pa, pb) = ("127.0.0.1:3312", "127.0.0.1:3313");
    let t = Target::new("multipath", &[pa, pb]);
    let a = t.agent(pa);
    let b = t.agent(pb);
    expect(&a, "start", rc::SUCCESS);
    // discovery through A made both records; only A is logged in
    assert!(t.node_record(pa).is_some() && t.node_record(pb).is_some());
    let s = t.sessions();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].2, pa);
    expect(&b, "monitor", rc::NOT_RUNNING);
    expect(&b.clone().recurring(), "monitor", rc::NOT_RUNNING);
    expect(&b, "start", rc::SUCCESS);
    let s = t.sessions();
    assert_eq!(
        s.iter().map(|x| x.2.as_str()).collect::<Vec<_>>(),
        vec![pa, pb],
        "{s:?}"
    );
    expect(&a, "monitor", rc::SUCCESS);
    expect(&b, "monitor", rc::SUCCESS);
    // both paths reach the same LUN
    assert_ne!(t.disk(pa), t.disk(pb));
    // stopping A leaves B alone
    expect(&a, "stop", rc::SUCCESS);
    let s = t.sessions();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].2, pb);
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&b, "monitor", rc::SUCCESS);
    // a failed path B does not make A look failed: close B's portal and
    // kill B's connection (ss -K); B cannot recover, A is untouched
    expect(&a, "start", rc::SUCCESS);
    std::fs::remove_dir(t.tpg().join("np").join(pb)).unwrap();
    support::sh("ss", &["-K", "dst", "127.0.0.1", "dport", "=", ":3313"]);
    let t0 = Instant::now();
    loop {
        let s = t.sessions();
        if s.iter().any(|x| x.2 == pb && x.1 == "FAILED") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{s:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    expect(&a, "monitor", rc::SUCCESS);
    expect(&b.clone().recurring(), "monitor", rc::ERR_GENERIC);
    expect(&b, "stop", rc::SUCCESS);
    expect(&a, "monitor", rc::SUCCESS);
    expect(&a, "stop", rc::SUCCESS);
    assert!(t.sessions().is_empty());
}

#[test]
#[ignore = "runs inside the guest kernel: see iscsi_suite_in_guest_kernel"]
fn guest_ocf_tester() {
    let t = Target::new("tester", &["127.0.0.1:3314"]);
    let params = [("portal", "127.0.0.1:3314"), ("target", t.iqn.as_str())];
    support::ocf_tester("isc1", &params, ISCSI, |c| {
        c.env("HA_LOGFACILITY", "none")
            .env("HA_RSCTMP", t.path().join("tester"));
    });
    assert!(t.sessions().is_empty(), "{:?}", t.sessions());
}

/// Benchmark, not a test (no timing is asserted): ours against heartbeat
/// and `true` (monitor), then start and stop latency against heartbeat,
/// inside the guest kernel. `bench/all.sh` runs it with
/// `RA_GUEST_FILTER=bench_`; the suite's own boot (`guest_` cases) does not.
#[test]
#[ignore = "a benchmark, run inside the guest kernel by bench/all.sh"]
fn bench_monitor_against_heartbeat_and_true() {
    let t = Target::new("bench", &["127.0.0.1:3316"]);
    let portal = "127.0.0.1:3316";
    // Ours and `true` run from the guest's tmpfs (a debug binary over 9p
    // is re-read at every exec); heartbeat and its tools stay in place.
    let (ours_bin, true_bin) = (
        local_copy(t.path(), ISCSI),
        local_copy(t.path(), "/usr/bin/true"),
    );
    let ours = Agent::new(&ours_bin, t.path())
        .param("portal", portal)
        .param("target", t.iqn.as_str());
    let hb = Agent::new(HB_ISCSI, t.path())
        .env("PATH", PATH)
        .env("OCF_RESOURCE_TYPE", "iscsi")
        .env("OCF_RESOURCE_INSTANCE", "bench")
        .param("portal", portal)
        .param("target", t.iqn.as_str());
    expect(&ours, "start", rc::SUCCESS);
    expect(&ours, "monitor", rc::SUCCESS);
    expect(&hb, "monitor", rc::SUCCESS);
    let n = 11;
    let t_true = program_median_ms(&true_bin, n);
    let t_ours = monitor_median_ms(&ours, n);
    let t_hb = monitor_median_ms(&hb, n);
    bench_line(
        "iscsi",
        "monitor",
        (t_ours, t_hb, t_true),
        n,
        "guest-kernel",
    );
    expect(&ours, "stop", rc::SUCCESS);
    // Start (login until the disk is there) and stop (logout) latency,
    // each agent from no session: what a failover waits for.
    assert!(t.sessions().is_empty(), "{:?}", t.sessions());
    // Few rounds: under TCG one heartbeat start costs seconds, and the
    // whole guest run has 15 minutes.
    bench_start_stop("iscsi", (&ours, &hb), 3, t_true, "guest-kernel");
    // RA_BENCH_TRACE=1: where our start and stop spend their time, from
    // the agent's own debug log (each tool's run time)
    if std::env::var_os("RA_BENCH_TRACE").is_some() {
        let traced = ours.clone().env("HA_debug", "1");
        for action in ["start", "stop"] {
            println!(
                "TRACE ours {action}:\n{}",
                expect(&traced, action, rc::SUCCESS)
            );
        }
    }
}
