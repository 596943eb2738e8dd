//! The monitor both LVM agents share: device-mapper state only (no LVM
//! command, no lock), and a record of what we started so that a recurring
//! monitor tells "lost" from "never started".

use std::time::Duration;

use ocf::{Context, Failure, OcfResult, OcfStatus, Record};

use crate::dm;

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
