//! The rgmanager `vm` persona, run exactly as rgmanager runs vm.sh.
//!
//! rgmanager's `build_env` (restree.c) gives the agent nothing but OCF
//! variables: no PATH, `OCF_RESOURCE_INSTANCE=vm:<name>`, `OCF_CHECK_LEVEL`,
//! `OCF_RESKEY_<attr>` and `OCF_RESKEY_RGMANAGER_meta_timeout` in seconds;
//! `migrate` gets the target member as its second argument
//! (`support::rgmanager::agent`). The binary is built in the VirtualDomain
//! workspace (it links libvirt; `support::virtualdomain::vm_binary`).
//!
//! Real components: a libvirtd + virtlogd of the test's own per case
//! (`support::libvirt::Lab`, the test driver inside it) and, for migration,
//! two such daemons running one real QEMU (TCG) guest (`QemuLab`), booted
//! once for every migrate case. The fixtures destroy guests and stop the
//! daemons in `Drop`, also when an assertion fails. Without libvirtd the
//! cases print SKIP (without QEMU the guest case does, unless
//! RA_REQUIRE_GUEST is set).

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use predicates::str::contains;
use support::libvirt::{emulator_pids, Lab, QemuLab, BOOT_LIMIT, POWER_BUTTON, READY};
use support::rgmanager::{assert_only_ocf, depth, get};
use support::virtualdomain::{have_libvirtd, vm_binary};
use support::{rc, Agent};

/// rgmanager's RG_ERELO: migration failed, the VM still runs on the source.
const STILL_ON_SOURCE: i32 = 150;

/// What rgmanager passes for `vm:<name>`.
fn rgmanager(name: &str, timeout_s: u32) -> Agent {
    support::rgmanager::agent(vm_binary(), "vm", name, timeout_s)
}

/// A run's stderr.
fn stderr(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).into_owned()
}

