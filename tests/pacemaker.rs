//! Pacemaker drives our agents end to end: a real corosync + pacemakerd
//! that this file starts itself, resources created exactly as for
//! `ocf:heartbeat:*` with only the provider switched to ours: with
//! `cibadmin`, and in the one-node group test with pcs, as an admin does it
//! offline (`pcs -f` on a dump of the CIB, then `cibadmin --replace`, what
//! `pcs cluster cib-push` runs); `pcs_creates_the_readme_stack` runs the
//! README's pcs example the same way.
//!
//! Every cluster node is a set of namespaces held open by one `sleep`
//! ("holder", `unshare --net --mount --uts --ipc`), as in the Pacemaker lab
//! (../shared/labs/pacemaker): its own hostname (the node name), loopback,
//! tmpfs on /run (corosync's lock, /run/crm, the agents' HA_RSCTMP) and
//! /dev/shm (libqb), bind mounts of per-node trees under the test's
//! temporary directory on /etc/corosync, /var/lib/pacemaker (the pre-seeded
//! CIB), /var/lib/corosync, /var/log/pacemaker and /etc/hosts (the node
//! names resolve to the nodes' corosync addresses), and a tmpfs on
//! /usr/lib/ocf/resource.d holding only our provider, `heartbeat-rs`, with
//! the agents under test. So the test writes nothing outside its temporary
//! directories on the host (no CIB, no corosync.conf, no provider
//! directory; the heartbeat provider is never touched), and everything it
//! made goes away with the namespaces. Two nodes talk over a veth pair that
//! exists only inside their two network namespaces.
//!
//! The daemons are children of the test: `Drop` stops pacemakerd (which
//! stops the resources) and corosync by pid, kills whatever is left in the
//! node's namespaces by pid, then the holder, also when an assertion fails
//! (and then prints the status and the end of the logs first). The tests
//! refuse to run when a corosync or pacemakerd is already running on the
//! machine, and the cluster tests of this file run one at a time.
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
//!
//! Needs root, `corosync`, `pacemaker`, `pacemaker-cli-utils`, `iproute2`,
//! `pcs` and util-linux (`unshare`, `nsenter`, `mount`); for VirtualDomain
//! also what `.ci/install-libvirt.sh` installs.

mod doubles;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use support::libvirt::{
    copy_files, emulator_pids, guest_image, guest_xml, kill_and_wait, qemu_caps_cache, Daemon,
    BOOT_LIMIT, READY, UPTIME,
};
use support::virtualdomain::{have_libvirtd, vd_binary};
use support::LoopDevice;

const FILESYSTEM: &str = env!("CARGO_BIN_EXE_Filesystem");
const XEN: &str = env!("CARGO_BIN_EXE_Xen");

/// Our OCF provider, as installed by the packages.
const PROVIDER: &str = "heartbeat-rs";
const OCF_RESOURCE_D: &str = "/usr/lib/ocf/resource.d";

/// How long a cluster may take to come up (the lab: ~4 s for one node,
/// ~8 s for two).
const UP_LIMIT: Duration = Duration::from_secs(60);
/// Longest wait for the cluster to finish a transition.
const SETTLE: &str = "60s";
/// Recurring monitor interval of the resources (detection takes up to it),
/// and the same in ms as operation keys spell it.
const MONITOR: &str = "3s";
const MONITOR_MS: &str = "3000";

// ---------------------------------------------------------------------------
// Processes

