//! `Xen`: one Xen guest (DomU) managed with the `xl` toolstack, a drop-in
//! for `ocf:heartbeat:Xen`.
//!
//! Same parameters, defaults and actions as the heartbeat agent, with these
//! differences:
//! - every wait is bounded by the operation deadline: start waits for the
//!   domain (and its monitor scripts) until then, stop shuts down, then
//!   destroys, and reports failure just before the caller's timer fires
//!   (heartbeat loops `destroy` forever and relies on being killed);
//! - the domain name is used as one argument everywhere (names with spaces
//!   work); a name parsed from `xmfile` must be a plain quoted string, and
//!   unsafe names are rejected instead of silently replaced;
//! - the name a domain was started under is remembered under `HA_RSCTMP`,
//!   so stop and monitor still find it when `xmfile` has gone (shared
//!   storage) or was edited, and so only a domain we started here gets the
//!   "it may be rebooting" grace period (heartbeat: every recurring monitor
//!   and every stop waits 5 s for a domain that is not there);
//! - `xmfile` is read bounded (regular files only, 1 MiB, a quarter of the
//!   operation's time: [`ocf::file::read_config`]); a start whose `xmfile`
//!   name cannot be read refuses rather than start the recorded name;
//! - `xl list`'s "invalid domain identifier" is definitive (`status` asks
//!   once, as heartbeat's); other xl failures are retried briefly and are
//!   then errors, never "not running";
//! - utilization goes through [`ocf::pacemaker::Utilization`]: crm_resource
//!   runs only when a value changed;
//! - `validate-all` really validates (heartbeat always returns 0);
//! - memory management passes `memory=` to `xl create` instead of editing
//!   `xmfile` in place with `sed -i`;
//! - only `xl` (no `xm`, no `xen-list`/`xen-destroy`); during a migration
//!   the source domain is called `<name>--migratedaway` (xl's name; xm's
//!   was `migrating-<name>`).
//!
//! [`xl`] builds every `xl` command line and parses its output; [`params`]
//! holds the parameter table and the typed [`Config`]; this file decides:
//! which name, how long to wait, when to escalate.

pub mod params;
pub mod xl;

use std::path::Path;
use std::time::Duration;

use ocf::pacemaker::Utilization;
use ocf::{
    AgentMeta, Context, Deadline, Failure, OcfResult, OcfStatus, Params, Record, ResourceAgent,
};

use crate::params::META;
pub use crate::params::{check_domain_name, Config, DEFAULT_XMFILE};
pub use crate::xl::{parse_config_name, parse_list, parse_total_memory, ConfigName, ListEntry};
use crate::xl::{Xl, MIGRATED_AWAY};

/// How long a domain we started may be missing from `xl list` before it
/// counts as stopped: a rebooting guest disappears for a second or two.
const REBOOT_GRACE: Duration = Duration::from_secs(5);
/// Orderly shutdown time when neither `shutdown_timeout` nor the caller's
/// timeout says otherwise (heartbeat's 60 s).
const DEFAULT_SHUTDOWN: Duration = Duration::from_secs(60);
/// At most this much of stop's time is kept for `xl destroy`.
const DESTROY_RESERVE: Duration = Duration::from_secs(5);
/// How long migrate_from waits for the domain without a caller's timeout.
const MIGRATE_FROM_WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(250);
/// Reading `xmfile` gets at most this share (1/N) of the operation's time.
const CONFIG_READ_SHARE: u32 = 4;

/// One Xen guest.
#[derive(Debug)]
pub struct Xen {
    cfg: Config,
    xl: Xl,
    /// The domain name, or why there is none.
    name: Result<String, Failure>,
    /// The name recorded when we started (or received) the domain here.
    recorded: Option<String>,
    record: Record,
    /// What this node last wrote as the resource's utilization.
    util: Utilization,
    /// Why the name could not be read from `xmfile` when the recorded name
    /// stands in for it: start refuses then (it would start the old name).
    file_problem: Option<Failure>,
}

impl Xen {
    /// The domain name this instance manages (see the meta-data's note).
    pub fn domain_name(&self) -> Result<&str, Failure> {
        self.name.as_deref().map_err(Clone::clone)
    }

