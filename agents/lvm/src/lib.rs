//! `LVM` (legacy): activates a whole volume group, drop-in for
//! `ocf:heartbeat:LVM` with its parameters (`volgrpname`, `exclusive`,
//! `tag`, `partial_activation`) and modes:
//!
//! * `exclusive=false`: plain `vgchange -aly` / `-aln`;
//! * `exclusive=true` on a clustered VG: `vgchange -aey` (clvmd), the
//!   exclusive activation NCS load scripts use;
//! * `exclusive=true` otherwise: tag plus `volume_list`, activated with
//!   `vgchange -aey --config activation{volume_list=["@tag"]}`; foreign tags
//!   are stripped as the heartbeat agent does, but never while the VG is
//!   active on this node under them; stop removes our tag.
//!
//! Monitor and status read device-mapper state only (see
//! [`ra_lvm_tools::monitor::monitor`]).

use ocf::{
    ActionSpec, AgentMeta, Context, Failure, OcfResult, OcfStatus, ParamSpec, Params, ResourceAgent,
};
use ra_lvm_tools::lvm::{self, Lvm, VgInfo};
use ra_lvm_tools::owner::{self, LockDaemon};
use ra_lvm_tools::{dm, monitor};

static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("volgrpname")
        .identity()
        .required()
        .unique()
        .short("Volume group name")
        .long("The name of volume group."),
    ParamSpec::boolean("exclusive")
        .default("false")
        .short("Exclusive activation")
        .long(
            "If set, the volume group will be activated exclusively. This option works one of \
             two ways. If the volume group has the cluster attribute set, then the volume group \
             will be activated exclusively using clvmd across the cluster. If the cluster \
             attribute is not set, the volume group will be activated exclusively using a tag \
             and the volume_list filter. When the tag option is in use, the volume_list in \
             lvm.conf must be initialized. This can be as simple as setting 'volume_list = []' \
             depending on your setup.",
        ),
    ParamSpec::string("tag")
        .default("pacemaker")
        .short("Exclusive activation tag")
        .long("If \"exclusive\" is set on a non clustered volume group, this overrides the tag to be used."),
    ParamSpec::boolean("partial_activation")
        .default("false")
        .short("Activate VG partially when missing PVs")
        .long(
            "If set, the volume group will be activated partially even with some physical \
             volumes missing. It helps to set to true when using mirrored logical volumes.",
        ),
];

static ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", 30),
    ActionSpec::new("stop", 30),
    ActionSpec::new("status", 30),
    ActionSpec::new("monitor", 30).interval(10).depth(0),
    ActionSpec::new("methods", 5),
    ActionSpec::new("meta-data", 5),
    ActionSpec::new("validate-all", 5),
];

static META: AgentMeta = AgentMeta {
    name: "LVM",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Controls the availability of an LVM Volume Group",
    longdesc: "Resource script for LVM. It manages an Linux Volume Manager volume (LVM) as an HA \
               resource. Monitor reads the device-mapper state of the volume group (depth 0) \
               or also one block of each active LV (depth 10).",
    params: PARAMS,
    actions: ACTIONS,
    special: None,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Tag,
    Clvm,
}

/// One `LVM` resource: a whole volume group (named `LvmAgent` because
/// [`Lvm`] is the tool).
#[derive(Debug)]
pub struct LvmAgent {
    pub vg: String,
    pub exclusive: bool,
    pub tag: String,
    pub partial: bool,
    checked: ocf::CheckedOnce<(Lvm, VgInfo, Mode)>,
}

impl LvmAgent {
    fn check(&self, ctx: &Context) -> Result<(Lvm, VgInfo, Mode), Failure> {
        if ctx.clone && self.exclusive {
            return Err(Failure::configured(
                "cloned LVM resources can not be activated exclusively",
            ));
        }
        let lvm = Lvm::find(ctx)?;
        let conf = lvm.config(ctx)?;
        let vg = lvm.usable_vg(ctx, &self.vg, None, self.partial)?;
        let mode = match (self.exclusive, vg.clustered()) {
            (false, _) => Mode::Plain,
            (true, true) => Mode::Clvm,
            (true, false) => Mode::Tag,
        };
        match mode {
            Mode::Tag => owner::check_volume_list(&conf, &self.vg, &self.tag)?,
            Mode::Clvm => LockDaemon::Clvmd.require(&self.vg)?,
            Mode::Plain => {}
        }
        if conf.get("global/use_lvmetad").as_deref() == Some("1") {
            ocf::warn!(
                "lvmetad is enabled in lvm.conf (global/use_lvmetad=1); disable it in a cluster"
            );
        }
        Ok((lvm, vg, mode))
    }

