//! LVM-activate and LVM on real LVM, inside a guest kernel.
//!
//! The host kernel here has no device-mapper, so [`lvm_suite_in_guest_kernel`]
//! boots the stock Debian kernel with virtme-ng (`vng`, QEMU TCG, the host's
//! root filesystem shared read-only) ONCE and runs this same test binary in
//! it with `RA_IN_GUEST=1 ... --ignored guest_`: every `guest_*` case runs in
//! that one boot, its libtest output comes back on vng's stdout, and the host
//! test fails if the guest run did not end with `test result: ok`
//! (`support::guest`, shared with tests/iscsi.rs).
//!
//! The `guest_*` tests are `#[ignore]`d on the host (they need the guest).
//! Each makes its own loop devices, VGs with unique names (with `-` in them,
//! which device-mapper escapes as `--`) and its own lvm.conf directory
//! (`LVM_SYSTEM_DIR`), and removes the dm devices and loops in `Drop`
//! (`support::lvm::LvmCase`, shared with tests/rgmanager_lvm.rs).
//!
//! No `vng` or kernel: the host test prints SKIP, unless `RA_REQUIRE_GUEST`
//! is set (CI installs both through `.ci/install-guest.sh`).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::guest::PATH;
use support::lvm::{LvmCase, LvmSuite};
use support::{
    bench_line, bench_start_stop, exit_reasons, expect, expect_reason, local_copy,
    monitor_median_ms, program_median_ms, rc, run, Agent,
};

const ACTIVATE: &str = env!("CARGO_BIN_EXE_LVM-activate");
const LEGACY: &str = env!("CARGO_BIN_EXE_LVM");
const HB_DIR: &str = "/usr/lib/ocf/resource.d/heartbeat";

// ---------------------------------------------------------------------------
// Host side: boot the guest once and run the guest cases in it.

#[test]
fn lvm_suite_in_guest_kernel() {
    support::guest::run(&support::guest::Suite {
        name: "lvm",
        modules: "kernel/drivers/md",
        env: &["LVM_SUPPRESS_FD_WARNINGS=1"],
        setup: "modprobe dm-mod; modprobe loop 2>/dev/null",
        limit: Duration::from_secs(15 * 60),
    });
}

// ---------------------------------------------------------------------------
// Guest side: fixtures.

/// The guest's lvm.conf: udev's LVM rules autoactivate every VG whose
/// metadata changes (a tag added, a system ID changed), with the guest's
/// global lvm.conf, not the case's: keep them from activating anything
/// behind the agents' backs, as a cluster node's lvm.conf would. Each case
/// starts from LVM's built-in defaults and writes its own lvm.conf.
const SUITE: LvmSuite = LvmSuite {
    host_test: "lvm_suite_in_guest_kernel",
    prefix: "ra",
    node_conf: closed_node_conf,
    case_conf: "",
};

fn closed_node_conf() -> String {
    format!("global {{\n event_activation = 0\n}}\n{VOLUME_LIST_EMPTY}")
}

/// One case of this suite ([`LvmCase`]: loop PVs, VGs, its own lvm.conf).
fn case(label: &str) -> LvmCase {
    LvmCase::new(&SUITE, label)
}

/// How this suite runs an agent on a case.
trait CaseAgent {
    fn agent(&self, bin: &str) -> Agent;
}

impl CaseAgent for LvmCase {
    /// An agent run with this case's state dir, lvm.conf and instance.
    fn agent(&self, bin: &str) -> Agent {
        Agent::new(bin, self.path())
            .env("LVM_SYSTEM_DIR", self.conf.as_os_str())
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .env("OCF_RESOURCE_INSTANCE", self.name.as_str())
    }
}

/// `lvm.conf` giving the host of `conf_dir` the system ID `id`.
fn system_id_conf(id: &str) -> String {
    format!(
        "global {{\n system_id_source = \"lvmlocal\"\n}}\nlocal {{\n system_id = \"{id}\"\n}}\n"
    )
}

const VOLUME_LIST_EMPTY: &str = "activation {\n volume_list = [ ]\n}\n";

/// Require 6 and exactly one exit reason containing `needle`.
#[track_caller]
fn expect_configured(agent: &Agent, action: &str, needle: &str) {
    expect_reason(agent, action, rc::ERR_CONFIGURED, needle);
}

// ---------------------------------------------------------------------------
// Guest cases.