/// The state letter of `pid` from /proc, `None` when it is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Alive and not a zombie (orphans are reaped by PID 1 only now and then).
fn alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|s| s != 'Z')
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid we started; no memory is involved.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn ns_link(pid: &str, kind: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Wait for a child of ours to exit (reaping it); SIGKILL it after `limit`.
fn reap(child: &mut Child, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "pid {} ({}) still running after {limit:?}: killing it",
        child.id(),
        comm(child.id())
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Cluster daemons running anywhere on the machine (any namespace).
fn cluster_daemons() -> Vec<String> {
    pids()
        .into_iter()
        .filter(|&p| alive(p))
        .filter_map(|p| {
            let c = comm(p);
            (c == "corosync" || c == "pacemakerd").then(|| format!("{c} (pid {p})"))
        })
        .collect()
}

/// Poll `f` every 100 ms until it gives a value; panic after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    wait_for(what, limit, || f().then_some(()))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn uid_gid(user: &str, group: &str) -> (u32, u32) {
    let u = nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no user {user} (is pacemaker installed?)"));
    let g = nix::unistd::Group::from_name(group)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no group {group} (is pacemaker installed?)"));
    (u.uid.as_raw(), g.gid.as_raw())
}

/// A directory owned by hacluster:haclient with `mode` (the daemons run as
/// hacluster).
fn hacluster_dir(p: &Path, mode: u32) {
    std::fs::create_dir_all(p).unwrap();
    let (u, g) = uid_gid("hacluster", "haclient");
    std::os::unix::fs::chown(p, Some(u), Some(g)).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn hacluster_file(p: &Path, content: &str, mode: u32) {
    std::fs::write(p, content).unwrap();
    let (u, g) = uid_gid("hacluster", "haclient");
    std::os::unix::fs::chown(p, Some(u), Some(g)).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Root, the tools, and no cluster running: otherwise a clear refusal.
fn preflight() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "tests/pacemaker.rs starts a cluster: run it as root"
    );
    let path = std::env::var("PATH").unwrap_or_default();
    let missing: Vec<&str> = [
        "corosync",
        "corosync-quorumtool",
        "corosync-cfgtool",
        "pacemakerd",
        "crm_mon",
        "crm_resource",
        "crm_failcount",
        "cibadmin",
        "unshare",
        "nsenter",
        "ip",
        "mount",
        "hostname",
    ]
    .into_iter()
    .filter(|t| {
        !path
            .split(':')
            .chain(["/usr/sbin", "/sbin"])
            .any(|d| Path::new(d).join(t).is_file())
    })
    .collect();
    assert!(
        missing.is_empty(),
        "tests/pacemaker.rs needs {missing:?} (Debian: corosync pacemaker pacemaker-cli-utils iproute2 util-linux)"
    );
    assert!(
        Path::new(OCF_RESOURCE_D).is_dir(),
        "{OCF_RESOURCE_D} is missing (is pacemaker installed?)"
    );
}

/// The CIB every node starts from: no fencing, DC elected after 2 s
/// instead of 20, resources stay where they run.
const SEED_CIB: &str = r#"<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>
        <nvpair id="cib-bootstrap-options-dc-deadtime" name="dc-deadtime" value="2s"/>
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

// ---------------------------------------------------------------------------
// Nodes

/// One cluster node: namespaces held by a `sleep`, with a per-node tree
/// under `root` and (once started) its corosync and pacemakerd.
struct Node {
    name: String,
    root: PathBuf,
    holder: Child,
    /// The holder's mount namespace (`mnt:[...]`), once it has one.
    mnt_ns: Option<String>,
    corosync: Option<Child>,
    pacemakerd: Option<Child>,
}

impl Node {
    /// A node named `name` (its hostname and cluster node name) with our
    /// `agents` (OCF type, binary) as the only provider.
    fn new(name: &str, root: &Path, agents: &[(&str, PathBuf)]) -> Node {
        for d in ["etc-corosync", "var-lib-corosync", "logs"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::create_dir_all(root.join("var-lib-pacemaker")).unwrap();
        for d in ["cib", "pengine", "blackbox", "cores"] {
            hacluster_dir(&root.join("var-lib-pacemaker").join(d), 0o750);
        }
        hacluster_dir(&root.join("var-log-pacemaker"), 0o770);
        let holder = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--uts",
                "--ipc",
                "--propagation",
                "private",
            ])
            .args(["--", "sleep", "infinity"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .pdeathsig(libc::SIGKILL)
            .spawn()
            .expect("run unshare");
        let mut node = Node {
            name: name.to_string(),
            root: root.to_path_buf(),
            holder,
            mnt_ns: None,
            corosync: None,
            pacemakerd: None,
        };
        let ours = ns_link("self", "mnt");
        let pid = node.pid().to_string();
        node.mnt_ns = Some(wait_for(
            &format!("the namespaces of node {name}"),
            Duration::from_secs(10),
            || {
                let ns = ns_link(&pid, "mnt")?;
                (ns != *ours.as_ref()? && comm(node.pid()) == "sleep").then_some(ns)
            },
        ));
        node.setup(agents);
        node
    }

    fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// `path` as the node sees it, reached from the host.
    fn inside(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid())).join(path.trim_start_matches('/'))
    }

    fn setup(&self, agents: &[(&str, PathBuf)]) {
        self.sh("hostname", &[&self.name]);
        self.sh("ip", &["link", "set", "lo", "up"]);
        let tmpfs =
            |opts: &str, dir: &str| self.sh("mount", &["-t", "tmpfs", "-o", opts, "ra-rs", dir]);
        tmpfs("mode=0755,size=64m", "/run");
        tmpfs("mode=1777,size=256m", "/dev/shm");
        tmpfs("mode=0755,size=1m", OCF_RESOURCE_D);
        for (src, dst) in [
            ("etc-corosync", "/etc/corosync"),
            ("var-lib-pacemaker", "/var/lib/pacemaker"),
            ("var-lib-corosync", "/var/lib/corosync"),
            ("var-log-pacemaker", "/var/log/pacemaker"),
        ] {
            self.sh(
                "mount",
                &["--bind", &self.root.join(src).to_string_lossy(), dst],
            );
        }
        hacluster_dir(&self.inside("/run/crm"), 0o750);
        for d in ["/run/resource-agents", "/run/lock"] {
            std::fs::create_dir_all(self.inside(d)).unwrap();
        }
        let provider = self.inside(&format!("{OCF_RESOURCE_D}/{PROVIDER}"));
        std::fs::create_dir_all(&provider).unwrap();
        for (ty, bin) in agents {
            std::os::unix::fs::symlink(bin, provider.join(ty)).unwrap();
        }
    }

    /// corosync.conf (knet; one node on 127.0.0.1 or two on the veth) and
    /// the pre-seeded CIB: no fencing, DC elected after 2 s instead of 20,
    /// resources stay where they run.
    fn write_config(&self, names: &[&str], addrs: &[String]) {
        let nodes: String = names
            .iter()
            .zip(addrs)
            .enumerate()
            .map(|(i, (n, a))| {
                format!("    node {{\n        name: {n}\n        nodeid: {}\n        ring0_addr: {a}\n    }}\n", i + 1)
            })
            .collect();
        let conf = format!(
            "# Written by tests/pacemaker.rs for node {name}.\n\
             totem {{\n    version: 2\n    cluster_name: ra-rs-test\n    transport: knet\n    \
             crypto_cipher: none\n    crypto_hash: none\n}}\n\
             logging {{\n    to_stderr: no\n    to_syslog: no\n    to_logfile: yes\n    \
             logfile: {log}\n    timestamp: hires\n}}\n\
             quorum {{\n    provider: corosync_votequorum\n{two}}}\n\
             nodelist {{\n{nodes}}}\n",
            name = self.name,
            log = self.root.join("logs/corosync.log").display(),
            two = if names.len() == 2 {
                "    two_node: 1\n"
            } else {
                ""
            },
        );
        std::fs::write(self.root.join("etc-corosync/corosync.conf"), conf).unwrap();
        hacluster_file(
            &self.root.join("var-lib-pacemaker/cib/cib.xml"),
            SEED_CIB,
            0o600,
        );
        hacluster_file(&self.log_file(), "", 0o660);
    }

    /// The node's own /etc/hosts: every node name resolves to its corosync
    /// address, as in a real cluster (a libvirt migration finds the target
    /// by its node name).
    fn write_hosts(&self, names: &[&str], addrs: &[String]) {
        let mut hosts = String::from("127.0.0.1 localhost\n::1 localhost\n");
        for (n, a) in names.iter().zip(addrs) {
            hosts += &format!("{a} {n}\n");
        }
        let file = self.root.join("hosts");
        std::fs::write(&file, hosts).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        self.sh("mount", &["--bind", &file.to_string_lossy(), "/etc/hosts"]);
    }

    /// `program args` inside the node's namespaces.
    fn cmd(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--target={}", self.pid()))
            .args(["--net", "--mount", "--uts", "--ipc", "--", program])
            .args(args)
            .env_remove("CIB_file")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        self.cmd(program, args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run nsenter {program}: {e}"))
    }

    /// Run on the node; panic with the output unless it succeeds.
    fn sh(&self, program: &str, args: &[&str]) -> String {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?} on {} failed ({}): {}",
            self.name,
            out.status,
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// (mount id, mount point) of every mount in the node's mount namespace.
    fn mounts(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(format!("/proc/{}/mountinfo", self.pid()))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                Some((f.first()?.to_string(), f.get(4)?.replace("\\040", " ")))
            })
            .collect()
    }

    /// The mount id of what is mounted at `dir` on the node, if anything.
    fn mount_id(&self, dir: &Path) -> Option<String> {
        let want = dir.to_string_lossy();
        self.mounts()
            .into_iter()
            .filter(|(_, m)| *m == want)
            .map(|(id, _)| id)
            .next_back()
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("logs/pacemaker.log")
    }

    /// The node's pacemaker.log from byte `from` on.
    fn log_from(&self, from: usize) -> String {
        let bytes = std::fs::read(self.log_file()).unwrap_or_default();
        String::from_utf8_lossy(bytes.get(from..).unwrap_or_default()).into_owned()
    }

    fn log(&self) -> String {
        self.log_from(0)
    }

    /// A daemon inside the node, as a child of the test.
    fn spawn(&self, program: &str, args: &[&str], env: &[(String, String)]) -> Child {
        let out = std::fs::File::create(self.root.join(format!("logs/{program}.stderr"))).unwrap();
        let mut c = self.cmd(program, args);
        c.env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            // If the test process dies without running Drop, the daemons
            // stop (pacemakerd stops the resources first).
            .pdeathsig(libc::SIGTERM);
        c.spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} on {}: {e}", self.name))
    }
}

