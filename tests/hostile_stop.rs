//! Stop (and a probe) never fails on a parameter it does not need (issue
//! 13, part 1): the standing suite that keeps it so.
//!
//! A stop that fails gets the node fenced; a stop that answers 6 also
//! leaves the resource running. Before this suite, a malformed value that
//! stop never reads (`run_fsck=bogus`, `shutdown_acpi=maybe`,
//! `OCF_CHECK_LEVEL=abc`) made every agent answer 6 to stop and leave the
//! filesystem mounted, the guest running; the heartbeat agents stop. The
//! rule, applied once in the dispatcher (`ocf::agent`, `Params::
//! parse_lenient`, `Context::from_env`): stop and probes read only what
//! names the resource strictly; any other malformed value falls back to its
//! default with one warning naming parameter and value; only a missing or
//! malformed identity stays `OCF_ERR_CONFIGURED`. Start, recurring monitors
//! and validate-all stay strict.
//!
//! What it runs, as processes on real components:
//! - Filesystem and the rgmanager `fs` persona on a loop-backed ext4 the
//!   agent mounted: stop with each malformed value unmounts it (0);
//! - Xen over the `xl` test double (Xen cannot run here): stop destroys
//!   the guest;
//! - VirtualDomain and the `vm` persona on libvirt's test driver (a
//!   private libvirtd, `support::libvirt::Lab`): stop stops the domain;
//! - iscsi, LVM, LVM-activate and the `lvm` persona need the guest kernel
//!   for a running resource; here they stop a resource that is not running
//!   with malformed non-identity values (0, not 6; the dispatcher's rule
//!   itself is unit-tested in `ocf`);
//! - a property test feeding arbitrary bytes to every parameter of every
//!   agent's table, `OCF_CHECK_LEVEL`, the CRM/rgmanager timeouts and the
//!   instance name through `meta-data`, `validate-all` and `stop` of a
//!   resource that does not exist: no panic, no hang, and stop is 0 while
//!   the identity is sound.
//!
//! Fixtures clean up in `Drop`, also when an assertion fails.

mod doubles;
mod support;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::libvirt::Lab;
use support::{expect, is_mounted, rc, Agent, LoopDevice};

const FILESYSTEM: &str = env!("CARGO_BIN_EXE_Filesystem");
const FS_PERSONA: &str = env!("CARGO_BIN_EXE_fs");
const XEN: &str = env!("CARGO_BIN_EXE_Xen");
const ISCSI: &str = env!("CARGO_BIN_EXE_iscsi");
const LVM: &str = env!("CARGO_BIN_EXE_LVM");
const LVM_ACTIVATE: &str = env!("CARGO_BIN_EXE_LVM-activate");
const LVM_PERSONA: &str = env!("CARGO_BIN_EXE_lvm");
const VIRTUALDOMAIN: &str = env!("CARGO_BIN_EXE_VirtualDomain");
const VM_PERSONA: &str = env!("CARGO_BIN_EXE_vm");

/// One malformed setting: an environment variable and its value.
type Bad = (&'static str, &'static str);

/// Stop with `bad` answered 0, and said once what it passed over: a
/// warning naming the setting and the value.
#[track_caller]
fn warned_once(stderr: &str, (key, value): Bad) {
    let name = key.strip_prefix("OCF_RESKEY_").unwrap_or(key);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("WARNING") && l.contains(name) && l.contains(value))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{key}={value}: one warning wanted\n{stderr}"
    );
}

/// A loop-backed ext4 in a fresh directory.
struct Loop {
    dir: tempfile::TempDir,
    dev: Option<LoopDevice>,
    mnt: PathBuf,
}

impl Loop {
    fn new(tag: &str) -> Loop {
        let dir = support::tempdir(&format!("hstop-{tag}"));
        let dev = LoopDevice::new(dir.path(), 64, "ext4");
        Loop {
            mnt: dir.path().join("mnt"),
            dir,
            dev: Some(dev),
        }
    }

    fn device(&self) -> &str {
        &self.dev.as_ref().unwrap().device
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        support::unmount_tree(&self.mnt);
        self.dev.take();
    }
}

/// Filesystem's malformed values from the reproduction.
const FILESYSTEM_BAD: [Bad; 6] = [
    ("OCF_CHECK_LEVEL", "abc"),
    ("OCF_RESKEY_run_fsck", "bogus"),
    ("OCF_RESKEY_fast_stop", "perhaps"),
    ("OCF_RESKEY_term_signals", "FOO"),
    ("OCF_RESKEY_signal_delay", "abc"),
    ("OCF_RESKEY_kill_signals", "0"),
];

