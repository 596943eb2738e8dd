//! Real libvirt for tests: daemons of our own and a tiny real QEMU guest.
//!
//! Each `Daemon` is a libvirtd + virtlogd in a private mount namespace
//! (`unshare --mount`: its own /run/libvirt, /etc/libvirt, /var/lib/libvirt,
//! ... and its own host UUID), reached through a socket in the test's
//! temporary directory, so nothing touches the node's own libvirt and tests
//! run side by side. The test driver runs inside that daemon
//! (`test+unix:///default?socket=...`), kept alive by a holder connection.
//! Everything is torn down in `Drop`, also when a test fails.
//!
//! Used by tests/virtualdomain.rs, the rgmanager `vm` persona's tests and
//! the Pacemaker tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ocf::procs;

use super::virtualdomain::{have_libvirtd, vd_binary};
use super::xml::{self, document};
use super::{tempdir, Agent};
/// The script run inside `unshare --mount`: private copies of libvirt's
/// directories, a tmpfs on /run/libvirt, then virtlogd and libvirtd.
pub const DAEMON_SCRIPT: &str = r#"set -eu
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
LIBVIRT_LOG_OUTPUTS="3:file:$D/libvirtd.log${RA_LIBVIRTD_LOG_OUTPUTS:+ $RA_LIBVIRTD_LOG_OUTPUTS}" \
    libvirtd -d -p "$D/libvirtd.pid" -f /etc/libvirt/libvirtd.conf
"#;

/// One libvirtd (+ virtlogd) of our own, and a holder connection on its
/// test driver.
pub struct Daemon {
    pub dir: PathBuf,
    pub holder: Option<Child>,
}

impl Daemon {
    pub fn start(dir: &Path, uuid: &str) -> Daemon {
        Daemon::start_in(dir, uuid, Command::new("unshare"))
    }

