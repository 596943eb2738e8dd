//! LVM as the LVM agents use it: the `lvm` tool run as argument vectors,
//! what a VG looks like to this node, what lvm.conf says, VG ownership by tag
//! or system ID, and the monitor that reads device-mapper state only.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ocf::{Cmd, Context, Failure, OcfResult, OcfStatus, Output, Record};

use crate::dm;

/// The `lvm` tool of this node.
#[derive(Clone, Debug)]
pub struct Lvm {
    bin: PathBuf,
    path: String,
}

impl Lvm {
    /// Find `lvm`; missing is OCF_ERR_INSTALLED.
    pub fn find(ctx: &Context) -> Result<Lvm, Failure> {
        let tools = ctx.tools();
        Ok(Lvm {
            bin: tools.require("lvm")?,
            path: tools.path().to_string(),
        })
    }

    /// `lvm <args...>`.
    pub fn cmd<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Cmd {
        Cmd::new(&self.bin).path(&self.path).args(args)
    }

    /// Run `lvm <args...>` within the operation deadline.
    pub fn run<S: AsRef<std::ffi::OsStr>>(
        &self,
        ctx: &Context,
        args: &[S],
    ) -> Result<Output, Failure> {
        let cmd = self.cmd(args);
        ocf::debug!("running {}", cmd.display());
        Ok(cmd.run(&ctx.deadline())?)
    }

    /// Run and require success; the failure names the command and LVM's
    /// last line of error.
    pub fn run_ok<S: AsRef<std::ffi::OsStr>>(
        &self,
        ctx: &Context,
        what: &str,
        args: &[S],
    ) -> Result<Output, Failure> {
        let out = self.run(ctx, args)?;
        if out.success() {
            Ok(out)
        } else {
            Err(Failure::generic(format!(
                "{what} failed: {}",
                out.message()
            )))
        }
    }

    /// The merged configuration lvm commands on this node use. A config
    /// file lvm cannot load is OCF_ERR_CONFIGURED.
    pub fn config(&self, ctx: &Context) -> Result<LvmConf, Failure> {
        let out = self.run(ctx, &["lvmconfig", "--typeconfig", "current"])?;
        if !out.success() {
            return Err(Failure::configured(format!(
                "lvm.conf cannot be loaded: {}",
                out.message()
            )));
        }
        Ok(LvmConf::parse(&out.stdout))
    }

