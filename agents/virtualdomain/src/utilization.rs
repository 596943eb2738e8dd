//! Pacemaker utilization attributes (`cpu`, `host_memory`, `hv_memory`)
//! from the domain's vCPUs and memory, decided as heartbeat decides them but
//! written only when they change: a monitor of an unchanged domain forks no
//! crm_resource.

use ocf::{Context, Deadline};
use virt::connect::Connect;
use virt::domain::Domain;

use crate::lv;
use crate::VirtualDomain;

pub(crate) const UTIL_NAMES: [&str; 3] = ["cpu", "host_memory", "hv_memory"];

/// What the monitor does with one utilization attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Util {
    Set,
    Remove,
    Leave,
}

impl VirtualDomain {
    /// What each utilization attribute should become, as heartbeat decides
    /// it: `autoset_utilization_X` wins, else `unset_utilization_X` removes
    /// it, else it is left alone.
    pub(crate) fn utilization_plan(&self) -> [Util; 3] {
        std::array::from_fn(|i| {
            if self.cfg.autoset_utilization[i] {
                Util::Set
            } else if self.cfg.unset_utilization[i] {
                Util::Remove
            } else {
                Util::Leave
            }
        })
    }

    /// The utilization attributes through crm_resource (heartbeat's
    /// arguments), only when they differ from what this node last set: the
    /// record under `HA_RSCTMP` (removed by start, stop and migrations, so
    /// the first monitor after them sets everything again). heartbeat asks
    /// crm_resource for each current value on every monitor (three to six
    /// forks); a monitor here forks nothing when nothing changed.
    pub(crate) fn update_utilization(
        &self,
        ctx: &Context,
        dom: &Domain,
        sizes: Option<lv::Sizes>,
        dl: &Deadline,
    ) {
        let plan = self.utilization_plan();
        if plan.iter().all(|u| *u == Util::Leave) {
            return;
        }
        let Some(instance) = ctx.env.non_empty("OCF_RESOURCE_INSTANCE") else {
            return;
        };
        let values = if plan.contains(&Util::Set) {
            let sizes = match sizes {
                Some(z) => z,
                None => match lv::dom_info(dom, dl) {
                    Ok((_, Some(z))) => z,
                    Ok((_, None)) => return,
                    Err(e) => {
                        ocf::debug!("domain info: {e}; utilization not updated");
                        return;
                    }
                },
            };
            let mem = (sizes.max_mem_kib / 1024).to_string();
            [sizes.vcpus.to_string(), mem.clone(), mem]
        } else {
            Default::default()
        };
        let mut want = String::new();
        for i in 0..3 {
            match plan[i] {
                Util::Set => want.push_str(&format!("{}={}\n", UTIL_NAMES[i], values[i])),
                Util::Remove => want.push_str(&format!("{}=-\n", UTIL_NAMES[i])),
                Util::Leave => {}
            }
        }
        if self.util.read(&ctx.env).as_deref() == Some(want.as_str()) {
            return;
        }
        let Some(crm) = ctx.tools().find("crm_resource") else {
            ocf::debug!("crm_resource not found; utilization not updated");
            return;
        };
        for i in 0..3 {
            let cmd = ocf::Cmd::new(&crm).path(ctx.tools().path());
            let cmd = match plan[i] {
                Util::Set => {
                    cmd.args(["-r", instance, "-z", "-p", UTIL_NAMES[i], "-v", &values[i]])
                }
                Util::Remove => cmd
                    .arg(format!("--resource={instance}"))
                    .arg("--utilization")
                    .arg(format!("--delete-parameter={}", UTIL_NAMES[i])),
                Util::Leave => continue,
            };
            let verb = if plan[i] == Util::Set { "set" } else { "unset" };
            // The first failure ends the round (no CIB reachable fails the
            // others the same way); the next monitor tries again.
            match cmd.run(dl) {
                Ok(o) if o.success() => {}
                Ok(o) => {
                    ocf::warn!(
                        "crm_resource failed to {verb} utilization attribute {}: {}",
                        UTIL_NAMES[i],
                        o.message()
                    );
                    return;
                }
                Err(e) => {
                    ocf::warn!("{e}");
                    return;
                }
            }
        }
        if let Err(e) = self.util.write(&ctx.env, &want) {
            ocf::debug!("{}", e.reason);
        }
    }

    /// After a start or an incoming migration: set the utilization
    /// afresh, as heartbeat's start and migrate_from do through their
    /// monitor loop.
    pub(crate) fn refresh_utilization(
        &self,
        ctx: &Context,
        conn: &Connect,
        dom: &str,
        dl: &Deadline,
    ) {
        self.util.clear(&ctx.env);
        if let Ok(Some(d)) = lv::lookup(conn, dom, dl) {
            self.update_utilization(ctx, &d, None, dl);
        }
    }
}