    /// [`Daemon::start`] through `unshare`, a command that runs `unshare`
    /// with the arguments it is given: e.g. `nsenter ... -- unshare` to
    /// start the daemon inside other namespaces (a Pacemaker test's
    /// cluster node). Its environment reaches the daemons: with
    /// `LIBVIRT_LOG_FILTERS`, `RA_LIBVIRTD_LOG_OUTPUTS` adds libvirt log
    /// outputs to `libvirtd.log`'s warnings.
    pub fn start_in(dir: &Path, uuid: &str, mut unshare: Command) -> Daemon {
        std::fs::create_dir_all(dir).unwrap();
        let mut d = Daemon {
            dir: dir.to_path_buf(),
            holder: None,
        };
        let out = unshare
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
        d.wait_answering(&d.test_uri(), "libvirtd did not answer");
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

    pub fn socket(&self) -> String {
        self.dir
            .join("sock/libvirt-sock")
            .to_string_lossy()
            .into_owned()
    }

    pub fn test_uri(&self) -> String {
        format!("test+unix:///default?socket={}", self.socket())
    }

    /// The daemon's QEMU driver (real guests).
    pub fn qemu_uri(&self) -> String {
        format!("qemu+unix:///system?socket={}", self.socket())
    }

    /// What virtlogd, and the daemon, write under `/var/log/libvirt` (the
    /// daemon's private copy).
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    pub fn pid(&self, file: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Wait (30 s at most) until the daemon answers on `uri`.
    fn wait_answering(&self, uri: &str, failure: &str) {
        let t = Instant::now();
        while !self.virsh_ok(uri, &["uri"]) {
            assert!(t.elapsed() < Duration::from_secs(30), "{failure}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn virsh_ok(&self, uri: &str, args: &[&str]) -> bool {
        Command::new("virsh")
            .arg("-c")
            .arg(uri)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn virsh(&self, uri: &str, args: &[&str]) -> String {
        let out = Command::new("virsh")
            .arg("-c")
            .arg(uri)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// libvirtd only (guests and virtlogd stay): "libvirtd is down".
    pub fn kill_libvirtd(&self) {
        if let Some(pid) = self.pid("libvirtd.pid") {
            kill_and_wait(pid);
        }
    }

    /// libvirtd again, in the mount namespace its virtlogd still holds
    /// (which keeps the guests' runtime state in its /run/libvirt).
    pub fn restart_libvirtd(&self) {
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
        self.wait_answering(
            &self.qemu_uri(),
            "libvirtd did not answer after its restart",
        );
    }
}

pub fn kill_and_wait(pid: i32) {
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
pub struct Lab {
    pub daemon: Daemon,
    pub dir: tempfile::TempDir,
}

impl Lab {
    pub fn new(name: &str) -> Option<Lab> {
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

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A test-driver domain config named `dom`, in file `file`.
    pub fn test_config(&self, file: &str, dom: &str) -> PathBuf {
        let p = self.path().join(file);
        std::fs::write(&p, test_domain_xml(dom, None)).unwrap();
        p
    }

    pub fn agent(&self, config: &Path) -> Agent {
        vd_agent(self.path(), config, &self.daemon.test_uri())
    }

    pub fn domstate(&self, dom: &str) -> String {
        self.daemon
            .virsh(&self.daemon.test_uri(), &["domstate", dom])
    }
}

/// The agent for `config` on `hypervisor`, its state (HA_RSCTMP) under
/// `state`.
pub fn vd_agent(state: &Path, config: &Path, hypervisor: &str) -> Agent {
    vd_params(Agent::new(vd_binary(), state), config, hypervisor)
}

/// The environment of [`vd_agent`], for any VirtualDomain agent (ours or
/// the heartbeat one).
pub fn vd_params(agent: Agent, config: &Path, hypervisor: &str) -> Agent {
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

// ---------------------------------------------------------------------------
// Real QEMU (TCG) guests.
//
// A tiny guest, built once per test run under the target directory: the
// stock Debian kernel (/boot, the linux-image-amd64 package) and an
// initramfs of busybox-static whose /init loads evdev + button, starts
// busybox acpid (the ACPI power button runs `poweroff -f`) and prints
// `RAVM: ready` on the serial console, logged by the daemon's virtlogd. The
// kernel argument `ra_ignore_acpi` makes the same guest ignore the power
// button (no acpid): a guest only destroy can stop; `ra_uptime` makes it
// print its uptime every second.
//
// Each case starts its own daemon(s) (the `Daemon` fixture: the QEMU driver
// of the same libvirtd), and at most one case runs at a time (`QEMU_LOCK`):
// the machine has two cores and a migration briefly runs two emulators.
// `QemuLab` destroys the guest through every daemon and then kills any
// emulator of it still alive (libvirtd may be down when a case fails)
// before the daemons and the directory go. Skipped without QEMU, busybox or
// a kernel with its modules, unless RA_REQUIRE_GUEST is set (CI).
// ---------------------------------------------------------------------------

pub const READY: &str = "RAVM: ready";
pub const POWER_BUTTON: &str = "RAVM: power button";
/// From `start` to the guest's userspace: 6-7 s on an idle 2-core machine
/// (labs/libvirt); a busy CI runner gets much more.
/// With the kernel argument `ra_uptime`, the guest prints this and its
/// uptime in seconds every second (a guest that moved keeps counting; a
/// new one starts again from zero).
pub const UPTIME: &str = "RAVM: uptime ";
pub const BOOT_LIMIT: Duration = Duration::from_secs(120);

pub const GUEST_INIT: &str = r#"#!/bin/sh
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
if grep -q ra_uptime /proc/cmdline; then
    while :; do
        read up idle </proc/uptime
        echo "RAVM: uptime $up" >/dev/console
        sleep 1
    done &
fi
while :; do sleep 3600; done
"#;

/// busybox acpid maps KEY_POWER to ./PWRF/00000080 under /etc/acpi.
pub const GUEST_POWER_BUTTON: &str = r#"#!/bin/sh
echo "RAVM: power button -> poweroff" >/dev/console
poweroff -f
"#;

pub const GUEST_APPLETS: &[&str] = &[
    "sh", "mount", "insmod", "grep", "acpid", "poweroff", "sleep", "cat", "echo",
];

/// A `newc` cpio archive (what the kernel unpacks as its initramfs), written
/// directly: no cpio or shell needed, device nodes without privileges.
#[derive(Default)]
pub struct Cpio {
    pub buf: Vec<u8>,
    pub ino: u32,
}

impl Cpio {
    pub fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
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

    pub fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    pub fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[], (0, 0));
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | mode, data, (0, 0));
    }

    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120777, target.as_bytes(), (0, 0));
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.buf
    }
}

/// A kernel module's bytes (Debian 12 ships them uncompressed; newer
/// kernels xz or zstd).
pub fn module_bytes(dir: &Path, rel: &str) -> Result<Vec<u8>, String> {
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

pub struct GuestImage {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

/// Build the guest (kernel copy + initramfs) under the target directory.
pub fn build_guest() -> Result<GuestImage, String> {
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
        let tmp = &crate::support::target_tmpdir();
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
pub fn uncompressed_kernel(bzimage: &[u8], version: &str) -> Option<Vec<u8>> {
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
pub fn is_static_elf64(elf: &[u8]) -> bool {
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
pub fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The guest image, built once per test process; None (with a SKIP
/// message) where it cannot be built, a failure if RA_REQUIRE_GUEST is set.
pub fn guest_image() -> Option<&'static GuestImage> {
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
pub fn qemu_caps_cache() -> PathBuf {
    crate::support::target_tmpdir().join("vd-qemu-capabilities")
}

/// Copy the files of `from` (if any) into `to`, each atomically.
pub fn copy_files(from: &Path, to: &Path) {
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
pub static QEMU_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The PIDs of the QEMU processes running guest `name` (`-name guest=NAME,`).
pub fn emulator_pids(name: &str) -> Vec<i32> {
    let want = format!("guest={name},");
    procs::find_by_argv(|argv| {
        argv[0].ends_with("qemu-system-x86_64")
            && argv
                .windows(2)
                .any(|w| w[0] == "-name" && w[1].starts_with(&want))
    })
}

/// A real-guest case: its directory, daemon(s), guest name, and the lock.
/// Fields drop in order after `Drop::drop` has stopped the guest.
pub struct QemuLab {
    pub daemons: Vec<Daemon>,
    pub dir: tempfile::TempDir,
    pub name: String,
    pub img: &'static GuestImage,
    pub _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl QemuLab {
    /// `hosts` daemons ("a", "b", ...), each with its own host UUID.
    pub fn new(case: &str, hosts: usize) -> Option<QemuLab> {
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

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The guest's domain XML in `file`; `kernel_args` for the variants.
    pub fn config(&self, file: &str, kernel_args: &str) -> PathBuf {
        let p = self.path().join(file);
        std::fs::write(&p, guest_xml(&self.name, self.img, kernel_args)).unwrap();
        p
    }

    /// The agent on host `h` (0 = a, 1 = b), each host with its own state.
    pub fn agent(&self, h: usize, config: &Path) -> Agent {
        let state = self.path().join(format!("node-{h}"));
        std::fs::create_dir_all(&state).unwrap();
        vd_agent(&state, config, &self.daemons[h].qemu_uri())
            .env("OCF_RESKEY_CRM_meta_timeout", "60000")
    }

    /// The guest's serial console as host `h`'s virtlogd logged it.
    pub fn serial(&self, h: usize) -> String {
        let f = self.daemons[h]
            .log_dir()
            .join(format!("qemu/{}-serial.log", self.name));
        String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default()).into_owned()
    }

    pub fn wait_serial(&self, h: usize, text: &str, limit: Duration) {
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
    pub fn domstate(&self, h: usize) -> String {
        let d = &self.daemons[h];
        d.virsh(&d.qemu_uri(), &["domstate", &self.name])
    }

    pub fn emulators(&self) -> Vec<i32> {
        emulator_pids(&self.name)
    }
}

/// A domain of libvirt's test driver named `name` (8 MiB, one vCPU), with
/// what `devices` writes in its `<devices>`, if anything.
pub fn test_domain_xml(name: &str, devices: Option<xml::Content>) -> String {
    document(true, |w| {
        w.create_element("domain")
            .with_attribute(("type", "test"))
            .write_inner_content(|w| {
                xml::text(w, "name", &[], name)?;
                xml::text(w, "memory", &[], "8192")?;
                xml::text(w, "vcpu", &[], "1")?;
                w.create_element("os")
                    .write_inner_content(|w| xml::text(w, "type", &[], "hvm"))?;
                if let Some(devices) = devices {
                    w.create_element("devices").write_inner_content(devices)?;
                }
                Ok(())
            })?;
        Ok(())
    })
}

/// The domain XML of guest `name` (QEMU TCG, 96 MiB, no disk, no NIC, the
/// serial console logged by virtlogd to
/// `/var/log/libvirt/qemu/<name>-serial.log`); `kernel_args` for the variants.
pub fn guest_xml(name: &str, img: &GuestImage, kernel_args: &str) -> String {
    let kernel = img.kernel.to_string_lossy();
    let initrd = img.initrd.to_string_lossy();
    let cmdline = format!("console=ttyS0 quiet panic=-1 {kernel_args}");
    let serial_log = format!("/var/log/libvirt/qemu/{name}-serial.log");
    document(true, |w| {
        w.create_element("domain")
            .with_attribute(("type", "qemu"))
            .write_inner_content(|w| {
                xml::text(w, "name", &[], name)?;
                xml::text(w, "memory", &[("unit", "MiB")], "96")?;
                xml::text(w, "vcpu", &[], "1")?;
                w.create_element("os").write_inner_content(|w| {
                    let machine = [("arch", "x86_64"), ("machine", "pc")];
                    xml::text(w, "type", &machine, "hvm")?;
                    xml::text(w, "kernel", &[], &kernel)?;
                    xml::text(w, "initrd", &[], &initrd)?;
                    xml::text(w, "cmdline", &[], &cmdline)
                })?;
                w.create_element("features")
                    .write_inner_content(|w| xml::empty(w, "acpi", &[]))?;
                for event in ["on_poweroff", "on_reboot", "on_crash"] {
                    xml::text(w, event, &[], "destroy")?;
                }
                w.create_element("devices").write_inner_content(|w| {
                    xml::text(w, "emulator", &[], "/usr/bin/qemu-system-x86_64")?;
                    xml::empty(w, "controller", &[("type", "usb"), ("model", "none")])?;
                    w.create_element("serial")
                        .with_attribute(("type", "pty"))
                        .write_inner_content(|w| {
                            let log = [("file", serial_log.as_str()), ("append", "off")];
                            xml::empty(w, "log", &log)?;
                            xml::empty(w, "target", &[("port", "0")])
                        })?;
                    w.create_element("console")
                        .with_attribute(("type", "pty"))
                        .write_inner_content(|w| {
                            xml::empty(w, "target", &[("type", "serial"), ("port", "0")])
                        })?;
                    xml::empty(w, "memballoon", &[("model", "none")])
                })?;
                Ok(())
            })?;
        Ok(())
    })
}

/// Prints how long something took, when it ends.
pub struct Elapsed(String, Instant);

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