    /// This host's LVM system ID (`lvm systemid`); empty when it has none.
    pub fn local_system_id(&self, ctx: &Context) -> Result<String, Failure> {
        let out = self.run_ok(ctx, "lvm systemid", &["systemid"])?;
        Ok(out
            .stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("system ID:"))
            .unwrap_or("")
            .trim()
            .to_string())
    }

    /// `vg` as an agent may activate it: visible here (else generic: it may
    /// be transient, iSCSI not logged in yet), not exported, complete
    /// unless `partial` allows missing PVs (then a warning), holding at
    /// least one LV and `lv` if one is named (else OCF_ERR_CONFIGURED).
    pub fn usable_vg(
        &self,
        ctx: &Context,
        vg: &str,
        lv: Option<&str>,
        partial: bool,
    ) -> Result<VgInfo, Failure> {
        let Some(info) = self.vg_info(ctx, vg)? else {
            return Err(Failure::generic(format!(
                "volume group {vg} does not exist or is not visible on this node"
            )));
        };
        if info.exported() {
            return Err(Failure::generic(format!(
                "volume group {vg} is exported (vgimport it first)"
            )));
        }
        if info.partial() {
            if !partial {
                return Err(Failure::generic(format!(
                    "volume group {vg} has {} missing PV(s); consider partial_activation=true",
                    info.missing_pvs
                )));
            }
            ocf::warn!("volume group {vg} has missing PVs; activating anyway as configured");
        }
        if info.lvs.is_empty() {
            return Err(Failure::configured(format!(
                "volume group {vg} contains no logical volume"
            )));
        }
        if let Some(lv) = lv.filter(|l| !info.has_lv(l)) {
            return Err(Failure::configured(format!(
                "logical volume {lv} is not in volume group {vg}"
            )));
        }
        Ok(info)
    }

    /// What this node sees of `vg`: `None` when the VG is not visible
    /// (no PV of it is present, or it does not exist).
    pub fn vg_info(&self, ctx: &Context, vg: &str) -> Result<Option<VgInfo>, Failure> {
        let out = self.run(
            ctx,
            &[
                "lvs",
                "--foreign",
                "--noheadings",
                "--separator",
                "|",
                "-o",
                "vg_name,vg_attr,vg_lock_type,vg_systemid,vg_tags,vg_missing_pv_count,vg_autoactivation,lv_name,lv_attr",
                vg,
            ],
        )?;
        if !out.success() {
            ocf::debug!("lvs {vg}: {}", out.message());
            return Ok(None);
        }
        let mut info: Option<VgInfo> = None;
        for line in out.stdout.lines() {
            let f: Vec<&str> = line.trim().split('|').collect();
            if f.len() < 9 || f[0] != vg {
                continue;
            }
            let i = info.get_or_insert_with(|| VgInfo::from_fields(&f));
            if !f[7].is_empty() {
                i.lvs.push(LvInfo {
                    name: f[7].to_string(),
                    attr: f[8].to_string(),
                });
            }
        }
        if info.is_none() {
            // lvs of a VG without LVs prints nothing: ask vgs for the VG.
            let out = self.run(
                ctx,
                &[
                    "vgs",
                    "--foreign",
                    "--noheadings",
                    "--separator",
                    "|",
                    "-o",
                    "vg_name,vg_attr,vg_lock_type,vg_systemid,vg_tags,vg_missing_pv_count,vg_autoactivation",
                    vg,
                ],
            )?;
            if !out.success() {
                return Ok(None);
            }
            info = out.stdout.lines().find_map(|line| {
                let f: Vec<&str> = line.trim().split('|').collect();
                (f.len() >= 7 && f[0] == vg).then(|| VgInfo::from_fields(&f))
            });
        }
        Ok(info)
    }
}

fn split_tags(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// One LV as `lvs` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LvInfo {
    pub name: String,
    pub attr: String,
}

/// A VG as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VgInfo {
    pub name: String,
    pub attr: String,
    pub lock_type: String,
    pub system_id: String,
    pub tags: Vec<String>,
    pub missing_pvs: u32,
    pub autoactivation: bool,
    pub lvs: Vec<LvInfo>,
}

impl VgInfo {
    /// The VG from the first seven `|`-separated fields both queries print:
    /// vg_name, vg_attr, vg_lock_type, vg_systemid, vg_tags,
    /// vg_missing_pv_count, vg_autoactivation (no LVs yet).
    fn from_fields(f: &[&str]) -> VgInfo {
        VgInfo {
            name: f[0].to_string(),
            attr: f[1].to_string(),
            lock_type: f[2].to_string(),
            system_id: f[3].to_string(),
            tags: split_tags(f[4]),
            missing_pvs: f[5].trim().parse().unwrap_or(0),
            autoactivation: f[6] == "enabled",
            lvs: Vec::new(),
        }
    }

    fn attr_char(&self, i: usize) -> char {
        self.attr.chars().nth(i).unwrap_or('-')
    }
    /// Some PVs are missing.
    pub fn partial(&self) -> bool {
        self.attr_char(3) == 'p' || self.missing_pvs > 0
    }
    pub fn exported(&self) -> bool {
        self.attr_char(2) == 'x'
    }
    /// The clustered (clvmd) attribute.
    pub fn clustered(&self) -> bool {
        self.attr_char(5) == 'c'
    }
    /// Shared through lvmlockd.
    pub fn lvmlockd(&self) -> bool {
        matches!(self.lock_type.as_str(), "dlm" | "sanlock" | "idm")
    }
    pub fn has_lv(&self, lv: &str) -> bool {
        self.lvs.iter().any(|l| l.name == lv)
    }
}

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

