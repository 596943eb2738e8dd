//! The two-node lab: two guest kernels as two cluster nodes on one shared
//! disk, after ../shared/labs/two-nodes.
//!
//! Each node is a virtme-ng guest (`vng`, the stock Debian kernel, QEMU
//! TCG, one vCPU, the host's root shared read-only with virtme-ng's
//! per-guest tmpfs overlays on /etc, /usr, /var), booted with its own
//! hostname (`--name node-a`: its cluster node name) and, through
//! `--qemu-opts`:
//! - the SAN LUN: ONE raw image attached to both guests as a virtio disk,
//!   `share-rw=on` and `file.locking=off` (QEMU's image locking would keep
//!   the second guest out); it carries a partition table written by the harness (a small
//!   partition for SBD, then one partition per volume group), and is found
//!   inside by its serial, not by a device name;
//! - the private network: a QEMU socket netdev, `listen` on 127.0.0.1 in
//!   node-a's QEMU, `connect` in node-b's (started once the listener is
//!   up), link-local addresses 169.254.77.1/.2 inside: nothing else can
//!   reach that link;
//! - a watchdog: an emulated `i6300esb` (and `softdog` loaded inside).
//!
//! The host's /etc is shared read-only, so what must differ per node lives
//! in the node's own directory under the lab directory (the one directory
//! shared read-write with both guests, `--rwdir`, at the same path inside):
//! `etc-corosync`, `var-lib-pacemaker`, `var-lib-corosync`, `etc-lvm` are
//! bind-mounted over their places inside the guest, the logs go to `logs`;
//! the host writes them and reads them back after a failure. The agents
//! under test are copied into the guest's own
//! /usr/lib/ocf/resource.d/heartbeat-rs (its tmpfs overlay: an exec there
//! does not read the binary over 9p every time).
//!
//! The command channel: each guest runs this test binary as a driver
//! (`RA_IN_GUEST=1 ... --ignored --exact guest_node_driver`), which
//! executes requests the host writes as files in the node's `cmd`
//! directory, one argv per file, and answers with files next to it (the
//! exit code file last, renamed into place). Why files and not a virtio
//! serial port or ssh: the lab directory is already shared (9p, mounted
//! `sync`, no client cache: a file the host renames into place is seen at
//! the next directory read), a request and its answer stay there for the
//! post-mortem, nothing has to be parsed out of a console stream that the
//! kernel and virtme-ng also write to, no network service runs on the
//! cluster link, and no shell is involved: the driver runs argv vectors.
//! A request names a time limit; the host gives up after it (plus slack)
//! and also as soon as that guest's QEMU has gone.
//!
//! Cleanup, also when a test fails: [`Lab`]'s `Drop` asks both drivers to
//! halt (they kill what they spawned, the guests power off), then kills
//! each vng/QEMU process group that is still there, and the temporary lab
//! directory (images included) is removed. At most two guests run at a
//! time: labs are taken one after the other (a process-wide lock).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The `PATH` of everything run in the guests.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The two node names (hostnames, corosync and Pacemaker node names).
pub const NODES: [&str; 2] = ["node-a", "node-b"];
/// Their addresses on the private link.
pub const ADDRS: [&str; 2] = ["169.254.77.1", "169.254.77.2"];
/// The shared disk's serial, as the guests see it in /sys/block/*/serial.
pub const DISK_SERIAL: &str = "ra-rs-shared-lun";
/// Its size and partitions (MiB): SBD, then one PV per volume group
/// (xfs wants 300 MiB at least).
pub const DISK_MB: u64 = 1024;
pub const PARTITIONS_MB: [u64; 3] = [16, 480, 480];
/// Boot of both guests until both drivers answer (measured: about 60-100 s
/// for the pair on 2 cores).
pub const BOOT_LIMIT: Duration = Duration::from_secs(300);

/// Labs one after the other: never more than two guests.
static ONE_LAB: Mutex<()> = Mutex::new(());

