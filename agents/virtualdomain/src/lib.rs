//! `VirtualDomain`: one libvirt domain (KVM/QEMU, Xen, LXC), a drop-in for
//! `ocf:heartbeat:VirtualDomain`, talking to libvirt through its API (the
//! `virt` crate) instead of forking `virsh`.
//!
//! Same parameters, defaults and actions as the heartbeat agent, with these
//! differences:
//! - libvirt errors are classified by error code (`VIR_ERR_NO_DOMAIN`, ...),
//!   never by message text, so a domain vanishing mid-query is "stopped",
//!   not "unknown status";
//! - every libvirt call and every wait is bounded by the operation deadline
//!   (heartbeat loops forever in `migrate_from` and when libvirtd is down);
//! - stop honours `shutdown_mode` (heartbeat reads the wrong variable) and
//!   keeps a real destroy budget (a third of the timeout, at most 15 s;
//!   heartbeat keeps 5 s); it returns 0 only when the domain is off; a
//!   graceful shutdown the hypervisor refuses for good (`shutdown_mode=agent`
//!   without a guest agent channel) goes to destroy at once instead of
//!   waiting out the graceful budget;
//! - with libvirtd down, monitor and stop look for the emulator process
//!   (`-name guest=NAME` included) and never call a running guest stopped;
//! - the domain name a start used is remembered under `HA_RSCTMP`, so stop
//!   and probes still find the guest when the config file on shared storage
//!   has gone;
//! - migration: `migration_mode=paused` suspends, moves and resumes the guest
//!   (offline migration) instead of a live migration; `migrate_options` are
//!   read as virsh's option names but mapped to API flags and parameters;
//!   unknown options are a configuration error instead of being ignored;
//! - utilization attributes (heartbeat's crm_resource arguments; `autoset_*`
//!   wins over `unset_*` as there) are only written when they differ from
//!   what this node last set, recorded under `HA_RSCTMP`: a monitor forks
//!   no crm_resource while nothing changes (heartbeat forks three to six),
//!   and none where no CIB can be reached (no cluster running: heartbeat's
//!   crm_resource fails there with a "Not connected" warning every time);
//! - `backingfile`: the overlay is created with its backing file's format
//!   (`qemu-img create -F`, which qemu-img 6.1 and later require and
//!   heartbeat does not pass) and named by cutting the config's file name,
//!   not its whole path, at the first dot;
//! - `migration_downtime` is set before the migration (or, where libvirt
//!   only takes it during one, as soon as it runs), not 2 s after its start,
//!   when a short migration is already over.
//!
//! This file is the resource: its state, how it is built from a [`Config`]
//! (`config`: the parameter table and its typed form) and the OCF actions
//! as orchestration. The jobs behind them: `domain` (create, destroy,
//! snapshot, pools and networks, config sync), `overlay` (backingfile,
//! stateless, copyindirs), `migration`, `utilization`, [`lv`] (libvirt
//! calls bounded by the deadline), [`uri`] (migration URIs), [`emulator`]
//! (the QEMU process when libvirtd is away).

mod config;
mod domain;
mod domxml;
pub mod emulator;
pub mod lv;
mod migration;
mod overlay;
pub mod uri;
mod utilization;

use std::time::Duration;

use ocf::pacemaker::Utilization;
use ocf::{
    Action, AgentMeta, Context, Deadline, Failure, OcfResult, OcfStatus, Params, Record,
    ResourceAgent,
};
use virt::connect::Connect;

pub use config::{shutdown_flags, Config, META};
use lv::{DomState, LvError};
pub use migration::MigrateOptions;
pub use migration::MigrationMode;
pub use overlay::overlay_path;
use utilization::Util;

/// At most this much of stop's time is kept for destroy: libvirt gives QEMU
/// 10 s from SIGTERM to SIGKILL, then cleans up.
const DESTROY_RESERVE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(200);

/// One VirtualDomain resource instance.
#[derive(Debug)]
pub struct VirtualDomain {
    cfg: Config,
    /// The config's text and parsed form, when readable.
    xml: Option<(String, domxml::DomainXml)>,
    /// Why the config could not be used.
    config_problem: Option<String>,
    /// The domain name: from config, else from our record of a start.
    name: Option<String>,
    /// The domain name this instance started (for when the config is gone).
    record: Record,
    /// The utilization, set through crm_resource when it changes.
    util: Utilization,
    /// `migrateport`, or the one picked for this process.
    migrateport: i64,
}

fn lv_failure(what: &str, e: &LvError) -> Failure {
    let msg = format!("{what}: {e}");
    if e.denied() {
        Failure::perm(msg)
    } else {
        Failure::generic(msg)
    }
}

