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
//! - the private network: a QEMU socket netdev over UDP on 127.0.0.1 (each
//!   QEMU sends to the other's port, `udp=`/`localaddr=`: no connection, so
//!   a node whose QEMU was killed boots again onto the same link),
//!   link-local addresses 169.254.77.1/.2 inside: nothing else can reach
//!   that link;
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
//! The cluster ([`Cluster`]): corosync (knet over the private link,
//! `two_node: 1`, token 5 s) and pacemakerd on both nodes, started through
//! the drivers with a pre-seeded CIB (no fencing unless a test enables it,
//! DC elected after 5 s), logs in each node's `logs`. The scheduler's
//! inputs (/var/lib/pacemaker/pengine) stay on a tmpfs in the guest:
//! pacemaker-schedulerd cannot write its series file on the 9p directory.
//! The cluster tools run on one node, `via` (node-a until a test kills it);
//! pcs runs on the host ([`Cluster::pcs`]). Timeouts are generous because
//! everything runs under TCG on a machine shared with other guests: a
//! Python tool (pcs, fence_sbd) took 40-70 s there, a `crm_mon` 7-20 s, any
//! process start seconds; so the checks ask the driver itself where it
//! can (device-mapper names from sysfs, /proc/mounts: no process started),
//! and the harness log names every request slower than 10 s, each line
//! stamped with the time since the boot ([`mark`]).
//!
//! A node whose QEMU was killed (or reset itself: the guests run with
//! `-no-reboot`) is powered on again with [`Lab::restart_node`] on the same
//! disk and link, and joins with [`Cluster::rejoin`].
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

/// When the first lab of this process started (the harness log's clock).
static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// One line of the harness log, stamped with the time since the first lab
/// booted: where a run spends its time.
pub fn mark(what: &str) {
    let t = T0.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!(
        "[two-nodes {:02}:{:04.1}] {what}",
        (t / 60.0) as u64,
        t % 60.0
    );
}

