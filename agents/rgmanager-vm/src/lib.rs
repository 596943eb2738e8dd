//! `vm`: the rgmanager persona of the VirtualDomain agent.
//!
//! rgmanager (Red Hat Cluster Suite) loads `/usr/share/cluster/vm.sh`, reads
//! its meta-data at start-up and runs it with nothing but OCF variables in
//! the environment (no `PATH`), `OCF_RESOURCE_INSTANCE=vm:<name>`,
//! `OCF_CHECK_LEVEL` as the status depth, `OCF_RESKEY_RGMANAGER_meta_timeout`
//! in seconds (RHEL6) and, for `migrate`, the target member as the second
//! argument. Installed under that name, this binary takes its place: vm.sh's
//! parameters, its rgmanager meta-data, its actions (also `restart`, which
//! vm.sh answers 0 without acting, and `kill`, destroy at once: actions
//! rgmanager's DTD cannot list) and its migrate exit codes (0 moved, 150
//! failed but still running here, 6 no such domain, 1 not running).
//!
//! Starting, stopping, monitoring and migrating are the VirtualDomain
//! agent's ([`ra_virtualdomain::VirtualDomain`], the libvirt API, never
//! virsh); this crate maps vm.sh's names onto its parameters:
//!
//! | vm.sh | here |
//! |---|---|
//! | `name` | the domain name (must match `<name>` of the XML file) |
//! | `xmlfile`, or `NAME` / `NAME.xml` found on `path` | VirtualDomain `config` |
//! | neither | the domain libvirt has defined as `name` is started (`virsh start name`) |
//! | `hypervisor_uri` (`auto`: `qemu:///system` for `hypervisor=qemu`, `xen:///` for xen, else libvirt's default) | `hypervisor` |
//! | `migration_uri` (`%s` = target) | `remoteuri`; `auto`: `migration_transport=ssh` (`qemu+ssh://T/system`) |
//! | qemu, not tunnelled | `migrateuri=tcp:T`, unless `migrate_options` has `--migrateuri` |
//! | `migrate=pause` | `migration_mode=paused` |
//! | `tunnelled` | `--tunnelled --p2p` added to `migrate_options` |
//! | `migration_mapping` (`member:host,...`) | the target member mapped to a host name |
//! | `snapshot` | `snapshot` (the state file is `DIR/NAME.state`) |
//! | `no_kill` | graceful shutdown only: a stop that does not finish fails, nothing is destroyed |
//! | `status_program` | run at status depth >= 10 and after start, as an argument vector (split on white space, no shell) |
//!
//! The parameters and this mapping live in `config` ([`virtualdomain_config`]
//! builds the VirtualDomain [`ra_virtualdomain::Config`]); this file holds
//! the actions.

mod config;

use std::path::PathBuf;
use std::time::Duration;

use ocf::{
    rgmanager, Action, AgentMeta, Cmd, Context, Failure, OcfResult, OcfStatus, Params,
    ResourceAgent,
};
use ra_virtualdomain::lv;
use ra_virtualdomain::{connect_failure, VirtualDomain};

use config::refuse_xm_config;
pub use config::{
    hypervisor_uri, map_target, migration_mapping, printf_target, source, virtualdomain_config,
    Source, META,
};

/// rgmanager's `RG_ERELO`: "migration failed; the VM still runs on the
/// source" (vm.sh's `exit 150`): the exit code of a `migrate` failure that
/// left the VM running here ([`Failure::exit_code`]).
pub const MIGRATE_STILL_ON_SOURCE: i32 = 150;

/// The config of a domain libvirt has defined by name only: none (the
/// VirtualDomain code reads no file for an empty path).
const NO_CONFIG: &str = "";

const POLL: Duration = Duration::from_millis(500);

/// One `vm` resource.
#[derive(Debug)]
pub struct Vm {
    name: String,
    vd: VirtualDomain,
    source: Source,
    hypervisor: Option<String>,
    status_program: Vec<String>,
}

