//! The Xen agent as a process, against the `xl` test double
//! (`tests/doubles/xl.rs`) first in `PATH`. Each test has its own temporary
//! directory holding two pretend hosts (`hosts/node1`, `hosts/node2`), the
//! agent's `HA_RSCTMP` per node, and the guest config files.

mod doubles;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{rc, tempdir, timed, Agent};

const BIN: &str = env!("CARGO_BIN_EXE_Xen");

/// Two pretend Xen hosts ([`doubles::XenHost`]) and the agent's view of
/// each.
struct Lab {
    dir: tempfile::TempDir,
    node1: doubles::XenHost,
    node2: doubles::XenHost,
}

impl Lab {
    fn new(name: &str) -> Lab {
        let dir = tempdir(&format!("xen-{name}"));
        let node1 = doubles::XenHost::node(dir.path(), "node1");
        let node2 = doubles::XenHost::node(dir.path(), "node2");
        for n in ["node1", "node2"] {
            std::fs::create_dir_all(dir.path().join(n)).unwrap();
        }
        Lab { dir, node1, node2 }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn node(&self, node: &str) -> &doubles::XenHost {
        match node {
            "node1" => &self.node1,
            "node2" => &self.node2,
            _ => panic!("no pretend host {node}"),
        }
    }

    fn host(&self, node: &str) -> PathBuf {
        self.node(node).state.clone()
    }

    /// A guest config file; returns its path.
    fn config(&self, file: &str, text: &str) -> PathBuf {
        let p = self.path().join(file);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The agent on `node`, instance `vm1`, with `xmfile`.
    fn agent(&self, node: &str, xmfile: &Path) -> Agent {
        Agent::new(BIN, &self.path().join(node))
            .env("PATH", &self.node(node).path)
            .env("XL_DOUBLE_STATE", self.host(node))
            .env("OCF_RESOURCE_INSTANCE", "vm1")
            .param("xmfile", xmfile)
    }

    /// Set a steering flag of the double on `node`.
    fn flag(&self, node: &str, name: &str, value: &str) {
        self.node(node).set_flag(name, value);
    }

    /// The calls the agent made to xl on `node`, one `{:?}` line each.
    fn calls(&self, node: &str) -> Vec<String> {
        self.node(node).calls()
    }

    fn clear_calls(&self, node: &str) {
        self.node(node).take_calls();
    }

    /// Names of the domains the double holds on `node`.
    fn domains(&self, node: &str) -> Vec<String> {
        let before = std::fs::read(self.host(node).join("calls")).ok();
        let names = self.node(node).domains();
        self.restore_calls(node, before);
        names
    }

    /// Run the double directly (as the guest or an admin would), without
    /// leaving the call in the log.
    fn xl(&self, node: &str, args: &[&str]) -> String {
        let before = std::fs::read(self.host(node).join("calls")).ok();
        let out = self.node(node).xl(args);
        self.restore_calls(node, before);
        assert!(out.status.success(), "xl {args:?}: {:?}", out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn restore_calls(&self, node: &str, before: Option<Vec<u8>>) {
        match before {
            Some(b) => std::fs::write(self.host(node).join("calls"), b).unwrap(),
            None => self.clear_calls(node),
        }
    }
}

/// `["a", "b"]` as the double logs it.
fn call(args: &[&str]) -> String {
    format!("{args:?}")
}

#[test]
fn lifecycle_runs_the_exact_xl_commands() {
    let lab = Lab::new("life");
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\nmemory = 256\n");
    let a = lab.agent("node1", &cfg);
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("validate-all", rc::SUCCESS);
    lab.clear_calls("node1");

    a.expect("start", rc::SUCCESS);
    let xmfile = cfg.to_str().unwrap();
    assert_eq!(
        lab.calls("node1"),
        vec![
            call(&["list", "vm1"]),
            call(&["create", xmfile, "name=\"vm1\""]),
            call(&["list", "vm1"]),
        ]
    );
    assert_eq!(lab.domains("node1"), vec!["vm1"]);
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    a.expect("monitor", rc::SUCCESS);
    a.expect("status", rc::SUCCESS);

    lab.clear_calls("node1");
    a.expect("stop", rc::SUCCESS);
    assert_eq!(
        lab.calls("node1"),
        vec![
            call(&["list", "vm1"]),
            call(&["shutdown", "vm1"]),
            call(&["list", "vm1"]),
        ]
    );
    assert!(lab.domains("node1").is_empty());
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("status", rc::NOT_RUNNING);
    // Stopped by us: no reboot grace for a recurring monitor.
    assert!(timed(&a.clone().recurring(), "monitor", rc::NOT_RUNNING) < Duration::from_secs(3));
}

#[test]
fn start_and_stop_are_idempotent() {
    let lab = Lab::new("twice");
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\n");
    let a = lab.agent("node1", &cfg);
    a.expect("start", rc::SUCCESS);
    a.expect("start", rc::SUCCESS);
    let creates = lab
        .calls("node1")
        .iter()
        .filter(|c| c.starts_with("[\"create\""))
        .count();
    assert_eq!(creates, 1);
    assert_eq!(lab.domains("node1"), vec!["vm1"]);

    a.expect("stop", rc::SUCCESS);
    lab.clear_calls("node1");
    assert!(timed(&a, "stop", rc::SUCCESS) < Duration::from_secs(3));
    // Gone: look for a half-migrated domain, then destroy once more, as
    // heartbeat does.
    assert_eq!(
        lab.calls("node1"),
        vec![
            call(&["list", "vm1"]),
            call(&["list", "vm1--migratedaway"]),
            call(&["destroy", "vm1"]),
        ]
    );
    a.expect("monitor", rc::NOT_RUNNING);
}

#[test]
fn a_guest_ignoring_shutdown_is_destroyed_within_the_deadline() {
    let lab = Lab::new("hung");
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\n");
    let a = lab.agent("node1", &cfg);
    a.expect("start", rc::SUCCESS);
    lab.flag("node1", "ignore-shutdown", "");
    lab.clear_calls("node1");
    let stop = a.clone().env("OCF_RESKEY_CRM_meta_timeout", "6000");
    let took = timed(&stop, "stop", rc::SUCCESS);
    assert!(took < Duration::from_secs(6), "stop took {took:?}");
    // 2/3 of the timeout for the orderly shutdown, less what destroy needs.
    assert!(took > Duration::from_secs(2), "stop took {took:?}");
    let calls = lab.calls("node1");
    let shutdown = calls.iter().position(|c| *c == call(&["shutdown", "vm1"]));
    let destroy = calls.iter().position(|c| *c == call(&["destroy", "vm1"]));
    assert!(shutdown.is_some() && destroy > shutdown, "{calls:#?}");
    assert!(lab.domains("node1").is_empty());
}

#[test]
fn shutdown_timeout_zero_destroys_at_once_and_acpi_presses_power() {
    let lab = Lab::new("acpi");
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\n");
    let a = lab.agent("node1", &cfg);
    a.expect("start", rc::SUCCESS);
    lab.clear_calls("node1");
    a.clone()
        .param("shutdown_timeout", "0")
        .expect("stop", rc::SUCCESS);
    let calls = lab.calls("node1");
    assert!(!calls.iter().any(|c| c.contains("shutdown")), "{calls:#?}");
    assert!(calls.contains(&call(&["destroy", "vm1"])), "{calls:#?}");

    a.expect("start", rc::SUCCESS);
    lab.clear_calls("node1");
    a.clone()
        .param("shutdown_acpi", "true")
        .expect("stop", rc::SUCCESS);
    assert!(lab
        .calls("node1")
        .contains(&call(&["trigger", "vm1", "power"])));
    assert!(lab.domains("node1").is_empty());

    a.expect("start", rc::SUCCESS);
    a.clone()
        .param("shutdown_timeout", "soon")
        .expect("start", rc::ERR_CONFIGURED);
    a.clone()
        .param("shutdown_timeout", "-1")
        .expect("validate-all", rc::ERR_CONFIGURED);
    // stop takes the default instead, with a warning (tests/hostile_stop.rs)
    a.clone()
        .param("shutdown_timeout", "-1")
        .expect("stop", rc::SUCCESS);
    assert!(lab.domains("node1").is_empty());
}

#[test]
fn stop_fails_before_the_timeout_when_destroy_does_not_work() {
    let lab = Lab::new("undead");
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\n");
    let a = lab.agent("node1", &cfg);
    a.expect("start", rc::SUCCESS);
    lab.flag("node1", "ignore-shutdown", "");
    lab.flag("node1", "fail-destroy", "");
    let t = Instant::now();
    a.clone()
        .env("OCF_RESKEY_CRM_meta_timeout", "4000")
        .run("stop")
        .code(rc::ERR_GENERIC)
        .stderr(predicates::str::contains(
            "ocf-exit-reason:Xen domain vm1 is still there",
        ));
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert_eq!(lab.domains("node1"), vec!["vm1"]);
}

#[test]
fn live_migration_between_two_hosts() {
    let lab = Lab::new("migrate");
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\n");
    let n1 = lab.agent("node1", &cfg);
    let n2 = lab.agent("node2", &cfg);
    n1.expect("start", rc::SUCCESS);
    lab.clear_calls("node1");

    n1.clone()
        .env("OCF_RESKEY_CRM_meta_migrate_source", "node1")
        .env("OCF_RESKEY_CRM_meta_migrate_target", "node2")
        .expect("migrate_to", rc::SUCCESS);
    assert_eq!(
        lab.calls("node1"),
        vec![call(&["list", "vm1"]), call(&["migrate", "vm1", "node2"])]
    );
    assert!(lab.domains("node1").is_empty());
    assert_eq!(lab.domains("node2"), vec!["vm1"]);

    n2.clone()
        .env("OCF_RESKEY_CRM_meta_migrate_source", "node1")
        .env("OCF_RESKEY_CRM_meta_migrate_target", "node2")
        .expect("migrate_from", rc::SUCCESS);
    n2.clone().recurring().expect("monitor", rc::SUCCESS);
    // The source forgot the domain: a fast "not running", no grace.
    assert!(timed(&n1.clone().recurring(), "monitor", rc::NOT_RUNNING) < Duration::from_secs(3));
    n1.expect("stop", rc::SUCCESS);
    assert_eq!(lab.domains("node2"), vec!["vm1"]);
    n2.expect("stop", rc::SUCCESS);
    assert!(lab.domains("node2").is_empty());
}

#[test]
fn failed_migrations_are_errors() {
    let lab = Lab::new("migfail");
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\n");
    let n1 = lab.agent("node1", &cfg);
    let to = |t: &str| n1.clone().env("OCF_RESKEY_CRM_meta_migrate_target", t);
    // not running here
    to("node2").expect("migrate_to", rc::ERR_GENERIC);
    n1.expect("start", rc::SUCCESS);
    // no target at all, and an unknown host
    n1.expect("migrate_to", rc::ERR_GENERIC);
    to("nowhere").expect("migrate_to", rc::ERR_GENERIC);
    assert_eq!(lab.domains("node1"), vec!["vm1"]);
    n1.clone().recurring().expect("monitor", rc::SUCCESS);
    // nothing arrives on node2: migrate_from gives up after 2/3 of its timeout
    let t = Instant::now();
    lab.agent("node2", &cfg)
        .env("OCF_RESKEY_CRM_meta_timeout", "3000")
        .expect("migrate_from", rc::ERR_GENERIC);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    n1.expect("stop", rc::SUCCESS);
}

#[test]
fn node_ip_attribute_picks_the_migration_address() {
    let lab = Lab::new("nodeip");
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\n");
    // A crm_attribute double: logs its argv, answers "node2".
    let log = lab.path().join("crm_attribute.calls");
    let script = lab.path().join("bin/crm_attribute");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\necho node2\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let n1 = lab
        .agent("node1", &cfg)
        .param("node_ip_attribute", "migration_ip");
    n1.expect("start", rc::SUCCESS);
    lab.clear_calls("node1");
    n1.clone()
        .env("OCF_RESKEY_CRM_meta_migrate_target", "peer")
        .expect("migrate_to", rc::SUCCESS);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "--type nodes --node peer -n migration_ip -G -q\n"
    );
    assert!(lab
        .calls("node1")
        .contains(&call(&["migrate", "vm1", "node2"])));
    assert_eq!(lab.domains("node2"), vec!["vm1"]);
}

#[test]
fn missing_xmfile_probe_7_stop_0_start_5() {
    let lab = Lab::new("noconf");
    let a = lab.agent("node1", &lab.path().join("no-such-dir/vm1.cfg"));
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("status", rc::NOT_RUNNING);
    a.expect("stop", rc::SUCCESS);
    a.run("start")
        .code(rc::ERR_INSTALLED)
        .stderr(predicates::str::contains("does not exist"));
    a.expect("validate-all", rc::ERR_INSTALLED);
    // no create was attempted; the name came from the instance
    assert!(!lab.calls("node1").iter().any(|c| c.contains("create")));
    assert!(lab.calls("node1").contains(&call(&["list", "vm1"])));
}

#[test]
fn a_running_guest_is_still_stopped_when_its_xmfile_is_gone() {
    let lab = Lab::new("lostconf");
    let cfg = lab.config("vm1.cfg", "name = \"guest-a\"\n");
    let a = lab.agent("node1", &cfg);
    a.expect("start", rc::SUCCESS);
    assert_eq!(lab.domains("node1"), vec!["guest-a"]);
    std::fs::remove_file(&cfg).unwrap();
    // the name recorded at start is used, not the instance name
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    assert!(lab.domains("node1").is_empty());
}

#[test]
fn names_with_spaces_stay_one_argument() {
    let lab = Lab::new("spaces");
    let cfg = lab.config("vm1.cfg", "memory = 256\n");
    let a = lab.agent("node1", &cfg).param("name", "my guest");
    a.expect("start", rc::SUCCESS);
    assert!(lab.calls("node1").contains(&call(&[
        "create",
        cfg.to_str().unwrap(),
        "name=\"my guest\""
    ])));
    assert_eq!(lab.domains("node1"), vec!["my guest"]);
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    a.expect("stop", rc::SUCCESS);
    assert!(lab
        .calls("node1")
        .contains(&call(&["shutdown", "my guest"])));
    assert!(lab.domains("node1").is_empty());

    // and from the config file
    let cfg2 = lab.config("vm2.cfg", "name = 'web server' # quoted\n");
    let b = lab.agent("node1", &cfg2);
    b.expect("start", rc::SUCCESS);
    assert_eq!(lab.domains("node1"), vec!["web server"]);
    b.expect("stop", rc::SUCCESS);
}

#[test]
fn name_is_parsed_from_xmfile_and_the_name_parameter_wins() {
    let lab = Lab::new("parse");
    let cfg = lab.config(
        "vm1.cfg",
        "# guest seven\nkernel = \"/boot/vmlinuz\"\nname = \"guest7\"\nmemory = 512\n",
    );
    let a = lab.agent("node1", &cfg);
    a.expect("start", rc::SUCCESS);
    assert!(lab.calls("node1").contains(&call(&[
        "create",
        cfg.to_str().unwrap(),
        "name=\"guest7\""
    ])));
    assert_eq!(lab.domains("node1"), vec!["guest7"]);
    a.expect("stop", rc::SUCCESS);

    a.clone()
        .param("name", "other")
        .expect("start", rc::SUCCESS);
    assert_eq!(lab.domains("node1"), vec!["other"]);
    a.clone().param("name", "other").expect("stop", rc::SUCCESS);

    // no name line: the instance name, passed on the command line
    let bare = lab.config("bare.cfg", "memory = 128\n");
    lab.agent("node1", &bare).expect("start", rc::SUCCESS);
    assert_eq!(lab.domains("node1"), vec!["vm1"]);
    lab.agent("node1", &bare).expect("stop", rc::SUCCESS);
}

#[test]
fn unsafe_names_are_rejected() {
    let lab = Lab::new("unsafe");
    for (file, text) in [
        ("expr.cfg", "name = \"vm%d\" % 3\n"),
        ("bare.cfg", "name = vm1\n"),
        ("num.cfg", "name = \"42\"\n"),
        ("dash.cfg", "name = \"-h\"\n"),
        ("quote.cfg", "name = 'a\"b'\n"),
        ("dom0.cfg", "name = \"Domain-0\"\n"),
    ] {
        let cfg = lab.config(file, text);
        let a = lab.agent("node1", &cfg);
        a.run("start")
            .code(rc::ERR_CONFIGURED)
            .stderr(predicates::str::contains("set the name parameter"));
        a.expect("validate-all", rc::ERR_CONFIGURED);
        a.expect("monitor", rc::NOT_RUNNING);
        a.expect("stop", rc::SUCCESS);
    }
    let cfg = lab.config("ok.cfg", "name = \"vm1\"\n");
    for bad in ["-rf", "1234", "a\"b", " padded"] {
        let a = lab.agent("node1", &cfg).param("name", bad);
        for action in ["start", "stop", "monitor", "validate-all"] {
            a.expect(action, rc::ERR_CONFIGURED);
        }
    }
    lab.agent("node1", &cfg)
        .param("xmfile", "relative/vm1.cfg")
        .expect("start", rc::ERR_CONFIGURED);
    assert!(!lab.calls("node1").iter().any(|c| c.contains("create")));
    assert!(lab.domains("node1").is_empty());
}

#[test]
fn without_xl_probe_7_stop_0_start_5() {
    let lab = Lab::new("noxl");
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\n");
    let a = lab.agent("node1", &cfg).env("PATH", "/nonexistent");
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("stop", rc::SUCCESS);
    a.expect("start", rc::ERR_INSTALLED);
    a.clone().recurring().expect("monitor", rc::ERR_GENERIC);
    let hidden = lab
        .agent("node1", &cfg)
        .env("OCF_TESTER_FAIL_HAVE_BINARY", "1");
    hidden.expect("monitor", rc::NOT_RUNNING);
    hidden.expect("meta-data", rc::SUCCESS);
}

#[test]
fn a_rebooting_guest_is_not_reported_dead() {
    let lab = Lab::new("reboot");
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\n");
    let a = lab.agent("node1", &cfg);
    a.expect("start", rc::SUCCESS);
    // The guest vanishes and comes back 1.5 s later.
    lab.xl("node1", &["destroy", "vm1"]);
    let cfg2 = cfg.clone();
    let host = lab.node("node1").clone();
    let back = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let st = host.xl(&["create", cfg2.to_str().unwrap()]);
        assert!(st.status.success(), "{st:?}");
    });
    a.clone().recurring().expect("monitor", rc::SUCCESS);
    back.join().unwrap();
    // Gone for good: not running after the bounded grace period.
    lab.xl("node1", &["destroy", "vm1"]);
    let took = timed(&a.clone().recurring(), "monitor", rc::NOT_RUNNING);
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(9),
        "{took:?}"
    );
    // A probe looks once.
    assert!(timed(&a, "monitor", rc::NOT_RUNNING) < Duration::from_secs(3));
    a.expect("stop", rc::SUCCESS);
}