#[test]
#[ignore = "runs inside the guest kernel: see lvm_suite_in_guest_kernel"]
fn guest_system_id_lifecycle_lv_only_and_whole_vg() {
    let mut c = case("sid");
    c.lvm_conf(&system_id_conf("node-a"));
    let pv = c.pv(32);
    let vg = c.vg("vg", &[pv], &["lv-1", "lv-2"]);
    assert_eq!(c.system_id(&vg), "node-a");
    let a = c
        .agent(ACTIVATE)
        .param("vgname", vg.as_str())
        .param("lvname", "lv-1")
        .param("vg_access_mode", "system_id");
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&a.clone().recurring(), "monitor", rc::NOT_RUNNING);
    expect(&a, "validate-all", rc::SUCCESS);
    expect(&a, "start", rc::SUCCESS);
    assert!(c.active(&vg, "lv-1"));
    assert!(!c.active(&vg, "lv-2"), "LV-only activation activated lv-2");
    expect(&a, "monitor", rc::SUCCESS);
    expect(&a.clone().recurring(), "monitor", rc::SUCCESS);
    expect(&a.clone().check_level(10), "monitor", rc::SUCCESS);
    expect_configured(&a.clone().check_level(20), "monitor", "depth 20");
    expect(&a, "start", rc::SUCCESS);
    assert!(c.active(&vg, "lv-1"));
    expect(&a, "stop", rc::SUCCESS);
    assert!(!c.active(&vg, "lv-1"));
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&a.clone().recurring(), "monitor", rc::NOT_RUNNING);
    expect(&a, "stop", rc::SUCCESS);

    // The whole VG.
    let w = c
        .agent(ACTIVATE)
        .param("vgname", vg.as_str())
        .param("vg_access_mode", "system_id")
        .env("OCF_RESOURCE_INSTANCE", "whole");
    expect(&w, "start", rc::SUCCESS);
    assert!(c.active(&vg, "lv-1") && c.active(&vg, "lv-2"));
    expect(&w.clone().check_level(10), "monitor", rc::SUCCESS);
    expect(&w, "stop", rc::SUCCESS);
    assert!(!c.active(&vg, "lv-1") && !c.active(&vg, "lv-2"));
    expect(&w, "monitor", rc::NOT_RUNNING);

    // Lost behind our back: a recurring monitor fails, a probe says 7.
    expect(&a, "start", rc::SUCCESS);
    c.lvm_ok(&["lvchange", "-an", &format!("{vg}/lv-1")]);
    let stderr = expect(&a.clone().recurring(), "monitor", rc::ERR_GENERIC);
    assert!(stderr.contains("no longer active"), "{stderr}");
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&a, "stop", rc::SUCCESS);
    expect(&a.clone().recurring(), "monitor", rc::NOT_RUNNING);
}

#[test]
#[ignore = "runs inside the guest kernel: see lvm_suite_in_guest_kernel"]
fn guest_tagging_lifecycle_refusal_and_takeover() {
    let mut c = case("tag");
    let pv = c.pv(32);
    let vg = c.vg("vg", &[pv], &["lv-1"]);
    c.lvm_conf(VOLUME_LIST_EMPTY);
    // volume_list = [ ] keeps plain activation out.
    c.lvm_ok(&["vgchange", "-ay", &vg]);
    assert!(!c.active(&vg, "lv-1"), "volume_list did not filter");
    let a = c
        .agent(ACTIVATE)
        .param("vgname", vg.as_str())
        .param("lvname", "lv-1")
        .param("vg_access_mode", "tagging");
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&a, "start", rc::SUCCESS);
    assert_eq!(c.tags(&vg), ["pacemaker"]);
    assert!(c.active(&vg, "lv-1"));
    expect(&a, "start", rc::SUCCESS);
    expect(&a, "monitor", rc::SUCCESS);
    expect(&a.clone().check_level(10), "monitor", rc::SUCCESS);
    expect(&a, "stop", rc::SUCCESS);
    assert!(c.tags(&vg).is_empty(), "our tag stayed: {:?}", c.tags(&vg));
    assert!(!c.active(&vg, "lv-1"));
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&a, "stop", rc::SUCCESS);

    // Another owner's tag: refused, nothing changed.
    c.lvm_ok(&["vgchange", "--addtag", "other-owner", &vg]);
    let stderr = expect(&a, "start", rc::ERR_GENERIC);
    assert!(exit_reasons(&stderr)[0].contains("other-owner"), "{stderr}");
    assert_eq!(c.tags(&vg), ["other-owner"]);
    assert!(!c.active(&vg, "lv-1"));
    // Allowed to take over: the foreign tag goes, ours comes.
    let t = a.clone().param("takeover", "true");
    let stderr = expect(&t, "start", rc::SUCCESS);
    assert!(
        stderr.contains("other-owner"),
        "takeover not logged: {stderr}"
    );
    assert_eq!(c.tags(&vg), ["pacemaker"]);
    assert!(c.active(&vg, "lv-1"));
    expect(&t, "stop", rc::SUCCESS);
    assert!(c.tags(&vg).is_empty());

    // A custom tag.
    let m = a.clone().param("tag", "mytag");
    expect(&m, "start", rc::SUCCESS);
    assert_eq!(c.tags(&vg), ["mytag"]);
    expect(&m, "stop", rc::SUCCESS);
    assert!(c.tags(&vg).is_empty());
}

