//! The guests of the cluster tests.
//!
//! The cluster tests see the guest only through the [`Guest`] trait, and
//! run with two guests:
//! - the Xen agent over the `xl` TEST DOUBLE (`tests/doubles/xl.rs`, state
//!   in one directory per node; its `migrate` moves the domain to the
//!   sibling directory named like the target node): Xen cannot run here;
//! - the VirtualDomain agent over a real QEMU (TCG) guest
//!   (`support::libvirt`'s image; it prints its uptime every second) with
//!   a libvirtd + virtlogd per node, started inside the node's namespaces
//!   (plus a private mount namespace of its own) and reached by a socket
//!   under the test's directory. One set of heartbeat parameters serves
//!   both nodes: `hypervisor` names `<dir>/local/libvirt-sock`, where each
//!   node's mount namespace has its own daemon's socket directory bound;
//!   `remoteuri` names the target's socket through `%n`, and
//!   `migrateuri=tcp://%n` sends the memory over the veth. A move is
//!   checked on the hypervisors: one emulator, replaced by one in the
//!   target's network namespace, tens of MiB received on the target's
//!   veth, the guest's uptime going on without a boot on the target. The
//!   guest is destroyed through every daemon and its emulator killed by
//!   pid, then the daemons stop by their pid files, also on failure.
//!   Without libvirtd, QEMU or the guest image these tests print SKIP, and
//!   fail when RA_REQUIRE_GUEST is set.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{alive, ns_link, signal, text, wait_until, Node};
use crate::support::libvirt::{
    copy_files, emulator_pids, guest_image, guest_xml, kill_and_wait, qemu_caps_cache, Daemon,
    BOOT_LIMIT, READY, UPTIME,
};
use crate::support::virtualdomain::{require_libvirtd, vd_binary};

fn xen_binary() -> &'static str {
    crate::support::built_binary("Xen", option_env!("CARGO_BIN_EXE_Xen"))
}

// ---------------------------------------------------------------------------
// Guests

