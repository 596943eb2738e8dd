//! Two real nodes on one shared disk, shared activation (issue 16, scenario
//! 4): one shared VG used by BOTH kernels at once through lvmlockd and the
//! dlm, a GFS2 filesystem mounted on both, and an exclusive LV that the
//! other node's kernel is refused.
//!
//! The lab is `support::two_nodes`: two TCG guests from the stock Debian
//! kernel, one raw image attached to both as their SAN LUN, a private link,
//! corosync + Pacemaker on both (`two_node`). One pair boots for every check
//! below, in this order:
//!
//! 1. the lock managers, as an admin configures them: `ocf:pacemaker:controld`
//!    (dlm_controld) then our `ocf:heartbeat-rs:lvmlockd` in one group,
//!    cloned; both run on both nodes (the cluster says so, and each kernel
//!    has its daemons);
//! 2. the storage, made on node-a: `vgcreate --shared` (lock type dlm), an LV
//!    formatted `mkfs.gfs2 -p lock_dlm -t <corosync cluster name>:shared -j 2`
//!    and a second, small LV; node-b reads the VG's lock type off the disk;
//! 3. the shared stack: LVM-activate (`vg_access_mode=lvmlockd
//!    activation_mode=shared`) + Filesystem (gfs2) as one cloned group, and
//!    LVM-activate `activation_mode=exclusive` for the small LV, preferring
//!    node-a. Both kernels are asked: the GFS2 LV is in both device-mapper
//!    tables and mounted on both, the exclusive LV only in node-a's; each
//!    kernel's dlm has the VG's and the filesystem's lockspaces with both
//!    nodes as members. A file written and fsynced on node-a is read back
//!    byte for byte on node-b, and one written on node-b on node-a;
//! 4. the exclusive LV, active on node-a, is refused on node-b: our
//!    LVM-activate started there with the resource's parameters exits 1
//!    (OCF_ERR_GENERIC) with one reason line saying the LV is locked by the
//!    other host; node-b's kernel still has no such device, a probe there
//!    says 7, node-a's still has it;
//! 5. everything is stopped through the cluster (the stacks, then lvmlockd
//!    and the dlm): no LV of the VG in either kernel, no GFS2 mount, no
//!    lvmlockd or dlm_controld, no dlm lockspace. On failure `Cluster`'s and
//!    `Lab`'s `Drop` stop pacemaker (which stops the resources) and the
//!    guests; the lab directory, disk image included, is removed.
//!
//! The configuration is built as an admin does it offline, `pcs -f` on a
//! copy of the live CIB, then pushed with `cibadmin --replace` (what `pcs
//! cluster cib-push` runs) — but pcs runs on the HOST, not in a guest: pcs
//! is Python, 40-70 s of CPU per call in a TCG guest, about 1.5 s here. It
//! runs in a private mount namespace whose /usr/lib/ocf/resource.d holds
//! Pacemaker's agents and ours as `heartbeat-rs` (the host has no such
//! provider), so pcs checks every option against our meta-data as it does
//! on a node. The commands are [`LOCKING`] and [`SHARED`], printed in the
//! README's "Two nodes on one shared disk" section
//! ([`readme_shows_scenario_4_pcs_commands`] keeps them the same).
//!
//! Fencing stays off here (`allow_stonith_disabled=true` on controld):
//! scenario 2 in tests/two_nodes.rs tests SBD fencing, and fence_sbd's
//! monitors would cost minutes of TCG CPU. A production cluster keeps
//! `stonith-enabled=true` and drops that option.
//!
//! It runs with the suite (`sudo ./tests/run.sh --test two_nodes_shared`):
//! 300 s on a quiet machine (boot 57 s); 816-877 s with other guest labs
//! on the same 2 cores (boot 118-173 s, cluster 80-123 s, lock managers
//! 96-134 s, the shared stack 168-195 s, the stop 96-133 s).
//!
//! Needs root, vng, QEMU, a guest kernel with dlm and gfs2, dlm-controld,
//! lvm2-lockd, gfs2-utils and pcs (`.ci/install-guest.sh`); no guest: SKIP,
//! unless `RA_REQUIRE_GUEST` is set.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::two_nodes::{Cluster, Lab, NODES, PROVIDER};