    /// The domain name: the `name` parameter, else the `name` line of
    /// `xmfile`, else the name recorded when we started the domain here,
    /// else the instance name. The second value is why `xmfile` could not
    /// give the name when the recorded name stands in for it.
    ///
    /// `xmfile` is read with [`ocf::file::read_config`] within `dl`: a FIFO,
    /// a device or a hung network filesystem there must not hang a stop or
    /// a monitor, and `/dev/zero` must not be read until memory runs out.
    /// Stop and monitor then go on by the recorded name; without one the
    /// name is unknown, a generic error (never "not running", not even for
    /// a probe: a guest of that name may run).
    fn resolve_name(
        explicit: Option<&str>,
        xmfile: &Path,
        recorded: Option<&str>,
        instance: Option<&str>,
        dl: &Deadline,
    ) -> (Result<String, Failure>, Option<Failure>) {
        if let Some(n) = explicit {
            return (Ok(n.to_string()), None);
        }
        let from_file: Result<(), Failure> = match ocf::file::read_config(xmfile, dl) {
            Ok(text) => match parse_config_name(&text) {
                ConfigName::Plain(n) => match check_domain_name(&n) {
                    Ok(()) => return (Ok(n), None),
                    Err(e) => Err(Failure::configured(format!(
                        "name '{n}' in {}: {e}",
                        xmfile.display()
                    ))),
                },
                ConfigName::NotPlain(why) => Err(Failure::configured(format!(
                    "cannot read the name from {}: {why}",
                    xmfile.display()
                ))),
                ConfigName::Absent => Ok(()),
            },
            Err(e) if e.not_found() => Ok(()),
            // Not "configured": a probe would map that to "not running",
            // and a guest of this name may run here.
            Err(e) => Err(Failure::generic(format!(
                "cannot read the domain name: {e}"
            ))),
        };
        // The config file is gone or unusable: the domain we started, if any.
        if let Some(r) = recorded {
            if let Err(e) = &from_file {
                ocf::warn!("{}; using the recorded domain name '{r}'", e.reason);
            }
            return (Ok(r.to_string()), from_file.err());
        }
        if let Err(e) = from_file {
            return (
                Err(Failure {
                    reason: format!("{}; set the name parameter", e.reason),
                    ..e
                }),
                None,
            );
        }
        let name = match instance {
            Some(i) if check_domain_name(i).is_ok() => Ok(i.to_string()),
            _ => Err(Failure::configured(format!(
                "cannot tell the domain name: {} has no name line (or is missing) and the instance name is unusable; set the name parameter",
                xmfile.display()
            ))),
        };
        (name, None)
    }

    /// Like [`Xl::exists`], but a domain we started here gets
    /// [`REBOOT_GRACE`] to show up again: a rebooting guest vanishes from
    /// `xl list` for a moment.
    fn exists_with_grace(&self, dl: &Deadline, dom: &str) -> Result<bool, Failure> {
        if self.xl.exists(dl, dom)? {
            return Ok(true);
        }
        if self.recorded.as_deref() != Some(dom) {
            return Ok(false);
        }
        ocf::warn!(
            "domain {dom} reported as not running, but it is expected to be running! Retrying for {}s ...",
            REBOOT_GRACE.as_secs()
        );
        let grace = dl.capped(REBOOT_GRACE);
        Ok(grace
            .wait_for(Duration::from_secs(1), || {
                self.xl.exists(&grace, dom).ok().filter(|&b| b)
            })
            .is_some())
    }

    fn remember(&self, ctx: &Context, dom: &str) {
        self.record.keep(&ctx.env, dom);
    }

    fn forget(&self, ctx: &Context) {
        self.record.clear(&ctx.env);
        self.util.forget(&ctx.env);
    }

    /// Run the monitor scripts; the first failing one is the failure.
    fn run_monitor_scripts(&self, ctx: &Context, dl: &Deadline) -> Result<(), Failure> {
        ctx.tools()
            .run_scripts("monitor script", &self.cfg.monitor_scripts, dl)
    }

    /// Rebalance memory over the running guests, as heartbeat does:
    /// `(total - reserved_Dom0_memory) / (running + new)` each. Best effort:
    /// returns the new size, or `None` when disabled or not computable.
    fn adjust_memory(&self, dl: &Deadline, new: i64) -> Option<i64> {
        if !self.cfg.mem_management {
            return None;
        }
        let total = self.xl.total_memory(dl)?;
        let running: Vec<ListEntry> = self
            .xl
            .domains(dl)?
            .into_iter()
            .filter(|e| e.domid != 0)
            .collect();
        let count = match (running.len() as i64, new) {
            (0, 0) => 1,
            (n, _) => n,
        };
        let mem = (total - self.cfg.reserved_dom0) / (count + new);
        for d in &running {
            self.xl.mem_set(dl, d.domid, mem);
        }
        let names: Vec<&str> = running.iter().map(|d| d.name.as_str()).collect();
        ocf::info!(
            "Adjusted memory to: {mem}, for the following {count} domains: {}",
            names.join(" ")
        );
        Some(mem)
    }

