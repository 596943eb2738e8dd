//! The VirtualDomain agent as a process, against real libvirt daemons the
//! tests start themselves.
//!
//! Each test starts its own libvirtd + virtlogd (`support::libvirt::Lab`,
//! a daemon in a private mount namespace with the test driver kept alive)
//! so nothing touches the node's own libvirt and tests run side by side.
//! Tests are skipped (with a message) where libvirtd is not installed.
//!
//! The `qemu_*` cases run real QEMU (TCG) guests in those daemons
//! (`support::libvirt::QemuLab`; the guest and its limits are described
//! there).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::libvirt::*;
use support::virtualdomain::{have_libvirtd, vd_binary, vd_example};
use support::xml::{self, XmlWriter};
use support::{bench_line, bench_start_stop, rc, tempdir, timed, Agent};

#[test]
fn meta_data_needs_nothing_and_lists_every_parameter() {
    if !have_libvirtd() {
        return;
    }
    let dir = tempdir("vd-meta");
    let out = Agent::new(vd_binary(), dir.path())
        .expect("meta-data", rc::SUCCESS)
        .get_output()
        .stdout
        .clone();
    let xml = String::from_utf8(out).unwrap();
    assert!(xml.contains("<resource-agent name=\"VirtualDomain\""));
    assert!(xml.contains("<parameter name=\"shutdown_mode\""));
    // no environment at all: config is required
    Agent::new(vd_binary(), dir.path()).expect("monitor", rc::ERR_CONFIGURED);
}

