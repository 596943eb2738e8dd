//! `LVM-activate`: activates a volume group (or one LV of it) under one of
//! the cluster protections LVM offers (lvmlockd, clvmd, system ID, tags),
//! drop-in for `ocf:heartbeat:LVM-activate` with its parameter names,
//! defaults and meanings, and without its shell:
//!
//! * monitor depth 0 reads device-mapper state from sysfs and forks nothing;
//!   depth 10 reads a block from each active LV; other depths are
//!   OCF_ERR_CONFIGURED;
//! * a probe of a VG that is not visible yet is 7; a recurring monitor of a
//!   VG we activated and that is gone is 1;
//! * tagging mode really checks ownership: a VG tagged by another owner is
//!   refused unless `takeover=true`, foreign tags are stripped on takeover,
//!   stop removes our tag;
//! * system_id mode takes the VG over from another system ID (logged), but
//!   never while the VG is active on this node under that other owner;
//! * an lvm.conf wrong for the mode is OCF_ERR_CONFIGURED with one line
//!   naming the setting;
//! * lvmlockd mode: an activation refused because another node holds the
//!   LV's lock (an exclusive LV active there, or a shared one asked for
//!   exclusively) says so in its reason, not with lvm's closing "Failed to
//!   lock logical volume".
//!
//! LVM itself (the `lvm` tool, device-mapper state) is [`ra_lvm_tools`],
//! shared with the legacy `LVM` agent and the rgmanager `lvm` persona.

use ocf::{
    ActionSpec, AgentMeta, CheckedOnce, Context, Failure, OcfResult, OcfStatus, ParamSpec, Params,
    ResourceAgent,
};

use ra_lvm_tools::lvm::{self, Lvm, VgInfo};
use ra_lvm_tools::owner::{self, LockDaemon};
use ra_lvm_tools::{dm, monitor};

/// How the VG is protected against activation on two nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessMode {
    Lvmlockd,
    Clvmd,
    SystemId,
    Tagging,
}

impl AccessMode {
    pub const WORDS: &'static [&'static str] = &["lvmlockd", "clvmd", "system_id", "tagging"];
    pub fn parse(s: &str) -> Option<AccessMode> {
        Some(match s {
            "lvmlockd" => AccessMode::Lvmlockd,
            "clvmd" => AccessMode::Clvmd,
            "system_id" => AccessMode::SystemId,
            "tagging" => AccessMode::Tagging,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            AccessMode::Lvmlockd => "lvmlockd",
            AccessMode::Clvmd => "clvmd",
            AccessMode::SystemId => "system_id",
            AccessMode::Tagging => "tagging",
        }
    }
}

static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("vgname")
        .identity()
        .required()
        .short("The volume group name")
        .long("The volume group name."),
    ParamSpec::string("lvname")
        .identity()
        .short("Only activate the given LV")
        .long("If set, only the specified LV will be activated."),
    ParamSpec::string("vg_access_mode")
        .required_by_agent()
        .short("The VG access mode")
        .long(
            "Required. This option decides which solution will be used to protect the volume \
             group in cluster environment. Optional solutions are: lvmlockd, clvmd, system_id \
             and tagging. A missing or unknown value fails start and validate-all with \
             OCF_ERR_CONFIGURED but never stop.",
        ),
    ParamSpec::one_of("activation_mode", &["exclusive", "shared"])
        .default("exclusive")
        .short("Logical volume activation mode")
        .long(
            "The activation mode decides the visibility of logical volumes in the cluster: \
             \"shared\" for cluster filesystems, \"exclusive\" for local filesystems. Only has \
             effect in lvmlockd and clvmd modes; system_id and tagging always activate \
             exclusively.",
        ),
    ParamSpec::string("tag")
        .default("pacemaker")
        .short("The tag used for tagging activation mode")
        .long(
            "The tag used for tagging activation mode. It must not appear in \
             activation/volume_list of lvm.conf.",
        ),
    ParamSpec::boolean("partial_activation")
        .default("false")
        .short("Activate VG partially when missing PVs")
        .long(
            "If set, the volume group will be activated partially even with some physical \
             volumes missing (--activationmode partial). It helps to set to true when using \
             mirrored logical volumes.",
        ),
    ParamSpec::boolean("degraded_activation")
        .default("false")
        .short("Activate RAID LVs in degraded mode when PVs are missing")
        .long(
            "If set, a volume group with missing physical volumes is still started, and LVs \
             are activated with --activationmode degraded (RAID LVs with a missing leg).",
        ),
    ParamSpec::boolean("majority_pvs")
        .default("false")
        .short("Take over a system_id VG with a majority of PVs")
        .long(
            "system_id mode: change the system ID with vgchange --majoritypvs, so a VG with \
             missing PVs can still be taken over when most of its PVs are present.",
        ),
    ParamSpec::boolean("takeover")
        .default("false")
        .short("tagging mode: take over a VG tagged by another owner")
        .long(
            "tagging mode: a VG carrying another owner's tag has not been released by that \
             owner, and start refuses it. Set to true to strip the foreign tags and take the \
             VG over (only when the other owner is known to be down). A VG active on this node \
             under another tag is refused regardless.",
        ),
];

static ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", 90),
    ActionSpec::new("stop", 90),
    ActionSpec::new("monitor", 90).interval(30).depth(0),
    ActionSpec::new("meta-data", 10),
    ActionSpec::new("validate-all", 20),
];

static META: AgentMeta = AgentMeta {
    name: "LVM-activate",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "This agent activates/deactivates logical volumes.",
    longdesc: "This agent manages LVM activation/deactivation work for a given volume group, \
               or one logical volume of it. It supports the access modes lvmlockd, system_id, \
               clvmd and tagging (vg_access_mode).\n\
               Option: OCF_CHECK_LEVEL\n\
               Monitor depth 0 checks the device-mapper devices of the VG or LV (from sysfs, \
               without running LVM commands). Depth 10 also reads one block from each active \
               LV (direct I/O). Other depths are not supported.",
    params: PARAMS,
    actions: ACTIONS,
    special: None,
};

/// What `validate` learned, for `start` to use without asking LVM again.
#[derive(Debug)]
pub struct Checked {
    pub lvm: Lvm,
    pub vg: VgInfo,
    /// This host's system ID (system_id mode).
    pub system_id: String,
}

#[derive(Debug)]
pub struct LvmActivate {
    pub vg: String,
    pub lv: Option<String>,
    /// The raw `vg_access_mode`, checked in `validate` so stop never fails
    /// on it.
    pub mode_raw: Option<String>,
    pub shared: bool,
    pub tag: String,
    pub partial: bool,
    pub degraded: bool,
    pub majority_pvs: bool,
    pub takeover: bool,
    checked: CheckedOnce<Checked>,
}

impl LvmActivate {
    /// An instance built by another caller's persona (rgmanager's `lvm`)
    /// rather than from `OCF_RESKEY_*`: exclusive activation, no partial or
    /// degraded activation, no takeover; the public fields adjust the rest.
    pub fn new(vg: &str, lv: Option<&str>, mode: AccessMode, tag: &str) -> LvmActivate {
        LvmActivate {
            vg: vg.to_string(),
            lv: lv.map(str::to_string),
            mode_raw: Some(mode.name().to_string()),
            shared: false,
            tag: tag.to_string(),
            partial: false,
            degraded: false,
            majority_pvs: false,
            takeover: false,
            checked: CheckedOnce::default(),
        }
    }

    /// Hand `start` what the caller already checked (a persona with its own
    /// setup rules), so `start` does not run [`LvmActivate::check`].
    pub fn set_checked(&self, c: Checked) {
        self.checked.set(c);
    }

    fn mode(&self) -> Option<AccessMode> {
        self.mode_raw.as_deref().and_then(AccessMode::parse)
    }

    fn target(&self) -> String {
        match &self.lv {
            Some(lv) => format!("{}/{lv}", self.vg),
            None => self.vg.clone(),
        }
    }

