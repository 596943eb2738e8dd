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
//! - with libvirtd unreachable (down, or frozen), monitor and stop look for
//!   the emulator process (`-name guest=NAME`, and `-uuid` with the UUID
//!   kept while libvirt showed the guest running) and never call a running
//!   guest stopped; they call it stopped only where the process table can
//!   prove it (a QEMU guest of this host with a known UUID, [`emulator`]),
//!   for any other driver (test, xen, lxc, remote URIs) an unreachable
//!   libvirt is an error, never 0/7 (heartbeat: 7/0 for any driver);
//! - a hypervisor URI libvirt cannot parse fails every action at once with
//!   6 (heartbeat's virsh fails the same way); only an unreachable daemon
//!   is retried;
//! - the config file is read bounded (`ocf::file`: regular files of at
//!   most 1 MiB, inside a quarter of the operation's time): a FIFO, a
//!   device or a hung network filesystem there hangs no action (heartbeat
//!   greps it, and hangs or reads `/dev/zero` without end). What such a
//!   config means without a domain name is `ConfigProblem`'s;
//! - the domain name a start used is remembered under `HA_RSCTMP`, so stop
//!   and probes still find the guest when the config file on shared storage
//!   has gone (or hangs, or was replaced by something that is no file);
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
//! as orchestration. The jobs behind them: `config_file` (reading the
//! domain XML, and what its absence means), `domain` (create, destroy,
//! snapshot, pools and networks, config sync), `overlay` (backingfile,
//! stateless, copyindirs), `migration`, `utilization`, `without_libvirt`
//! (running or stopped while libvirtd is away, from the process table of
//! [`emulator`]), [`lv`] (libvirt calls bounded by the deadline), [`uri`]
//! (migration URIs).

mod config;
mod config_file;
mod domain;
mod domxml;
pub mod emulator;
pub mod lv;
mod migration;
mod overlay;
pub mod uri;
mod utilization;
mod without_libvirt;

use std::time::Duration;

use ocf::pacemaker::Utilization;
use ocf::{
    Action, AgentMeta, Context, Deadline, Failure, OcfResult, OcfStatus, Params, Record,
    ResourceAgent,
};
use virt::connect::Connect;

pub use config::{shutdown_flags, Config, META};
use config_file::{ConfigFile, ConfigProblem};
use lv::{DomState, LvError};
pub use migration::MigrateOptions;
pub use migration::MigrationMode;
pub use overlay::overlay_path;
use utilization::Util;
use without_libvirt::Evidence;

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
    /// The config's text when it was read, also when it is not a domain
    /// (the vm persona tells an xm config by it).
    text: Option<String>,
    /// Why the config could not be used.
    config_problem: Option<ConfigProblem>,
    /// The domain name: from config, else from our record of a start.
    name: Option<String>,
    /// The domain name this instance started (for when the config is gone).
    record: Record,
    /// The UUID of the domain's QEMU process, kept whenever libvirt showed
    /// it running under this host's QEMU driver: what tells "stopped" from
    /// "cannot tell" while libvirt is unreachable ([`emulator`]).
    emulator_record: Record,
    /// The utilization, set through crm_resource when it changes.
    util: Utilization,
    /// `migrateport`, or the one picked for this process.
    migrateport: i64,
}

