//! The lvmlockd agent: its input checks on the host, and the daemon with a
//! real lock manager inside a guest kernel.
//!
//! lvmlockd with dlm needs the dlm kernel module, configfs, dlm_controld
//! and a corosync membership for dlm_controld to join. The host kernel here
//! has neither dlm nor device-mapper, so [`lvmlockd_suite_in_guest_kernel`]
//! boots the stock Debian kernel once (`support::guest`) and the guest case
//! brings up, as child processes it stops at the end: a one-node corosync
//! (knet on 127.0.0.1, its config and state in the case's directory) and
//! dlm_controld (fencing off: one node has nobody to fence). Then a shared
//! VG (`vgcreate --shared`, lock type dlm) on a loop device proves what the
//! agent is for: start brings the daemon up AND the VG's lockspace,
//! stop takes the lockspace and the daemon down, refusing while an LV of
//! the VG is active, a killed daemon's successor adopts its locks, and a
//! pid file naming another process never makes the agent touch it.
//!
//! lvm commands reach lvmlockd only at its built-in socket, so the guest
//! case uses the default `socket_path` and `pidfile` (the guest's /run is
//! its own); lvm.conf (`LVM_SYSTEM_DIR`, `use_lvmlockd = 1`) is the case's
//! own.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::guest::in_guest;
use support::{expect, expect_reason, rc, Agent, LoopDevice};

const AGENT: &str = env!("CARGO_BIN_EXE_lvmlockd");
const SOCKET: &str = "/run/lvm/lvmlockd.socket";

// ---------------------------------------------------------------------------
// Host side: input checks, and the guest run.

fn host_agent(dir: &Path) -> Agent {
    let conf = dir.join("lvm");
    std::fs::create_dir_all(&conf).unwrap();
    Agent::new(AGENT, dir)
        .env("LVM_SYSTEM_DIR", conf.as_os_str())
        .env("OCF_RESOURCE_INSTANCE", "lvmlockd-test")
        .param("pidfile", dir.join("lvmlockd.pid").as_os_str())
        .param("socket_path", dir.join("lvmlockd.socket").as_os_str())
}

#[test]
fn every_bad_value_is_not_configured_with_one_line() {
    let dir = support::tempdir("lvmlockd-bad");
    let a = host_agent(dir.path());
    // what names the daemon (pid file, socket): 6 for every action
    for (param, value, needle) in [
        ("pidfile", "lvmlockd.pid", "parameter 'pidfile'"),
        ("socket_path", "/run/lvm/", "parameter 'socket_path'"),
        ("socket_path", "/run/../x.sock", "parameter 'socket_path'"),
    ] {
        let bad = a.clone().param(param, value);
        for action in ["validate-all", "start", "stop", "monitor"] {
            expect_reason(&bad, action, rc::ERR_CONFIGURED, needle);
        }
    }
    // the rest: 6 where it is used (start, validate-all, recurring monitor);
    // stop and probes fall back to the default with a warning (issue 13)
    for (param, value, needle) in [
        ("adopt", "2", "parameter 'adopt': '2': expected 0 or 1"),
        ("adopt", "yes", "parameter 'adopt': 'yes' is not an integer"),
        ("syslog_priority", "loud", "parameter 'syslog_priority'"),
        ("with_cmirrord", "maybe", "parameter 'with_cmirrord'"),
    ] {
        let bad = a.clone().param(param, value);
        for action in ["validate-all", "start"] {
            expect_reason(&bad, action, rc::ERR_CONFIGURED, needle);
        }
        expect_reason(
            &bad.clone().recurring(),
            "monitor",
            rc::ERR_CONFIGURED,
            needle,
        );
        expect(&bad, "stop", rc::SUCCESS);
        expect(&bad, "monitor", rc::NOT_RUNNING);
    }
}

#[test]
fn nothing_running_is_7_and_stop_is_0_without_touching_anything() {
    let dir = support::tempdir("lvmlockd-idle");
    let a = host_agent(dir.path());
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&a.clone().recurring(), "monitor", rc::NOT_RUNNING);
    expect(&a, "stop", rc::SUCCESS);
    // a pid file naming a live process that is not lvmlockd (this test)
    std::fs::write(
        dir.path().join("lvmlockd.pid"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&a, "stop", rc::SUCCESS);
}

