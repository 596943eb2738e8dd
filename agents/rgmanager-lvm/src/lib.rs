//! `lvm`: the rgmanager persona of the LVM agents (HA LVM).
//!
//! rgmanager (Red Hat Cluster Suite) loads `/usr/share/cluster/lvm.sh`,
//! reads its meta-data at start-up and runs it with nothing but OCF
//! variables in the environment (no `PATH`, no `LANG`),
//! `OCF_RESOURCE_INSTANCE=lvm:<name>`, `OCF_CHECK_LEVEL` as the status depth
//! and, on RHEL6, `OCF_RESKEY_RGMANAGER_meta_timeout` in seconds. Installed
//! under that name, this binary takes its place: lvm.sh's parameters
//! (`name`, `vg_name`, `lv_name`, `self_fence`, `nfslock`), its rgmanager
//! meta-data, its actions and its ownership model (the owner of a volume
//! group is the cluster node whose name it carries as an LVM tag).
//!
//! Activation, tagging, deactivation and monitoring are the LVM-activate
//! agent's ([`ra_lvm_activate::LvmActivate`] in `tagging` mode with the node
//! name as the tag, or `clvmd` mode for a clustered VG); this crate maps
//! rgmanager's names and lvm.sh's setup rules onto it:
//!
//! | lvm.sh | here |
//! |---|---|
//! | `vg_name`, `lv_name` | LVM-activate `vgname`, `lvname` (`lv_name` unset: the whole VG) |
//! | owner tag = `local_node_name` | tag = this node's name (the kernel host name, cman's default node name) |
//! | `ha_lvm_proper_setup_check` | start and verify-all: the VG is visible, a clustered VG needs clvmd, otherwise lvm.conf's `activation/volume_list` must exist, hold `@<node>` and not name the VG |
//! | `vg_owner`/`lv_owner` | another node's tag: refused while that node is a cluster member (`corosync-quorumtool -l`) or membership cannot be read; taken over (its tag stripped) when it is not a member |
//! | `vgchange -ay` with the tag | LVM-activate tagging start: tag set, `lvchange -ay --config activation{volume_list=["@<node>"]}`, waits for device-mapper |
//! | stop | deactivate, remove our tag (also when nothing was active); `self_fence`: a failed stop reboots the node (`reboot -fn`) |
//! | status (1 h) | depth 0: device-mapper state from sysfs, no fork; depth 10 (any depth >= 10): also one direct read per active LV, and the VG must carry our tag |
//! | `recover` | stop, then start |
//! | `nfslock` | accepted (inherited from the service); lvm.sh does not use it either |
//!
//! Deviations: a single-LV resource tags the VG, not the LV (as
//! LVM-activate does), so LVs of one VG are owned by one node at a time;
//! start and stop advertise 30 s instead of lvm.sh's 5 s (our operations end
//! inside their timeout; 5 s would cut a `vgchange` on a loaded node).

use std::time::Duration;

use ocf::{
    info, rgmanager, warn, ActionSpec, AgentMeta, Context, Failure, OcfResult, OcfStatus,
    ParamSpec, Params, ResourceAgent, Special, SpecialElement,
};
use ra_lvm_activate::{AccessMode, Checked, LvmActivate};
use ra_lvm_tools::lvm::{Lvm, LvmConf};
use ra_lvm_tools::owner::{self, LockDaemon};
use ra_lvm_tools::{dm, monitor};