impl ResourceAgent for Vm {
    fn meta() -> &'static AgentMeta {
        &META
    }

    const UNLISTED_ACTIONS: &'static [&'static str] = &["restart", "kill"];

    fn configure(p: Params, ctx: &Context) -> Result<Self, Failure> {
        let name = p
            .str("name")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Failure::configured("No domain name specified (name)"))?
            .to_string();
        let source = source(&p, &name);
        let config = match &source {
            Source::File(f) => f.clone(),
            Source::Defined => PathBuf::from(NO_CONFIG),
        };
        let mapping = migration_mapping(p.str("migration_mapping").unwrap_or(""))
            .map_err(|e| Failure::configured(format!("parameter 'migration_mapping': {e}")))?;
        let target = match &ctx.action {
            Action::Migrate(member) => Some(map_target(&mapping, member)),
            _ => None,
        };
        let vd = VirtualDomain::new(
            virtualdomain_config(&p, &name, &config, target.as_deref())?,
            ctx,
        )?;
        // the file as VirtualDomain read it: bounded, regular files only
        if let Some(text) = vd.config_text() {
            refuse_xm_config(&config, text)?;
        }
        if let Some(other) = vd.domain_name().filter(|n| *n != name) {
            return Err(Failure::configured(format!(
                "{} defines domain '{other}', not '{name}' (name must be the domain name)",
                config.display()
            )));
        }
        Ok(Vm {
            name,
            vd,
            source,
            hypervisor: hypervisor_uri(&p),
            status_program: p
                .str("status_program")
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        })
    }

    fn validate(&self, ctx: &Context) -> Result<(), Failure> {
        match self.source {
            Source::File(_) => self.vd.validate(ctx),
            Source::Defined => Ok(()),
        }
    }

    fn start(&self, ctx: &Context) -> OcfResult {
        match self.source {
            Source::File(_) => {
                // status_program is waited for below, not by VirtualDomain
                self.vd.start(ctx)?;
            }
            Source::Defined => self.start_defined(ctx)?,
        }
        self.wait_status_program(ctx)
    }

    fn stop(&self, ctx: &Context) -> OcfResult {
        self.vd.stop(ctx)
    }

    fn monitor(&self, ctx: &Context) -> OcfResult {
        self.check(ctx, true)
    }

    fn status(&self, ctx: &Context) -> OcfResult {
        self.check(ctx, false)
    }

    /// rgmanager recovers a failed resource in place when the agent
    /// advertises `recover`: stop it (if running) and start it again. Not
    /// [`rgmanager::recover`] (stop and start in the one timeout, as the
    /// fs and lvm personas do): a guest that ignores the shutdown request
    /// would keep stop waiting until most of the time is gone, so stop gets
    /// a third of it and start all that is left.
    fn recover(&self, ctx: &Context) -> OcfResult {
        let dl = ctx.deadline();
        let mut stop = ctx.clone();
        stop.timeout = Some(dl.remaining() / 3);
        stop.started = std::time::Instant::now();
        self.vd.stop(&stop)?;
        let mut start = ctx.clone();
        start.timeout = Some(dl.remaining());
        start.started = std::time::Instant::now();
        self.start(&start)
    }

    /// vm.sh's `restart` answers 0 and does nothing (`recover|restart)
    /// exit 0`): rgmanager restarts a VM through stop and start, or
    /// `recover`.
    fn restart(&self, _ctx: &Context) -> OcfResult {
        Ok(OcfStatus::Success)
    }

    /// vm.sh's `kill` (`do_stop destroy`): destroy the domain at once,
    /// whatever `no_kill` says.
    fn kill(&self, ctx: &Context) -> OcfResult {
        self.vd.kill(ctx)
    }

    /// Nothing is held in memory.
    fn reload(&self, ctx: &Context) -> OcfResult {
        rgmanager::nothing_to_reload(ctx)
    }

    /// The `reconfig` attributes are rgmanager's (service policy) or read at
    /// every call (`status_program`): nothing to change in the domain.
    fn reconfig(&self, ctx: &Context) -> OcfResult {
        rgmanager::nothing_to_reload(ctx)
    }

    fn validate_all(&self, ctx: &Context) -> OcfResult {
        if let Some(program) = self.status_program.first() {
            ctx.tools().find(program).ok_or_else(|| {
                Failure::installed(format!(
                    "status_program {program} not found or not executable"
                ))
            })?;
        }
        match self.source {
            Source::File(_) => self.vd.validate_all(ctx),
            Source::Defined => {
                let dl = ctx.deadline();
                let conn = lv::open(self.hypervisor.as_deref(), &dl)
                    .map_err(|e| connect_failure(self.hypervisor.as_deref(), &e))?;
                match lv::lookup(&conn, &self.name, &dl) {
                    Ok(Some(_)) => Ok(OcfStatus::Success),
                    Ok(None) => Err(self.undefined()),
                    Err(e) => Err(Failure::generic(format!("{}: lookup: {e}", self.name))),
                }
            }
        }
    }

    fn migrate(&self, ctx: &Context, member: &str) -> OcfResult {
        let dom = &self.name;
        let dl = ctx.deadline();
        // a domain that is not here, or not running, cannot move
        let conn = lv::open(self.hypervisor.as_deref(), &dl)
            .map_err(|e| connect_failure(self.hypervisor.as_deref(), &e))?;
        match lv::lookup(&conn, dom, &dl) {
            Ok(None) => {
                return Err(Failure::configured(format!(
                    "Trying to migrate '{dom}' - domain does not exist"
                )))
            }
            Ok(Some(d)) => match lv::dom_state(&d, &dl) {
                Ok(s) if s.active() => {}
                // vm.sh: virsh migrate fails ("domain is not running"),
                // and the status check after it finds nothing running: 1
                Ok(_) => {
                    return Err(Failure::generic(format!(
                        "Trying to migrate '{dom}' - domain is not running"
                    )))
                }
                Err(e) => return Err(Failure::generic(format!("{dom}: state: {e}"))),
            },
            Err(e) => return Err(Failure::generic(format!("{dom}: lookup: {e}"))),
        }
        // the migration gets the time but a tenth (at most 10 s), kept to
        // tell whether the domain still runs here if it fails
        let reserve = (dl.total() / 10).min(Duration::from_secs(10));
        let mut m = ctx.clone();
        m.timeout = Some(dl.total().saturating_sub(reserve));
        // mapped by configure (remoteuri, migrateuri); named for the logs
        m.migrate_target = Some(member.to_string());
        match self.vd.migrate_to(&m) {
            Ok(s) => Ok(s),
            Err(f) if f.status == OcfStatus::ErrGeneric => {
                if matches!(self.vd.status(ctx), Ok(OcfStatus::Success)) {
                    Err(
                        Failure::generic(format!("{}; {dom} is still running here", f.reason))
                            .with_exit_code(MIGRATE_STILL_ON_SOURCE),
                    )
                } else {
                    Err(f)
                }
            }
            Err(f) => Err(f),
        }
    }
}

