//! Two real nodes on one shared disk (issue 16): two guest kernels as two
//! cluster nodes, one raw image attached to both as their SAN LUN, a
//! private link between them (`support::two_nodes`, the lab).
//!
//! - [`lab_two_kernels_share_one_disk_and_one_link`]: the lab itself. Each
//!   node has its own hostname and watchdog; a block written with O_DIRECT
//!   on one kernel is read back on the other, both ways; a TCP exchange
//!   crosses the private link.
//!
//! - [`failover_then_node_killed_then_node_cut_off`]: scenarios 1, 2 and 3
//!   on ONE boot of the pair (each scenario leaves the state the next one
//!   starts from; a boot and a cluster start cost minutes under TCG).
//!   corosync + pacemaker on both nodes (two_node), our agents as
//!   `ocf:heartbeat-rs:*`, SBD on the shared disk's first partition (`sbd
//!   create`, `sbd watch` with the watchdog in each node), `fence_sbd` as
//!   the fencing device, `stonith-enabled=true`.
//!   The pcs commands run on the host against a dump of the live CIB
//!   (`Cluster::pcs`), as an admin's `pcs -f`/`cib-push`.
//!
//!   1. Exclusive failover (HA-LVM): a group LVM-activate + Filesystem
//!      (xfs) + Xen (over the `xl` TEST DOUBLE, tests/doubles/xl.rs: Xen
//!      cannot run here, and a nested guest under TCG does not boot in
//!      reasonable time, see the README) moved A→B→A with `crm_resource
//!      --move` (each move then `--clear`ed), first with `tagging`, then,
//!      on a second VG of the same disk, with `system_id`. After every
//!      event both kernels are asked (device-mapper tables, mounts, the
//!      VG's system ID or tags, the double's domains): the LV is active on
//!      exactly the node the cluster says, and the files written before
//!      each move are intact after it.
//!   2. A node dies: a file written and fsynced on node-a, then the host
//!      SIGKILLs node-a's QEMU. node-b must fence node-a through SBD (the
//!      fencing history, the reset message in node-a's slot, node-b's log
//!      in that order) before it takes the group over; the file is intact
//!      on node-b. node-a is then powered on again on the same disk: its
//!      kernel activates nothing of the VG, whose system ID is node-b's,
//!      and refuses an admin's `vgchange -ay`; it rejoins (its SBD slot
//!      cleared), the group stays on node-b until the cluster moves it
//!      back to node-a.
//!   3. A node is cut off: node-a holds the group and its writer appends
//!      fsynced records (sequence, node-a's clock) to a file on it; node-a's
//!      cluster link goes down inside node-a. node-b fences it through SBD
//!      (fencing node-b waits longer, so node-b wins the race), node-a's
//!      SBD resets it (its QEMU exits), node-b takes over. The order, both
//!      nodes' clocks converted to the host's: node-a's last write, then
//!      node-b's fencing done, then the group started on node-b; node-a
//!      was gone before that start; every write node-a acknowledged is on
//!      the disk, in sequence. Then, the group stopped, `xfs_repair -n`
//!      finds the filesystem clean after both crashes.
//!
//! Every test boots its own pair (labs run one after the other) and stops
//! it, also when it fails; the harness log (`--nocapture`) stamps each
//! step with the time since the boot and names every guest command slower
//! than 10 s. Both run with the suite (`sudo ./tests/run.sh --test
//! two_nodes`). No `vng`, QEMU or guest kernel: SKIP, unless
//! `RA_REQUIRE_GUEST` is set. Needs root, sbd and fence-agents
//! (`.ci/install-guest.sh`), and pcs on the host.

mod doubles;
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::two_nodes::{mark, Cluster, Lab, ADDRS, NODES, PROVIDER};

const ACTIVATE: &str = env!("CARGO_BIN_EXE_LVM-activate");
const FILESYSTEM: &str = env!("CARGO_BIN_EXE_Filesystem");
const XEN: &str = env!("CARGO_BIN_EXE_Xen");

/// The TCP port of the link probe (inside the private link only).
const PROBE_PORT: u16 = 5505;

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

