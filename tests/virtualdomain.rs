//! The VirtualDomain agent as a process, against real libvirt daemons the
//! tests start themselves.
//!
//! VirtualDomain links libvirt dynamically, so it is not a binary of this
//! (statically linked) package: it is its own cargo workspace under
//! `agents/virtualdomain`, built by `support::virtualdomain::vd_binary` with
//! rustflags that replace the root's `+crt-static` (see
//! agents/virtualdomain/Cargo.toml).
//!
//! Each test starts its own libvirtd + virtlogd in a private mount
//! namespace (`unshare --mount`: its own /run/libvirt, /etc/libvirt,
//! /var/lib/libvirt, ... and its own host UUID), reached through a socket in
//! the test's temporary directory, so nothing touches the node's own
//! libvirt and tests run side by side. The test driver runs inside that
//! daemon (`test+unix:///default?socket=...`), kept alive by a holder
//! connection. Everything is torn down in `Drop`, also when a test fails.
//! Tests are skipped (with a message) where libvirtd is not installed.
//!
//! The `qemu_*` cases run real QEMU (TCG) guests in those daemons; see the
//! section "Real QEMU (TCG) guests" below.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use support::virtualdomain::{have_libvirtd, nested_cargo, vd_binary, vd_example};
use support::{rc, tempdir, Agent};

/// The script run inside `unshare --mount`: private copies of libvirt's
/// directories, a tmpfs on /run/libvirt, then virtlogd and libvirtd.
const DAEMON_SCRIPT: &str = r#"set -eu
D=$1
mkdir -p "$D/sock" "$D/etc" "$D/lib" "$D/cache" "$D/log/qemu"
cp -a /etc/libvirt/. "$D/etc/"
cp -a /var/lib/libvirt/. "$D/lib/" 2>/dev/null || true
mkdir -p /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /run/libvirt
mount --bind "$D/etc" /etc/libvirt
mount --bind "$D/lib" /var/lib/libvirt
mount --bind "$D/cache" /var/cache/libvirt
mount --bind "$D/log" /var/log/libvirt
mount -t tmpfs tmpfs /run/libvirt
printf 'unix_sock_dir = "%s"\nhost_uuid = "%s"\nlisten_tls = 0\nlisten_tcp = 0\n' "$D/sock" "$2" > /etc/libvirt/libvirtd.conf
virtlogd -d -p "$D/virtlogd.pid"
LIBVIRT_LOG_OUTPUTS="3:file:$D/libvirtd.log" libvirtd -d -p "$D/libvirtd.pid" -f /etc/libvirt/libvirtd.conf
"#;

/// One libvirtd (+ virtlogd) of our own, and a holder connection on its
/// test driver.
struct Daemon {
    dir: PathBuf,
    holder: Option<Child>,
}