#[test]
fn lvm_conf_without_use_lvmlockd_is_not_configured() {
    if Command::new("lvm").arg("version").output().is_err() {
        eprintln!("SKIP: no lvm on this machine");
        return;
    }
    let dir = support::tempdir("lvmlockd-conf");
    let a = host_agent(dir.path());
    std::fs::write(
        dir.path().join("lvm/lvm.conf"),
        "global {\n use_lvmlockd = 0\n}\n",
    )
    .unwrap();
    if Path::new("/usr/sbin/lvmlockd").exists() {
        expect_reason(&a, "validate-all", rc::ERR_CONFIGURED, "use_lvmlockd is 0");
        expect_reason(&a, "start", rc::ERR_CONFIGURED, "use_lvmlockd is 0");
    } else {
        // the tools are missing: that comes first
        expect(&a, "validate-all", rc::ERR_INSTALLED);
    }
}

#[test]
fn lvmlockd_suite_in_guest_kernel() {
    support::guest::run(&support::guest::Suite {
        name: "lvmlockd",
        modules: "kernel/fs/dlm",
        env: &["LVM_SUPPRESS_FD_WARNINGS=1"],
        // configfs carries dlm_controld's lockspace configuration to the
        // kernel; corosync and dlm_controld keep state under /var, which
        // the guest sees read-only.
        setup: "modprobe dm-mod; modprobe loop 2>/dev/null; modprobe dlm; \
                mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config; \
                mount -t tmpfs tmpfs /var/lib/corosync; mkdir -p /var/log/dlm_controld 2>/dev/null || \
                mount -t tmpfs tmpfs /var/log",
        limit: Duration::from_secs(15 * 60),
    });
}

// ---------------------------------------------------------------------------
// Guest side: the lock manager.

/// A child daemon, killed (and reaped) on drop.
struct Daemon(&'static str, Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.1.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if self.1.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{} did not end on SIGTERM; killing it", self.0);
        let _ = self.1.kill();
        let _ = self.1.wait();
    }
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "no {what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A one-node corosync and dlm_controld, both started here.
struct LockManager {
    // dropped in this order: dlm_controld before corosync
    _dlm: Daemon,
    _corosync: Daemon,
}

impl LockManager {
    fn start(dir: &Path) -> LockManager {
        let conf = dir.join("corosync.conf");
        std::fs::write(
            &conf,
            format!(
                "totem {{\n version: 2\n cluster_name: ra-lvmlockd\n transport: knet\n \
                 crypto_cipher: none\n crypto_hash: none\n}}\n\
                 logging {{\n to_stderr: no\n to_syslog: no\n to_logfile: yes\n logfile: {}\n}}\n\
                 quorum {{\n provider: corosync_votequorum\n}}\n\
                 nodelist {{\n node {{\n  name: guest\n  nodeid: 1\n  ring0_addr: 127.0.0.1\n }}\n}}\n",
                dir.join("corosync.log").display()
            ),
        )
        .unwrap();
        let corosync = Daemon(
            "corosync",
            Command::new("corosync")
                .arg("-f")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("corosync is installed"),
        );
        wait_until("quorate corosync", Duration::from_secs(60), || {
            Command::new("corosync-quorumtool")
                .arg("-s")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("Quorate:          Yes"))
        });
        let dlm = Daemon(
            "dlm_controld",
            Command::new("dlm_controld")
                .args(["--foreground", "1", "--enable_fencing", "0"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("dlm_controld is installed (dlm-controld)"),
        );
        wait_until("dlm_controld answering", Duration::from_secs(60), || {
            Command::new("dlm_tool")
                .arg("status")
                .output()
                .is_ok_and(|o| o.status.success())
        });
        LockManager {
            _dlm: dlm,
            _corosync: corosync,
        }
    }
}

// ---------------------------------------------------------------------------
// Guest side: the case.

struct Case {
    conf: PathBuf,
    vg: String,
    pidfile: PathBuf,
    // dropped last: the lock manager outlives the daemon, the loop the VG
    _loop: Option<LoopDevice>,
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        assert!(
            in_guest(),
            "guest_* cases need dlm and device-mapper: they run inside the guest kernel"
        );
        let dir = support::tempdir("lvmlockd");
        let conf = dir.path().join("lvm");
        std::fs::create_dir_all(&conf).unwrap();
        // udev must not activate the shared VG behind our back
        std::fs::write(
            conf.join("lvm.conf"),
            "global {\n use_lvmlockd = 1\n event_activation = 0\n}\n",
        )
        .unwrap();
        Case {
            conf,
            vg: format!("ra-lockd-{}", std::process::id() % 1000),
            // lvm commands look for lvmlockd's pid file at its built-in path
            pidfile: PathBuf::from("/run/lvmlockd.pid"),
            _loop: None,
            dir,
        }
    }