#[test]
fn lab_two_kernels_share_one_disk_and_one_link() {
    let Some(mut lab) = Lab::boot("two-nodes lab") else {
        return;
    };
    // Two kernels, each with its own name and watchdogs.
    let mut boots = Vec::new();
    for (i, name) in NODES.iter().enumerate() {
        let n = lab.node(name);
        assert_eq!(n.sh(&["uname", "-n"]).trim(), *name);
        assert_eq!(n.addr, ADDRS[i]);
        boots.push(n.sh(&["cat", "/proc/sys/kernel/random/boot_id"]));
        n.sh(&["modprobe", "softdog"]);
        let mut ids = Vec::new();
        for w in n.sh(&["ls", "/sys/class/watchdog"]).split_whitespace() {
            ids.push(
                n.sh(&["cat", &format!("/sys/class/watchdog/{w}/identity")])
                    .trim()
                    .to_string(),
            );
        }
        eprintln!("{name}: watchdogs {ids:?}");
        for want in ["i6300ESB timer", "Software Watchdog"] {
            assert!(
                ids.iter().any(|i| i == want),
                "{name}: no {want} in {ids:?}"
            );
        }
    }
    assert_ne!(boots[0], boots[1], "one kernel, not two");

    // The link: node-a serves a token on its link-local address, node-b
    // reads it over the socket netdev.
    let nics = lab.link_up();
    eprintln!("private link: {nics:?}");
    let token = format!("hello-from-node-a-{}", std::process::id());
    lab.node("node-a").tcp_serve(ADDRS[0], PROBE_PORT, &token);
    let got = lab
        .node("node-b")
        .tcp_fetch(ADDRS[0], PROBE_PORT, Duration::from_secs(90));
    assert!(got.ok(), "node-b cannot reach node-a: {}", got.text());
    assert_eq!(got.stdout, token);
    eprintln!("link: node-b read node-a's token {}", got.stderr);

    // The disk: a block written (O_DIRECT, fsync) by one kernel is read
    // by the other, both ways, on the SBD partition (unused here).
    for (writer, reader, block) in [("node-a", "node-b", "0"), ("node-b", "node-a", "1")] {
        let data: Vec<u8> = (0..4096u32)
            .map(|i| (i as u8) ^ (block.as_bytes()[0]) ^ (std::process::id() as u8))
            .collect();
        let src = lab.path(&format!("{writer}/block-{block}.written"));
        let dst = lab.path(&format!("{reader}/block-{block}.read"));
        std::fs::write(&src, &data).unwrap();
        let part = lab.node(writer).shared_partition(1);
        lab.node(writer).sh(&[
            "dd",
            &format!("if={}", src.display()),
            &format!("of={part}"),
            "bs=4096",
            "count=1",
            &format!("seek={block}"),
            "oflag=direct",
            "conv=fsync",
        ]);
        let part = lab.node(reader).shared_partition(1);
        lab.node(reader).sh(&[
            "dd",
            &format!("if={part}"),
            &format!("of={}", dst.display()),
            "bs=4096",
            "count=1",
            &format!("skip={block}"),
            "iflag=direct",
        ]);
        assert!(
            std::fs::read(&dst).unwrap() == data,
            "{reader} did not read what {writer} wrote on the shared disk"
        );
        eprintln!("disk: {reader} read the block {writer} wrote");
    }
}

// ---------------------------------------------------------------------------
// Scenario 1: exclusive failover (HA-LVM)

/// Both nodes' lvm.conf while the VGs are made: no autoactivation by udev
/// events (a cluster node activates nothing by itself).
const LVM_NEUTRAL: &str = "global {\n event_activation = 0\n}\n";

/// lvm.conf for `vg_access_mode=system_id`: the node's name as its system ID.
fn lvm_system_id(node: &str) -> String {
    format!(
        "global {{\n event_activation = 0\n system_id_source = \"lvmlocal\"\n}}\n\
         local {{\n system_id = \"{node}\"\n}}\n"
    )
}

/// lvm.conf for `vg_access_mode=tagging`: nothing activates without the
/// cluster's tag.
const LVM_TAGGING: &str =
    "global {\n event_activation = 0\n}\nactivation {\n volume_list = [ ]\n}\n";

/// The `xl` double's state: one "host" directory per node, in the lab.
fn xl_dir(c: &Cluster) -> PathBuf {
    c.lab.path("xl")
}

/// One exclusive group and what it manages.
struct Group {
    id: String,
    vg: String,
    mode: &'static str,
    domain: String,
    dir: String,
}

impl Group {
    fn new(tag: &str, mode: &'static str) -> Group {
        Group {
            id: format!("g-{tag}"),
            vg: format!("ra2n_{tag}"),
            mode,
            domain: format!("vm-{tag}"),
            dir: format!("/run/ra-two-nodes/{tag}"),
        }
    }

    fn members(&self) -> [String; 3] {
        ["vg", "fs", "vm"].map(|m| format!("{}-{m}", self.id))
    }

    /// The device-mapper name of its LV.
    fn dm_name(&self) -> String {
        format!("{}-data", self.vg)
    }
}

/// The double's domain file of `domain` on `node`.
fn domain_file(c: &Cluster, node: &str, domain: &str) -> PathBuf {
    let hex: String = domain.bytes().map(|b| format!("{b:02x}")).collect();
    xl_dir(c).join("hosts").join(node).join("domains").join(hex)
}