    fn vgchange(
        &self,
        ctx: &Context,
        lvm: &Lvm,
        flag: &str,
        extra: &[String],
    ) -> Result<(), Failure> {
        let mut args = vec!["vgchange".to_string(), flag.to_string()];
        if self.partial {
            args.extend(["--activationmode".into(), "partial".into()]);
        }
        args.extend(extra.iter().cloned());
        args.push("--".into());
        args.push(self.vg.clone());
        lvm.run_ok(ctx, &format!("activating {}", self.vg), &args)?;
        Ok(())
    }
}

impl ResourceAgent for LvmAgent {
    fn meta() -> &'static AgentMeta {
        &META
    }

    fn configure(p: Params, _ctx: &Context) -> Result<Self, Failure> {
        Ok(LvmAgent {
            vg: p.str("volgrpname").unwrap_or_default().to_string(),
            exclusive: p.bool("exclusive"),
            tag: p.str("tag").unwrap_or("pacemaker").to_string(),
            partial: p.bool("partial_activation"),
            checked: Default::default(),
        })
    }

    fn validate(&self, ctx: &Context) -> Result<(), Failure> {
        ra_lvm_tools::check_names("volgrpname", &self.vg, "", None)?;
        self.checked.validate(ctx, || self.check(ctx))
    }

    fn start(&self, ctx: &Context) -> OcfResult {
        let (lvm, vg, mode) = self.checked.take_or(|| self.check(ctx))?;
        ocf::info!("activating volume group {}", self.vg);
        match mode {
            Mode::Plain => {
                let mut extra = Vec::new();
                if ctx.clone {
                    extra = vec!["--monitor".to_string(), "y".to_string()];
                }
                self.vgchange(ctx, &lvm, "-aly", &extra)?;
            }
            Mode::Clvm => self.vgchange(ctx, &lvm, "-aey", &[])?,
            Mode::Tag => {
                // The heartbeat agent strips foreign tags: takeover allowed,
                // but never while the VG is active here under them.
                owner::claim_tag(&lvm, ctx, &vg, &self.tag, true)?;
                self.vgchange(
                    ctx,
                    &lvm,
                    "-aey",
                    &["--config".into(), owner::tag_override(&self.tag)],
                )?;
            }
        }
        if !lvm::wait_active(ctx, &self.vg, None) {
            return Err(Failure::generic(format!(
                "LVM: {} did not activate correctly",
                self.vg
            )));
        }
        monitor::mark_started(ctx, &self.vg)?;
        Ok(OcfStatus::Success)
    }

    fn stop(&self, ctx: &Context) -> OcfResult {
        if dm::vg_devices(&self.vg).is_empty() {
            ocf::info!("volume group {} is not active", self.vg);
            monitor::mark_stopped(ctx);
            return Ok(OcfStatus::Success);
        }
        let lvm = Lvm::find(ctx)?;
        ocf::info!("deactivating volume group {}", self.vg);
        lvm::deactivate(&lvm, ctx, &self.vg, None, "vgchange", &[])?;
        if self.exclusive {
            let clustered = lvm
                .vg_info(ctx, &self.vg)?
                .map(|v| (v.clustered(), v.tags.contains(&self.tag)));
            if let Some((false, true)) = clustered {
                owner::release_tag(&lvm, ctx, &self.vg, &self.tag)?;
            }
        }
        monitor::mark_stopped(ctx);
        Ok(OcfStatus::Success)
    }

    fn monitor(&self, ctx: &Context) -> OcfResult {
        monitor::monitor(ctx, &self.vg, None)
    }

    fn status(&self, ctx: &Context) -> OcfResult {
        let r = monitor::monitor(ctx, &self.vg, None);
        if matches!(r, Ok(OcfStatus::Success)) {
            println!("Volume {} is available (running)", self.vg);
        } else {
            println!("Volume {} is not available (stopped)", self.vg);
        }
        r
    }
}