impl VirtualDomain {
    /// The resource `cfg` describes, as this node sees it: the domain name
    /// from the config file, else from the record of a start here (the
    /// config on shared storage may be gone), else `cfg.domain_name`.
    pub fn new(cfg: Config, ctx: &Context) -> Result<VirtualDomain, Failure> {
        virt::error::clear_error_callback();
        cfg.check()?;
        let config = &cfg.config;
        let record = Record::new(&[
            "VirtualDomain",
            &ctx.instance,
            &config.to_string_lossy(),
            "domain",
        ]);
        let util = Utilization::new("VirtualDomain", &ctx.instance);
        let (xml, config_problem) = match std::fs::read_to_string(config) {
            Ok(text) => match domxml::parse(&text) {
                Ok(parsed) if parsed.name.is_some() => (Some((text, parsed)), None),
                Ok(_) => (
                    None,
                    Some(format!("no domain name in {}", config.display())),
                ),
                Err(e) => (None, Some(format!("{}: {e}", config.display()))),
            },
            Err(e) => (
                None,
                Some(format!(
                    "Configuration file {} does not exist or is not readable: {e}",
                    config.display()
                )),
            ),
        };
        let name = match &xml {
            Some((_, parsed)) => parsed.name.clone(),
            None => {
                let recorded = record
                    .read(&ctx.env)
                    .filter(|n| !n.is_empty() && !n.contains('\n'));
                if let (Some(_), Some(problem)) = (&recorded, &config_problem) {
                    ocf::warn!("{problem}; using the domain name recorded at start");
                }
                recorded.or_else(|| cfg.domain_name.clone())
            }
        };
        let migrateport = cfg
            .migrateport
            .unwrap_or_else(|| 49152 + i64::from(std::process::id() % 64));
        Ok(VirtualDomain {
            cfg,
            xml,
            config_problem,
            name,
            record,
            util,
            migrateport,
        })
    }

    fn name(&self) -> Result<&str, Failure> {
        self.name.as_deref().ok_or_else(|| {
            Failure::installed(
                self.config_problem
                    .clone()
                    .unwrap_or_else(|| "no domain name".into()),
            )
        })
    }

    fn remember(&self, ctx: &Context, dom: &str) {
        self.record.keep(&ctx.env, dom);
    }

    /// The domain left this node: forget its name and its utilization.
    fn forget(&self, ctx: &Context) {
        self.record.clear(&ctx.env);
        self.util.forget(&ctx.env);
    }

    fn open(&self, dl: &Deadline) -> Result<Connect, LvError> {
        lv::open(self.cfg.hypervisor.as_deref(), dl)
    }

    /// Connect, retrying while the daemon is unreachable, until `dl`.
    fn open_retry(&self, dl: &Deadline) -> Result<Connect, LvError> {
        let mut last = None;
        let got = dl.wait_for(Duration::from_millis(500), || match self.open(dl) {
            Ok(c) => Some(c),
            Err(e) if e.unreachable() => {
                ocf::debug!("libvirt unreachable: {e}");
                last = Some(e);
                None
            }
            Err(e) => {
                last = Some(e);
                None
            }
        });
        got.ok_or_else(|| last.unwrap_or(LvError::TimedOut("connecting to libvirt".into())))
    }

    /// The emulator process(es) of the domain, when libvirtd cannot tell.
    fn emulator_running(&self, dom: &str) -> bool {
        !emulator::emulator_pids(dom).is_empty()
    }

    /// Run the monitor scripts; the first failing one is the failure.
    fn run_monitor_scripts(&self, ctx: &Context, dl: &Deadline) -> Result<(), Failure> {
        ctx.tools()
            .run_scripts("monitor script", &self.cfg.monitor_scripts, dl)
    }