#[test]
fn filesystem_stops_a_mount_whatever_the_values_it_does_not_need() {
    let fs = Loop::new("fs");
    let good = Agent::new(FILESYSTEM, fs.dir.path())
        .env("OCF_RESOURCE_INSTANCE", "fs1")
        .env("OCF_RESKEY_CRM_meta_timeout", "20000")
        .param("device", fs.device())
        .param("directory", &fs.mnt)
        .param("fstype", "ext4");
    for (key, value) in FILESYSTEM_BAD {
        let bad = good.clone().env(key, value);
        // start and a recurring monitor stay strict
        support::expect_reason(&bad, "start", rc::ERR_CONFIGURED, value);
        assert!(!is_mounted(&fs.mnt));
        good.expect("start", rc::SUCCESS);
        support::expect_reason(
            &bad.clone().recurring(),
            "monitor",
            rc::ERR_CONFIGURED,
            value,
        );
        // a probe and stop act
        expect(&bad, "monitor", rc::SUCCESS);
        let stderr = expect(&bad, "stop", rc::SUCCESS);
        warned_once(&stderr, (key, value));
        assert!(!is_mounted(&fs.mnt), "{key}={value}: stop left it mounted");
        expect(&bad, "monitor", rc::NOT_RUNNING);
    }
    // a probe at an unsupported depth answers at depth 0
    good.expect("start", rc::SUCCESS);
    expect(&good.clone().check_level(5), "monitor", rc::SUCCESS);
    good.expect("stop", rc::SUCCESS);
    // only a missing identity stays not configured
    let no_directory = good.clone().unset("OCF_RESKEY_directory");
    expect(&no_directory, "stop", rc::ERR_CONFIGURED);
}

#[test]
fn the_fs_persona_stops_a_mount_whatever_the_values_it_does_not_need() {
    let fs = Loop::new("persona");
    let name = format!("hstop{}", std::process::id());
    let good = support::rgmanager::agent(FS_PERSONA, "fs", &name, 30)
        .env("HA_RSCTMP", fs.dir.path().join("rsctmp"))
        .param("mountpoint", &fs.mnt)
        .param("device", fs.device())
        .param("fstype", "ext4");
    for (key, value) in [
        ("OCF_CHECK_LEVEL", "abc"),
        ("OCF_RESKEY_force_fsck", "bogus"),
        ("OCF_RESKEY_force_unmount", "perhaps"),
        ("OCF_RESKEY_self_fence", "maybe"),
        ("OCF_RESKEY_quick_status", "sometimes"),
    ] {
        let bad = good.clone().env(key, value);
        expect(&bad, "start", rc::ERR_CONFIGURED);
        good.expect("start", rc::SUCCESS);
        let stderr = expect(&bad, "stop", rc::SUCCESS);
        warned_once(&stderr, (key, value));
        assert!(!is_mounted(&fs.mnt), "{key}={value}: stop left it mounted");
    }
}

#[test]
fn xen_stops_a_guest_whatever_the_values_it_does_not_need() {
    let dir = support::tempdir("hstop-xen");
    let xen = doubles::XenHost::new(dir.path());
    let xmfile = doubles::vm1_xmfile(dir.path());
    let good = Agent::new(XEN, dir.path())
        .env("PATH", &xen.path)
        .env("XL_DOUBLE_STATE", &xen.state)
        .env("OCF_RESOURCE_INSTANCE", "vm1")
        .env("OCF_RESKEY_CRM_meta_timeout", "20000")
        .param("xmfile", &xmfile);
    let listed = || xen.vm1_listed();
    for (key, value) in [
        ("OCF_CHECK_LEVEL", "abc"),
        ("OCF_RESKEY_shutdown_acpi", "maybe"),
        ("OCF_RESKEY_shutdown_timeout", "abc"),
        ("OCF_RESKEY_allow_mem_management", "perhaps"),
        ("OCF_RESKEY_reserved_Dom0_memory", "lots"),
    ] {
        let bad = good.clone().env(key, value);
        support::expect_reason(&bad, "start", rc::ERR_CONFIGURED, value);
        assert!(!listed());
        good.expect("start", rc::SUCCESS);
        expect(&bad, "monitor", rc::SUCCESS);
        let stderr = expect(&bad, "stop", rc::SUCCESS);
        warned_once(&stderr, (key, value));
        assert!(!listed(), "{key}={value}: stop left the guest running");
        expect(&bad, "monitor", rc::NOT_RUNNING);
    }
    // a malformed identity stays not configured
    expect(
        &good.clone().param("xmfile", "vm1.cfg"),
        "stop",
        rc::ERR_CONFIGURED,
    );
}