    fn agent(&self) -> Agent {
        Agent::new(AGENT, self.dir.path())
            .env("LVM_SYSTEM_DIR", self.conf.as_os_str())
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .env("OCF_RESOURCE_INSTANCE", "lvmlockd")
            .param("pidfile", self.pidfile.as_os_str())
    }

    fn lvm(&self, args: &[&str]) -> Output {
        Command::new("lvm")
            .args(args)
            .env("LVM_SYSTEM_DIR", &self.conf)
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .output()
            .unwrap()
    }

    #[track_caller]
    fn lvm_ok(&self, args: &[&str]) -> String {
        let out = self.lvm(args);
        assert!(
            out.status.success(),
            "lvm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `lvmlockctl --info`, or None when no daemon answers.
    fn info(&self) -> Option<String> {
        let out = Command::new("lvmlockctl").arg("--info").output().unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Whether the daemon holds the VG's lockspace.
    fn lockspace_started(&self) -> bool {
        // `LS <lock manager> lvm_<vg>` in the VG's block
        let want = format!("lvm_{}", self.vg);
        self.info().is_some_and(|i| {
            i.lines()
                .any(|l| l.starts_with("LS ") && l.split_whitespace().last() == Some(&want[..]))
        })
    }

    fn daemon_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(&self.pidfile)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        (std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()?
            .trim()
            == "lvmlockd")
            .then_some(pid)
    }
}

/// Every process named lvmlockd: pid, state and argument vector.
fn lvmlockd_processes() -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let p = e.path();
        if std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim() == "lvmlockd") {
            let state = std::fs::read_to_string(p.join("status"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("State:") || l.starts_with("PPid:"))
                .collect::<Vec<_>>()
                .join(" ");
            let argv = std::fs::read(p.join("cmdline")).unwrap_or_default();
            found.push(format!(
                "{} {state} {:?}",
                e.file_name().to_string_lossy(),
                String::from_utf8_lossy(&argv)
            ));
        }
    }
    found
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = Command::new("lvmlockctl").arg("--quit").status();
        if let Some(pid) = self.daemon_pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        support::remove_dm_devices_of_vg(&self.vg);
    }
}