/// Why connecting to `uri` (None: libvirt's default) failed, as an OCF
/// failure: a URI libvirt cannot use is a configuration error (6), at once
/// and for every action, stop included (heartbeat: virsh fails the same
/// way on every node); anything else is `lv_failure`'s.
pub fn connect_failure(uri: Option<&str>, e: &LvError) -> Failure {
    if e.bad_uri() {
        Failure::configured(format!(
            "hypervisor URI '{}' cannot be used: {e}",
            uri.unwrap_or("")
        ))
    } else {
        lv_failure("cannot connect to libvirt", e)
    }
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
        // a combination stop and probes do not act on (dispatcher's rule)
        match cfg.check() {
            Err(f) if ctx.is_lenient() => {
                ocf::warn!("{}; ignored by {}", f.reason, ctx.action.name())
            }
            r => r?,
        }
        let config = &cfg.config;
        let record = Record::new(&[
            "VirtualDomain",
            &ctx.instance,
            &config.to_string_lossy(),
            "domain",
        ]);
        let emulator_record = Record::new(&[
            "VirtualDomain",
            &ctx.instance,
            &config.to_string_lossy(),
            "qemu-uuid",
        ]);
        let util = Utilization::new("VirtualDomain", &ctx.instance);
        let ConfigFile {
            text,
            xml,
            problem: config_problem,
        } = config_file::read(config, ctx);
        let name = match &xml {
            Some((_, parsed)) => parsed.name.clone(),
            None => {
                let recorded = record
                    .read(&ctx.env)
                    .filter(|n| !n.is_empty() && !n.contains('\n'));
                match (&recorded, &config_problem) {
                    (Some(_), Some(problem)) => {
                        ocf::warn!(
                            "{}; using the domain name recorded at start",
                            problem.reason()
                        )
                    }
                    (
                        None,
                        Some(
                            problem @ (ConfigProblem::NotAConfig(_) | ConfigProblem::Unanswered(_)),
                        ),
                    ) if cfg.domain_name.is_some() => {
                        ocf::warn!("{}; going by the domain name", problem.reason())
                    }
                    _ => {}
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
            text,
            config_problem,
            name,
            record,
            emulator_record,
            util,
            migrateport,
        })
    }

    /// The domain name, or why there is none: a failure whose code says
    /// what the config's problem means ([`ConfigProblem`]).
    fn name(&self) -> Result<&str, Failure> {
        self.name
            .as_deref()
            .ok_or_else(|| match &self.config_problem {
                Some(p) => p.failure(),
                None => Failure::installed("no domain name"),
            })
    }

    /// Why the config cannot be used to create the domain, if it cannot.
    fn config_failure(&self) -> Option<Failure> {
        self.config_problem.as_ref().map(ConfigProblem::failure)
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

    /// Connect, retrying while the daemon is unreachable, until `dl`. Any
    /// other failure (a URI libvirt cannot use, access denied) cannot pass
    /// by waiting and is returned at once.
    fn open_retry(&self, dl: &Deadline) -> Result<Connect, LvError> {
        let mut last = None;
        let got = dl.wait_for(Duration::from_millis(500), || match self.open(dl) {
            Ok(c) => Some(Ok(c)),
            Err(e) if e.unreachable() => {
                ocf::debug!("libvirt unreachable: {e}");
                last = Some(e);
                None
            }
            Err(e) => Some(Err(e)),
        });
        got.unwrap_or_else(
            || Err(last.unwrap_or(LvError::TimedOut("connecting to libvirt".into()))),
        )
    }

    /// [`connect_failure`] for this resource's URI.
    fn connect_failure(&self, e: &LvError) -> Failure {
        connect_failure(self.cfg.hypervisor.as_deref(), e)
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
                // because the daemon is away, and "stopped" only where the
                // process table can prove it.
                return match self.without_libvirt(ctx, dom_name) {
                    Evidence::Running => {
                        ocf::warn!(
                            "libvirt unreachable ({e}); the emulator of {dom_name} is running"
                        );
                        Ok(OcfStatus::Success)
                    }
                    Evidence::Stopped => {
                        ocf::info!("libvirt unreachable ({e}); no emulator process for {dom_name}");
                        Ok(OcfStatus::NotRunning)
                    }
                    Evidence::Unknown(why) => Err(lv_failure(
                        &format!(
                            "libvirt is unreachable and {why}: cannot tell whether {dom_name} runs"
                        ),
                        &e,
                    )),
                };
            }
            Err(e) => return Err(self.connect_failure(&e)),
        };
        let running_without_libvirt =
            || matches!(self.without_libvirt(ctx, dom_name), Evidence::Running);
        let dom = match lv::lookup(&conn, dom_name, &dl) {
            Ok(d) => d,
            Err(e) if e.unreachable() && running_without_libvirt() => {
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
                    Err(e) if e.unreachable() && running_without_libvirt() => {
                        (DomState::Running, None)
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
            // libvirt knows the domain but not its state
            DomState::NoState
                if matches!(self.without_libvirt(ctx, dom_name), Evidence::Stopped) =>
            {
                return Ok(OcfStatus::NotRunning)
            }
            _ => {}
        }
        if let Some(d) = &dom {
            self.note_emulator(ctx, &conn, d, &dl);
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
    /// our record of a start here. Without it, a config that is absent (or
    /// names no domain) means nothing of ours can run (the dispatcher maps:
    /// probe 7, stop 0, recurring monitor 1, start 5, as heartbeat). A
    /// config that is there but is no configuration file (a FIFO,
    /// `/dev/zero`) or whose storage does not answer says nothing about
    /// the domain: those are not mapped, every action that needs the name
    /// fails with the problem's own code (6, 1), stop and probes included.
    fn validate(&self, ctx: &Context) -> Result<(), Failure> {
        if self.name.is_none() {
            if let Some(p @ ConfigProblem::Absent(_)) = &self.config_problem {
                return Err(p.failure());
            }
        }
        if matches!(ctx.action, Action::Start | Action::ValidateAll) {
            if let Some(f) = self.config_failure() {
                return Err(f);
            }
        }
        Ok(())
    }

    fn start(&self, ctx: &Context) -> OcfResult {
        let dom = self.name()?;
        let dl = ctx.deadline();
        let conn = self.open_retry(&dl).map_err(|e| self.connect_failure(&e))?;
        let st = lv::state(&conn, dom, &dl).map_err(|e| lv_failure(dom, &e))?;
        if st.active() {
            ocf::info!("Virtual domain {dom} already running.");
            self.remember(ctx, dom);
            self.note_running(ctx, &conn, dom, &dl);
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
        self.note_running(ctx, &conn, dom, &dl);
        self.refresh_utilization(ctx, &conn, dom, &dl);
        ocf::info!("Domain {dom} started.");
        Ok(OcfStatus::Success)
    }

    fn stop(&self, ctx: &Context) -> OcfResult {
        self.stop_domain(ctx, true)
    }

    fn monitor(&self, ctx: &Context) -> OcfResult {
        self.check(ctx, true)
    }

    fn status(&self, ctx: &Context) -> OcfResult {
        self.check(ctx, false)
    }

    fn validate_all(&self, ctx: &Context) -> OcfResult {
        self.validate_settings(ctx)
    }

    fn migrate_to(&self, ctx: &Context) -> OcfResult {
        self.migrate_out(ctx)
    }

    fn migrate_from(&self, ctx: &Context) -> OcfResult {
        self.migrate_in(ctx)
    }
}

impl VirtualDomain {
    /// Destroy the domain at once, without asking it to shut down
    /// (rgmanager vm.sh's `kill`; a `snapshot` is still saved, as vm.sh's
    /// `do_stop destroy` does, and `no_kill` does not apply).
    pub fn kill(&self, ctx: &Context) -> OcfResult {
        self.stop_domain(ctx, false)
    }

    /// stop; `ask_first`: ask the domain to shut down before destroying it
    /// (unless `force_stop`).
    fn stop_domain(&self, ctx: &Context, ask_first: bool) -> OcfResult {
        let dom = self.name()?;
        let dl = ctx.deadline();
        let no_destroy = self.cfg.no_destroy && ask_first;
        let reserve = if no_destroy {
            Duration::ZERO
        } else {
            (dl.total() / 3).min(DESTROY_RESERVE)
        };
        let conn = match self.open_retry(&dl.reserving(reserve)) {
            Ok(c) => c,
            Err(e) if e.unreachable() => {
                return match self.without_libvirt(ctx, dom) {
                    Evidence::Running => Err(lv_failure(
                        &format!("cannot stop {dom}: its emulator runs and libvirt is unreachable"),
                        &e,
                    )),
                    Evidence::Stopped => {
                        ocf::info!("libvirt unreachable ({e}) and no emulator for {dom}: stopped");
                        self.forget(ctx);
                        Ok(OcfStatus::Success)
                    }
                    Evidence::Unknown(why) => Err(lv_failure(
                        &format!("cannot stop {dom}: libvirt is unreachable and {why}"),
                        &e,
                    )),
                };
            }
            Err(e) => return Err(self.connect_failure(&e)),
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
            if !off && ask_first {
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
        if !off && no_destroy && st != DomState::Crashed {
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

    /// validate-all: what the parameters name exists here.
    fn validate_settings(&self, ctx: &Context) -> OcfResult {
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

    /// The domain's name: from the config, else from our record of a
    /// start, else [`Config::domain_name`].
    pub fn domain_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The config file's text, when it could be read (also when it is not
    /// a libvirt domain).
    pub fn config_text(&self) -> Option<&str> {
        self.text.as_deref()
    }
}