static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("name")
        .identity()
        .primary()
        .short("Name")
        .long("Unique name for this LVM resource; rgmanager names the resource lvm:<name>."),
    ParamSpec::string("vg_name")
        .identity()
        .required()
        .check(check_lvm_name)
        .short("Volume group name")
        .long("Name of the volume group being managed."),
    ParamSpec::string("lv_name")
        .identity()
        .check(check_lvm_name)
        .short("Logical Volume name (optional).")
        .long("Name of the logical volume being managed. If unset, every logical volume of the volume group is activated."),
    ParamSpec::boolean("self_fence")
        .short("Fence the node if it is not able to clean up LVM tags")
        .long("If set and deactivation or the clean up of the tags fails on stop, the node reboots immediately (reboot -fn)."),
    ParamSpec::boolean("nfslock")
        .inherit("service%nfslock")
        .short("Enable NFS lock workarounds")
        .long("Inherited from the service's nfslock attribute; accepted and not used by lvm (file system resources act on it)."),
];

static ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", 30),
    ActionSpec::new("stop", 30),
    // device-mapper state, read from sysfs
    ActionSpec::new("status", 5).interval(3600),
    ActionSpec::new("monitor", 5).interval(3600),
    // also one block read per LV, and our tag on the VG
    ActionSpec::new("status", 30).interval(3600).depth(10),
    ActionSpec::new("monitor", 30).interval(3600).depth(10),
    ActionSpec::new("recover", 60),
    ActionSpec::new("reload", 5),
    ActionSpec::new("reconfig", 5),
    ActionSpec::new("meta-data", 5),
    ActionSpec::new("validate-all", 30),
    ActionSpec::new("verify-all", 30),
];

static SPECIAL: &[SpecialElement] = &[SpecialElement::new("attributes", &[("maxinstances", "1")])];

static META: AgentMeta = AgentMeta {
    name: "lvm",
    version: "rgmanager 2.0",
    shortdesc: "LVM Failover script",
    longdesc: "This defines a LVM volume group (or one logical volume of it) that is activated on one node of the cluster at a time, in place of lvm.sh; built on the heartbeat-rs LVM-activate agent.\n\nThe node that owns the volume group tags it with its node name; lvm.conf's activation/volume_list must contain \"@<node name>\" and must not name the volume group, so nothing activates it outside the cluster. A volume group tagged by another node is refused while that node is a cluster member. A clustered volume group (clvmd) is activated exclusively instead.\n\nStatus depth 0 reads the device-mapper state from sysfs; depth 10 also reads one block of each active logical volume and checks that the volume group carries this node's tag.",
    params: PARAMS,
    actions: ACTIONS,
    special: Some(Special::rgmanager(SPECIAL)),
};

/// VG and LV names as LVM accepts them (no path, no leading `-`, at most
/// 127 characters: [`ra_lvm_tools::name_problem`]).
fn check_lvm_name(v: &str) -> Result<(), String> {
    match ra_lvm_tools::name_problem(v) {
        None => Ok(()),
        Some(why) => Err(format!(
            "not a valid LVM name (letters, digits, + _ . -; not starting with -): it {why}"
        )),
    }
}

/// lvm.sh's lvm.conf rules for tag-based HA LVM: `activation/volume_list`
/// exists, holds `@<node>` (so this node can activate what it owns) and does
/// not name the VG or one of its LVs (which would activate it anywhere).
pub fn check_volume_list(conf: &LvmConf, vg: &str, node: &str) -> Result<(), Failure> {
    let Some(list) = conf.list("activation/volume_list") else {
        return Err(Failure::configured(format!(
            "lvm.conf: activation/volume_list is not set; HA LVM needs it, holding \"@{node}\""
        )));
    };
    let ours = format!("@{node}");
    if !list.contains(&ours) {
        return Err(Failure::configured(format!(
            "lvm.conf: activation/volume_list does not contain \"{ours}\" (this node's name)"
        )));
    }
    if let Some(bad) = list
        .iter()
        .find(|e| *e == vg || e.starts_with(&format!("{vg}/")))
    {
        return Err(Failure::configured(format!(
            "lvm.conf: activation/volume_list must not contain \"{bad}\": {vg} would activate outside the cluster"
        )));
    }
    Ok(())
}

/// The node names in `corosync-quorumtool -l` output.
pub fn parse_members(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && f[0].bytes().all(|b| b.is_ascii_digit())).then(|| f[2].to_string())
        })
        .collect()
}

