//! `vm`: the rgmanager persona of the VirtualDomain agent.
//!
//! rgmanager (Red Hat Cluster Suite) loads `/usr/share/cluster/vm.sh`, reads
//! its meta-data at start-up and runs it with nothing but OCF variables in
//! the environment (no `PATH`), `OCF_RESOURCE_INSTANCE=vm:<name>`,
//! `OCF_CHECK_LEVEL` as the status depth, `OCF_RESKEY_RGMANAGER_meta_timeout`
//! in seconds (RHEL6) and, for `migrate`, the target member as the second
//! argument. Installed under that name, this binary takes its place: vm.sh's
//! parameters, its rgmanager meta-data, its actions and its migrate exit
//! codes (0 moved, 150 failed but still running here, 6 no such domain, 7 not
//! running).
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

use std::path::{Path, PathBuf};
use std::time::Duration;

use ocf::{
    Action, ActionSpec, AgentMeta, Cmd, Context, Failure, OcfResult, OcfStatus, ParamSpec, Params,
    ResourceAgent, Special, SpecialElement,
};
use ra_virtualdomain::lv;
use ra_virtualdomain::{Config, MigrateOptions, MigrationMode, VirtualDomain};

/// rgmanager's `RG_ERELO`: "migration failed; the VM still runs on the
/// source" (vm.sh's `exit 150`): the exit code of a `migrate` failure that
/// left the VM running here ([`Failure::exit_code`]).
pub const MIGRATE_STILL_ON_SOURCE: i32 = 150;

/// What the config of a domain found by `path` search falls back to when
/// the domain is defined in libvirt by name only: a file that never holds
/// a domain.
const NO_CONFIG: &str = "/dev/null";

const POLL: Duration = Duration::from_millis(500);

fn check_absolute(v: &str) -> Result<(), String> {
    if v.starts_with('/') {
        Ok(())
    } else {
        Err("must be an absolute path".into())
    }
}

fn check_use_virsh(v: &str) -> Result<(), String> {
    match v.trim() {
        "1" => Ok(()),
        "0" => Err(
            "xm is not supported: this agent drives libvirt; set use_virsh=1 or leave it unset"
                .into(),
        ),
        _ => Err("must be 1 (virsh/libvirt) or unset".into()),
    }
}

fn check_mapping(v: &str) -> Result<(), String> {
    migration_mapping(v).map(|_| ())
}