/// A request slower than this is named in the harness log.
const SLOW: Duration = Duration::from_secs(10);

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

    /// Pull the plug: SIGKILL the node's QEMU (from the host, as a power
    /// failure), and wait for vng to notice.
    pub fn kill_qemu(&mut self) {
        let pid = self
            .qemu_pid()
            .unwrap_or_else(|| panic!("{}: no QEMU process found", self.name));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let t0 = Instant::now();
        while self.alive() && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            !self.alive(),
            "{}: vng still runs after its QEMU was killed",
            self.name
        );
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
        self.try_request(kind, env, argv, limit)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Node::request`], with the guest gone or silent as an error (for
    /// cleanup, which must not panic).
    fn try_request(
        &mut self,
        kind: &str,
        env: &[(&str, &str)],
        argv: &[&str],
        limit: Duration,
    ) -> Result<Out, String> {
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
        std::fs::write(&tmp, body).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, dir.join(format!("{n:05}.cmd"))).map_err(|e| e.to_string())?;
        let rc = dir.join(format!("{n:05}.rc"));
        let t0 = Instant::now();
        loop {
            if let Ok(s) = std::fs::read_to_string(&rc) {
                if t0.elapsed() > SLOW {
                    mark(&format!(
                        "{}: {kind} {argv:?} took {:.1?}",
                        self.name,
                        t0.elapsed()
                    ));
                }
                let read = |ext: &str| {
                    std::fs::read_to_string(dir.join(format!("{n:05}.{ext}"))).unwrap_or_default()
                };
                return Ok(Out {
                    code: s.trim().parse().unwrap_or(-1),
                    stdout: read("out"),
                    stderr: read("err"),
                });
            }
            if !self.alive() {
                return Err(format!(
                    "{}: the guest is gone while running {argv:?}; see {}",
                    self.name,
                    self.dir.display()
                ));
            }
            if t0.elapsed() > limit + Duration::from_secs(30) {
                return Err(format!(
                    "{}: no answer to {argv:?} within {limit:?}",
                    self.name
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Run `argv` on the node without panicking (cleanup): `None` when
    /// the guest is gone or did not answer.
    pub fn try_run(&mut self, argv: &[&str]) -> Option<Out> {
        self.try_request("run", &[], argv, Duration::from_secs(60))
            .ok()
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

    /// The node's one NIC on the private link.
    pub fn nic(&mut self) -> String {
        let out = self.sh(&["ls", "/sys/class/net"]);
        let nic: Vec<&str> = out.split_whitespace().filter(|d| *d != "lo").collect();
        assert_eq!(nic.len(), 1, "{}: one NIC wanted, got {nic:?}", self.name);
        nic[0].to_string()
    }

    /// Bring up the node's end of the private link: its NIC, its
    /// link-local address, up.
    pub fn link_up(&mut self) -> String {
        let nic = self.nic();
        let addr = format!("{}/24", self.addr);
        self.sh(&["ip", "link", "set", "lo", "up"]);
        self.sh(&["ip", "addr", "add", &addr, "dev", &nic]);
        self.sh(&["ip", "link", "set", &nic, "up"]);
        nic
    }

    /// The device-mapper devices of the node's kernel, by name (read by
    /// the driver from sysfs: no process started in the guest).
    pub fn dm_names(&mut self) -> Vec<String> {
        let out = self.request("dm-names", &[], &[], Duration::from_secs(30));
        assert!(out.ok(), "{}: dm-names: {}", self.name, out.text());
        out.stdout.lines().map(str::to_string).collect()
    }

    /// A file of the node's own (e.g. /proc/mounts), read by the driver.
    pub fn read(&mut self, path: &str) -> String {
        let out = self.request("cat", &[], &[path], Duration::from_secs(30));
        assert!(out.ok(), "{}: read {path}: {}", self.name, out.text());
        out.stdout
    }

    /// Start the driver's writer: every `period_ms` it appends one record
    /// `<seq> <CLOCK_REALTIME ns>` to `data` (opened, written, fsynced and
    /// closed each time), then the same record to `ack`. It stops at the
    /// first error (written to `ack`) or with the guest.
    pub fn start_writer(&mut self, data: &str, ack: &Path, period_ms: u64) {
        let out = self.request(
            "writer",
            &[],
            &[data, ack.to_str().unwrap(), &period_ms.to_string()],
            Duration::from_secs(30),
        );
        assert!(out.ok(), "{}: writer: {}", self.name, out.text());
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
    /// vng, the guest kernel, and each node's UDP port of the link.
    vng: PathBuf,
    kernel: PathBuf,
    ports: [u16; 2],
    _one_at_a_time: MutexGuard<'static, ()>,
}

/// A free UDP port on 127.0.0.1 (for QEMU's socket netdev).
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
        let (Some(vng), Some(kernel), Some(_)) = (vng.clone(), kernel.clone(), &qemu) else {
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
        mark(&format!("{suite}: booting the two nodes"));
        let dir = super::tempdir("two-nodes");
        // hacluster (inside) must reach the logs below it
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let disk = dir.path().join("shared-lun.img");
        make_disk(&disk);
        let mut ports = [free_udp_port(), free_udp_port()];
        while ports[1] == ports[0] {
            ports[1] = free_udp_port();
        }
        let mut lab = Lab {
            nodes: Vec::new(),
            disk: disk.clone(),
            boot_time: Duration::ZERO,
            dir,
            vng,
            kernel,
            ports,
            _one_at_a_time: lock,
        };
        let t0 = Instant::now();
        for (i, name) in NODES.iter().enumerate() {
            let ndir = lab.dir.path().join(name);
            std::fs::create_dir_all(ndir.join("cmd")).unwrap();
            std::fs::create_dir_all(ndir.join("logs")).unwrap();
            let vng = lab.spawn_vng(i, &ndir);
            lab.nodes.push(Node {
                name: name.to_string(),
                addr: ADDRS[i].to_string(),
                dir: ndir,
                vng,
                seq: AtomicU32::new(0),
            });
        }
        for i in 0..2 {
            lab.wait_ready(i, t0);
        }
        lab.boot_time = t0.elapsed();
        mark(&format!("two nodes booted in {:.0?}", lab.boot_time));
        Some(lab)
    }

    /// Start node `i`'s vng (and QEMU) in its own process group, running
    /// the driver.
    fn spawn_vng(&self, i: usize, ndir: &Path) -> Child {
        let name = NODES[i];
        let exe = std::env::current_exe().unwrap();
        let qemu_opts = format!(
            "-drive file={},format=raw,if=none,id=lun,file.locking=off,cache=none \
             -device virtio-blk-pci,drive=lun,share-rw=on,serial={DISK_SERIAL} \
             -netdev socket,id=c0,udp=127.0.0.1:{},localaddr=127.0.0.1:{} \
             -device virtio-net-pci,netdev=c0,mac=52:54:00:00:77:0{} \
             -device i6300esb",
            self.disk.display(),
            self.ports[1 - i],
            self.ports[i],
            i + 1
        );
        let script = format!(
            "export RA_IN_GUEST=1 {ENV_LAB}='{lab}' {ENV_NODE}='{name}' PATH={PATH}; \
             cd / && exec '{exe}' --ignored --exact guest_node_driver --nocapture \
             >'{ndir}/logs/driver.log' 2>&1",
            lab = self.dir.path().display(),
            exe = exe.display(),
            ndir = ndir.display(),
        );
        let log = std::fs::File::create(ndir.join("logs/vng.log")).unwrap();
        Command::new(&self.vng)
            .arg("-r")
            .arg(&self.kernel)
            .args([
                "--disable-kvm",
                "--memory",
                "1G",
                "--cpus",
                "1",
                "--name",
                name,
            ])
            .arg(format!("--rwdir={}", self.dir.path().display()))
            .arg(format!("--qemu-opts={qemu_opts}"))
            .arg("--exec")
            .arg(&script)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.vng.display()))
    }

    /// Wait for node `i`'s driver to say it is ready.
    fn wait_ready(&mut self, i: usize, t0: Instant) {
        let ready = self.nodes[i].dir.join("ready");
        while !ready.exists() {
            let n = &mut self.nodes[i];
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

    /// Power a node on again after its QEMU went away (killed, reset): the
    /// same disk, the same link, a new kernel. The previous boot's `cmd`
    /// and `logs` are kept as `cmd.boot<N>` and `logs.boot<N>`.
    pub fn restart_node(&mut self, name: &str) -> Duration {
        let i = NODES
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("no node {name}"));
        assert!(
            !self.nodes[i].alive(),
            "{name} still runs: restart_node powers on a dead node"
        );
        let _ = self.nodes[i].vng.wait();
        let ndir = self.nodes[i].dir.clone();
        let boot = (1..)
            .find(|b| !ndir.join(format!("logs.boot{b}")).exists())
            .unwrap();
        for d in ["cmd", "logs"] {
            std::fs::rename(ndir.join(d), ndir.join(format!("{d}.boot{boot}"))).unwrap();
            std::fs::create_dir_all(ndir.join(d)).unwrap();
        }
        let _ = std::fs::remove_file(ndir.join("ready"));
        mark(&format!("{name}: powering on again"));
        let t0 = Instant::now();
        self.nodes[i].vng = self.spawn_vng(i, &ndir);
        self.nodes[i].seq = AtomicU32::new(0);
        self.wait_ready(i, t0);
        mark(&format!("{name} booted again in {:.0?}", t0.elapsed()));
        t0.elapsed()
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
        self.nodes.iter_mut().map(Node::link_up).collect()
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

/// The writer of [`Node::start_writer`] (a thread of the driver).
fn writer(data: &Path, ack: &Path, period: Duration) {
    let append = |p: &Path, line: &str, sync: bool| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)?;
        f.write_all(line.as_bytes())?;
        if sync {
            f.sync_all()?;
        }
        Ok(())
    };
    for seq in 1u64.. {
        let ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let line = format!("{seq} {ns}\n");
        if let Err(e) = append(data, &line, true) {
            let _ = append(ack, &format!("error {e}\n"), false);
            return;
        }
        let _ = append(ack, &line, false);
        std::thread::sleep(period);
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
        "dm-names" => {
            let mut names: Vec<String> = std::fs::read_dir("/sys/block")
                .map(|rd| {
                    rd.flatten()
                        .filter_map(|e| std::fs::read_to_string(e.path().join("dm/name")).ok())
                        .map(|n| n.trim().to_string())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            (0, names.join("\n"), String::new())
        }
        "cat" => {
            let [path] = &argv[..] else {
                return fail("cat PATH".into());
            };
            match std::fs::read_to_string(path) {
                Ok(s) => (0, s, String::new()),
                Err(e) => fail(format!("{path}: {e}")),
            }
        }
        "writer" => {
            let [data, ack, period] = &argv[..] else {
                return fail("writer DATA ACK PERIOD_MS".into());
            };
            let (data, ack) = (PathBuf::from(data), PathBuf::from(ack));
            let period = Duration::from_millis(period.parse().unwrap_or(200));
            std::thread::spawn(move || writer(&data, &ack, period));
            (0, String::new(), String::new())
        }
        other => fail(format!("unknown request {other:?}")),
    }
}

// ---------------------------------------------------------------------------
// The cluster on the two nodes

/// How long the cluster may take to come up on the two guests.
pub const UP_LIMIT: Duration = Duration::from_secs(180);
/// Longest wait for a transition (TCG: an LVM command takes seconds).
pub const SETTLE: &str = "300s";
/// Our OCF provider, as installed by the packages.
pub const PROVIDER: &str = "heartbeat-rs";

/// The CIB both nodes start from: no fencing (scenario 1), DC elected after
/// 5 s instead of 20, resources stay where they run.
const SEED_CIB: &str = r#"<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>
        <nvpair id="cib-bootstrap-options-dc-deadtime" name="dc-deadtime" value="5s"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources/>
    <constraints/>
    <rsc_defaults>
      <meta_attributes id="rsc-options">
        <nvpair id="rsc-options-resource-stickiness" name="resource-stickiness" value="100"/>
      </meta_attributes>
    </rsc_defaults>
  </configuration>
  <status/>
</cib>
"#;

fn uid_gid() -> (u32, u32) {
    let u = nix::unistd::User::from_name("hacluster")
        .ok()
        .flatten()
        .expect("no user hacluster (is pacemaker installed?)");
    let g = nix::unistd::Group::from_name("haclient")
        .ok()
        .flatten()
        .expect("no group haclient (is pacemaker installed?)");
    (u.uid.as_raw(), g.gid.as_raw())
}

fn hacluster(p: &Path, mode: u32) {
    let (u, g) = uid_gid();
    std::os::unix::fs::chown(p, Some(u), Some(g)).unwrap();
    std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

/// corosync + pacemakerd on both nodes of a [`Lab`], started and stopped
/// here (through each node's driver).
pub struct Cluster {
    pub lab: Lab,
    /// Per node: (corosync pid, pacemakerd pid) in the guest.
    daemons: Vec<(Option<u32>, Option<u32>)>,
    pub up_time: Duration,
    /// The node the cluster tools run on (node-a until it is killed).
    pub via: usize,
    /// Our agents (OCF type, binary), as installed on every node.
    agents: Vec<(String, String)>,
    /// Per node: what its pacemakerd passes on to the agents.
    node_env: Vec<Vec<(String, String)>>,
}

/// What each node's pacemakerd passes on to the agents (beyond PATH and
/// logging): `(node name) -> [(NAME, value)]`.
pub type NodeEnv<'a> = &'a dyn Fn(&str) -> Vec<(String, String)>;

impl Cluster {
    /// Per-node trees, the private link, our `agents` (OCF type, binary)
    /// under [`PROVIDER`], corosync (two_node) and pacemakerd on both nodes;
    /// returns once both are online with a DC. `lvm_conf` is both nodes'
    /// first lvm.conf.
    pub fn start(mut lab: Lab, agents: &[(&str, &str)], env: NodeEnv, lvm_conf: &str) -> Cluster {
        mark("cluster: setting up both nodes");
        lab.link_up();
        let node_env = lab.nodes.iter().map(|n| env(&n.name)).collect();
        let mut cluster = Cluster {
            lab,
            daemons: vec![(None, None); NODES.len()],
            up_time: Duration::ZERO,
            via: 0,
            agents: agents
                .iter()
                .map(|(t, b)| (t.to_string(), b.to_string()))
                .collect(),
            node_env,
        };
        for i in 0..cluster.lab.nodes.len() {
            cluster.prepare_node(i, lvm_conf);
        }
        let t0 = Instant::now();
        for i in 0..cluster.lab.nodes.len() {
            cluster.start_corosync(i);
        }
        cluster.wait_membership(0);
        for i in 0..cluster.lab.nodes.len() {
            cluster.start_pacemakerd(i);
        }
        cluster.wait_online();
        cluster.up_time = t0.elapsed();
        mark(&format!(
            "cluster up on both nodes after {:.0?}",
            cluster.up_time
        ));
        cluster
    }

    /// Node `i`'s trees (written on the host), the mounts over their
    /// places inside, the agents: everything before its daemons start.
    fn prepare_node(&mut self, i: usize, lvm_conf: &str) {
        let mut hosts = String::from("127.0.0.1 localhost\n::1 localhost\n");
        for (n, a) in NODES.iter().zip(ADDRS) {
            hosts += &format!("{a} {n}\n");
        }
        let nodelist: String = NODES
            .iter()
            .zip(ADDRS)
            .enumerate()
            .map(|(i, (n, a))| {
                format!(
                    "    node {{\n        name: {n}\n        nodeid: {}\n        ring0_addr: {a}\n    }}\n",
                    i + 1
                )
            })
            .collect();
        let agents = self.agents.clone();
        let n = &mut self.lab.nodes[i];
        let d = n.dir.clone();
        for sub in ["etc-corosync", "var-lib-corosync", "etc-lvm"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let pl = d.join("var-lib-pacemaker");
        // a node that comes back starts from the seed; the DC's CIB wins
        let _ = std::fs::remove_dir_all(pl.join("cib"));
        for sub in ["cib", "pengine", "blackbox", "cores"] {
            std::fs::create_dir_all(pl.join(sub)).unwrap();
            hacluster(&pl.join(sub), 0o750);
        }
        hacluster(&pl, 0o750);
        std::fs::write(
            d.join("etc-corosync/corosync.conf"),
            format!(
                "# Written by tests/support/two_nodes.rs for {name}.\n\
                 totem {{\n    version: 2\n    cluster_name: ra-rs-two-nodes\n    \
                 transport: knet\n    token: 5000\n    crypto_cipher: none\n    crypto_hash: none\n}}\n\
                 logging {{\n    to_stderr: no\n    to_syslog: no\n    to_logfile: yes\n    \
                 logfile: {log}\n    timestamp: hires\n}}\n\
                 quorum {{\n    provider: corosync_votequorum\n    two_node: 1\n}}\n\
                 nodelist {{\n{nodelist}}}\n",
                name = n.name,
                log = d.join("logs/corosync.log").display(),
            ),
        )
        .unwrap();
        std::fs::write(pl.join("cib/cib.xml"), SEED_CIB).unwrap();
        hacluster(&pl.join("cib/cib.xml"), 0o600);
        std::fs::write(d.join("logs/pacemaker.log"), "").unwrap();
        hacluster(&d.join("logs/pacemaker.log"), 0o660);
        std::fs::write(d.join("hosts"), &hosts).unwrap();
        std::fs::write(d.join("etc-lvm/lvm.conf"), lvm_conf).unwrap();
        let ds = |s: &str| d.join(s).to_string_lossy().into_owned();
        for (src, dst) in [
            (ds("etc-corosync"), "/etc/corosync"),
            (ds("var-lib-pacemaker"), "/var/lib/pacemaker"),
            (ds("var-lib-corosync"), "/var/lib/corosync"),
            (ds("etc-lvm"), "/etc/lvm"),
            (ds("hosts"), "/etc/hosts"),
        ] {
            n.sh(&["mount", "--bind", &src, dst]);
        }
        // The scheduler's inputs stay in the guest: pacemaker-schedulerd
        // cannot write its series file on the 9p directory.
        n.sh(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "mode=0750",
            "pengine",
            "/var/lib/pacemaker/pengine",
        ]);
        n.sh(&["chown", "hacluster:haclient", "/var/lib/pacemaker/pengine"]);
        n.sh(&[
            "install",
            "-d",
            "-o",
            "hacluster",
            "-g",
            "haclient",
            "-m",
            "0750",
            "/run/crm",
        ]);
        n.sh(&["mkdir", "-p", "/run/resource-agents", "/run/lock"]);
        if !n.run(&["findmnt", "/dev/shm"]).ok() {
            n.sh(&["mkdir", "-p", "/dev/shm"]);
            n.sh(&["mount", "-t", "tmpfs", "-o", "mode=1777", "shm", "/dev/shm"]);
        }
        let provider = format!("/usr/lib/ocf/resource.d/{PROVIDER}");
        n.sh(&["mkdir", "-p", &provider]);
        for (ty, bin) in &agents {
            n.sh(&["cp", bin, &format!("{provider}/{ty}")]);
        }
        n.sh(&["modprobe", "dm-mod"]);
        n.sh(&["modprobe", "softdog"]);
        n.sh(&["corosync", "-t"]);
    }

    fn start_corosync(&mut self, i: usize) {
        let n = &mut self.lab.nodes[i];
        let log = n.dir.join("logs/corosync.stderr");
        self.daemons[i].0 = Some(n.spawn(&[], &["corosync", "-f"], &log));
    }

    /// Wait until node `i` sees a quorate membership of both nodes.
    fn wait_membership(&mut self, i: usize) {
        self.wait_until(
            "a quorate corosync membership of both nodes",
            UP_LIMIT,
            |c| {
                let s = c.lab.nodes[i].run(&["corosync-quorumtool", "-s"]).stdout;
                let field = |k: &str| {
                    s.lines()
                        .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
                };
                field("Quorate:").as_deref() == Some("Yes")
                    && field("Nodes:").as_deref() == Some("2")
            },
        );
    }

    fn start_pacemakerd(&mut self, i: usize) {
        let n = &mut self.lab.nodes[i];
        let logfile = n.dir.join("logs/pacemaker.log");
        let mut e: Vec<(String, String)> = vec![
            ("PCMK_logfile".into(), logfile.to_string_lossy().into()),
            ("PCMK_logfacility".into(), "none".into()),
            ("PCMK_logpriority".into(), "notice".into()),
        ];
        for (k, v) in &self.node_env[i] {
            e.retain(|(x, _)| x != k);
            e.push((k.clone(), v.clone()));
        }
        let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let log = n.dir.join("logs/pacemakerd.stderr");
        self.daemons[i].1 = Some(n.spawn(&e, &["pacemakerd"], &log));
    }

    /// Wait until every node whose guest runs sees both nodes online and a
    /// DC.
    fn wait_online(&mut self) {
        let online = format!("Online: [ {} ]", NODES.join(" "));
        self.wait_until("both nodes online in Pacemaker with a DC", UP_LIMIT, |c| {
            c.lab.nodes.iter_mut().all(|n| {
                let s = n.run(&["crm_mon", "-1"]).stdout;
                s.contains("partition with quorum") && s.contains(&online)
            })
        });
    }

    /// A node that was powered on again ([`Lab::restart_node`]) joins the
    /// cluster as an admin brings it back: its link, its trees (its
    /// lvm.conf as it was), corosync, then pacemakerd; returns once both
    /// nodes are online. Fencing daemons (sbd) are the caller's.
    pub fn rejoin(&mut self, name: &str) -> Duration {
        let i = NODES
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("no node {name}"));
        mark(&format!("{name}: rejoining the cluster"));
        let t0 = Instant::now();
        self.lab.nodes[i].link_up();
        let lvm_conf =
            std::fs::read_to_string(self.lab.nodes[i].dir.join("etc-lvm/lvm.conf")).unwrap();
        self.prepare_node(i, &lvm_conf);
        self.start_corosync(i);
        self.wait_membership(1 - i);
        self.start_pacemakerd(i);
        self.wait_online();
        mark(&format!("{name}: online again after {:.0?}", t0.elapsed()));
        t0.elapsed()
    }
    /// Poll `f` (every second) until it holds; panic after `limit`.
    pub fn wait_until(
        &mut self,
        what: &str,
        limit: Duration,
        mut f: impl FnMut(&mut Cluster) -> bool,
    ) {
        let t0 = Instant::now();
        while !f(self) {
            assert!(
                t0.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    pub fn node(&mut self, name: &str) -> &mut Node {
        self.lab.node(name)
    }

    /// A cluster tool on the `via` node; panics unless it succeeds.
    pub fn cli(&mut self, argv: &[&str]) -> String {
        self.lab.nodes[self.via].sh(argv)
    }

    /// Wait until the cluster has no transition in flight.
    pub fn settle(&mut self) {
        let out = self.lab.nodes[self.via].run_env(
            &[],
            &["crm_resource", "--wait", &format!("--timeout={SETTLE}")],
            Duration::from_secs(330),
        );
        assert!(
            out.ok(),
            "the cluster did not settle within {SETTLE}: {}\n{}",
            out.text(),
            self.status()
        );
    }

    /// The nodes `rsc` is active on (`--locate` says "NOT running" on stderr).
    pub fn locate(&mut self, rsc: &str) -> Vec<String> {
        let out = self.lab.nodes[self.via].run(&["crm_resource", "--resource", rsc, "--locate"]);
        let mut on: Vec<String> = out
            .text()
            .lines()
            .filter_map(|l| l.split_once("is running on:"))
            .filter_map(|(_, n)| n.split_whitespace().next().map(str::to_string))
            .collect();
        on.sort();
        on
    }

    /// `crm_mon -1` with fail counts and the operation history.
    pub fn status(&mut self) -> String {
        self.lab.nodes[self.via]
            .run(&["crm_mon", "-1", "--include=failcounts,operations"])
            .text()
    }

    /// Create resources as an admin does with pcs: each of `commands` is
    /// `pcs -f <file> <command>` on a dump of the live CIB (`cibadmin
    /// --query` on the `via` node), then the file replaces the CIB there
    /// (what `pcs cluster cib-push` runs). pcs itself runs on the HOST, in
    /// a private mount namespace whose only OCF provider is ours
    /// (`support::cluster::Node`: the host's cluster state and OCF tree are
    /// not touched): pcs is Python, and a Python start costs 40-70 s in a
    /// loaded TCG guest, well under a second here.
    pub fn pcs(&mut self, commands: &[Vec<String>]) {
        let file = self.lab.nodes[self.via].dir.join("cib-pcs.xml");
        let cib = self.cli(&["cibadmin", "--query"]);
        std::fs::write(&file, cib).unwrap();
        let f = file.to_string_lossy().into_owned();
        let root = self.lab.path("pcs-host");
        let agents: Vec<(&str, PathBuf)> = self
            .agents
            .iter()
            .map(|(t, b)| (t.as_str(), PathBuf::from(b)))
            .collect();
        let host = super::cluster::Node::new("pcs-host", &root, &agents);
        for c in commands {
            let mut args = vec!["-f", &*f];
            args.extend(c.iter().map(String::as_str));
            eprintln!("pcs {}", args.join(" "));
            let out = host.run("pcs", &args);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success(),
                "pcs {} failed ({:?}): {text}",
                args.join(" "),
                out.status.code()
            );
            if !text.trim().is_empty() {
                eprintln!("{}", text.trim_end());
            }
        }
        drop(host);
        self.cli(&["cibadmin", "--replace", "--xml-file", &f]);
        mark(&format!("pcs: {} command(s) pushed", commands.len()));
    }

    /// Where every resource is active, by one `crm_mon --output-as=xml`:
    /// `(resource id, nodes)`, nodes sorted (empty: stopped).
    pub fn resources(&mut self) -> Vec<(String, Vec<String>)> {
        let out = self.lab.nodes[self.via].run(&["crm_mon", "-1", "--output-as=xml"]);
        assert!(out.ok(), "crm_mon --output-as=xml: {}", out.text());
        let xml = out.stdout;
        let mut found = Vec::new();
        let section = xml
            .split("<resources>")
            .nth(1)
            .and_then(|r| r.split("</resources>").next())
            .unwrap_or("");
        for chunk in section.split("<resource ").skip(1) {
            let tag = chunk.split('>').next().unwrap_or("");
            let attr = |name: &str| {
                tag.strip_prefix(&format!("{name}=\""))
                    .or_else(|| tag.split(&format!(" {name}=\"")).nth(1))
                    .and_then(|v| v.split('"').next())
                    .map(str::to_string)
            };
            let Some(id) = attr("id") else { continue };
            let body = chunk.split("</resource>").next().unwrap_or("");
            let body = if tag.ends_with('/') { "" } else { body };
            let mut nodes: Vec<String> = body
                .split("<node name=\"")
                .skip(1)
                .filter_map(|n| n.split('"').next().map(str::to_string))
                .collect();
            if attr("active").as_deref() != Some("true") {
                nodes.clear();
            }
            nodes.sort();
            found.push((id, nodes));
        }
        found
    }

    /// A node's pacemaker.log.
    pub fn log(&self, node: usize) -> String {
        std::fs::read_to_string(self.lab.nodes[node].dir.join("logs/pacemaker.log"))
            .unwrap_or_default()
    }

    fn report(&mut self) {
        let st =
            self.lab.nodes[self.via].try_run(&["crm_mon", "-1", "--include=failcounts,operations"]);
        eprintln!(
            "---- crm_mon (two-node test failed)\n{}",
            st.map(|o| o.text()).unwrap_or_default()
        );
        for i in 0..self.lab.nodes.len() {
            let log = self.log(i);
            let tail: Vec<&str> = log
                .lines()
                .filter(|l| !l.contains("(cib_perform_op)"))
                .collect();
            eprintln!("---- {} pacemaker.log (end)", self.lab.nodes[i].name);
            for l in &tail[tail.len().saturating_sub(60)..] {
                eprintln!("{l}");
            }
        }
    }

    /// Whether pid `pid` still runs in node `i` (the driver reaps its
    /// children, so a stopped daemon disappears from /proc).
    fn running(&mut self, i: usize, pid: u32) -> bool {
        self.lab.nodes[i]
            .try_run(&["kill", "-0", &pid.to_string()])
            .is_some_and(|o| o.ok())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.report();
        }
        // pacemakerd on both nodes at once (each stops its resources, then
        // itself), then corosync; a guest already gone is skipped.
        let pacemakerd: Vec<Option<u32>> = self.daemons.iter().map(|d| d.1).collect();
        let corosync: Vec<Option<u32>> = self.daemons.iter().map(|d| d.0).collect();
        for (pids, is_corosync) in [(pacemakerd, false), (corosync, true)] {
            for (n, pid) in self.lab.nodes.iter_mut().zip(&pids) {
                if let (true, Some(pid)) = (n.alive(), pid) {
                    if is_corosync {
                        let _ = n.try_run(&["corosync-cfgtool", "-H", "--force"]);
                    }
                    let _ = n.try_run(&["kill", "-TERM", &pid.to_string()]);
                }
            }
            let t0 = Instant::now();
            for (i, pid) in pids.iter().enumerate() {
                if let Some(pid) = *pid {
                    while self.lab.nodes[i].alive()
                        && self.running(i, pid)
                        && t0.elapsed() < Duration::from_secs(120)
                    {
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            }
        }
        // Then the lab halts the drivers (which kill whatever is left) and
        // the guests.
    }
}