#[test]
#[ignore = "runs inside the guest kernel: see lvm_suite_in_guest_kernel"]
fn guest_two_nodes_system_id_never_both_active() {
    let mut c = case("2sid");
    let conf_a = c.node_conf("a", &system_id_conf("node-a"));
    let conf_b = c.node_conf("b", &system_id_conf("node-b"));
    c.conf = conf_a.clone();
    let pv = c.pv(32);
    let vg = c.vg("vg", &[pv], &["lv-1", "lv-2"]);
    let node = |conf: &Path, lv: &str| {
        c.agent(ACTIVATE)
            .env("LVM_SYSTEM_DIR", conf.as_os_str())
            .env("OCF_RESOURCE_INSTANCE", lv)
            .param("vgname", vg.as_str())
            .param("lvname", lv)
            .param("vg_access_mode", "system_id")
    };
    let a = node(&conf_a, "lv-1");
    let b = node(&conf_b, "lv-2");
    expect(&a, "start", rc::SUCCESS);
    assert_eq!(c.system_id(&vg), "node-a");
    // B may not take the VG while it is active under A.
    let stderr = expect(&b, "start", rc::ERR_GENERIC);
    assert!(stderr.contains("node-a"), "{stderr}");
    assert_eq!(c.system_id(&vg), "node-a");
    assert!(!c.active(&vg, "lv-2"));
    expect(&a, "stop", rc::SUCCESS);
    // Released: B takes it over, logged.
    let stderr = expect(&b, "start", rc::SUCCESS);
    assert!(stderr.contains("taking over"), "{stderr}");
    assert_eq!(c.system_id(&vg), "node-b");
    assert!(c.active(&vg, "lv-2"));
    // Now A may not.
    expect(&a, "start", rc::ERR_GENERIC);
    assert_eq!(c.system_id(&vg), "node-b");
    assert!(!c.active(&vg, "lv-1"));
    expect(&b, "stop", rc::SUCCESS);
    assert!(!c.active(&vg, "lv-2"));
    // Takeover back to A once B released it.
    expect(&a, "start", rc::SUCCESS);
    assert_eq!(c.system_id(&vg), "node-a");
    expect(&a, "stop", rc::SUCCESS);
}