    /// Put vCPUs and memory from `xl list` into the resource's utilization
    /// (Pacemaker only; best effort): through [`Utilization`], so
    /// `crm_resource` runs only when a value changed since this node last
    /// wrote it (heartbeat: a get and a set per attribute on every monitor).
    fn update_utilization(&self, ctx: &Context, dl: &Deadline, dom: &str) {
        // no CIB to write to: not even the `xl list` the values come from
        if !ocf::pacemaker::cib_reachable(&ctx.env) {
            return;
        }
        let Some(entry) = self.xl.entry(dl, dom) else {
            return;
        };
        let mut want = Vec::new();
        if self.cfg.util_cpu {
            want.push(("cpu", Some(entry.vcpus.to_string())));
        }
        if self.cfg.util_mem {
            want.push(("hv_memory", Some(entry.mem.to_string())));
        }
        self.util.update(ctx, &want, dl);
    }

    /// The address to migrate to: `node_ip_attribute` of the target node if
    /// set there, else the node name.
    fn migration_address(&self, ctx: &Context, dl: &Deadline, target: &str) -> String {
        let Some(attr) = &self.cfg.node_ip_attribute else {
            return target.to_string();
        };
        match ocf::pacemaker::node_attribute(&ctx.tools(), target, attr, dl) {
            Ok(Some(v)) => {
                ocf::info!("{target} is using address {v}");
                v
            }
            Ok(None) => target.to_string(),
            Err(e) => {
                ocf::warn!("{}; migrating to {target} by name", e.reason);
                target.to_string()
            }
        }
    }

    /// Shut `dom` down (or press its power button), wait, then destroy it,
    /// all within `dl`.
    fn stop_domain(&self, ctx: &Context, dl: &Deadline, dom: &str) -> Result<(), Failure> {
        let orderly = self
            .cfg
            .shutdown_timeout
            .or(ctx.timeout.map(|t| t * 2 / 3))
            .unwrap_or(DEFAULT_SHUTDOWN);
        if !orderly.is_zero() {
            let reserve = (dl.total() / 3).min(DESTROY_RESERVE);
            let phase = dl.reserving(reserve).capped(orderly);
            ocf::info!(
                "Xen domain {dom} will be stopped (timeout: {:.0}s)",
                phase.remaining().as_secs_f64()
            );
            let asked = match self.xl.shutdown(&phase, dom, self.cfg.shutdown_acpi) {
                Ok(()) => true,
                Err(e) => {
                    ocf::warn!("{}", e.reason);
                    false
                }
            };
            if asked {
                let gone = phase.wait_for(POLL, || {
                    ocf::debug!("{dom} still not stopped. Waiting...");
                    self.xl.exists(&phase, dom).ok().filter(|&b| !b)
                });
                if gone.is_some() {
                    ocf::info!("Xen domain {dom} stopped.");
                    return Ok(());
                }
            }
        }
        ocf::warn!("Xen domain {dom} will be destroyed!");
        let gone = dl.wait_for(Duration::from_secs(1), || {
            if let Ok(o) = self.xl.destroy(dl, dom) {
                if !o.success() {
                    ocf::warn!("xl destroy {dom}: {}", o.message());
                }
            }
            self.xl.exists(dl, dom).ok().filter(|&b| !b)
        });
        if gone.is_none() {
            return Err(Failure::generic(format!(
                "Xen domain {dom} is still there after xl destroy; giving up at the stop timeout"
            )));
        }
        ocf::info!("Xen domain {dom} stopped.");
        Ok(())
    }
}