const ACTIVATE: &str = env!("CARGO_BIN_EXE_LVM-activate");
const FILESYSTEM: &str = env!("CARGO_BIN_EXE_Filesystem");
const LVMLOCKD: &str = env!("CARGO_BIN_EXE_lvmlockd");

/// The shared VG, its two LVs and the GFS2 mount point (a directory the
/// guests can create: /run is each guest's own).
const VG: &str = "ra2n_shared";
const GFS_LV: &str = "gfs";
const EXCL_LV: &str = "excl";
const MOUNT: &str = "/run/ra-two-nodes/gfs2";
/// The GFS2 filesystem's name in its lock table (`<cluster>:<fs>`): the
/// name of its dlm lockspace.
const FS_NAME: &str = "shared";

/// Both nodes' lvm.conf: lvm commands use lvmlockd; nothing activates by
/// itself (udev events).
const LVM_LOCKD: &str = "global {\n use_lvmlockd = 1\n event_activation = 0\n}\n";

/// The lock managers: dlm, then lvmlockd, as one group cloned on both
/// nodes (the group orders and colocates them).
const LOCKING: &[&str] = &[
    "pcs property set no-quorum-policy=freeze",
    "pcs resource create dlm ocf:pacemaker:controld allow_stonith_disabled=true \
     op start timeout=180s stop timeout=180s monitor interval=30s timeout=90s --group locking",
    "pcs resource create lvmlockd ocf:heartbeat-rs:lvmlockd \
     op start timeout=180s stop timeout=180s monitor interval=30s timeout=90s --group locking",
    "pcs resource clone locking interleave=true",
];

/// The shared GFS2 stack, cloned, and the exclusive LV (node-a preferred).
const SHARED: &[&str] = &[
    "pcs resource create shared-lv ocf:heartbeat-rs:LVM-activate vgname=ra2n_shared lvname=gfs \
     vg_access_mode=lvmlockd activation_mode=shared \
     op start timeout=180s stop timeout=180s monitor interval=30s timeout=90s --group shared-g",
    "pcs resource create shared-fs ocf:heartbeat-rs:Filesystem device=/dev/ra2n_shared/gfs \
     directory=/run/ra-two-nodes/gfs2 fstype=gfs2 options=noatime \
     op start timeout=180s stop timeout=180s monitor interval=20s timeout=90s --group shared-g",
    "pcs resource clone shared-g interleave=true",
    "pcs constraint order start locking-clone then shared-g-clone",
    "pcs constraint colocation add shared-g-clone with locking-clone",
    "pcs resource create excl-lv ocf:heartbeat-rs:LVM-activate vgname=ra2n_shared lvname=excl \
     vg_access_mode=lvmlockd activation_mode=exclusive \
     op start timeout=180s stop timeout=180s monitor interval=30s timeout=90s",
    "pcs constraint order start locking-clone then excl-lv",
    "pcs constraint colocation add excl-lv with locking-clone",
    "pcs constraint location excl-lv prefers node-a=50",
];

/// Inside a guest: the lab's command channel (see `support::two_nodes`).
#[test]
#[ignore = "the driver of a lab node: runs inside its guest kernel"]
fn guest_node_driver() {
    assert!(
        support::guest::in_guest(),
        "guest_node_driver runs inside a lab node (support::two_nodes)"
    );
    support::two_nodes::driver();
}

/// One README command as the argv of `pcs` (without `pcs`).
fn words(cmd: &str) -> Vec<String> {
    let mut w: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
    assert_eq!(w.first().map(String::as_str), Some("pcs"), "{cmd}");
    w.remove(0);
    w
}

/// The README's command blocks, with `\` continuations joined and runs of
/// blanks squeezed, one command a line.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let joined = readme.replace("\\\n", " ");
    joined
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn readme_shows_scenario_4_pcs_commands() {
    let readme = readme_commands();
    for cmd in LOCKING.iter().chain(SHARED) {
        let cmd = cmd.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            readme.contains(&cmd),
            "README.md does not show the command scenario 4 runs:\n{cmd}"
        );
    }
}