#[test]
#[ignore = "runs inside the guest kernel: see lvm_suite_in_guest_kernel"]
fn guest_two_nodes_tags_never_both_active() {
    let mut c = case("2tag");
    let pv = c.pv(32);
    let vg = c.vg("vg", &[pv], &["lv-1", "lv-2"]);
    c.lvm_conf(VOLUME_LIST_EMPTY);
    let node = |tag: &str, lv: &str| {
        c.agent(ACTIVATE)
            .env("OCF_RESOURCE_INSTANCE", lv)
            .param("vgname", vg.as_str())
            .param("lvname", lv)
            .param("vg_access_mode", "tagging")
            .param("tag", tag)
    };
    let a = node("node-a", "lv-1");
    let b = node("node-b", "lv-2");
    let b_takeover = b.clone().param("takeover", "true");
    expect(&a, "start", rc::SUCCESS);
    assert_eq!(c.tags(&vg), ["node-a"]);
    expect(&b, "start", rc::ERR_GENERIC);
    expect(&b_takeover, "start", rc::ERR_GENERIC);
    assert_eq!(c.tags(&vg), ["node-a"]);
    assert!(!c.active(&vg, "lv-2"));
    expect(&a, "stop", rc::SUCCESS);
    assert!(c.tags(&vg).is_empty());
    expect(&b, "start", rc::SUCCESS);
    assert_eq!(c.tags(&vg), ["node-b"]);
    expect(&a, "start", rc::ERR_GENERIC);
    assert!(!c.active(&vg, "lv-1"));
    expect(&b, "stop", rc::SUCCESS);

    // A "crashes": its LV goes away but its tag stays. B refuses unless
    // told to take over.
    expect(&a, "start", rc::SUCCESS);
    c.lvm_ok(&["lvchange", "-an", &format!("{vg}/lv-1")]);
    assert_eq!(c.tags(&vg), ["node-a"]);
    expect(&b, "start", rc::ERR_GENERIC);
    assert!(!c.active(&vg, "lv-2"));
    expect(&b_takeover, "start", rc::SUCCESS);
    assert_eq!(c.tags(&vg), ["node-b"]);
    assert!(c.active(&vg, "lv-2"));
    expect(&b_takeover, "stop", rc::SUCCESS);

    // The legacy agent, exclusive, two tags over the same VG.
    let la = c
        .agent(LEGACY)
        .env("OCF_RESOURCE_INSTANCE", "la")
        .param("volgrpname", vg.as_str())
        .param("exclusive", "true")
        .param("tag", "node-a");
    let lb = la
        .clone()
        .env("OCF_RESOURCE_INSTANCE", "lb")
        .param("tag", "node-b");
    expect(&la, "start", rc::SUCCESS);
    assert_eq!(c.tags(&vg), ["node-a"]);
    expect(&lb, "start", rc::ERR_GENERIC);
    assert_eq!(c.tags(&vg), ["node-a"]);
    expect(&la, "stop", rc::SUCCESS);
    expect(&lb, "start", rc::SUCCESS);
    assert_eq!(c.tags(&vg), ["node-b"]);
    expect(&lb, "stop", rc::SUCCESS);
    assert!(c.tags(&vg).is_empty());
}

#[test]
#[ignore = "runs inside the guest kernel: see lvm_suite_in_guest_kernel"]
fn guest_legacy_lvm_exclusive_and_plain() {
    let mut c = case("leg");
    let pv = c.pv(32);
    let vg = c.vg("vg", &[pv], &["lv-1", "lv-2"]);
    c.lvm_conf(VOLUME_LIST_EMPTY);
    let x = c
        .agent(LEGACY)
        .param("volgrpname", vg.as_str())
        .param("exclusive", "true");
    expect(&x, "monitor", rc::NOT_RUNNING);
    expect(&x.clone().recurring(), "monitor", rc::NOT_RUNNING);
    expect(&x, "validate-all", rc::SUCCESS);
    expect(&x, "start", rc::SUCCESS);
    assert_eq!(c.tags(&vg), ["pacemaker"]);
    assert!(c.active(&vg, "lv-1") && c.active(&vg, "lv-2"));
    expect(&x, "monitor", rc::SUCCESS);
    let (code, stdout, _) = run(&x, "status");
    assert_eq!(code, 0);
    assert!(stdout.contains("is available (running)"), "{stdout}");
    expect(&x, "start", rc::SUCCESS);
    expect(&x, "stop", rc::SUCCESS);
    assert!(c.tags(&vg).is_empty());
    assert!(!c.active(&vg, "lv-1") && !c.active(&vg, "lv-2"));
    expect(&x, "monitor", rc::NOT_RUNNING);
    expect(&x.clone().recurring(), "monitor", rc::NOT_RUNNING);
    expect(&x, "status", rc::NOT_RUNNING);
    expect(&x, "stop", rc::SUCCESS);
    let (code, stdout, _) = run(&x, "methods");
    assert_eq!(code, 0);
    assert!(stdout.contains("status\n"), "{stdout}");

    // Plain (exclusive=false), no lvm.conf.
    c.lvm_conf("");
    let p = c.agent(LEGACY).param("volgrpname", vg.as_str());
    expect(&p, "start", rc::SUCCESS);
    assert!(c.active(&vg, "lv-1") && c.active(&vg, "lv-2"));
    assert!(c.tags(&vg).is_empty());
    expect(&p, "monitor", rc::SUCCESS);
    expect(&p, "start", rc::SUCCESS);
    // Lost: recurring monitor 1.
    c.lvm_ok(&["vgchange", "-an", &vg]);
    expect(&p.clone().recurring(), "monitor", rc::ERR_GENERIC);
    expect(&p, "stop", rc::SUCCESS);
    expect(&p.clone().recurring(), "monitor", rc::NOT_RUNNING);
    expect(&c.agent(LEGACY), "start", rc::ERR_CONFIGURED);
    expect(
        &c.agent(LEGACY)
            .param("volgrpname", format!("{}-nosuch", c.name)),
        "start",
        rc::ERR_GENERIC,
    );
    // Cloned and exclusive is a configuration error.
    expect(
        &x.clone().env("OCF_RESKEY_CRM_meta_clone_max", "2"),
        "start",
        rc::ERR_CONFIGURED,
    );
}