impl Daemon {
    fn start(dir: &Path, uuid: &str) -> Daemon {
        std::fs::create_dir_all(dir).unwrap();
        let mut d = Daemon {
            dir: dir.to_path_buf(),
            holder: None,
        };
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(DAEMON_SCRIPT)
            .arg("sh")
            .arg(dir)
            .arg(uuid)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "starting libvirtd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let t = Instant::now();
        while !d.virsh_ok(&d.test_uri(), &["uri"]) {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "libvirtd did not answer"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d.holder = Some(
            Command::new("virsh")
                .args(["-c", &d.test_uri(), "event", "--all", "--loop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // the holder is connected once the test driver keeps state
        std::thread::sleep(Duration::from_millis(300));
        d
    }

    fn socket(&self) -> String {
        self.dir
            .join("sock/libvirt-sock")
            .to_string_lossy()
            .into_owned()
    }

    fn test_uri(&self) -> String {
        format!("test+unix:///default?socket={}", self.socket())
    }

    /// The daemon's QEMU driver (real guests).
    fn qemu_uri(&self) -> String {
        format!("qemu+unix:///system?socket={}", self.socket())
    }

    /// What virtlogd, and the daemon, write under `/var/log/libvirt` (the
    /// daemon's private copy).
    fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    fn pid(&self, file: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    fn virsh_ok(&self, uri: &str, args: &[&str]) -> bool {
        Command::new("virsh")
            .arg("-c")
            .arg(uri)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn virsh(&self, uri: &str, args: &[&str]) -> String {
        let out = Command::new("virsh")
            .arg("-c")
            .arg(uri)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// libvirtd only (guests and virtlogd stay): "libvirtd is down".
    fn kill_libvirtd(&self) {
        if let Some(pid) = self.pid("libvirtd.pid") {
            kill_and_wait(pid);
        }
    }

    /// libvirtd again, in the mount namespace its virtlogd still holds
    /// (which keeps the guests' runtime state in its /run/libvirt).
    fn restart_libvirtd(&self) {
        let vl = self.pid("virtlogd.pid").expect("virtlogd pid");
        let out = Command::new("nsenter")
            .arg(format!("--mount=/proc/{vl}/ns/mnt"))
            .args([
                "--",
                "libvirtd",
                "-d",
                "-f",
                "/etc/libvirt/libvirtd.conf",
                "-p",
            ])
            .arg(self.dir.join("libvirtd.pid"))
            .env(
                "LIBVIRT_LOG_OUTPUTS",
                format!("3:file:{}", self.dir.join("libvirtd.log").display()),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "restarting libvirtd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let t = Instant::now();
        while !self.virsh_ok(&self.qemu_uri(), &["uri"]) {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "libvirtd did not answer after its restart"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn kill_and_wait(pid: i32) {
    let p = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGTERM);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        // a daemon reparented to a non-reaping init stays a zombie: gone enough
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.contains(") Z ") {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut h) = self.holder.take() {
            let _ = h.kill();
            let _ = h.wait();
        }
        // No guest of ours may outlive its daemon.
        let qemu = self.qemu_uri();
        for name in self.virsh(&qemu, &["list", "--name"]).lines() {
            if !name.trim().is_empty() {
                self.virsh(&qemu, &["destroy", name.trim()]);
            }
        }
        for f in ["libvirtd.pid", "virtlogd.pid"] {
            if let Some(pid) = self.pid(f) {
                kill_and_wait(pid);
            }
        }
    }
}

/// A test's directory, daemon and agent. Fields drop in order: the daemon
/// (which needs its pid files) before the directory.
struct Lab {
    daemon: Daemon,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(name: &str) -> Option<Lab> {
        if !have_libvirtd() {
            return None;
        }
        vd_binary();
        let dir = tempdir(&format!("vd-{name}"));
        let daemon = Daemon::start(
            &dir.path().join("daemon"),
            "a0a0a0a0-0000-4000-8000-00000000000a",
        );
        Some(Lab { daemon, dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A test-driver domain config named `dom`, in file `file`.
    fn test_config(&self, file: &str, dom: &str) -> PathBuf {
        let p = self.path().join(file);
        let name = dom
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('\'', "&apos;");
        std::fs::write(
            &p,
            format!(
                "<domain type='test'><name>{name}</name><memory>8192</memory>\
                 <vcpu>1</vcpu><os><type>hvm</type></os></domain>\n"
            ),
        )
        .unwrap();
        p
    }

    fn agent(&self, config: &Path) -> Agent {
        vd_agent(self.path(), config, &self.daemon.test_uri())
    }

    fn domstate(&self, dom: &str) -> String {
        self.daemon
            .virsh(&self.daemon.test_uri(), &["domstate", dom])
    }
}

/// The agent for `config` on `hypervisor`, its state (HA_RSCTMP) under
/// `state`.
fn vd_agent(state: &Path, config: &Path, hypervisor: &str) -> Agent {
    vd_params(Agent::new(vd_binary(), state), config, hypervisor)
}

/// The environment of [`vd_agent`], for any VirtualDomain agent (ours or
/// the heartbeat one).
fn vd_params(agent: Agent, config: &Path, hypervisor: &str) -> Agent {
    agent
        .env("OCF_RESOURCE_INSTANCE", "vd")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .param("config", config)
        .param("hypervisor", hypervisor)
        // no Pacemaker here: keep crm_resource out of the picture
        .param("autoset_utilization_cpu", "false")
        .param("autoset_utilization_host_memory", "false")
        .param("autoset_utilization_hv_memory", "false")
}

fn timed(agent: &Agent, action: &str, code: i32) -> Duration {
    let t = Instant::now();
    agent.expect(action, code);
    t.elapsed()
}

#[test]
fn separate_workspace_unit_tests_pass() {
    if !have_libvirtd() {
        return;
    }
    let out = nested_cargo(&["test"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("test result: ok"), "{text}");
}

#[test]
fn meta_data_needs_nothing_and_lists_every_parameter() {
    if !have_libvirtd() {
        return;
    }
    let dir = tempdir("vd-meta");
    let out = Agent::new(vd_binary(), dir.path())
        .expect("meta-data", rc::SUCCESS)
        .get_output()
        .stdout
        .clone();
    let xml = String::from_utf8(out).unwrap();
    assert!(xml.contains("<resource-agent name=\"VirtualDomain\""));
    assert!(xml.contains("<parameter name=\"shutdown_mode\""));
    // no environment at all: config is required
    Agent::new(vd_binary(), dir.path()).expect("monitor", rc::ERR_CONFIGURED);
}

#[test]
fn lifecycle_on_the_test_driver() {
    let Some(lab) = Lab::new("life") else { return };
    let cfg = lab.test_config("vm1.xml", "vdlife");
    let a = lab.agent(&cfg);
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("validate-all", rc::SUCCESS);
    a.expect("start", rc::SUCCESS);
    assert_eq!(lab.domstate("vdlife"), "running");
    a.expect("start", rc::SUCCESS);
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    a.expect("status", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    assert!(!lab
        .daemon
        .virsh(&lab.daemon.test_uri(), &["list", "--name"])
        .contains("vdlife"));
    a.expect("monitor", rc::NOT_RUNNING);
    assert!(timed(&a, "stop", rc::SUCCESS) < Duration::from_secs(3));
    // force_stop destroys at once
    a.expect("start", rc::SUCCESS);
    a.clone()
        .param("force_stop", "true")
        .expect("stop", rc::SUCCESS);
    a.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn a_paused_domain_is_running_and_a_stale_definition_is_replaced() {
    let Some(lab) = Lab::new("paused") else {
        return;
    };
    let cfg = lab.test_config("vm.xml", "vdpaused");
    let a = lab.agent(&cfg);
    // a persistent, inactive definition of the same name: start undefines
    // it and creates ours (heartbeat's verify_undefined), keeping config
    let uri = lab.daemon.test_uri();
    assert!(lab
        .daemon
        .virsh_ok(&uri, &["define", cfg.to_str().unwrap()]));
    a.expect("start", rc::SUCCESS);
    assert!(cfg.exists());
    assert!(lab.daemon.virsh_ok(&uri, &["suspend", "vdpaused"]));
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    a.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn missing_config_on_shared_storage() {
    let Some(lab) = Lab::new("noconf") else {
        return;
    };
    let missing = lab.path().join("gone/vm.xml");
    let a = lab.agent(&missing);
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("stop", rc::SUCCESS);
    a.clone().recurring().expect("monitor", rc::ERR_GENERIC);
    a.expect("start", rc::ERR_INSTALLED);
    a.expect("validate-all", rc::ERR_INSTALLED);

    // Started here, then the config vanishes: the recorded name keeps the
    // probe honest (no double start) and stop really stops.
    let cfg = lab.test_config("vm2.xml", "vdshared");
    let b = lab.agent(&cfg);
    b.expect("start", rc::SUCCESS);
    std::fs::remove_file(&cfg).unwrap();
    b.expect("monitor", rc::SUCCESS);
    b.expect("stop", rc::SUCCESS);
    assert_ne!(lab.domstate("vdshared"), "running");
    b.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn bad_parameters_are_not_configured() {
    let Some(lab) = Lab::new("badparam") else {
        return;
    };
    let cfg = lab.test_config("vm.xml", "vdbad");
    let a = lab.agent(&cfg);
    for (k, v) in [
        ("shutdown_mode", "reboot"),
        ("migrate_options", "--no-such-option"),
        ("migration_speed", "fast"),
        ("stateless", "true"),
        ("config", "relative.xml"),
    ] {
        a.clone().param(k, v).expect("start", rc::ERR_CONFIGURED);
    }
    a.clone()
        .param("force_stop", "1")
        .param("snapshot", lab.path())
        .expect("monitor", rc::ERR_CONFIGURED);
    // broken XML: start fails as not installed (heartbeat: 5), stop is 0
    std::fs::write(&cfg, "<domain><name>x</nam>").unwrap();
    a.expect("start", rc::ERR_INSTALLED);
    a.expect("stop", rc::SUCCESS);
}

#[test]
fn names_and_paths_with_spaces_quotes_and_percent_are_literal() {
    let Some(lab) = Lab::new("quote") else { return };
    let dir = lab.path().join("my vms; $(id) 'q' %n");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = lab.test_config("my vms; $(id) 'q' %n/vm 1.xml", "web & 'db' %n;x");
    let a = lab.agent(&cfg);
    a.expect("start", rc::SUCCESS);
    assert_eq!(lab.domstate("web & 'db' %n;x"), "running");
    a.expect("monitor", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    a.expect("monitor", rc::NOT_RUNNING);
    assert!(dir.exists());
}

#[test]
fn every_wait_is_bounded_migrate_from_and_libvirtd_down() {
    let Some(lab) = Lab::new("bounded") else {
        return;
    };
    let cfg = lab.test_config("vm.xml", "vdbound");
    let a = lab.agent(&cfg);
    // migrate_from for a domain that never arrives
    let mf = a
        .clone()
        .env("OCF_RESKEY_CRM_meta_timeout", "3000")
        .env("OCF_RESKEY_CRM_meta_migrate_source", "nodeA");
    let took = timed(&mf, "migrate_from", rc::ERR_GENERIC);
    assert!(took < Duration::from_secs(4), "{took:?}");
    // migrate_to without a target, and of a stopped domain
    a.expect("migrate_to", rc::ERR_GENERIC);
    a.clone()
        .env("OCF_RESKEY_CRM_meta_migrate_target", "nodeB")
        .expect("migrate_to", rc::ERR_GENERIC);

    // libvirtd down, no emulator process of this guest: monitor says 7
    // at once, stop 0, start fails inside its deadline
    lab.daemon.kill_libvirtd();
    assert!(timed(&a, "monitor", rc::NOT_RUNNING) < Duration::from_secs(3));
    a.clone().recurring().expect("monitor", rc::NOT_RUNNING);
    let s = a.clone().env("OCF_RESKEY_CRM_meta_timeout", "3000");
    assert!(timed(&s, "stop", rc::SUCCESS) < Duration::from_secs(4));
    assert!(timed(&s, "start", rc::ERR_GENERIC) < Duration::from_secs(4));
}

#[test]
fn validate_all_depth_10_warns_about_unsafe_migration() {
    let Some(lab) = Lab::new("validate") else {
        return;
    };
    let cfg = lab.path().join("vm.xml");
    std::fs::write(
        &cfg,
        "<domain type='test'><name>vdval</name><memory>8192</memory><os><type>hvm</type></os>\
         <devices><disk type='file' device='disk'><driver name='qemu' cache='writeback'/>\
         <source file='/shared/vm.img'/><target dev='vda'/></disk></devices></domain>",
    )
    .unwrap();
    let a = lab
        .agent(&cfg)
        .env("OCF_RESKEY_CRM_meta_allow_migrate", "true");
    let out = a
        .clone()
        .check_level(10)
        .expect("validate-all", rc::SUCCESS);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("cache='writeback'"), "{err}");
    assert!(err.contains("not on shared storage"), "{err}");
    let out = a.expect("validate-all", rc::SUCCESS);
    assert!(!String::from_utf8_lossy(&out.get_output().stderr).contains("WARNING"));
}

#[test]
fn ocf_tester_passes_without_a_wrapper() {
    let tester = Path::new("/usr/sbin/ocf-tester");
    if !tester.exists() {
        eprintln!("SKIP: ocf-tester not installed");
        return;
    }
    let Some(lab) = Lab::new("tester") else {
        return;
    };
    let cfg = lab.test_config("vm.xml", "vdtester");
    let out = Command::new(tester)
        .args(["-v", "-n", "vdtester"])
        .arg("-o")
        .arg(format!("config={}", cfg.display()))
        .arg("-o")
        .arg(format!("hypervisor={}", lab.daemon.test_uri()))
        .args(["-o", "autoset_utilization_cpu=false"])
        .args(["-o", "autoset_utilization_host_memory=false"])
        .args(["-o", "autoset_utilization_hv_memory=false"])
        .arg(vd_binary())
        .env("HA_RSCTMP", lab.path().join("rsctmp"))
        .env("HA_LOGFACILITY", "none")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("passed all tests"), "{text}");
}

// ---------------------------------------------------------------------------
// Real QEMU (TCG) guests.
//
// A tiny guest, built once per test run under the target directory: the
// stock Debian kernel (/boot, the linux-image-amd64 package) and an
// initramfs of busybox-static whose /init loads evdev + button, starts
// busybox acpid (the ACPI power button runs `poweroff -f`) and prints
// `RAVM: ready` on the serial console, logged by the daemon's virtlogd. The
// kernel argument `ra_ignore_acpi` makes the same guest ignore the power
// button (no acpid): a guest only destroy can stop.
//
// Each case starts its own daemon(s) (the `Daemon` fixture: the QEMU driver
// of the same libvirtd), and at most one case runs at a time (`QEMU_LOCK`):
// the machine has two cores and a migration briefly runs two emulators.
// `QemuLab` destroys the guest through every daemon and then kills any
// emulator of it still alive (libvirtd may be down when a case fails)
// before the daemons and the directory go. Skipped without QEMU, busybox or
// a kernel with its modules, unless RA_REQUIRE_GUEST is set (CI).
// ---------------------------------------------------------------------------

const READY: &str = "RAVM: ready";
const POWER_BUTTON: &str = "RAVM: power button";
/// From `start` to the guest's userspace: 6-7 s on an idle 2-core machine
/// (labs/libvirt); a busy CI runner gets much more.
const BOOT_LIMIT: Duration = Duration::from_secs(120);

const GUEST_INIT: &str = r#"#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
insmod /lib/modules/evdev.ko
insmod /lib/modules/button.ko
if grep -q ra_ignore_acpi /proc/cmdline; then
    echo "RAVM: ready (ignoring ACPI)" >/dev/console
else
    acpid -l /var/log/acpid.log
    echo "RAVM: ready" >/dev/console
fi
while :; do sleep 3600; done
"#;

/// busybox acpid maps KEY_POWER to ./PWRF/00000080 under /etc/acpi.
const GUEST_POWER_BUTTON: &str = r#"#!/bin/sh
echo "RAVM: power button -> poweroff" >/dev/console
poweroff -f
"#;

const GUEST_APPLETS: &[&str] = &[
    "sh", "mount", "insmod", "grep", "acpid", "poweroff", "sleep", "cat", "echo",
];

/// A `newc` cpio archive (what the kernel unpacks as its initramfs), written
/// directly: no cpio or shell needed, device nodes without privileges.
#[derive(Default)]
struct Cpio {
    buf: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0,
            0,
            nlink,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[], (0, 0));
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | mode, data, (0, 0));
    }

    fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120777, target.as_bytes(), (0, 0));
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.buf
    }
}

/// A kernel module's bytes (Debian 12 ships them uncompressed; newer
/// kernels xz or zstd).
fn module_bytes(dir: &Path, rel: &str) -> Result<Vec<u8>, String> {
    for (ext, tool) in [("", None), (".xz", Some("xz")), (".zst", Some("zstd"))] {
        let f = dir.join(format!("{rel}{ext}"));
        if !f.exists() {
            continue;
        }
        return match tool {
            None => std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display())),
            Some(t) => Command::new(t)
                .arg("-dc")
                .arg(&f)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| o.stdout)
                .ok_or_else(|| format!("cannot decompress {} with {t}", f.display())),
        };
    }
    Err(format!("no {rel} under {}", dir.display()))
}

struct GuestImage {
    kernel: PathBuf,
    initrd: PathBuf,
}

/// Build the guest (kernel copy + initramfs) under the target directory.
fn build_guest() -> Result<GuestImage, String> {
    if !Path::new("/usr/bin/qemu-system-x86_64").exists() {
        return Err("no /usr/bin/qemu-system-x86_64 (qemu-system-x86)".into());
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .ok_or("no busybox (busybox-static)")?;
    let bb = std::fs::read(busybox).map_err(|e| e.to_string())?;
    if !is_static_elf64(&bb) {
        return Err(format!(
            "{} is not statically linked (busybox-static)",
            busybox.display()
        ));
    }
    // newest kernel in /boot with the two modules the power button needs
    let mut versions: Vec<String> = std::fs::read_dir("/lib/modules")
        .map_err(|e| format!("/lib/modules: {e}"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|v| Path::new(&format!("/boot/vmlinuz-{v}")).exists())
        .collect();
    versions.sort_by_key(|v| version_key(v));
    let mut last = String::from("no /boot/vmlinuz-* with modules (linux-image-amd64)");
    for v in versions.iter().rev() {
        let moddir = Path::new("/lib/modules").join(v);
        let mods = module_bytes(&moddir, "kernel/drivers/input/evdev.ko").and_then(|evdev| {
            Ok((
                evdev,
                module_bytes(&moddir, "kernel/drivers/acpi/button.ko")?,
            ))
        });
        let (evdev, button) = match mods {
            Ok(m) => m,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let kernel = std::fs::read(format!("/boot/vmlinuz-{v}")).map_err(|e| e.to_string())?;
        let kernel = uncompressed_kernel(&kernel, v).unwrap_or(kernel);
        let mut c = Cpio::default();
        for d in [
            "bin",
            "dev",
            "proc",
            "sys",
            "run",
            "tmp",
            "etc",
            "etc/acpi",
            "etc/acpi/PWRF",
            "lib",
            "lib/modules",
            "var",
            "var/log",
            "var/run",
        ] {
            c.dir(d);
        }
        c.entry("dev/console", 0o020600, &[], (5, 1));
        c.file("bin/busybox", 0o755, &bb);
        for a in GUEST_APPLETS {
            c.symlink(&format!("bin/{a}"), "busybox");
        }
        c.file("init", 0o755, GUEST_INIT.as_bytes());
        c.file(
            "etc/acpi/PWRF/00000080",
            0o755,
            GUEST_POWER_BUTTON.as_bytes(),
        );
        c.file("lib/modules/evdev.ko", 0o644, &evdev);
        c.file("lib/modules/button.ko", 0o644, &button);
        // Under the target directory, world-readable: QEMU runs as
        // libvirt-qemu and must reach the files (the test's own
        // temporary directories are 0700).
        use std::os::unix::fs::PermissionsExt;
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(tmp).map_err(|e| e.to_string())?;
        std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        // a target directory others cannot enter: /var/tmp instead
        let reachable = tmp
            .ancestors()
            .all(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
        let dir = if reachable {
            tmp.join("vd-guest")
        } else {
            PathBuf::from("/var/tmp/ra-rs-vd-guest")
        };
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        let img = GuestImage {
            kernel: dir.join("kernel"),
            initrd: dir.join("initrd.cpio"),
        };
        for (path, data) in [(&img.kernel, kernel), (&img.initrd, c.finish())] {
            let t = path.with_extension("new");
            std::fs::write(&t, data).map_err(|e| e.to_string())?;
            std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o644))
                .map_err(|e| e.to_string())?;
            std::fs::rename(&t, path).map_err(|e| e.to_string())?;
        }
        return Ok(img);
    }
    Err(last)
}

/// The ELF kernel inside a bzImage, when the kernel can boot from it (PVH
/// entry): QEMU then starts it directly, without decompressing it under TCG
/// first, which takes most of a boot (about 4 s instead of 10 here).
fn uncompressed_kernel(bzimage: &[u8], version: &str) -> Option<Vec<u8>> {
    let config = std::fs::read_to_string(format!("/boot/config-{version}")).ok()?;
    if !config.lines().any(|l| l == "CONFIG_PVH=y") {
        return None;
    }
    for (magic, tool) in [
        (&b"\xfd7zXZ\x00"[..], "xz"),
        (&b"\x28\xb5\x2f\xfd"[..], "zstd"),
    ] {
        let Some(at) = bzimage.windows(magic.len()).position(|w| w == magic) else {
            continue;
        };
        let args: &[&str] = if tool == "xz" {
            &["-dc", "--single-stream"]
        } else {
            &["-dc"]
        };
        let mut child = Command::new(tool)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut stdin = child.stdin.take()?;
        let payload = bzimage[at..].to_vec();
        let feeder = std::thread::spawn(move || {
            use std::io::Write;
            // the decompressor may stop reading at the end of its stream
            let _ = stdin.write_all(&payload);
        });
        let out = child.wait_with_output().ok()?;
        let _ = feeder.join();
        if out.stdout.starts_with(b"\x7fELF") {
            return Some(out.stdout);
        }
    }
    None
}

/// A 64-bit ELF executable without a program interpreter (PT_INTERP).
fn is_static_elf64(elf: &[u8]) -> bool {
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
    };
    if !elf.starts_with(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        elf.get(o..o + 4) != Some(&3u32.to_le_bytes()[..])
    })
}

/// "6.1.0-56-amd64" sorts by its numbers.
fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The guest image, built once per test process; None (with a SKIP
/// message) where it cannot be built, a failure if RA_REQUIRE_GUEST is set.
fn guest_image() -> Option<&'static GuestImage> {
    static IMG: OnceLock<Result<GuestImage, String>> = OnceLock::new();
    match IMG.get_or_init(build_guest) {
        Ok(img) => Some(img),
        Err(e) => {
            assert!(
                std::env::var_os("RA_REQUIRE_GUEST").is_none(),
                "RA_REQUIRE_GUEST is set but the QEMU guest cannot be built: {e}"
            );
            eprintln!("SKIP: no QEMU guest: {e} (.ci/install-libvirt.sh)");
            None
        }
    }
}

/// libvirt's QEMU capabilities cache, shared by the tests' daemons (libvirt
/// checks each entry against the emulator and itself, and probes again when
/// it does not match).
fn qemu_caps_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("vd-qemu-capabilities")
}

/// Copy the files of `from` (if any) into `to`, each atomically.
fn copy_files(from: &Path, to: &Path) {
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    std::fs::create_dir_all(to).unwrap();
    for e in entries.flatten() {
        let dest = to.join(e.file_name());
        let tmp = to.join(format!(".{}.tmp", e.file_name().to_string_lossy()));
        if std::fs::copy(e.path(), &tmp).is_ok() {
            let _ = std::fs::rename(&tmp, &dest);
        }
    }
}

/// One real guest at a time, in the whole test process.
static QEMU_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The PIDs of the QEMU processes running guest `name` (`-name guest=NAME,`).
fn emulator_pids(name: &str) -> Vec<i32> {
    let want = format!("guest={name},");
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
        let qemu = argv
            .first()
            .is_some_and(|a| a.ends_with(b"qemu-system-x86_64"));
        if qemu
            && argv
                .windows(2)
                .any(|w| w[0] == b"-name" && w[1].starts_with(want.as_bytes()))
        {
            pids.push(pid);
        }
    }
    pids
}

/// A real-guest case: its directory, daemon(s), guest name, and the lock.
/// Fields drop in order after `Drop::drop` has stopped the guest.
struct QemuLab {
    daemons: Vec<Daemon>,
    dir: tempfile::TempDir,
    name: String,
    img: &'static GuestImage,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl QemuLab {
    /// `hosts` daemons ("a", "b", ...), each with its own host UUID.
    fn new(case: &str, hosts: usize) -> Option<QemuLab> {
        if !have_libvirtd() {
            return None;
        }
        let img = guest_image()?;
        vd_binary();
        let lock = QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempdir(&format!("vdq-{case}"));
        let mut lab = QemuLab {
            daemons: Vec::new(),
            dir,
            name: format!("ravm-{case}-{}", std::process::id()),
            img,
            _one_at_a_time: lock,
        };
        for (host, uuid) in [
            ("a", "a0a0a0a0-0000-4000-8000-00000000000a"),
            ("b", "b0b0b0b0-0000-4000-8000-00000000000b"),
        ]
        .into_iter()
        .take(hosts)
        {
            let dir = lab.dir.path().join(format!("host-{host}"));
            let caps = dir.join("cache/qemu/capabilities");
            copy_files(&qemu_caps_cache(), &caps);
            let d = Daemon::start(&dir, uuid);
            // the QEMU driver probes the emulator once (4-5 s here) and
            // caches what it found; later daemons reuse the cache
            let t = Instant::now();
            assert!(
                d.virsh_ok(&d.qemu_uri(), &["domcapabilities", "--virttype", "qemu"]),
                "the QEMU driver of libvirtd does not work; see {}",
                dir.join("libvirtd.log").display()
            );
            eprintln!("QEMU driver of host {host} ready after {:?}", t.elapsed());
            copy_files(&caps, &qemu_caps_cache());
            lab.daemons.push(d);
        }
        Some(lab)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The guest's domain XML in `file`; `kernel_args` for the variants.
    fn config(&self, file: &str, kernel_args: &str) -> PathBuf {
        let p = self.path().join(file);
        let n = &self.name;
        std::fs::write(
            &p,
            format!(
                "<domain type='qemu'>\n  <name>{n}</name>\n  <memory unit='MiB'>96</memory>\n  \
                 <vcpu>1</vcpu>\n  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n    \
                 <kernel>{k}</kernel>\n    <initrd>{i}</initrd>\n    \
                 <cmdline>console=ttyS0 quiet panic=-1 {kernel_args}</cmdline>\n  </os>\n  \
                 <features><acpi/></features>\n  <on_poweroff>destroy</on_poweroff>\n  \
                 <on_reboot>destroy</on_reboot>\n  <on_crash>destroy</on_crash>\n  <devices>\n    \
                 <emulator>/usr/bin/qemu-system-x86_64</emulator>\n    \
                 <controller type='usb' model='none'/>\n    <serial type='pty'>\n      \
                 <log file='/var/log/libvirt/qemu/{n}-serial.log' append='off'/>\n      \
                 <target port='0'/>\n    </serial>\n    \
                 <console type='pty'><target type='serial' port='0'/></console>\n    \
                 <memballoon model='none'/>\n  </devices>\n</domain>\n",
                k = self.img.kernel.display(),
                i = self.img.initrd.display(),
            ),
        )
        .unwrap();
        p
    }

    /// The agent on host `h` (0 = a, 1 = b), each host with its own state.
    fn agent(&self, h: usize, config: &Path) -> Agent {
        let state = self.path().join(format!("node-{h}"));
        std::fs::create_dir_all(&state).unwrap();
        vd_agent(&state, config, &self.daemons[h].qemu_uri())
            .env("OCF_RESKEY_CRM_meta_timeout", "60000")
    }

    /// The guest's serial console as host `h`'s virtlogd logged it.
    fn serial(&self, h: usize) -> String {
        let f = self.daemons[h]
            .log_dir()
            .join(format!("qemu/{}-serial.log", self.name));
        String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default()).into_owned()
    }

    fn wait_serial(&self, h: usize, text: &str, limit: Duration) {
        let t = Instant::now();
        let _report = Elapsed(format!("guest printed {text:?}"), t);
        while !self.serial(h).contains(text) {
            assert!(
                t.elapsed() < limit,
                "guest did not print {text:?} within {limit:?}; serial log:\n{}",
                self.serial(h)
            );
            assert!(
                !emulator_pids(&self.name).is_empty(),
                "the guest is gone before printing {text:?}; serial log:\n{}",
                self.serial(h)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `virsh domstate` on host `h` ("" when libvirt does not know it).
    fn domstate(&self, h: usize) -> String {
        let d = &self.daemons[h];
        d.virsh(&d.qemu_uri(), &["domstate", &self.name])
    }

    fn emulators(&self) -> Vec<i32> {
        emulator_pids(&self.name)
    }
}

/// Prints how long something took, when it ends.
struct Elapsed(String, Instant);

impl Drop for Elapsed {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            eprintln!("{} after {:?}", self.0, self.1.elapsed());
        }
    }
}

impl Drop for QemuLab {
    fn drop(&mut self) {
        for d in &self.daemons {
            d.virsh(&d.qemu_uri(), &["destroy", &self.name]);
        }
        // libvirtd down, or destroy failed: the emulator goes by its PID
        for pid in emulator_pids(&self.name) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            kill_and_wait(pid);
        }
    }
}

#[test]
fn qemu_guest_start_monitor_and_graceful_stop_honouring_shutdown_mode() {
    let Some(lab) = QemuLab::new("life", 1) else {
        return;
    };
    let cfg = lab.config("vm.xml", "");
    let a = lab.agent(0, &cfg);
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("validate-all", rc::SUCCESS);
    let took = timed(&a, "start", rc::SUCCESS);
    assert!(took < Duration::from_secs(30), "start took {took:?}");
    assert_eq!(lab.domstate(0), "running");
    assert_eq!(lab.emulators().len(), 1);
    a.expect("start", rc::SUCCESS);
    assert_eq!(lab.emulators().len(), 1, "a second start started nothing");
    lab.wait_serial(0, READY, BOOT_LIMIT);
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    a.expect("status", rc::SUCCESS);

    // shutdown_mode=acpi: the guest's acpid powers it off
    let acpi = a.clone().param("shutdown_mode", "acpi");
    let out = acpi.expect("stop", rc::SUCCESS);
    let log = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(lab.serial(0).contains(POWER_BUTTON), "{}", lab.serial(0));
    assert!(!log.contains("destroy"), "graceful stop destroyed:\n{log}");
    assert!(lab.emulators().is_empty());
    a.expect("monitor", rc::NOT_RUNNING);
    assert!(timed(&a, "stop", rc::SUCCESS) < Duration::from_secs(3));

    // shutdown_mode=agent: no guest agent here, so no graceful way at all;
    // the power button is never pressed and stop destroys without waiting
    // out its graceful budget
    a.expect("start", rc::SUCCESS);
    lab.wait_serial(0, READY, BOOT_LIMIT);
    let agent_mode = a
        .clone()
        .param("shutdown_mode", "agent")
        .env("OCF_RESKEY_CRM_meta_timeout", "40000");
    let took = timed(&agent_mode, "stop", rc::SUCCESS);
    assert!(took < Duration::from_secs(20), "stop took {took:?}");
    assert!(!lab.serial(0).contains(POWER_BUTTON), "{}", lab.serial(0));
    assert!(lab.emulators().is_empty());
    a.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn qemu_guest_ignoring_acpi_is_destroyed_within_the_stop_deadline() {
    let Some(lab) = QemuLab::new("noacpi", 1) else {
        return;
    };
    let cfg = lab.config("vm.xml", "ra_ignore_acpi");
    let a = lab.agent(0, &cfg);
    a.expect("start", rc::SUCCESS);
    // A deadline too short for destroy (QEMU takes about a second to exit
    // on SIGTERM under TCG): whatever stop answers, 0 means really off.
    let short = a.clone().env("OCF_RESKEY_CRM_meta_timeout", "600");
    let t = Instant::now();
    let code = short.run("stop").get_output().status.code();
    let took = t.elapsed();
    assert!(took < Duration::from_secs(3), "stop took {took:?}");
    match code {
        Some(rc::SUCCESS) => assert!(lab.emulators().is_empty(), "stop said 0, guest runs"),
        Some(rc::ERR_GENERIC) => {}
        other => panic!("stop with a 0.6 s deadline: {other:?}"),
    }
    eprintln!("stop with a 0.6 s deadline: {code:?} after {took:?}");
    // (libvirt goes on destroying it after such a failed stop)
    let t = Instant::now();
    while !lab.emulators().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(20), "guest not destroyed");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Booted, ignoring the power button. 15 s: a third (5 s) kept for
    // destroy, 10 s for a graceful shutdown that never comes.
    a.expect("start", rc::SUCCESS);
    lab.wait_serial(0, READY, BOOT_LIMIT);
    let s = a.clone().env("OCF_RESKEY_CRM_meta_timeout", "15000");
    let t = Instant::now();
    let out = s.expect("stop", rc::SUCCESS);
    let took = t.elapsed();
    assert!(lab.emulators().is_empty(), "stop said 0, guest runs");
    assert_eq!(lab.domstate(0), "");
    let log = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(log.contains("forced shutdown (destroy)"), "{log}");
    assert!(
        took >= Duration::from_secs(9),
        "no graceful attempt: {took:?}"
    );
    assert!(took < Duration::from_secs(16), "stop took {took:?}\n{log}");
    assert!(!lab.serial(0).contains(POWER_BUTTON));
    a.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn qemu_monitor_while_libvirtd_is_down_sees_the_running_emulator() {
    let Some(lab) = QemuLab::new("down", 1) else {
        return;
    };
    let cfg = lab.config("vm.xml", "");
    let a = lab.agent(0, &cfg);
    a.expect("start", rc::SUCCESS);
    lab.wait_serial(0, READY, BOOT_LIMIT);
    let qemu = lab.emulators();
    assert_eq!(qemu.len(), 1);
    lab.daemons[0].kill_libvirtd();
    assert_eq!(lab.emulators(), qemu, "the guest outlives libvirtd");

    // probe, recurring monitor and status: running, never 7, at once
    assert!(timed(&a, "monitor", rc::SUCCESS) < Duration::from_secs(3));
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    let short = a.clone().env("OCF_RESKEY_CRM_meta_timeout", "3000");
    assert!(timed(&short, "status", rc::SUCCESS) < Duration::from_secs(4));
    // stop cannot stop it without libvirt: a failure inside the deadline,
    // not a 0 with the guest still running; start does not start another
    assert!(timed(&short, "stop", rc::ERR_GENERIC) < Duration::from_secs(5));
    assert!(timed(&short, "start", rc::ERR_GENERIC) < Duration::from_secs(5));
    assert_eq!(lab.emulators(), qemu);

    // libvirtd back: it finds its guest, and stop is graceful
    lab.daemons[0].restart_libvirtd();
    assert_eq!(lab.domstate(0), "running");
    a.expect("monitor", rc::SUCCESS);
    let out = a.expect("stop", rc::SUCCESS);
    let log = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(lab.serial(0).contains(POWER_BUTTON), "{}", lab.serial(0));
    assert!(!log.contains("destroy"), "{log}");
    assert!(lab.emulators().is_empty());
    a.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn qemu_live_and_paused_migration_between_two_daemons() {
    let Some(lab) = QemuLab::new("migrate", 2) else {
        return;
    };
    let cfg = lab.config("vm.xml", "");
    let agents = [lab.agent(0, &cfg), lab.agent(1, &cfg)];
    let nodes = ["hosta", "hostb"];
    // migrate_to on `from`, migrate_from on `to`, with the environment
    // Pacemaker gives both ends; the migration stream stays on loopback
    let migrating = |on: usize, from: usize, to: usize| {
        agents[on]
            .clone()
            .env("OCF_RESKEY_CRM_meta_migrate_source", nodes[from])
            .env("OCF_RESKEY_CRM_meta_migrate_target", nodes[to])
            .param("remoteuri", lab.daemons[to].qemu_uri())
            .param("migrateuri", "tcp://127.0.0.1")
            .param("migrate_options", "--listen-address 127.0.0.1")
    };
    let (a, b) = (&agents[0], &agents[1]);
    a.expect("start", rc::SUCCESS);
    lab.wait_serial(0, READY, BOOT_LIMIT);
    b.expect("monitor", rc::NOT_RUNNING);

    // Failed migrations report libvirt's reason and leave the guest
    // running on A: a target daemon that is not there; a paused migration
    // whose target cannot listen (suspended first, so resumed again).
    let out = migrating(0, 0, 1)
        .param(
            "remoteuri",
            "qemu+unix:///system?socket=/nonexistent/libvirt-sock",
        )
        .expect("migrate_to", rc::ERR_GENERIC);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("/nonexistent/libvirt-sock"), "{err}");
    let out = migrating(0, 0, 1)
        .param("migration_mode", "paused")
        .param("migrate_options", "--listen-address 192.0.2.1")
        .expect("migrate_to", rc::ERR_GENERIC);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("suspended for offline migration"), "{err}");
    assert!(err.contains("migration to hostb failed"), "{err}");
    assert_eq!(lab.domstate(0), "running", "resumed after the failure");
    assert_eq!(lab.domstate(1), "");
    a.clone().recurring().expect("monitor", rc::SUCCESS);

    // A -> B -> A live, then A -> B -> A paused (offline: suspended, moved,
    // resumed on the target), each as Pacemaker does it: migrate_to on
    // the source, migrate_from on the target, stop on the source
    for (from, to, mode) in [
        (0, 1, "live"),
        (1, 0, "live"),
        (0, 1, "paused"),
        (1, 0, "paused"),
    ] {
        let t = Instant::now();
        let out = migrating(from, from, to)
            .param("migration_mode", mode)
            .expect("migrate_to", rc::SUCCESS);
        let took = t.elapsed();
        let log = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        let word = if mode == "live" { "live" } else { "offline" };
        assert!(log.contains(&format!("Starting {word} migration")), "{log}");
        migrating(to, from, to)
            .param("migration_mode", mode)
            .expect("migrate_from", rc::SUCCESS);
        assert_eq!(lab.domstate(to), "running", "{mode} to {}", nodes[to]);
        assert_eq!(lab.domstate(from), "", "gone from {}", nodes[from]);
        assert_eq!(lab.emulators().len(), 1);
        agents[from].expect("stop", rc::SUCCESS);
        agents[from].expect("monitor", rc::NOT_RUNNING);
        agents[to]
            .clone()
            .recurring()
            .expect("monitor", rc::SUCCESS);
        eprintln!(
            "{mode} migration {} -> {}: migrate_to {took:?}",
            nodes[from], nodes[to]
        );
    }

    // the guest survived four moves: it answers the power button on A
    let out = a.expect("stop", rc::SUCCESS);
    let log = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(lab.serial(0).contains(POWER_BUTTON), "{}", lab.serial(0));
    assert!(!log.contains("destroy"), "{log}");
    assert!(lab.emulators().is_empty());
}

#[test]
fn guest_building_blocks() {
    // a cpio entry: 110-byte header, name padded to 4, data padded to 4
    let mut c = Cpio::default();
    c.file("init", 0o755, b"#!/bin/sh\n");
    let a = c.finish();
    assert!(a.starts_with(b"070701"));
    assert_eq!(&a[6 + 8..6 + 16], b"000081ED");
    assert_eq!(&a[110..115], b"init\0");
    assert_eq!(&a[116..126], b"#!/bin/sh\n");
    assert!(a.ends_with(b"TRAILER!!!\0\0\0\0") && a.len() % 4 == 0);
    // static or dynamic, by the program headers
    for (bin, want) in [("/usr/bin/busybox", true), ("/usr/bin/virsh", false)] {
        if let Ok(b) = std::fs::read(bin) {
            assert_eq!(is_static_elf64(&b), want, "{bin}");
        }
    }
    assert!(!is_static_elf64(b"#!/bin/sh\n"));
}

// ---------------------------------------------------------------------------
// Benchmark (not a test: nothing is asserted beyond what it needs to run).
// bench/virtualdomain.sh runs it; see there.
// ---------------------------------------------------------------------------

const HB_VIRTUALDOMAIN: &str = "/usr/lib/ocf/resource.d/heartbeat/VirtualDomain";

fn bench_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One process run: its wall time and output.
fn time_run(mut c: Command) -> (Duration, std::process::Output) {
    let t = Instant::now();
    let out = c.output().expect("run a benchmarked command");
    (t.elapsed(), out)
}

fn quiet(mut c: Command) -> Command {
    c.stdin(Stdio::null());
    c
}

fn plain(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    quiet(c)
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Time every command `runs` times, round robin (a load change on the
/// shared machine hits each the same), after one warm-up run each whose
/// exit code is shown; print mean and median per call and the ratios to
/// the first row ("ours") and to the row labelled `bare`.
fn compare(title: &str, runs: usize, rows: &[(&str, &dyn Fn() -> Command)]) {
    let codes: Vec<String> = rows
        .iter()
        .map(|(label, c)| {
            let out = time_run(c()).1;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                println!("  ({label}: warm-up run failed: {})", err.trim_end());
            }
            match out.status.code() {
                Some(rc) => rc.to_string(),
                None => "signal".into(),
            }
        })
        .collect();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); rows.len()];
    for _ in 0..runs {
        for (i, (_, c)) in rows.iter().enumerate() {
            times[i].push(time_run(c()).0);
        }
    }
    let med: Vec<Duration> = times.iter_mut().map(|t| median(t)).collect();
    let ours = millis(med[0]);
    let bare = rows
        .iter()
        .position(|(l, _)| l.starts_with("bare"))
        .map(|i| millis(med[i]));
    println!("\n{title} ({runs} runs each, round robin; rc of the warm-up run)");
    println!(
        "  {:<58} {:>4} {:>9} {:>9} {:>9} {:>9}",
        "command", "rc", "mean ms", "median ms", "x ours", "x bare"
    );
    for (i, (label, _)) in rows.iter().enumerate() {
        let mean = millis(times[i].iter().sum::<Duration>()) / runs as f64;
        let m = millis(med[i]);
        println!(
            "  {:<58} {:>4} {:>9.2} {:>9.2} {:>8.2}x {:>8}",
            label,
            codes[i],
            mean,
            m,
            m / ours,
            bare.map_or("-".into(), |b| format!("{:.2}x", m / b))
        );
    }
}

/// The monitor comparison on one domain: our agent, the heartbeat agent
/// (same parameters: autoset_utilization_* off in both), `virsh domstate`
/// and the bare query (examples/domstate.rs: the same `virt` crate, one
/// connect + lookup + virDomainGetState), then both agents with the
/// utilization defaults (crm_resource runs, and fails without a cluster).
fn bench_monitors(title: &str, runs: usize, state: &Path, cfg: &Path, uri: &str, dom: &str) {
    let (s_ours, s_hb) = (state.join("ours"), state.join("hb"));
    for d in [&s_ours, &s_hb] {
        std::fs::create_dir_all(d.join("rsctmp")).unwrap();
    }
    let mon = vd_agent(&s_ours, cfg, uri).recurring();
    let hb = vd_params(Agent::new(HB_VIRTUALDOMAIN, &s_hb), cfg, uri).recurring();
    let defaults = |a: &Agent| {
        a.clone()
            .unset("OCF_RESKEY_autoset_utilization_cpu")
            .unset("OCF_RESKEY_autoset_utilization_host_memory")
            .unset("OCF_RESKEY_autoset_utilization_hv_memory")
    };
    let (mon_d, hb_d) = (defaults(&mon), defaults(&hb));
    let bare = vd_example("domstate");
    let bare = bare.to_str().unwrap();
    compare(
        title,
        runs,
        &[
            ("ours: VirtualDomain monitor", &|| {
                quiet(mon.command(&["monitor"]))
            }),
            ("heartbeat: VirtualDomain monitor", &|| {
                quiet(hb.command(&["monitor"]))
            }),
            ("virsh -c URI domstate NAME", &|| {
                plain("virsh", &["-c", uri, "domstate", dom])
            }),
            (
                "bare: examples/domstate (virt crate: open+lookup+state)",
                &|| plain(bare, &[uri, dom]),
            ),
            ("/bin/true", &|| plain("/bin/true", &[])),
        ],
    );
    compare(
        &format!(
            "{title}, autoset_utilization_* at their defaults (true: crm_resource, no CIB here)"
        ),
        runs.div_ceil(4),
        &[
            ("ours: VirtualDomain monitor", &|| {
                quiet(mon_d.command(&["monitor"]))
            }),
            ("heartbeat: VirtualDomain monitor", &|| {
                quiet(hb_d.command(&["monitor"]))
            }),
        ],
    );
}

/// `N` from the agent's "migration to X succeeded (N ms)": the time of its
/// libvirt part (connection to the target + virDomainMigrate3).
fn logged_migration_ms(stderr: &[u8]) -> Option<f64> {
    let log = String::from_utf8_lossy(stderr);
    let rest = &log[log.find("succeeded (")? + "succeeded (".len()..];
    rest[..rest.find(" ms)")?].parse().ok()
}

/// QEMU's own migration job time, as the target's libvirt reports it.
fn job_ms(uri: &str, dom: &str) -> Option<f64> {
    let out = plain("virsh", &["-c", uri, "domjobinfo", "--completed", dom])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("Time elapsed:"))?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

fn ms_or_na(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.0}"))
}

fn median_f(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 0 => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        n => v[n / 2],
    }
}

/// The benchmark of issue 6 (run by bench/virtualdomain.sh, never by
/// `cargo test`): monitor cost of our agent vs the heartbeat agent vs
/// `virsh domstate` vs a bare libvirt query, on a test-driver domain and on
/// a real QEMU TCG guest, and migrate_to's overhead beyond libvirt's own
/// migration time (real guest, two daemons). RA_BENCH_RUNS (default 50),
/// RA_BENCH_MIGRATIONS (pairs, default 2), RA_BENCH_QEMU=0 skips the guest,
/// RA_BENCH_TAG names the directories (/var/tmp/ra-rs-vd{,q}-TAG-*) and
/// the guest (ravm-TAG-*) so the script can clean up after a Ctrl-C.
#[test]
#[ignore = "benchmark: run by bench/virtualdomain.sh"]
fn bench_virtualdomain() {
    let runs = bench_env("RA_BENCH_RUNS", 50).max(1);
    let pairs = bench_env("RA_BENCH_MIGRATIONS", 2);
    let tag = std::env::var("RA_BENCH_TAG").unwrap_or_else(|_| "bench".into());
    assert!(
        Path::new(HB_VIRTUALDOMAIN).exists(),
        "{HB_VIRTUALDOMAIN} missing: apt-get install resource-agents"
    );
    let Some(lab) = Lab::new(&tag) else { return };
    let dom = "vdbench";
    // <name> on a line of its own: the heartbeat agent greps for it
    let cfg = lab.path().join("vdbench.xml");
    std::fs::write(
        &cfg,
        format!(
            "<domain type='test'>\n  <name>{dom}</name>\n  <memory>8192</memory>\n  \
             <vcpu>1</vcpu>\n  <os><type>hvm</type></os>\n</domain>\n"
        ),
    )
    .unwrap();
    let uri = lab.daemon.test_uri();
    let a = lab.agent(&cfg);
    a.expect("start", rc::SUCCESS);
    println!(
        "agent: {} (debug build); heartbeat: {HB_VIRTUALDOMAIN}",
        vd_binary()
    );
    bench_monitors(
        "test driver through a private libvirtd (test+unix:///default)",
        runs,
        &lab.path().join("bench"),
        &cfg,
        &uri,
        dom,
    );
    // migrate_to on the test driver: what libvirt answers
    let out = a
        .clone()
        .env("OCF_RESKEY_CRM_meta_migrate_source", "hosta")
        .env("OCF_RESKEY_CRM_meta_migrate_target", "hostb")
        .param("remoteuri", &uri)
        .command(&["migrate_to"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    println!(
        "\nmigrate_to on the test driver: rc {:?}: {}",
        out.status.code(),
        err.lines().last().unwrap_or("")
    );
    a.expect("stop", rc::SUCCESS);
    drop(lab);

    if std::env::var("RA_BENCH_QEMU").is_ok_and(|v| v == "0") {
        println!("\nreal QEMU guest: skipped (RA_BENCH_QEMU=0)");
        return;
    }
    let Some(q) = QemuLab::new(&tag, 2) else {
        println!("\nreal QEMU guest: skipped (no QEMU, busybox or kernel)");
        return;
    };
    let cfg = q.config("vm.xml", "");
    q.agent(0, &cfg).expect("start", rc::SUCCESS);
    q.wait_serial(0, READY, BOOT_LIMIT);
    bench_monitors(
        "real QEMU TCG guest (qemu+unix:///system)",
        runs.div_ceil(2),
        &q.path().join("bench"),
        &cfg,
        &q.daemons[0].qemu_uri(),
        &q.name,
    );

    // Live migrations, alternately by the agent (migrate_to on the source,
    // then migrate_from on the target and stop on the source, as Pacemaker
    // does) and by `virsh migrate` with the same URIs and options.
    let nodes = ["hosta", "hostb"];
    let migrating = |on: usize, from: usize, to: usize| {
        q.agent(on, &cfg)
            .env("OCF_RESKEY_CRM_meta_migrate_source", nodes[from])
            .env("OCF_RESKEY_CRM_meta_migrate_target", nodes[to])
            .param("remoteuri", q.daemons[to].qemu_uri())
            .param("migrateuri", "tcp://127.0.0.1")
            .param("migrate_options", "--listen-address 127.0.0.1")
    };
    println!("\nlive migrations of the real guest between two daemons (wall ms per call)");
    let (mut walls, mut overheads, mut virsh_walls) = (Vec::new(), Vec::new(), Vec::new());
    let mut at = 0;
    for k in 0..pairs * 2 {
        let to = 1 - at;
        let how = format!("{} -> {}", nodes[at], nodes[to]);
        if k % 4 == 0 || k % 4 == 3 {
            let (wall, out) = time_run(quiet(migrating(at, at, to).command(&["migrate_to"])));
            assert!(
                out.status.success(),
                "migrate_to failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let inside = logged_migration_ms(&out.stderr);
            let job = job_ms(&q.daemons[to].qemu_uri(), &q.name);
            let (from_wall, _) = time_run(quiet(migrating(to, at, to).command(&["migrate_from"])));
            q.agent(at, &cfg).expect("stop", rc::SUCCESS);
            let wall = millis(wall);
            walls.push(wall);
            if let Some(i) = inside {
                overheads.push(wall - i);
            }
            println!(
                "  agent {how}: migrate_to {wall:.0}, of which libvirt (target connect + \
                 virDomainMigrate3) {}, QEMU job {}; overhead {}; migrate_from {:.0}",
                ms_or_na(inside),
                ms_or_na(job),
                ms_or_na(inside.map(|i| wall - i)),
                millis(from_wall)
            );
        } else {
            let (wall, out) = time_run(plain(
                "virsh",
                &[
                    "-c",
                    &q.daemons[at].qemu_uri(),
                    "migrate",
                    "--live",
                    &q.name,
                    &q.daemons[to].qemu_uri(),
                    "tcp://127.0.0.1",
                    "--listen-address",
                    "127.0.0.1",
                ],
            ));
            assert!(
                out.status.success(),
                "virsh migrate failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let job = job_ms(&q.daemons[to].qemu_uri(), &q.name);
            virsh_walls.push(millis(wall));
            println!(
                "  virsh {how}: virsh migrate --live {:.0}, QEMU job {}",
                millis(wall),
                ms_or_na(job)
            );
        }
        at = to;
    }
    if !walls.is_empty() {
        println!(
            "  median: agent migrate_to {:.0}, virsh migrate {:.0}; agent overhead beyond \
             its libvirt calls {:.0} ms",
            median_f(&mut walls),
            median_f(&mut virsh_walls),
            median_f(&mut overheads)
        );
    }
}