trait PdeathSig {
    fn pdeathsig(&mut self, sig: i32) -> &mut Self;
}

impl PdeathSig for Command {
    fn pdeathsig(&mut self, sig: i32) -> &mut Command {
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            self.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong);
                Ok(())
            })
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for mut c in [self.pacemakerd.take(), self.corosync.take()]
            .into_iter()
            .flatten()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Whatever else runs in this node's namespaces (only ever ours:
        // nothing else can enter them), by pid; never the host's namespace.
        if let (Some(ns), Some(host)) = (&self.mnt_ns, ns_link("self", "mnt")) {
            if *ns != host {
                let ours = |p: u32| {
                    p != self.pid()
                        && ns_link(&p.to_string(), "mnt").as_ref() == Some(ns)
                        && alive(p)
                };
                let left: Vec<u32> = pids().into_iter().filter(|&p| ours(p)).collect();
                for &p in &left {
                    eprintln!("node {}: killing leftover pid {p} ({})", self.name, comm(p));
                    signal(p, libc::SIGKILL);
                }
                let start = Instant::now();
                while left.iter().any(|&p| ours(p)) && start.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

// ---------------------------------------------------------------------------
// The cluster

/// The cluster tests of this file run one at a time.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

/// corosync + pacemakerd on one or two [`Node`]s, all started here.
struct Cluster {
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
    _one_at_a_time: MutexGuard<'static, ()>,
}

/// What pacemakerd on a node passes on to the agents it runs.
type NodeEnv<'a> = &'a dyn Fn(&str) -> Vec<(String, String)>;

impl Cluster {
    /// A cluster of `names` (one or two nodes) with our `agents` installed
    /// under our provider; `env` adds to each node's pacemakerd
    /// environment. Returns once every node is online and there is a DC.
    fn start(names: &[&str], agents: &[(&str, PathBuf)], env: NodeEnv) -> Cluster {
        assert!(matches!(names.len(), 1 | 2), "one or two nodes");
        let lock = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
        preflight();
        let running = cluster_daemons();
        assert!(
            running.is_empty(),
            "a cluster is already running on this machine ({}): tests/pacemaker.rs starts its own \
             and will not touch it; stop it and run the tests again",
            running.join(", ")
        );
        let dir = support::tempdir("pcmk");
        // hacluster must reach the log files below it
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut cluster = Cluster {
            nodes: Vec::new(),
            dir,
            _one_at_a_time: lock,
        };
        for n in names {
            let node = Node::new(n, &cluster.dir.path().join(n), agents);
            cluster.nodes.push(node);
        }
        let addrs: Vec<String> = if names.len() == 1 {
            vec!["127.0.0.1".into()]
        } else {
            cluster.link()
        };
        for n in &cluster.nodes {
            n.write_config(names, &addrs);
            n.write_hosts(names, &addrs);
        }
        let t0 = Instant::now();
        for n in &mut cluster.nodes {
            n.sh("corosync", &["-t"]);
            let c = n.spawn(
                "corosync",
                &["-f"],
                &[("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into())],
            );
            n.corosync = Some(c);
        }
        let want = names.len().to_string();
        wait_until(
            "a quorate corosync membership of every node",
            UP_LIMIT,
            || {
                cluster.check_daemons();
                let out = cluster.nodes[0].run("corosync-quorumtool", &["-s"]);
                let s = String::from_utf8_lossy(&out.stdout).into_owned();
                let field = |k: &str| {
                    s.lines()
                        .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
                };
                field("Quorate:").as_deref() == Some("Yes") && field("Nodes:") == Some(want.clone())
            },
        );
        for n in &mut cluster.nodes {
            let mut e: Vec<(String, String)> = vec![
                ("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()),
                ("PCMK_logfile".into(), n.log_file().to_string_lossy().into()),
                ("PCMK_logfacility".into(), "none".into()),
                ("PCMK_logpriority".into(), "notice".into()),
            ];
            for (k, v) in env(&n.name) {
                e.retain(|(x, _)| *x != k);
                e.push((k, v));
            }
            let c = n.spawn("pacemakerd", &[], &e);
            n.pacemakerd = Some(c);
        }
        let online = format!("Online: [ {} ]", names.join(" "));
        wait_until("every node online in Pacemaker with a DC", UP_LIMIT, || {
            cluster.check_daemons();
            cluster.nodes.iter().all(|n| {
                let s = text(&n.run("crm_mon", &["-1"]));
                s.contains("partition with quorum") && s.contains(&online)
            })
        });
        eprintln!("cluster {names:?} up after {:?}", t0.elapsed());
        cluster
    }

    /// Panic (with where to look) when a daemon of ours has exited.
    fn check_daemons(&self) {
        for n in &self.nodes {
            for (name, c) in [("corosync", &n.corosync), ("pacemakerd", &n.pacemakerd)] {
                if let Some(c) = c {
                    assert!(
                        alive(c.id()),
                        "{name} on node {} exited; see {}",
                        n.name,
                        n.root.join("logs").display()
                    );
                }
            }
        }
    }

    /// A veth pair between the two nodes' network namespaces (it never
    /// exists in the host's); returns their addresses.
    fn link(&self) -> Vec<String> {
        let (a, b) = (&self.nodes[0], &self.nodes[1]);
        support::sh(
            "ip",
            &[
                "link",
                "add",
                "ra-rs0",
                "netns",
                &a.pid().to_string(),
                "type",
                "veth",
                "peer",
                "name",
                "ra-rs1",
                "netns",
                &b.pid().to_string(),
            ],
        );
        let addrs = vec!["169.254.91.1".to_string(), "169.254.91.2".to_string()];
        for (i, n) in [a, b].into_iter().enumerate() {
            let dev = format!("ra-rs{i}");
            n.sh(
                "ip",
                &["addr", "add", &format!("{}/24", addrs[i]), "dev", &dev],
            );
            n.sh("ip", &["link", "set", &dev, "up"]);
        }
        addrs
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// A cluster tool on the first node; panics unless it succeeds.
    fn cli(&self, program: &str, args: &[&str]) -> String {
        self.nodes[0].sh(program, args)
    }

    /// Add `xml` to the resources section.
    fn create(&self, xml: &str) {
        self.cli(
            "cibadmin",
            &["--create", "--scope", "resources", "--xml-text", xml],
        );
    }

    /// Create resources as an admin does with pcs, offline: each of
    /// `commands` is `pcs -f <file> <command>` on a copy of the live CIB
    /// (`cibadmin --query`), then the file replaces the CIB (`cibadmin
    /// --replace`, what `pcs cluster cib-push` runs). pcs runs on the first
    /// node, where it reads our agents' meta-data and refuses options the
    /// meta-data does not list.
    fn pcs_create(&self, commands: &[Vec<String>]) {
        assert!(
            ["/usr/sbin/pcs", "/usr/bin/pcs"]
                .iter()
                .any(|p| Path::new(p).is_file()),
            "this test creates its resources with pcs: install it (Debian: pcs)"
        );
        let file = self.dir.path().join("cib-pcs.xml");
        std::fs::write(&file, self.cli("cibadmin", &["--query"])).unwrap();
        let f = file.to_string_lossy();
        for c in commands {
            let mut args = vec!["-f", &*f];
            args.extend(c.iter().map(String::as_str));
            eprintln!("pcs {}", args.join(" "));
            let said = self.cli("pcs", &args);
            if !said.trim().is_empty() {
                eprintln!("{}", said.trim_end());
            }
        }
        self.cli("cibadmin", &["--replace", "--xml-file", &f]);
    }

    /// Wait until the cluster has no transition in flight.
    fn settle(&self) {
        let out = self.nodes[0].run("crm_resource", &["--wait", &format!("--timeout={SETTLE}")]);
        assert!(
            out.status.success(),
            "the cluster did not settle within {SETTLE}: {}\n{}",
            text(&out),
            self.status()
        );
    }

    /// Settle, clean up `rsc`'s history and fail counts, settle again (a
    /// cleanup during a transition stalls the controller; see the lab).
    fn cleanup(&self, rsc: &str) {
        self.settle();
        self.cli("crm_resource", &["--cleanup", "--resource", rsc]);
        self.settle();
    }

    /// The nodes `rsc` is active on (`--locate` says "NOT running" on stderr).
    fn locate(&self, rsc: &str) -> Vec<String> {
        let out = self.nodes[0].run("crm_resource", &["--resource", rsc, "--locate"]);
        let mut on: Vec<String> = text(&out)
            .lines()
            .filter_map(|l| l.split_once("is running on:"))
            .filter_map(|(_, n)| n.split_whitespace().next().map(str::to_string))
            .collect();
        on.sort();
        on
    }

    fn set_meta(&self, rsc: &str, name: &str, value: &str) {
        self.cli(
            "crm_resource",
            &[
                "--resource",
                rsc,
                "--meta",
                "--set-parameter",
                name,
                "--parameter-value",
                value,
            ],
        );
    }

    /// `rsc`'s fail count on `node`: of one operation (`op`, `interval`) or
    /// of all.
    fn fail_count(&self, rsc: &str, node: &str, op: Option<(&str, &str)>) -> u64 {
        let mut args = vec!["--query", "--quiet", "--resource", rsc, "--node", node];
        if let Some((name, interval)) = op {
            args.extend(["--operation", name, "--interval", interval]);
        }
        let out = self.nodes[0].run("crm_failcount", &args);
        match String::from_utf8_lossy(&out.stdout).trim() {
            "INFINITY" => u64::MAX,
            n => n.parse().unwrap_or(0),
        }
    }

    /// `crm_mon -1` with fail counts and the operation history.
    fn status(&self) -> String {
        text(&self.nodes[0].run("crm_mon", &["-1", "--include=failcounts,operations"]))
    }

    /// The result (`rc-code`) recorded in the CIB for operation `key`
    /// (`fs1_monitor_3000`) on `node`.
    fn op_rc(&self, key: &str, node: &str) -> Option<i32> {
        let cib = self.cli("cibadmin", &["--query", "--scope", "status"]);
        cib.split("<lrm_rsc_op ")
            .skip(1)
            .map(|e| e.split('>').next().unwrap_or(""))
            .filter(|e| attr(e, "operation_key") == Some(key) && attr(e, "on_node") == Some(node))
            .find_map(|e| attr(e, "rc-code")?.parse().ok())
    }

    /// How long each node's pacemaker.log is now (to read what comes next).
    fn log_marks(&self) -> Vec<usize> {
        let len = |n: &Node| std::fs::metadata(n.log_file()).map_or(0, |m| m.len() as usize);
        self.nodes.iter().map(len).collect()
    }

    /// What each node logged since `marks`, by node name.
    fn logs_since(&self, marks: &[usize]) -> Vec<(String, String)> {
        self.nodes
            .iter()
            .zip(marks)
            .map(|(n, &m)| (n.name.clone(), n.log_from(m)))
            .collect()
    }

    /// The state and the end of every node's log, when a test fails.
    fn report(&self) {
        eprintln!("---- crm_mon (cluster test failed)\n{}", self.status());
        for n in &self.nodes {
            let log = n.log();
            let tail: Vec<&str> = log
                .lines()
                .filter(|l| !l.contains("(cib_perform_op)"))
                .collect();
            eprintln!(
                "---- {} (node {}), last lines",
                n.log_file().display(),
                n.name
            );
            for l in &tail[tail.len().saturating_sub(60)..] {
                eprintln!("{l}");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.report();
        }
        // pacemakerd on every node at once: each stops its resources, then
        // itself (nothing moves).
        for n in &self.nodes {
            if let Some(c) = &n.pacemakerd {
                signal(c.id(), libc::SIGTERM);
            }
        }
        for n in &mut self.nodes {
            if let Some(c) = n.pacemakerd.as_mut() {
                reap(c, Duration::from_secs(90));
            }
        }
        for n in &mut self.nodes {
            if n.corosync.is_some() {
                let _ = n.run("corosync-cfgtool", &["-H", "--force"]);
            }
        }
        for n in &mut self.nodes {
            if let Some(c) = n.corosync.as_mut() {
                signal(c.id(), libc::SIGTERM);
                reap(c, Duration::from_secs(30));
            }
        }
        // Then every Node kills what is left in its namespaces.
    }
}

/// The value of attribute `name` in the text of one XML element.
fn attr<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = element[start..].find('"')?;
    Some(&element[start..start + len])
}

// ---------------------------------------------------------------------------
// Resource definitions, written as for the heartbeat agents

/// The primitives in a piece of CIB XML, in order, as `id ocf:provider:type`.
fn primitives(xml: &str) -> Vec<String> {
    xml.split("<primitive ")
        .skip(1)
        .map(|e| format!(" {}", e.split('>').next().unwrap_or("")))
        .map(|e| {
            let a = |n| attr(&e, n).unwrap_or("?");
            format!("{} ocf:{}:{}", a("id"), a("provider"), a("type"))
        })
        .collect()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// One operation of a primitive; `depth` is its OCF_CHECK_LEVEL.
struct Op {
    name: &'static str,
    interval: &'static str,
    timeout: &'static str,
    depth: Option<u32>,
}

fn op(name: &'static str, interval: &'static str, timeout: &'static str) -> Op {
    Op {
        name,
        interval,
        timeout,
        depth: None,
    }
}

/// A primitive exactly as for `ocf:heartbeat:<agent>`.
fn heartbeat_primitive(
    id: &str,
    agent: &str,
    params: &[(&str, String)],
    meta: &[(&str, &str)],
    ops: &[Op],
) -> String {
    let mut x =
        format!("<primitive id=\"{id}\" class=\"ocf\" provider=\"heartbeat\" type=\"{agent}\">");
    x += &format!("<instance_attributes id=\"{id}-ia\">");
    for (k, v) in params {
        x += &format!(
            "<nvpair id=\"{id}-ia-{k}\" name=\"{k}\" value=\"{}\"/>",
            escape(v)
        );
    }
    x += "</instance_attributes>";
    if !meta.is_empty() {
        x += &format!("<meta_attributes id=\"{id}-meta\">");
        for (k, v) in meta {
            x += &format!(
                "<nvpair id=\"{id}-meta-{k}\" name=\"{k}\" value=\"{}\"/>",
                escape(v)
            );
        }
        x += "</meta_attributes>";
    }
    x += "<operations>";
    for o in ops {
        let oid = format!("{id}-{}-{}", o.name, o.interval);
        x += &format!(
            "<op id=\"{oid}\" name=\"{}\" interval=\"{}\" timeout=\"{}\"",
            o.name, o.interval, o.timeout
        );
        match o.depth {
            Some(d) => {
                x += &format!(
                    "><instance_attributes id=\"{oid}-ia\"><nvpair id=\"{oid}-depth\" \
                     name=\"OCF_CHECK_LEVEL\" value=\"{d}\"/></instance_attributes></op>"
                )
            }
            None => x += "/>",
        }
    }
    x += "</operations></primitive>";
    x
}

/// A heartbeat configuration switched to our provider, and nothing else.
fn our_provider(heartbeat_xml: &str) -> String {
    let from = "provider=\"heartbeat\"";
    assert!(heartbeat_xml.contains(from));
    heartbeat_xml.replace(from, &format!("provider=\"{PROVIDER}\""))
}

// ---------------------------------------------------------------------------
// Guests

/// The guest a cluster test runs, as the cluster tests see it: the Xen
/// agent over the `xl` double, or VirtualDomain over a real QEMU guest with
/// one libvirtd per node.
trait Guest: Sync {
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
struct XenOverXlDouble {
    dir: tempfile::TempDir,
    domain: &'static str,
}

impl XenOverXlDouble {
    fn new(nodes: &[&str]) -> XenOverXlDouble {
        let dir = support::tempdir("pcmk-xl-double");
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::os::unix::fs::symlink(doubles::xl(), dir.path().join("bin/xl")).unwrap();
        for n in nodes {
            std::fs::create_dir_all(dir.path().join("hosts").join(n)).unwrap();
        }
        let domain = "vm1";
        std::fs::write(
            dir.path().join("vm1.cfg"),
            format!("name = \"{domain}\"\nmemory = 256\nvcpus = 1\n"),
        )
        .unwrap();
        XenOverXlDouble { dir, domain }
    }

    /// The double's state directory for `node` (a "host").
    fn host(&self, node: &str) -> PathBuf {
        self.dir.path().join("hosts").join(node)
    }

    /// The calls the agent made on `node`, one `{:?}` line each.
    fn calls(&self, node: &str) -> Vec<String> {
        std::fs::read_to_string(self.host(node).join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// `["a", "b"]` as the double logs it.
fn call(args: &[&str]) -> String {
    format!("{args:?}")
}

impl Guest for XenOverXlDouble {
    fn agent(&self) -> (&'static str, PathBuf) {
        ("Xen", PathBuf::from(XEN))
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
        let out = Command::new(doubles::xl())
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
struct VirtualDomainQemu {
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

struct VdNode {
    name: String,
    daemon: Daemon,
    /// The node's network namespace (`net:[...]`).
    netns: String,
    /// The node's holder process (its /proc/PID/net is the node's).
    holder: u32,
}

/// Bytes received on the interfaces other than loopback of the network
/// namespace of `pid` (/proc/PID/net/dev).
fn rx_bytes(pid: u32) -> u64 {
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
const MONITOR_PROCS: [&str; 2] = ["proc=212 ", "proc=16 "];

impl VirtualDomainQemu {
    /// None (SKIP) without libvirtd or the QEMU guest, unless
    /// RA_REQUIRE_GUEST is set.
    fn new() -> Option<VirtualDomainQemu> {
        if !have_libvirtd() {
            assert!(
                std::env::var_os("RA_REQUIRE_GUEST").is_none(),
                "RA_REQUIRE_GUEST is set but libvirtd/virtlogd are not installed"
            );
            return None;
        }
        let img = guest_image()?;
        vd_binary();
        let dir = support::tempdir("pcmk-vd");
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

    fn nodes(&self) -> MutexGuard<'_, Vec<VdNode>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The daemon of `node`: its directory and its QEMU URI.
    fn daemon(&self, node: &str) -> Option<(PathBuf, String)> {
        let nodes = self.nodes();
        let n = nodes.iter().find(|n| n.name == node)?;
        Some((n.daemon.dir.clone(), n.daemon.qemu_uri()))
    }

    fn netns(&self, node: &str) -> Option<String> {
        let nodes = self.nodes();
        nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.netns.clone())
    }

    fn virsh(&self, node: &str, args: &[&str]) -> Output {
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
    fn serial(&self, node: &str) -> String {
        let Some((dir, _)) = self.daemon(node) else {
            return String::new();
        };
        let f = dir.join(format!("log/qemu/{}-serial.log", self.name));
        String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default()).into_owned()
    }

    /// The uptimes the guest printed on `node`'s serial console, in order.
    fn uptimes(&self, node: &str) -> Vec<f64> {
        self.serial(node)
            .lines()
            .filter_map(|l| l.split_once(UPTIME))
            .filter_map(|(_, v)| v.trim().parse().ok())
            .collect()
    }

    /// The emulator processes of the guest in `node`'s network namespace.
    fn emulators_on(&self, node: &str) -> Vec<i32> {
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

// ---------------------------------------------------------------------------
// Tests

/// One node: a group of our Filesystem (loop-backed ext4) and the guest,
/// configured as for the heartbeat agents; start, recurring monitors, a
/// failure of each behind the cluster's back detected by the recurring
/// monitor and recovered, stop.
#[test]
fn one_node_group_with_xen_over_xl_double() {
    one_node_group(&XenOverXlDouble::new(&["node1"]));
}

/// The same with the VirtualDomain agent and a real QEMU guest (one
/// libvirtd on the node); the guest is destroyed with `virsh destroy`.
#[test]
fn one_node_group_with_virtualdomain() {
    let Some(guest) = VirtualDomainQemu::new() else {
        return;
    };
    one_node_group(&guest);
}

fn one_node_group(guest: &dyn Guest) {
    let fsdir = support::tempdir("pcmk-fs");
    let dev = LoopDevice::new(fsdir.path(), 64, "ext4");
    let mnt = fsdir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let env = |n: &str| guest.node_env(n);
    let cluster = Cluster::start(
        &["node1"],
        &[("Filesystem", PathBuf::from(FILESYSTEM)), guest.agent()],
        &env,
    );
    let node = cluster.node("node1");
    guest.prepare(node);

    // The group as an admin creates it with pcs for the heartbeat agents,
    // provider switched: heartbeat's parameter names, a depth-20 monitor.
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let mut fs = words(&[
        "resource",
        "create",
        "fs1",
        &format!("ocf:{PROVIDER}:Filesystem"),
    ]);
    fs.extend([
        format!("device={}", dev.device),
        format!("directory={}", mnt.display()),
        "fstype=ext4".into(),
    ]);
    fs.extend(words(&[
        "op",
        "start",
        "timeout=60s",
        "stop",
        "timeout=60s",
        "monitor",
        &format!("interval={MONITOR}"),
        "timeout=20s",
        "monitor",
        "interval=10s",
        "timeout=20s",
        "OCF_CHECK_LEVEL=20",
        "--group",
        "g1",
    ]));
    let (ty, _) = guest.agent();
    let mut vm = words(&["resource", "create", "vm1", &format!("ocf:{PROVIDER}:{ty}")]);
    vm.extend(guest.params().into_iter().map(|(k, v)| format!("{k}={v}")));
    vm.extend(words(&[
        "op",
        "start",
        "timeout=60s",
        "stop",
        "timeout=40s",
        "monitor",
        &format!("interval={MONITOR}"),
        "timeout=30s",
        "--group",
        "g1",
    ]));
    cluster.pcs_create(&[fs, vm]);
    let resources = cluster.cli("cibadmin", &["--query", "--scope", "resources"]);
    // exactly our two primitives, in this order, under our provider
    let primitives = primitives(&resources);
    assert_eq!(
        primitives,
        [
            format!("fs1 ocf:{PROVIDER}:Filesystem"),
            format!("vm1 ocf:{PROVIDER}:{ty}")
        ],
        "{resources}"
    );

    // Start
    cluster.settle();
    assert_eq!(cluster.locate("fs1"), ["node1"], "{}", cluster.status());
    assert_eq!(cluster.locate("vm1"), ["node1"], "{}", cluster.status());
    assert!(
        node.mount_id(&mnt).is_some(),
        "{} not mounted on node1",
        mnt.display()
    );
    assert!(
        !support::is_mounted(&mnt),
        "the mount belongs to the node, not the host"
    );
    assert!(guest.running_on("node1"));
    guest.wait_ready("node1");

    // The recurring monitors run and succeed; the depth-20 one reached our
    // agent (it writes its status file on the filesystem).
    for key in [
        format!("fs1_monitor_{MONITOR_MS}"),
        "fs1_monitor_10000".to_string(),
        format!("vm1_monitor_{MONITOR_MS}"),
    ] {
        wait_until(
            &format!("a first result of {key}"),
            Duration::from_secs(20),
            || cluster.op_rc(&key, "node1").is_some(),
        );
        assert_eq!(
            cluster.op_rc(&key, "node1"),
            Some(0),
            "{key}\n{}",
            cluster.status()
        );
    }
    let status_dir = node.inside(&mnt.join(".Filesystem_status").to_string_lossy());
    assert!(
        status_dir.is_dir(),
        "no depth-20 status file in {}",
        mnt.display()
    );
    let looks = guest.looks("node1");
    wait_until(
        "two more recurring guest monitors",
        Duration::from_secs(15),
        || guest.looks("node1") >= looks + 2,
    );

    // Failure 1: the filesystem is unmounted behind the cluster's back.
    node.sh("umount", &[&mnt.to_string_lossy()]);
    let t = Instant::now();
    wait_until(
        "Pacemaker to notice the umount",
        Duration::from_secs(30),
        || cluster.fail_count("fs1", "node1", None) >= 1,
    );
    eprintln!("umount detected after {:?}", t.elapsed());
    wait_until("fs1 mounted again", Duration::from_secs(60), || {
        node.mount_id(&mnt).is_some()
    });
    cluster.settle();
    eprintln!("umount recovered after {:?}", t.elapsed());
    // Either recurring monitor may see it first, and the depth-20 one may
    // run before the recovery too: each failed at most once, nothing else
    // failed, and crm_mon shows the (last) failed monitor.
    let status = cluster.status();
    let by_monitor: Vec<u64> = [MONITOR, "10s"]
        .into_iter()
        .map(|i| cluster.fail_count("fs1", "node1", Some(("monitor", i))))
        .collect();
    assert!(
        by_monitor.iter().all(|&n| n <= 1),
        "{by_monitor:?}\n{status}"
    );
    assert!(by_monitor.contains(&1), "{by_monitor:?}\n{status}");
    assert_eq!(
        cluster.fail_count("fs1", "node1", None),
        by_monitor.iter().sum::<u64>(),
        "{status}"
    );
    assert_eq!(cluster.fail_count("vm1", "node1", None), 0, "{status}");
    assert!(
        status.lines().any(|l| l.contains("fs1 ")
            && l.contains("-interval monitor on node1 returned 'not running'")),
        "crm_mon shows no failed fs1 monitor:\n{status}"
    );
    assert_eq!(cluster.locate("fs1"), ["node1"], "{status}");
    assert_eq!(cluster.locate("vm1"), ["node1"], "{status}");
    assert!(guest.running_on("node1"), "the group's guest is back");
    cluster.cleanup("fs1");
    assert_eq!(
        cluster.fail_count("fs1", "node1", None),
        0,
        "{}",
        cluster.status()
    );

    // Failure 2: the guest is destroyed behind the cluster's back; only
    // the guest is recovered (the filesystem stays mounted).
    let mounted = node.mount_id(&mnt);
    guest.kill("node1");
    let t = Instant::now();
    wait_until(
        "Pacemaker to notice the destroyed guest",
        Duration::from_secs(30),
        || cluster.fail_count("vm1", "node1", None) >= 1,
    );
    eprintln!("guest failure detected after {:?}", t.elapsed());
    wait_until("the guest running again", Duration::from_secs(60), || {
        guest.running_on("node1")
    });
    cluster.settle();
    eprintln!("guest failure recovered after {:?}", t.elapsed());
    assert_eq!(
        cluster.fail_count("vm1", "node1", Some(("monitor", MONITOR))),
        1
    );
    assert_eq!(cluster.fail_count("fs1", "node1", None), 0);
    let status = cluster.status();
    assert!(
        status.contains(&format!(
            "vm1 {MONITOR}-interval monitor on node1 returned 'not running'"
        )),
        "crm_mon shows no failed vm1 monitor:\n{status}"
    );
    assert_eq!(cluster.locate("vm1"), ["node1"], "{status}");
    assert_eq!(
        node.mount_id(&mnt),
        mounted,
        "the filesystem was not remounted"
    );
    guest.wait_ready("node1");

    // Stop
    let t = Instant::now();
    cluster.set_meta("g1", "target-role", "Stopped");
    wait_until("the group stopped", Duration::from_secs(60), || {
        cluster.locate("fs1").is_empty() && cluster.locate("vm1").is_empty()
    });
    cluster.settle();
    eprintln!("group stopped after {:?}", t.elapsed());
    assert!(!guest.running_on("node1"));
    let left: Vec<String> = node
        .mounts()
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.starts_with(&*fsdir.path().to_string_lossy()))
        .collect();
    assert!(
        left.is_empty(),
        "still mounted on node1 after stop: {left:?}"
    );
    assert!(!support::is_mounted(&mnt));
}

/// Two nodes: the guest with allow-migrate=true, moved there and back with
/// `crm_resource --move`: Pacemaker calls our migrate_to, then our
/// migrate_from, never a stop and start; the guest never runs on both
/// nodes, and the cluster never sees it stopped.
#[test]
fn two_nodes_live_migration_with_xen_over_xl_double() {
    two_nodes_live_migration(&XenOverXlDouble::new(&["node1", "node2"]));
}

/// The same with the VirtualDomain agent: a real QEMU guest live-migrated
/// between the libvirtds of the two nodes, over their veth.
#[test]
fn two_nodes_live_migration_with_virtualdomain() {
    let Some(guest) = VirtualDomainQemu::new() else {
        return;
    };
    two_nodes_live_migration(&guest);
}

fn two_nodes_live_migration(guest: &dyn Guest) {
    let env = |n: &str| guest.node_env(n);
    let cluster = Cluster::start(&["node1", "node2"], &[guest.agent()], &env);
    for n in &cluster.nodes {
        guest.prepare(n);
    }
    let vm = heartbeat_primitive(
        "vm1",
        guest.agent().0,
        &guest.params(),
        &[("allow-migrate", "true")],
        &[
            op("start", "0", "60s"),
            op("stop", "0", "40s"),
            op("monitor", MONITOR, "30s"),
            op("migrate_to", "0", "60s"),
            op("migrate_from", "0", "60s"),
        ],
    );
    cluster.create(&our_provider(&vm));
    cluster.settle();
    let on = cluster.locate("vm1");
    assert_eq!(on.len(), 1, "vm1 on one node: {}", cluster.status());
    let first = on[0].clone();
    let other = if first == "node1" { "node2" } else { "node1" }.to_string();
    assert!(guest.running_on(&first) && !guest.running_on(&other));
    guest.wait_ready(&first);

    for (from, to) in [
        (first.as_str(), other.as_str()),
        (other.as_str(), first.as_str()),
    ] {
        move_live(&cluster, guest, from, to);
    }

    cluster.set_meta("vm1", "target-role", "Stopped");
    wait_until("vm1 stopped", Duration::from_secs(60), || {
        cluster.locate("vm1").is_empty()
    });
    cluster.settle();
    assert!(!guest.running_on("node1") && !guest.running_on("node2"));
}

fn move_live(cluster: &Cluster, guest: &dyn Guest, from: &str, to: &str) {
    guest.forget_calls();
    let marks = cluster.log_marks();
    let t = Instant::now();
    let moving = AtomicBool::new(true);
    let on_both = std::thread::scope(|s| {
        // The hypervisors' view, sampled every 10 ms: the guest must never
        // run on both nodes. A hand-over writes the target before it clears
        // the source (a real migration has both halves for a moment too), so
        // "both" only counts when it is still true 50 ms later.
        let sampler = s.spawn(|| {
            let both = || guest.running_on(from) && guest.running_on(to);
            while moving.load(Ordering::Relaxed) {
                if both() {
                    std::thread::sleep(Duration::from_millis(50));
                    if both() {
                        return true;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            false
        });
        // the sampler ends also when an assertion below fails
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Relaxed);
            }
        }
        let done = Done(&moving);
        cluster.cli(
            "crm_resource",
            &["--resource", "vm1", "--move", "--node", to],
        );
        // The cluster's view: while partially migrated (migrate_to done,
        // migrate_from not yet) Pacemaker lists the resource on both nodes;
        // it must never list it on none (stopped, then started).
        let mut views = Vec::new();
        wait_until(&format!("vm1 on {to}"), Duration::from_secs(60), || {
            let on = cluster.locate("vm1");
            let done = on == [to];
            views.push(on);
            done
        });
        cluster.settle();
        views.push(cluster.locate("vm1"));
        drop(done);
        eprintln!("vm1 moved {from} -> {to} in {:?}", t.elapsed());
        assert!(
            views.iter().all(|v| !v.is_empty()),
            "vm1 was stopped during the move: {views:?}"
        );
        assert_eq!(views.last().unwrap(), &[to], "{}", cluster.status());
        sampler.join().unwrap()
    });
    assert!(!on_both, "the guest ran on {from} and {to} at once");

    guest.assert_live_migrated(from, to);

    // What Pacemaker did, from its logs: the DC initiated migrate_to, then
    // migrate_from; each succeeded on its node; nothing was started.
    let logs = cluster.logs_since(&marks);
    let log_of = |n: &str| {
        logs.iter()
            .find(|(x, _)| x == n)
            .map(|(_, l)| l.as_str())
            .unwrap()
    };
    let to_at = |l: &str| l.find("Initiating migrate_to operation vm1_migrate_to_0");
    let (dc, dc_log) = logs
        .iter()
        .find(|(_, l)| to_at(l).is_some())
        .unwrap_or_else(|| panic!("no node initiated migrate_to: {logs:#?}"));
    let from_at = dc_log.find("Initiating migrate_from operation vm1_migrate_from_0");
    assert!(
        from_at.is_some_and(|f| f > to_at(dc_log).unwrap()),
        "the DC ({dc}) did not initiate migrate_from after migrate_to:\n{dc_log}"
    );
    for (node, line) in [
        (
            from,
            format!("Result of migrate_to operation for vm1 on {from}: ok"),
        ),
        (
            to,
            format!("Result of migrate_from operation for vm1 on {to}: ok"),
        ),
        (
            from,
            format!("Result of stop operation for vm1 on {from}: ok"),
        ),
    ] {
        assert!(log_of(node).contains(&line), "{node} did not log `{line}`");
    }
    for (node, log) in &logs {
        assert!(
            !log.contains("Result of start operation for vm1"),
            "vm1 was started on {node} instead of migrated"
        );
        assert!(!log.contains("active on 2 nodes"), "{node}: {log}");
    }

    cluster.cli("crm_resource", &["--resource", "vm1", "--clear"]);
    cluster.settle();
    assert_eq!(
        cluster.locate("vm1"),
        [to],
        "vm1 stays on {to} after --clear"
    );
}

/// `crm_resource --validate` runs our validate-all with no cluster (in a
/// node's namespaces where only our provider is installed) and passes its
/// OCF code through.
#[test]
fn crm_resource_validate_gives_the_agents_codes() {
    preflight();
    let dir = support::tempdir("pcmk-validate");
    let dev = LoopDevice::new(dir.path(), 32, "ext4");
    let uuid = support::sh("blkid", &["-p", "-s", "UUID", "-o", "value", &dev.device])
        .trim()
        .to_string();
    assert!(!uuid.is_empty(), "no UUID on {}", dev.device);
    let node = Node::new(
        "validate",
        &dir.path().join("node"),
        &[("Filesystem", PathBuf::from(FILESYSTEM))],
    );
    let mnt = dir.path().join("mnt").to_string_lossy().into_owned();
    // Runs `crm_resource --validate` on the node; checks the exit code
    // and that the output says `says`.
    let check = |what: &str, params: Vec<(&str, String)>, code: i32, says: &str| {
        let mut args = vec![
            "--validate".to_string(),
            "--class=ocf".into(),
            format!("--provider={PROVIDER}"),
            "--agent=Filesystem".into(),
        ];
        for (k, v) in &params {
            args.push(format!("--option={k}={v}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = node.run("crm_resource", &args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(code), "{what}: {said}");
        assert!(said.contains(says), "{what}: no `{says}` in:\n{said}");
        assert!(
            said.contains("ocf:heartbeat-rs:Filesystem"),
            "{what}: {said}"
        );
    };
    let usual = || {
        vec![
            ("device", dev.device.clone()),
            ("directory", mnt.clone()),
            ("fstype", "ext4".to_string()),
        ]
    };
    let with = |name: &'static str, value: &str| {
        let mut p = usual();
        p.retain(|(k, _)| *k != name);
        p.push((name, value.to_string()));
        p
    };
    let mut every = usual();
    for (k, v) in [
        ("options", "noatime,nodev"),
        ("statusfile_prefix", ".Filesystem_status/"),
        ("run_fsck", "no"),
        ("fast_stop", "no"),
        ("force_clones", "false"),
        ("force_unmount", "safe"),
        ("term_signals", "TERM"),
        ("kill_signals", "KILL"),
        ("signal_delay", "1"),
    ] {
        every.push((k, v.to_string()));
    }
    let ok = "returned 0 (ok)";
    check("device, directory, fstype", usual(), 0, ok);
    check("every heartbeat parameter", every, 0, ok);
    check(
        "device by UUID",
        with("device", &format!("UUID={uuid}")),
        0,
        ok,
    );
    let mut no_device = usual();
    no_device.retain(|(k, _)| *k != "device");
    check("no device", no_device, 6, "returned 6 (not configured");
    check(
        "bad run_fsck",
        with("run_fsck", "sometimes"),
        6,
        "'sometimes'",
    );
    check(
        "relative directory",
        with("directory", "srv/data"),
        6,
        "'srv/data'",
    );
    check(
        "the root directory",
        with("directory", "/"),
        6,
        "root filesystem",
    );
    let nowhere = "UUID=00000000-0000-4000-8000-000000000000";
    check(
        "no such UUID",
        with("device", nowhere),
        5,
        "returned 5 (not installed",
    );
}

/// The README's `pcs resource create` example (the iSCSI → LVM-activate →
/// Filesystem → VirtualDomain group) runs as printed, offline (`pcs -f` on
/// a CIB file), in a node where our agents are the only provider: pcs
/// reads our meta-data, accepts every option and makes one group of our
/// four primitives in order, which `crm_verify` accepts. The same pcs
/// refuses an option our meta-data does not list, and a missing required
/// one.
#[test]
fn pcs_creates_the_readme_stack() {
    preflight();
    if !have_libvirtd() {
        assert!(
            std::env::var_os("RA_REQUIRE_GUEST").is_none(),
            "RA_REQUIRE_GUEST is set but libvirtd/virtlogd are not installed"
        );
        return;
    }
    assert!(
        ["/usr/sbin/pcs", "/usr/bin/pcs"]
            .iter()
            .any(|p| Path::new(p).is_file()),
        "this test runs pcs: install it (Debian: pcs)"
    );
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let block = readme
        .split("```")
        .find(|b| b.starts_with("sh\n") && b.contains(&format!("ocf:{PROVIDER}:iscsi")))
        .expect("the README's pcs example for the iscsi stack");
    let commands: Vec<Vec<String>> = block
        .trim_start_matches("sh\n")
        .replace("\\\n", " ")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(commands.len(), 4, "{block}");
    for c in &commands {
        assert_eq!(c[..3], ["pcs", "resource", "create"], "{c:?}");
        assert!(
            !c.iter().any(|w| w.contains(['\'', '"', '$', '`'])),
            "plain words only: {c:?}"
        );
    }

    let dir = support::tempdir("pcmk-pcs");
    let node = Node::new(
        "pcs",
        &dir.path().join("node"),
        &[
            ("iscsi", PathBuf::from(env!("CARGO_BIN_EXE_iscsi"))),
            (
                "LVM-activate",
                PathBuf::from(env!("CARGO_BIN_EXE_LVM-activate")),
            ),
            ("Filesystem", PathBuf::from(FILESYSTEM)),
            ("VirtualDomain", PathBuf::from(vd_binary())),
        ],
    );
    let file = dir.path().join("cib.xml");
    std::fs::write(&file, SEED_CIB).unwrap();
    let f = file.to_string_lossy().into_owned();
    let pcs = |args: &[String]| {
        let mut a = vec!["-f".to_string(), f.clone()];
        a.extend_from_slice(args);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        node.run("pcs", &a)
    };
    for c in &commands {
        let out = pcs(&c[1..]);
        assert!(out.status.success(), "{}: {}", c.join(" "), text(&out));
    }
    let cib = std::fs::read_to_string(&file).unwrap();
    let group = cib
        .split("<group ")
        .nth(1)
        .and_then(|g| g.split("</group>").next())
        .unwrap_or_else(|| panic!("no group in:\n{cib}"));
    assert!(group.starts_with("id=\"g_vm1\""), "{group}");
    let primitives = primitives(group);
    assert_eq!(
        primitives,
        [
            "vm1_disk ocf:heartbeat-rs:iscsi",
            "vm1_vg ocf:heartbeat-rs:LVM-activate",
            "vm1_fs ocf:heartbeat-rs:Filesystem",
            "vm1 ocf:heartbeat-rs:VirtualDomain",
        ],
        "{cib}"
    );
    // the depth-20 monitor, and the meta-data's timeouts copied by pcs
    assert!(
        group.contains("name=\"OCF_CHECK_LEVEL\" value=\"20\""),
        "{group}"
    );
    assert!(group.contains("name=\"migrate_to\""), "{group}");
    let out = node.run("crm_verify", &["--xml-file", &f]);
    assert!(out.status.success(), "crm_verify: {}", text(&out));

    // pcs checks the options against our meta-data
    let words = |w: &str| w.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let out = pcs(&words(&format!(
        "resource create bad1 ocf:{PROVIDER}:Filesystem device=/dev/sdx1 directory=/srv/x fstype=xfs bogus=1"
    )));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("'bogus'"), "{}", text(&out));
    let out = pcs(&words(&format!(
        "resource create bad2 ocf:{PROVIDER}:iscsi portal=192.0.2.10"
    )));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("'target'"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        cib,
        "pcs wrote a refused resource"
    );
}