#[test]
#[ignore = "runs inside the guest kernel: see lvm_suite_in_guest_kernel"]
fn guest_partial_vg() {
    let mut c = case("part");
    c.lvm_conf(&system_id_conf("node-a"));
    let pv1 = c.pv(32);
    let pv2 = c.pv(32);
    let vg = c.vg("vg", &[pv1, pv2], &["lv-1"]);
    // The second PV disappears.
    c.loops[1].detach();
    let a = c
        .agent(ACTIVATE)
        .param("vgname", vg.as_str())
        .param("lvname", "lv-1")
        .param("vg_access_mode", "system_id");
    let stderr = expect(&a, "start", rc::ERR_GENERIC);
    assert!(stderr.contains("missing"), "{stderr}");
    assert!(!c.active(&vg, "lv-1"));
    let p = a.clone().param("partial_activation", "true");
    expect(&p, "start", rc::SUCCESS);
    assert!(c.active(&vg, "lv-1"));
    expect(&p, "monitor", rc::SUCCESS);
    expect(&p, "stop", rc::SUCCESS);
    assert!(!c.active(&vg, "lv-1"));

    let l = c.agent(LEGACY).param("volgrpname", vg.as_str());
    expect(&l, "start", rc::ERR_GENERIC);
    let lp = l.clone().param("partial_activation", "true");
    expect(&lp, "start", rc::SUCCESS);
    assert!(c.active(&vg, "lv-1"));
    expect(&lp, "stop", rc::SUCCESS);
    assert!(!c.active(&vg, "lv-1"));
}

#[test]
#[ignore = "runs inside the guest kernel: see lvm_suite_in_guest_kernel"]
fn guest_wrong_lvm_conf_is_6_with_one_line() {
    let mut c = case("conf");
    let pv = c.pv(32);
    let vg = c.vg("vg", &[pv], &["lv-1"]);
    let tag = c
        .agent(ACTIVATE)
        .param("vgname", vg.as_str())
        .param("vg_access_mode", "tagging");
    let sid = tag.clone().param("vg_access_mode", "system_id");
    // No lvm.conf at all.
    expect_configured(&tag, "start", "activation/volume_list");
    expect_configured(&sid, "start", "global/system_id_source");
    expect_configured(&sid, "validate-all", "global/system_id_source");
    // A probe and a stop are not configuration checks.
    expect(&sid, "monitor", rc::NOT_RUNNING);
    expect(&sid, "stop", rc::SUCCESS);
    c.lvm_conf("activation {\n volume_list = [ \"@pacemaker\" ]\n}\n");
    expect_configured(&tag, "start", "@pacemaker");
    c.lvm_conf(&format!("activation {{\n volume_list = [ \"{vg}\" ]\n}}\n"));
    expect_configured(&tag, "start", "activation/volume_list");
    c.lvm_conf(&format!("{}{VOLUME_LIST_EMPTY}", system_id_conf("node-a")));
    expect_configured(&sid, "start", "activation/volume_list");
    c.lvm_conf("# nothing but a comment\n");
    expect_configured(&tag, "start", "lvm.conf cannot be loaded");
    c.lvm_conf(VOLUME_LIST_EMPTY);
    expect_configured(
        &tag.clone().param("vg_access_mode", "lvmlockd"),
        "start",
        "global/use_lvmlockd",
    );
    expect_configured(
        &tag.clone().param("vg_access_mode", "clvmd"),
        "start",
        "global/locking_type",
    );
    // The VG has no system ID: system_id mode does not match it.
    c.lvm_conf(&system_id_conf("node-a"));
    expect_configured(&sid, "start", "does not match");
    c.lvm_conf(VOLUME_LIST_EMPTY);
    // Unknown mode and LV: 6 for start, never for stop or a probe.
    let bogus = tag.clone().param("vg_access_mode", "bogus");
    expect_configured(&bogus, "start", "bogus");
    expect(&bogus, "stop", rc::SUCCESS);
    expect(&bogus, "monitor", rc::NOT_RUNNING);
    expect_configured(
        &tag.clone().unset("OCF_RESKEY_vg_access_mode"),
        "start",
        "vg_access_mode",
    );
    expect_configured(&tag.clone().param("lvname", "nosuch"), "start", "nosuch");
    expect_configured(
        &tag.clone().param("activation_mode", "both"),
        "start",
        "activation_mode",
    );
    expect(
        &c.agent(ACTIVATE).param("vg_access_mode", "tagging"),
        "start",
        rc::ERR_CONFIGURED,
    );
    // Legacy exclusive needs volume_list too.
    c.lvm_conf("");
    let l = c
        .agent(LEGACY)
        .param("volgrpname", vg.as_str())
        .param("exclusive", "true");
    expect_configured(&l, "start", "activation/volume_list");
    expect(&l, "stop", rc::SUCCESS);
    assert!(!c.active(&vg, "lv-1"));
    assert!(c.tags(&vg).is_empty());
}