#[test]
fn virtualdomain_stops_a_domain_whatever_the_values_it_does_not_need() {
    let Some(lab) = Lab::new("hstop-vd") else {
        return;
    };
    let dom = format!("hstop-vd-{}", std::process::id());
    let cfg = lab.test_config("vd.xml", &dom);
    let good = lab.agent(&cfg).env("OCF_RESKEY_CRM_meta_timeout", "20000");
    for (key, value) in [
        ("OCF_CHECK_LEVEL", "abc"),
        ("OCF_RESKEY_force_stop", "maybe"),
        ("OCF_RESKEY_shutdown_mode", "bogus"),
        ("OCF_RESKEY_migration_downtime", "abc"),
        ("OCF_RESKEY_save_config_on_stop", "perhaps"),
    ] {
        let bad = good.clone().env(key, value);
        expect(&bad, "start", rc::ERR_CONFIGURED);
        assert_eq!(lab.domstate(&dom), "", "{key}={value}: started");
        good.expect("start", rc::SUCCESS);
        assert_eq!(lab.domstate(&dom), "running");
        expect(&bad, "monitor", rc::SUCCESS);
        let stderr = expect(&bad, "stop", rc::SUCCESS);
        warned_once(&stderr, (key, value));
        assert_eq!(lab.domstate(&dom), "", "{key}={value}: still running");
    }
    // a combination stop does not act on
    let both = good
        .clone()
        .param("force_stop", "true")
        .param("snapshot", lab.path().join("snap"));
    expect(&both, "start", rc::ERR_CONFIGURED);
    good.expect("start", rc::SUCCESS);
    expect(&both, "stop", rc::SUCCESS);
    assert_eq!(lab.domstate(&dom), "");
}

#[test]
fn the_vm_persona_stops_a_domain_whatever_the_values_it_does_not_need() {
    let Some(lab) = Lab::new("hstop-vm") else {
        return;
    };
    let dom = format!("hstop-vm-{}", std::process::id());
    let cfg = lab.test_config("vm.xml", &dom);
    let good = support::rgmanager::agent(VM_PERSONA, "vm", &dom, 20)
        .env("HA_RSCTMP", lab.path().join("rsctmp"))
        .param("hypervisor_uri", lab.daemon.test_uri())
        .param("xmlfile", &cfg);
    for (key, value) in [
        ("OCF_CHECK_LEVEL", "abc"),
        ("OCF_RESKEY_migrate", "sometimes"),
        ("OCF_RESKEY_use_virsh", "abc"),
        ("OCF_RESKEY_max_restarts", "many"),
        ("OCF_RESKEY_migration_mapping", "bogus"),
        ("OCF_RESKEY_no_kill", "perhaps"),
    ] {
        let bad = good.clone().env(key, value);
        expect(&bad, "start", rc::ERR_CONFIGURED);
        good.expect("start", rc::SUCCESS);
        assert_eq!(lab.domstate(&dom), "running");
        let stderr = expect(&bad, "stop", rc::SUCCESS);
        warned_once(&stderr, (key, value));
        assert_eq!(lab.domstate(&dom), "", "{key}={value}: still running");
    }
}

/// An agent of a resource that is not running here, with its identity
/// sound, its state under `state`.
fn absent(bin: &str, state: &Path, identity: &[(&str, &str)]) -> Agent {
    let mut a = Agent::new(bin, state)
        .env("OCF_RESOURCE_INSTANCE", "absent")
        .env("OCF_RESKEY_CRM_meta_timeout", "20000")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    for (k, v) in identity {
        a = a.param(k, *v);
    }
    a
}