#[test]
fn lifecycle_on_the_test_driver() {
    let Some(lab) = Lab::new("life") else { return };
    let cfg = lab.test_config("vm1.xml", "vdlife");
    let a = lab.agent(&cfg);
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("validate-all", rc::SUCCESS);
    a.expect("start", rc::SUCCESS);
    assert_eq!(lab.domstate("vdlife"), "running");
    a.expect("start", rc::SUCCESS);
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    a.expect("status", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    assert!(!lab
        .daemon
        .virsh(&lab.daemon.test_uri(), &["list", "--name"])
        .contains("vdlife"));
    a.expect("monitor", rc::NOT_RUNNING);
    assert!(timed(&a, "stop", rc::SUCCESS) < Duration::from_secs(3));
    // force_stop destroys at once
    a.expect("start", rc::SUCCESS);
    a.clone()
        .param("force_stop", "true")
        .expect("stop", rc::SUCCESS);
    a.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn a_paused_domain_is_running_and_a_stale_definition_is_replaced() {
    let Some(lab) = Lab::new("paused") else {
        return;
    };
    let cfg = lab.test_config("vm.xml", "vdpaused");
    let a = lab.agent(&cfg);
    // a persistent, inactive definition of the same name: start undefines
    // it and creates ours (heartbeat's verify_undefined), keeping config
    let uri = lab.daemon.test_uri();
    assert!(lab
        .daemon
        .virsh_ok(&uri, &["define", cfg.to_str().unwrap()]));
    a.expect("start", rc::SUCCESS);
    assert!(cfg.exists());
    assert!(lab.daemon.virsh_ok(&uri, &["suspend", "vdpaused"]));
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    a.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn missing_config_on_shared_storage() {
    let Some(lab) = Lab::new("noconf") else {
        return;
    };
    let missing = lab.path().join("gone/vm.xml");
    let a = lab.agent(&missing);
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("stop", rc::SUCCESS);
    a.clone().recurring().expect("monitor", rc::ERR_GENERIC);
    a.expect("start", rc::ERR_INSTALLED);
    a.expect("validate-all", rc::ERR_INSTALLED);

    // Started here, then the config vanishes: the recorded name keeps the
    // probe honest (no double start) and stop really stops.
    let cfg = lab.test_config("vm2.xml", "vdshared");
    let b = lab.agent(&cfg);
    b.expect("start", rc::SUCCESS);
    std::fs::remove_file(&cfg).unwrap();
    b.expect("monitor", rc::SUCCESS);
    b.expect("stop", rc::SUCCESS);
    assert_ne!(lab.domstate("vdshared"), "running");
    b.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn bad_parameters_are_not_configured() {
    let Some(lab) = Lab::new("badparam") else {
        return;
    };
    let cfg = lab.test_config("vm.xml", "vdbad");
    let a = lab.agent(&cfg);
    for (k, v) in [
        ("shutdown_mode", "reboot"),
        ("migrate_options", "--no-such-option"),
        ("migration_speed", "fast"),
        ("stateless", "true"),
        ("config", "relative.xml"),
    ] {
        a.clone().param(k, v).expect("start", rc::ERR_CONFIGURED);
    }
    a.clone()
        .param("force_stop", "1")
        .param("snapshot", lab.path())
        .recurring()
        .expect("monitor", rc::ERR_CONFIGURED);
    // broken XML: start fails as not installed (heartbeat: 5), stop is 0
    std::fs::write(&cfg, "<domain><name>x</nam>").unwrap();
    a.expect("start", rc::ERR_INSTALLED);
    a.expect("stop", rc::SUCCESS);
}

#[test]
fn names_and_paths_with_spaces_quotes_and_percent_are_literal() {
    let Some(lab) = Lab::new("quote") else { return };
    let dir = lab.path().join("my vms; $(id) 'q' %n");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = lab.test_config("my vms; $(id) 'q' %n/vm 1.xml", "web & 'db' %n;x");
    let a = lab.agent(&cfg);
    a.expect("start", rc::SUCCESS);
    assert_eq!(lab.domstate("web & 'db' %n;x"), "running");
    a.expect("monitor", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    a.expect("monitor", rc::NOT_RUNNING);
    assert!(dir.exists());
}

#[test]
fn every_wait_is_bounded_migrate_from_and_libvirtd_down() {
    let Some(lab) = Lab::new("bounded") else {
        return;
    };
    let cfg = lab.test_config("vm.xml", "vdbound");
    let a = lab.agent(&cfg);
    // migrate_from for a domain that never arrives
    let mf = a
        .clone()
        .env("OCF_RESKEY_CRM_meta_timeout", "3000")
        .env("OCF_RESKEY_CRM_meta_migrate_source", "nodeA");
    let took = timed(&mf, "migrate_from", rc::ERR_GENERIC);
    assert!(took < Duration::from_secs(4), "{took:?}");
    // migrate_to without a target, and of a stopped domain
    a.expect("migrate_to", rc::ERR_GENERIC);
    a.clone()
        .env("OCF_RESKEY_CRM_meta_migrate_target", "nodeB")
        .expect("migrate_to", rc::ERR_GENERIC);

    // libvirtd down: the test driver's domains are no processes here, so
    // nothing proves this one stopped: monitor and stop fail (never 7 or 0,
    // tests/hostile_virtualdomain.rs), each at once or inside its deadline
    lab.daemon.kill_libvirtd();
    assert!(timed(&a, "monitor", rc::ERR_GENERIC) < Duration::from_secs(3));
    a.clone().recurring().expect("monitor", rc::ERR_GENERIC);
    let s = a.clone().env("OCF_RESKEY_CRM_meta_timeout", "3000");
    assert!(timed(&s, "stop", rc::ERR_GENERIC) < Duration::from_secs(4));
    assert!(timed(&s, "start", rc::ERR_GENERIC) < Duration::from_secs(4));
}

#[test]
fn validate_all_depth_10_warns_about_unsafe_migration() {
    let Some(lab) = Lab::new("validate") else {
        return;
    };
    let cfg = lab.path().join("vm.xml");
    std::fs::write(
        &cfg,
        "<domain type='test'><name>vdval</name><memory>8192</memory><os><type>hvm</type></os>\
         <devices><disk type='file' device='disk'><driver name='qemu' cache='writeback'/>\
         <source file='/shared/vm.img'/><target dev='vda'/></disk></devices></domain>",
    )
    .unwrap();
    let a = lab
        .agent(&cfg)
        .env("OCF_RESKEY_CRM_meta_allow_migrate", "true");
    let out = a
        .clone()
        .check_level(10)
        .expect("validate-all", rc::SUCCESS);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("cache='writeback'"), "{err}");
    assert!(err.contains("not on shared storage"), "{err}");
    let out = a.expect("validate-all", rc::SUCCESS);
    assert!(!String::from_utf8_lossy(&out.get_output().stderr).contains("WARNING"));
}

#[test]
fn ocf_tester_passes_without_a_wrapper() {
    if !support::have_ocf_tester() {
        return;
    }
    let Some(lab) = Lab::new("tester") else {
        return;
    };
    let cfg = lab.test_config("vm.xml", "vdtester");
    let (cfg, uri) = (cfg.to_string_lossy(), lab.daemon.test_uri());
    let params = [
        ("config", &*cfg),
        ("hypervisor", &*uri),
        ("autoset_utilization_cpu", "false"),
        ("autoset_utilization_host_memory", "false"),
        ("autoset_utilization_hv_memory", "false"),
    ];
    support::ocf_tester("vdtester", &params, vd_binary(), |c| {
        c.arg("-v")
            .env("HA_RSCTMP", lab.path().join("rsctmp"))
            .env("HA_LOGFACILITY", "none");
    });
}

// ---------------------------------------------------------------------------
// The optional features of issue 6, on the test driver.
// ---------------------------------------------------------------------------

/// A TEST DOUBLE of a node tool (crm_resource, csync2, virt-copy-in) in
/// `<lab>/doubles/`: a shell script that appends its arguments, each in
/// brackets, as one line to `<lab>/doubles/<tool>.calls`, and fails (exit 1,
/// "error: not connected") while `<lab>/doubles/<tool>.fail` exists. The
/// agent finds it first in its PATH ([`with_doubles`]).
struct Double {
    calls: std::path::PathBuf,
    fail: std::path::PathBuf,
}

impl Double {
    fn new(lab: &Lab, tool: &str) -> Double {
        use std::os::unix::fs::PermissionsExt;
        let dir = lab.path().join("doubles");
        std::fs::create_dir_all(&dir).unwrap();
        let calls = dir.join(format!("{tool}.calls"));
        let fail = dir.join(format!("{tool}.fail"));
        let script = dir.join(tool);
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n# TEST DOUBLE of {tool} (tests/virtualdomain.rs): records its \
                 arguments, one call a line.\nfor a in \"$@\"; do printf '[%s]' \"$a\"; done \
                 >>'{c}'\necho >>'{c}'\nif [ -e '{f}' ]; then echo 'error: not connected' >&2; \
                 exit 1; fi\nexit 0\n",
                c = calls.display(),
                f = fail.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        Double { calls, fail }
    }

    /// The calls recorded since the last `take`, and forget them.
    fn take(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.calls).unwrap_or_default();
        let _ = std::fs::remove_file(&self.calls);
        text.lines().map(str::to_string).collect()
    }

    fn failing(&self, yes: bool) {
        if yes {
            std::fs::write(&self.fail, "").unwrap();
        } else {
            let _ = std::fs::remove_file(&self.fail);
        }
    }
}

/// The agent with the lab's test doubles first in its PATH.
fn with_doubles(lab: &Lab, a: Agent) -> Agent {
    a.env(
        "PATH",
        format!(
            "{}:/usr/sbin:/usr/bin:/sbin:/bin",
            lab.path().join("doubles").display()
        ),
    )
}

fn stderr_of(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).into_owned()
}

/// Whether a CIB manager (or pacemaker-remoted's proxy of one) listens in
/// this network namespace: its `cib_rw` socket in /proc/net/unix.
fn cib_socket_listed() -> bool {
    std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(7))
        .map(|p| p.trim_end_matches('@'))
        .any(|p| p == "@cib_rw" || p.ends_with("/cib_rw"))
}

#[test]
fn utilization_is_set_through_crm_resource_only_when_it_changes() {
    let Some(lab) = Lab::new("util") else { return };
    let crm = Double::new(&lab, "crm_resource");
    let cfg = lab.path().join("vm.xml");
    // Max memory 1024 MiB, current 512: heartbeat's host_memory and
    // hv_memory are the maximum ("Max memory" of dominfo)
    std::fs::write(
        &cfg,
        "<domain type='test'><name>vdutil</name><memory unit='MiB'>1024</memory>\
         <currentMemory unit='MiB'>512</currentMemory><vcpu>2</vcpu>\
         <os><type>hvm</type></os></domain>\n",
    )
    .unwrap();
    // the utilization parameters at their defaults (autoset: true); the
    // CIB a file (crm_resource's CIB_file): a CIB the tools can reach
    let a = with_doubles(&lab, lab.agent(&cfg))
        .env("CIB_file", lab.path().join("cib.xml"))
        .unset("OCF_RESKEY_autoset_utilization_cpu")
        .unset("OCF_RESKEY_autoset_utilization_host_memory")
        .unset("OCF_RESKEY_autoset_utilization_hv_memory");
    let set = |attr: &str, v: &str| format!("[-r][vd][-z][-p][{attr}][-v][{v}]");
    let all = |cpu: &str| {
        vec![
            set("cpu", cpu),
            set("host_memory", "1024"),
            set("hv_memory", "1024"),
        ]
    };

    a.expect("monitor", rc::NOT_RUNNING);
    assert_eq!(
        crm.take(),
        Vec::<String>::new(),
        "a stopped domain sets nothing"
    );
    // start sets them (heartbeat's start runs its monitor), the monitors
    // after it fork nothing while nothing changes
    a.expect("start", rc::SUCCESS);
    assert_eq!(crm.take(), all("2"));
    let mon = a.clone().recurring();
    mon.expect("monitor", rc::SUCCESS);
    mon.expect("monitor", rc::SUCCESS);
    assert_eq!(
        crm.take(),
        Vec::<String>::new(),
        "unchanged: no crm_resource"
    );
    // a change of the domain: set again
    let uri = lab.daemon.test_uri();
    assert!(lab
        .daemon
        .virsh_ok(&uri, &["setvcpus", "vdutil", "1", "--live"]));
    mon.expect("monitor", rc::SUCCESS);
    assert_eq!(crm.take(), all("1"));
    mon.expect("monitor", rc::SUCCESS);
    assert_eq!(crm.take(), Vec::<String>::new());
    // the record gone (a reboot of the node): set again
    let record = lab
        .path()
        .join("rsctmp/heartbeat-rs/VirtualDomain.vd.utilization");
    std::fs::remove_file(&record).unwrap();
    mon.expect("monitor", rc::SUCCESS);
    assert_eq!(crm.take(), all("1"));
    // crm_resource failing (no CIB): one call a monitor, retried by the next
    std::fs::remove_file(&record).unwrap();
    crm.failing(true);
    let out = mon.expect("monitor", rc::SUCCESS);
    assert!(
        stderr_of(&out).contains("not connected"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(crm.take(), vec![set("cpu", "1")]);
    mon.expect("monitor", rc::SUCCESS);
    assert_eq!(crm.take(), vec![set("cpu", "1")]);
    crm.failing(false);
    mon.expect("monitor", rc::SUCCESS);
    assert_eq!(crm.take(), all("1"));
    // no CIB to reach (no cluster runs here, no CIB_file): crm_resource is
    // not run at all, and nothing warns
    if cib_socket_listed() {
        println!("SKIP the no-CIB monitor: a cluster's CIB runs on this machine");
    } else {
        std::fs::remove_file(&record).unwrap();
        let out = mon.clone().unset("CIB_file").expect("monitor", rc::SUCCESS);
        assert_eq!(crm.take(), Vec::<String>::new(), "no CIB: no crm_resource");
        assert!(!stderr_of(&out).contains("WARN"), "{}", stderr_of(&out));
        assert!(!record.exists());
        mon.expect("monitor", rc::SUCCESS);
        assert_eq!(crm.take(), all("1"), "with a CIB again: set");
    }

    // unset_utilization_*: heartbeat removes an attribute only when its
    // autoset_utilization_* is off; then once, not on every monitor
    let del = |attr: &str| format!("[--resource=vd][--utilization][--delete-parameter={attr}]");
    let unset = mon
        .clone()
        .param("autoset_utilization_cpu", "false")
        .param("autoset_utilization_host_memory", "false")
        .param("autoset_utilization_hv_memory", "true")
        .param("unset_utilization_cpu", "true")
        .param("unset_utilization_host_memory", "true")
        .param("unset_utilization_hv_memory", "true");
    unset.expect("monitor", rc::SUCCESS);
    assert_eq!(
        crm.take(),
        vec![del("cpu"), del("host_memory"), set("hv_memory", "1024")]
    );
    unset.expect("monitor", rc::SUCCESS);
    assert_eq!(crm.take(), Vec::<String>::new());
    // all off: crm_resource never runs
    let off = a
        .clone()
        .recurring()
        .param("autoset_utilization_cpu", "false")
        .param("autoset_utilization_host_memory", "false")
        .param("autoset_utilization_hv_memory", "false");
    std::fs::remove_file(&record).unwrap();
    off.expect("monitor", rc::SUCCESS);
    // status (rgmanager, admins) is not a monitor: no utilization
    a.expect("status", rc::SUCCESS);
    assert_eq!(crm.take(), Vec::<String>::new());

    // stop forgets: the next start sets everything again
    mon.expect("monitor", rc::SUCCESS);
    assert_eq!(crm.take(), all("1"));
    assert!(record.exists());
    a.expect("stop", rc::SUCCESS);
    assert!(!record.exists());
    a.expect("start", rc::SUCCESS);
    assert_eq!(crm.take(), all("2"));
    a.expect("stop", rc::SUCCESS);
    assert_eq!(crm.take(), Vec::<String>::new());
}

#[test]
fn snapshot_saves_the_state_on_stop_and_start_restores_it() {
    let Some(lab) = Lab::new("snap") else { return };
    let snap = lab.path().join("snapshots");
    std::fs::create_dir_all(&snap).unwrap();
    let cfg = lab.test_config("vm.xml", "vdsnap");
    let a = lab.agent(&cfg).param("snapshot", &snap);
    let state = snap.join("vdsnap.state");
    let uri = lab.daemon.test_uri();
    let max_mem = || {
        lab.daemon
            .virsh(&uri, &["dominfo", "vdsnap"])
            .lines()
            .find(|l| l.starts_with("Max memory:"))
            .unwrap_or_default()
            .to_string()
    };

    a.expect("validate-all", rc::SUCCESS);
    a.expect("start", rc::SUCCESS);
    assert!(max_mem().contains(" 8192 KiB"), "{}", max_mem());
    let out = a.expect("stop", rc::SUCCESS);
    assert!(
        stderr_of(&out).contains("state saved to"),
        "{}",
        stderr_of(&out)
    );
    assert!(state.is_file(), "no state file after stop");
    assert_eq!(lab.domstate("vdsnap"), "", "saved: the domain is gone");
    a.expect("monitor", rc::NOT_RUNNING);

    // the config changes meanwhile: start restores the saved domain, not
    // a new one from the config, and removes the state file
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("<memory>8192<", "<memory>16384<")).unwrap();
    let out = a.expect("start", rc::SUCCESS);
    assert!(
        stderr_of(&out).contains("restored from"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(lab.domstate("vdsnap"), "running");
    assert!(max_mem().contains(" 8192 KiB"), "{}", max_mem());
    assert!(!state.exists(), "state file left after the restore");
    a.clone().recurring().expect("monitor", rc::SUCCESS);

    // a state file that cannot be restored: start fails (heartbeat) and
    // keeps it, instead of booting afresh beside a saved state
    a.expect("stop", rc::SUCCESS);
    assert!(state.is_file());
    std::fs::write(&state, "not a libvirt save image").unwrap();
    let out = a.expect("start", rc::ERR_GENERIC);
    let err = stderr_of(&out);
    assert!(err.contains("Failed to restore vdsnap"), "{err}");
    assert!(state.is_file());
    assert_eq!(lab.domstate("vdsnap"), "");
    // without it, a normal start (from the changed config)
    std::fs::remove_file(&state).unwrap();
    a.expect("start", rc::SUCCESS);
    assert!(max_mem().contains(" 16384 KiB"), "{}", max_mem());
    // without snapshot, stop shuts down and saves nothing
    lab.agent(&cfg).expect("stop", rc::SUCCESS);
    assert!(!state.exists());

    // a snapshot directory that is not there; force_stop with snapshot
    let gone = lab
        .agent(&cfg)
        .param("snapshot", lab.path().join("nowhere"));
    gone.expect("validate-all", rc::ERR_INSTALLED);
    let out = a
        .clone()
        .param("force_stop", "true")
        .expect("start", rc::ERR_CONFIGURED);
    assert!(stderr_of(&out).contains("cannot be used together"));
}

/// qemu-img, or a SKIP (a failure where RA_REQUIRE_GUEST is set).
fn have_qemu_img() -> bool {
    let ok = Path::new("/usr/bin/qemu-img").exists();
    if !ok {
        assert!(
            std::env::var_os("RA_REQUIRE_GUEST").is_none(),
            "RA_REQUIRE_GUEST is set but qemu-img (qemu-utils) is missing"
        );
        eprintln!("SKIP: no qemu-img (qemu-utils; .ci/install-libvirt.sh)");
    }
    ok
}

fn qemu_img(args: &[&str]) -> String {
    let out = Command::new("qemu-img").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn backingfile_overlay_stateless_and_copyindirs() {
    if !have_qemu_img() {
        return;
    }
    let Some(lab) = Lab::new("backing") else {
        return;
    };
    let copy_in = Double::new(&lab, "virt-copy-in");
    let base = lab.path().join("base.img");
    qemu_img(&["create", "-q", "-f", "raw", base.to_str().unwrap(), "1M"]);
    // <config without extension>.qcow2 is the domain's disk
    let image = lab.path().join("vmb.qcow2");
    let cfg = lab.path().join("vmb.xml");
    let image_path = image.to_string_lossy();
    let disk = |w: &mut XmlWriter| {
        let file = [("type", "file"), ("device", "disk")];
        w.create_element("disk")
            .with_attributes(file)
            .write_inner_content(|w| {
                xml::empty(w, "driver", &[("name", "qemu"), ("type", "qcow2")])?;
                xml::empty(w, "source", &[("file", &image_path)])?;
                xml::empty(w, "target", &[("dev", "vda")])
            })?;
        Ok(())
    };
    std::fs::write(&cfg, test_domain_xml("vdback", Some(&disk))).unwrap();
    let (d1, d2) = (lab.path().join("inject-a"), lab.path().join("inject-b"));
    let a = with_doubles(&lab, lab.agent(&cfg))
        .param("backingfile", &base)
        .param("copyindirs", format!("{}  {}", d1.display(), d2.display()));
    let uri = lab.daemon.test_uri();
    let info = |f: &Path| qemu_img(&["info", "-U", "--output=json", f.to_str().unwrap()]);
    let marked = || qemu_img(&["snapshot", "-l", image.to_str().unwrap()]).contains("ramark");

    // first start: the overlay over the raw backing file (with its format:
    // qemu-img refuses one without), the domain defined and started, the
    // directories copied in
    a.expect("start", rc::SUCCESS);
    let json = info(&image);
    assert!(
        json.contains(&format!("\"backing-filename\": \"{}\"", base.display())),
        "{json}"
    );
    assert!(
        json.contains("\"backing-filename-format\": \"raw\""),
        "{json}"
    );
    assert_eq!(lab.domstate("vdback"), "running");
    assert!(lab
        .daemon
        .virsh(&uri, &["dominfo", "vdback"])
        .contains("Persistent:     yes"));
    let copied = format!("[-d][vdback][{}][{}][/]", d1.display(), d2.display());
    assert_eq!(copy_in.take(), vec![copied.clone()]);
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    a.expect("monitor", rc::NOT_RUNNING);

    // not stateless: the overlay (and what the guest wrote) is kept
    qemu_img(&["snapshot", "-c", "ramark", image.to_str().unwrap()]);
    a.expect("start", rc::SUCCESS);
    assert!(marked(), "the overlay was recreated");
    assert_eq!(copy_in.take(), Vec::<String>::new());
    a.expect("stop", rc::SUCCESS);
    // stateless: a new overlay at every start, the directories again
    let stateless = a.clone().param("stateless", "true");
    stateless.expect("start", rc::SUCCESS);
    assert!(!marked(), "stateless start kept the old overlay");
    assert_eq!(copy_in.take(), vec![copied]);
    assert_eq!(lab.domstate("vdback"), "running");
    stateless.expect("stop", rc::SUCCESS);
    // virt-copy-in failing: start fails (heartbeat), saying so
    copy_in.failing(true);
    let out = stateless.expect("start", rc::ERR_GENERIC);
    assert!(
        stderr_of(&out).contains("virt-copy-in"),
        "{}",
        stderr_of(&out)
    );
    assert_ne!(lab.domstate("vdback"), "running");
    copy_in.failing(false);

    // a qcow2 backing file and a config name with two dots:
    // web.prod.xml -> web.qcow2 (heartbeat's ${config%%.*}.qcow2)
    let base2 = lab.path().join("base.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", base2.to_str().unwrap(), "1M"]);
    let cfg2 = lab.test_config("web.prod.xml", "vdback2");
    let b = lab.agent(&cfg2).param("backingfile", &base2);
    b.expect("start", rc::SUCCESS);
    let json = info(&lab.path().join("web.qcow2"));
    assert!(
        json.contains("\"backing-filename-format\": \"qcow2\""),
        "{json}"
    );
    b.expect("stop", rc::SUCCESS);

    // bad values
    a.clone()
        .param("backingfile", "base.img")
        .expect("start", rc::ERR_CONFIGURED);
    let missing = a.clone().param("backingfile", lab.path().join("none.img"));
    missing.expect("validate-all", rc::ERR_INSTALLED);
    std::fs::remove_file(&image).unwrap();
    let out = missing.expect("start", rc::ERR_GENERIC);
    assert!(stderr_of(&out).contains("none.img"), "{}", stderr_of(&out));
}

#[test]
fn start_resources_starts_the_pools_and_networks_the_domain_uses() {
    let Some(lab) = Lab::new("res") else { return };
    let uri = lab.daemon.test_uri();
    let pool_dir = lab.path().join("pool");
    std::fs::create_dir_all(&pool_dir).unwrap();
    assert!(lab.daemon.virsh_ok(
        &uri,
        &[
            "pool-define-as",
            "vdpool",
            "dir",
            "--target",
            pool_dir.to_str().unwrap()
        ]
    ));
    let net = lab.path().join("net.xml");
    std::fs::write(
        &net,
        "<network><name>vdnet</name><bridge name='vdbr0'/></network>\n",
    )
    .unwrap();
    assert!(lab
        .daemon
        .virsh_ok(&uri, &["net-define", net.to_str().unwrap()]));
    let pool_state = || {
        lab.daemon
            .virsh(&uri, &["pool-info", "vdpool"])
            .lines()
            .find(|l| l.starts_with("State:"))
            .unwrap_or_default()
            .to_string()
    };
    let net_active = || {
        lab.daemon
            .virsh(&uri, &["net-info", "vdnet"])
            .lines()
            .any(|l| l.starts_with("Active:") && l.ends_with("yes"))
    };
    assert!(pool_state().ends_with("inactive"), "{}", pool_state());
    assert!(!net_active());
    let cfg = lab.path().join("vm.xml");
    let domain = |pool: &str| {
        let devices = |w: &mut XmlWriter| {
            let volume = [("type", "volume"), ("device", "disk")];
            w.create_element("disk")
                .with_attributes(volume)
                .write_inner_content(|w| {
                    xml::empty(w, "source", &[("pool", pool), ("volume", "v1")])?;
                    xml::empty(w, "target", &[("dev", "vda")])
                })?;
            w.create_element("interface")
                .with_attribute(("type", "network"))
                .write_inner_content(|w| xml::empty(w, "source", &[("network", "vdnet")]))?;
            Ok(())
        };
        test_domain_xml("vdres", Some(&devices))
    };
    std::fs::write(&cfg, domain("vdpool")).unwrap();

    // off (the default): the agent leaves them alone
    let plain = lab.agent(&cfg);
    if plain.run("start").get_output().status.success() {
        plain.expect("stop", rc::SUCCESS);
    }
    assert!(pool_state().ends_with("inactive"), "{}", pool_state());
    assert!(!net_active());
    // on: both started before the domain
    let a = lab.agent(&cfg).param("start_resources", "true");
    a.expect("start", rc::SUCCESS);
    assert!(pool_state().ends_with("running"), "{}", pool_state());
    assert!(net_active());
    assert_eq!(lab.domstate("vdres"), "running");
    a.expect("stop", rc::SUCCESS);
    // already running: refreshed, start goes on
    a.expect("start", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    // a pool that does not exist: start fails, naming it
    std::fs::write(&cfg, domain("nosuchpool")).unwrap();
    let out = a.expect("start", rc::ERR_GENERIC);
    let err = stderr_of(&out);
    assert!(err.contains("storage pool nosuchpool"), "{err}");
    assert_ne!(lab.domstate("vdres"), "running");
}

#[test]
fn save_config_on_stop_and_sync_config_on_stop() {
    use std::os::unix::fs::PermissionsExt;
    let Some(lab) = Lab::new("saveconf") else {
        return;
    };
    let csync2 = Double::new(&lab, "csync2");
    let cfg = lab.test_config("vm.xml", "vdsave");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o640)).unwrap();
    let uri = lab.daemon.test_uri();
    let plain = with_doubles(&lab, lab.agent(&cfg));
    let a = plain.clone().param("save_config_on_stop", "true");
    let original = std::fs::read_to_string(&cfg).unwrap();
    let mode = || std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777;

    // off (the default): the config is never written
    plain.expect("start", rc::SUCCESS);
    plain.clone().recurring().expect("monitor", rc::SUCCESS);
    plain.expect("stop", rc::SUCCESS);
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), original);

    // on: a monitor writes libvirt's definition back (heartbeat saves on
    // monitor too), keeping the file's mode; csync2 only with sync
    a.expect("start", rc::SUCCESS);
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    let saved = std::fs::read_to_string(&cfg).unwrap();
    assert_ne!(saved, original);
    assert!(
        saved.contains("<uuid>") && saved.contains("<name>vdsave</name>"),
        "{saved}"
    );
    assert_eq!(mode(), 0o640);
    assert_eq!(csync2.take(), Vec::<String>::new());
    // unchanged: not written again
    let before = std::fs::metadata(&cfg).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    assert_eq!(std::fs::metadata(&cfg).unwrap().modified().unwrap(), before);

    // a change made through libvirt reaches the file on stop, and
    // sync_config_on_stop (which implies saving) spreads it with csync2
    assert!(lab.daemon.virsh_ok(
        &uri,
        &["desc", "vdsave", "--live", "--title", "saved-by-stop"]
    ));
    let sync = plain.clone().param("sync_config_on_stop", "true");
    sync.expect("stop", rc::SUCCESS);
    let saved = std::fs::read_to_string(&cfg).unwrap();
    assert!(saved.contains("saved-by-stop"), "{saved}");
    assert_eq!(mode(), 0o640);
    assert_eq!(csync2.take(), vec![format!("[-x][{}]", cfg.display())]);
    // the saved file starts the domain again, with the change
    sync.expect("start", rc::SUCCESS);
    assert!(lab
        .daemon
        .virsh(&uri, &["dumpxml", "vdsave"])
        .contains("saved-by-stop"));
    sync.expect("stop", rc::SUCCESS);
    assert_eq!(
        csync2.take(),
        Vec::<String>::new(),
        "nothing changed: no csync2"
    );
}

#[test]
fn qemu_guest_start_monitor_and_graceful_stop_honouring_shutdown_mode() {
    let Some(lab) = QemuLab::new("life", 1) else {
        return;
    };
    let cfg = lab.config("vm.xml", "");
    let a = lab.agent(0, &cfg);
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("validate-all", rc::SUCCESS);
    // the promise is the operation's timeout (CRM_meta_timeout 60 s here),
    // not a speed: on this machine libvirtd's first QEMU start in a fresh
    // daemon alone took 44 s (the agent's own trace: nothing between its
    // start and libvirt's answer); speeds are bench/all.sh's job
    let took = timed(&a, "start", rc::SUCCESS);
    assert!(took < Duration::from_secs(60), "start took {took:?}");
    assert_eq!(lab.domstate(0), "running");
    assert_eq!(lab.emulators().len(), 1);
    a.expect("start", rc::SUCCESS);
    assert_eq!(lab.emulators().len(), 1, "a second start started nothing");
    lab.wait_serial(0, READY, BOOT_LIMIT);
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    a.expect("status", rc::SUCCESS);

    // shutdown_mode=acpi: the guest's acpid powers it off
    let acpi = a.clone().param("shutdown_mode", "acpi");
    let out = acpi.expect("stop", rc::SUCCESS);
    let log = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(lab.serial(0).contains(POWER_BUTTON), "{}", lab.serial(0));
    assert!(!log.contains("destroy"), "graceful stop destroyed:\n{log}");
    assert!(lab.emulators().is_empty());
    a.expect("monitor", rc::NOT_RUNNING);
    assert!(timed(&a, "stop", rc::SUCCESS) < Duration::from_secs(3));

    // shutdown_mode=agent: no guest agent here, so no graceful way at all;
    // the power button is never pressed and stop destroys without waiting
    // out its graceful budget
    a.expect("start", rc::SUCCESS);
    lab.wait_serial(0, READY, BOOT_LIMIT);
    let agent_mode = a
        .clone()
        .param("shutdown_mode", "agent")
        .env("OCF_RESKEY_CRM_meta_timeout", "40000");
    let took = timed(&agent_mode, "stop", rc::SUCCESS);
    assert!(took < Duration::from_secs(20), "stop took {took:?}");
    assert!(!lab.serial(0).contains(POWER_BUTTON), "{}", lab.serial(0));
    assert!(lab.emulators().is_empty());
    a.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn qemu_guest_ignoring_acpi_is_destroyed_within_the_stop_deadline() {
    let Some(lab) = QemuLab::new("noacpi", 1) else {
        return;
    };
    let cfg = lab.config("vm.xml", "ra_ignore_acpi");
    let a = lab.agent(0, &cfg);
    a.expect("start", rc::SUCCESS);
    // A deadline too short for destroy (QEMU takes about a second to exit
    // on SIGTERM under TCG): whatever stop answers, 0 means really off.
    let short = a.clone().env("OCF_RESKEY_CRM_meta_timeout", "600");
    let t = Instant::now();
    let code = short.run("stop").get_output().status.code();
    let took = t.elapsed();
    assert!(took < Duration::from_secs(3), "stop took {took:?}");
    match code {
        Some(rc::SUCCESS) => assert!(lab.emulators().is_empty(), "stop said 0, guest runs"),
        Some(rc::ERR_GENERIC) => {}
        other => panic!("stop with a 0.6 s deadline: {other:?}"),
    }
    eprintln!("stop with a 0.6 s deadline: {code:?} after {took:?}");
    // (libvirt goes on destroying it after such a failed stop)
    let t = Instant::now();
    while !lab.emulators().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(20), "guest not destroyed");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Booted, ignoring the power button. 15 s: a third (5 s) kept for
    // destroy, 10 s for a graceful shutdown that never comes.
    a.expect("start", rc::SUCCESS);
    lab.wait_serial(0, READY, BOOT_LIMIT);
    let s = a.clone().env("OCF_RESKEY_CRM_meta_timeout", "15000");
    let t = Instant::now();
    let out = s.expect("stop", rc::SUCCESS);
    let took = t.elapsed();
    assert!(lab.emulators().is_empty(), "stop said 0, guest runs");
    assert_eq!(lab.domstate(0), "");
    let log = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(log.contains("forced shutdown (destroy)"), "{log}");
    assert!(
        took >= Duration::from_secs(9),
        "no graceful attempt: {took:?}"
    );
    assert!(took < Duration::from_secs(16), "stop took {took:?}\n{log}");
    assert!(!lab.serial(0).contains(POWER_BUTTON));
    a.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn qemu_monitor_while_libvirtd_is_down_sees_the_running_emulator() {
    let Some(lab) = QemuLab::new("down", 1) else {
        return;
    };
    let cfg = lab.config("vm.xml", "");
    let a = lab.agent(0, &cfg);
    a.expect("start", rc::SUCCESS);
    lab.wait_serial(0, READY, BOOT_LIMIT);
    let qemu = lab.emulators();
    assert_eq!(qemu.len(), 1);
    lab.daemons[0].kill_libvirtd();
    assert_eq!(lab.emulators(), qemu, "the guest outlives libvirtd");

    // probe, recurring monitor and status: running, never 7, at once
    assert!(timed(&a, "monitor", rc::SUCCESS) < Duration::from_secs(3));
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    let short = a.clone().env("OCF_RESKEY_CRM_meta_timeout", "3000");
    assert!(timed(&short, "status", rc::SUCCESS) < Duration::from_secs(4));
    // stop cannot stop it without libvirt: a failure inside the deadline,
    // not a 0 with the guest still running; start does not start another
    assert!(timed(&short, "stop", rc::ERR_GENERIC) < Duration::from_secs(5));
    assert!(timed(&short, "start", rc::ERR_GENERIC) < Duration::from_secs(5));
    assert_eq!(lab.emulators(), qemu);

    // libvirtd back: it finds its guest, and stop is graceful
    lab.daemons[0].restart_libvirtd();
    assert_eq!(lab.domstate(0), "running");
    a.expect("monitor", rc::SUCCESS);
    let out = a.expect("stop", rc::SUCCESS);
    let log = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(lab.serial(0).contains(POWER_BUTTON), "{}", lab.serial(0));
    assert!(!log.contains("destroy"), "{log}");
    assert!(lab.emulators().is_empty());
    a.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn qemu_live_and_paused_migration_between_two_daemons() {
    let Some(lab) = QemuLab::new("migrate", 2) else {
        return;
    };
    let cfg = lab.config("vm.xml", "");
    let agents = [lab.agent(0, &cfg), lab.agent(1, &cfg)];
    let nodes = ["hosta", "hostb"];
    // migrate_to on `from`, migrate_from on `to`, with the environment
    // Pacemaker gives both ends; the migration stream stays on loopback
    let migrating = |on: usize, from: usize, to: usize| {
        agents[on]
            .clone()
            .env("OCF_RESKEY_CRM_meta_migrate_source", nodes[from])
            .env("OCF_RESKEY_CRM_meta_migrate_target", nodes[to])
            .param("remoteuri", lab.daemons[to].qemu_uri())
            .param("migrateuri", "tcp://127.0.0.1")
            .param("migrate_options", "--listen-address 127.0.0.1")
    };
    let (a, b) = (&agents[0], &agents[1]);
    a.expect("start", rc::SUCCESS);
    lab.wait_serial(0, READY, BOOT_LIMIT);
    b.expect("monitor", rc::NOT_RUNNING);

    // Failed migrations report libvirt's reason and leave the guest
    // running on A: a target daemon that is not there; a paused migration
    // whose target cannot listen (suspended first, so resumed again).
    let out = migrating(0, 0, 1)
        .param(
            "remoteuri",
            "qemu+unix:///system?socket=/nonexistent/libvirt-sock",
        )
        .expect("migrate_to", rc::ERR_GENERIC);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("/nonexistent/libvirt-sock"), "{err}");
    let out = migrating(0, 0, 1)
        .param("migration_mode", "paused")
        .param("migrate_options", "--listen-address 192.0.2.1")
        .expect("migrate_to", rc::ERR_GENERIC);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("suspended for offline migration"), "{err}");
    assert!(err.contains("migration to hostb failed"), "{err}");
    assert_eq!(lab.domstate(0), "running", "resumed after the failure");
    assert_eq!(lab.domstate(1), "");
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    // migration_downtime reaches QEMU (its downtime-limit, what
    // `virsh migrate-getmaxdowntime` reads), seen here on A after a live
    // migration that failed on the target (default: 300 ms)
    let max_downtime = || {
        let d = &lab.daemons[0];
        d.virsh(&d.qemu_uri(), &["migrate-getmaxdowntime", &lab.name])
    };
    assert_eq!(max_downtime(), "300");
    let out = migrating(0, 0, 1)
        .param("migration_downtime", "123")
        .param("migrate_options", "--listen-address 192.0.2.1")
        .expect("migrate_to", rc::ERR_GENERIC);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("migration downtime set to 123 ms"), "{err}");
    assert_eq!(max_downtime(), "123");
    assert_eq!(lab.domstate(0), "running");

    // A -> B -> A live, then A -> B -> A paused (offline: suspended, moved,
    // resumed on the target), each as Pacemaker does it: migrate_to on
    // the source, migrate_from on the target, stop on the source
    for (from, to, mode) in [
        (0, 1, "live"),
        (1, 0, "live"),
        (0, 1, "paused"),
        (1, 0, "paused"),
    ] {
        let t = Instant::now();
        // the first one with a downtime limit (the mode heartbeat has)
        let downtime = if from == 0 && mode == "live" {
            "250"
        } else {
            "0"
        };
        let out = migrating(from, from, to)
            .param("migration_mode", mode)
            .param("migration_downtime", downtime)
            .expect("migrate_to", rc::SUCCESS);
        let took = t.elapsed();
        let log = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        let word = if mode == "live" { "live" } else { "offline" };
        assert!(log.contains(&format!("Starting {word} migration")), "{log}");
        assert_eq!(
            log.contains("migration downtime set to 250 ms"),
            downtime == "250",
            "{log}"
        );
        migrating(to, from, to)
            .param("migration_mode", mode)
            .expect("migrate_from", rc::SUCCESS);
        assert_eq!(lab.domstate(to), "running", "{mode} to {}", nodes[to]);
        assert_eq!(lab.domstate(from), "", "gone from {}", nodes[from]);
        assert_eq!(lab.emulators().len(), 1);
        agents[from].expect("stop", rc::SUCCESS);
        agents[from].expect("monitor", rc::NOT_RUNNING);
        agents[to]
            .clone()
            .recurring()
            .expect("monitor", rc::SUCCESS);
        eprintln!(
            "{mode} migration {} -> {}: migrate_to {took:?}",
            nodes[from], nodes[to]
        );
    }

    // the guest survived four moves: it answers the power button on A
    let out = a.expect("stop", rc::SUCCESS);
    let log = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(lab.serial(0).contains(POWER_BUTTON), "{}", lab.serial(0));
    assert!(!log.contains("destroy"), "{log}");
    assert!(lab.emulators().is_empty());
}