/// The guest a cluster test runs, as the cluster tests see it: the Xen
/// agent over the `xl` double, or VirtualDomain over a real QEMU guest with
/// one libvirtd per node.
pub trait Guest: Sync {
    /// The OCF type and the agent binary to install under our provider.
    fn agent(&self) -> (&'static str, PathBuf);
    /// What pacemakerd on `node` passes on to the agent.
    fn node_env(&self, node: &str) -> Vec<(String, String)>;
    /// Start what the guest needs on a node of a running cluster, inside the
    /// node's namespaces (VirtualDomain: a libvirtd per node, stopped when
    /// the guest is dropped: create the guest before the cluster, so the
    /// cluster stops the resources first). The xl double needs nothing.
    fn prepare(&self, _node: &Node) {}
    /// The instance attributes, as for the heartbeat agent.
    fn params(&self) -> Vec<(&'static str, String)>;
    /// Whether the hypervisor on `node` runs the guest now.
    fn running_on(&self, node: &str) -> bool;
    /// Wait until the guest started on `node` has booted (a real guest
    /// answers a graceful stop only then). The xl double is up at once.
    fn wait_ready(&self, _node: &str) {}
    /// Kill the guest on `node` behind the cluster's back.
    fn kill(&self, node: &str);
    /// How many times the agent on `node` has looked at the guest (the
    /// recurring monitor keeps this growing).
    fn looks(&self, node: &str) -> usize;
    /// Forget what the hypervisors recorded so far.
    fn forget_calls(&self);
    /// The hypervisors saw a live migration `from` → `to` (and no start of
    /// the guest on `to`).
    fn assert_live_migrated(&self, from: &str, to: &str);
}

/// The Xen agent, and the `xl` TEST DOUBLE as the hypervisor of every node.
pub struct XenOverXlDouble {
    /// The `xl` double (`doubles::xl()` of the test).
    xl: PathBuf,
    dir: tempfile::TempDir,
    domain: &'static str,
}

impl XenOverXlDouble {
    pub fn new(xl: &Path, nodes: &[&str]) -> XenOverXlDouble {
        let dir = crate::support::tempdir("pcmk-xl-double");
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::os::unix::fs::symlink(xl, dir.path().join("bin/xl")).unwrap();
        for n in nodes {
            std::fs::create_dir_all(dir.path().join("hosts").join(n)).unwrap();
        }
        let domain = "vm1";
        std::fs::write(
            dir.path().join("vm1.cfg"),
            format!("name = \"{domain}\"\nmemory = 256\nvcpus = 1\n"),
        )
        .unwrap();
        XenOverXlDouble {
            xl: xl.to_path_buf(),
            dir,
            domain,
        }
    }

    /// The double's state directory for `node` (a "host").
    pub fn host(&self, node: &str) -> PathBuf {
        self.dir.path().join("hosts").join(node)
    }

    /// The calls the agent made on `node`, one `{:?}` line each.
    pub fn calls(&self, node: &str) -> Vec<String> {
        std::fs::read_to_string(self.host(node).join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// `["a", "b"]` as the double logs it.
pub fn call(args: &[&str]) -> String {
    format!("{args:?}")
}

impl Guest for XenOverXlDouble {
    fn agent(&self) -> (&'static str, PathBuf) {
        ("Xen", PathBuf::from(xen_binary()))
    }

    fn node_env(&self, node: &str) -> Vec<(String, String)> {
        vec![
            (
                "PATH".into(),
                format!(
                    "{}:/usr/sbin:/usr/bin:/sbin:/bin",
                    self.dir.path().join("bin").display()
                ),
            ),
            (
                "XL_DOUBLE_STATE".into(),
                self.host(node).to_string_lossy().into(),
            ),
        ]
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        vec![(
            "xmfile",
            self.dir.path().join("vm1.cfg").to_string_lossy().into(),
        )]
    }

    /// Read from the double's state files (running the double to look
    /// would add to the call log the agent is writing at the same time).
    fn running_on(&self, node: &str) -> bool {
        let hex: String = self.domain.bytes().map(|b| format!("{b:02x}")).collect();
        self.host(node).join("domains").join(hex).is_file()
    }

    fn kill(&self, node: &str) {
        let out = Command::new(&self.xl)
            .env("XL_DOUBLE_STATE", self.host(node))
            .args(["destroy", self.domain])
            .output()
            .unwrap();
        assert!(out.status.success(), "xl destroy (double): {}", text(&out));
    }

    fn looks(&self, node: &str) -> usize {
        let list = call(&["list", self.domain]);
        self.calls(node).iter().filter(|c| **c == list).count()
    }

    fn forget_calls(&self) {
        for e in std::fs::read_dir(self.dir.path().join("hosts"))
            .unwrap()
            .flatten()
        {
            let _ = std::fs::remove_file(e.path().join("calls"));
        }
    }

    fn assert_live_migrated(&self, from: &str, to: &str) {
        let dom = self.domain;
        let (src, dst) = (self.calls(from), self.calls(to));
        let sent = call(&["migrate", dom, to]);
        assert_eq!(
            src.iter().filter(|c| **c == sent).count(),
            1,
            "one `xl migrate {dom} {to}` on {from}: {src:#?}"
        );
        let received = call(&["migrate-receive", dom]);
        let at = dst.iter().position(|c| *c == received);
        let at = at.unwrap_or_else(|| panic!("the domain never arrived on {to}: {dst:#?}"));
        assert_eq!(
            dst.iter().filter(|c| **c == received).count(),
            1,
            "{dst:#?}"
        );
        // migrate_from looked for it there after it arrived
        assert!(
            dst[at + 1..].contains(&call(&["list", dom])),
            "migrate_from did not look for {dom} on {to}: {dst:#?}"
        );
        // never created anywhere: moved, not stopped and started
        for (n, calls) in [(from, &src), (to, &dst)] {
            assert!(
                !calls.iter().any(|c| c.starts_with("[\"create\"")),
                "xl create on {n} during a migration: {calls:#?}"
            );
        }
        assert!(self.running_on(to), "{dom} is not on {to}");
        assert!(!self.running_on(from), "{dom} is still on {from}");
    }
}

/// The VirtualDomain agent over a real QEMU (TCG) guest, with a libvirtd +
/// virtlogd of our own on every node (`support::libvirt::Daemon`), started
/// by [`Guest::prepare`] inside the node's namespaces (its network, UTS
/// and IPC namespaces, and a private mount namespace of its own below the
/// node's), so the emulator runs in the node's network namespace and a
/// migration crosses the veth between the nodes.
///
/// Layout under the guest's temporary directory: `<node>/` is the node's
/// daemon (`sock/libvirt-sock`, its private /var/log/libvirt in `log/`),
/// `local/` is, in every node's mount namespace, a bind mount of that
/// node's own `sock/`. So one set of heartbeat parameters serves every
/// node, as in a real cluster: `hypervisor` is
/// `qemu+unix:///system?socket=<dir>/local/libvirt-sock` (the node's own
/// daemon), `remoteuri` is `qemu+unix:///system?socket=<dir>/%n/sock/libvirt-sock`
/// (the target node's daemon, `%n` being the target node) and `migrateuri`
/// is `tcp://%n`: the memory goes over the veth to the target's address,
/// which the node names resolve to (each node's /etc/hosts).
pub struct VirtualDomainQemu {
    /// One per prepared node. Declared before `dir`: the daemons stop
    /// before it goes.
    nodes: Mutex<Vec<VdNode>>,
    dir: tempfile::TempDir,
    name: String,
    config: PathBuf,
    /// The emulator's pid, and what every node had received on its veth,
    /// when [`Guest::forget_calls`] ran.
    before_move: Mutex<(Vec<i32>, Vec<u64>)>,
}

pub struct VdNode {
    name: String,
    daemon: Daemon,
    /// The node's network namespace (`net:[...]`).
    netns: String,
    /// The node's holder process (its /proc/PID/net is the node's).
    holder: u32,
}

/// Bytes received on the interfaces other than loopback of the network
/// namespace of `pid` (/proc/PID/net/dev).
pub fn rx_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(dev, _)| dev.trim() != "lo")
        .filter_map(|(_, v)| v.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// libvirt's remote procedure numbers of what the agent's monitor asks, as
/// libvirtd logs received calls: virDomainGetState (212), or
/// virDomainGetInfo (16) when it also reads the sizes for the utilization.
pub const MONITOR_PROCS: [&str; 2] = ["proc=212 ", "proc=16 "];

impl VirtualDomainQemu {
    /// None (SKIP) without libvirtd or the QEMU guest, unless
    /// RA_REQUIRE_GUEST is set.
    pub fn new() -> Option<VirtualDomainQemu> {
        if !require_libvirtd() {
            return None;
        }
        let img = guest_image()?;
        vd_binary();
        let dir = crate::support::tempdir("pcmk-vd");
        // QEMU (user libvirt-qemu) opens nothing here; the daemons' logs are
        // written as root. 0755 lets hacluster's tools look, like the
        // cluster's directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("local")).unwrap();
        // unique in the process too: a test waiting for the cluster lock
        // already has its guest, and must never kill another test's emulator
        static GUESTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "ravm-pcmk-{}-{}",
            std::process::id(),
            GUESTS.fetch_add(1, Ordering::Relaxed)
        );
        let config = dir.path().join("vm1.xml");
        std::fs::write(&config, guest_xml(&name, img, "ra_uptime")).unwrap();
        Some(VirtualDomainQemu {
            nodes: Mutex::new(Vec::new()),
            dir,
            name,
            config,
            before_move: Mutex::new((Vec::new(), Vec::new())),
        })
    }

    pub fn nodes(&self) -> MutexGuard<'_, Vec<VdNode>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The daemon of `node`: its directory and its QEMU URI.
    pub fn daemon(&self, node: &str) -> Option<(PathBuf, String)> {
        let nodes = self.nodes();
        let n = nodes.iter().find(|n| n.name == node)?;
        Some((n.daemon.dir.clone(), n.daemon.qemu_uri()))
    }

    pub fn netns(&self, node: &str) -> Option<String> {
        let nodes = self.nodes();
        nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.netns.clone())
    }

    pub fn virsh(&self, node: &str, args: &[&str]) -> Output {
        let (_, uri) = self
            .daemon(node)
            .unwrap_or_else(|| panic!("no libvirtd on {node}"));
        Command::new("virsh")
            .arg("-c")
            .arg(uri)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run virsh")
    }

    /// The guest's serial console as `node`'s virtlogd logged it (from
    /// the guest's last arrival on the node: the log is not appended to).
    pub fn serial(&self, node: &str) -> String {
        let Some((dir, _)) = self.daemon(node) else {
            return String::new();
        };
        let f = dir.join(format!("log/qemu/{}-serial.log", self.name));
        String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default()).into_owned()
    }

    /// The uptimes the guest printed on `node`'s serial console, in order.
    pub fn uptimes(&self, node: &str) -> Vec<f64> {
        self.serial(node)
            .lines()
            .filter_map(|l| l.split_once(UPTIME))
            .filter_map(|(_, v)| v.trim().parse().ok())
            .collect()
    }

    /// The emulator processes of the guest in `node`'s network namespace.
    pub fn emulators_on(&self, node: &str) -> Vec<i32> {
        let ns = self.netns(node);
        emulator_pids(&self.name)
            .into_iter()
            .filter(|p| ns.is_some() && ns_link(&p.to_string(), "net") == ns)
            .collect()
    }
}

impl Guest for VirtualDomainQemu {
    fn agent(&self) -> (&'static str, PathBuf) {
        ("VirtualDomain", PathBuf::from(vd_binary()))
    }

    fn node_env(&self, _node: &str) -> Vec<(String, String)> {
        Vec::new()
    }

    fn prepare(&self, node: &Node) {
        let index = self.nodes().len();
        let dir = self.dir.path().join(&node.name);
        // the QEMU driver probes the emulator once (4-5 s here) and caches
        // what it found; the other daemons (and test runs) reuse the cache
        let caps = dir.join("cache/qemu/capabilities");
        copy_files(&qemu_caps_cache(), &caps);
        let mut unshare = node.cmd("unshare", &[]);
        unshare
            .env("LIBVIRT_LOG_FILTERS", "2:rpc.netserverclient")
            .env(
                "RA_LIBVIRTD_LOG_OUTPUTS",
                format!("2:file:{}", dir.join("rpc.log").display()),
            );
        let daemon = Daemon::start_in(
            &dir,
            &format!("d0d0d0d0-0000-4000-8000-{:012x}", index + 1),
            unshare,
        );
        let netns = ns_link(&node.pid().to_string(), "net").expect("the node's network namespace");
        let uri = daemon.qemu_uri();
        self.nodes().push(VdNode {
            name: node.name.clone(),
            daemon,
            netns,
            holder: node.pid(),
        });
        let t = Instant::now();
        let out = Command::new("virsh")
            .args(["-c", &uri, "domcapabilities", "--virttype", "qemu"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the QEMU driver of libvirtd on {} does not work ({}); see {}",
            node.name,
            text(&out),
            dir.join("libvirtd.log").display()
        );
        eprintln!(
            "libvirtd on {}: QEMU driver ready after {:?}",
            node.name,
            t.elapsed()
        );
        copy_files(&caps, &qemu_caps_cache());
        let local = self.dir.path().join("local");
        node.sh(
            "mount",
            &[
                "--bind",
                &dir.join("sock").to_string_lossy(),
                &local.to_string_lossy(),
            ],
        );
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        let sock = |d: &str| {
            format!(
                "qemu+unix:///system?socket={}",
                self.dir.path().join(d).join("libvirt-sock").display()
            )
        };
        vec![
            ("config", self.config.to_string_lossy().into()),
            ("hypervisor", sock("local")),
            ("remoteuri", sock("%n/sock")),
            ("migrateuri", "tcp://%n".into()),
        ]
    }

    /// Running (not paused, as the target is while the memory arrives)
    /// according to `node`'s libvirtd.
    fn running_on(&self, node: &str) -> bool {
        if self.daemon(node).is_none() {
            return false;
        }
        let out = self.virsh(node, &["list", "--name", "--state-running"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == self.name)
    }

    fn wait_ready(&self, node: &str) {
        let t = Instant::now();
        wait_until(
            &format!("the guest printing {READY:?} on {node}"),
            BOOT_LIMIT,
            // and counting (what a migration's check compares)
            || self.serial(node).contains(READY) && !self.uptimes(node).is_empty(),
        );
        eprintln!(
            "guest ready on {node} after {:?} more (guest uptime {:?} s)",
            t.elapsed(),
            self.uptimes(node).last()
        );
    }

    fn kill(&self, node: &str) {
        let out = self.virsh(node, &["destroy", &self.name]);
        assert!(out.status.success(), "virsh destroy: {}", text(&out));
    }

    /// virDomainGetState calls libvirtd on `node` received (nothing else
    /// asks for it: the tests look with `virsh list`).
    fn looks(&self, node: &str) -> usize {
        let Some((dir, _)) = self.daemon(node) else {
            return 0;
        };
        std::fs::read_to_string(dir.join("rpc.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.contains("RPC_SERVER_CLIENT_MSG_RX")
                    && MONITOR_PROCS.iter().any(|p| l.contains(p))
            })
            .count()
    }

    fn forget_calls(&self) {
        let rx = self.nodes().iter().map(|n| rx_bytes(n.holder)).collect();
        *self.before_move.lock().unwrap_or_else(|e| e.into_inner()) =
            (emulator_pids(&self.name), rx);
    }

    fn assert_live_migrated(&self, from: &str, to: &str) {
        let (before, rx_before) = self
            .before_move
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        assert_eq!(before.len(), 1, "one emulator before the move: {before:?}");
        let now = emulator_pids(&self.name);
        assert_eq!(now.len(), 1, "one emulator after the move: {now:?}");
        assert_ne!(now, before, "the emulator on {from} was not replaced");
        assert!(
            !alive(before[0] as u32),
            "the emulator on {from} still runs"
        );
        assert_eq!(
            self.emulators_on(to),
            now,
            "the emulator does not run in {to}'s network namespace"
        );
        assert!(self.running_on(to), "not running on {to}");
        assert!(!self.running_on(from), "still running on {from}");
        // The guest's memory crossed the veth into `to` (corosync sends
        // a few kB per second; the guest has 96 MiB).
        let received = {
            let nodes = self.nodes();
            let i = nodes.iter().position(|n| n.name == to).unwrap();
            rx_bytes(nodes[i].holder).saturating_sub(rx_before[i])
        };
        assert!(
            received > 8 << 20,
            "{to} received only {received} bytes on its veth during the move"
        );
        // The same guest, still counting: it arrived on `to` without
        // booting there, and its uptime goes on from where it was on `from`.
        let last_from = self.uptimes(from).last().copied();
        let last_from = last_from.unwrap_or_else(|| {
            panic!(
                "no uptime on {from}'s serial console:\n{}",
                self.serial(from)
            )
        });
        wait_until(
            &format!("the guest printing its uptime on {to}"),
            Duration::from_secs(30),
            || !self.uptimes(to).is_empty(),
        );
        let first_to = self.uptimes(to)[0];
        let serial = self.serial(to);
        assert!(
            !serial.contains(READY),
            "the guest booted on {to} instead of arriving:\n{serial}"
        );
        assert!(
            first_to >= last_from,
            "uptime {first_to} s on {to} after {last_from} s on {from}: not the same guest\n{serial}"
        );
        eprintln!(
            "guest uptime {last_from} s on {from}, then {first_to} s on {to} (emulator pid {} -> {}, \
             {} MiB received on {to}'s veth)",
            before[0],
            now[0],
            received >> 20
        );
    }
}

impl Drop for VirtualDomainQemu {
    /// The guest through every daemon, then any emulator of it by pid;
    /// then the daemons (by their pid files) and the directory go.
    fn drop(&mut self) {
        let nodes = self.nodes.get_mut().unwrap_or_else(|e| e.into_inner());
        for n in nodes.iter() {
            let d = &n.daemon;
            d.virsh(&d.qemu_uri(), &["destroy", &self.name]);
        }
        for pid in emulator_pids(&self.name) {
            eprintln!("killing emulator pid {pid} of {}", self.name);
            signal(pid as u32, libc::SIGKILL);
            kill_and_wait(pid);
        }
    }
}