/// `lvmconfig --typeconfig current`, flattened to `section/key` → value.
#[derive(Clone, Debug, Default)]
pub struct LvmConf {
    values: BTreeMap<String, String>,
}

impl LvmConf {
    pub fn parse(text: &str) -> LvmConf {
        let mut values = BTreeMap::new();
        let mut stack: Vec<String> = Vec::new();
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if let Some(section) = l.strip_suffix('{') {
                stack.push(section.trim().to_string());
            } else if l == "}" {
                stack.pop();
            } else if let Some((k, v)) = l.split_once('=') {
                let mut key = stack.join("/");
                if !key.is_empty() {
                    key.push('/');
                }
                key.push_str(k.trim());
                values.insert(key, v.trim().to_string());
            }
        }
        LvmConf { values }
    }

    /// A scalar value, quotes removed; `None` when not set.
    pub fn get(&self, key: &str) -> Option<String> {
        self.values
            .get(key)
            .map(|v| v.trim_matches('"').to_string())
    }

    /// A list value (`["a","b"]`); `None` when not set.
    pub fn list(&self, key: &str) -> Option<Vec<String>> {
        let v = self.values.get(key)?;
        let inner = v.trim().trim_start_matches('[').trim_end_matches(']');
        Some(
            inner
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
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
    args.push(vg.name.clone());
    lvm.run_ok(ctx, &format!("setting tag {tag} on {}", vg.name), &args)?;
    ocf::info!("tag {tag} set on {}", vg.name);
    Ok(())
}

/// Remove our tag (only ours) after deactivation.
pub fn release_tag(lvm: &Lvm, ctx: &Context, vg: &str, tag: &str) -> Result<(), Failure> {
    let out = lvm.run(ctx, &["vgchange", "--deltag", tag, vg])?;
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
            &["vgchange", "--setautoactivation", "n", &vg.name],
        )?;
    }
    Ok(())
}

/// The state file telling a recurring monitor that we started this
/// instance (and have not stopped it), so "no LV active" means lost.
fn started(ctx: &Context) -> Record {
    Record::new(&[&ctx.resource_type, &ctx.instance, "started"])
}

pub fn mark_started(ctx: &Context, what: &str) -> Result<(), Failure> {
    started(ctx).write(&ctx.env, what)
}

pub fn mark_stopped(ctx: &Context) {
    started(ctx).clear(&ctx.env)
}

fn was_started(ctx: &Context) -> bool {
    started(ctx).read(&ctx.env).is_some()
}

/// Monitor from device-mapper state: depth 0 reads sysfs only, depth 10
/// also reads one block from each active LV, other depths are
/// OCF_ERR_CONFIGURED. Nothing active: a probe or a resource we did not
/// start is 7; a recurring monitor of a resource we started is 1 (lost).
pub fn monitor(ctx: &Context, vg: &str, lv: Option<&str>) -> OcfResult {
    if ctx.check_level != 0 && ctx.check_level != 10 {
        return Err(Failure::configured(format!(
            "unsupported monitor depth {} (0 and 10 are)",
            ctx.check_level
        )));
    }
    let what = match lv {
        Some(l) => format!("{vg}/{l}"),
        None => vg.to_string(),
    };
    let active = dm::active_lvs(vg, lv);
    if active.is_empty() {
        if !ctx.is_probe() && ctx.is_recurring_monitor() && was_started(ctx) {
            return Err(Failure::generic(format!(
                "{what} is no longer active (lost?)"
            )));
        }
        return Ok(OcfStatus::NotRunning);
    }
    if ctx.check_level == 10 {
        read_check(ctx, &active)?;
    }
    Ok(OcfStatus::Success)
}

