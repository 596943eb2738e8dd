//! The `lvm` tool run as argument vectors inside the operation deadline,
//! what a VG looks like to this node (`lvs`/`vgs`), what lvm.conf says
//! (`lvmconfig`), and deactivation that waits for device-mapper.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ocf::{Cmd, Context, Failure, Output};

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
                "--",
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
                    "--",
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

/// Wait (bounded) until `vg[/lv]` shows in device-mapper.
pub fn wait_active(ctx: &Context, vg: &str, lv: Option<&str>) -> bool {
    ctx.deadline()
        .capped(Duration::from_secs(5))
        .wait_for(Duration::from_millis(50), || {
            (!dm::active_lvs(vg, lv).is_empty()).then_some(())
        })
        .is_some()
}

/// Whether an lvm error says the VG or one of its PVs is gone: nothing
/// that clears by waiting (heartbeat fails at once too).
fn vg_or_pv_gone(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    [
        "not found",
        "cannot process volume group",
        "couldn't find device",
        "missing",
        "failed to find",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// Whether an lvm error says an LV is in use (its holder may still be
/// exiting: worth another try).
fn in_use(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("in use") || m.contains("is open") || m.contains("busy")
}

/// Why the devices in `left` stay active, for the exit reason: each LV
/// with who holds it where /proc and /sys show it.
fn open_reason(left: &[dm::DmLv]) -> String {
    left.iter()
        .map(|d| {
            let users = dm::users(&d.kname);
            if users.is_empty() {
                format!("LV {}/{} is open", d.vg, d.lv)
            } else {
                format!("LV {}/{} is open ({})", d.vg, d.lv, users.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The least time kept back from each deactivation attempt, so the last
/// one cannot overrun the deadline and the reason can still be told.
const ATTEMPT_RESERVE: Duration = Duration::from_secs(2);

/// Deactivate `target` (`VG` or `VG/LV`) with `lvchange -an`, within the
/// deadline. Retried, once a second, only while it may still succeed:
/// lvm said the LV is in use or something still holds it (a closing
/// opener, udev), or lvm succeeded while devices are still there. A
/// missing VG or PV, or any other error, fails at once: retrying cannot
/// clear it, and a stop that fails fast lets the cluster fence and
/// recover sooner. Giving up on an LV that stays open names who holds it.
/// `extra` goes before the target.
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
    let attempt_reserve = (deadline.total() / 4).min(ATTEMPT_RESERVE);
    loop {
        let mut args: Vec<String> = vec![tool.to_string(), "-an".into()];
        args.extend(extra.iter().cloned());
        args.push("--".into());
        args.push(target.clone());
        let cmd = lvm.cmd(&args);
        ocf::debug!("running {}", cmd.display());
        let (ok, msg) = match cmd.run(&deadline.reserving(attempt_reserve)) {
            Ok(out) => (out.success(), out.message()),
            Err(e) => (false, e.to_string()),
        };
        // LV-only: that LV gone; whole VG: every device of the VG gone.
        let left = match lv {
            Some(_) => dm::active_lvs(vg, lv),
            None => dm::vg_devices(vg),
        };
        if left.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = left.iter().map(|d| d.lv.clone()).collect();
        if !ok && vg_or_pv_gone(&msg) {
            return Err(Failure::generic(format!(
                "{target} did not deactivate ({} still active): {msg}",
                names.join(",")
            )));
        }
        let held = left.iter().any(|d| !dm::users(&d.kname).is_empty());
        let may_clear = ok || in_use(&msg) || held;
        if !may_clear {
            return Err(Failure::generic(format!(
                "{target} did not deactivate ({} still active): {msg}",
                names.join(",")
            )));
        }
        if deadline.remaining() < attempt_reserve + Duration::from_secs(1) {
            let top: Vec<dm::DmLv> = left.iter().filter(|d| d.layer.is_none()).cloned().collect();
            let why = if top.is_empty() {
                format!("{} still active", names.join(","))
            } else {
                open_reason(&top)
            };
            return Err(Failure::generic(format!(
                "{target} did not deactivate before the stop timeout: {why}"
            )));
        }
        ocf::warn!("{target} still active ({msg}), retrying");
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
