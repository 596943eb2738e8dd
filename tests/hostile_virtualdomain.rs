//! Hostile input and faults for the VirtualDomain agent and its rgmanager
//! `vm` persona (issue 13): the standing suite that keeps them fixed.
//!
//! What it guards, and why each matters to a cluster:
//!
//! - **Reading the guest definition is bounded** (`config`, vm's
//!   `xmlfile`): a FIFO planted there (a hung network filesystem behaves the
//!   same) made monitor and stop hang until the cluster manager killed them,
//!   `/dev/zero` was read until memory ran out. Now: regular files of at
//!   most 1 MiB only, read inside the operation's deadline (`ocf::file`),
//!   with one line saying what the path is. Stop still stops the domain when
//!   its name is known (the record of a start, vm's `name`); without a name
//!   it fails (6: the config is no configuration file) instead of calling a
//!   domain it cannot see "stopped", and a probe never says 7.
//! - **libvirt unreachable is not "stopped"**: with libvirtd frozen
//!   (SIGSTOP) the test driver's domain runs on, yet monitor said 7 and stop
//!   0, so the cluster would start it a second time elsewhere. "Stopped"
//!   without libvirt now needs definitive process evidence: a QEMU guest of
//!   this host whose emulator UUID is known (kept while libvirt showed it
//!   running, or fixed by the config; a real QEMU guest checks the first);
//!   any other driver, or a QEMU guest of unknown UUID, is an error (1).
//! - **A URI that cannot parse fails at once** (6, like heartbeat's virsh on
//!   every node) instead of a stop retrying it for most of its timeout.
//! - **migrate_from without a source** names what is missing.
//! - **rgmanager's vm actions**: `restart` and `kill` answer as vm.sh does
//!   (they were 3), and `migrate` of a guest that is not running is vm.sh's
//!   1 (it was 7).
//!
//! Every case runs the agents as processes against a libvirtd of its own
//! (`support::libvirt::Lab`, the test driver; `QemuLab` for the real
//! guest), with the state under the test's directory. A run that hangs is
//! killed by [`within`] and fails the test instead of hanging it.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::libvirt::{kill_and_wait, Lab, QemuLab};
use support::virtualdomain::vm_binary;
use support::{exit_reasons, rc, Agent};

/// Run `agent args`, killing it if it has not exited after `limit`.
/// Returns the exit code and stderr; panics on a hang.
#[track_caller]
fn within(agent: &Agent, args: &[&str], limit: Duration) -> (i32, String) {
    support::run_within(agent.command(args), limit)
        .unwrap_or_else(|hang| panic!("{} {args:?} {hang}", agent.bin().display()))
}

/// `within`, requiring exit code `want` and one exit reason holding `needle`
/// (`""`: any or none).
#[track_caller]
fn answers(agent: &Agent, args: &[&str], want: i32, needle: &str) -> String {
    let (code, err) = within(agent, args, Duration::from_secs(15));
    assert_eq!(code, want, "{args:?}: wanted {want}, got {code}\n{err}");
    if !needle.is_empty() {
        let reasons = exit_reasons(&err);
        assert_eq!(reasons.len(), 1, "one exit reason wanted: {err}");
        assert!(reasons[0].contains(needle), "{needle:?} not in {err}");
    }
    err
}

fn fifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

/// The vm persona as rgmanager runs it, its state under `state`.
fn vm(lab: &Lab, name: &str, timeout_s: u32) -> Agent {
    support::rgmanager::agent(vm_binary(), "vm", name, timeout_s)
        .env("HA_RSCTMP", lab.path().join("rsctmp"))
        .param("hypervisor_uri", lab.daemon.test_uri())
}