/// Exactly one exit reason on stderr, on one line, holding `needle`; a
/// configuration error prints nothing else.
#[track_caller]
fn one_line(out: assert_cmd::assert::Assert, needle: &str) {
    let err = stderr(&out);
    let reasons: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("ocf-exit-reason:"))
        .collect();
    assert_eq!(reasons.len(), 1, "{err}");
    assert!(reasons[0].contains(needle), "{needle:?} not in {err}");
    if out.get_output().status.code() == Some(rc::ERR_CONFIGURED) {
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

/// A status program that records its arguments (one per line) in
/// `DIR/args` and exits with the number in `DIR/rc` (0 when missing).
/// Test-side shell only: the agent runs it as an argument vector.
fn probe(dir: &Path) -> PathBuf {
    let p = dir.join("probe");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{d}/args'\nrc=0\n[ -f '{d}/rc' ] && read rc < '{d}/rc'\nexit $rc\n",
            d = dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}

#[test]
fn meta_data_carries_the_rgmanager_extensions_of_vm_sh() {
    if !have_libvirtd() {
        return;
    }
    // the DTD's structure, one primary `name`: checked by the reader
    let m = support::rgmanager::meta_data(vm_binary(), "vm");
    let xml = &m.xml;
    // vm.sh's parameters, in its order
    assert_eq!(
        m.param_names(),
        [
            "name",
            "domain",
            "autostart",
            "exclusive",
            "recovery",
            "migration_mapping",
            "use_virsh",
            "xmlfile",
            "migrate",
            "migrate_options",
            "tunnelled",
            "path",
            "snapshot",
            "depend",
            "depend_mode",
            "max_restarts",
            "restart_expire_time",
            "status_program",
            "hypervisor",
            "hypervisor_uri",
            "migration_uri",
            "no_kill"
        ]
    );
    // the service attributes rgmanager may change at runtime
    let reconfig: Vec<&str> = m
        .params
        .iter()
        .filter(|p| get(p, "reconfig") == Some("1"))
        .filter_map(|p| get(p, "name"))
        .collect();
    assert_eq!(
        reconfig,
        [
            "domain",
            "autostart",
            "exclusive",
            "recovery",
            "migration_mapping",
            "depend",
            "depend_mode",
            "max_restarts",
            "restart_expire_time",
            "status_program"
        ]
    );
    for n in ["xmlfile", "path", "hypervisor_uri"] {
        assert_eq!(get(m.param(n), "reconfig"), None, "{n}");
    }
    // defaults as vm.sh's
    for (n, d) in [
        ("migrate", "live"),
        ("hypervisor", "auto"),
        ("hypervisor_uri", "auto"),
        ("migration_uri", "auto"),
        ("autostart", "1"),
        ("depend_mode", "hard"),
    ] {
        let want = format!("<parameter name=\"{n}\"");
        let at = xml.find(&want).unwrap_or_else(|| panic!("{n}"));
        let block = &xml[at..at + xml[at..].find("</parameter>").unwrap()];
        assert!(block.contains(&format!("default=\"{d}\"")), "{block}");
    }

    // actions: vm.sh's timeouts and status schedule, plus what we add
    assert_eq!(
        m.schedule("status"),
        [
            (None, Some("10s"), Some("30s")),
            (Some("10"), Some("20s"), Some("60s"))
        ]
    );
    assert_eq!(m.schedule("monitor"), m.schedule("status"));
    for (n, t) in [
        ("start", "300s"),
        ("stop", "120s"),
        ("migrate", "600s"),
        ("reconfig", "10s"),
        ("meta-data", "5s"),
        ("validate-all", "5s"),
        ("recover", "420s"),
        ("reload", "10s"),
        ("verify-all", "5s"),
    ] {
        assert_eq!(m.schedule(n), [(None, Some(t), None)], "{n}");
    }
    assert_eq!(m.special.len(), 1);
    assert_eq!(m.special[0].0, "attributes");
    assert_eq!(get(&m.special[0].1, "maxinstances"), Some("1"));
}

#[test]
fn lifecycle_on_the_test_driver_with_a_status_program_and_no_shell() {
    let Some(lab) = Lab::new("rgmvm-life") else {
        return;
    };
    let dom = format!("rgmvm-life-{}", std::process::id());
    let cfg = lab.test_config("life.xml", &dom);
    let probe = probe(lab.path());
    let args = lab.path().join("args");
    let pwned = lab.path().join("pwned");
    // quotes, $(...) and ; are words like any other: no shell runs it
    let program = format!(
        "{} 'a b' \"c\" $(touch {}) ;x",
        probe.display(),
        pwned.display()
    );
    let a = rgmanager(&dom, 20)
        .param("xmlfile", &cfg)
        .param("hypervisor_uri", lab.daemon.test_uri())
        .param("status_program", &program);
    assert_only_ocf(&a);

    a.expect("status", rc::NOT_RUNNING);
    depth(&a, 10).expect("status", rc::NOT_RUNNING);
    assert!(!args.exists(), "status_program ran for a stopped VM");
    a.expect("start", rc::SUCCESS);
    assert_eq!(lab.domstate(&dom), "running");
    let seen = std::fs::read_to_string(&args).expect("start waits for the status program");
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        [
            "'a",
            "b'",
            "\"c\"",
            "$(touch",
            &format!("{})", pwned.display()),
            ";x"
        ]
    );
    assert!(!pwned.exists(), "a shell ran the status program");
    a.expect("start", rc::SUCCESS);
    std::fs::remove_file(&args).unwrap();

    // depth 0: the domain only; depth 10: the status program too
    a.expect("status", rc::SUCCESS);
    a.expect("monitor", rc::SUCCESS);
    assert!(!args.exists(), "depth 0 ran the status program");
    depth(&a, 10).expect("status", rc::SUCCESS);
    assert!(args.exists(), "depth 10 did not run the status program");
    std::fs::write(lab.path().join("rc"), "3\n").unwrap();
    one_line(
        depth(&a, 10).expect("status", rc::ERR_GENERIC),
        "status_program",
    );
    depth(&a, 10).expect("monitor", rc::ERR_GENERIC);
    a.expect("status", rc::SUCCESS);
    // a program that is not there fails the check and validate-all
    let missing = a
        .clone()
        .param("status_program", "/nonexistent/check --now");
    depth(&missing, 10)
        .expect("status", rc::ERR_GENERIC)
        .stderr(contains("/nonexistent/check"));
    missing.expect("validate-all", rc::ERR_INSTALLED);
    std::fs::remove_file(lab.path().join("rc")).unwrap();

    for action in ["reload", "reconfig", "verify-all", "validate-all"] {
        a.expect(action, rc::SUCCESS);
    }
    a.expect("recover", rc::SUCCESS);
    assert_eq!(lab.domstate(&dom), "running");

    a.expect("stop", rc::SUCCESS);
    assert_eq!(lab.domstate(&dom), "", "the transient domain is gone");
    a.expect("stop", rc::SUCCESS);
    a.expect("status", rc::NOT_RUNNING);

    // start waits for the status program, inside rgmanager's timeout
    std::fs::write(lab.path().join("rc"), "1\n").unwrap();
    let t = Instant::now();
    one_line(
        a.clone()
            .env("OCF_RESKEY_RGMANAGER_meta_timeout", "3")
            .expect("start", rc::ERR_GENERIC),
        "status_program",
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    a.expect("stop", rc::SUCCESS);
    assert_eq!(lab.domstate(&dom), "");
}

#[test]
fn path_search_and_domains_defined_in_libvirt() {
    let Some(lab) = Lab::new("rgmvm-path") else {
        return;
    };
    let uri = lab.daemon.test_uri();
    let pid = std::process::id();
    let on = |a: &Agent| a.clone().param("hypervisor_uri", &uri);

    // NAME.xml in the second directory of path
    let dom = format!("rgmvm-path-{pid}");
    let (d1, d2) = (lab.path().join("d1"), lab.path().join("d2"));
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    std::fs::rename(
        lab.test_config("p.xml", &dom),
        d2.join(format!("{dom}.xml")),
    )
    .unwrap();
    let search = format!("/nonexistent:{}:{}", d1.display(), d2.display());
    let a = on(&rgmanager(&dom, 20)).param("path", &search);
    a.expect("validate-all", rc::SUCCESS);
    a.expect("start", rc::SUCCESS);
    assert_eq!(lab.domstate(&dom), "running");
    a.expect("status", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    assert_eq!(lab.domstate(&dom), "");
    // NAME (no .xml) earlier on the path wins; one that is not XML is an
    // xm config, which this agent refuses
    std::fs::write(d1.join(&dom), "name = 'x'\nmemory = 128\n").unwrap();
    for action in ["start", "status", "stop", "validate-all"] {
        one_line(a.expect(action, rc::ERR_CONFIGURED), "not libvirt XML");
    }
    std::fs::copy(d2.join(format!("{dom}.xml")), d1.join(&dom)).unwrap();
    a.expect("start", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);

    // no file anywhere: the domain libvirt has defined (virsh start NAME)
    let def = format!("rgmvm-defined-{pid}");
    let cfg = lab.test_config("defined.xml", &def);
    assert!(lab
        .daemon
        .virsh_ok(&uri, &["define", cfg.to_str().unwrap()]));
    std::fs::remove_file(&cfg).unwrap();
    let d = on(&rgmanager(&def, 20)).param("path", &search);
    d.expect("status", rc::NOT_RUNNING);
    d.expect("validate-all", rc::SUCCESS);
    d.expect("start", rc::SUCCESS);
    assert_eq!(lab.domstate(&def), "running");
    d.expect("start", rc::SUCCESS);
    d.expect("status", rc::SUCCESS);
    d.expect("stop", rc::SUCCESS);
    assert_eq!(lab.domstate(&def), "shut off", "still defined, stopped");
    d.expect("status", rc::NOT_RUNNING);
    // migrate: defined but not running is 1, as vm.sh's
    d.command(&["migrate", "nodeb"])
        .assert()
        .code(rc::ERR_GENERIC)
        .stderr(contains("not running"));

    // nothing at all: start and validate-all say so in one line; status
    // and stop have nothing to do; migrate has no domain (6)
    let none = on(&rgmanager(&format!("rgmvm-none-{pid}"), 20)).param("path", &search);
    one_line(
        none.expect("start", rc::ERR_CONFIGURED),
        "libvirt has no domain",
    );
    one_line(
        none.expect("validate-all", rc::ERR_CONFIGURED),
        "libvirt has no domain",
    );
    none.expect("status", rc::NOT_RUNNING);
    none.expect("stop", rc::SUCCESS);
    none.command(&["migrate", "nodeb"])
        .assert()
        .code(rc::ERR_CONFIGURED)
        .stderr(contains("does not exist"));
    let _ = lab.daemon.virsh_ok(&uri, &["undefine", &def]);

    // an xmlfile that is gone (shared storage away): start names it, no
    // stale definition is started instead; status and stop go by name
    let gone = on(&rgmanager(&def, 20)).param("xmlfile", "/nonexistent/vm.xml");
    one_line(
        gone.expect("start", rc::ERR_INSTALLED),
        "/nonexistent/vm.xml",
    );
    gone.expect("status", rc::NOT_RUNNING);
    gone.expect("stop", rc::SUCCESS);
    a.expect("start", rc::SUCCESS);
    let running = on(&rgmanager(&dom, 20)).param("xmlfile", "/nonexistent/vm.xml");
    running.expect("status", rc::SUCCESS);
    running.expect("stop", rc::SUCCESS);
    assert_eq!(lab.domstate(&dom), "", "stopped by name");
    // and the record of the start under its config goes too
    a.expect("stop", rc::SUCCESS);
}

#[test]
fn bad_parameters_are_one_line_and_6_for_every_action() {
    let Some(lab) = Lab::new("rgmvm-bad") else {
        return;
    };
    let dom = format!("rgmvm-bad-{}", std::process::id());
    let cfg = lab.test_config("bad.xml", &dom);
    let other = lab.test_config("other.xml", "someone-else");
    let a = rgmanager(&dom, 10)
        .param("xmlfile", &cfg)
        .param("hypervisor_uri", lab.daemon.test_uri());
    let cases: Vec<(Agent, &str)> = vec![
        (a.clone().unset("OCF_RESKEY_name"), "name"),
        (a.clone().param("use_virsh", "0"), "use_virsh"),
        (a.clone().param("migrate", "fast"), "migrate"),
        (a.clone().param("hypervisor", "lxc"), "hypervisor"),
        (a.clone().param("xmlfile", "vm.xml"), "xmlfile"),
        (a.clone().param("no_kill", "maybe"), "no_kill"),
        (
            a.clone().param("migration_mapping", "nodea"),
            "migration_mapping",
        ),
        (
            a.clone().param("migrate_options", "--bogus"),
            "migrate_options",
        ),
        (a.clone().param("xmlfile", &other), "someone-else"),
    ];
    for (agent, needle) in &cases {
        // stop needs only what names the domain; any other malformed value
        // takes its default with a warning (tests/hostile_stop.rs)
        let identity = ["name", "xmlfile", "someone-else"].contains(needle);
        for action in ["start", "stop", "status", "validate-all"] {
            if action == "stop" && !identity {
                agent.expect(action, rc::SUCCESS);
                continue;
            }
            one_line(agent.expect(action, rc::ERR_CONFIGURED), needle);
        }
        one_line(
            agent
                .command(&["migrate", "nodeb"])
                .assert()
                .code(rc::ERR_CONFIGURED),
            needle,
        );
    }
    assert_eq!(lab.domstate(&dom), "", "nothing was started");
    a.param("use_virsh", "1")
        .expect("validate-all", rc::SUCCESS);
    rgmanager(&dom, 10).expect("migrate", rc::ERR_ARGS);
    rgmanager(&dom, 10).expect("frobnicate", rc::ERR_UNIMPLEMENTED);
}

#[test]
fn migrate_failure_before_moving_is_150_on_the_test_driver() {
    let Some(lab) = Lab::new("rgmvm-150") else {
        return;
    };
    let dom = format!("rgmvm-150-{}", std::process::id());
    let cfg = lab.test_config("m.xml", &dom);
    let a = rgmanager(&dom, 20)
        .param("xmlfile", &cfg)
        .param("hypervisor_uri", lab.daemon.test_uri())
        .param("migration_mapping", "nodeb:no-such-host")
        .param(
            "migration_uri",
            format!(
                "test+unix:///default?socket={}/%s/sock",
                lab.path().display()
            ),
        );
    a.expect("start", rc::SUCCESS);
    let out = a
        .command(&["migrate", "nodeb"])
        .assert()
        .code(STILL_ON_SOURCE);
    let err = stderr(&out);
    assert!(err.contains("no-such-host/sock"), "mapped target: {err}");
    assert!(err.contains("still running here"), "{err}");
    assert_eq!(lab.domstate(&dom), "running");
    a.expect("status", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    // not running any more: 6 (a transient domain is gone with its stop)
    a.command(&["migrate", "nodeb"])
        .assert()
        .code(rc::ERR_CONFIGURED);
}

/// One real guest for every migrate case: member names mapped to loopback
/// addresses (`migration_mapping`), `migration_uri` with `%s` reaching the
/// target's daemon through a socket named after the address, and the memory
/// stream to `tcp:<address>` (vm.sh's qemu default).
#[test]
fn qemu_migrate_to_the_mapped_member_and_back_and_150_when_it_fails() {
    let Some(lab) = QemuLab::new("rgmvm", 2) else {
        return;
    };
    let cfg = lab.config("vm.xml", "");
    let sockets = lab.path().join("sockets");
    std::fs::create_dir_all(&sockets).unwrap();
    let hosts = ["127.0.0.2", "127.0.0.3"];
    for (h, addr) in hosts.iter().enumerate() {
        std::os::unix::fs::symlink(lab.daemons[h].socket(), sockets.join(addr)).unwrap();
    }
    let node = |h: usize| {
        rgmanager(&lab.name, 60)
            .param("xmlfile", &cfg)
            .param("hypervisor_uri", lab.daemons[h].qemu_uri())
            .param("migration_mapping", "nodea:127.0.0.2,nodeb:127.0.0.3")
            .param(
                "migration_uri",
                format!("qemu+unix:///system?socket={}/%s", sockets.display()),
            )
    };
    let (a, b) = (node(0), node(1));
    assert_only_ocf(&a);
    let migrate = |agent: &Agent, member: &str, code: i32| {
        let t = Instant::now();
        let out = agent.command(&["migrate", member]).assert().code(code);
        eprintln!("migrate {member}: {code} after {:?}", t.elapsed());
        stderr(&out)
    };

    a.expect("start", rc::SUCCESS);
    lab.wait_serial(0, READY, BOOT_LIMIT);
    b.expect("status", rc::NOT_RUNNING);
    // not on B: nothing to migrate there
    let err = migrate(&b, "nodea", rc::ERR_CONFIGURED);
    assert!(err.contains("does not exist"), "{err}");

    // failures that leave the guest running on A: 150
    // - the target daemon is A's own (libvirt refuses the same host)
    let err = migrate(&a, "nodea", STILL_ON_SOURCE);
    assert!(err.contains("same host"), "{err}");
    assert!(err.contains("still running here"), "{err}");
    assert_eq!(lab.domstate(0), "running");
    // - a paused migration whose target cannot listen: suspended, failed,
    //   resumed
    let err = migrate(
        &a.clone()
            .param("migrate", "pause")
            .param("migrate_options", "--listen-address 192.0.2.1"),
        "nodeb",
        STILL_ON_SOURCE,
    );
    assert!(err.contains("still running here"), "{err}");
    assert_eq!(lab.domstate(0), "running", "resumed after the failure");
    assert_eq!(lab.domstate(1), "");
    a.expect("status", rc::SUCCESS);

    // A -> B -> A live and paused, then again tunnelled through the
    // daemons (--tunnelled --p2p): rgmanager only runs migrate on the
    // source; the guest runs on the target afterwards
    for (from, to, member, mode, tunnelled) in [
        (0, 1, "nodeb", "live", "0"),
        (1, 0, "nodea", "pause", "0"),
        (0, 1, "nodeb", "live", "1"),
        (1, 0, "nodea", "pause", "1"),
    ] {
        let src = node(from)
            .param("migrate", mode)
            .param("tunnelled", tunnelled);
        let log = migrate(&src, member, rc::SUCCESS);
        let how = if mode == "live" { "live" } else { "offline" };
        let stream = if tunnelled == "1" {
            "(libvirt's choice)".to_string()
        } else {
            format!("tcp:{}", hosts[to])
        };
        let remote = format!("{}/{}", sockets.display(), hosts[to]);
        for want in [format!("Starting {how} migration to {member}"), remote] {
            assert!(log.contains(&want), "{want:?} not in {log}");
        }
        assert!(log.contains(&format!("migrate URI {stream})")), "{log}");
        assert_eq!(lab.domstate(to), "running", "{mode} to {member}");
        assert_eq!(lab.domstate(from), "", "gone from the source");
        assert_eq!(emulator_pids(&lab.name).len(), 1);
        node(from).expect("status", rc::NOT_RUNNING);
        depth(&node(to), 10).expect("status", rc::SUCCESS);
    }

    // no_kill: a guest that does not shut down (paused here) is not
    // destroyed; the stop fails inside rgmanager's timeout
    assert!(lab.daemons[0].virsh_ok(&lab.daemons[0].qemu_uri(), &["suspend", &lab.name]));
    let t = Instant::now();
    one_line(
        a.clone()
            .param("no_kill", "1")
            .env("OCF_RESKEY_RGMANAGER_meta_timeout", "3")
            .expect("stop", rc::ERR_GENERIC),
        "no_kill",
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(lab.domstate(0), "paused", "no_kill destroyed the guest");
    assert_eq!(emulator_pids(&lab.name).len(), 1);
    assert!(lab.daemons[0].virsh_ok(&lab.daemons[0].qemu_uri(), &["resume", &lab.name]));

    // the guest kept running through every move: it answers the power
    // button on A (no destroy; it may already have taken the press of the
    // no_kill stop on resume)
    let out = a.expect("stop", rc::SUCCESS);
    assert!(lab.serial(0).contains(POWER_BUTTON), "{}", lab.serial(0));
    assert!(!stderr(&out).contains("destroy"), "{}", stderr(&out));
    assert!(emulator_pids(&lab.name).is_empty());
    a.expect("status", rc::NOT_RUNNING);
}