#[test]
fn monitor_scripts_and_memory_management() {
    let lab = Lab::new("extras");
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\nmemory = 256\n");
    let a = lab.agent("node1", &cfg);
    a.expect("start", rc::SUCCESS);
    a.clone()
        .param("monitor_scripts", "/bin/true true")
        .recurring()
        .expect("monitor", rc::SUCCESS);
    a.clone()
        .param("monitor_scripts", "/bin/true /bin/false")
        .recurring()
        .expect("monitor", rc::ERR_GENERIC);
    a.clone()
        .param("monitor_scripts", "/no/such/script")
        .expect("validate-all", rc::ERR_INSTALLED);
    a.expect("stop", rc::SUCCESS);

    lab.flag("node1", "total-memory", "4096");
    let m = a
        .clone()
        .param("allow_mem_management", "yes")
        .param("reserved_Dom0_memory", "1024");
    lab.clear_calls("node1");
    m.expect("start", rc::SUCCESS);
    let xmfile = cfg.to_str().unwrap();
    assert!(lab
        .calls("node1")
        .contains(&call(&["create", xmfile, "name=\"vm1\"", "memory=3072"])));
    // the config file is not edited
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        "name = \"vm1\"\nmemory = 256\n"
    );
    // a second guest started by hand: stopping ours gives it everything
    let other = lab.config("other.cfg", "name = \"other\"\n");
    lab.xl("node1", &["create", other.to_str().unwrap()]);
    lab.clear_calls("node1");
    m.expect("stop", rc::SUCCESS);
    assert!(lab
        .calls("node1")
        .iter()
        .any(|c| c.starts_with("[\"mem-set\"") && c.ends_with("\"3072\"]")));
}