#[test]
fn a_config_that_is_a_fifo_or_a_device_never_hangs_and_never_says_stopped() {
    let Some(lab) = Lab::new("hostile-fifo") else {
        return;
    };
    let dom = format!("hvd-fifo-{}", std::process::id());
    let pipe = lab.path().join("vm.fifo");
    fifo(&pipe);
    // nobody ever writes: open(2) of the FIFO would block for good
    let a = lab.agent(&pipe).env("OCF_RESKEY_CRM_meta_timeout", "5000");
    for action in ["monitor", "status", "stop", "start", "validate-all"] {
        answers(
            &a,
            &[action],
            rc::ERR_CONFIGURED,
            "is a FIFO, not a regular file",
        );
    }
    answers(
        &a.clone().recurring(),
        &["monitor"],
        rc::ERR_CONFIGURED,
        "FIFO",
    );
    // /dev/zero: no read until memory runs out
    let zero = lab
        .agent(Path::new("/dev/zero"))
        .env("OCF_RESKEY_CRM_meta_timeout", "5000");
    for action in ["monitor", "stop", "start"] {
        answers(&zero, &[action], rc::ERR_CONFIGURED, "a character device");
    }
    // a regular file of more than 1 MiB
    let big = lab.path().join("big.xml");
    let mut text = format!("<domain type='test'><name>{dom}</name>");
    text.push_str(&" ".repeat(2 << 20));
    text.push_str("</domain>\n");
    std::fs::write(&big, text).unwrap();
    answers(
        &lab.agent(&big),
        &["start"],
        rc::ERR_CONFIGURED,
        "larger than",
    );
    assert_eq!(lab.domstate(&dom), "", "nothing was started");

    // started from a good config, which is then replaced by a FIFO: the
    // domain name recorded at start keeps monitor honest and stop stopping
    let cfg = lab.test_config("vm.xml", &dom);
    let good = lab.agent(&cfg);
    good.expect("start", rc::SUCCESS);
    std::fs::remove_file(&cfg).unwrap();
    fifo(&cfg);
    let a = lab.agent(&cfg).env("OCF_RESKEY_CRM_meta_timeout", "5000");
    answers(&a, &["monitor"], rc::SUCCESS, "");
    answers(&a.clone().recurring(), &["monitor"], rc::SUCCESS, "");
    answers(&a, &["start"], rc::ERR_CONFIGURED, "FIFO");
    assert_eq!(lab.domstate(&dom), "running");
    answers(&a, &["stop"], rc::SUCCESS, "");
    assert_eq!(
        lab.domstate(&dom),
        "",
        "stop stopped it by its recorded name"
    );
    // stopped, the record is gone: nothing tells what the FIFO would name
    answers(&a, &["monitor"], rc::ERR_CONFIGURED, "FIFO");
}

#[test]
fn vm_xmlfile_that_is_a_fifo_goes_by_the_domain_name() {
    let Some(lab) = Lab::new("hostile-vmfifo") else {
        return;
    };
    let dom = format!("hvm-fifo-{}", std::process::id());
    let cfg = lab.test_config("vm.xml", &dom);
    let pipe = lab.path().join("vm.fifo");
    fifo(&pipe);
    let good = vm(&lab, &dom, 10).param("xmlfile", &cfg);
    good.expect("start", rc::SUCCESS);
    let a = vm(&lab, &dom, 5).param("xmlfile", &pipe);
    answers(&a, &["status"], rc::SUCCESS, "");
    answers(&a, &["monitor"], rc::SUCCESS, "");
    answers(&a, &["start"], rc::ERR_CONFIGURED, "is a FIFO");
    answers(&a, &["validate-all"], rc::ERR_CONFIGURED, "is a FIFO");
    answers(&a, &["stop"], rc::SUCCESS, "");
    assert_eq!(lab.domstate(&dom), "", "stopped by its name");
    answers(&a, &["status"], rc::NOT_RUNNING, "");
    answers(
        &vm(&lab, &dom, 5).param("xmlfile", "/dev/zero"),
        &["start"],
        6,
        "character device",
    );
}

/// SIGCONT for a process this test stopped, also when an assertion fails.
struct Frozen(nix::unistd::Pid);