/// Ask both kernels where the group's LV, filesystem and guest are, and
/// require them on `holder` only (`None`: nowhere); the cluster must say
/// the same.
fn assert_held_by(c: &mut Cluster, g: &Group, holder: Option<&str>, event: &str) {
    let want: Vec<String> = holder.map(|h| vec![h.to_string()]).unwrap_or_default();
    let resources = c.resources();
    for m in g.members() {
        let on = resources
            .iter()
            .find(|(id, _)| *id == m)
            .map(|(_, on)| on.clone())
            .unwrap_or_else(|| panic!("after {event}: no {m} in crm_mon: {resources:?}"));
        assert_eq!(on, want, "after {event}: {m}\n{}", c.status());
    }
    // What guards the VG on the shared disk, as both kernels read it.
    let owner_field = if g.mode == "system_id" {
        "vg_systemid"
    } else {
        "vg_tags"
    };
    for name in NODES {
        let here = holder == Some(name);
        let n = c.node(name);
        if !n.alive() {
            continue; // a node killed by the test: no kernel to ask
        }
        let dm = n.dm_names();
        let active = dm.contains(&g.dm_name());
        assert_eq!(
            active,
            here,
            "after {event}: {} is {}active in {name}'s kernel (dm: {dm:?})",
            g.dm_name(),
            if active { "" } else { "not " }
        );
        let mounts = n.read("/proc/mounts");
        let mount = mounts
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(g.dir.as_str()));
        assert_eq!(
            mount.is_some(),
            here,
            "after {event}: {} {}mounted on {name}: {mount:?}",
            g.dir,
            if mount.is_some() { "" } else { "not " },
        );
        if let Some(m) = mount {
            assert_eq!(m.split_whitespace().nth(2), Some("xfs"), "{m}");
        }
        // one LVM command: the LV's state and the VG's owner
        let lvs = n.sh(&[
            "lvs",
            "--foreign",
            "--noheadings",
            "--separator",
            "|",
            "-o",
            &format!("lv_attr,{owner_field}"),
            &format!("{}/data", g.vg),
        ]);
        let (attr, got) = lvs.trim().split_once('|').unwrap_or((lvs.trim(), ""));
        assert_eq!(
            attr.chars().nth(4) == Some('a'),
            here,
            "after {event}: {name}: lv_attr {attr}"
        );
        let want = match (g.mode, holder) {
            ("system_id", Some(h)) => h.to_string(),
            (_, Some(_)) => "pacemaker".to_string(),
            ("tagging", None) => String::new(),
            // stopped: the system ID stays with the last holder
            (_, None) => got.to_string(),
        };
        assert_eq!(
            got, want,
            "after {event}: {owner_field} of {} read on {name}",
            g.vg
        );
        assert_eq!(
            domain_file(c, name, &g.domain).is_file(),
            here,
            "after {event}: guest {} on {name}?",
            g.domain
        );
    }
    mark(&format!(
        "after {event}: {} held by {} only (cluster, dm, mount, guest, {owner_field}: both kernels agree)",
        g.id,
        holder.unwrap_or("no node")
    ));
}
/// Write `name` (1 MiB from the host) into the group's filesystem on
/// `node` and flush it to the shared disk.
fn write_payload(c: &mut Cluster, g: &Group, node: &str, name: &str) {
    let data: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 ^ name.len() as u8)
        .collect();
    let src = c.lab.path(name);
    std::fs::write(&src, data).unwrap();
    let dst = format!("{}/{name}", g.dir);
    let n = c.node(node);
    n.sh(&["cp", &src.to_string_lossy(), &dst]);
    n.sh(&["sync", &dst]);
}

/// The payloads are intact in the group's filesystem on `node`.
fn assert_payloads(c: &mut Cluster, g: &Group, node: &str, names: &[&str], event: &str) {
    for name in names {
        let src = c.lab.path(name);
        let out = c
            .node(node)
            .run(&["cmp", &src.to_string_lossy(), &format!("{}/{name}", g.dir)]);
        assert!(out.ok(), "after {event}: {name} on {node}: {}", out.text());
    }
}

/// Move the group with `crm_resource --move`, wait, check, `--clear`,
/// wait, check it stayed.
fn move_group(c: &mut Cluster, g: &Group, to: &str, payloads: &[&str]) {
    let event = format!("crm_resource --move {} --node {to}", g.id);
    let t0 = Instant::now();
    c.cli(&["crm_resource", "--resource", &g.id, "--move", "--node", to]);
    c.settle();
    mark(&format!("{event}: settled after {:.1?}", t0.elapsed()));
    assert_held_by(c, g, Some(to), &event);
    assert_payloads(c, g, to, payloads, &event);
    c.cli(&["crm_resource", "--resource", &g.id, "--clear"]);
    c.settle();
    assert_held_by(c, g, Some(to), &format!("--clear after {event}"));
}

