//! The rgmanager `lvm` persona, run exactly as rgmanager runs lvm.sh.
//!
//! rgmanager's `build_env` (restree.c) gives the agent nothing but OCF
//! variables: no PATH, no LANG, `OCF_ROOT=/usr/share/cluster`,
//! `OCF_RESOURCE_TYPE=lvm`, `OCF_RESOURCE_INSTANCE=lvm:<name>`,
//! `OCF_CHECK_LEVEL` (the status depth), `OCF_RESKEY_<attr>` for every
//! attribute, `OCF_RESKEY_RGMANAGER_meta_refcnt` and (RHEL6)
//! `OCF_RESKEY_RGMANAGER_meta_timeout` in seconds. Every run here starts from
//! `env_clear` and that list only; the agent therefore reads the node's own
//! `/etc/lvm/lvm.conf`, as under rgmanager.
//!
//! LVM needs device-mapper, which the host kernel lacks: the `guest_*` cases
//! run inside the stock Debian kernel booted once with virtme-ng
//! (`support::guest`, see tests/lvm.rs). In the guest, `/etc/lvm/lvm.conf` is
//! HA LVM's (`volume_list = [ "@<node>" ]`, the node being the guest's host
//! name); the test's own LVM commands (making PVs and VGs, playing the other
//! node) use a permissive lvm.conf of the case (`LVM_SYSTEM_DIR`). Each case
//! (`support::lvm::LvmCase`, shared with tests/lvm.rs) removes its dm devices
//! and loops in `Drop`, also when it fails.
//!
//! Meta-data and bad parameters need no guest and run on the host.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::lvm::{LvmCase, LvmSuite};
use support::rgmanager::{assert_only_ocf, depth, get};
use support::{expect, expect_reason, rc, Agent};

const BIN: &str = env!("CARGO_BIN_EXE_lvm");

// ---------------------------------------------------------------------------
// rgmanager's environment.

/// What rgmanager passes for resource `lvm:<name>` (QEMU TCG is slow;
/// lvm.sh's own 5 s timeout would do on real hardware).
fn rgmanager(name: &str) -> Agent {
    support::rgmanager::agent(BIN, "lvm", name, 60)
}

// ---------------------------------------------------------------------------
// Host side: meta-data, bad parameters, the guest run.

#[test]
fn rgmanager_lvm_suite_in_guest_kernel() {
    support::guest::run(&support::guest::Suite {
        name: "rgmanager-lvm",
        modules: "kernel/drivers/md",
        env: &["LVM_SUPPRESS_FD_WARNINGS=1"],
        setup: "modprobe dm-mod; modprobe loop 2>/dev/null",
        limit: Duration::from_secs(15 * 60),
    });
}