#[test]
#[ignore = "runs inside the guest kernel: see lvm_suite_in_guest_kernel"]
fn guest_probe_before_the_pv_exists() {
    let mut c = case("late");
    c.lvm_conf(&system_id_conf("node-a"));
    let vg = format!("{}-vg", c.name);
    let a = c
        .agent(ACTIVATE)
        .param("vgname", vg.as_str())
        .param("vg_access_mode", "system_id");
    let l = c.agent(LEGACY).param("volgrpname", vg.as_str());
    for agent in [&a, &l] {
        expect(agent, "monitor", rc::NOT_RUNNING);
        expect(&agent.clone().recurring(), "monitor", rc::NOT_RUNNING);
        expect(agent, "stop", rc::SUCCESS);
        let stderr = expect(agent, "start", rc::ERR_GENERIC);
        assert!(stderr.contains("not visible"), "{stderr}");
    }
    // The PV shows up (iSCSI logged in): now it starts.
    let pv = c.pv(32);
    let made = c.vg("vg", &[pv], &["lv-1"]);
    assert_eq!(made, vg);
    expect(&a, "start", rc::SUCCESS);
    assert!(c.active(&vg, "lv-1"));
    expect(&a, "monitor", rc::SUCCESS);
    expect(&a, "stop", rc::SUCCESS);
    assert!(!c.active(&vg, "lv-1"));
}

/// ocf-tester on `bin` with the case's LVM configuration.
fn ocf_tester(c: &LvmCase, name: &str, bin: &str, params: &[(&str, &str)]) {
    support::ocf_tester(name, params, bin, |cmd| {
        cmd.env("LVM_SYSTEM_DIR", &c.conf)
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .env("HA_LOGFACILITY", "none")
            .env("HA_RSCTMP", c.path().join("tester"));
    });
}

#[test]
#[ignore = "runs inside the guest kernel: see lvm_suite_in_guest_kernel"]
fn guest_ocf_tester_on_each_agent_and_mode() {
    let mut c = case("tester");
    c.lvm_conf(&system_id_conf("node-a"));
    let pv = c.pv(32);
    let sid_vg = c.vg("sid", &[pv], &["lv-1"]);
    ocf_tester(
        &c,
        "lvsid",
        ACTIVATE,
        &[
            ("vgname", &sid_vg),
            ("lvname", "lv-1"),
            ("vg_access_mode", "system_id"),
        ],
    );
    ocf_tester(&c, "lvmplain", LEGACY, &[("volgrpname", &sid_vg)]);
    c.lvm_conf("");
    let pv2 = c.pv(32);
    let tag_vg = c.vg("tag", &[pv2], &["lv-1"]);
    c.lvm_conf(VOLUME_LIST_EMPTY);
    ocf_tester(
        &c,
        "lvtag",
        ACTIVATE,
        &[("vgname", &tag_vg), ("vg_access_mode", "tagging")],
    );
    ocf_tester(
        &c,
        "lvmexcl",
        LEGACY,
        &[("volgrpname", &tag_vg), ("exclusive", "true")],
    );
    assert!(c.tags(&tag_vg).is_empty());
    assert!(!c.active(&tag_vg, "lv-1") && !c.active(&sid_vg, "lv-1"));
}