impl Frozen {
    fn freeze(pid: i32) -> Frozen {
        let p = nix::unistd::Pid::from_raw(pid);
        nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGSTOP).unwrap();
        Frozen(p)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

#[test]
fn a_frozen_libvirtd_is_never_taken_for_a_stopped_domain() {
    let Some(lab) = Lab::new("hostile-frozen") else {
        return;
    };
    let dom = format!("hvd-frozen-{}", std::process::id());
    let cfg = lab.test_config("vm.xml", &dom);
    let a = lab.agent(&cfg).env("OCF_RESKEY_CRM_meta_timeout", "3000");
    a.expect("start", rc::SUCCESS);
    let libvirtd = lab.daemon.pid("libvirtd.pid").expect("libvirtd pid");
    let frozen = Frozen::freeze(libvirtd);
    // the test driver's domains live inside libvirtd: no process of this
    // host can tell whether it runs
    answers(&a, &["monitor"], rc::ERR_GENERIC, "cannot tell whether");
    answers(
        &a.clone().recurring(),
        &["monitor"],
        rc::ERR_GENERIC,
        "unreachable",
    );
    answers(&a, &["status"], rc::ERR_GENERIC, "unreachable");
    answers(&a, &["stop"], rc::ERR_GENERIC, "cannot stop");
    let vm_stop = vm(&lab, &dom, 3).param("xmlfile", &cfg);
    answers(&vm_stop, &["stop"], rc::ERR_GENERIC, "cannot stop");
    answers(&vm_stop, &["status"], rc::ERR_GENERIC, "unreachable");
    drop(frozen);
    assert_eq!(lab.domstate(&dom), "running", "it ran all along");
    a.expect("monitor", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    a.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn qemu_without_libvirtd_an_emulator_gone_by_its_uuid_is_stopped() {
    let Some(lab) = QemuLab::new("hostile-uuid", 1) else {
        return;
    };
    let cfg = lab.config("vm.xml", "");
    let a = lab.agent(0, &cfg);
    a.expect("start", rc::SUCCESS);
    let qemu = lab.emulators();
    assert_eq!(qemu.len(), 1);
    lab.daemons[0].kill_libvirtd();
    // running: found by its name and UUID
    answers(&a, &["monitor"], rc::SUCCESS, "");
    let short = a.clone().env("OCF_RESKEY_CRM_meta_timeout", "3000");
    answers(&short, &["stop"], rc::ERR_GENERIC, "its emulator runs");
    // the emulator dies with libvirtd away: no process with its UUID is
    // definitive for this host's QEMU driver
    for pid in qemu {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        kill_and_wait(pid);
    }
    assert!(lab.emulators().is_empty());
    answers(&a, &["monitor"], rc::NOT_RUNNING, "");
    answers(&short, &["stop"], rc::SUCCESS, "");
    answers(&a, &["monitor"], rc::NOT_RUNNING, "");
}

/// No daemon at all behind the URI (connection refused at once), a guest
/// never started here: only a QEMU guest of this host whose config fixes
/// its UUID can be called stopped from the process table.
#[test]
fn without_libvirt_only_a_known_qemu_uuid_proves_stopped() {
    if !support::virtualdomain::have_libvirtd() {
        return;
    }
    let dir = support::tempdir("hostile-nouuid");
    let sock = dir.path().join("no-daemon-here");
    let dom = format!("hvd-nouuid-{}", std::process::id());
    let config = |file: &str, kind: &str, uuid: &str| {
        let p = dir.path().join(file);
        std::fs::write(
            &p,
            format!(
                "<domain type='{kind}'><name>{dom}</name>{uuid}<memory>8192</memory>\
                 <os><type>hvm</type></os></domain>\n"
            ),
        )
        .unwrap();
        p
    };
    let uuid = "<uuid>0d6c1f4e-9a3b-4c2d-8e1f-a0b1c2d3e4f5</uuid>";
    let qemu = format!("qemu+unix:///system?socket={}", sock.display());
    let test = format!("test+unix:///default?socket={}", sock.display());
    let agent = |cfg: &Path, uri: &str| {
        support::libvirt::vd_agent(dir.path(), cfg, uri).env("OCF_RESKEY_CRM_meta_timeout", "3000")
    };
    // QEMU, UUID in the config, no emulator with it: stopped
    let known = agent(&config("known.xml", "kvm", uuid), &qemu);
    answers(&known, &["monitor"], rc::NOT_RUNNING, "");
    answers(&known, &["stop"], rc::SUCCESS, "");
    // QEMU without a UUID anywhere: a wrapper-named emulator would go
    // unseen, so nothing is proven
    let unknown = agent(&config("unknown.xml", "kvm", ""), &qemu);
    answers(
        &unknown,
        &["monitor"],
        rc::ERR_GENERIC,
        "no emulator UUID is known",
    );
    answers(&unknown, &["stop"], rc::ERR_GENERIC, "cannot stop");
    // another driver: its guests are no processes here, UUID or not
    let other = agent(&config("test.xml", "test", uuid), &test);
    answers(
        &other,
        &["monitor"],
        rc::ERR_GENERIC,
        "are not processes of this host",
    );
    answers(
        &other.clone().recurring(),
        &["monitor"],
        rc::ERR_GENERIC,
        "",
    );
    answers(&other, &["stop"], rc::ERR_GENERIC, "cannot stop");
    // a remote QEMU URI: the same
    let remote = agent(
        &config("remote.xml", "kvm", uuid),
        "qemu+tcp://192.0.2.1:1/system",
    );
    let (code, err) = within(&remote, &["monitor"], Duration::from_secs(15));
    assert_eq!(code, rc::ERR_GENERIC, "{err}");
}

#[test]
fn an_unparseable_hypervisor_uri_fails_at_once_with_6() {
    let Some(lab) = Lab::new("hostile-uri") else {
        return;
    };
    let dom = format!("hvm-uri-{}", std::process::id());
    let cfg = lab.test_config("vm.xml", &dom);
    // rgmanager's stop timeout is 120 s; the old stop retried for 103 s
    let limit = Duration::from_secs(5);
    for uri in ["qemu:///system with space", "::::", "qemu+bogus:///system"] {
        let v = vm(&lab, &dom, 20)
            .param("xmlfile", &cfg)
            .param("hypervisor_uri", uri);
        for action in ["stop", "status", "start"] {
            let t = Instant::now();
            answers(&v, &[action], rc::ERR_CONFIGURED, "cannot be used");
            assert!(t.elapsed() < limit, "{uri} {action}: {:?}", t.elapsed());
        }
        let (code, _) = within(&v, &["migrate", "nodeb"], limit);
        assert_eq!(code, rc::ERR_CONFIGURED, "{uri} migrate");
        let vd = lab.agent(&cfg).param("hypervisor", uri);
        for action in ["stop", "monitor"] {
            let t = Instant::now();
            answers(&vd, &[action], rc::ERR_CONFIGURED, "cannot be used");
            assert!(t.elapsed() < limit, "{uri} {action}: {:?}", t.elapsed());
        }
    }
}

#[test]
fn migrate_from_without_a_source_names_what_is_missing() {
    let Some(lab) = Lab::new("hostile-mfrom") else {
        return;
    };
    let cfg = lab.test_config("vm.xml", &format!("hvd-mfrom-{}", std::process::id()));
    let a = lab.agent(&cfg).env("OCF_RESKEY_CRM_meta_timeout", "2000");
    let err = answers(
        &a,
        &["migrate_from"],
        rc::ERR_GENERIC,
        "OCF_RESKEY_CRM_meta_migrate_source is not set",
    );
    assert!(!err.contains("from ?"), "{err}");
}

#[test]
fn vm_restart_kill_and_migrate_answer_as_vm_sh() {
    let Some(lab) = Lab::new("hostile-vmacts") else {
        return;
    };
    let dom = format!("hvm-acts-{}", std::process::id());
    let cfg = lab.test_config("vm.xml", &dom);
    let a = vm(&lab, &dom, 20).param("xmlfile", &cfg);
    // restart: vm.sh answers 0 and leaves the VM alone
    a.expect("restart", rc::SUCCESS);
    assert_eq!(lab.domstate(&dom), "");
    a.expect("start", rc::SUCCESS);
    a.expect("restart", rc::SUCCESS);
    assert_eq!(lab.domstate(&dom), "running");
    // kill: destroy at once, no_kill or not (vm.sh's `do_stop destroy`)
    let err = answers(&a.clone().param("no_kill", "1"), &["kill"], rc::SUCCESS, "");
    assert!(err.contains("destroy"), "{err}");
    assert!(!err.contains("graceful shutdown"), "{err}");
    assert_eq!(lab.domstate(&dom), "");
    a.expect("kill", rc::SUCCESS);
    a.expect("status", rc::NOT_RUNNING);
    // migrate of a domain libvirt has defined but that does not run:
    // vm.sh's virsh migrate fails and its status check finds nothing: 1
    let uri = lab.daemon.test_uri();
    assert!(lab
        .daemon
        .virsh_ok(&uri, &["define", cfg.to_str().unwrap()]));
    let (code, err) = within(&a, &["migrate", "nodeb"], Duration::from_secs(15));
    let _ = lab.daemon.virsh_ok(&uri, &["undefine", &dom]);
    assert_eq!(code, rc::ERR_GENERIC, "{err}");
    assert!(err.contains("not running"), "{err}");
}