#[test]
fn guest_building_blocks() {
    // a cpio entry: 110-byte header, name padded to 4, data padded to 4
    let mut c = Cpio::default();
    c.file("init", 0o755, b"#!/bin/sh\n");
    let a = c.finish();
    assert!(a.starts_with(b"070701"));
    assert_eq!(&a[6 + 8..6 + 16], b"000081ED");
    assert_eq!(&a[110..115], b"init\0");
    assert_eq!(&a[116..126], b"#!/bin/sh\n");
    assert!(a.ends_with(b"TRAILER!!!\0\0\0\0") && a.len() % 4 == 0);
    // static or dynamic, by the program headers
    for (bin, want) in [("/usr/bin/busybox", true), ("/usr/bin/virsh", false)] {
        if let Ok(b) = std::fs::read(bin) {
            assert_eq!(is_static_elf64(&b), want, "{bin}");
        }
    }
    assert!(!is_static_elf64(b"#!/bin/sh\n"));
}

// ---------------------------------------------------------------------------
// Benchmark (not a test: nothing is asserted beyond what it needs to run).
// bench/virtualdomain.sh runs it; see there.
// ---------------------------------------------------------------------------

const HB_VIRTUALDOMAIN: &str = "/usr/lib/ocf/resource.d/heartbeat/VirtualDomain";