#[test]
fn meta_data_is_valid_and_names_every_heartbeat_parameter() {
    let out = Command::new(BIN)
        .env_clear()
        .arg("meta-data")
        .output()
        .unwrap();
    assert!(out.status.success());
    let xml = String::from_utf8(out.stdout).unwrap();
    let heartbeat = Command::new("/bin/sh")
        .args([
            "-c",
            "OCF_ROOT=/usr/lib/ocf /usr/lib/ocf/resource.d/heartbeat/Xen meta-data",
        ])
        .output();
    if let Some(h) = heartbeat.ok().filter(|h| h.status.success()) {
        let h = String::from_utf8_lossy(&h.stdout);
        for p in h.split("<parameter name=\"").skip(1) {
            let name = p.split('"').next().unwrap();
            assert!(
                xml.contains(&format!("<parameter name=\"{name}\"")),
                "{name}"
            );
        }
    }
    let dir = tempdir("xen-meta");
    let f = dir.path().join("meta.xml");
    std::fs::write(&f, &xml).unwrap();
    let st = Command::new("xmllint")
        .args([
            "--noout",
            "--dtdvalid",
            "/usr/share/resource-agents/ra-api-1.dtd",
        ])
        .arg(&f)
        .output();
    if let Ok(st) = st {
        assert!(st.status.success(), "meta-data does not validate: {st:?}");
    }
}

#[test]
fn ocf_tester_passes() {
    if !support::have_ocf_tester() {
        return;
    }
    let lab = Lab::new("tester");
    // ocf-tester runs meta-data as nobody: the agent must be reachable.
    std::fs::set_permissions(lab.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent = lab.path().join("Xen");
    std::fs::copy(BIN, &agent).unwrap();
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\n");
    let cfg = cfg.to_string_lossy();
    support::ocf_tester("vm1", &[("xmfile", &*cfg)], &agent, |c| {
        c.env_clear()
            .env("PATH", &lab.node("node1").path)
            .env("XL_DOUBLE_STATE", lab.host("node1"))
            .env("HA_RSCTMP", lab.path().join("node1/rsctmp"))
            .env("HA_LOGFACILITY", "none");
    });
    assert!(lab.domains("node1").is_empty());
}