/// The pcs commands that create `g` (preferring node-a), as an admin
/// types them (README, "Two nodes on one shared disk").
fn group_commands(c: &mut Cluster, g: &Group) -> Vec<Vec<String>> {
    let cfg = xl_dir(c).join(format!("{}.cfg", g.domain));
    std::fs::write(
        &cfg,
        format!("name = \"{}\"\nmemory = 256\nvcpus = 1\n", g.domain),
    )
    .unwrap();
    let [vg, fs, vm] = g.members();
    let ops = |start: &str| {
        [
            "op",
            "start",
            start,
            "stop",
            "timeout=120s",
            "monitor",
            "interval=10s",
            "timeout=60s",
        ]
        .map(str::to_string)
    };
    let mut cmds = Vec::new();
    let mut create = |id: &str, ty: &str, params: Vec<String>| {
        let mut v: Vec<String> = ["resource", "create", id, &format!("ocf:{PROVIDER}:{ty}")]
            .map(str::to_string)
            .to_vec();
        v.extend(params);
        v.extend(ops("timeout=120s"));
        v.extend(["--group".to_string(), g.id.clone()]);
        cmds.push(v);
    };
    create(
        &vg,
        "LVM-activate",
        vec![
            format!("vgname={}", g.vg),
            "lvname=data".into(),
            format!("vg_access_mode={}", g.mode),
        ],
    );
    create(
        &fs,
        "Filesystem",
        vec![
            format!("device=/dev/{}/data", g.vg),
            format!("directory={}", g.dir),
            "fstype=xfs".into(),
        ],
    );
    create(&vm, "Xen", vec![format!("xmfile={}", cfg.display())]);
    cmds.push(
        ["constraint", "location", &g.id, "prefers", "node-a=50"]
            .map(str::to_string)
            .to_vec(),
    );
    cmds
}

/// Both nodes' lvm.conf for `g`'s access mode, its mount point.
fn prepare_nodes_for(c: &mut Cluster, g: &Group) {
    for name in NODES {
        let conf = match g.mode {
            "system_id" => lvm_system_id(name),
            _ => LVM_TAGGING.to_string(),
        };
        std::fs::write(c.node(name).dir.join("etc-lvm/lvm.conf"), conf).unwrap();
        c.node(name).sh(&["mkdir", "-p", &g.dir]);
    }
}

/// Create `g` with pcs (plus `before`: e.g. the fencing device, pushed in
/// the same CIB replacement) and wait for it on node-a.
fn create_group(c: &mut Cluster, g: &Group, before: Vec<Vec<String>>) {
    prepare_nodes_for(c, g);
    let mut cmds = before;
    cmds.extend(group_commands(c, g));
    c.pcs(&cmds);
    let t0 = Instant::now();
    c.settle();
    mark(&format!("{}: started after {:.1?}", g.id, t0.elapsed()));
    assert_held_by(c, g, Some("node-a"), &format!("creating {} with pcs", g.id));
}

/// Scenario 1 for one group (created): A→B→A, with files written on
/// each node checked after each move.
fn exclusive_failover(c: &mut Cluster, g: &Group) {
    write_payload(c, g, "node-a", &format!("{}-written-on-a", g.id));
    let first = format!("{}-written-on-a", g.id);
    move_group(c, g, "node-b", &[&first]);
    let second = format!("{}-written-on-b", g.id);
    write_payload(c, g, "node-b", &second);
    move_group(c, g, "node-a", &[&first, &second]);
}

/// Stop `g` with target-role=Stopped and check no node holds it.
fn stop_group(c: &mut Cluster, g: &Group) {
    c.cli(&[
        "crm_resource",
        "--resource",
        &g.id,
        "--meta",
        "--set-parameter",
        "target-role",
        "--parameter-value",
        "Stopped",
    ]);
    c.settle();
    assert_held_by(c, g, None, &format!("target-role=Stopped on {}", g.id));
}

/// The cluster of scenarios 1 and 2: our three agents, the xl double.
fn cluster_with_xl_double(lab: Lab) -> Cluster {
    let xl = lab.path("xl");
    std::fs::create_dir_all(xl.join("bin")).unwrap();
    std::os::unix::fs::symlink(doubles::xl(), xl.join("bin/xl")).unwrap();
    for n in NODES {
        std::fs::create_dir_all(xl.join("hosts").join(n)).unwrap();
    }
    let env = |node: &str| {
        vec![
            (
                "PATH".to_string(),
                format!("{}:{}", xl.join("bin").display(), support::two_nodes::PATH),
            ),
            (
                "XL_DOUBLE_STATE".to_string(),
                xl.join("hosts").join(node).to_string_lossy().into_owned(),
            ),
        ]
    };
    let agents = [
        ("LVM-activate", ACTIVATE),
        ("Filesystem", FILESYSTEM),
        ("Xen", XEN),
    ];
    Cluster::start(lab, &agents, &env, LVM_NEUTRAL)
}