fn bench_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One process run: its wall time and output.
fn time_run(mut c: Command) -> (Duration, std::process::Output) {
    let t = Instant::now();
    let out = c.output().expect("run a benchmarked command");
    (t.elapsed(), out)
}

fn quiet(mut c: Command) -> Command {
    c.stdin(Stdio::null());
    c
}

fn plain(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    quiet(c)
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Time every command `runs` times, round robin (a load change on the
/// shared machine hits each the same), after one warm-up run each whose
/// exit code is shown; print mean and median per call and the ratios to
/// the first row ("ours") and to the row labelled `bare`.
/// Times `rows` round robin and prints the table; returns the medians (ms),
/// in row order.
fn compare(title: &str, runs: usize, rows: &[(&str, &dyn Fn() -> Command)]) -> Vec<f64> {
    let codes: Vec<String> = rows
        .iter()
        .map(|(label, c)| {
            let out = time_run(c()).1;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                println!("  ({label}: warm-up run failed: {})", err.trim_end());
            }
            match out.status.code() {
                Some(rc) => rc.to_string(),
                None => "signal".into(),
            }
        })
        .collect();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); rows.len()];
    for _ in 0..runs {
        for (i, (_, c)) in rows.iter().enumerate() {
            times[i].push(time_run(c()).0);
        }
    }
    let med: Vec<Duration> = times.iter_mut().map(|t| median(t)).collect();
    let ours = millis(med[0]);
    let bare = rows
        .iter()
        .position(|(l, _)| l.starts_with("bare"))
        .map(|i| millis(med[i]));
    println!("\n{title} ({runs} runs each, round robin; rc of the warm-up run)");
    println!(
        "  {:<58} {:>4} {:>9} {:>9} {:>9} {:>9}",
        "command", "rc", "mean ms", "median ms", "x ours", "x bare"
    );
    for (i, (label, _)) in rows.iter().enumerate() {
        let mean = millis(times[i].iter().sum::<Duration>()) / runs as f64;
        let m = millis(med[i]);
        println!(
            "  {:<58} {:>4} {:>9.2} {:>9.2} {:>8.2}x {:>8}",
            label,
            codes[i],
            mean,
            m,
            m / ours,
            bare.map_or("-".into(), |b| format!("{:.2}x", m / b))
        );
    }
    med.into_iter().map(millis).collect()
}