#[test]
#[ignore = "runs inside the guest kernel: see lvmlockd_suite_in_guest_kernel"]
fn guest_lvmlockd_with_dlm_and_a_shared_vg() {
    let mut c = Case::new();
    let _dlm = LockManager::start(c.dir.path());
    let a = c.agent();

    // probe before anything: 7; validate-all passes
    assert_eq!(lvmlockd_processes(), Vec::<String>::new(), "before start");
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&a, "validate-all", rc::SUCCESS);

    // start: the daemon with our pid file, serving the socket
    expect(&a, "start", rc::SUCCESS);
    let pid = c
        .daemon_pid()
        .expect("lvmlockd runs and the pid file names it");
    let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let argv: Vec<String> = argv
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    for (opt, val) in [
        ("-A", "1"),
        ("-g", "dlm"),
        ("-S", "warning"),
        ("-s", SOCKET),
    ] {
        assert!(
            argv.windows(2).any(|w| w[0] == opt && w[1] == val),
            "lvmlockd started without {opt} {val}: {argv:?}"
        );
    }
    expect(&a, "monitor", rc::SUCCESS);
    expect(&a.clone().recurring(), "monitor", rc::SUCCESS);
    expect(&a, "start", rc::SUCCESS); // again: already running
    assert_eq!(c.daemon_pid(), Some(pid), "a second start keeps the daemon");

    // a shared VG (dlm) with one LV, inactive
    let lp = support::tempdir("lvmlockd-pv");
    let l = LoopDevice::new(lp.path(), 64, "none");
    let dev = l.device.clone();
    c._loop = Some(l);
    assert!(c.info().is_some(), "lvmlockctl reaches the daemon");
    c.lvm_ok(&["vgcreate", "-q", "--shared", &c.vg, &dev]);
    assert_eq!(
        c.lvm_ok(&["vgs", "--noheadings", "-o", "vg_lock_type", &c.vg])
            .trim(),
        "dlm"
    );
    c.lvm_ok(&["lvcreate", "-q", "-an", "-L", "8M", "-n", "lv", &c.vg]);
    assert!(
        c.lockspace_started(),
        "vgcreate --shared started the lockspace: {:?}",
        c.info()
    );

    // stop: the VG's lockspace, then the daemon
    let log = expect(&a.clone().env("HA_debug", "1"), "stop", rc::SUCCESS);
    assert_eq!(
        lvmlockd_processes(),
        Vec::<String>::new(),
        "after stop:\n{log}"
    );
    assert_eq!(c.daemon_pid(), None, "lvmlockd stopped");
    assert!(c.info().is_none(), "no lvmlockd answers after stop");
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&a, "stop", rc::SUCCESS);

    // ocf-tester: every action, stop twice, probe after stop
    let out = Command::new("ocf-tester")
        .args(["-n", "lvmlockd"])
        .arg("-o")
        .arg(format!("pidfile={}", c.pidfile.display()))
        .arg(AGENT)
        .env("LVM_SYSTEM_DIR", &c.conf)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .env("HA_LOGFACILITY", "none")
        .env("HA_RSCTMP", c.dir.path().join("tester"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("passed all tests"),
        "ocf-tester lvmlockd failed:\n{text}"
    );
    assert_eq!(c.daemon_pid(), None, "ocf-tester ends with a stop");

    // start again: the agent starts the VG's lockspace itself
    expect(&a, "start", rc::SUCCESS);
    assert!(
        c.lockspace_started(),
        "start ran vgchange --lock-start: {:?}",
        c.info()
    );

    // an active LV of the shared VG: stop refuses, naming the VG, and
    // leaves the daemon running (the LV keeps its lock)
    c.lvm_ok(&["lvchange", "-aey", &format!("{}/lv", c.vg)]);
    let pid = c.daemon_pid().unwrap();
    let stderr = expect(
        &a.clone().env("OCF_RESKEY_CRM_meta_timeout", "20000"),
        "stop",
        rc::ERR_GENERIC,
    );
    let reasons = support::exit_reasons(&stderr);
    assert_eq!(reasons.len(), 1, "{stderr}");
    assert!(reasons[0].contains(&format!("VG {}", c.vg)), "{stderr}");
    assert_eq!(c.daemon_pid(), Some(pid), "the daemon keeps running");
    expect(&a, "monitor", rc::SUCCESS);
    c.lvm_ok(&["lvchange", "-an", &format!("{}/lv", c.vg)]);
    c.lvm_ok(&["vgchange", "--lock-start", &c.vg]);

    // the daemon dies while it holds the VG's lockspace: a recurring
    // monitor says so, and the next start adopts the orphaned locks (the
    // slower start: lvmlockd's adoption, see the agent's module docs)
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("lvmlockd gone", Duration::from_secs(10), || {
        c.daemon_pid().is_none()
    });
    expect(&a.clone().recurring(), "monitor", rc::NOT_RUNNING);
    expect(&a, "start", rc::SUCCESS);
    assert!(c.lockspace_started(), "adopted: {:?}", c.info());
    c.lvm_ok(&["lvchange", "-aey", &format!("{}/lv", c.vg)]);
    c.lvm_ok(&["lvchange", "-an", &format!("{}/lv", c.vg)]);

    // the pid file replaced by a symlink: not followed, but the daemon
    // serving our socket is still found (monitor 0) and stop stops it
    let pid = c.daemon_pid().unwrap();
    let elsewhere = c.dir.path().join("elsewhere.pid");
    std::fs::write(&elsewhere, format!("{pid}\n")).unwrap();
    std::fs::remove_file(&c.pidfile).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &c.pidfile).unwrap();
    expect(&a, "monitor", rc::SUCCESS);
    expect(&a, "stop", rc::SUCCESS);
    assert_ne!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()
            .as_deref()
            .map(str::trim),
        Some("lvmlockd"),
        "stop ended the daemon found through its socket"
    );
    assert!(c.info().is_none());
    expect(&a, "monitor", rc::NOT_RUNNING);
    // (lvmlockd removes its pid file path on exit: here, the symlink)
    let _ = std::fs::remove_file(&c.pidfile);

    // a pid file naming a process that is not lvmlockd: probe 7, stop 0,
    // and that process lives on
    let mut stranger = Command::new("sleep").arg("300").spawn().unwrap();
    std::fs::write(&c.pidfile, format!("{}\n", stranger.id())).unwrap();
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&a, "stop", rc::SUCCESS);
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "stop killed a stranger"
    );
    let _ = stranger.kill();
    let _ = stranger.wait();
    std::fs::remove_file(&c.pidfile).unwrap();

    // clean up the shared VG with the daemon running
    expect(&a, "start", rc::SUCCESS);
    c.lvm_ok(&["vgremove", "-q", "-f", &c.vg]);
    expect(&a, "stop", rc::SUCCESS);
    expect(&a, "monitor", rc::NOT_RUNNING);
}