/// The environment variables of the driver inside a guest.
const ENV_LAB: &str = "RA_TWO_NODES_LAB";
const ENV_NODE: &str = "RA_TWO_NODES_NODE";

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/bin", "/usr/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// The newest /boot/vmlinuz-* whose modules (device-mapper included) are
/// installed.
fn guest_kernel() -> Option<PathBuf> {
    let mut kernels: Vec<(String, PathBuf)> = std::fs::read_dir("/boot")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let ver = name.strip_prefix("vmlinuz-")?.to_string();
            Path::new("/lib/modules")
                .join(&ver)
                .join("kernel/drivers/md")
                .is_dir()
                .then(|| (ver, e.path()))
        })
        .collect();
    kernels.sort();
    kernels.pop().map(|(_, p)| p)
}

/// What a command on a node gave.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
    /// stdout and stderr, for messages.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// One guest kernel: its vng/QEMU process group and its directory.
pub struct Node {
    pub name: String,
    pub addr: String,
    /// The node's own directory in the lab (same path inside the guest).
    pub dir: PathBuf,
    vng: Child,
    seq: AtomicU32,
}

impl Node {
    fn cmd_dir(&self) -> PathBuf {
        self.dir.join("cmd")
    }

    /// Whether the guest's vng/QEMU is still there.
    pub fn alive(&mut self) -> bool {
        matches!(self.vng.try_wait(), Ok(None))
    }

    /// The pid of the node's QEMU (vng's process group).
    pub fn qemu_pid(&self) -> Option<u32> {
        let pgid = self.vng.id() as i32;
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (comm, rest) = stat.split_once(") ")?;
            let pg: i32 = rest.split(' ').nth(2)?.parse().ok()?;
            (pg == pgid && comm.contains("qemu-system")).then_some(pid)
        })
    }

    /// Send one request; wait for its answer at most `limit` (+ slack).
    fn request(&mut self, kind: &str, env: &[(&str, &str)], argv: &[&str], limit: Duration) -> Out {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let dir = self.cmd_dir();
        let mut body = format!("{kind}\ntimeout {}\n", limit.as_secs());
        for (k, v) in env {
            body += &format!("env {k}={v}\n");
        }
        for a in argv {
            assert!(!a.contains('\n'), "no newline in a request: {a:?}");
            body += &format!("arg {a}\n");
        }
        let tmp = dir.join(format!("{n:05}.tmp"));
        std::fs::write(&tmp, body).unwrap();
        std::fs::rename(&tmp, dir.join(format!("{n:05}.cmd"))).unwrap();
        let rc = dir.join(format!("{n:05}.rc"));
        let t0 = Instant::now();
        loop {
            if let Ok(s) = std::fs::read_to_string(&rc) {
                let read = |ext: &str| {
                    std::fs::read_to_string(dir.join(format!("{n:05}.{ext}"))).unwrap_or_default()
                };
                return Out {
                    code: s.trim().parse().unwrap_or(-1),
                    stdout: read("out"),
                    stderr: read("err"),
                };
            }
            assert!(
                self.alive(),
                "{}: the guest is gone while running {argv:?}; see {}",
                self.name,
                self.dir.display()
            );
            assert!(
                t0.elapsed() < limit + Duration::from_secs(30),
                "{}: no answer to {argv:?} within {limit:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Run `argv` on the node (limit 120 s).
    pub fn run(&mut self, argv: &[&str]) -> Out {
        self.run_env(&[], argv, Duration::from_secs(120))
    }

    /// Run `argv` on the node with `env` added to PATH, within `limit`.
    pub fn run_env(&mut self, env: &[(&str, &str)], argv: &[&str], limit: Duration) -> Out {
        self.request("run", env, argv, limit)
    }

    /// Run on the node; panic with the output unless it succeeds.
    #[track_caller]
    pub fn sh(&mut self, argv: &[&str]) -> String {
        let out = self.run(argv);
        assert!(
            out.ok(),
            "{}: {argv:?} failed ({}): {}",
            self.name,
            out.code,
            out.text()
        );
        out.stdout
    }

    /// Start a daemon on the node (its output to `log`, in its own session;
    /// the driver kills it when it halts); returns its pid in the guest.
    pub fn spawn(&mut self, env: &[(&str, &str)], argv: &[&str], log: &Path) -> u32 {
        let mut full = vec![log.to_str().unwrap()];
        full.extend_from_slice(argv);
        let out = self.request("spawn", env, &full, Duration::from_secs(30));
        assert!(
            out.ok(),
            "{}: cannot start {argv:?}: {}",
            self.name,
            out.text()
        );
        out.stdout.trim().parse().unwrap()
    }

    /// Serve `token` once on `addr:port` of the node (in the background);
    /// [`Node::tcp_fetch`] on the other node reads it.
    pub fn tcp_serve(&mut self, addr: &str, port: u16, token: &str) {
        let out = self.request(
            "tcp-serve",
            &[],
            &[addr, &port.to_string(), token],
            Duration::from_secs(30),
        );
        assert!(out.ok(), "{}: tcp-serve: {}", self.name, out.text());
    }

    /// Connect to `addr:port` (retrying within `limit`) and read what comes.
    pub fn tcp_fetch(&mut self, addr: &str, port: u16, limit: Duration) -> Out {
        self.request("tcp-fetch", &[], &[addr, &port.to_string()], limit)
    }

    /// The node's path of the shared disk's partition `n` (1-based), found
    /// by the disk's serial.
    pub fn shared_partition(&mut self, n: usize) -> String {
        let out = self.request("find-disk", &[], &[DISK_SERIAL], Duration::from_secs(30));
        assert!(out.ok(), "{}: shared disk: {}", self.name, out.text());
        format!("{}{n}", out.stdout.trim())
    }
}

/// Two booted guest kernels on one disk and one link.
pub struct Lab {
    pub nodes: Vec<Node>,
    pub dir: tempfile::TempDir,
    pub disk: PathBuf,
    pub boot_time: Duration,
    _one_at_a_time: MutexGuard<'static, ()>,
}

/// A free TCP port on 127.0.0.1 (for QEMU's socket netdev).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether something listens on 127.0.0.1:`port` (read from /proc, so the
/// single connection QEMU accepts is not used up by looking).
fn listening(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1] == want && f[3] == "0A"
        })
}