static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("name")
        .primary()
        .short("Name")
        .long("The name of the virtual machine: the libvirt domain name (the <name> of xmlfile)."),
    ParamSpec::string("domain")
        .reconfig()
        .short("Cluster failover Domain")
        .long("Failover domains define lists of cluster members to try in the event that the host of the virtual machine fails. Read by rgmanager; the agent ignores it."),
    ParamSpec::boolean("autostart")
        .default("1")
        .reconfig()
        .short("Automatic start after quorum formation")
        .long("If set, rgmanager starts this virtual machine once the cluster forms a quorum; otherwise it starts disabled. Read by rgmanager."),
    ParamSpec::boolean("exclusive")
        .default("0")
        .reconfig()
        .short("Exclusive resource group")
        .long("If set, the virtual machine only relocates to members running no other service. Read by rgmanager."),
    ParamSpec::string("recovery")
        .reconfig()
        .short("Failure recovery policy")
        .long("restart (restart locally before relocating, the default), relocate, or disable. Read by rgmanager."),
    ParamSpec::string("migration_mapping")
        .check(check_mapping)
        .reconfig()
        .short("memberhost:targethost,memberhost:targethost ..")
        .long("Mapping of the name of a target cluster member to the host name migration uses (e.g. a private migration network). A member not listed is used as it is."),
    ParamSpec::integer("use_virsh")
        .check(check_use_virsh)
        .short("Use libvirt (1) rather than xm (0)")
        .long("Accepted for compatibility: this agent always uses libvirt (through its API, not virsh). 0 (xm) is refused."),
    ParamSpec::string("xmlfile")
        .check(check_absolute)
        .short("Full path to libvirt XML file describing the domain.")
        .long("Full path to the libvirt XML file describing the domain; start creates the domain from it. When unset, NAME or NAME.xml is searched on path, and without either the domain libvirt has defined as NAME is started."),
    ParamSpec::one_of("migrate", &["live", "pause"])
        .default("live")
        .short("Migration type (live or pause, default = live).")
        .long("live: live migration. pause: the domain is suspended, moved while paused and resumed on the target."),
    ParamSpec::string("migrate_options")
        .short("Extra options for the guest live migration.")
        .long("Extra virsh-style migrate options (e.g. --auto-converge, --migrateuri tcp://host, --listen-address ADDR), mapped to libvirt flags and parameters; unknown options are a configuration error."),
    ParamSpec::boolean("tunnelled")
        .short("Tunnel data over ssh to securely migrate virtual machines.")
        .long("If set, the migration is tunnelled through the libvirt connection (--tunnelled --p2p)."),
    ParamSpec::string("path")
        .short("Path to virtual machine configuration files.")
        .long("Colon-separated directories searched for NAME, then NAME.xml, when xmlfile is unset."),
    ParamSpec::string("snapshot")
        .short("Path to the snapshot directory where the virtual machine image will be stored.")
        .long("Directory: stop saves the domain's state there (NAME.state) instead of shutting it down, and start restores it (and removes it)."),
    ParamSpec::string("depend")
        .reconfig()
        .short("Top-level service this depends on, in service:name format.")
        .long("Service dependency; rgmanager will not start this one without the named service running. Read by rgmanager."),
    ParamSpec::string("depend_mode")
        .default("hard")
        .reconfig()
        .short("Service dependency mode (soft or hard).")
        .long("hard: this service is stopped and started with its dependency. soft: the dependency only matters for the first start. Read by rgmanager."),
    ParamSpec::integer("max_restarts")
        .default("0")
        .reconfig()
        .short("Maximum restarts for this service.")
        .long("Maximum restarts for this service before rgmanager relocates it. Read by rgmanager."),
    ParamSpec::string("restart_expire_time")
        .default("0")
        .reconfig()
        .short("Restart expiration time; amount of time before a restart is forgotten.")
        .long("A restart is forgotten after this time; with max_restarts, a threshold for relocating instead of restarting. Read by rgmanager."),
    ParamSpec::string("status_program")
        .default("")
        .reconfig()
        .short("Additional status check program")
        .long("Program run at status depth 10 (and after start, until it succeeds or the start times out) to check the services inside the virtual machine. Run as an argument vector: split on white space, no shell, so quotes, $ and ; are taken literally. Any exit code but 0 fails the status."),
    ParamSpec::one_of("hypervisor", &["auto", "qemu", "xen"])
        .default("auto")
        .short("Hypervisor")
        .long("auto, qemu or xen: picks the default hypervisor_uri and migration URIs."),
    ParamSpec::string("hypervisor_uri")
        .default("auto")
        .short("Hypervisor URI (normally automatic).")
        .long("libvirt URI of the local hypervisor. auto: qemu:///system for hypervisor=qemu, xen:/// for xen, else libvirt's default URI."),
    ParamSpec::string("migration_uri")
        .default("auto")
        .short("Migration URI (normally automatic).")
        .long("libvirt URI of the target's hypervisor; %s stands for the target host. auto: the hypervisor URI with +ssh and the target as host (qemu+ssh://%s/system)."),
    ParamSpec::boolean("no_kill")
        .default("false")
        .short("Don't force kill vm on stop.")
        .long("Do not destroy the virtual machine on stop: only ask it to shut down, and fail the stop when it has not within the timeout."),
];

static ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", 300),
    ActionSpec::new("stop", 120),
    ActionSpec::new("status", 10).interval(30),
    ActionSpec::new("monitor", 10).interval(30),
    // depth 10 runs the status_program
    ActionSpec::new("status", 20).interval(60).depth(10),
    ActionSpec::new("monitor", 20).interval(60).depth(10),
    ActionSpec::new("migrate", 600),
    ActionSpec::new("recover", 420),
    ActionSpec::new("reload", 10),
    ActionSpec::new("reconfig", 10),
    ActionSpec::new("meta-data", 5),
    ActionSpec::new("validate-all", 5),
    ActionSpec::new("verify-all", 5),
];

static SPECIAL: &[SpecialElement] = &[SpecialElement::new(
    "attributes",
    &[
        ("maxinstances", "1"),
        ("destroy_on_delete", "0"),
        ("init_on_add", "0"),
    ],
)];

pub static META: AgentMeta = AgentMeta {
    name: "vm",
    version: "rgmanager 2.0",
    shortdesc: "Defines a Virtual Machine",
    longdesc: "A virtual machine managed through libvirt, for rgmanager, in place of vm.sh; built on the heartbeat-rs VirtualDomain agent (the libvirt API, no virsh, no shell).\n\nStart creates the domain from xmlfile (or NAME / NAME.xml found on path), or starts the domain libvirt has defined as NAME. Status depth 0 asks libvirt for the domain's state (with libvirtd down, looks for its emulator process); depth 10 also runs status_program. Stop asks the domain to shut down and destroys it when it does not in time (not with no_kill). migrate TARGET moves the running domain to the member TARGET: 0 moved, 150 failed but still running here, 6 no such domain here, 7 not running here. Every wait ends inside the operation's timeout.",
    params: PARAMS,
    actions: ACTIONS,
    special: Some(Special::rgmanager(SPECIAL)),
};

/// `migration_mapping`: `member:host,member:host`.
pub fn migration_mapping(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match entry.split_once(':') {
            Some((m, h)) if !m.trim().is_empty() && !h.trim().is_empty() => {
                out.push((m.trim().to_string(), h.trim().to_string()))
            }
            _ => return Err(format!("'{entry}' is not member:host")),
        }
    }
    Ok(out)
}

/// The host a migration to `member` goes to: its mapping, else itself.
/// (vm.sh's `${mapping#*$target:}` turned an unmapped member into the first
/// mapped host, and matched `node1` inside `node10:`.)
pub fn map_target(mapping: &[(String, String)], member: &str) -> String {
    mapping
        .iter()
        .find(|(m, _)| m == member)
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| member.to_string())
}

/// `printf FORMAT target` for vm.sh's URI formats: `%s` is the target, `%%`
/// a percent sign, anything else literal.
pub fn printf_target(format: &str, target: &str) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.peek() {
                Some('s') => {
                    chars.next();
                    out.push_str(target);
                    continue;
                }
                Some('%') => {
                    chars.next();
                    out.push('%');
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

fn set(p: &Params, name: &str) -> Option<String> {
    p.str(name)
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "auto")
        .map(str::to_string)
}

/// The local hypervisor URI: `hypervisor_uri`, else vm.sh's default for
/// `hypervisor`, else None (libvirt's default URI).
pub fn hypervisor_uri(p: &Params) -> Option<String> {
    set(p, "hypervisor_uri").or_else(|| match p.str("hypervisor") {
        Some("qemu") => Some("qemu:///system".into()),
        Some("xen") => Some("xen:///".into()),
        _ => None,
    })
}

/// Where the domain comes from at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A libvirt XML file (`xmlfile`, or found on `path`).
    File(PathBuf),
    /// The domain libvirt has defined under the name (`virsh start NAME`).
    Defined,
}