/// The monitor comparison on one domain: our agent, the heartbeat agent
/// (same parameters: autoset_utilization_* off in both), `virsh domstate`
/// and the bare query (examples/domstate.rs: the same `virt` crate, one
/// connect + lookup + virDomainGetState), then both agents with the
/// utilization defaults (heartbeat runs crm_resource, which fails without a
/// cluster; ours finds no CIB to reach and runs none).
#[allow(clippy::too_many_arguments)]
fn bench_monitors(
    title: &str,
    at: &str,
    runs: usize,
    state: &Path,
    cfg: &Path,
    uri: &str,
    dom: &str,
) -> f64 {
    let (s_ours, s_hb) = (state.join("ours"), state.join("hb"));
    for d in [&s_ours, &s_hb] {
        std::fs::create_dir_all(d.join("rsctmp")).unwrap();
    }
    let mon = vd_agent(&s_ours, cfg, uri).recurring();
    let hb = vd_params(Agent::new(HB_VIRTUALDOMAIN, &s_hb), cfg, uri).recurring();
    let defaults = |a: &Agent| {
        a.clone()
            .unset("OCF_RESKEY_autoset_utilization_cpu")
            .unset("OCF_RESKEY_autoset_utilization_host_memory")
            .unset("OCF_RESKEY_autoset_utilization_hv_memory")
    };
    let (mon_d, hb_d) = (defaults(&mon), defaults(&hb));
    let bare = vd_example("domstate");
    let bare = bare.to_str().unwrap();
    let m = compare(
        title,
        runs,
        &[
            ("ours: VirtualDomain monitor", &|| {
                quiet(mon.command(&["monitor"]))
            }),
            ("heartbeat: VirtualDomain monitor", &|| {
                quiet(hb.command(&["monitor"]))
            }),
            ("virsh -c URI domstate NAME", &|| {
                plain("virsh", &["-c", uri, "domstate", dom])
            }),
            (
                "bare: examples/domstate (virt crate: open+lookup+state)",
                &|| plain(bare, &[uri, dom]),
            ),
            ("/bin/true", &|| plain("/bin/true", &[])),
        ],
    );
    let true_ms = m[4];
    bench_line("VirtualDomain", "monitor", (m[0], m[1], true_ms), runs, at);
    let d = compare(
        &format!(
            "{title}, autoset_utilization_* at their defaults (true: crm_resource, no CIB here)"
        ),
        runs.div_ceil(4),
        &[
            ("ours: VirtualDomain monitor", &|| {
                quiet(mon_d.command(&["monitor"]))
            }),
            ("heartbeat: VirtualDomain monitor", &|| {
                quiet(hb_d.command(&["monitor"]))
            }),
        ],
    );
    bench_line(
        "VirtualDomain",
        "monitor-utilization-no-CIB",
        (d[0], d[1], true_ms),
        runs.div_ceil(4),
        at,
    );
    // As in a running cluster, where crm_resource succeeds: heartbeat sets
    // the three attributes at every monitor, ours only when they change.
    // crm_resource here is a stand-in that succeeds at once (a real CIB
    // round trip costs more, so this favours heartbeat).
    let bin = state.join("crm-stand-in");
    std::fs::create_dir_all(&bin).unwrap();
    let crm = bin.join("crm_resource");
    std::fs::write(&crm, "#!/bin/sh\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&crm, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    // CIB_file: a CIB the tools can reach, as in a cluster (else ours
    // forks no crm_resource at all)
    let cib = state.join("cib.xml");
    let (mon_c, hb_c) = (
        mon_d.clone().env("PATH", &path).env("CIB_file", &cib),
        hb_d.clone().env("PATH", &path).env("CIB_file", &cib),
    );
    let c = compare(
        &format!(
            "{title}, autoset_utilization_* at their defaults, crm_resource answering (stand-in)"
        ),
        runs.div_ceil(2),
        &[
            ("ours: VirtualDomain monitor", &|| {
                quiet(mon_c.command(&["monitor"]))
            }),
            ("heartbeat: VirtualDomain monitor", &|| {
                quiet(hb_c.command(&["monitor"]))
            }),
        ],
    );
    bench_line(
        "VirtualDomain",
        "monitor-utilization-cluster",
        (c[0], c[1], true_ms),
        runs.div_ceil(2),
        at,
    );
    true_ms
}

/// `N` from the agent's "migration to X succeeded (N ms)": the time of its
/// libvirt part (connection to the target + virDomainMigrate3).
fn logged_migration_ms(stderr: &[u8]) -> Option<f64> {
    let log = String::from_utf8_lossy(stderr);
    let rest = &log[log.find("succeeded (")? + "succeeded (".len()..];
    rest[..rest.find(" ms)")?].parse().ok()
}

/// QEMU's own migration job time, as the target's libvirt reports it.
fn job_ms(uri: &str, dom: &str) -> Option<f64> {
    let out = plain("virsh", &["-c", uri, "domjobinfo", "--completed", dom])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("Time elapsed:"))?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

fn ms_or_na(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.0}"))
}