/// The corosync cluster name the lab configured (GFS2's lock table names it).
fn cluster_name(c: &Cluster) -> String {
    let conf = std::fs::read_to_string(c.lab.nodes[0].dir.join("etc-corosync/corosync.conf"))
        .expect("node-a's corosync.conf");
    conf.lines()
        .find_map(|l| l.trim().strip_prefix("cluster_name:"))
        .map(|v| v.trim().to_string())
        .expect("cluster_name in corosync.conf")
}

/// A private mount namespace on the host, held by a `sleep` (killed on
/// drop), whose /usr/lib/ocf/resource.d has the host's agents (Pacemaker's
/// among them) and ours as [`PROVIDER`]: where pcs runs, as on a node.
struct HostNs {
    holder: Child,
}

impl HostNs {
    fn new(c: &Cluster) -> HostNs {
        let rd = c.lab.path("host-resource.d");
        let ours = rd.join(PROVIDER);
        std::fs::create_dir_all(&ours).unwrap();
        for (ty, bin) in [
            ("LVM-activate", ACTIVATE),
            ("Filesystem", FILESYSTEM),
            ("lvmlockd", LVMLOCKD),
        ] {
            std::fs::copy(bin, ours.join(ty)).unwrap();
        }
        let holder = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sleep",
                "infinity",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run unshare (util-linux)");
        let ns = HostNs { holder };
        let me = std::fs::read_link("/proc/self/ns/mnt").unwrap();
        let t0 = Instant::now();
        while std::fs::read_link(format!("/proc/{}/ns/mnt", ns.holder.id())).ok()
            == Some(me.clone())
        {
            assert!(t0.elapsed() < Duration::from_secs(10), "unshare --mount");
            std::thread::sleep(Duration::from_millis(20));
        }
        // every provider the host has (Pacemaker's agents source
        // heartbeat's .ocf-shellfuncs), then the whole tree in place
        let real = Path::new(OCF_RESOURCE_D);
        for e in std::fs::read_dir(real).unwrap().flatten() {
            if e.path().is_dir() && e.file_name() != PROVIDER {
                let mine = rd.join(e.file_name());
                std::fs::create_dir_all(&mine).unwrap();
                ns.run(&["mount", "--bind"], &[&e.path(), &mine]);
            }
        }
        ns.run(&["mount", "--rbind"], &[&rd, real]);
        ns
    }

    /// Run `argv` + `paths` in the namespace; panic unless it succeeds.
    fn run(&self, argv: &[&str], paths: &[&Path]) -> String {
        let out = Command::new("nsenter")
            .arg("-t")
            .arg(self.holder.id().to_string())
            .args(["-m", "--"])
            .args(argv)
            .args(paths)
            .output()
            .expect("run nsenter (util-linux)");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "{argv:?} {paths:?}: {}: {said}",
            out.status
        );
        said
    }
}

impl Drop for HostNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

const OCF_RESOURCE_D: &str = "/usr/lib/ocf/resource.d";