/// Benchmark, not a test (no timing is asserted): ours against heartbeat
/// and `true` (monitor), then start and stop latency against heartbeat,
/// inside the guest kernel. `bench/all.sh` runs it with
/// `RA_GUEST_FILTER=bench_`; the suite's own boot (`guest_` cases) does not.
#[test]
#[ignore = "a benchmark, run inside the guest kernel by bench/all.sh"]
fn bench_monitor_against_heartbeat_and_true() {
    let mut c = case("bench");
    c.lvm_conf(&system_id_conf("node-a"));
    let pv = c.pv(32);
    let vg = c.vg("vg", &[pv], &["lv-1"]);
    // The build tree is on the host's root, which the guest reads over 9p
    // without a page cache: every exec of a 12 MB debug binary re-reads
    // it. Run ours, and `true`, from the guest's tmpfs, as from a local
    // disk. (The heartbeat agents and their tools stay where they are.)
    let local = |bin: &str| local_copy(c.path(), bin);
    let (act_bin, leg_bin, true_bin) = (local(ACTIVATE), local(LEGACY), local("/usr/bin/true"));
    let ours = c
        .agent(&act_bin)
        .param("vgname", vg.as_str())
        .param("lvname", "lv-1")
        .param("vg_access_mode", "system_id");
    let ours_legacy = c.agent(&leg_bin).param("volgrpname", vg.as_str());
    expect(&ours, "start", rc::SUCCESS);
    let hb = |name: &str| {
        c.agent(&format!("{HB_DIR}/{name}"))
            .env("PATH", PATH)
            .env("OCF_RESOURCE_TYPE", name)
            .param("vgname", vg.as_str())
            .param("lvname", "lv-1")
            .param("vg_access_mode", "system_id")
            .param("volgrpname", vg.as_str())
    };
    let hb_activate = hb("LVM-activate");
    let hb_legacy = hb("LVM");
    for a in [&ours, &ours_legacy, &hb_activate, &hb_legacy] {
        expect(a, "monitor", rc::SUCCESS);
    }
    let n = 15;
    let t_true = program_median_ms(&true_bin, n);
    let t_ours = monitor_median_ms(&ours, n);
    let t_ours_legacy = monitor_median_ms(&ours_legacy, n);
    let t_hb = monitor_median_ms(&hb_activate, n);
    let t_hb_legacy = monitor_median_ms(&hb_legacy, n);
    for (agent, ours, hb) in [
        ("LVM-activate", t_ours, t_hb),
        ("LVM", t_ours_legacy, t_hb_legacy),
    ] {
        bench_line(agent, "monitor", (ours, hb, t_true), n, "guest-kernel");
    }
    expect(&ours, "stop", rc::SUCCESS);
    // Start and stop latency, each agent from the stopped VG: what a
    // failover waits for. Few rounds: under TCG one heartbeat start or
    // stop costs seconds, and the whole guest run has 15 minutes.
    let n = 3;
    bench_start_stop(
        "LVM-activate",
        (&ours, &hb_activate),
        n,
        t_true,
        "guest-kernel",
    );
    bench_start_stop("LVM", (&ours_legacy, &hb_legacy), n, t_true, "guest-kernel");
}

// ---------------------------------------------------------------------------
// Issue 13 part 8: stop fast where retrying cannot help, the real cause when
// it gives up, and a depth-10 monitor bounded over hung I/O.

/// The dm name LVM gives `vg/lv` (every `-` inside a name doubled).
fn dm_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