/// Read one block (direct I/O) from each LV, each read bounded by the
/// deadline; a read that hangs is left to itself in its own process group.
fn read_check(ctx: &Context, lvs: &[dm::DmLv]) -> Result<(), Failure> {
    let dd = ctx.tools().command("dd")?;
    let deadline = ctx.deadline();
    for (i, d) in lvs.iter().enumerate() {
        let share = deadline.remaining() / (lvs.len() - i) as u32;
        let out = dd
            .clone()
            .arg(format!("if={}", d.dev_node().display()))
            .args([
                "of=/dev/null",
                "bs=4096",
                "count=1",
                "iflag=direct",
                "status=none",
            ])
            .limit(share.max(Duration::from_millis(100)))
            .run(&deadline)
            .map_err(|e| Failure::generic(format!("reading {}/{}: {e}", d.vg, d.lv)))?;
        if !out.success() {
            return Err(Failure::generic(format!(
                "cannot read {}/{} ({}): {}",
                d.vg,
                d.lv,
                d.dev_node().display(),
                out.message()
            )));
        }
    }
    Ok(())
}

/// Wait (bounded) until `vg[/lv]` shows in device-mapper.
pub fn wait_active(ctx: &Context, vg: &str, lv: Option<&str>) -> bool {
    ctx.deadline()
        .capped(Duration::from_secs(5))
        .wait_for(Duration::from_millis(50), || {
            (!dm::active_lvs(vg, lv).is_empty()).then_some(())
        })
        .is_some()
}

/// Deactivate `target` (`VG` or `VG/LV`) with `lvchange -an`, retrying once
/// a second within the deadline while LVs stay active (udev or a closing
/// opener may hold them briefly). `extra` goes before the target.
pub fn deactivate(
    lvm: &Lvm,
    ctx: &Context,
    vg: &str,
    lv: Option<&str>,
    tool: &str,
    extra: &[String],
) -> Result<(), Failure> {
    let target = match lv {
        Some(l) => format!("{vg}/{l}"),
        None => vg.to_string(),
    };
    let deadline = ctx.deadline();
    let mut last = String::new();
    loop {
        let mut args: Vec<String> = vec![tool.to_string(), "-an".into()];
        args.extend(extra.iter().cloned());
        args.push(target.clone());
        let out = lvm.run(ctx, &args)?;
        if !out.success() {
            last = out.message();
        }
        // LV-only: that LV gone; whole VG: every device of the VG gone.
        let left = match lv {
            Some(_) => dm::active_lvs(vg, lv),
            None => dm::vg_devices(vg),
        };
        if left.is_empty() {
            return Ok(());
        }
        if deadline.remaining() < Duration::from_secs(2) {
            let names: Vec<String> = left.iter().map(|d| d.lv.clone()).collect();
            return Err(Failure::generic(format!(
                "{target} did not deactivate ({} still active){}",
                names.join(","),
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {last}")
                }
            )));
        }
        ocf::warn!("{target} still active, retrying");
        deadline.sleep(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lvmconfig_output_is_flattened() {
        let c = LvmConf::parse(
            "global {\n\tsystem_id_source=\"uname\"\n\tuse_lvmlockd=0\n}\nactivation {\n\tvolume_list=[\"@x\",\"vg1/lv\"]\n}\n",
        );
        assert_eq!(c.get("global/system_id_source").as_deref(), Some("uname"));
        assert_eq!(c.get("global/use_lvmlockd").as_deref(), Some("0"));
        assert_eq!(
            c.list("activation/volume_list"),
            Some(vec!["@x".to_string(), "vg1/lv".to_string()])
        );
        assert_eq!(c.get("global/locking_type"), None);
        assert_eq!(
            LvmConf::parse("activation {\n\tvolume_list=[]\n}\n").list("activation/volume_list"),
            Some(vec![])
        );
    }

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

    #[test]
    fn vg_attributes() {
        let vg = VgInfo {
            name: "v".into(),
            attr: "wz-pnc".into(),
            lock_type: String::new(),
            system_id: String::new(),
            tags: split_tags("a,b"),
            missing_pvs: 0,
            autoactivation: true,
            lvs: vec![],
        };
        assert!(vg.partial());
        assert!(vg.clustered());
        assert!(!vg.exported());
        assert_eq!(vg.tags, vec!["a", "b"]);
        assert!(split_tags("").is_empty());
    }
}