#[test]
fn bad_parameters_are_6_for_every_action() {
    let a = rgmanager("bad").param("vg_name", "ra-rgm-nosuch-vg");
    assert_only_ocf(&a);
    for action in [
        "start",
        "stop",
        "status",
        "monitor",
        "verify-all",
        "recover",
    ] {
        expect_reason(
            &a.clone().unset("OCF_RESKEY_vg_name"),
            action,
            rc::ERR_CONFIGURED,
            "vg_name",
        );
        expect_reason(
            &a.clone().param("vg_name", "a/b"),
            action,
            rc::ERR_CONFIGURED,
            "vg_name",
        );
        expect_reason(
            &a.clone().param("lv_name", "-x"),
            action,
            rc::ERR_CONFIGURED,
            "lv_name",
        );
        expect_reason(
            &a.clone().unset("OCF_RESKEY_name"),
            action,
            rc::ERR_CONFIGURED,
            "name",
        );
        // stop and a probe need only what names the volume group: the rest
        // takes its default with a warning (tests/hostile_stop.rs)
        match action {
            "stop" => expect(&a.clone().param("self_fence", "maybe"), action, rc::SUCCESS),
            "monitor" => expect(
                &a.clone().param("self_fence", "maybe"),
                action,
                rc::NOT_RUNNING,
            ),
            _ => {
                expect_reason(
                    &a.clone().param("self_fence", "maybe"),
                    action,
                    rc::ERR_CONFIGURED,
                    "self_fence",
                );
                String::new()
            }
        };
    }
    expect(
        &a.clone().env("OCF_CHECK_LEVEL", "deep"),
        "status",
        rc::ERR_CONFIGURED,
    );
    // Well-formed but absent: not running, and stopping it is no error.
    expect(&a, "status", rc::NOT_RUNNING);
    expect(&depth(&a, 10), "status", rc::NOT_RUNNING);
    expect(&a, "monitor", rc::NOT_RUNNING);
    expect(&a, "stop", rc::SUCCESS);
    expect(&a, "reload", rc::SUCCESS);
    expect(&a, "reconfig", rc::SUCCESS);
    // Actions lvm does not have; no action at all.
    expect(&a, "frobnicate", rc::ERR_UNIMPLEMENTED);
    let out = a.command(&["migrate", "node2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(rc::ERR_UNIMPLEMENTED));
    let out = Command::new(BIN).env_clear().output().unwrap();
    assert_eq!(out.status.code(), Some(rc::ERR_ARGS));
}

#[test]
fn meta_data_carries_the_rgmanager_extensions_of_lvm_sh() {
    // the DTD's structure, one primary `name`: checked by the reader
    let md = support::rgmanager::meta_data(BIN, "lvm");
    // lvm.sh's parameters, in its order
    assert_eq!(
        md.param_names(),
        ["name", "vg_name", "lv_name", "self_fence", "nfslock"]
    );
    assert_eq!(get(md.param("vg_name"), "required"), Some("1"));
    assert_eq!(get(md.param("lv_name"), "required"), None);
    assert_eq!(get(md.param("nfslock"), "inherit"), Some("service%nfslock"));

    // actions: what rgmanager runs; status every hour at depth 0 and 10
    for n in [
        "start",
        "stop",
        "status",
        "monitor",
        "recover",
        "reload",
        "reconfig",
        "meta-data",
        "validate-all",
        "verify-all",
    ] {
        assert!(md.has_action(n), "{n}");
    }
    assert_eq!(
        md.status_schedule(),
        [(None, Some("3600s")), (Some("10"), Some("3600s"))]
    );

    // special: exactly lvm.sh's (one instance, no child types)
    assert_eq!(md.special.len(), 1, "{:?}", md.special);
    assert_eq!(md.special[0].0, "attributes");
    assert_eq!(md.special[0].1, [("maxinstances".into(), "1".into())]);
}

// ---------------------------------------------------------------------------
// Guest side: fixtures.

/// This node's name as the agent sees it (no cluster: the host name).
fn node_name() -> String {
    nix::unistd::gethostname().unwrap().into_string().unwrap()
}

/// HA LVM's lvm.conf for this node.
fn ha_lvm_conf(volume_list: &str) -> String {
    format!(
        "global {{\n event_activation = 0\n}}\nactivation {{\n volume_list = {volume_list}\n}}\n"
    )
}

const NODE_CONF: &str = "/etc/lvm/lvm.conf";

/// Replaces the node's lvm.conf for one case; puts HA LVM's back on drop.
struct NodeConf;

impl NodeConf {
    fn set(body: &str) -> NodeConf {
        std::fs::write(NODE_CONF, body).unwrap();
        NodeConf
    }
}

impl Drop for NodeConf {
    fn drop(&mut self) {
        let _ = std::fs::write(NODE_CONF, this_node_ha_lvm_conf());
    }
}

/// The guest's lvm.conf is HA LVM's for this node; the test's own
/// commands (making VGs, playing the other node) use a permissive one of
/// the case, without `volume_list`.
const SUITE: LvmSuite = LvmSuite {
    host_test: "rgmanager_lvm_suite_in_guest_kernel",
    prefix: "rgm",
    node_conf: this_node_ha_lvm_conf,
    case_conf: "global {\n event_activation = 0\n}\n",
};

fn this_node_ha_lvm_conf() -> String {
    ha_lvm_conf(&format!("[ \"@{}\" ]", node_name()))
}

/// One case of this suite ([`LvmCase`]: loop PVs, VGs, the test's own
/// lvm.conf).
fn case(label: &str) -> LvmCase {
    LvmCase::new(&SUITE, label)
}

/// What this suite does with a case: rgmanager's resource over one of its
/// VGs, and the cluster membership it sees.
trait RgmanagerCase {
    fn vg_on_new_pv(&mut self, lvs: &[&str]) -> String;
    fn agent(&self, label: &str, vg: &str) -> Agent;
    fn membership(&self, members: &[&str]) -> String;
}

impl RgmanagerCase for LvmCase {
    /// A VG named after the case on a new 32 MiB loop, with 8M LVs `lvs`,
    /// all inactive.
    fn vg_on_new_pv(&mut self, lvs: &[&str]) -> String {
        let pv = self.pv(32);
        let sfx = format!("vg{}", self.vgs.len());
        self.vg(&sfx, &[pv], lvs)
    }

    /// The resource `lvm:<label>` for `vg`.
    fn agent(&self, label: &str, vg: &str) -> Agent {
        rgmanager(&format!("{}-{label}", self.name)).param("vg_name", vg)
    }

    /// A directory holding `corosync-quorumtool` that lists `members`, and
    /// the PATH finding it first (the only addition to rgmanager's
    /// environment, for the membership cases).
    fn membership(&self, members: &[&str]) -> String {
        let bin = self.dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let mut body = String::from(
            "#!/bin/sh\necho\necho 'Membership information'\necho '----------------------'\necho '    Nodeid      Votes Name'\n",
        );
        for (i, m) in members.iter().enumerate() {
            body.push_str(&format!("echo '         {}          1 {m}'\n", i + 1));
        }
        let tool = bin.join("corosync-quorumtool");
        std::fs::write(&tool, body).unwrap();
        std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        format!("{}:{}", bin.display(), ocf::command::DEFAULT_PATH)
    }
}

/// The device node of an active LV (`/dev/dm-N`, which devtmpfs makes
/// whether or not udev runs).
fn dm_node(vg: &str, lv: &str) -> PathBuf {
    let want = format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"));
    std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .find(|e| {
            std::fs::read_to_string(e.path().join("dm/name")).is_ok_and(|n| n.trim_end() == want)
        })
        .map(|e| Path::new("/dev").join(e.file_name()))
        .unwrap_or_else(|| panic!("{vg}/{lv} is not active"))
}

// ---------------------------------------------------------------------------
// Guest cases.

#[test]
#[ignore = "runs inside the guest kernel: see rgmanager_lvm_suite_in_guest_kernel"]
fn guest_whole_vg_lifecycle_with_the_node_tag() {
    let mut c = case("vg");
    let vg = c.vg_on_new_pv(&["lv-1", "lv-2"]);
    let node = node_name();
    let a = c.agent("whole", &vg);
    assert_only_ocf(&a);
    // HA LVM's lvm.conf keeps plain activation out
    let _ = Command::new("lvm")
        .args(["vgchange", "-ay", &vg])
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .unwrap();
    assert!(!c.active(&vg, "lv-1"), "volume_list did not filter");
    expect(&a, "status", rc::NOT_RUNNING);
    expect(&depth(&a, 10), "status", rc::NOT_RUNNING);
    expect(&a, "verify-all", rc::SUCCESS);
    expect(&a, "validate-all", rc::SUCCESS);
    assert!(c.tags(&vg).is_empty(), "verify-all changed the VG");
    expect(&a, "start", rc::SUCCESS);
    assert_eq!(c.tags(&vg), [node.as_str()]);
    assert!(c.active(&vg, "lv-1") && c.active(&vg, "lv-2"));
    for level in [0, 10, 20] {
        expect(&depth(&a, level), "status", rc::SUCCESS);
        expect(&depth(&a, level), "monitor", rc::SUCCESS);
    }
    expect(&a, "start", rc::SUCCESS);
    assert_eq!(c.tags(&vg), [node.as_str()]);
    expect(&a, "reload", rc::SUCCESS);
    expect(&a, "reconfig", rc::SUCCESS);
    expect(&a, "stop", rc::SUCCESS);
    assert!(c.tags(&vg).is_empty(), "our tag stayed: {:?}", c.tags(&vg));
    assert!(!c.active(&vg, "lv-1") && !c.active(&vg, "lv-2"));
    expect(&a, "stop", rc::SUCCESS);
    expect(&a, "status", rc::NOT_RUNNING);
    expect(&depth(&a, 10), "status", rc::NOT_RUNNING);

    // Lost behind our back: status says so, recover brings it back.
    expect(&a, "start", rc::SUCCESS);
    c.lvm_ok(&["vgchange", "-an", &vg]);
    expect(&a, "status", rc::NOT_RUNNING);
    expect(&a, "recover", rc::SUCCESS);
    assert!(c.active(&vg, "lv-1") && c.active(&vg, "lv-2"));
    assert_eq!(c.tags(&vg), [node.as_str()]);
    expect(&a, "status", rc::SUCCESS);
    // lvm.sh's restart: `$0 stop && $0 start`
    c.lvm_ok(&["vgchange", "-an", &vg]);
    expect(&a, "restart", rc::SUCCESS);
    assert!(c.active(&vg, "lv-1") && c.active(&vg, "lv-2"));
    assert_eq!(c.tags(&vg), [node.as_str()]);
    expect(&a, "status", rc::SUCCESS);
    // Stopping what is no longer active still drops our tag.
    c.lvm_ok(&["vgchange", "-an", &vg]);
    expect(&a, "stop", rc::SUCCESS);
    assert!(
        c.tags(&vg).is_empty(),
        "tag left after stop: {:?}",
        c.tags(&vg)
    );
}

#[test]
#[ignore = "runs inside the guest kernel: see rgmanager_lvm_suite_in_guest_kernel"]
fn guest_single_lv_lifecycle() {
    let mut c = case("lv");
    let vg = c.vg_on_new_pv(&["lv-1", "lv-2"]);
    let node = node_name();
    let a = c.agent("one", &vg).param("lv_name", "lv-1");
    expect(&a, "status", rc::NOT_RUNNING);
    expect(&a, "start", rc::SUCCESS);
    assert!(c.active(&vg, "lv-1"));
    assert!(!c.active(&vg, "lv-2"), "lv_name activated lv-2 too");
    assert_eq!(c.tags(&vg), [node.as_str()]);
    expect(&a, "status", rc::SUCCESS);
    expect(&depth(&a, 10), "status", rc::SUCCESS);
    expect(&a, "start", rc::SUCCESS);
    expect(&a, "stop", rc::SUCCESS);
    assert!(!c.active(&vg, "lv-1"));
    assert!(c.tags(&vg).is_empty());
    expect(&a, "stop", rc::SUCCESS);
    expect(&a, "status", rc::NOT_RUNNING);
    // The other LV is not ours to report.
    c.lvm_ok(&["vgchange", "--addtag", &node, &vg]);
    c.lvm_ok(&["lvchange", "-ay", &format!("{vg}/lv-2")]);
    expect(&a, "status", rc::NOT_RUNNING);
    c.lvm_ok(&["lvchange", "-an", &format!("{vg}/lv-2")]);
    c.lvm_ok(&["vgchange", "--deltag", &node, &vg]);
    // An LV the VG does not have.
    expect_reason(
        &a.clone().param("lv_name", "nosuch"),
        "start",
        rc::ERR_CONFIGURED,
        "nosuch",
    );
    assert!(c.tags(&vg).is_empty());
}

#[test]
#[ignore = "runs inside the guest kernel: see rgmanager_lvm_suite_in_guest_kernel"]
fn guest_another_nodes_tag_is_refused_unless_it_left_the_cluster() {
    let mut c = case("own");
    let vg = c.vg_on_new_pv(&["lv-1"]);
    let node = node_name();
    let a = c.agent("own", &vg);
    // The other node owns it; membership unknown (no corosync): refused.
    c.lvm_ok(&["vgchange", "--addtag", "other-node", &vg]);
    expect_reason(&a, "start", rc::ERR_GENERIC, "other-node");
    assert_eq!(c.tags(&vg), ["other-node"]);
    assert!(!c.active(&vg, "lv-1"));
    expect(&a, "status", rc::NOT_RUNNING);
    // Stop leaves another node's tag alone.
    expect(&a, "stop", rc::SUCCESS);
    assert_eq!(c.tags(&vg), ["other-node"]);
    // The owner is a live member: refused.
    let both = a
        .clone()
        .env("PATH", c.membership(&[node.as_str(), "other-node"]));
    expect_reason(&both, "start", rc::ERR_GENERIC, "live cluster member");
    assert_eq!(c.tags(&vg), ["other-node"]);
    assert!(!c.active(&vg, "lv-1"));
    // The owner left the cluster: taken over.
    let alone = a.clone().env("PATH", c.membership(&[node.as_str()]));
    let stderr = expect(&alone, "start", rc::SUCCESS);
    assert!(
        stderr.contains("other-node"),
        "takeover not logged: {stderr}"
    );
    assert_eq!(c.tags(&vg), [node.as_str()]);
    assert!(c.active(&vg, "lv-1"));
    // Retagged behind our back while active: depth 10 notices, depth 0 not.
    c.lvm_ok(&["vgchange", "--deltag", &node, "--addtag", "other-node", &vg]);
    expect(&a, "status", rc::SUCCESS);
    expect_reason(&depth(&a, 10), "status", rc::ERR_GENERIC, "other-node");
    // Active here under a foreign tag: never "taken over" on top of it.
    expect(&alone, "start", rc::ERR_GENERIC);
    expect(&a, "stop", rc::SUCCESS);
    assert!(!c.active(&vg, "lv-1"));
    assert_eq!(c.tags(&vg), ["other-node"]);
}

#[test]
#[ignore = "runs inside the guest kernel: see rgmanager_lvm_suite_in_guest_kernel"]
fn guest_lvm_conf_and_missing_vg() {
    let mut c = case("conf");
    let vg = c.vg_on_new_pv(&["lv-1"]);
    let node = node_name();
    let a = c.agent("conf", &vg);
    {
        let _conf = NodeConf::set(&ha_lvm_conf("[ ]"));
        expect_reason(&a, "start", rc::ERR_CONFIGURED, &format!("\"@{node}\""));
        expect_reason(&a, "verify-all", rc::ERR_CONFIGURED, "volume_list");
        expect(&a, "status", rc::NOT_RUNNING);
        expect(&a, "stop", rc::SUCCESS);
    }
    {
        let _conf = NodeConf::set(&ha_lvm_conf(&format!("[ \"@{node}\", \"{vg}\" ]")));
        expect_reason(&a, "start", rc::ERR_CONFIGURED, "outside the cluster");
    }
    {
        let _conf = NodeConf::set("global {\n event_activation = 0\n}\n");
        expect_reason(&a, "start", rc::ERR_CONFIGURED, "volume_list is not set");
    }
    assert!(!c.active(&vg, "lv-1"));
    assert!(c.tags(&vg).is_empty());
    // HA LVM's lvm.conf is back: it starts.
    expect(&a, "start", rc::SUCCESS);
    expect(&a, "stop", rc::SUCCESS);
    // A VG this node cannot see.
    let gone = c.agent("gone", &format!("{}-nosuch", c.name));
    expect_reason(&gone, "start", rc::ERR_GENERIC, "not visible");
    expect(&gone, "status", rc::NOT_RUNNING);
    expect(&gone, "stop", rc::SUCCESS);
}

#[test]
#[ignore = "runs inside the guest kernel: see rgmanager_lvm_suite_in_guest_kernel"]
fn guest_self_fence_when_the_stop_fails() {
    let mut c = case("fence");
    let vg = c.vg_on_new_pv(&["lv-1"]);
    // a reboot that only records how it was called, first on PATH
    let reboot = support::rgmanager::RecordingReboot::new(c.dir.path());
    let path = reboot.path.clone();
    let a = c
        .agent("fence", &vg)
        .env("PATH", &path)
        .param("self_fence", "1");
    expect(&a, "start", rc::SUCCESS);
    expect(&a, "stop", rc::SUCCESS);
    assert_eq!(reboot.called_with(), None, "a good stop fenced");
    expect(&a, "start", rc::SUCCESS);
    // hold the LV open: deactivation fails
    let holder = std::fs::File::open(dm_node(&vg, "lv-1")).unwrap();
    let short = a.clone().env("OCF_RESKEY_RGMANAGER_meta_timeout", "6");
    let stderr = expect(&short, "stop", rc::ERR_GENERIC);
    assert!(stderr.contains("self_fence"), "{stderr}");
    let args = reboot.called_with().expect("reboot was not called");
    assert_eq!(args.trim(), "-f -n");
    drop(holder);
    expect(&a, "stop", rc::SUCCESS);
    assert!(!c.active(&vg, "lv-1"));
    assert!(c.tags(&vg).is_empty());
}
