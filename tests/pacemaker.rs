//! Pacemaker drives our agents end to end: a real corosync + pacemakerd
//! that this file starts itself, resources created exactly as for
//! `ocf:heartbeat:*` with only the provider switched to ours: with
//! `cibadmin`, and in the one-node group test with pcs, as an admin does it
//! offline (`pcs -f` on a dump of the CIB, then `cibadmin --replace`, what
//! `pcs cluster cib-push` runs); `pcs_creates_the_readme_stack` runs the
//! README's pcs example the same way, and
//! `switch_a_running_cluster_to_heartbeat_rs_and_back` the README's
//! commands that switch a running resource from the heartbeat agent
//! (resource-agents' script, copied into that test's node next to ours) to
//! ours and back without a restart.
//!
//! The cluster is `support::cluster`: every node a set of namespaces of
//! its own (hostname, loopback, /run, corosync.conf, the CIB, our provider
//! only), corosync + pacemakerd started and stopped by the test, nothing
//! written on the host outside its temporary directories. The tests
//! refuse to run when a corosync or pacemakerd is already running on the
//! machine, and the cluster tests of this file run one at a time.
//!
//! The cluster tests see the guest only through the [`Guest`] trait
//! (`support::cluster::guests`), and run with two guests: the Xen agent
//! over the `xl` TEST DOUBLE (Xen cannot run here), and the VirtualDomain
//! agent over a real QEMU (TCG) guest with a libvirtd per node, moved over
//! a veth between the nodes. Without libvirtd, QEMU or the guest image
//! the VirtualDomain tests print SKIP, and fail when RA_REQUIRE_GUEST is
//! set.
//!
//! Needs root, `corosync`, `pacemaker`, `pacemaker-cli-utils`, `iproute2`,
//! `pcs` and util-linux (`unshare`, `nsenter`, `mount`); for VirtualDomain
//! also what `.ci/install-libvirt.sh` installs.

mod doubles;
mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::cluster::cib::{heartbeat_primitive, op, our_provider, primitives, seed_cib};
use support::cluster::guests::{Guest, VirtualDomainQemu, XenOverXlDouble};
use support::cluster::{preflight, text, wait_until, Cluster, Node, PROVIDER};
use support::virtualdomain::{require_libvirtd, vd_binary};
use support::LoopDevice;

const FILESYSTEM: &str = env!("CARGO_BIN_EXE_Filesystem");

/// Recurring monitor interval of the resources (detection takes up to it),
/// and the same in ms as operation keys spell it.
const MONITOR: &str = "3s";
const MONITOR_MS: &str = "3000";

// ---------------------------------------------------------------------------
// Tests

