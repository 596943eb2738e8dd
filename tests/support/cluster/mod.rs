//! A real Pacemaker cluster for the tests: corosync + pacemakerd on one
//! or two nodes that the test starts itself, with our agents as the only
//! OCF provider (used by tests/pacemaker.rs).
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
//! Needs root, `corosync`, `pacemaker`, `pacemaker-cli-utils`, `iproute2`,
//! `pcs` and util-linux (`unshare`, `nsenter`, `mount`); for VirtualDomain
//! also what `.ci/install-libvirt.sh` installs.

pub mod cib;
pub mod guests;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ocf::procs;

use cib::seed_cib;

/// Our OCF provider, as installed by the packages.
pub const PROVIDER: &str = "heartbeat-rs";
pub const OCF_RESOURCE_D: &str = "/usr/lib/ocf/resource.d";

/// How long a cluster may take to come up (the lab: ~4 s for one node,
/// ~8 s for two).
pub const UP_LIMIT: Duration = Duration::from_secs(60);
/// Longest wait for the cluster to finish a transition.
pub const SETTLE: &str = "60s";

// ---------------------------------------------------------------------------
// Processes

/// The state letter of `pid` from /proc, `None` when it is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Alive and not a zombie (orphans are reaped by PID 1 only now and then).
pub fn alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|s| s != 'Z')
}

pub fn signal(pid: u32, sig: i32) {
    if let Ok(sig) = nix::sys::signal::Signal::try_from(sig) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
    }
}