/// `xmlfile`, else `NAME` or `NAME.xml` in the first directory of `path`
/// holding either, else the libvirt definition.
pub fn source(p: &Params, name: &str) -> Source {
    if let Some(x) = set(p, "xmlfile") {
        if set(p, "path").is_some() {
            ocf::debug!("Using {x} instead of searching path");
        }
        return Source::File(PathBuf::from(x));
    }
    let search = set(p, "path").unwrap_or_default();
    for dir in search.split(':').filter(|d| !d.is_empty()) {
        for file in [name.to_string(), format!("{name}.xml")] {
            let f = Path::new(dir).join(file);
            if f.is_file() {
                return Source::File(std::path::absolute(&f).unwrap_or(f));
            }
        }
    }
    if !search.is_empty() {
        ocf::debug!("Could not find {name} or {name}.xml in search path {search}");
    }
    Source::Defined
}

/// The VirtualDomain settings for vm.sh's parameters: the domain from
/// `config` (or libvirt's definition of `name`), no utilization (rgmanager
/// has no crm_resource). `target` is the host a `migrate` goes to (already
/// mapped), when this is one.
pub fn virtualdomain_config(
    p: &Params,
    name: &str,
    config: &Path,
    target: Option<&str>,
) -> Result<Config, Failure> {
    let hypervisor = hypervisor_uri(p);
    let tunnelled = p.bool("tunnelled");
    let mut options = p.str("migrate_options").unwrap_or("").trim().to_string();
    if tunnelled {
        options.push_str(" --tunnelled --p2p");
    }
    let migrate_options = MigrateOptions::parse(&options).map_err(|e| {
        Failure::configured(format!(
            "parameter 'migrate_options': '{}': {e}",
            options.trim()
        ))
    })?;
    let (remoteuri, migration_transport) = match set(p, "migration_uri") {
        Some(format) => (target.map(|t| printf_target(&format, t)), None),
        // the hypervisor URI with +ssh and the target as host:
        // qemu:///system -> qemu+ssh://T/system, as vm.sh's default
        None => (None, Some("ssh".to_string())),
    };
    let qemu = p.str("hypervisor") == Some("qemu")
        || hypervisor.as_deref().is_some_and(|h| h.starts_with("qemu"));
    // the memory stream straight to the target, unless the user names one
    // or it goes through the libvirt connection
    let migrateuri = target
        .filter(|_| qemu && !tunnelled && migrate_options.migrateuri.is_none())
        .map(|t| format!("tcp:{t}"));
    Ok(Config {
        config: config.to_path_buf(),
        hypervisor,
        migration_transport,
        migrateuri,
        migrate_options,
        autoset_utilization: [false; 3],
        remoteuri,
        snapshot: set(p, "snapshot").map(PathBuf::from),
        migration_mode: if p.str("migrate") == Some("pause") {
            MigrationMode::Paused
        } else {
            MigrationMode::Live
        },
        domain_name: Some(name.to_string()),
        no_destroy: p.bool("no_kill"),
        ..Config::default()
    })
}

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

    fn configure(p: Params, ctx: &Context) -> Result<Self, Failure> {
        let name = p
            .str("name")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Failure::configured("No domain name specified (name)"))?
            .to_string();
        let source = source(&p, &name);
        let config = match &source {
            Source::File(f) => {
                refuse_xm_config(f)?;
                f.clone()
            }
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
    /// advertises `recover`: stop it (if running) and start it again.
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

    /// Nothing is held in memory.
    fn reload(&self, _ctx: &Context) -> OcfResult {
        Ok(OcfStatus::Success)
    }

    /// The `reconfig` attributes are rgmanager's (service policy) or read at
    /// every call (`status_program`): nothing to change in the domain.
    fn reconfig(&self, _ctx: &Context) -> OcfResult {
        Ok(OcfStatus::Success)
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
                    .map_err(|e| Failure::generic(format!("cannot connect to libvirt: {e}")))?;
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
            .map_err(|e| Failure::generic(format!("cannot connect to libvirt: {e}")))?;
        match lv::lookup(&conn, dom, &dl) {
            Ok(None) => {
                return Err(Failure::configured(format!(
                    "Trying to migrate '{dom}' - domain does not exist"
                )))
            }
            Ok(Some(d)) => match lv::dom_state(&d, &dl) {
                Ok(s) if s.active() => {}
                Ok(_) => {
                    return Err(Failure::new(
                        OcfStatus::NotRunning,
                        format!("Trying to migrate '{dom}' - domain is not running"),
                    ))
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
            .map_err(|e| fail("cannot connect to libvirt", e))?;
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

/// vm.sh used `xm` for a config file that is not XML; that needs Xen's xm
/// toolstack, which this agent does not drive.
fn refuse_xm_config(f: &Path) -> Result<(), Failure> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = match std::fs::File::open(f).and_then(|mut file| file.read(&mut head)) {
        Ok(n) => n,
        // unreadable: VirtualDomain reports it where it matters (start)
        Err(_) => return Ok(()),
    };
    match head[..n].iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') | None => Ok(()),
        Some(_) => Err(Failure::configured(format!(
            "{} is not libvirt XML (an xm config needs use_virsh=0, which this agent does not support)",
            f.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Result<Params, Failure> {
        let env = ocf::Env::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())),
        );
        Params::parse(PARAMS, &env)
    }

    fn vd(pairs: &[(&str, &str)], target: Option<&str>) -> Config {
        let p = params(pairs).unwrap();
        virtualdomain_config(&p, "g", Path::new("/etc/vm/x.xml"), target).unwrap()
    }

    #[test]
    fn mapping_is_exact_and_unmapped_members_stay() {
        let m = migration_mapping("node1:node1-mig, node10:node10-mig").unwrap();
        assert_eq!(map_target(&m, "node1"), "node1-mig");
        assert_eq!(map_target(&m, "node10"), "node10-mig");
        assert_eq!(map_target(&m, "node2"), "node2");
        assert!(migration_mapping("node1").is_err());
        assert!(migration_mapping("node1:").is_err());
        assert_eq!(migration_mapping("").unwrap(), vec![]);
        let e = params(&[("migration_mapping", "a:b,c")]).unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrConfigured);
    }

    #[test]
    fn uri_formats_substitute_like_printf() {
        assert_eq!(
            printf_target("qemu+ssh://%s/system", "n2"),
            "qemu+ssh://n2/system"
        );
        assert_eq!(printf_target("x?a=100%%&h=%s", "h"), "x?a=100%&h=h");
        assert_eq!(printf_target("%n/%", "h"), "%n/%");
    }

    #[test]
    fn vm_sh_parameters_become_virtualdomain_settings() {
        // defaults: libvirt's URI, ssh to the target, live, no utilization
        let c = vd(&[("name", "g")], Some("n2"));
        assert_eq!(
            c,
            Config {
                config: "/etc/vm/x.xml".into(),
                migration_transport: Some("ssh".into()),
                autoset_utilization: [false; 3],
                domain_name: Some("g".into()),
                ..Config::default()
            }
        );
        // qemu: qemu:///system, tcp:TARGET for the memory stream
        let c = vd(&[("name", "g"), ("hypervisor", "qemu")], Some("n2"));
        assert_eq!(c.hypervisor.as_deref(), Some("qemu:///system"));
        assert_eq!(c.migrateuri.as_deref(), Some("tcp:n2"));
        let c = vd(&[("name", "g"), ("hypervisor", "xen")], None);
        assert_eq!(c.hypervisor.as_deref(), Some("xen:///"));
        // explicit URIs, pause, tunnelled, no_kill
        let c = vd(
            &[
                ("name", "g"),
                ("hypervisor_uri", "qemu+unix:///system?socket=/s"),
                ("migration_uri", "qemu+tcp://%s/system"),
                ("migrate", "pause"),
                ("tunnelled", "yes"),
                ("migrate_options", "--auto-converge"),
                ("snapshot", "/snap"),
                ("no_kill", "1"),
            ],
            Some("n3"),
        );
        assert_eq!(
            c.hypervisor.as_deref(),
            Some("qemu+unix:///system?socket=/s")
        );
        assert_eq!(c.remoteuri.as_deref(), Some("qemu+tcp://n3/system"));
        assert_eq!(c.migration_transport, None);
        assert_eq!(c.migrateuri, None, "tunnelled: no migrate URI");
        assert_eq!(c.migration_mode, MigrationMode::Paused);
        assert_eq!(
            c.migrate_options,
            MigrateOptions::parse("--auto-converge --tunnelled --p2p").unwrap()
        );
        assert_eq!(c.snapshot.as_deref(), Some(Path::new("/snap")));
        assert!(c.no_destroy);
        // the user's --migrateuri wins over tcp:TARGET
        let c = vd(
            &[
                ("name", "g"),
                ("hypervisor", "qemu"),
                ("migrate_options", "--migrateuri tcp://10.0.0.2"),
            ],
            Some("n2"),
        );
        assert_eq!(c.migrateuri, None);
        // an option VirtualDomain does not know: one line naming it
        let p = params(&[("name", "g"), ("migrate_options", "--bogus")]).unwrap();
        let e = virtualdomain_config(&p, "g", Path::new("/x.xml"), None).unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrConfigured);
        assert!(e.reason.contains("migrate_options"), "{}", e.reason);
    }

    #[test]
    fn bad_values_are_configuration_errors() {
        for (k, v) in [
            ("use_virsh", "0"),
            ("use_virsh", "2"),
            ("migrate", "fast"),
            ("hypervisor", "lxc"),
            ("xmlfile", "relative.xml"),
            ("no_kill", "maybe"),
        ] {
            let e = params(&[("name", "g"), (k, v)]).unwrap_err();
            assert_eq!(e.status, OcfStatus::ErrConfigured, "{k}={v}");
            assert!(e.reason.contains(k), "{}", e.reason);
            assert!(!e.reason.contains('\n'));
        }
        assert!(params(&[("name", "g"), ("use_virsh", "1")]).is_ok());
    }

    #[test]
    fn path_search_finds_name_then_name_xml() {
        let dir = std::env::temp_dir().join(format!("ra-rs-vm-path-{}", std::process::id()));
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("g.xml"), "<domain/>").unwrap();
        let search = format!("{}:{}", a.display(), b.display());
        let p = params(&[("name", "g"), ("path", &search)]).unwrap();
        assert_eq!(source(&p, "g"), Source::File(b.join("g.xml")));
        std::fs::write(a.join("g"), "<domain/>").unwrap();
        assert_eq!(source(&p, "g"), Source::File(a.join("g")));
        assert_eq!(source(&p, "other"), Source::Defined);
        let p = params(&[("name", "g"), ("path", &search), ("xmlfile", "/x.xml")]).unwrap();
        assert_eq!(source(&p, "g"), Source::File("/x.xml".into()));
        std::fs::write(a.join("xm"), "name = 'xm'\n").unwrap();
        assert_eq!(
            refuse_xm_config(&a.join("xm")).unwrap_err().status,
            OcfStatus::ErrConfigured
        );
        assert!(refuse_xm_config(&a.join("g")).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn meta_data_is_the_rgmanager_dialect() {
        let xml = META.render();
        assert!(xml.contains("<resource-agent name=\"vm\" version=\"rgmanager 2.0\">"));
        assert!(xml.contains("ra-api-1-modified.dtd"));
        assert!(xml.contains("<parameter name=\"name\" primary=\"1\">"));
        assert!(xml.contains("<parameter name=\"domain\" reconfig=\"1\">"));
        assert!(xml.contains("maxinstances=\"1\""));
        assert_eq!(META.primary_param().map(|p| p.name), Some("name"));
    }
}