    /// monitor / status.
    fn check(&self, ctx: &Context, utilization: bool) -> OcfResult {
        let dom_name = self.name()?;
        let dl = ctx.deadline();
        let conn = match self.open(&dl) {
            Ok(c) => c,
            Err(e) if e.unreachable() => {
                // heartbeat's pid_status: never call a running guest stopped
                // because the daemon is away.
                return if self.emulator_running(dom_name) {
                    ocf::warn!("libvirt unreachable ({e}); the emulator of {dom_name} is running");
                    Ok(OcfStatus::Success)
                } else {
                    ocf::info!("libvirt unreachable ({e}); no emulator process for {dom_name}");
                    Ok(OcfStatus::NotRunning)
                };
            }
            Err(e) => return Err(lv_failure("cannot connect to libvirt", &e)),
        };
        let dom = match lv::lookup(&conn, dom_name, &dl) {
            Ok(d) => d,
            Err(e) if e.unreachable() && self.emulator_running(dom_name) => {
                return Ok(OcfStatus::Success)
            }
            Err(e) => return Err(lv_failure(&format!("{dom_name}: lookup"), &e)),
        };
        // A monitor that sets the utilization reads the state with the
        // sizes (virDomainGetInfo): one round trip, as for the state alone.
        let sizes_too = utilization && self.utilization_plan().contains(&Util::Set);
        let (st, sizes) = match &dom {
            None => (DomState::Off, None),
            Some(d) => {
                let r = if sizes_too {
                    lv::dom_info(d, &dl)
                } else {
                    lv::dom_state(d, &dl).map(|s| (s, None))
                };
                match r {
                    Ok(s) => s,
                    Err(e) if e.unreachable() && self.emulator_running(dom_name) => {
                        (DomState::NoState, None)
                    }
                    Err(e) => return Err(lv_failure(&format!("{dom_name}: state"), &e)),
                }
            }
        };
        match st {
            DomState::Off => {
                if ctx.is_recurring_monitor() {
                    ocf::error!("Virtual domain {dom_name} is not running");
                }
                return Ok(OcfStatus::NotRunning);
            }
            DomState::Crashed => {
                return Err(Failure::generic(format!(
                    "Virtual domain {dom_name} has crashed"
                )))
            }
            DomState::NoState if !self.emulator_running(dom_name) => {
                return Ok(OcfStatus::NotRunning)
            }
            _ => {}
        }
        if let Some(d) = &dom {
            if utilization {
                self.update_utilization(ctx, d, sizes, &dl);
            }
            self.save_config(ctx, d, &dl);
        }
        self.run_monitor_scripts(ctx, &dl)?;
        Ok(OcfStatus::Success)
    }
}