    /// Everything start needs to hold, in the order the heartbeat agent
    /// checks it, with lvm.conf problems reported as OCF_ERR_CONFIGURED.
    pub fn check(&self, ctx: &Context) -> Result<Checked, Failure> {
        let mode = match self.mode_raw.as_deref() {
            None => {
                return Err(Failure::configured(
                    "required parameter 'vg_access_mode' is not set",
                ))
            }
            Some(raw) => AccessMode::parse(raw).ok_or_else(|| {
                Failure::configured(format!(
                    "parameter 'vg_access_mode': '{raw}' is not one of {}",
                    AccessMode::WORDS.join(", ")
                ))
            })?,
        };
        let lvm = Lvm::find(ctx)?;
        let conf = lvm.config(ctx)?;
        match mode {
            AccessMode::Lvmlockd => {
                if conf.get("global/use_lvmlockd").as_deref() != Some("1") {
                    return Err(Failure::configured(
                        "lvm.conf: global/use_lvmlockd must be 1 for vg_access_mode=lvmlockd",
                    ));
                }
            }
            AccessMode::Clvmd => {
                if conf.get("global/use_lvmlockd").as_deref() == Some("1") {
                    return Err(Failure::configured(
                        "lvm.conf: global/use_lvmlockd must be 0 for vg_access_mode=clvmd",
                    ));
                }
                if conf.get("global/locking_type").as_deref() != Some("3") {
                    return Err(Failure::configured(
                        "lvm.conf: global/locking_type must be 3 for vg_access_mode=clvmd",
                    ));
                }
            }
            AccessMode::SystemId => {
                let source = conf
                    .get("global/system_id_source")
                    .unwrap_or_else(|| "none".into());
                if source == "none" || source.is_empty() {
                    return Err(Failure::configured(
                        "lvm.conf: global/system_id_source is not set (none); vg_access_mode=system_id needs uname, machineid, lvmlocal or file",
                    ));
                }
                if conf.list("activation/volume_list").is_some() {
                    return Err(Failure::configured(
                        "lvm.conf: activation/volume_list must not be set with vg_access_mode=system_id (it silently filters the activation)",
                    ));
                }
            }
            AccessMode::Tagging => owner::check_volume_list(&conf, &self.vg, &self.tag)?,
        }
        let vg = lvm.usable_vg(
            ctx,
            &self.vg,
            self.lv.as_deref(),
            self.partial || self.degraded,
        )?;
        let matches = match mode {
            AccessMode::Lvmlockd => vg.lvmlockd(),
            AccessMode::Clvmd => vg.clustered(),
            AccessMode::SystemId => !vg.system_id.is_empty(),
            AccessMode::Tagging => true,
        };
        if !matches {
            return Err(Failure::configured(format!(
                "vg_access_mode={} does not match volume group {} (lock type '{}', system ID '{}', clustered {})",
                mode.name(),
                self.vg,
                vg.lock_type,
                vg.system_id,
                if vg.clustered() { "yes" } else { "no" }
            )));
        }
        let mut system_id = String::new();
        match mode {
            AccessMode::SystemId => {
                system_id = lvm.local_system_id(ctx)?;
                if system_id.is_empty() {
                    return Err(Failure::configured(
                        "lvm.conf: global/system_id_source gives this host no system ID",
                    ));
                }
            }
            AccessMode::Lvmlockd => LockDaemon::Lvmlockd.require_alone(&self.vg)?,
            AccessMode::Clvmd => LockDaemon::Clvmd.require_alone(&self.vg)?,
            AccessMode::Tagging => {}
        }
        Ok(Checked { lvm, vg, system_id })
    }

    fn activation_args(&self, flag: &str) -> Vec<String> {
        let mut args = vec!["lvchange".to_string(), flag.to_string()];
        if self.partial {
            args.extend(["--activationmode".into(), "partial".into()]);
        } else if self.degraded {
            args.extend(["--activationmode".into(), "degraded".into()]);
        }
        args
    }