/// One node: a group of our Filesystem (loop-backed ext4) and the guest,
/// configured as for the heartbeat agents; start, recurring monitors, a
/// failure of each behind the cluster's back detected by the recurring
/// monitor and recovered, stop.
#[test]
fn one_node_group_with_xen_over_xl_double() {
    one_node_group(&XenOverXlDouble::new(doubles::xl(), &["node1"]));
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
    two_nodes_live_migration(&XenOverXlDouble::new(doubles::xl(), &["node1", "node2"]));
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
    if !require_libvirtd() {
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
    std::fs::write(&file, seed_cib()).unwrap();
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

/// The README's "Switching a running cluster to heartbeat-rs", run as
/// printed on a one-node cluster whose OCF root holds both providers: a
/// Filesystem resource started by the heartbeat agent (resource-agents'
/// shell script) switches to ours without a restart, and back (the
/// rollback). Maintenance mode keeps Pacemaker's hands off while the
/// provider changes (`cibadmin --modify`); `crm_resource --refresh` then
/// clears the resource's history, so our agent's probe finds it running;
/// maintenance mode off, and our recurring monitor takes over. Not
/// restarted: a process holding a file open inside the mount still runs
/// (a stop ends it: run without maintenance mode, this test fails there),
/// the same mount ID (not proof alone: the kernel reuses mount IDs), no
/// stop or start in the logs.
#[test]
fn switch_a_running_cluster_to_heartbeat_rs_and_back() {
    preflight();
    let heartbeat = Path::new(support::cluster::OCF_RESOURCE_D).join("heartbeat/Filesystem");
    assert!(
        heartbeat.is_file(),
        "{} is missing: install resource-agents",
        heartbeat.display()
    );
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Switching a running cluster to heartbeat-rs"))
        .expect("the README's section \"Switching a running cluster to heartbeat-rs\"");
    // Its command blocks: one command a line, plain words (single quotes
    // around an XML or XPath argument only). The switch and the rollback
    // (cibadmin; the crmsh variant was checked by hand), and the check.
    let blocks = |has: &str| -> Vec<Vec<Vec<String>>> {
        section
            .split("```")
            .filter(|b| b.starts_with("sh\n") && b.contains(has))
            .map(|b| {
                b.trim_start_matches("sh\n")
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                    .map(words_of)
                    .collect()
            })
            .collect()
    };
    let switches = blocks("cibadmin --modify");
    assert_eq!(switches.len(), 2, "switch and rollback blocks: {section}");
    let check = blocks("--list-operations");
    assert_eq!(check.len(), 1, "the check block: {section}");
    let check = &check[0];

    let fsdir = support::tempdir("pcmk-switch");
    let dev = LoopDevice::new(fsdir.path(), 64, "ext4");
    let mnt = fsdir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let cluster = Cluster::start(
        &["node1"],
        &[("Filesystem", PathBuf::from(FILESYSTEM))],
        &|_| Vec::new(),
    );
    let node = cluster.node("node1");
    // resource-agents' heartbeat agent next to ours (the node's OCF root
    // is a tmpfs of its own)
    let theirs = node.inside(&format!("{}/heartbeat", support::cluster::OCF_RESOURCE_D));
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::copy(&heartbeat, theirs.join("Filesystem")).unwrap();

    let fs = heartbeat_primitive(
        "fs1",
        "Filesystem",
        &[
            ("device", dev.device.clone()),
            ("directory", mnt.to_string_lossy().into()),
            ("fstype", "ext4".into()),
        ],
        &[],
        &[
            op("start", "0", "60s"),
            op("stop", "0", "60s"),
            op("monitor", MONITOR, "20s"),
        ],
    );
    cluster.create(&fs);
    cluster.settle();
    assert_eq!(cluster.locate("fs1"), ["node1"], "{}", cluster.status());
    let monitor = format!("fs1_monitor_{MONITOR_MS}");
    wait_until(
        "the heartbeat agent's monitor",
        Duration::from_secs(20),
        || cluster.op_rc(&monitor, "node1") == Some(0),
    );
    assert_eq!(executed_by(&cluster, "fs1"), "ocf:heartbeat:Filesystem");
    let mount = node.mount_id(&mnt).expect("fs1 mounted on node1");
    // a process of the node holding a file open inside the mount: a
    // restart would have to end it (stop kills what holds the mount)
    let file = mnt.join("held-open");
    std::fs::write(node.inside(&file.to_string_lossy()), "data\n").unwrap();
    let holder = HeldOpen(
        node.cmd("tail", &["-f", &file.to_string_lossy()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until(
        "tail holding the file open",
        Duration::from_secs(10),
        || holder.holds(&file),
    );

    for (commands, provider) in switches.iter().zip([PROVIDER, "heartbeat"]) {
        let marks = cluster.log_marks();
        for c in commands {
            let args: Vec<&str> = c[1..].iter().map(String::as_str).collect();
            eprintln!("$ {}", c.join(" "));
            let said = cluster.cli(&c[0], &args);
            eprint!("{said}");
            if c[0] == "crm_resource" {
                cluster.settle();
            }
        }
        cluster.settle();
        let want = format!("ocf:{provider}:Filesystem");
        wait_until(
            &format!("{want}'s recurring monitor"),
            Duration::from_secs(20),
            || executed_by(&cluster, "fs1") == want && cluster.op_rc(&monitor, "node1") == Some(0),
        );
        let status = cluster.status();
        assert!(
            status.contains(&format!("fs1\t({want}):\t Started node1")),
            "{status}"
        );
        assert!(!status.contains("maintenance"), "{status}");
        assert_eq!(
            node.mount_id(&mnt),
            Some(mount.clone()),
            "fs1 was remounted"
        );
        assert!(
            holder.holds(&file),
            "the process holding {} ended",
            file.display()
        );
        let log = cluster.logs_since(&marks).remove(0).1;
        assert!(
            log.contains("Result of probe operation for fs1 on node1: ok"),
            "{want}'s probe did not find fs1 running:\n{log}"
        );
        for op in ["stop", "start"] {
            assert!(
                !log.contains(&format!("Result of {op} operation for fs1")),
                "fs1 was restarted ({op}) while switching to {want}:\n{log}"
            );
        }
        assert_eq!(cluster.fail_count("fs1", "node1", None), 0, "{status}");
        // the README's check says so too
        let said: Vec<String> = check
            .iter()
            .map(|c| {
                let args: Vec<&str> = c[1..].iter().map(String::as_str).collect();
                cluster.cli(&c[0], &args)
            })
            .collect();
        assert!(
            said[0]
                .lines()
                .any(|l| l.contains("fs1_monitor_0 (node=node1") && l.contains("rc=0")),
            "no successful probe of fs1:\n{}",
            said[0]
        );
        assert!(
            said[1].contains(&format!("provider=\"{provider}\"")),
            "{}",
            said[1]
        );
        assert!(said[2].contains(&format!("({want}):")), "{}", said[2]);
        assert!(!said[2].contains("Failed"), "{}", said[2]);
    }
}

/// A README command line as an argument vector: words, and one
/// single-quoted argument at most per line (the XML of `cibadmin`).
fn words_of(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        if let Some(q) = rest.strip_prefix('\'') {
            let (word, after) = q.split_once('\'').expect("a closing quote");
            out.push(word.to_string());
            rest = after.trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    out
}

/// The agent Pacemaker runs for `rsc` now, from its history in the status
/// section (`<lrm_resource class provider type>`).
fn executed_by(cluster: &Cluster, rsc: &str) -> String {
    let status = cluster.cli("cibadmin", &["--query", "--scope", "status"]);
    support::xml::elements(&status, "lrm_resource")
        .iter()
        .find(|e| support::xml::get(e, "id") == Some(rsc))
        .map(|e| {
            let a = |n| support::xml::get(e, n).unwrap_or("?");
            format!("{}:{}:{}", a("class"), a("provider"), a("type"))
        })
        .unwrap_or_default()
}

/// A process of a cluster node with a file open; killed on drop.
struct HeldOpen(std::process::Child);

impl HeldOpen {
    /// Still running, with an open descriptor on `file`.
    fn holds(&self, file: &Path) -> bool {
        let pid = self.0.id();
        support::cluster::alive(pid)
            && std::fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == file))
    }
}

impl Drop for HeldOpen {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
