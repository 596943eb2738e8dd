//! Pacemaker utilization attributes (`cpu`, `host_memory`, `hv_memory`)
//! from the domain's vCPUs and memory, decided as heartbeat decides them;
//! [`ocf::pacemaker`] writes them only when they change, so a monitor of an
//! unchanged domain forks no crm_resource.

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

    /// The utilization attributes, through [`ocf::pacemaker::Utilization`]:
    /// crm_resource runs only when they differ from what this node last set
    /// (the record is removed by start, stop and migrations, so the first
    /// monitor after them sets everything again). heartbeat asks
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
        if ctx.env.non_empty("OCF_RESOURCE_INSTANCE").is_none() {
            return;
        }
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
        let want: Vec<(&str, Option<String>)> = (0..3)
            .filter_map(|i| match plan[i] {
                Util::Set => Some((UTIL_NAMES[i], Some(values[i].clone()))),
                Util::Remove => Some((UTIL_NAMES[i], None)),
                Util::Leave => None,
            })
            .collect();
        self.util.update(ctx, &want, dl);
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
        self.util.forget(&ctx.env);
        if let Ok(Some(d)) = lv::lookup(conn, dom, dl) {
            self.update_utilization(ctx, &d, None, dl);
        }
    }
}
