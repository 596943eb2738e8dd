//! The demo (`sudo ./demo/run.sh`): the job this project exists for, high
//! availability for virtual machines, on a throw-away two-node Pacemaker
//! cluster with our agents as the provider `heartbeat-rs`.
//!
//! The cluster, the nodes and the guest are the fixtures of
//! tests/pacemaker.rs (`tests/support/cluster`, `tests/support/libvirt.rs`),
//! included here as they are, so the demo runs exactly what the tests
//! check: every node a set of namespaces of its own with a corosync +
//! pacemakerd, a libvirtd per node, a real tiny QEMU (TCG) guest that
//! prints its uptime every second on its serial console, a veth between
//! the nodes. Nothing is written on the host outside a temporary
//! directory, and the fixtures' `Drop` takes everything down in order, also
//! on a failure or Ctrl-C (SIGINT sets [`support::INTERRUPTED`], which ends
//! the waits; the daemons run in process groups of their own, so the
//! terminal's Ctrl-C reaches only this program).
//!
//! What it shows, as an admin sees it: the group created with pcs, the
//! status from `crm_mon -1`, the guest killed and the filesystem unmounted
//! behind the cluster's back and both recovered, the guest live-migrated
//! to the other node and back with its uptime going on; then a summary of
//! every step with the OCF results Pacemaker logged and recorded, and how
//! long detection and recovery took (measured here, on this machine).

#[path = "../tests/support/mod.rs"]
mod support;

use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use support::cluster::guests::{Guest, VirtualDomainQemu};
use support::cluster::{text, wait_until, Cluster, PROVIDER};
use support::{built_binary, LoopDevice};

/// Recurring monitor interval: a failure is detected within it.
const MONITOR: &str = "3s";

/// One step of the demo, for the summary.
struct Step {
    what: String,
    detected: Option<Duration>,
    recovered: Option<Duration>,
    /// `node1: vm1 monitor -> not running (OCF_NOT_RUNNING, 7)`: the
    /// "Result of ..." lines the nodes' controllers logged during the step
    /// (what they also record in the CIB's status section), in order.
    results: Vec<String>,
}

/// The first panic's message (the report goes to the details file).
static FAILURE: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// The terminal's stderr (fd 2 goes to the details file).
static TERMINAL: AtomicI32 = AtomicI32::new(2);

#[allow(unsafe_code)] // FFI: write(2) from a signal handler
extern "C" fn interrupted(_: libc::c_int) {
    if !support::INTERRUPTED.swap(true, Ordering::Relaxed) {
        let say = b"\n== Interrupted: stopping the cluster (it stops the guest first) and removing everything\n";
        // SAFETY: write(2) is async-signal-safe; a static buffer.
        unsafe {
            libc::write(
                TERMINAL.load(Ordering::Relaxed),
                say.as_ptr().cast(),
                say.len(),
            );
        }
    }
}

fn section(title: &str) {
    println!("\n== {title}");
}

fn say(line: &str) {
    println!("   {line}");
}

/// A command as the admin types it.
fn typed(cmd: &str) {
    println!("   $ {cmd}");
}