/// `pcs -f` on the host ([`HostNs`]) on a copy of the live CIB, which then
/// replaces it (`cibadmin --replace` on node-a).
fn pcs_on_host(c: &mut Cluster, commands: &[&str]) {
    let pcs = ["/usr/sbin/pcs", "/usr/bin/pcs"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("this test builds its CIB with pcs: install it (Debian: pcs)");
    let ns = HostNs::new(c);
    let cib = c.lab.path("cib-pcs.xml");
    let live = c.cli(&["cibadmin", "--query"]);
    std::fs::write(&cib, live).unwrap();
    let f = cib.to_string_lossy().into_owned();
    for cmd in commands {
        eprintln!("$ {}", cmd.split_whitespace().collect::<Vec<_>>().join(" "));
        let argv: Vec<String> = [pcs.to_string(), "-f".into(), f.clone()]
            .into_iter()
            .chain(words(cmd))
            .collect();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let said = ns.run(&argv, &[]);
        if !said.trim().is_empty() {
            eprintln!("  {}", said.trim_end());
        }
    }
    drop(ns);
    c.cli(&["cibadmin", "--replace", "--xml-file", &f]);
}

/// Longest wait for a transition: on this machine, shared with other
/// guests, starting the lock managers on both TCG guests took 85-300 s.
const SETTLE: &str = "900s";

/// Wait until the cluster has no transition in flight (within [`SETTLE`]).
fn settle(c: &mut Cluster) {
    let via = c.via;
    let out = c.lab.nodes[via].run_env(
        &[],
        &["crm_resource", "--wait", &format!("--timeout={SETTLE}")],
        Duration::from_secs(930),
    );
    assert!(
        out.ok(),
        "the cluster did not settle within {SETTLE}: {}\n{}",
        out.text(),
        c.status()
    );
}

/// Set a resource's (or clone's) target-role.
fn target_role(c: &mut Cluster, rsc: &str, role: &str) {
    c.cli(&[
        "crm_resource",
        "--resource",
        rsc,
        "--meta",
        "--set-parameter",
        "target-role",
        "--parameter-value",
        role,
    ]);
}

/// The device-mapper devices of [`VG`] in `node`'s kernel.
fn vg_devices(c: &mut Cluster, node: &str) -> Vec<String> {
    let dm = c
        .node(node)
        .sh(&["dmsetup", "info", "-c", "--noheadings", "-o", "name"]);
    let prefix = format!("{VG}-");
    let mut found: Vec<String> = dm
        .lines()
        .map(str::trim)
        .filter(|n| n.starts_with(&prefix))
        .map(str::to_string)
        .collect();
    found.sort();
    found
}

/// The members (node ids) of dlm lockspace `ls` in `node`'s kernel, as
/// dlm_controld configured them (configfs); empty when it has no such
/// lockspace.
fn dlm_members(c: &mut Cluster, node: &str, ls: &str) -> String {
    let dir = format!("/sys/kernel/config/dlm/cluster/spaces/{ls}/nodes");
    let out = c.node(node).run(&["ls", &dir]);
    let mut ids: Vec<u32> = out
        .stdout
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    ids.sort();
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}

/// Whether a process called `comm` runs in `node`'s kernel.
fn runs(c: &mut Cluster, node: &str, comm: &str) -> bool {
    c.node(node).run(&["pgrep", "-x", comm]).ok()
}

/// Both kernels, after `event`: the GFS2 LV active and mounted (gfs2) on
/// both, the exclusive LV active on node-a only; the cluster agrees; each
/// kernel's dlm has the VG's and the filesystem's lockspaces with both
/// nodes as members.
fn assert_shared_and_exclusive(c: &mut Cluster, event: &str) {
    let both: Vec<String> = NODES.iter().map(|n| n.to_string()).collect();
    for rsc in ["locking-clone", "shared-g-clone"] {
        assert_eq!(c.locate(rsc), both, "after {event}: {rsc}\n{}", c.status());
    }
    assert_eq!(
        c.locate("excl-lv"),
        ["node-a"],
        "after {event}: excl-lv\n{}",
        c.status()
    );
    let gfs = format!("{VG}-{GFS_LV}");
    let excl = format!("{VG}-{EXCL_LV}");
    for name in NODES {
        let mut want = vec![gfs.clone()];
        if name == "node-a" {
            want.push(excl.clone());
        }
        want.sort();
        assert_eq!(
            vg_devices(c, name),
            want,
            "after {event}: device-mapper table of {name}"
        );
        let m = c
            .node(name)
            .run(&["findmnt", "-n", "-o", "SOURCE,FSTYPE", MOUNT]);
        assert!(
            m.ok() && m.stdout.split_whitespace().nth(1) == Some("gfs2"),
            "after {event}: {MOUNT} on {name}: {}",
            m.text()
        );
        for ls in [format!("lvm_{VG}"), FS_NAME.to_string()] {
            assert_eq!(
                dlm_members(c, name, &ls),
                "1 2",
                "after {event}: the members of dlm lockspace {ls} in {name}'s kernel"
            );
        }
    }
    eprintln!(
        "after {event}: {gfs} active and GFS2 mounted on both kernels, {excl} on node-a only; \
         the dlm lockspaces lvm_{VG} and {FS_NAME} have both nodes"
    );
}

/// Write a 1 MiB file (made on the host) into the GFS2 filesystem on
/// `writer`, fsync it there, and read it back on `reader`.
fn write_then_read(c: &mut Cluster, writer: &str, reader: &str) {
    let name = format!("written-on-{writer}");
    let data: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8 ^ writer.as_bytes()[5])
        .collect();
    let src = c.lab.path(&name);
    std::fs::write(&src, &data).unwrap();
    let src = src.to_string_lossy().into_owned();
    let dst = format!("{MOUNT}/{name}");
    c.node(writer).sh(&["cp", &src, &dst]);
    // coreutils `sync FILE`: fsync(2) on it
    c.node(writer).sh(&["sync", &dst]);
    let out = c.node(reader).run(&["cmp", &src, &dst]);
    assert!(
        out.ok(),
        "{reader} does not read what {writer} wrote on GFS2: {}",
        out.text()
    );
    eprintln!("GFS2: {reader} read the 1 MiB {writer} wrote and fsynced");
}