/// Make `g`'s VG on partition `part` of the shared disk, from node-a, as
/// an admin does: a tagging VG with no system ID, a system_id VG under the
/// nodes' system_id lvm.conf (it gets node-a's); an xfs LV in it.
fn make_vg(c: &mut Cluster, g: &Group, part: usize) {
    if g.mode == "system_id" {
        for name in NODES {
            let conf = c.node(name).dir.join("etc-lvm/lvm.conf");
            std::fs::write(conf, lvm_system_id(name)).unwrap();
        }
    }
    let a = c.node("node-a");
    let pv = a.shared_partition(part);
    a.sh(&["pvcreate", "-q", &pv]);
    a.sh(&["vgcreate", "-q", &g.vg, &pv]);
    a.sh(&["lvcreate", "-q", "-y", "-n", "data", "-L", "320M", &g.vg]);
    a.sh(&["mkfs.xfs", "-q", &format!("/dev/{}/data", g.vg)]);
    a.sh(&["vgchange", "-q", "-an", &g.vg]);
}

// ---------------------------------------------------------------------------
// Fencing: SBD on the shared disk

/// SBD's timeouts on the disk (s): the watchdog, and msgwait (how long a
/// fencer waits after writing the reset message: twice the watchdog).
const SBD_WATCHDOG_S: &str = "10";
const SBD_MSGWAIT_S: &str = "20";

/// Fencing a node named here waits this long first: when the link is cut
/// both partitions want to fence the other; node-b (the survivor in
/// scenario 3) wins by node-a's fencing of it starting this much later
/// (fence_sbd alone takes 40-70 s in a loaded TCG guest).
const DELAY_FENCING_NODE_B: &str = "150s";

/// Start `sbd ... watch` on node `name` (its watchdog, the shared slot).
fn sbd_watch(c: &mut Cluster, name: &str, dev: &str) {
    let n = c.node(name);
    let log = n.dir.join("logs/sbd.stderr");
    n.spawn(
        &[("SBD_SYNC_RESOURCE_STARTUP", "no")],
        &["sbd", "-d", dev, "-W", "-w", "/dev/watchdog", "-R", "watch"],
        &log,
    );
}

/// The node's slot in `sbd list` (e.g. "clear", "reset"), read on `on`.
fn sbd_slot(c: &mut Cluster, on: &str, dev: &str, node: &str) -> Option<String> {
    let list = c.node(on).sh(&["sbd", "-d", dev, "list"]);
    list.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&node)).then(|| f.get(2).copied().unwrap_or("").to_string())
    })
}

/// SBD on the first partition, its daemon on both nodes; returns the
/// device and the pcs commands of the fencing device (fence_sbd) and
/// `stonith-enabled=true`.
fn sbd_setup(c: &mut Cluster) -> (String, Vec<Vec<String>>) {
    let dev = c.node("node-a").shared_partition(1);
    assert_eq!(c.node("node-b").shared_partition(1), dev);
    c.node("node-a").sh(&[
        "sbd",
        "-d",
        &dev,
        "-1",
        SBD_WATCHDOG_S,
        "-4",
        SBD_MSGWAIT_S,
        "create",
    ]);
    for name in NODES {
        sbd_watch(c, name, &dev);
    }
    c.wait_until("both nodes' SBD slots", Duration::from_secs(120), |c| {
        NODES
            .iter()
            .all(|n| sbd_slot(c, "node-a", &dev, n).as_deref() == Some("clear"))
    });
    mark("sbd: both nodes watch their slots on the shared disk");
    let cmds = vec![
        vec![
            "stonith".into(),
            "create".into(),
            "fence-sbd".into(),
            "fence_sbd".into(),
            format!("devices={dev}"),
            // no "list" action (Python) on the fencing path
            format!("pcmk_host_list={}", NODES.join(",")),
            "pcmk_host_check=static-list".into(),
            format!("pcmk_delay_base=node-a:0s;node-b:{DELAY_FENCING_NODE_B}"),
            "pcmk_reboot_timeout=300s".into(),
            // its start and monitor run Python: pcs's 20 s default is too
            // short for a loaded TCG guest, and once an hour is enough for
            // the recurring monitor here
            "op".into(),
            "start".into(),
            "timeout=180s".into(),
            "monitor".into(),
            "interval=3600s".into(),
            "timeout=180s".into(),
        ],
        [
            "property",
            "set",
            "stonith-enabled=true",
            "stonith-timeout=600s",
        ]
        .map(str::to_string)
        .to_vec(),
    ];
    (dev, cmds)
}

// ---------------------------------------------------------------------------
// Clocks and logs

/// Now, as seconds since the epoch.
fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// How far node `name`'s clock is ahead of the host's (s), and the
/// uncertainty (half the round trip).
fn clock_offset(c: &mut Cluster, name: &str) -> (f64, f64) {
    let t0 = now_s();
    let out = c.node(name).sh(&["date", "+%s.%N"]);
    let t1 = now_s();
    let guest: f64 = out.trim().parse().unwrap();
    (guest - (t0 + t1) / 2.0, (t1 - t0) / 2.0)
}