impl ResourceAgent for Xen {
    fn meta() -> &'static AgentMeta {
        &META
    }

    fn configure(p: Params, ctx: &Context) -> Result<Self, Failure> {
        let cfg = Config::from_params(&p);
        let instance = ctx
            .env
            .non_empty("OCF_RESOURCE_INSTANCE")
            .map(str::to_string);
        let record = Record::new(&[
            "Xen",
            &ctx.instance,
            &cfg.xmfile.to_string_lossy(),
            "domain",
        ]);
        let recorded = record
            .read(&ctx.env)
            .filter(|n| check_domain_name(n).is_ok());
        // A quarter of the operation's time at most for the config file,
        // as VirtualDomain: the rest is for the domain itself.
        let dl = ctx.deadline();
        let (name, file_problem) = Xen::resolve_name(
            cfg.name.as_deref(),
            &cfg.xmfile,
            recorded.as_deref(),
            instance.as_deref(),
            &dl.capped(dl.total() / CONFIG_READ_SHARE),
        );
        Ok(Xen {
            cfg,
            xl: Xl::new(ctx),
            name,
            recorded,
            record,
            util: Utilization::new("Xen", &ctx.instance),
            file_problem,
        })
    }

    /// xl must be installed, and we must know the domain's name; neither
    /// can be wrong while a domain of ours runs here. Except when `xmfile`
    /// could not be read (a FIFO, a device, storage that does not answer):
    /// a guest of that name may run, so that is no "invalid environment"
    /// (stop → 0, probe → 7) but each action's own error.
    fn validate(&self, ctx: &Context) -> Result<(), Failure> {
        ctx.tools().require("xl")?;
        match self.domain_name() {
            Err(e) if e.status != OcfStatus::ErrGeneric => Err(e),
            _ => Ok(()),
        }
    }

    fn start(&self, ctx: &Context) -> OcfResult {
        let dom = self.domain_name()?;
        // The name in xmfile cannot be read: starting the name remembered
        // from an earlier run would start another guest than xmfile means.
        if let Some(e) = &self.file_problem {
            return Err(e.clone());
        }
        let dl = ctx.deadline();
        if self.xl.exists(&dl, dom)? {
            ocf::info!("Xen domain {dom} already running.");
            self.remember(ctx, dom);
            return Ok(OcfStatus::Success);
        }
        if !self.cfg.xmfile.is_file() {
            return Err(Failure::installed(format!(
                "Config file {} for {dom} does not exist.",
                self.cfg.xmfile.display()
            )));
        }
        let mem = self.adjust_memory(&dl, 1);
        if let Some(m) = mem {
            ocf::info!("New memory for virtual domains: {m}");
        }
        let out = self.xl.create(&dl, &self.cfg.xmfile, dom, mem)?;
        if !out.success() {
            return Err(Failure::generic(format!(
                "xl create {} failed: {}",
                self.cfg.xmfile.display(),
                out.message()
            )));
        }
        self.remember(ctx, dom);
        if self.exists_wait(&dl, dom).is_none() {
            return Err(Failure::generic(format!(
                "Xen domain {dom} was created but is not listed; gave up at the start timeout"
            )));
        }
        if !self.cfg.monitor_scripts.is_empty() {
            let mut last = None;
            let ok = dl.wait_for(Duration::from_secs(1), || {
                match self.run_monitor_scripts(ctx, &dl) {
                    Ok(()) => Some(()),
                    Err(e) => {
                        last = Some(e);
                        None
                    }
                }
            });
            if ok.is_none() {
                let why = last.map(|e| e.reason).unwrap_or_default();
                return Err(Failure::generic(format!(
                    "Xen domain {dom} is running but its monitor scripts did not succeed before the start timeout: {why}"
                )));
            }
        }
        ocf::info!("Xen domain {dom} started.");
        Ok(OcfStatus::Success)
    }

    fn stop(&self, ctx: &Context) -> OcfResult {
        let dom = self.domain_name()?;
        let dl = ctx.deadline();
        let away = format!("{dom}{MIGRATED_AWAY}");
        let reserve = (dl.total() / 3).min(DESTROY_RESERVE);
        let victim = if self.exists_with_grace(&dl.reserving(reserve), dom)? {
            Some(dom.to_string())
        } else if self.xl.exists(&dl, &away)? {
            ocf::info!("Xen domain {dom} is migrating");
            Some(away)
        } else {
            None
        };
        match victim {
            Some(v) => self.stop_domain(ctx, &dl, &v)?,
            None => {
                ocf::info!("Xen domain {dom} already stopped.");
                // Listed as gone but still instantiated has been seen: nuke
                // it once more, as heartbeat does.
                let _ = self.xl.destroy(&dl, dom);
            }
        }
        self.adjust_memory(&dl, 0);
        self.forget(ctx);
        Ok(OcfStatus::Success)
    }

    fn monitor(&self, ctx: &Context) -> OcfResult {
        self.check(ctx, true)
    }

    /// `status` (NCS `ocf_status`, rgmanager, admins): monitor without
    /// touching Pacemaker's utilization, and, like heartbeat's `status`,
    /// without the reboot grace: xl's "invalid domain identifier" is a
    /// definitive answer, given at once.
    fn status(&self, ctx: &Context) -> OcfResult {
        self.check(ctx, false)
    }

    fn validate_all(&self, ctx: &Context) -> OcfResult {
        let dom = self.domain_name()?;
        let meta = std::fs::metadata(&self.cfg.xmfile).map_err(|e| {
            Failure::installed(format!(
                "Config file {} for {dom}: {e}",
                self.cfg.xmfile.display()
            ))
        })?;
        if !meta.is_file() {
            return Err(Failure::installed(format!(
                "Config file {} for {dom} is not a regular file",
                self.cfg.xmfile.display()
            )));
        }
        std::fs::File::open(&self.cfg.xmfile).map_err(|e| {
            Failure::installed(format!(
                "Config file {} for {dom}: {e}",
                self.cfg.xmfile.display()
            ))
        })?;
        let tools = ctx.tools();
        for script in &self.cfg.monitor_scripts {
            tools.find(script).ok_or_else(|| {
                Failure::installed(format!(
                    "monitor script {script} not found or not executable"
                ))
            })?;
        }
        Ok(OcfStatus::Success)
    }

    fn migrate_to(&self, ctx: &Context) -> OcfResult {
        let dom = self.domain_name()?;
        let dl = ctx.deadline();
        let target = ctx.migrate_target.as_deref().ok_or_else(|| {
            Failure::generic(format!(
                "{dom}: migrate_to needs the target node (OCF_RESKEY_CRM_meta_migrate_target)"
            ))
        })?;
        if !self.xl.exists(&dl, dom)? {
            return Err(Failure::generic(format!(
                "{dom}: migrate_to: Not active locally!"
            )));
        }
        let addr = self.migration_address(ctx, &dl, target);
        if addr.starts_with('-') {
            return Err(Failure::generic(format!(
                "{dom}: refusing to migrate to '{addr}'"
            )));
        }
        ocf::info!("{dom}: Starting xl migrate to {target}");
        let out = self.xl.migrate(&dl, dom, &addr)?;
        if !out.success() {
            return Err(Failure::generic(format!(
                "{dom}: xl migrate to {target} failed: {}",
                out.message()
            )));
        }
        self.forget(ctx);
        self.adjust_memory(&dl, 0);
        ocf::info!("{dom}: xl migrate to {target} succeeded.");
        Ok(OcfStatus::Success)
    }

    fn migrate_from(&self, ctx: &Context) -> OcfResult {
        let dom = self.domain_name()?;
        let wait = ctx.timeout.map(|t| t * 2 / 3).unwrap_or(MIGRATE_FROM_WAIT);
        let dl = ctx.deadline().capped(wait);
        if self.exists_wait(&dl, dom).is_none() {
            return Err(Failure::generic(format!(
                "{dom}: Not active locally, migration failed!"
            )));
        }
        self.remember(ctx, dom);
        self.adjust_memory(&ctx.deadline(), 0);
        ocf::info!("{dom}: Active locally, migration successful");
        Ok(OcfStatus::Success)
    }
}

impl Xen {
    /// Poll until `dom` is listed, within `dl`.
    fn exists_wait(&self, dl: &Deadline, dom: &str) -> Option<()> {
        dl.wait_for(POLL, || {
            self.xl.exists(dl, dom).ok().filter(|&b| b).map(|_| ())
        })
    }

    /// monitor (`recurring`) / status. A probe and `status` look once; a
    /// recurring monitor gives a domain we started the reboot grace, as
    /// heartbeat's monitor does.
    fn check(&self, ctx: &Context, recurring: bool) -> OcfResult {
        let utilization = recurring;
        let dom = self.domain_name()?;
        let dl = ctx.deadline();
        let running = if ctx.is_probe() || !recurring {
            self.xl.exists(&dl, dom)?
        } else {
            self.exists_with_grace(&dl, dom)?
        };
        if !running {
            if self.recorded.as_deref() == Some(dom) {
                ocf::error!("Xen domain {dom} stopped");
            }
            return Ok(OcfStatus::NotRunning);
        }
        if utilization && (self.cfg.util_cpu || self.cfg.util_mem) {
            self.update_utilization(ctx, &dl, dom);
        }
        self.run_monitor_scripts(ctx, &dl)?;
        Ok(OcfStatus::Success)
    }
}