/// The status depth an rgmanager depth maps to.
pub fn monitor_depth(requested: u32) -> u32 {
    if requested >= 10 {
        10
    } else {
        0
    }
}

/// What start needs, learned by the setup check.
#[derive(Debug)]
struct Setup {
    checked: Checked,
    clustered: bool,
    takeover: bool,
}

/// One `lvm` resource.
#[derive(Debug)]
pub struct RgLvm {
    vg: String,
    lv: Option<String>,
    self_fence: bool,
    /// This node's name: the owner tag.
    node: String,
    setup: ocf::CheckedOnce<Setup>,
}

impl ResourceAgent for RgLvm {
    fn meta() -> &'static AgentMeta {
        &META
    }

    /// rgmanager runs `restart`, which fs.sh and lvm.sh accept but their
    /// DTD cannot list.
    const UNLISTED_ACTIONS: &'static [&'static str] = &["restart"];

    fn configure(p: Params, ctx: &Context) -> Result<Self, Failure> {
        if p.str("name").filter(|n| !n.trim().is_empty()).is_none() {
            return Err(Failure::configured("No LVM resource name specified (name)"));
        }
        let node = ctx.node_name();
        if node.is_empty() || check_lvm_name(&node).is_err() {
            return Err(Failure::configured(format!(
                "this node's name '{node}' cannot be an LVM tag"
            )));
        }
        Ok(RgLvm {
            vg: p.str("vg_name").unwrap_or_default().to_string(),
            lv: p.str("lv_name").map(str::to_string),
            self_fence: p.bool("self_fence"),
            node,
            setup: ocf::CheckedOnce::default(),
        })
    }

    fn validate(&self, ctx: &Context) -> Result<(), Failure> {
        self.setup.validate(ctx, || self.check_setup(ctx))
    }

    fn start(&self, ctx: &Context) -> OcfResult {
        let s = self.setup.take_or(|| self.check_setup(ctx))?;
        let mode = if s.clustered {
            AccessMode::Clvmd
        } else {
            AccessMode::Tagging
        };
        let mut a = self.activator(mode);
        a.takeover = s.takeover;
        a.set_checked(s.checked);
        a.start(ctx)
    }

    fn stop(&self, ctx: &Context) -> OcfResult {
        rgmanager::fence_on_failure(ctx, self.self_fence, self.deactivate(ctx))
    }

    fn monitor(&self, ctx: &Context) -> OcfResult {
        self.status(ctx)
    }

    fn status(&self, ctx: &Context) -> OcfResult {
        let c = rgmanager::at_depth(ctx, monitor_depth(ctx.check_level));
        let r = monitor::monitor(&c, &self.vg, self.lv.as_deref())?;
        if r == OcfStatus::Success && c.check_level >= 10 {
            self.check_owner(ctx)?;
        }
        Ok(r)
    }

    /// rgmanager's own agent accepts `restart` (stop, then start); its
    /// DTD has no name for it.
    fn restart(&self, ctx: &Context) -> OcfResult {
        rgmanager::restart(self, ctx)
    }

    /// lvm.sh: `$0 stop && $0 start`.
    fn recover(&self, ctx: &Context) -> OcfResult {
        rgmanager::recover(self, ctx)
    }

    fn reload(&self, ctx: &Context) -> OcfResult {
        rgmanager::nothing_to_reload(ctx)
    }

    fn reconfig(&self, ctx: &Context) -> OcfResult {
        rgmanager::nothing_to_reload(ctx)
    }

    fn validate_all(&self, _ctx: &Context) -> OcfResult {
        Ok(OcfStatus::Success)
    }
}

impl RgLvm {
    fn target(&self) -> String {
        match &self.lv {
            Some(lv) => format!("{}/{lv}", self.vg),
            None => self.vg.clone(),
        }
    }