/// A PATH wrapper of `lvm` in `dir/bin` recording each call's argv as one
/// line in `dir/lvm.calls`; the PATH to give the agent.
fn recording_lvm(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("lvm");
    let real = ["/usr/sbin/lvm", "/sbin/lvm"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n# PATH wrapper of lvm (tests/lvm.rs): records argv\n\
             echo \"$*\" >>'{}'\nexec {real} \"$@\"\n",
            dir.join("lvm.calls").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{PATH}", bin.display())
}

#[test]
#[ignore = "runs inside the guest kernel: see lvm_suite_in_guest_kernel"]
fn guest_fast_stop_fails_at_once_when_the_vg_is_gone() {
    let mut c = case("gone");
    c.lvm_conf(&system_id_conf("node-a"));
    let pv = c.pv(32);
    let vg = c.vg("vg", &[pv], &["lv-1"]);
    let a = c
        .agent(ACTIVATE)
        .param("vgname", vg.as_str())
        .param("lvname", "lv-1")
        .param("vg_access_mode", "system_id")
        .env("OCF_RESKEY_CRM_meta_timeout", "30000");
    expect(&a, "start", rc::SUCCESS);
    // lvm no longer sees the PV (as when its storage is gone); the LV's
    // dm device stays.
    c.lvm_conf(&format!(
        "{}devices {{\n global_filter = [ \"r|.*|\" ]\n}}\n",
        system_id_conf("node-a")
    ));
    let path = recording_lvm(c.path());
    let stderr = expect(&a.clone().env("PATH", path), "stop", rc::ERR_GENERIC);
    let calls = std::fs::read_to_string(c.path().join("lvm.calls")).unwrap_or_default();
    let deactivations = calls.lines().filter(|l| l.contains("-an")).count();
    assert_eq!(
        deactivations, 1,
        "one attempt, no retries: {calls}\n{stderr}"
    );
    assert!(exit_reasons(&stderr).len() == 1, "{stderr}");
    c.lvm_conf(&system_id_conf("node-a"));
    expect(&a, "stop", rc::SUCCESS);
}

#[test]
#[ignore = "runs inside the guest kernel: see lvm_suite_in_guest_kernel"]
fn guest_fast_stop_names_the_process_holding_the_lv() {
    let mut c = case("held");
    c.lvm_conf(&system_id_conf("node-a"));
    let pv = c.pv(32);
    let vg = c.vg("vg", &[pv], &["lv-1"]);
    let a = c
        .agent(ACTIVATE)
        .param("vgname", vg.as_str())
        .param("lvname", "lv-1")
        .param("vg_access_mode", "system_id")
        .env("OCF_RESKEY_CRM_meta_timeout", "10000");
    expect(&a, "start", rc::SUCCESS);
    let dev = std::fs::File::open(format!("/dev/mapper/{}", dm_name(&vg, "lv-1"))).unwrap();
    let mut holder = Command::new("sleep").arg("600").stdin(dev).spawn().unwrap();
    let stderr = expect(&a, "stop", rc::ERR_GENERIC);
    let _ = holder.kill();
    let _ = holder.wait();
    let reasons = exit_reasons(&stderr);
    assert_eq!(reasons.len(), 1, "{stderr}");
    let want = format!("LV {vg}/lv-1 is open (by PID {} sleep)", holder.id());
    assert!(
        reasons[0].contains(&want),
        "'{want}' not in: {}",
        reasons[0]
    );
    assert!(!reasons[0].contains("killed"), "{}", reasons[0]);
    expect(&a, "stop", rc::SUCCESS);
    assert!(!c.active(&vg, "lv-1"));
}

#[test]
#[ignore = "runs inside the guest kernel: see lvm_suite_in_guest_kernel"]
fn guest_fast_depth_10_monitor_of_a_suspended_lv_returns() {
    let mut c = case("susp");
    c.lvm_conf(&system_id_conf("node-a"));
    let pv = c.pv(32);
    let vg = c.vg("vg", &[pv], &["lv-1"]);
    let a = c
        .agent(ACTIVATE)
        .param("vgname", vg.as_str())
        .param("lvname", "lv-1")
        .param("vg_access_mode", "system_id")
        .env("OCF_RESKEY_CRM_meta_timeout", "10000");
    expect(&a, "start", rc::SUCCESS);
    let dm = dm_name(&vg, "lv-1");
    let st = Command::new("dmsetup")
        .args(["suspend", &dm])
        .status()
        .unwrap();
    assert!(st.success());
    // A hang guard, so a regression fails instead of blocking the suite.
    let mut child = a
        .clone()
        .check_level(10)
        .command(&["monitor"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let resumed = Command::new("dmsetup")
        .args(["resume", &dm])
        .status()
        .unwrap();
    assert!(resumed.success());
    assert_eq!(
        code,
        Some(rc::ERR_GENERIC),
        "depth-10 monitor over hung I/O"
    );
    expect(&a.clone().check_level(10), "monitor", rc::SUCCESS);
    expect(&a, "stop", rc::SUCCESS);
}