/// Days from 1970-01-01 to a civil date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The time of a pacemaker.log line ("Dec 01 20:50:26.996 node-b ...",
/// UTC in the guests), as seconds since the epoch; the year is the host's
/// (a line from December read in January belongs to the year before).
fn log_time(line: &str) -> Option<f64> {
    let mut f = line.split_whitespace();
    let (mon, day, time) = (f.next()?, f.next()?, f.next()?);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| *x == mon)? as i64 + 1;
    let d: i64 = day.parse().ok()?;
    let mut hms = time.split(':');
    let (h, mi, s): (f64, f64, f64) = (
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
    );
    let today = (now_s() / 86400.0) as i64;
    let mut year = 1970 + today / 365;
    while days_from_civil(year + 1, 1, 1) <= today {
        year += 1;
    }
    while days_from_civil(year, 1, 1) > today {
        year -= 1;
    }
    let mut days = days_from_civil(year, m, d);
    if days > today + 1 {
        days = days_from_civil(year - 1, m, d);
    }
    Some(days as f64 * 86400.0 + h * 3600.0 + mi * 60.0 + s)
}

/// The first line of `log` (from byte `from` on) containing `needle`, and
/// its time (node clock).
fn logged(log: &str, from: usize, needle: &str, who: &str) -> (usize, f64) {
    let at = log[from..]
        .find(needle)
        .map(|i| i + from)
        .unwrap_or_else(|| panic!("{who}'s log has no {needle:?} after byte {from}"));
    let start = log[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let t = log_time(&log[start..]).unwrap_or_else(|| {
        panic!(
            "no time on {who}'s log line {:?}",
            &log[start..at + needle.len()]
        )
    });
    (at, t)
}

/// The writer's records `(seq, time in s)` in `text` (complete lines).
fn records(text: &str) -> Vec<(u64, f64)> {
    text.lines()
        .filter_map(|l| {
            let (s, ns) = l.split_once(' ')?;
            Some((s.parse().ok()?, ns.parse::<f64>().ok()? / 1e9))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Scenarios 1, 2 and 3 on one pair

/// Scenario 1: exclusive failover, tagging then system_id (fencing set up
/// with the first group: its device starts while the group does).
fn scenario_1(c: &mut Cluster, tag: &Group, sid: &Group, fencing: Vec<Vec<String>>) {
    mark("scenario 1: exclusive failover, tagging");
    create_group(c, tag, fencing);
    exclusive_failover(c, tag);
    stop_group(c, tag);
    mark("scenario 1: exclusive failover, system_id");
    create_group(c, sid, Vec::new());
    exclusive_failover(c, sid);
    mark("scenario 1 done: the system_id group stays on node-a");
}

/// Scenario 2: node-a's QEMU killed; node-b fences it through SBD, then
/// takes the group; the file fsynced on node-a is intact. Then node-a's
/// kernel is powered on again: it does not activate the VG (system ID
/// node-b's) until the cluster moves the group back to it.
fn scenario_2(c: &mut Cluster, sid: &Group, sbd_dev: &str) {
    mark("scenario 2: a node dies");
    let file = format!("{}-written-on-a-before-death", sid.id);
    write_payload(c, sid, "node-a", &file);
    let log_from = c.log(1).len();
    let t0 = Instant::now();
    c.node("node-a").kill_qemu();
    c.via = 1;
    // The xl double's domains of node-a are that host's memory: gone with
    // its power (a real Xen host that comes back runs no domain; left in
    // place, node-a's probe after its return finds vm-sid "running" there
    // too).
    let _ = std::fs::remove_file(domain_file(c, "node-a", &sid.domain));
    mark("node-a's QEMU killed");
    c.wait_until(
        "the group running on node-b",
        Duration::from_secs(400),
        |c| c.locate(&sid.id) == ["node-b"],
    );
    let failover = t0.elapsed();
    c.settle();
    mark(&format!(
        "node killed -> {} running on node-b: {failover:.1?}",
        sid.id
    ));

    // node-b fenced node-a through SBD before it took over.
    let history = c.cli(&["stonith_admin", "--history", "node-a"]);
    eprintln!("{history}");
    assert!(
        history.contains("of node-a successful"),
        "no successful fencing of node-a: {history}"
    );
    let slot = sbd_slot(c, "node-b", sbd_dev, "node-a");
    assert!(
        matches!(slot.as_deref(), Some("reset" | "off")),
        "node-a's SBD slot holds no reset: {slot:?}"
    );
    // ... and in that order, as node-b logged it: node-a lost, fenced,
    // then the group started.
    let log = c.log(1);
    let (lost, t_lost) = logged(&log, log_from, "Node node-a state is now lost", "node-b");
    let (fenced, t_fenced) = logged(
        &log,
        log_from,
        "Peer node-a was terminated (reboot) by node-b",
        "node-b",
    );
    let start = format!("Result of start operation for {}-vg on node-b: ok", sid.id);
    let (started, t_started) = logged(&log, log_from, &start, "node-b");
    let (_, t_up) = logged(
        &log,
        log_from,
        &format!("Result of start operation for {}-vm on node-b: ok", sid.id),
        "node-b",
    );
    assert!(
        lost < fenced && fenced < started,
        "node-b's log: lost at {lost}, fenced at {fenced}, group started at {started}"
    );
    mark(&format!(
        "node-b's log: node-a lost, fenced {:.1} s later, group started {:.1} s after that, \
         running {:.1} s after that (the agents' starts)",
        t_fenced - t_lost,
        t_started - t_fenced,
        t_up - t_started
    ));
    assert_held_by(c, sid, Some("node-b"), "node-a killed");
    assert_payloads(c, sid, "node-b", &[&file], "node-a killed");

    // node-a's kernel again, on the same disk: nothing of the VG active,
    // the VG is node-b's, and an admin's vgchange there is refused.
    c.lab.restart_node("node-a");
    let a = c.node("node-a");
    // its own lvm.conf, as it was (system ID node-a)
    let etc_lvm = a.dir.join("etc-lvm").to_string_lossy().into_owned();
    a.sh(&["mount", "--bind", &etc_lvm, "/etc/lvm"]);
    a.sh(&["modprobe", "dm-mod"]);
    let dm = a.dm_names();
    assert!(
        !dm.contains(&sid.dm_name()),
        "node-a's new kernel activated {} by itself: {dm:?}",
        sid.dm_name()
    );
    let owner = a.sh(&[
        "vgs",
        "--foreign",
        "--noheadings",
        "-o",
        "vg_systemid",
        &sid.vg,
    ]);
    assert_eq!(
        owner.trim(),
        "node-b",
        "{}'s system ID read on node-a",
        sid.vg
    );
    let refused = a.run(&["vgchange", "-ay", &sid.vg]);
    assert!(
        !refused.ok(),
        "vgchange -ay on node-a activated node-b's VG: {}",
        refused.text()
    );
    let dm = a.dm_names();
    assert!(!dm.contains(&sid.dm_name()), "{dm:?}");
    mark(&format!(
        "node-a back: {} not active there, vgchange -ay refused: {}",
        sid.vg,
        refused
            .text()
            .lines()
            .find(|l| !l.contains("leaked on"))
            .unwrap_or("")
    ));

    // It joins (its fencing slot cleared first, as an admin does); the
    // group stays where it runs until the cluster moves it.
    c.node("node-a")
        .sh(&["sbd", "-d", sbd_dev, "message", "node-a", "clear"]);
    assert_eq!(
        sbd_slot(c, "node-b", sbd_dev, "node-a").as_deref(),
        Some("clear")
    );
    sbd_watch(c, "node-a", sbd_dev);
    c.rejoin("node-a");
    c.via = 0;
    c.settle();
    assert_held_by(c, sid, Some("node-b"), "node-a rejoined");
    move_group(c, sid, "node-a", &[&file]);
}

/// Scenario 3: node-a, holding the group and writing to it, is cut off
/// from the cluster link (inside node-a). node-b fences it through SBD;
/// node-a's SBD (and watchdog) resets it; node-b takes over only after
/// that. The order, from node-a's writes (its clock) and node-b's log (its
/// clock), both converted to the host's clock: node-a's last write, then
/// the fencing done, then the group started on node-b. No write that
/// node-a acknowledged is lost, and the records are contiguous.
fn scenario_3(c: &mut Cluster, sid: &Group) {
    mark("scenario 3: a node is cut off");
    let data = format!("{}/writes", sid.dir);
    let ack = c.node("node-a").dir.join("logs/writer.ack");
    c.node("node-a").start_writer(&data, &ack, 200);
    c.wait_until("node-a's writer", Duration::from_secs(60), |_| {
        records(&std::fs::read_to_string(&ack).unwrap_or_default()).len() >= 3
    });
    let (off_a, err_a) = clock_offset(c, "node-a");
    let (off_b, err_b) = clock_offset(c, "node-b");
    mark(&format!(
        "clocks vs the host: node-a {off_a:+.3} s (±{err_a:.2}), node-b {off_b:+.3} s (±{err_b:.2})"
    ));
    let log_from = c.log(1).len();
    c.via = 1;
    let nic = c.node("node-a").nic();
    let t_cut = now_s();
    c.node("node-a").sh(&["ip", "link", "set", &nic, "down"]);
    mark("node-a's cluster link down (inside node-a)");
    let t0 = Instant::now();
    while c.node("node-a").alive() {
        assert!(
            t0.elapsed() < Duration::from_secs(400),
            "node-a still runs {:?} after its link went down",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let t_reset = now_s();
    mark(&format!(
        "node-a reset (its QEMU exited) {:.1} s after the cut",
        t_reset - t_cut
    ));
    c.wait_until(
        "the group running on node-b",
        Duration::from_secs(400),
        |c| c.locate(&sid.id) == ["node-b"],
    );
    c.settle();
    mark(&format!(
        "link cut -> {} running on node-b: {:.1} s",
        sid.id,
        now_s() - t_cut
    ));
    assert_held_by(c, sid, Some("node-b"), "node-a cut off");

    // The writes, as the shared disk holds them (read on node-b).
    let on_disk = records(&c.node("node-b").sh(&["cat", &data]));
    let acked = records(&std::fs::read_to_string(&ack).unwrap());
    assert!(!on_disk.is_empty() && !acked.is_empty());
    for (i, (seq, _)) in on_disk.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1, "the writes on disk are not contiguous");
    }
    let (last_acked, _) = *acked.last().unwrap();
    let (last_seq, last_write) = *on_disk.last().unwrap();
    assert!(
        last_seq >= last_acked,
        "node-a acknowledged write {last_acked}, the disk ends at {last_seq}: data lost"
    );
    let last_write = last_write - off_a; // host clock
    let log = c.log(1);
    let (lost, t_lost) = logged(&log, log_from, "Node node-a state is now lost", "node-b");
    let (fenced, t_fenced) = logged(
        &log,
        log_from,
        "Peer node-a was terminated (reboot) by node-b",
        "node-b",
    );
    let start = format!("Result of start operation for {}-vg on node-b: ok", sid.id);
    let (started, t_started) = logged(&log, log_from, &start, "node-b");
    let (t_lost, t_fenced, t_started) = (t_lost - off_b, t_fenced - off_b, t_started - off_b);
    let slack = err_a + err_b + 0.5; // clock reading, log resolution
    let rel = |t: f64| t - t_cut;
    let order = format!(
        "after the cut: node-a's last write (seq {last_seq}) {:+.1} s, node-b lost node-a {:+.1} s, \
         fenced it {:+.1} s, node-a's QEMU gone {:+.1} s, group started on node-b {:+.1} s",
        rel(last_write),
        rel(t_lost),
        rel(t_fenced),
        rel(t_reset),
        rel(t_started)
    );
    mark(&order);
    assert!(
        last_write > t_cut,
        "node-a stopped writing before its link went down: {order}"
    );
    assert!(
        lost < fenced && fenced < started,
        "node-b's log order: lost {lost}, fenced {fenced}, started {started}"
    );
    assert!(
        last_write + slack < t_fenced,
        "node-a wrote after node-b's fencing of it completed: {order}"
    );
    assert!(
        t_reset < t_started + slack,
        "node-b started the group while node-a still ran: {order}"
    );
    assert!(
        last_write + slack < t_started,
        "node-a's last write after node-b's start: {order}"
    );
    let sbd_a =
        std::fs::read_to_string(c.node("node-a").dir.join("logs/sbd.stderr")).unwrap_or_default();
    eprintln!(
        "node-a's sbd (end):\n{}",
        sbd_a.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn failover_then_node_killed_then_node_cut_off() {
    let Some(lab) = Lab::boot("two-nodes scenarios 1-3") else {
        return;
    };
    let t0 = Instant::now();
    let mut c = cluster_with_xl_double(lab);
    // The storage: one PV and VG per group; the tagging VG first (made
    // before the system_id lvm.conf is in place).
    let sid = Group::new("sid", "system_id");
    let tag = Group::new("tag", "tagging");
    make_vg(&mut c, &tag, 3);
    make_vg(&mut c, &sid, 2);
    for name in NODES {
        let vgs = c
            .node(name)
            .sh(&["vgs", "--foreign", "--noheadings", "-o", "vg_name"]);
        for g in [&sid, &tag] {
            assert!(vgs.contains(&g.vg), "{name} does not see {}: {vgs}", g.vg);
        }
    }
    let (sbd_dev, fencing) = sbd_setup(&mut c);
    scenario_1(&mut c, &tag, &sid, fencing);
    scenario_2(&mut c, &sid, &sbd_dev);
    scenario_3(&mut c, &sid);

    // The filesystem after two crashes: stopped, then xfs_repair -n.
    stop_group(&mut c, &sid);
    let b = c.node("node-b");
    let lv = format!("{}/data", sid.vg);
    b.sh(&["lvchange", "-ay", &lv]);
    let repair = b.run(&["xfs_repair", "-n", &format!("/dev/{lv}")]);
    b.sh(&["lvchange", "-an", &lv]);
    assert!(
        repair.ok(),
        "xfs_repair -n after the failovers: {}",
        repair.text()
    );
    mark(&format!(
        "scenarios 1-3 done in {:.0?} (boot included: {:.0?})",
        t0.elapsed(),
        c.lab.boot_time + t0.elapsed()
    ));
}