fn median_f(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 0 => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        n => v[n / 2],
    }
}

/// The benchmark of issue 6 (run by bench/virtualdomain.sh, never by
/// `cargo test`): monitor cost of our agent vs the heartbeat agent vs
/// `virsh domstate` vs a bare libvirt query, on a test-driver domain and on
/// a real QEMU TCG guest, and migrate_to's overhead beyond libvirt's own
/// migration time (real guest, two daemons). RA_BENCH_RUNS (default 50),
/// RA_BENCH_MIGRATIONS (pairs, default 2), RA_BENCH_QEMU=0 skips the guest,
/// RA_BENCH_TAG names the directories (/var/tmp/ra-rs-vd{,q}-TAG-*) and
/// the guest (ravm-TAG-*) so the script can clean up after a Ctrl-C.
#[test]
#[ignore = "benchmark: run by bench/virtualdomain.sh"]
fn bench_virtualdomain() {
    let runs = bench_env("RA_BENCH_RUNS", 50).max(1);
    let pairs = bench_env("RA_BENCH_MIGRATIONS", 2);
    let tag = std::env::var("RA_BENCH_TAG").unwrap_or_else(|_| "bench".into());
    assert!(
        Path::new(HB_VIRTUALDOMAIN).exists(),
        "{HB_VIRTUALDOMAIN} missing: apt-get install resource-agents"
    );
    let Some(lab) = Lab::new(&tag) else { return };
    let dom = "vdbench";
    // <name> on a line of its own: the heartbeat agent greps for it
    let cfg = lab.path().join("vdbench.xml");
    std::fs::write(&cfg, test_domain_xml(dom, None)).unwrap();
    let uri = lab.daemon.test_uri();
    let a = lab.agent(&cfg);
    a.expect("start", rc::SUCCESS);
    println!(
        "agent: {} (debug build); heartbeat: {HB_VIRTUALDOMAIN}",
        vd_binary()
    );
    let true_ms = bench_monitors(
        "test driver through a private libvirtd (test+unix:///default)",
        "libvirt-test-driver",
        runs,
        &lab.path().join("bench"),
        &cfg,
        &uri,
        dom,
    );
    // migrate_to on the test driver: what libvirt answers
    let out = a
        .clone()
        .env("OCF_RESKEY_CRM_meta_migrate_source", "hosta")
        .env("OCF_RESKEY_CRM_meta_migrate_target", "hostb")
        .param("remoteuri", &uri)
        .command(&["migrate_to"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    println!(
        "\nmigrate_to on the test driver: rc {:?}: {}",
        out.status.code(),
        err.lines().last().unwrap_or("")
    );
    a.expect("stop", rc::SUCCESS);
    // Start and stop latency on the test driver (defined from the config,
    // created; shut down), each agent from the stopped domain.
    let ss = lab.path().join("bench-start-stop");
    let (ss_ours, ss_hb) = (ss.join("ours"), ss.join("hb"));
    for d in [&ss_ours, &ss_hb] {
        std::fs::create_dir_all(d.join("rsctmp")).unwrap();
    }
    bench_start_stop(
        "VirtualDomain",
        (
            &vd_agent(&ss_ours, &cfg, &uri),
            &vd_params(Agent::new(HB_VIRTUALDOMAIN, &ss_hb), &cfg, &uri),
        ),
        runs.min(20),
        true_ms,
        "libvirt-test-driver",
    );
    drop(lab);

    if std::env::var("RA_BENCH_QEMU").is_ok_and(|v| v == "0") {
        println!("\nreal QEMU guest: skipped (RA_BENCH_QEMU=0)");
        return;
    }
    let Some(q) = QemuLab::new(&tag, 2) else {
        println!("\nreal QEMU guest: skipped (no QEMU, busybox or kernel)");
        return;
    };
    let cfg = q.config("vm.xml", "");
    q.agent(0, &cfg).expect("start", rc::SUCCESS);
    q.wait_serial(0, READY, BOOT_LIMIT);
    bench_monitors(
        "real QEMU TCG guest (qemu+unix:///system)",
        "qemu-tcg-guest",
        runs.div_ceil(2),
        &q.path().join("bench"),
        &cfg,
        &q.daemons[0].qemu_uri(),
        &q.name,
    );

    // Live migrations, alternately by the agent (migrate_to on the source,
    // then migrate_from on the target and stop on the source, as Pacemaker
    // does) and by `virsh migrate` with the same URIs and options.
    let nodes = ["hosta", "hostb"];
    let migrating = |on: usize, from: usize, to: usize| {
        q.agent(on, &cfg)
            .env("OCF_RESKEY_CRM_meta_migrate_source", nodes[from])
            .env("OCF_RESKEY_CRM_meta_migrate_target", nodes[to])
            .param("remoteuri", q.daemons[to].qemu_uri())
            .param("migrateuri", "tcp://127.0.0.1")
            .param("migrate_options", "--listen-address 127.0.0.1")
    };
    println!("\nlive migrations of the real guest between two daemons (wall ms per call)");
    let (mut walls, mut overheads, mut virsh_walls) = (Vec::new(), Vec::new(), Vec::new());
    let mut at = 0;
    for k in 0..pairs * 2 {
        let to = 1 - at;
        let how = format!("{} -> {}", nodes[at], nodes[to]);
        if k % 4 == 0 || k % 4 == 3 {
            let (wall, out) = time_run(quiet(migrating(at, at, to).command(&["migrate_to"])));
            assert!(
                out.status.success(),
                "migrate_to failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let inside = logged_migration_ms(&out.stderr);
            let job = job_ms(&q.daemons[to].qemu_uri(), &q.name);
            let (from_wall, _) = time_run(quiet(migrating(to, at, to).command(&["migrate_from"])));
            q.agent(at, &cfg).expect("stop", rc::SUCCESS);
            let wall = millis(wall);
            walls.push(wall);
            if let Some(i) = inside {
                overheads.push(wall - i);
            }
            println!(
                "  agent {how}: migrate_to {wall:.0}, of which libvirt (target connect + \
                 virDomainMigrate3) {}, QEMU job {}; overhead {}; migrate_from {:.0}",
                ms_or_na(inside),
                ms_or_na(job),
                ms_or_na(inside.map(|i| wall - i)),
                millis(from_wall)
            );
        } else {
            let (wall, out) = time_run(plain(
                "virsh",
                &[
                    "-c",
                    &q.daemons[at].qemu_uri(),
                    "migrate",
                    "--live",
                    &q.name,
                    &q.daemons[to].qemu_uri(),
                    "tcp://127.0.0.1",
                    "--listen-address",
                    "127.0.0.1",
                ],
            ));
            assert!(
                out.status.success(),
                "virsh migrate failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let job = job_ms(&q.daemons[to].qemu_uri(), &q.name);
            virsh_walls.push(millis(wall));
            println!(
                "  virsh {how}: virsh migrate --live {:.0}, QEMU job {}",
                millis(wall),
                ms_or_na(job)
            );
        }
        at = to;
    }
    if !walls.is_empty() {
        println!(
            "  median: agent migrate_to {:.0}, virsh migrate {:.0}; agent overhead beyond \
             its libvirt calls {:.0} ms",
            median_f(&mut walls),
            median_f(&mut virsh_walls),
            median_f(&mut overheads)
        );
    }
}