    /// The LVM-activate instance doing the work, owner tag = node name.
    fn activator(&self, mode: AccessMode) -> LvmActivate {
        LvmActivate::new(&self.vg, self.lv.as_deref(), mode, &self.node)
    }

    /// lvm.sh's `ha_lvm_proper_setup_check` and ownership decision.
    fn check_setup(&self, ctx: &Context) -> Result<Setup, Failure> {
        let lvm = Lvm::find(ctx)?;
        let conf = lvm.config(ctx)?;
        let vg = lvm.usable_vg(ctx, &self.vg, self.lv.as_deref(), false)?;
        if vg.clustered() {
            LockDaemon::Clvmd.require(&self.vg)?;
            return Ok(Setup {
                checked: Checked {
                    lvm,
                    vg,
                    system_id: String::new(),
                },
                clustered: true,
                takeover: false,
            });
        }
        check_volume_list(&conf, &self.vg, &self.node)?;
        let foreign: Vec<String> = vg
            .tags
            .iter()
            .filter(|t| **t != self.node)
            .cloned()
            .collect();
        let mut takeover = false;
        if !foreign.is_empty() {
            let owners = foreign.join(",");
            match members(ctx) {
                None => {
                    return Err(Failure::generic(format!(
                        "{} is owned by {owners}, not this node ({}), and the cluster membership cannot be read (corosync-quorumtool -l); refusing to start",
                        self.vg, self.node
                    )))
                }
                Some(m) if foreign.iter().any(|t| m.contains(t)) => {
                    return Err(Failure::generic(format!(
                        "{} is owned by {owners}, a live cluster member, not this node ({}); refusing to start",
                        self.vg, self.node
                    )))
                }
                Some(_) => {
                    warn!(
                        "{} is owned by {owners}, which is not a cluster member: taking it over",
                        self.vg
                    );
                    takeover = true;
                }
            }
        }
        Ok(Setup {
            checked: Checked {
                lvm,
                vg,
                system_id: String::new(),
            },
            clustered: false,
            takeover,
        })
    }

    /// Deactivate through LVM-activate, then make sure our tag is gone even
    /// when nothing was active (a failed start may have left it).
    fn deactivate(&self, ctx: &Context) -> OcfResult {
        let active = !dm::vg_devices(&self.vg).is_empty();
        // A clustered VG is deactivated plainly; finding out costs an lvs,
        // so only when something is active.
        let info = if active {
            let lvm = Lvm::find(ctx)?;
            lvm.vg_info(ctx, &self.vg)?
        } else {
            None
        };
        let mode = match &info {
            Some(v) if v.clustered() => AccessMode::Clvmd,
            _ => AccessMode::Tagging,
        };
        self.activator(mode).stop(ctx)?;
        if mode == AccessMode::Tagging && !active {
            // Nothing was active (a failed start, a VG lost behind our
            // back): LVM-activate left the tags alone; drop ours.
            if let Ok(lvm) = Lvm::find(ctx) {
                if let Some(v) = lvm.vg_info(ctx, &self.vg)? {
                    if v.tags.contains(&self.node) {
                        owner::release_tag(&lvm, ctx, &self.vg, &self.node)?;
                    }
                }
            }
        }
        Ok(OcfStatus::Success)
    }

    /// Depth 10: an active, non-clustered VG must carry our tag.
    fn check_owner(&self, ctx: &Context) -> Result<(), Failure> {
        let lvm = Lvm::find(ctx)?;
        let Some(vg) = lvm.vg_info(ctx, &self.vg)? else {
            return Err(Failure::generic(format!(
                "{} is active but its volume group is not visible",
                self.target()
            )));
        };
        if !vg.clustered() && !vg.tags.contains(&self.node) {
            return Err(Failure::generic(format!(
                "{} is active on this node ({}) but tagged {}",
                self.target(),
                self.node,
                if vg.tags.is_empty() {
                    "by no node".to_string()
                } else {
                    format!("for {}", vg.tags.join(","))
                }
            )));
        }
        Ok(())
    }
}