#[test]
fn iscsi_and_lvm_stop_a_resource_that_is_not_running_whatever_the_values() {
    let dir = support::tempdir("hstop-absent");
    let vg = format!("hstop_absent_{}", std::process::id());
    // (agent, its identity, malformed values it does not need to stop)
    type AbsentCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<Bad>);
    let cases: [AbsentCase; 4] = [
        (
            ISCSI,
            vec![
                ("portal", "192.0.2.1:3260"),
                ("target", "iqn.2003-01.org.example:hstop"),
            ],
            vec![
                ("OCF_CHECK_LEVEL", "abc"),
                ("OCF_RESKEY_try_recovery", "maybe"),
            ],
        ),
        (
            LVM_ACTIVATE,
            vec![("vgname", &vg)],
            vec![
                ("OCF_CHECK_LEVEL", "abc"),
                ("OCF_RESKEY_activation_mode", "bogus"),
                ("OCF_RESKEY_takeover", "maybe"),
                ("OCF_RESKEY_partial_activation", "perhaps"),
            ],
        ),
        (
            LVM,
            vec![("volgrpname", &vg)],
            vec![
                ("OCF_CHECK_LEVEL", "abc"),
                ("OCF_RESKEY_exclusive", "maybe"),
                ("OCF_RESKEY_partial_activation", "perhaps"),
            ],
        ),
        (
            LVM_PERSONA,
            vec![("name", "hstop"), ("vg_name", &vg)],
            vec![
                ("OCF_CHECK_LEVEL", "abc"),
                ("OCF_RESKEY_self_fence", "maybe"),
                ("OCF_RESKEY_nfslock", "perhaps"),
            ],
        ),
    ];
    for (bin, identity, bad) in cases {
        let good = absent(bin, dir.path(), &identity);
        for (key, value) in bad {
            let a = good.clone().env(key, value);
            expect(&a, "validate-all", rc::ERR_CONFIGURED);
            let stderr = expect(&a, "stop", rc::SUCCESS);
            warned_once(&stderr, (key, value));
        }
        // without its identity, stop cannot know what to stop
        let last = identity[identity.len() - 1].0;
        let unnamed = good.clone().unset(&format!("OCF_RESKEY_{last}"));
        expect(&unnamed, "stop", rc::ERR_CONFIGURED);
    }
}

// The property test.

/// Every binary, with the parameters that name its resource and sound
/// values for them naming a resource that does not exist (`{dir}` is the
/// case's directory).
const AGENTS: &[(&str, &[(&str, &str)])] = &[
    (
        FILESYSTEM,
        &[("device", "/dev/hstop-none"), ("directory", "{dir}/mnt")],
    ),
    (XEN, &[("xmfile", "{dir}/none.cfg"), ("name", "hstopfuzz")]),
    (
        ISCSI,
        &[
            ("portal", "192.0.2.1:3260"),
            ("target", "iqn.2003-01.org.example:hstopfuzz"),
        ],
    ),
    (LVM_ACTIVATE, &[("vgname", "hstop_fuzz_vg"), ("lvname", "")]),
    (LVM, &[("volgrpname", "hstop_fuzz_vg")]),
    (
        VIRTUALDOMAIN,
        &[
            ("config", "{dir}/none.xml"),
            ("hypervisor", "test:///default"),
        ],
    ),
    (
        FS_PERSONA,
        &[
            ("name", "hstopfuzz"),
            ("mountpoint", "{dir}/mnt"),
            ("device", "/dev/hstop-none"),
        ],
    ),
    (
        LVM_PERSONA,
        &[
            ("name", "hstopfuzz"),
            ("vg_name", "hstop_fuzz_vg"),
            ("lv_name", ""),
        ],
    ),
    (
        VM_PERSONA,
        &[
            ("name", "hstopfuzz"),
            ("hypervisor_uri", "test:///default"),
            ("xmlfile", ""),
            ("path", ""),
        ],
    ),
];