    fn activate(
        &self,
        ctx: &Context,
        lvm: &Lvm,
        flag: &str,
        extra: &[String],
    ) -> Result<(), Failure> {
        let mut args = self.activation_args(flag);
        args.extend(extra.iter().cloned());
        args.push("--".into());
        args.push(self.target());
        lvm.run_ok(ctx, &format!("activating {}", self.target()), &args)?;
        Ok(())
    }

    /// lvmlockd: activating takes the LV's lock in the dlm first (ex, or sh
    /// with `activation_mode=shared`); a lock another node holds in a
    /// conflicting mode is the refusal to report, not lvm's closing "Failed
    /// to lock logical volume" line.
    fn activate_locked(&self, ctx: &Context, lvm: &Lvm) -> Result<(), Failure> {
        let mut args = self.activation_args(self.exclusive_flag());
        args.push("--".into());
        args.push(self.target());
        let out = lvm.run(ctx, &args)?;
        if out.success() {
            return Ok(());
        }
        Err(Failure::generic(
            lock_refusal(&out.stderr, &self.target(), self.shared).unwrap_or_else(|| {
                format!("activating {} failed: {}", self.target(), out.message())
            }),
        ))
    }

    fn exclusive_flag(&self) -> &'static str {
        if self.shared {
            "-asy"
        } else {
            "-aey"
        }
    }
}