impl Lab {
    /// Boot the two nodes; `None` (after printing SKIP) when vng, QEMU or
    /// a guest kernel is missing, unless `RA_REQUIRE_GUEST` is set.
    pub fn boot(suite: &str) -> Option<Lab> {
        let lock = ONE_LAB.lock().unwrap_or_else(|e| e.into_inner());
        let require = std::env::var_os("RA_REQUIRE_GUEST").is_some();
        let (vng, kernel, qemu) = (
            find_in_path("vng"),
            guest_kernel(),
            find_in_path("qemu-system-x86_64"),
        );
        let (Some(vng), Some(kernel), Some(_)) = (&vng, &kernel, &qemu) else {
            let msg = format!(
                "vng: {vng:?}, guest kernel: {kernel:?}, QEMU: {qemu:?}; \
                 run .ci/install-guest.sh to install them"
            );
            assert!(
                !require,
                "RA_REQUIRE_GUEST is set but the guest is missing: {msg}"
            );
            eprintln!("SKIP {suite}: {msg}");
            return None;
        };
        assert!(
            nix::unistd::geteuid().is_root(),
            "{suite} boots two guests with a shared disk: run it as root"
        );
        let dir = super::tempdir("two-nodes");
        // hacluster (inside) must reach the logs below it
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let disk = dir.path().join("shared-lun.img");
        make_disk(&disk);
        let port = free_port();
        let exe = std::env::current_exe().unwrap();
        let mut lab = Lab {
            nodes: Vec::new(),
            disk: disk.clone(),
            boot_time: Duration::ZERO,
            dir,
            _one_at_a_time: lock,
        };
        let t0 = Instant::now();
        for (i, name) in NODES.iter().enumerate() {
            let ndir = lab.dir.path().join(name);
            std::fs::create_dir_all(ndir.join("cmd")).unwrap();
            std::fs::create_dir_all(ndir.join("logs")).unwrap();
            let side = if i == 0 {
                format!("listen=127.0.0.1:{port}")
            } else {
                let t = Instant::now();
                while !listening(port) {
                    assert!(
                        lab.nodes[0].alive() && t.elapsed() < Duration::from_secs(60),
                        "node-a's QEMU never listened on 127.0.0.1:{port}; see {}",
                        lab.nodes[0].dir.join("logs/vng.log").display()
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
                format!("connect=127.0.0.1:{port}")
            };
            let qemu_opts = format!(
                "-drive file={},format=raw,if=none,id=lun,file.locking=off,cache=none \
                 -device virtio-blk-pci,drive=lun,share-rw=on,serial={DISK_SERIAL} \
                 -netdev socket,id=c0,{side} -device virtio-net-pci,netdev=c0,mac=52:54:00:00:77:0{} \
                 -device i6300esb",
                disk.display(),
                i + 1
            );
            let script = format!(
                "export RA_IN_GUEST=1 {ENV_LAB}='{lab}' {ENV_NODE}='{name}' PATH={PATH}; \
                 cd / && exec '{exe}' --ignored --exact guest_node_driver --nocapture \
                 >'{ndir}/logs/driver.log' 2>&1",
                lab = lab.dir.path().display(),
                exe = exe.display(),
                ndir = ndir.display(),
            );
            let log = std::fs::File::create(ndir.join("logs/vng.log")).unwrap();
            let vng = Command::new(vng)
                .arg("-r")
                .arg(kernel)
                .args([
                    "--disable-kvm",
                    "--memory",
                    "1G",
                    "--cpus",
                    "1",
                    "--name",
                    name,
                ])
                .arg(format!("--rwdir={}", lab.dir.path().display()))
                .arg(format!("--qemu-opts={qemu_opts}"))
                .arg("--exec")
                .arg(&script)
                .current_dir("/")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", vng.display()));
            lab.nodes.push(Node {
                name: name.to_string(),
                addr: ADDRS[i].to_string(),
                dir: ndir,
                vng,
                seq: AtomicU32::new(0),
            });
        }
        for i in 0..2 {
            let ready = lab.nodes[i].dir.join("ready");
            while !ready.exists() {
                let n = &mut lab.nodes[i];
                assert!(
                    n.alive(),
                    "{} did not boot; see {}",
                    n.name,
                    n.dir.join("logs").display()
                );
                assert!(
                    t0.elapsed() < BOOT_LIMIT,
                    "{} did not boot within {BOOT_LIMIT:?}",
                    n.name
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        lab.boot_time = t0.elapsed();
        eprintln!("two nodes booted in {:.0?}", lab.boot_time);
        Some(lab)
    }

    pub fn node(&mut self, name: &str) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Bring up the private link inside both nodes: the one NIC each has
    /// (the socket netdev's), its link-local address, up.
    pub fn link_up(&mut self) -> Vec<String> {
        let mut nics = Vec::new();
        for n in &mut self.nodes {
            let out = n.sh(&["ls", "/sys/class/net"]);
            let nic: Vec<&str> = out.split_whitespace().filter(|d| *d != "lo").collect();
            assert_eq!(nic.len(), 1, "{}: one NIC wanted, got {nic:?}", n.name);
            let nic = nic[0].to_string();
            let addr = format!("{}/24", n.addr);
            n.sh(&["ip", "link", "set", "lo", "up"]);
            n.sh(&["ip", "addr", "add", &addr, "dev", &nic]);
            n.sh(&["ip", "link", "set", &nic, "up"]);
            nics.push(nic);
        }
        nics
    }

    /// A file in the lab directory (same path inside the guests).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in &self.nodes {
            let _ = std::fs::write(n.cmd_dir().join("halt"), "");
        }
        let t0 = Instant::now();
        for n in &mut self.nodes {
            while n.alive() && t0.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(200));
            }
            if n.alive() {
                eprintln!("{}: guest still up after halt: killing its QEMU", n.name);
            }
            // The whole process group (vng and its QEMU), by its id.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(n.vng.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = n.vng.wait();
        }
        if std::thread::panicking() {
            for n in &self.nodes {
                for f in ["logs/driver.log", "logs/vng.log"] {
                    let s = std::fs::read_to_string(n.dir.join(f)).unwrap_or_default();
                    let tail: Vec<&str> = s.lines().rev().take(30).collect();
                    eprintln!("---- {} {f} (end)", n.name);
                    for l in tail.iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
        }
    }
}

/// The shared LUN: a sparse raw image with an MS-DOS partition table (SBD,
/// then the PVs), written here: four 16-byte entries at byte 446 and the
/// 0x55AA signature (the host may have no fdisk).
fn make_disk(path: &Path) {
    let mut mbr = [0u8; 512];
    let mut lba: u64 = 2048; // 1 MiB aligned
    for (i, mb) in PARTITIONS_MB.iter().enumerate() {
        let sectors = mb * 2048;
        let e = &mut mbr[446 + 16 * i..446 + 16 * (i + 1)];
        // CHS fields unused (0xFE 0xFF 0xFF: "use LBA"); type 0x8E: Linux LVM
        e[1..4].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
        e[4] = if i == 0 { 0x83 } else { 0x8E };
        e[5..8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
        e[8..12].copy_from_slice(&(lba as u32).to_le_bytes());
        e[12..16].copy_from_slice(&(sectors as u32).to_le_bytes());
        lba += sectors;
    }
    assert!(
        lba * 512 <= DISK_MB * 1024 * 1024,
        "partitions exceed the disk"
    );
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&mbr).unwrap();
    f.set_len(DISK_MB * 1024 * 1024).unwrap();
}

// ---------------------------------------------------------------------------
// Inside a guest: the driver.

/// Inside a guest: execute the host's requests until told to halt. Each
/// request `NNNNN.cmd` gets `NNNNN.out`, `NNNNN.err` and, last, `NNNNN.rc`.
pub fn driver() {
    let lab = PathBuf::from(std::env::var(ENV_LAB).expect("the lab directory"));
    let me = std::env::var(ENV_NODE).expect("the node name");
    let dir = lab.join(&me).join("cmd");
    let mut daemons: Vec<Child> = Vec::new();
    let mut done = std::collections::BTreeSet::new();
    let host = nix::unistd::gethostname().unwrap();
    std::fs::write(
        lab.join(&me).join("ready"),
        host.to_string_lossy().as_bytes(),
    )
    .unwrap();
    eprintln!("driver for {me} ready");
    loop {
        daemons.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        if dir.join("halt").exists() || !dir.exists() {
            break;
        }
        let mut todo: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        e.file_name()
                            .to_str()?
                            .strip_suffix(".cmd")
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        todo.retain(|n| !done.contains(n));
        todo.sort();
        if todo.is_empty() {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        for n in todo {
            let body = std::fs::read_to_string(dir.join(format!("{n}.cmd"))).unwrap_or_default();
            let (code, out, err) = execute(&body, &mut daemons);
            std::fs::write(dir.join(format!("{n}.out")), out).unwrap();
            std::fs::write(dir.join(format!("{n}.err")), err).unwrap();
            std::fs::write(dir.join(format!("{n}.rctmp")), code.to_string()).unwrap();
            std::fs::rename(dir.join(format!("{n}.rctmp")), dir.join(format!("{n}.rc"))).unwrap();
            done.insert(n);
        }
    }
    eprintln!(
        "driver for {me}: halting, killing {} daemon(s)",
        daemons.len()
    );
    for c in &mut daemons {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = c.wait();
    }
}

/// One request: (exit code, stdout, stderr).
fn execute(body: &str, daemons: &mut Vec<Child>) -> (i32, String, String) {
    let mut lines = body.lines();
    let kind = lines.next().unwrap_or("");
    let mut limit = Duration::from_secs(120);
    let mut env: Vec<(String, String)> = vec![("PATH".into(), PATH.into())];
    let mut argv: Vec<String> = Vec::new();
    for l in lines {
        if let Some(s) = l.strip_prefix("timeout ") {
            limit = Duration::from_secs(s.parse().unwrap_or(120));
        } else if let Some(kv) = l.strip_prefix("env ") {
            if let Some((k, v)) = kv.split_once('=') {
                env.retain(|(x, _)| x != k);
                env.push((k.into(), v.into()));
            }
        } else if let Some(a) = l.strip_prefix("arg ") {
            argv.push(a.into());
        }
    }
    let fail = |msg: String| (-1, String::new(), msg);
    match kind {
        "run" => {
            let Some((prog, args)) = argv.split_first() else {
                return fail("empty argv".into());
            };
            let child = Command::new(prog)
                .args(args)
                .env_clear()
                .envs(env.iter().map(|(k, v)| (k, v)))
                .current_dir("/")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .spawn();
            let mut child = match child {
                Ok(c) => c,
                Err(e) => return fail(format!("cannot run {prog}: {e}")),
            };
            let mut so = child.stdout.take().unwrap();
            let mut se = child.stderr.take().unwrap();
            let ro = std::thread::spawn(move || {
                let mut s = Vec::new();
                let _ = so.read_to_end(&mut s);
                s
            });
            let re = std::thread::spawn(move || {
                let mut s = Vec::new();
                let _ = se.read_to_end(&mut s);
                s
            });
            let t0 = Instant::now();
            let status = loop {
                if let Ok(Some(s)) = child.try_wait() {
                    break Some(s);
                }
                if t0.elapsed() > limit {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(child.id() as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    let _ = child.wait();
                    break None;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let out = String::from_utf8_lossy(&ro.join().unwrap()).into_owned();
            let mut err = String::from_utf8_lossy(&re.join().unwrap()).into_owned();
            let code = match status {
                Some(s) => s.code().unwrap_or(-1),
                None => {
                    err += &format!("\n(killed after {limit:?})");
                    -1
                }
            };
            (code, out, err)
        }
        "spawn" => {
            let Some((log, cmd)) = argv.split_first() else {
                return fail("no log".into());
            };
            let Some((prog, args)) = cmd.split_first() else {
                return fail("empty argv".into());
            };
            let log = match std::fs::File::create(log) {
                Ok(f) => f,
                Err(e) => return fail(format!("{log}: {e}")),
            };
            match Command::new(prog)
                .args(args)
                .env_clear()
                .envs(env.iter().map(|(k, v)| (k, v)))
                .current_dir("/")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
            {
                Ok(c) => {
                    let pid = c.id();
                    daemons.push(c);
                    (0, pid.to_string(), String::new())
                }
                Err(e) => fail(format!("cannot start {prog}: {e}")),
            }
        }
        "tcp-serve" => {
            let [addr, port, token] = &argv[..] else {
                return fail("tcp-serve ADDR PORT TOKEN".into());
            };
            let l = match std::net::TcpListener::bind(format!("{addr}:{port}")) {
                Ok(l) => l,
                Err(e) => return fail(format!("bind {addr}:{port}: {e}")),
            };
            let token = token.clone();
            std::thread::spawn(move || {
                if let Ok((mut c, _)) = l.accept() {
                    let _ = c.write_all(token.as_bytes());
                }
            });
            (0, String::new(), String::new())
        }
        "tcp-fetch" => {
            let [addr, port] = &argv[..] else {
                return fail("tcp-fetch ADDR PORT".into());
            };
            let t0 = Instant::now();
            let mut last = String::new();
            while t0.elapsed() < limit {
                match std::net::TcpStream::connect_timeout(
                    &format!("{addr}:{port}").parse().unwrap(),
                    Duration::from_secs(2),
                ) {
                    Ok(mut c) => {
                        let mut s = String::new();
                        let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
                        let _ = c.read_to_string(&mut s);
                        let tries = format!("after {:.1?}", t0.elapsed());
                        return (0, s, tries);
                    }
                    Err(e) => last = e.to_string(),
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            fail(format!("no connection to {addr}:{port}: {last}"))
        }
        "find-disk" => {
            let [serial] = &argv[..] else {
                return fail("find-disk SERIAL".into());
            };
            let found = std::fs::read_dir("/sys/block").ok().and_then(|rd| {
                rd.flatten().find_map(|e| {
                    let s = std::fs::read_to_string(e.path().join("serial")).ok()?;
                    (s.trim() == serial)
                        .then(|| format!("/dev/{}", e.file_name().to_string_lossy()))
                })
            });
            match found {
                Some(d) => (0, d, String::new()),
                None => fail(format!("no disk with serial {serial}")),
            }
        }
        other => fail(format!("unknown request {other:?}")),
    }
}