/// Scenario 4 (see the module documentation).
#[test]
fn shared_gfs2_on_lvmlockd_across_two_kernels() {
    let t0 = Instant::now();
    let Some(lab) = Lab::boot("two-nodes shared activation") else {
        return;
    };
    let agents = [
        ("LVM-activate", ACTIVATE),
        ("Filesystem", FILESYSTEM),
        ("lvmlockd", LVMLOCKD),
    ];
    let mut c = Cluster::start(lab, &agents, &|_| Vec::new(), LVM_LOCKD);
    for name in NODES {
        let n = c.node(name);
        n.sh(&["modprobe", "dlm"]);
        n.sh(&["modprobe", "gfs2"]);
        n.sh(&["mkdir", "-p", MOUNT, "/var/log/dlm_controld"]);
    }
    let cluster = cluster_name(&c);

    // 1. dlm_controld and lvmlockd, cloned.
    let t = Instant::now();
    pcs_on_host(&mut c, LOCKING);
    settle(&mut c);
    eprintln!("lock managers up after {:.1?}", t.elapsed());
    let both: Vec<String> = NODES.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        c.locate("locking-clone"),
        both,
        "locking-clone\n{}",
        c.status()
    );
    for name in NODES {
        for comm in ["dlm_controld", "lvmlockd"] {
            assert!(runs(&mut c, name, comm), "no {comm} in {name}'s kernel");
        }
    }

    // 2. The shared VG and its LVs, made on node-a.
    let t = Instant::now();
    let a = c.node("node-a");
    let pv = a.shared_partition(2);
    a.sh(&["vgcreate", "-q", "-y", "--shared", VG, &pv]);
    a.sh(&["lvcreate", "-q", "-y", "-n", GFS_LV, "-L", "256M", VG]);
    let table = format!("{cluster}:{FS_NAME}");
    let dev = format!("/dev/{VG}/{GFS_LV}");
    a.sh(&[
        "mkfs.gfs2",
        "-O",
        "-p",
        "lock_dlm",
        "-t",
        &table,
        "-j",
        "2",
        "-J",
        "16",
        &dev,
    ]);
    a.sh(&["lvcreate", "-q", "-y", "-n", EXCL_LV, "-L", "16M", VG]);
    a.sh(&["lvchange", "-q", "-an", VG]);
    eprintln!("shared VG made after {:.1?}", t.elapsed());
    for name in NODES {
        let lt = c
            .node(name)
            .run(&["vgs", "--noheadings", "-o", "vg_lock_type", "--", VG]);
        assert_eq!(
            lt.stdout.trim(),
            "dlm",
            "{name} reads {VG}'s lock type: {}",
            lt.text()
        );
        assert_eq!(vg_devices(&mut c, name), Vec::<String>::new(), "{name}");
    }

    // 3. The shared stack and the exclusive LV.
    let t = Instant::now();
    pcs_on_host(&mut c, SHARED);
    settle(&mut c);
    eprintln!("shared stack up after {:.1?}", t.elapsed());
    assert_shared_and_exclusive(&mut c, "creating the shared stack with pcs");
    write_then_read(&mut c, "node-a", "node-b");
    write_then_read(&mut c, "node-b", "node-a");

    // 4. The exclusive LV, active on node-a, refused on node-b: our agent
    //    with excl-lv's parameters, as the cluster would run it there.
    let agent = format!("/usr/lib/ocf/resource.d/{PROVIDER}/LVM-activate");
    let env = [
        ("OCF_ROOT", "/usr/lib/ocf"),
        ("OCF_RESOURCE_INSTANCE", "excl-lv"),
        ("OCF_RESOURCE_TYPE", "LVM-activate"),
        ("OCF_RESKEY_vgname", VG),
        ("OCF_RESKEY_lvname", EXCL_LV),
        ("OCF_RESKEY_vg_access_mode", "lvmlockd"),
        ("OCF_RESKEY_activation_mode", "exclusive"),
        ("OCF_RESKEY_CRM_meta_timeout", "180000"),
        ("HA_LOGFACILITY", "none"),
        ("HA_RSCTMP", "/run/resource-agents"),
    ];
    let t = Instant::now();
    let refused = c
        .node("node-b")
        .run_env(&env, &[&agent, "start"], Duration::from_secs(200));
    eprintln!(
        "exclusive start on node-b: {} after {:.1?}\n{}",
        refused.code,
        t.elapsed(),
        refused.stderr.trim_end()
    );
    assert_eq!(
        refused.code,
        support::rc::ERR_GENERIC,
        "start of {VG}/{EXCL_LV} exclusively on node-b: {}",
        refused.text()
    );
    let reasons = support::exit_reasons(&refused.stderr);
    assert_eq!(reasons.len(), 1, "one exit reason: {}", refused.stderr);
    for needle in [&format!("{VG}/{EXCL_LV}")[..], "locked by other host"] {
        assert!(
            reasons[0].contains(needle),
            "the reason does not say '{needle}': {}",
            reasons[0]
        );
    }
    let probe = c.node("node-b").run_env(
        &[env.as_slice(), &[("OCF_RESKEY_CRM_meta_interval", "0")]].concat(),
        &[&agent, "monitor"],
        Duration::from_secs(120),
    );
    assert_eq!(
        probe.code,
        support::rc::NOT_RUNNING,
        "probe on node-b: {}",
        probe.text()
    );
    assert_shared_and_exclusive(&mut c, "the exclusive start refused on node-b");

    // 5. Stop everything through the cluster; nothing is left in either
    //    kernel.
    let t = Instant::now();
    target_role(&mut c, "shared-g-clone", "Stopped");
    target_role(&mut c, "excl-lv", "Stopped");
    settle(&mut c);
    for name in NODES {
        assert_eq!(
            vg_devices(&mut c, name),
            Vec::<String>::new(),
            "{name} after stopping the stacks"
        );
        let m = c.node(name).run(&["findmnt", "-n", MOUNT]);
        assert!(!m.ok(), "{MOUNT} still mounted on {name}: {}", m.text());
    }
    target_role(&mut c, "locking-clone", "Stopped");
    settle(&mut c);
    eprintln!("everything stopped after {:.1?}", t.elapsed());
    for name in NODES {
        for comm in ["lvmlockd", "dlm_controld"] {
            assert!(
                !runs(&mut c, name, comm),
                "{comm} still runs on {name} after its clone was stopped"
            );
        }
        // the kernel's own list: one directory per lockspace
        let ls = c.node(name).sh(&["ls", "/sys/kernel/dlm"]);
        assert_eq!(ls.trim(), "", "{name}'s kernel still has dlm lockspaces");
    }
    eprintln!("scenario 4 took {:.0?} in all", t0.elapsed());
}