impl Vm {
    fn undefined(&self) -> Failure {
        Failure::configured(format!(
            "no xmlfile, no {n} or {n}.xml on path, and libvirt has no domain '{n}' defined",
            n = self.name
        ))
    }

    /// vm.sh's `virsh start NAME`: the persistent definition libvirt holds.
    fn start_defined(&self, ctx: &Context) -> Result<(), Failure> {
        let dom = &self.name;
        let dl = ctx.deadline();
        let fail = |what: &str, e: lv::LvError| Failure::generic(format!("{what}: {e}"));
        let conn = lv::open(self.hypervisor.as_deref(), &dl)
            .map_err(|e| connect_failure(self.hypervisor.as_deref(), &e))?;
        let d = lv::lookup(&conn, dom, &dl)
            .map_err(|e| fail(dom, e))?
            .ok_or_else(|| self.undefined())?;
        if lv::dom_state(&d, &dl).is_ok_and(|s| s.active()) {
            ocf::info!("Virtual domain {dom} already running.");
            return Ok(());
        }
        ocf::info!("Starting the defined domain {dom}.");
        let dd = d.clone();
        lv::bounded(&dl, "starting the domain", move || dd.create().map(|_| ()))
            .map_err(|e| fail(&format!("failed to start {dom}"), e))?;
        dl.wait_for(POLL, || {
            lv::dom_state(&d, &dl)
                .is_ok_and(|s| s.active())
                .then_some(())
        })
        .ok_or_else(|| {
            Failure::generic(format!(
                "{dom} was started but is not running at the start timeout"
            ))
        })
    }

    fn check(&self, ctx: &Context, monitor: bool) -> OcfResult {
        let st = if monitor {
            self.vd.monitor(ctx)?
        } else {
            self.vd.status(ctx)?
        };
        if st != OcfStatus::Success || ctx.check_level < 10 {
            return Ok(st);
        }
        self.run_status_program(ctx)?;
        Ok(OcfStatus::Success)
    }

    /// `status_program` once, bounded by the operation's deadline.
    fn run_status_program(&self, ctx: &Context) -> Result<(), Failure> {
        let Some((program, args)) = self.status_program.split_first() else {
            return Ok(());
        };
        let tools = ctx.tools();
        let path = tools.find(program).ok_or_else(|| {
            Failure::generic(format!(
                "status_program {program} not found or not executable"
            ))
        })?;
        let out = Cmd::new(path)
            .args(args)
            .path(tools.path())
            .run(&ctx.deadline())?;
        if out.success() {
            return Ok(());
        }
        let why = match out.code() {
            Some(c) => format!("exit code {c}"),
            None => "killed by a signal".into(),
        };
        let msg = out.message();
        Err(Failure::generic(if msg.is_empty() {
            format!("status_program {program} failed ({why})")
        } else {
            format!("status_program {program} failed ({why}): {msg}")
        }))
    }

    /// vm.sh's `wait_start`: after start, run `status_program` until it
    /// succeeds or the start times out.
    fn wait_status_program(&self, ctx: &Context) -> OcfResult {
        if self.status_program.is_empty() {
            return Ok(OcfStatus::Success);
        }
        let dl = ctx.deadline();
        let mut last = None;
        let ok = dl.wait_for(POLL, || match self.run_status_program(ctx) {
            Ok(()) => Some(()),
            Err(f) => {
                // a run cut short by the deadline does not hide why the
                // runs before it failed
                if last.is_none() || !dl.expired() {
                    last = Some(f.reason);
                }
                None
            }
        });
        match ok {
            Some(()) => Ok(OcfStatus::Success),
            None => Err(Failure::generic(format!(
                "{} started, but its status_program did not succeed before the start timeout ({})",
                self.name,
                last.unwrap_or_else(|| "not run".into())
            ))),
        }
    }
}
