//! Who may activate a VG: the cluster lock daemons (clvmd, lvmlockd), the
//! owner tag with lvm.conf's `activation/volume_list`, or the LVM system
//! ID; claiming and releasing that ownership.

use ocf::{Context, Failure};

use crate::dm;
use crate::lvm::{Lvm, LvmConf, VgInfo};

/// The daemons serving cluster-wide LVM locks: clvmd for a VG with the
/// clustered attribute, lvmlockd for a VG with a lock type. A shared VG
/// activated without its daemon would be activated without the cluster's
/// lock, so every LVM agent refuses that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockDaemon {
    Clvmd,
    Lvmlockd,
}

impl LockDaemon {
    pub fn name(self) -> &'static str {
        match self {
            LockDaemon::Clvmd => "clvmd",
            LockDaemon::Lvmlockd => "lvmlockd",
        }
    }

    fn other(self) -> LockDaemon {
        match self {
            LockDaemon::Clvmd => LockDaemon::Lvmlockd,
            LockDaemon::Lvmlockd => LockDaemon::Clvmd,
        }
    }

    /// `vg`, shared through this daemon, can be activated: the daemon runs.
    pub fn require(self, vg: &str) -> Result<(), Failure> {
        if ocf::procs::running(self.name()) {
            return Ok(());
        }
        Err(Failure::generic(match self {
            LockDaemon::Clvmd => {
                format!("{vg} has the cluster attribute set, but clvmd is not running")
            }
            LockDaemon::Lvmlockd => {
                format!("{vg} is shared through lvmlockd, but lvmlockd is not running")
            }
        }))
    }

    /// [`LockDaemon::require`], and the other daemon is not running next to
    /// it: which of the two lvm commands then ask depends on lvm.conf alone.
    pub fn require_alone(self, vg: &str) -> Result<(), Failure> {
        self.require(vg)?;
        if ocf::procs::running(self.other().name()) {
            return Err(Failure::generic(format!(
                "{} is running next to {}",
                self.other().name(),
                self.name()
            )));
        }
        Ok(())
    }
}

/// Tag mode needs `activation/volume_list` set (so nothing activates the VG
/// outside the cluster) and not naming our tag or the VG.
pub fn check_volume_list(conf: &LvmConf, vg: &str, tag: &str) -> Result<(), Failure> {
    let Some(list) = conf.list("activation/volume_list") else {
        return Err(Failure::configured(
            "lvm.conf: activation/volume_list is not set; tag-based exclusive activation needs it (e.g. volume_list = [ ])",
        ));
    };
    let ours = format!("@{tag}");
    if let Some(bad) = list
        .iter()
        .find(|e| **e == ours || *e == vg || e.starts_with(&format!("{vg}/")))
    {
        return Err(Failure::configured(format!(
            "lvm.conf: activation/volume_list must not contain \"{bad}\": it would let {vg} activate without the cluster tag {tag}"
        )));
    }
    Ok(())
}

/// `--config` text activating with only our tag allowed.
pub fn tag_override(tag: &str) -> String {
    format!("activation{{volume_list=[\"@{tag}\"]}}")
}

/// Make `tag` the VG's only owner tag. Foreign tags mean another owner has
/// not released the VG: refused unless `takeover`, and always refused when
/// the VG is active on this node (it would then be active under two owners).
pub fn claim_tag(
    lvm: &Lvm,
    ctx: &Context,
    vg: &VgInfo,
    tag: &str,
    takeover: bool,
) -> Result<(), Failure> {
    let foreign: Vec<&String> = vg.tags.iter().filter(|t| *t != tag).collect();
    if !foreign.is_empty() {
        let names = foreign
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",");
        if !dm::vg_devices(&vg.name).is_empty() {
            return Err(Failure::generic(format!(
                "{} is active on this node under tag(s) {names}; refusing to take it over",
                vg.name
            )));
        }
        if !takeover {
            return Err(Failure::generic(format!(
                "{} is owned by tag(s) {names}, not ours ({tag}); refusing to start (takeover=true takes it over)",
                vg.name
            )));
        }
        ocf::warn!(
            "taking {} over from tag(s) {names}: stripping them and adding {tag}",
            vg.name
        );
    } else if vg.tags.iter().any(|t| t == tag) {
        return Ok(());
    }
    let mut args: Vec<String> = vec!["vgchange".into()];
    for t in &foreign {
        args.push("--deltag".into());
        args.push((*t).clone());
    }
    if !vg.tags.iter().any(|t| t == tag) {
        args.push("--addtag".into());
        args.push(tag.into());
    }
    args.push("--".into());
    args.push(vg.name.clone());
    lvm.run_ok(ctx, &format!("setting tag {tag} on {}", vg.name), &args)?;
    ocf::info!("tag {tag} set on {}", vg.name);
    Ok(())
}