/// The cluster members, from `corosync-quorumtool -l`; `None` when they
/// cannot be read (no corosync, not running).
fn members(ctx: &Context) -> Option<Vec<String>> {
    let cmd = ctx.tools().command("corosync-quorumtool").ok()?;
    let out = cmd
        .arg("-l")
        .run(&ctx.deadline().capped(Duration::from_secs(10)))
        .ok()?;
    if !out.success() {
        info!(
            "corosync-quorumtool -l failed: {}; membership unknown",
            out.message()
        );
        return None;
    }
    let m = parse_members(&out.stdout);
    (!m.is_empty()).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Result<Params, Failure> {
        let env = ocf::Env::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())),
        );
        Params::parse(PARAMS, &env)
    }

    #[test]
    fn names_are_checked() {
        assert!(params(&[("vg_name", "vg-1"), ("lv_name", "lv_2.x")]).is_ok());
        for bad in ["-vg", "a/b", "a b", "..", "$(x)"] {
            let e = params(&[("vg_name", bad)]).unwrap_err();
            assert_eq!(e.status, OcfStatus::ErrConfigured, "{bad}");
            assert!(e.reason.contains("vg_name"), "{}", e.reason);
        }
        let e = params(&[]).unwrap_err();
        assert!(e.reason.contains("vg_name"), "{}", e.reason);
    }

    #[test]
    fn volume_list_rules_of_lvm_sh() {
        let conf = |s: &str| LvmConf::parse(&format!("activation {{\n\tvolume_list={s}\n}}\n"));
        assert!(check_volume_list(&conf("[\"root\",\"@n1\"]"), "vg", "n1").is_ok());
        let e = check_volume_list(&LvmConf::default(), "vg", "n1").unwrap_err();
        assert!(e.reason.contains("not set"), "{e}");
        let e = check_volume_list(&conf("[]"), "vg", "n1").unwrap_err();
        assert!(e.reason.contains("\"@n1\""), "{e}");
        for bad in ["[\"@n1\",\"vg\"]", "[\"@n1\",\"vg/lv\"]"] {
            let e = check_volume_list(&conf(bad), "vg", "n1").unwrap_err();
            assert_eq!(e.status, OcfStatus::ErrConfigured, "{bad}");
            assert!(e.reason.contains("outside the cluster"), "{e}");
        }
        assert!(check_volume_list(&conf("[\"@n1\",\"vg2\"]"), "vg", "n1").is_ok());
    }

    #[test]
    fn corosync_members() {
        let out = "\nMembership information\n----------------------\n    Nodeid      Votes Name\n         1          1 node1 (local)\n         2          1 node2\n";
        assert_eq!(parse_members(out), ["node1", "node2"]);
        assert!(parse_members("Cannot initialize QUORUM service\n").is_empty());
    }

    #[test]
    fn depths() {
        assert_eq!(monitor_depth(0), 0);
        assert_eq!(monitor_depth(9), 0);
        assert_eq!(monitor_depth(10), 10);
        assert_eq!(monitor_depth(20), 10);
    }

    #[test]
    fn meta_data_is_the_rgmanager_dialect() {
        let xml = META.render();
        assert!(xml.contains("<resource-agent name=\"lvm\" version=\"rgmanager 2.0\">"));
        assert!(xml.contains("<parameter name=\"name\" primary=\"1\">"));
        assert!(xml.contains("<parameter name=\"vg_name\" required=\"1\">"));
        assert!(xml.contains("<parameter name=\"nfslock\" inherit=\"service%nfslock\">"));
        assert!(xml.contains("<attributes maxinstances=\"1\"/>"));
        let names: Vec<&str> = PARAMS.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            ["name", "vg_name", "lv_name", "self_fence", "nfslock"]
        );
    }
}