fn indented(out: &str) {
    for l in out.lines().filter(|l| !l.trim().is_empty()) {
        println!("     {l}");
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Ctrl-C and SIGTERM end the demo's waits; the demo then cleans up.
#[allow(unsafe_code)] // FFI: signal(2)
fn on_interrupt_clean_up() {
    // SAFETY: the handler only stores to atomics and calls write(2).
    unsafe {
        let handler = interrupted as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

fn main() {
    on_interrupt_clean_up();
    let logs = tempfile::Builder::new()
        .prefix("ra-rs-demo-logs-")
        .tempdir_in("/var/tmp")
        .expect("a log directory under /var/tmp")
        .keep();
    // The fixtures' progress notes (and a failure's report) go to a file:
    // the terminal shows the story, the file the details.
    let details = logs.join("demo-details.log");
    let terminal = redirect_stderr(&details);
    TERMINAL.store(terminal.as_raw_fd(), Ordering::Relaxed);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let mut first = FAILURE.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_empty() {
            *first = info.to_string();
        }
        default_hook(info);
    }));
    let ok = catch_unwind(AssertUnwindSafe(|| run(&logs))).is_ok();
    // the terminal's stderr back on fd 2
    let _ = nix::unistd::dup2_stderr(&terminal);
    if !ok {
        if support::INTERRUPTED.load(Ordering::Relaxed) {
            eprintln!("   done: the cluster, the guest and the disk are gone");
        } else {
            let failure = FAILURE.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!("\n== The demo FAILED, and cleaned up: {failure}");
        }
        eprintln!(
            "   details: {}, the cluster's logs: {}",
            details.display(),
            logs.display()
        );
        std::process::exit(1);
    }
}

/// Point fd 2 at `file`; returns a copy of the old fd 2.
fn redirect_stderr(file: &Path) -> std::os::fd::OwnedFd {
    let f = std::fs::File::create(file).expect("the demo's log file");
    let saved = nix::unistd::dup(std::io::stderr()).expect("dup(2)");
    nix::unistd::dup2_stderr(&f).expect("dup2(file, 2)");
    saved
}

fn run(logs: &Path) {
    let t0 = Instant::now();
    section("Setting up: a loop-backed ext4 disk, a tiny QEMU guest, two cluster nodes");
    let guest = VirtualDomainQemu::new()
        .expect("libvirtd/virtlogd or the guest kernel are missing (.ci/install-libvirt.sh)");
    let fsdir = support::tempdir("demo-fs");
    let dev = LoopDevice::new(fsdir.path(), 64, "ext4");
    let mnt = fsdir.path().join("data");
    std::fs::create_dir(&mnt).unwrap();
    say(&format!(
        "disk: {} (ext4), to be mounted on {}",
        dev.device,
        mnt.display()
    ));
    let agents = [
        (
            "Filesystem",
            PathBuf::from(built_binary("Filesystem", None)),
        ),
        guest.agent(),
    ];
    let cluster = Cluster::start(&["node1", "node2"], &agents, &|_| Vec::new());
    for n in &cluster.nodes {
        guest.prepare(n);
    }
    say(&format!(
        "cluster up after {}: corosync + pacemakerd on node1 and node2 (each in its own \
         namespaces), a libvirtd on each",
        secs(t0.elapsed())
    ));

    let result = catch_unwind(AssertUnwindSafe(|| {
        demo(&cluster, &guest, &dev.device, &mnt)
    }));
    save_logs(&cluster, logs);
    let steps = match result {
        Ok(steps) => steps,
        Err(e) => std::panic::resume_unwind(e),
    };

    section("Stopping the cluster (it stops the guest and unmounts), removing everything");
    let t = Instant::now();
    drop(cluster);
    drop(guest);
    drop(dev);
    drop(fsdir);
    say(&format!("done after {}", secs(t.elapsed())));
    summary(&steps);
    println!(
        "\n== Done in {} (logs: {})",
        secs(t0.elapsed()),
        logs.display()
    );
}

fn demo(cluster: &Cluster, guest: &VirtualDomainQemu, device: &str, mnt: &Path) -> Vec<Step> {
    let mut steps = Vec::new();

    section("Creating the group with pcs, as for the heartbeat agents (provider heartbeat-rs)");
    let fs = vec![
        "resource".to_string(),
        "create".into(),
        "fs1".into(),
        format!("ocf:{PROVIDER}:Filesystem"),
        format!("device={device}"),
        format!("directory={}", mnt.display()),
        "fstype=ext4".into(),
        "op".into(),
        "monitor".into(),
        format!("interval={MONITOR}"),
        "timeout=20s".into(),
        "--group".into(),
        "g1".into(),
    ];
    let mut vm = vec![
        "resource".to_string(),
        "create".into(),
        "vm1".into(),
        format!("ocf:{PROVIDER}:VirtualDomain"),
    ];
    vm.extend(guest.params().into_iter().map(|(k, v)| format!("{k}={v}")));
    vm.extend(
        [
            "meta",
            "allow-migrate=true",
            "op",
            "stop",
            "timeout=20s",
            "monitor",
            &format!("interval={MONITOR}"),
            "timeout=30s",
            "--group",
            "g1",
        ]
        .map(String::from),
    );
    let t = Instant::now();
    let marks = cluster.log_marks();
    pcs(cluster, &[fs, vm]);
    cluster.settle();
    let home = cluster.locate("vm1");
    assert_eq!(home.len(), 1, "{}", cluster.status());
    let home = home[0].clone();
    let other = if home == "node1" { "node2" } else { "node1" }.to_string();
    guest.wait_ready(&home);
    say(&format!(
        "the group runs on {home}: filesystem mounted, guest booted after {}",
        secs(t.elapsed())
    ));
    steps.push(Step {
        what: format!("create the group; it starts on {home}"),
        detected: None,
        recovered: Some(t.elapsed()),
        results: results(cluster, &marks),
    });

    section("What the admin sees");
    typed("crm_mon -1");
    indented(&cluster.cli("crm_mon", &["-1"]));

    section(&format!(
        "Failure 1: the guest is killed behind the cluster's back (on {home})"
    ));
    let marks = cluster.log_marks();
    typed(&format!("virsh destroy {}", guest_name(guest)));
    guest.kill(&home);
    let t = Instant::now();
    wait_until("the cluster to notice", Duration::from_secs(60), || {
        cluster.fail_count("vm1", &home, None) >= 1
    });
    let detected = t.elapsed();
    say(&format!(
        "detected after {} by the recurring monitor",
        secs(detected)
    ));
    wait_until("the guest running again", Duration::from_secs(90), || {
        guest.running_on(&home)
    });
    cluster.settle();
    let recovered = t.elapsed();
    say(&format!(
        "guest running again on {home} after {}",
        secs(recovered)
    ));
    typed("crm_mon -1 --include=failcounts");
    indented(&failures(cluster));
    steps.push(Step {
        what: "guest killed (virsh destroy)".into(),
        detected: Some(detected),
        recovered: Some(recovered),
        results: results(cluster, &marks),
    });
    guest.wait_ready(&home);
    typed("crm_resource --cleanup --resource vm1");
    cluster.cleanup("vm1");

    section(&format!(
        "Failure 2: the filesystem is unmounted behind the cluster's back (on {home})"
    ));
    let marks = cluster.log_marks();
    typed(&format!("umount {}", mnt.display()));
    let node = cluster.node(&home);
    node.sh("umount", &[&mnt.to_string_lossy()]);
    let t = Instant::now();
    wait_until("the cluster to notice", Duration::from_secs(60), || {
        cluster.fail_count("fs1", &home, None) >= 1
    });
    let detected = t.elapsed();
    say(&format!(
        "detected after {} by the recurring monitor",
        secs(detected)
    ));
    wait_until("mounted again", Duration::from_secs(90), || {
        node.mount_id(mnt).is_some()
    });
    cluster.settle();
    let recovered = t.elapsed();
    say(&format!(
        "mounted again after {}; the guest above it in the group was restarted with it",
        secs(recovered)
    ));
    typed("crm_mon -1 --include=failcounts");
    indented(&failures(cluster));
    steps.push(Step {
        what: "filesystem unmounted (umount)".into(),
        detected: Some(detected),
        recovered: Some(recovered),
        results: results(cluster, &marks),
    });
    guest.wait_ready(&home);
    typed("crm_resource --cleanup --resource fs1");
    cluster.cleanup("fs1");

    section("Live migration: the guest to the other node and back");
    say("A group moves as a whole: its filesystem would stop, and the guest with it.");
    say("A guest that live-migrates keeps its disks on storage both nodes see (this");
    say("tiny one has none: kernel and initrd), so it leaves the group and moves on");
    say("its own (allow-migrate=true): migrate_to, then migrate_from, no restart.");
    let mut marks = cluster.log_marks();
    pcs(
        cluster,
        &[["resource", "group", "remove", "g1", "vm1"]
            .map(String::from)
            .to_vec()],
    );
    cluster.settle();
    assert_eq!(
        cluster.locate("vm1"),
        [home.as_str()],
        "{}",
        cluster.status()
    );
    for (from, to) in [
        (home.as_str(), other.as_str()),
        (other.as_str(), home.as_str()),
    ] {
        let before = guest.uptimes(from).last().copied().unwrap_or(0.0);
        typed(&format!("crm_resource --resource vm1 --move --node {to}"));
        let t = Instant::now();
        cluster.cli(
            "crm_resource",
            &["--resource", "vm1", "--move", "--node", to],
        );
        wait_until(&format!("vm1 on {to}"), Duration::from_secs(90), || {
            cluster.locate("vm1") == [to]
        });
        cluster.settle();
        let took = t.elapsed();
        let last = guest.uptimes(from).last().copied().unwrap_or(before);
        wait_until(
            &format!("the guest's uptime on {to}"),
            Duration::from_secs(30),
            || !guest.uptimes(to).is_empty(),
        );
        let first = guest.uptimes(to)[0];
        say(&format!(
            "on {to} after {}; guest uptime {last:.0} s on {from}, then {first:.0} s on {to}: {}",
            secs(took),
            if first >= last {
                "the same guest, no reboot"
            } else {
                "REBOOTED"
            }
        ));
        typed("crm_resource --resource vm1 --clear");
        cluster.cli("crm_resource", &["--resource", "vm1", "--clear"]);
        cluster.settle();
        steps.push(Step {
            what: format!("live migration {from} -> {to}"),
            detected: None,
            recovered: Some(took),
            results: results(cluster, &marks),
        });
        marks = cluster.log_marks();
    }

    section("What the admin sees now");
    typed("crm_mon -1");
    indented(&cluster.cli("crm_mon", &["-1"]));
    typed("crm_resource --list-operations   (the results recorded in the CIB)");
    let mut ops: Vec<String> = cluster
        .cli("crm_resource", &["--list-operations"])
        .lines()
        .map(str::to_string)
        .collect();
    ops.dedup();
    indented(&ops.join("\n"));
    steps
}

/// Run pcs as an admin does for a change of several steps: on a copy of
/// the live CIB (`pcs cluster cib`), pushed back in one go (`pcs cluster
/// cib-push`), so the cluster sees the whole change at once.
fn pcs(cluster: &Cluster, commands: &[Vec<String>]) {
    let file = cluster.nodes[0].root.join("demo-cib.xml");
    let f = file.to_string_lossy().into_owned();
    let run = |shown: &str, args: &[&str]| {
        typed(&format!("pcs {shown}"));
        let said = cluster.cli("pcs", args);
        if !said.trim().is_empty() {
            indented(&said);
        }
    };
    run("cluster cib demo-cib.xml", &["cluster", "cib", &f]);
    for c in commands {
        let mut args = vec!["-f", f.as_str()];
        args.extend(c.iter().map(String::as_str));
        run(&format!("-f demo-cib.xml {}", c.join(" ")), &args);
    }
    run(
        "cluster cib-push demo-cib.xml",
        &["cluster", "cib-push", &f],
    );
}

/// The operations the controllers logged since `marks`, in the order they
/// ended: `node1: vm1 monitor -> not running (OCF_NOT_RUNNING, 7)`.
fn results(cluster: &Cluster, marks: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    for (node, log) in cluster.logs_since(marks) {
        for l in log.lines() {
            let Some((_, r)) = l.split_once("Result of ") else {
                continue;
            };
            let r = r.split(" | ").next().unwrap_or(r);
            // "monitor operation for vm1 on node1: not running"
            let Some((op, rest)) = r.split_once(" operation for ") else {
                continue;
            };
            let Some((rsc, result)) = rest.split_once(" on ") else {
                continue;
            };
            let result = result.split_once(": ").map_or(result, |(_, x)| x);
            // "Dec 01 20:08:09.071 node1 ...": the time sorts within a run
            let stamp = l.get(..19).unwrap_or_default().to_string();
            out.push((stamp, format!("{node}: {rsc} {op} -> {}", ocf_name(result))));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, r)| r).collect()
}

/// Pacemaker's words for an OCF result, with the OCF name and code.
fn ocf_name(result: &str) -> String {
    let code = match result {
        "ok" => "OCF_SUCCESS, 0",
        "error" => "OCF_ERR_GENERIC, 1",
        "invalid parameter" => "OCF_ERR_ARGS, 2",
        "unimplemented feature" => "OCF_ERR_UNIMPLEMENTED, 3",
        "insufficient privileges" => "OCF_ERR_PERM, 4",
        "not installed" => "OCF_ERR_INSTALLED, 5",
        "not configured" => "OCF_ERR_CONFIGURED, 6",
        "not running" => "OCF_NOT_RUNNING, 7",
        "Cancelled" => return "cancelled (the recurring monitor, before a stop or move)".into(),
        _ => return result.to_string(),
    };
    format!("{result} ({code})")
}

/// The failed actions crm_mon shows, with the fail counts.
fn failures(cluster: &Cluster) -> String {
    let s = text(&cluster.nodes[0].run("crm_mon", &["-1", "--include=failcounts"]));
    let keep: Vec<&str> = s
        .lines()
        .skip_while(|l| !l.contains("Migration Summary") && !l.contains("Failed Resource Actions"))
        .collect();
    keep.join("\n")
}

fn guest_name(guest: &VirtualDomainQemu) -> String {
    let (_, config) = guest
        .params()
        .into_iter()
        .find(|(k, _)| *k == "config")
        .unwrap();
    let xml = std::fs::read_to_string(config).unwrap_or_default();
    xml.split("<name>")
        .nth(1)
        .and_then(|n| n.split("</name>").next())
        .unwrap_or("vm1")
        .to_string()
}

/// Every node's logs (pacemaker.log, corosync.log, the daemons' stderr)
/// copied out of the cluster's directory, which goes with the cluster.
fn save_logs(cluster: &Cluster, to: &Path) {
    for n in &cluster.nodes {
        let dst = to.join(&n.name);
        let _ = std::fs::create_dir_all(&dst);
        for e in std::fs::read_dir(n.root.join("logs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::copy(e.path(), dst.join(e.file_name()));
        }
    }
}

fn summary(steps: &[Step]) {
    section("Summary (times measured on this run)");
    for s in steps {
        let t = match (s.detected, s.recovered) {
            (Some(d), Some(r)) => {
                format!("detected after {}, recovered after {}", secs(d), secs(r))
            }
            (None, Some(r)) => format!("done after {}", secs(r)),
            _ => String::new(),
        };
        println!("   * {}: {t}", s.what);
        for r in &s.results {
            println!("       {r}");
        }
    }
}