/// Remove our tag (only ours) after deactivation.
pub fn release_tag(lvm: &Lvm, ctx: &Context, vg: &str, tag: &str) -> Result<(), Failure> {
    let out = lvm.run(ctx, &["vgchange", "--deltag", tag, "--", vg])?;
    if !out.success() {
        // Nothing to remove is fine; check what is left.
        let left = lvm.vg_info(ctx, vg)?;
        if left.is_some_and(|i| i.tags.iter().any(|t| t == tag)) {
            return Err(Failure::generic(format!(
                "cannot remove tag {tag} from {vg}: {}",
                out.message()
            )));
        }
    }
    ocf::info!("tag {tag} removed from {vg}");
    Ok(())
}

/// system_id mode: make `vg` ours (`ours` is this host's system ID),
/// taking it from another system ID (logged, with `--majoritypvs` when
/// `majority_pvs`), but never while it is active on this node under that
/// other owner; then stop autoactivation of a complete VG, so nothing but
/// the cluster activates it at boot.
pub fn claim_system_id(
    lvm: &Lvm,
    ctx: &Context,
    vg: &VgInfo,
    ours: &str,
    majority_pvs: bool,
) -> Result<(), Failure> {
    let current = &vg.system_id;
    if current != ours {
        if !dm::vg_devices(&vg.name).is_empty() {
            return Err(Failure::generic(format!(
                "{} belongs to system ID {current} but is active on this node; refusing to take it over",
                vg.name
            )));
        }
        ocf::warn!(
            "taking over {} from system ID {current} (ours: {ours})",
            vg.name
        );
        let mut args = vec![
            "vgchange".to_string(),
            "-y".into(),
            "--config".into(),
            format!("local/extra_system_ids=[\"{current}\"]"),
            "--systemid".into(),
            ours.to_string(),
        ];
        if majority_pvs {
            args.push("--majoritypvs".into());
        }
        args.push("--".into());
        args.push(vg.name.clone());
        lvm.run_ok(
            ctx,
            &format!("changing the system ID of {} to {ours}", vg.name),
            &args,
        )?;
    }
    // (Metadata cannot be written while PVs are missing.)
    if vg.autoactivation && !vg.partial() {
        ocf::info!("disabling autoactivation of {}", vg.name);
        lvm.run_ok(
            ctx,
            "disabling autoactivation",
            &["vgchange", "--setautoactivation", "n", "--", &vg.name],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocf::OcfStatus;

    #[test]
    fn volume_list_rules() {
        let conf = |s: &str| LvmConf::parse(&format!("activation {{\n\tvolume_list={s}\n}}\n"));
        assert!(check_volume_list(&conf("[]"), "vg", "pacemaker").is_ok());
        assert!(check_volume_list(&conf("[\"root\",\"@other\"]"), "vg", "pacemaker").is_ok());
        for bad in ["[\"@pacemaker\"]", "[\"vg\"]", "[\"vg/lv1\"]"] {
            let e = check_volume_list(&conf(bad), "vg", "pacemaker").unwrap_err();
            assert_eq!(e.status, OcfStatus::ErrConfigured, "{bad}");
            assert!(e.reason.contains("activation/volume_list"), "{e}");
        }
        let e = check_volume_list(&LvmConf::default(), "vg", "t").unwrap_err();
        assert!(e.reason.contains("not set"), "{e}");
    }
}