impl ResourceAgent for LvmActivate {
    fn meta() -> &'static AgentMeta {
        &META
    }

    fn configure(p: Params, _ctx: &Context) -> Result<Self, Failure> {
        Ok(LvmActivate {
            vg: p.str("vgname").unwrap_or_default().to_string(),
            lv: p.str("lvname").map(str::to_string),
            mode_raw: p.str("vg_access_mode").map(str::to_string),
            shared: p.str("activation_mode") == Some("shared"),
            tag: p.str("tag").unwrap_or("pacemaker").to_string(),
            partial: p.bool("partial_activation"),
            degraded: p.bool("degraded_activation"),
            majority_pvs: p.bool("majority_pvs"),
            takeover: p.bool("takeover"),
            checked: CheckedOnce::default(),
        })
    }

    fn validate(&self, ctx: &Context) -> Result<(), Failure> {
        ra_lvm_tools::check_names("vgname", &self.vg, "lvname", self.lv.as_deref())?;
        self.checked.validate(ctx, || self.check(ctx))
    }

    fn start(&self, ctx: &Context) -> OcfResult {
        let c = self.checked.take_or(|| self.check(ctx))?;
        let lv = self.lv.as_deref();
        let active = !dm::active_lvs(&self.vg, lv).is_empty();
        match self.mode().expect("checked") {
            AccessMode::SystemId => {
                owner::claim_system_id(&c.lvm, ctx, &c.vg, &c.system_id, self.majority_pvs)?;
                if !active {
                    self.activate(ctx, &c.lvm, "-ay", &[])?;
                }
            }
            AccessMode::Tagging => {
                owner::claim_tag(&c.lvm, ctx, &c.vg, &self.tag, self.takeover)?;
                if !active {
                    self.activate(
                        ctx,
                        &c.lvm,
                        "-ay",
                        &["--config".into(), owner::tag_override(&self.tag)],
                    )?;
                }
            }
            AccessMode::Lvmlockd => {
                if !active {
                    c.lvm.run_ok(
                        ctx,
                        &format!("starting the lockspace of {}", self.vg),
                        &["vgchange", "--lockstart", "--", &self.vg],
                    )?;
                    self.activate_locked(ctx, &c.lvm)?;
                }
            }
            AccessMode::Clvmd => {
                if !active {
                    self.activate(ctx, &c.lvm, self.exclusive_flag(), &[])?;
                }
            }
        }
        if active {
            ocf::info!("{} is already active", self.target());
        } else if !lvm::wait_active(ctx, &self.vg, lv) {
            return Err(Failure::generic(format!(
                "{}: failed to activate (no device-mapper device appeared)",
                self.target()
            )));
        } else {
            ocf::info!("{} activated", self.target());
        }
        monitor::mark_started(ctx, &self.target())?;
        Ok(OcfStatus::Success)
    }

    fn stop(&self, ctx: &Context) -> OcfResult {
        let lv = self.lv.as_deref();
        let active = match lv {
            Some(_) => dm::active_lvs(&self.vg, lv),
            None => dm::vg_devices(&self.vg),
        };
        let mode = self.mode();
        if active.is_empty() {
            ocf::info!("{} is not active", self.target());
            monitor::mark_stopped(ctx);
            return Ok(OcfStatus::Success);
        }
        if mode.is_none() {
            ocf::warn!(
                "vg_access_mode is not valid; deactivating {} anyway",
                self.target()
            );
        }
        let lvm = Lvm::find(ctx)?;
        let mut extra: Vec<String> = Vec::new();
        match mode {
            Some(AccessMode::Tagging) => {
                extra = vec!["--config".into(), owner::tag_override(&self.tag)];
            }
            Some(AccessMode::SystemId) => {
                // A VG taken over by another system ID while active here
                // is foreign: deactivating it writes no metadata, so let
                // lvm see it. Its system ID is passed whoever's it is (our
                // own in extra_system_ids changes nothing), which spares
                // an `lvm systemid` run: under TCG each lvm run costs
                // seconds, and heartbeat's stop is one lvchange.
                if let Some(vg) = lvm.vg_info(ctx, &self.vg)? {
                    if !vg.system_id.is_empty() {
                        extra = vec![
                            "--config".into(),
                            format!("local/extra_system_ids=[\"{}\"]", vg.system_id),
                        ];
                    }
                }
            }
            _ => {}
        }
        ocf::info!("deactivating {}", self.target());
        lvm::deactivate(&lvm, ctx, &self.vg, lv, "lvchange", &extra)?;
        let vg_idle = dm::vg_devices(&self.vg).is_empty();
        match mode {
            Some(AccessMode::Tagging) if vg_idle => {
                owner::release_tag(&lvm, ctx, &self.vg, &self.tag)?
            }
            Some(AccessMode::Lvmlockd) if vg_idle => {
                lvm.run_ok(
                    ctx,
                    &format!("stopping the lockspace of {}", self.vg),
                    &["vgchange", "--lockstop", "--", &self.vg],
                )?;
            }
            _ => {}
        }
        monitor::mark_stopped(ctx);
        ocf::info!("{} deactivated", self.target());
        Ok(OcfStatus::Success)
    }

    fn monitor(&self, ctx: &Context) -> OcfResult {
        monitor::monitor(ctx, &self.vg, self.lv.as_deref())
    }

    fn validate_all(&self, _ctx: &Context) -> OcfResult {
        Ok(OcfStatus::Success)
    }
}

/// The reason for an lvmlockd activation another node's lock refused
/// (`LV locked by other host: VG/LV` in lvm's output), naming what holds
/// it; `None` for any other failure.
fn lock_refusal(stderr: &str, target: &str, shared: bool) -> Option<String> {
    let line = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("LV locked by other host"))?;
    Some(if shared {
        format!(
            "{target}: shared activation refused: {line} (another node has it active exclusively)"
        )
    } else {
        format!("{target}: exclusive activation refused: {line} (it is active on another node)")
    })
}

#[cfg(test)]
mod tests {
    use super::lock_refusal;

    #[test]
    fn another_nodes_lock_is_the_reason() {
        let stderr =
            "  LV locked by other host: vg1/lv1\n  Failed to lock logical volume vg1/lv1.\n";
        assert_eq!(
            lock_refusal(stderr, "vg1/lv1", false).as_deref(),
            Some("vg1/lv1: exclusive activation refused: LV locked by other host: vg1/lv1 (it is active on another node)")
        );
        assert!(lock_refusal(stderr, "vg1/lv1", true)
            .unwrap()
            .contains("another node has it active exclusively"));
        assert_eq!(
            lock_refusal("  Volume group \"vg1\" not found\n", "vg1/lv1", false),
            None
        );
    }
}