/// The parameter names of an agent's table, as its meta-data lists them.
fn table(bin: &str) -> Vec<String> {
    let out = Command::new(bin)
        .arg("meta-data")
        .env_clear()
        .output()
        .unwrap();
    let xml = String::from_utf8(out.stdout).unwrap();
    let names: Vec<String> = xml
        .split("<parameter name=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect();
    assert!(!names.is_empty(), "{bin}: no parameters in meta-data");
    names
}

/// Arbitrary bytes as an environment value (no NUL: the kernel cannot
/// pass one), sometimes one of the shapes agents parse.
fn value() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let no_nul = |v: Vec<u8>| v.into_iter().filter(|&b| b != 0).collect::<Vec<u8>>();
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(no_nul),
        "[a-zA-Z0-9 ,:/._=-]{0,24}".prop_map(String::into_bytes),
        prop_oneof![
            Just("yes"),
            Just("no"),
            Just("-1"),
            Just("0"),
            Just("18446744073709551615"),
            Just("99999999999999999999999999"),
            Just("--config=x"),
            Just("-o remount"),
            Just("../.."),
            Just("/dev/zero"),
        ]
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

/// A caller's timeout, as anything but a small number: with a budget of
/// a few milliseconds a stop may rightly fail, which is not what this
/// test is about.
fn timeout_value(v: Vec<u8>, min: u64) -> Vec<u8> {
    let small = std::str::from_utf8(&v)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .is_some_and(|n| n < min);
    if small {
        let mut v = v;
        v.extend_from_slice(b"000000");
        v
    } else {
        v
    }
}

/// One generated run: a value (or none) for every parameter, the check
/// level, both timeouts and the instance name.
#[derive(Debug, Clone)]
struct Case {
    params: Vec<Option<Vec<u8>>>,
    check_level: Option<Vec<u8>>,
    crm_timeout: Option<Vec<u8>>,
    rgm_timeout: Option<Vec<u8>>,
    instance: Option<Vec<u8>>,
    /// Whether the identity is fuzzed too (then stop may be 6).
    fuzz_identity: bool,
}

fn cases(n: usize) -> impl proptest::strategy::Strategy<Value = Case> {
    use proptest::prelude::*;
    let opt = || proptest::option::of(value());
    (
        proptest::collection::vec(opt(), n),
        opt(),
        opt(),
        opt(),
        opt(),
        proptest::bool::weighted(0.25),
    )
        .prop_map(
            |(params, check_level, crm, rgm, instance, fuzz_identity)| Case {
                params,
                check_level,
                crm_timeout: crm.map(|v| timeout_value(v, 10_000)),
                rgm_timeout: rgm.map(|v| timeout_value(v, 10)),
                instance,
                fuzz_identity,
            },
        )
}

/// Run one case through `meta-data`, `validate-all` and `stop`.
fn run_case(
    bin: &str,
    names: &[String],
    identity: &[(&str, &str)],
    case: &Case,
) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("hstop-prop-")
        .tempdir()
        .unwrap();
    let empty_path = dir.path().join("bin");
    std::fs::create_dir(&empty_path).unwrap();
    let fill = |v: &str| v.replace("{dir}", dir.path().to_str().unwrap());
    let mut env: Vec<(String, OsString)> = vec![
        ("HA_RSCTMP".into(), dir.path().join("rsctmp").into()),
        ("HA_LOGFACILITY".into(), "none".into()),
        ("OCF_ROOT".into(), "/usr/lib/ocf".into()),
        // nothing dangerous: no tool at all
        ("PATH".into(), empty_path.into()),
    ];
    let os = |v: &[u8]| OsString::from_vec(v.to_vec());
    for (name, v) in names.iter().zip(&case.params) {
        let sound = identity.iter().find(|(n, _)| n == name);
        // where the domain lives stays sound: an unreachable hypervisor is
        // retried, rightly, until the operation's (here unbounded) timeout
        let keep = !case.fuzz_identity || name.starts_with("hypervisor");
        let value = match (sound, keep) {
            (Some((_, s)), true) => Some(OsString::from(fill(s))),
            _ => v.as_deref().map(os),
        };
        if let Some(value) = value {
            env.push((format!("OCF_RESKEY_{name}"), value));
        }
    }
    for (key, v) in [
        ("OCF_CHECK_LEVEL", &case.check_level),
        ("OCF_RESKEY_CRM_meta_timeout", &case.crm_timeout),
        ("OCF_RESKEY_RGMANAGER_meta_timeout", &case.rgm_timeout),
        ("OCF_RESOURCE_INSTANCE", &case.instance),
    ] {
        if let Some(v) = v {
            env.push((key.into(), os(v)));
        }
    }
    for action in ["meta-data", "validate-all", "stop"] {
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg(action);
        let (code, stderr) = support::run_within(cmd, Duration::from_secs(20))
            .map_err(|e| format!("{action}: {e}"))?;
        if code == 101 || code == 134 || code < 0 || stderr.contains("panicked") {
            return Err(format!("{action}: exit {code}, panic?\n{stderr}"));
        }
        if action == "meta-data" && code != 0 {
            return Err(format!("meta-data: exit {code}\n{stderr}"));
        }
        if action == "stop" && !case.fuzz_identity && code != 0 {
            return Err(format!(
                "stop of a resource that does not exist: exit {code}\n{stderr}"
            ));
        }
    }
    Ok(())
}

#[test]
fn arbitrary_bytes_never_panic_hang_or_fail_a_stop_over_a_non_identity_value() {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    for &(bin, identity) in AGENTS {
        let names = table(bin);
        for (n, _) in identity {
            assert!(
                names.iter().any(|m| m == n),
                "{bin}: {n} is not a parameter"
            );
        }
        let mut runner = TestRunner::new(Config {
            cases: 32,
            failure_persistence: None,
            // a shrink step is a process run too: keep a failure quick
            max_shrink_iters: 64,
            ..Config::default()
        });
        let result = runner.run(&cases(names.len()), |case| {
            run_case(bin, &names, identity, &case).map_err(TestCaseError::fail)
        });
        if let Err(e) = result {
            panic!("{bin}: {e}");
        }
    }
}