impl ResourceAgent for VirtualDomain {
    fn meta() -> &'static AgentMeta {
        &META
    }

    fn configure(p: Params, ctx: &Context) -> Result<Self, Failure> {
        VirtualDomain::new(Config::from_params(&p)?, ctx)
    }

    /// The domain name must be known: from a readable config, else from
    /// our record of a start here. Without it nothing of ours can run
    /// (the dispatcher maps: probe 7, stop 0, recurring monitor 1, start 5).
    fn validate(&self, ctx: &Context) -> Result<(), Failure> {
        self.name()?;
        if matches!(ctx.action, Action::Start | Action::ValidateAll) && self.xml.is_none() {
            return Err(Failure::installed(
                self.config_problem.clone().unwrap_or_default(),
            ));
        }
        Ok(())
    }

    fn start(&self, ctx: &Context) -> OcfResult {
        let dom = self.name()?;
        let dl = ctx.deadline();
        let conn = self
            .open_retry(&dl)
            .map_err(|e| lv_failure("cannot connect to libvirt", &e))?;
        let st = lv::state(&conn, dom, &dl).map_err(|e| lv_failure(dom, &e))?;
        if st.active() {
            ocf::info!("Virtual domain {dom} already running.");
            self.remember(ctx, dom);
            return Ok(OcfStatus::Success);
        }
        // A saved state is the domain: restore it, or fail (heartbeat). A
        // fresh boot instead would leave the state file to be restored
        // later over disks that boot has changed. The pools and networks
        // come first either way (heartbeat: not before a restore).
        self.ensure_resources(&conn, &dl)?;
        if let Some(file) = self.snapshot_file(dom).filter(|f| f.exists()) {
            let c = conn.clone();
            let f = file.to_string_lossy().into_owned();
            lv::bounded(&dl, "restoring the domain state", move || {
                c.restore_domain(&f)
            })
            .map_err(|e| {
                lv_failure(
                    &format!("Failed to restore {dom} from state file {}", file.display()),
                    &e,
                )
            })?;
            ocf::info!("{dom}: restored from {}", file.display());
            if let Err(e) = std::fs::remove_file(&file) {
                ocf::warn!("{dom}: cannot remove {}: {e}", file.display());
            }
        } else {
            // also with backingfile: the definition of the last start
            // (same name, new UUID) would make the define fail
            self.undefine_stale(&conn, dom, &dl)?;
            self.create(ctx, &conn, dom, &dl)?;
        }
        self.remember(ctx, dom);
        if self.wait_active(ctx, &conn, dom, &dl).is_none() {
            return Err(Failure::generic(format!(
                "{dom} was started but is not running (or its monitor scripts fail) at the start timeout"
            )));
        }
        self.refresh_utilization(ctx, &conn, dom, &dl);
        ocf::info!("Domain {dom} started.");
        Ok(OcfStatus::Success)
    }

    fn stop(&self, ctx: &Context) -> OcfResult {
        let dom = self.name()?;
        let dl = ctx.deadline();
        let reserve = if self.cfg.no_destroy {
            Duration::ZERO
        } else {
            (dl.total() / 3).min(DESTROY_RESERVE)
        };
        let conn = match self.open_retry(&dl.reserving(reserve)) {
            Ok(c) => c,
            Err(e) => {
                if self.emulator_running(dom) {
                    return Err(lv_failure(
                        &format!("cannot stop {dom}: its emulator runs and libvirt is unreachable"),
                        &e,
                    ));
                }
                ocf::info!("libvirt unreachable ({e}) and no emulator for {dom}: stopped");
                self.forget(ctx);
                return Ok(OcfStatus::Success);
            }
        };
        let d = lv::lookup(&conn, dom, &dl).map_err(|e| lv_failure(dom, &e))?;
        let st = match &d {
            None => DomState::Off,
            Some(d) => lv::dom_state(d, &dl).map_err(|e| lv_failure(dom, &e))?,
        };
        if st == DomState::Off {
            ocf::info!("Domain {dom} already stopped.");
            self.forget(ctx);
            return Ok(OcfStatus::Success);
        }
        let d = d.expect("an active domain was looked up");
        let graceful = dl.reserving(reserve);
        let mut off = false;
        if !self.cfg.force_stop && st != DomState::Crashed {
            if let Some(file) = self.snapshot_file(dom) {
                match self.save_snapshot(&d, &file, &graceful) {
                    Ok(()) => {
                        ocf::info!("{dom}: state saved to {}", file.display());
                        off = true;
                    }
                    Err(e) => ocf::warn!("{dom}: saving state to {} failed: {e}", file.display()),
                }
            }
            if !off {
                self.save_config(ctx, &d, &graceful);
                let dd = d.clone();
                let flags = self.cfg.shutdown_flags;
                ocf::info!("Issuing graceful shutdown request for domain {dom}.");
                // A request the hypervisor refuses for good (shutdown_mode
                // names a way this domain does not have) is not waited for:
                // the graceful budget would pass with nobody shutting down.
                let requested = match lv::bounded(&graceful, "shutdown request", move || {
                    dd.shutdown_flags(flags).map(|_| ())
                }) {
                    Ok(()) => true,
                    Err(e) if e.no_domain() || e.invalid_operation() => true,
                    Err(e) if e.unsupported() => {
                        ocf::warn!("{dom}: graceful shutdown impossible: {e}");
                        false
                    }
                    Err(e) => {
                        ocf::warn!("{dom}: shutdown request failed: {e}");
                        true
                    }
                };
                off = requested
                    && graceful
                        .wait_for(POLL, || {
                            matches!(lv::dom_state(&d, &graceful), Ok(DomState::Off)).then_some(())
                        })
                        .is_some();
            }
        }
        if !off && self.cfg.no_destroy && st != DomState::Crashed {
            return Err(Failure::generic(format!(
                "{dom} did not shut down within the stop timeout (not destroyed: no_kill)"
            )));
        }
        if !off {
            self.destroy(&conn, dom, &dl)?;
        }
        self.forget(ctx);
        ocf::info!("Domain {dom} stopped.");
        Ok(OcfStatus::Success)
    }

    fn monitor(&self, ctx: &Context) -> OcfResult {
        self.check(ctx, true)
    }

    fn status(&self, ctx: &Context) -> OcfResult {
        self.check(ctx, false)
    }

    fn validate_all(&self, ctx: &Context) -> OcfResult {
        let dom = self.name()?;
        if let Some(s) = &self.cfg.snapshot {
            if !s.is_dir() {
                return Err(Failure::installed(format!(
                    "snapshot directory {} does not exist",
                    s.display()
                )));
            }
        }
        if let Some(b) = &self.cfg.backingfile {
            if !b.is_file() {
                return Err(Failure::installed(format!(
                    "backing file {} does not exist",
                    b.display()
                )));
            }
        }
        let tools = ctx.tools();
        for script in &self.cfg.monitor_scripts {
            tools.find(script).ok_or_else(|| {
                Failure::installed(format!(
                    "monitor script {script} not found or not executable"
                ))
            })?;
        }
        if ctx.check_level >= 10 {
            for w in self.migration_warnings(ctx) {
                ocf::warn!("{dom}: {w}");
                eprintln!("WARNING: {dom}: {w}");
            }
        }
        Ok(OcfStatus::Success)
    }

    fn migrate_to(&self, ctx: &Context) -> OcfResult {
        self.migrate_out(ctx)
    }

    fn migrate_from(&self, ctx: &Context) -> OcfResult {
        self.migrate_in(ctx)
    }
}

impl VirtualDomain {
    /// The domain's name: from the config, else from our record of a
    /// start, else [`Config::domain_name`].
    pub fn domain_name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}