pub fn ns_link(pid: &str, kind: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Wait for a child of ours to exit (reaping it); SIGKILL it after `limit`.
pub fn reap(child: &mut Child, limit: Duration) {
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
        procs::comm(child.id() as i32).unwrap_or_default()
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Cluster daemons running anywhere on the machine (any namespace).
pub fn cluster_daemons() -> Vec<String> {
    procs::pids()
        .into_iter()
        .filter(|&p| alive(p as u32))
        .filter_map(|p| {
            let c = procs::comm(p)?;
            (c == "corosync" || c == "pacemakerd").then(|| format!("{c} (pid {p})"))
        })
        .collect()
}

/// Poll `f` every 100 ms until it gives a value; panic after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            !crate::support::INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed),
            "interrupted while waiting for {what}"
        );
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    wait_for(what, limit, || f().then_some(()))
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn uid_gid(user: &str, group: &str) -> (u32, u32) {
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
pub fn hacluster_dir(p: &Path, mode: u32) {
    std::fs::create_dir_all(p).unwrap();
    let (u, g) = uid_gid("hacluster", "haclient");
    std::os::unix::fs::chown(p, Some(u), Some(g)).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn hacluster_file(p: &Path, content: &str, mode: u32) {
    std::fs::write(p, content).unwrap();
    let (u, g) = uid_gid("hacluster", "haclient");
    std::os::unix::fs::chown(p, Some(u), Some(g)).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Root, the tools, and no cluster running: otherwise a clear refusal.
pub fn preflight() {
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

// ---------------------------------------------------------------------------
// Nodes

/// One cluster node: namespaces held by a `sleep`, with a per-node tree
/// under `root` and (once started) its corosync and pacemakerd.
pub struct Node {
    pub name: String,
    pub root: PathBuf,
    holder: Child,
    /// The holder's mount namespace (`mnt:[...]`), once it has one.
    mnt_ns: Option<String>,
    corosync: Option<Child>,
    pacemakerd: Option<Child>,
}

impl Node {
    /// A node named `name` (its hostname and cluster node name) with our
    /// `agents` (OCF type, binary) as the only provider.
    pub fn new(name: &str, root: &Path, agents: &[(&str, PathBuf)]) -> Node {
        for d in ["etc-corosync", "var-lib-corosync", "logs"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::create_dir_all(root.join("var-lib-pacemaker")).unwrap();
        for d in ["cib", "pengine", "blackbox", "cores"] {
            hacluster_dir(&root.join("var-lib-pacemaker").join(d), 0o750);
        }
        hacluster_dir(&root.join("var-log-pacemaker"), 0o770);
        // unshare's own complaint (e.g. "cannot change root filesystem
        // propagation" where / is not a mount point) is the reason a node
        // never gets its namespaces: kept for the failure message.
        let holder_err = root.join("logs/unshare.stderr");
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
            .stderr(std::fs::File::create(&holder_err).unwrap())
            .pdeathsig(libc::SIGKILL)
            // out of the terminal's process group: a Ctrl-C reaches the
            // program, whose Drop takes the node down in order
            .process_group(0)
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
                if let Ok(Some(status)) = node.holder.try_wait() {
                    panic!(
                        "unshare for node {name} exited ({status}): {}",
                        std::fs::read_to_string(&holder_err)
                            .unwrap_or_default()
                            .trim()
                    );
                }
                let ns = ns_link(&pid, "mnt")?;
                (ns != *ours.as_ref()? && procs::comm(pid.parse().ok()?)? == "sleep").then_some(ns)
            },
        ));
        node.setup(agents);
        node
    }

    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// `path` as the node sees it, reached from the host.
    pub fn inside(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid())).join(path.trim_start_matches('/'))
    }

    pub fn setup(&self, agents: &[(&str, PathBuf)]) {
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
    pub fn write_config(&self, names: &[&str], addrs: &[String]) {
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
            &seed_cib(),
            0o600,
        );
        hacluster_file(&self.log_file(), "", 0o660);
    }

    /// The node's own /etc/hosts: every node name resolves to its corosync
    /// address, as in a real cluster (a libvirt migration finds the target
    /// by its node name).
    pub fn write_hosts(&self, names: &[&str], addrs: &[String]) {
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
    pub fn cmd(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--target={}", self.pid()))
            .args(["--net", "--mount", "--uts", "--ipc", "--", program])
            .args(args)
            .env_remove("CIB_file")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        self.cmd(program, args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run nsenter {program}: {e}"))
    }

    /// Run on the node; panic with the output unless it succeeds.
    pub fn sh(&self, program: &str, args: &[&str]) -> String {
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
    pub fn mounts(&self) -> Vec<(String, String)> {
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
    pub fn mount_id(&self, dir: &Path) -> Option<String> {
        let want = dir.to_string_lossy();
        self.mounts()
            .into_iter()
            .filter(|(_, m)| *m == want)
            .map(|(id, _)| id)
            .next_back()
    }

    pub fn log_file(&self) -> PathBuf {
        self.root.join("logs/pacemaker.log")
    }

    /// The node's pacemaker.log from byte `from` on.
    pub fn log_from(&self, from: usize) -> String {
        let bytes = std::fs::read(self.log_file()).unwrap_or_default();
        String::from_utf8_lossy(bytes.get(from..).unwrap_or_default()).into_owned()
    }

    pub fn log(&self) -> String {
        self.log_from(0)
    }

    /// A daemon inside the node, as a child of the test.
    pub fn spawn(&self, program: &str, args: &[&str], env: &[(String, String)]) -> Child {
        let out = std::fs::File::create(self.root.join(format!("logs/{program}.stderr"))).unwrap();
        let mut c = self.cmd(program, args);
        c.env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            // If the test process dies without running Drop, the daemons
            // stop (pacemakerd stops the resources first).
            .pdeathsig(libc::SIGTERM)
            // see Node::new: a Ctrl-C is for the program, not the daemons
            .process_group(0);
        c.spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} on {}: {e}", self.name))
    }
}

pub trait PdeathSig {
    fn pdeathsig(&mut self, sig: i32) -> &mut Self;
}

impl PdeathSig for Command {
    #[allow(unsafe_code)] // pre_exec: code run in the child between fork and exec
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
                let left: Vec<u32> = procs::pids()
                    .into_iter()
                    .map(|p| p as u32)
                    .filter(|&p| ours(p))
                    .collect();
                for &p in &left {
                    let comm = procs::comm(p as i32).unwrap_or_default();
                    eprintln!("node {}: killing leftover pid {p} ({comm})", self.name);
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
pub static ONE_CLUSTER: Mutex<()> = Mutex::new(());

/// corosync + pacemakerd on one or two [`Node`]s, all started here.
pub struct Cluster {
    pub nodes: Vec<Node>,
    dir: tempfile::TempDir,
    _one_at_a_time: MutexGuard<'static, ()>,
}

/// What pacemakerd on a node passes on to the agents it runs.
pub type NodeEnv<'a> = &'a dyn Fn(&str) -> Vec<(String, String)>;

impl Cluster {
    /// A cluster of `names` (one or two nodes) with our `agents` installed
    /// under our provider; `env` adds to each node's pacemakerd
    /// environment. Returns once every node is online and there is a DC.
    pub fn start(names: &[&str], agents: &[(&str, PathBuf)], env: NodeEnv) -> Cluster {
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
        let dir = crate::support::tempdir("pcmk");
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
    pub fn check_daemons(&self) {
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
    pub fn link(&self) -> Vec<String> {
        let (a, b) = (&self.nodes[0], &self.nodes[1]);
        crate::support::sh(
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

    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// A cluster tool on the first node; panics unless it succeeds.
    pub fn cli(&self, program: &str, args: &[&str]) -> String {
        self.nodes[0].sh(program, args)
    }

    /// Add `xml` to the resources section.
    pub fn create(&self, xml: &str) {
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
    pub fn pcs_create(&self, commands: &[Vec<String>]) {
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
    pub fn settle(&self) {
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
    pub fn cleanup(&self, rsc: &str) {
        self.settle();
        self.cli("crm_resource", &["--cleanup", "--resource", rsc]);
        self.settle();
    }

    /// The nodes `rsc` is active on (`--locate` says "NOT running" on stderr).
    pub fn locate(&self, rsc: &str) -> Vec<String> {
        let out = self.nodes[0].run("crm_resource", &["--resource", rsc, "--locate"]);
        let mut on: Vec<String> = text(&out)
            .lines()
            .filter_map(|l| l.split_once("is running on:"))
            .filter_map(|(_, n)| n.split_whitespace().next().map(str::to_string))
            .collect();
        on.sort();
        on
    }

    pub fn set_meta(&self, rsc: &str, name: &str, value: &str) {
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
    pub fn fail_count(&self, rsc: &str, node: &str, op: Option<(&str, &str)>) -> u64 {
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
    pub fn status(&self) -> String {
        text(&self.nodes[0].run("crm_mon", &["-1", "--include=failcounts,operations"]))
    }

    /// The result (`rc-code`) recorded in the CIB for operation `key`
    /// (`fs1_monitor_3000`) on `node`.
    pub fn op_rc(&self, key: &str, node: &str) -> Option<i32> {
        let status = self.cli("cibadmin", &["--query", "--scope", "status"]);
        cib::op_rc(&status, key, node)
    }

    /// How long each node's pacemaker.log is now (to read what comes next).
    pub fn log_marks(&self) -> Vec<usize> {
        let len = |n: &Node| std::fs::metadata(n.log_file()).map_or(0, |m| m.len() as usize);
        self.nodes.iter().map(len).collect()
    }

    /// What each node logged since `marks`, by node name.
    pub fn logs_since(&self, marks: &[usize]) -> Vec<(String, String)> {
        self.nodes
            .iter()
            .zip(marks)
            .map(|(n, &m)| (n.name.clone(), n.log_from(m)))
            .collect()
    }

    /// The state and the end of every node's log, when a test fails.
    pub fn report(&self) {
        // A start that failed before any node existed (Drop runs this while
        // unwinding: a panic here would abort and skip every clean-up).
        if self.nodes.is_empty() {
            return;
        }
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
