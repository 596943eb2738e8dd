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
//! - `validate-all` really validates (heartbeat always returns 0);
//! - memory management passes `memory=` to `xl create` instead of editing
//!   `xmfile` in place with `sed -i`;
//! - only `xl` (no `xm`, no `xen-list`/`xen-destroy`); during a migration
//!   the source domain is called `<name>--migratedaway` (xl's name; xm's
//!   was `migrating-<name>`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ocf::{
    ActionSpec, AgentMeta, Context, Deadline, Failure, OcfResult, OcfStatus, Output, ParamSpec,
    Params, Record, ResourceAgent,
};

/// Heartbeat's default for `xmfile`.
pub const DEFAULT_XMFILE: &str = "/etc/xen/vm/MyDomU";
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
/// Suffix xl gives the source domain while a migration finishes.
const MIGRATED_AWAY: &str = "--migratedaway";
/// Suffix xl gives the target domain while a migration copies.
const INCOMING: &str = "--incoming";

/// Whether `name` can be a domain name we hand to `xl`: it goes into a
/// `name="..."` config override and is taken for a domain id when numeric
/// or for an option when it starts with `-`.
pub fn check_domain_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty domain name".into());
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(
            "a domain name must not contain quotes, backslashes or control characters".into(),
        );
    }
    if name.trim() != name {
        return Err("a domain name must not start or end with white space".into());
    }
    if name.starts_with('-') {
        return Err("a domain name must not start with '-'".into());
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a numeric domain name would be taken for a domain id".into());
    }
    if name == "Domain-0" {
        return Err("Domain-0 is the control domain".into());
    }
    if name.ends_with(MIGRATED_AWAY) || name.ends_with(INCOMING) {
        return Err(
            "names ending in --migratedaway or --incoming are xl's during migration".into(),
        );
    }
    if name.len() > 255 {
        return Err("domain name too long".into());
    }
    Ok(())
}

fn check_non_negative(v: &str) -> Result<(), String> {
    match v.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(()),
        _ => Err("must be a non-negative number".into()),
    }
}

fn check_absolute(v: &str) -> Result<(), String> {
    if v.starts_with('/') {
        Ok(())
    } else {
        Err("must be an absolute path".into())
    }
}

static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("xmfile")
        .identity()
        .required()
        .default(DEFAULT_XMFILE)
        .check(check_absolute)
        .short("Xen control file")
        .long("Absolute path to the Xen control file, for this virtual machine."),
    ParamSpec::string("name")
        .identity()
        .check(check_domain_name)
        .short("Xen DomU name")
        .long(
            "Name of the virtual machine. When unset, it is read from the \
             'name = \"...\"' line of xmfile (a plain quoted string; anything \
             else is rejected), and when xmfile does not exist, the resource \
             instance name is used.",
        ),
    ParamSpec::integer("shutdown_timeout")
        .check(check_non_negative)
        .short("Shutdown escalation timeout")
        .long(
            "The Xen agent will first try an orderly shutdown using xl shutdown. \
             Should this not succeed within this timeout, the agent will escalate \
             to xl destroy, forcibly killing the node. If this is not set, it will \
             default to two-third of the stop action timeout. Setting this value \
             to 0 forces an immediate destroy. The stop timeout always wins: some \
             of it is kept for xl destroy.",
        ),
    ParamSpec::boolean("shutdown_acpi")
        .default("0")
        .short("Simulate power button event on shutdown")
        .long(
            "Handle shutdown by simulating an ACPI power button event. Enable \
             this to allow graceful shutdown for HVM domains without installed PV \
             drivers.",
        ),
    ParamSpec::boolean("allow_mem_management")
        .default("0")
        .short("Use dynamic memory management")
        .long(
            "This parameter enables dynamic adjustment of memory for start and \
             stop actions used for Dom0 and the DomUs. The default is to not \
             adjust memory dynamically.",
        ),
    ParamSpec::string("node_ip_attribute")
        .short("Node attribute containing target IP address")
        .long(
            "In case of a live migration, the system will default to using the IP \
             address associated with the hostname via DNS or /etc/hosts. This \
             parameter allows you to specify a node attribute that will be queried \
             instead for the target node, overriding the IP address. This allows \
             you to use a dedicated network for live migration traffic to a \
             specific node. Warning: make very sure the IP address does point to \
             the right node.",
        ),
    ParamSpec::integer("reserved_Dom0_memory")
        .default("512")
        .check(check_non_negative)
        .short("Minimum Dom0 memory")
        .long(
            "In case memory management is used, this parameter defines the \
             minimum amount of memory to be reserved for the dom0. The default \
             minimum memory is 512MB.",
        ),
    ParamSpec::boolean("autoset_utilization_cpu")
        .default("false")
        .short("Enable auto-setting the CPU utilization of the resource")
        .long(
            "If set true, the agent will detect the number of domain's vCPUs from \
             Xen, and put it into the CPU utilization of the resource when the \
             monitor is executed.",
        ),
    ParamSpec::boolean("autoset_utilization_hv_memory")
        .default("false")
        .short("Enable auto-setting the hv_memory utilization of the resource")
        .long(
            "If set true, the agent will detect the number of memory from Xen, and \
             put it into the hv_memory utilization of the resource when the \
             monitor is executed.",
        ),
    ParamSpec::string("monitor_scripts")
        .short("list of space separated monitor scripts")
        .long(
            "To additionally monitor services within the unprivileged domain, add \
             this parameter with a list of scripts to monitor. Each is run without \
             arguments; one that exits non-zero makes the monitor fail.",
        ),
];

static ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", 60),
    ActionSpec::new("stop", 40),
    ActionSpec::new("migrate_from", 120),
    ActionSpec::new("migrate_to", 120),
    ActionSpec::new("monitor", 30).interval(10).depth(0),
    ActionSpec::new("meta-data", 5),
    ActionSpec::new("validate-all", 5),
];

static META: AgentMeta = AgentMeta {
    name: "Xen",
    version: "1.0",
    shortdesc: "Manages Xen unprivileged domains (DomUs)",
    longdesc: "Resource Agent for the Xen Hypervisor. Manages Xen virtual machine \
               instances by mapping cluster resource start and stop, to Xen create \
               and shutdown, respectively, with the xl toolstack.\n\n\
               A note on names: the name is taken from the name parameter, else \
               extracted from the config file (the xmfile attribute) if it is a \
               simple assignment of a quoted string, else, when the config file is \
               missing, the instance id. Set the name parameter if the config file \
               may be missing (shared storage).\n\n\
               Para-virtualized guests can also be migrated by enabling the \
               meta_attribute allow-migrate.",
    params: PARAMS,
    actions: ACTIONS,
    special: None,
};

/// What the `name` setting of an xl config file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigName {
    /// No `name` line.
    Absent,
    /// `name = "value"` (or single quotes), optionally followed by a comment.
    Plain(String),
    /// Something we will not guess at (an expression, several lines).
    NotPlain(String),
}

/// Find the domain name in the text of an xl config file.
pub fn parse_config_name(text: &str) -> ConfigName {
    let mut found = Vec::new();
    for line in text.lines() {
        let l = line.trim_start();
        let Some(rest) = l.strip_prefix("name") else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(value) = rest.strip_prefix('=') {
            found.push((line, value.trim()));
        }
    }
    let (line, value) = match found.as_slice() {
        [] => return ConfigName::Absent,
        [one] => *one,
        _ => return ConfigName::NotPlain("more than one 'name' line".into()),
    };
    let not_plain = || ConfigName::NotPlain(format!("not a plain quoted string: {}", line.trim()));
    let mut chars = value.chars();
    let Some(quote @ ('"' | '\'')) = chars.next() else {
        return not_plain();
    };
    let body: &str = chars.as_str();
    let Some(end) = body.find(quote) else {
        return not_plain();
    };
    let after = body[end + 1..].trim();
    if !(after.is_empty() || after.starts_with('#') || after == ";") {
        return not_plain();
    }
    ConfigName::Plain(body[..end].to_string())
}

/// One line of `xl list`: `Name ID Mem VCPUs State Time(s)`. Names may hold
/// spaces, so the fields are taken from the right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    pub name: String,
    pub domid: u32,
    pub mem: u64,
    pub vcpus: u32,
}

/// The domains in `xl list` output (header skipped).
pub fn parse_list(text: &str) -> Vec<ListEntry> {
    let mut v = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let n = f.len();
        let (Ok(domid), Ok(mem), Ok(vcpus)) = (
            f[n - 5].parse::<u32>(),
            f[n - 4].parse::<u64>(),
            f[n - 3].parse::<u32>(),
        ) else {
            continue;
        };
        v.push(ListEntry {
            name: f[..n - 5].join(" "),
            domid,
            mem,
            vcpus,
        });
    }
    v
}

/// `total_memory` from `xl info`, in MB.
pub fn parse_total_memory(info: &str) -> Option<i64> {
    info.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "total_memory").then(|| v.trim().parse().ok())?
    })
}

/// One Xen guest.
#[derive(Debug)]
pub struct Xen {
    xmfile: PathBuf,
    /// The domain name, or why there is none.
    name: Result<String, Failure>,
    /// The name recorded when we started (or received) the domain here.
    recorded: Option<String>,
    record: Record,
    instance: Option<String>,
    shutdown_timeout: Option<Duration>,
    shutdown_acpi: bool,
    mem_management: bool,
    reserved_dom0: i64,
    node_ip_attribute: Option<String>,
    util_cpu: bool,
    util_mem: bool,
    monitor_scripts: Vec<String>,
}

impl Xen {
    /// The domain name this instance manages (see the meta-data's note).
    pub fn domain_name(&self) -> Result<&str, Failure> {
        self.name.as_deref().map_err(Clone::clone)
    }

    fn resolve_name(
        explicit: Option<&str>,
        xmfile: &Path,
        recorded: Option<&str>,
        instance: Option<&str>,
    ) -> Result<String, Failure> {
        if let Some(n) = explicit {
            return Ok(n.to_string());
        }
        let from_file = match std::fs::read(xmfile) {
            Ok(bytes) => match parse_config_name(&String::from_utf8_lossy(&bytes)) {
                ConfigName::Plain(n) => match check_domain_name(&n) {
                    Ok(()) => return Ok(n),
                    Err(e) => Err(format!("name '{n}' in {}: {e}", xmfile.display())),
                },
                ConfigName::NotPlain(why) => Err(format!(
                    "cannot read the name from {}: {why}",
                    xmfile.display()
                )),
                ConfigName::Absent => Ok(()),
            },
            Err(_) => Ok(()),
        };
        // The config file is gone or unusable: the domain we started, if any.
        if let Some(r) = recorded {
            if let Err(e) = &from_file {
                ocf::warn!("{e}; using the recorded domain name '{r}'");
            }
            return Ok(r.to_string());
        }
        from_file.map_err(|e| Failure::configured(format!("{e}; set the name parameter")))?;
        match instance {
            Some(i) if check_domain_name(i).is_ok() => Ok(i.to_string()),
            _ => Err(Failure::configured(format!(
                "cannot tell the domain name: {} has no name line (or is missing) and the instance name is unusable; set the name parameter",
                xmfile.display()
            ))),
        }
    }

    fn xl<I, S>(&self, ctx: &Context, dl: &Deadline, args: I) -> Result<Output, Failure>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Ok(ctx.tools().command("xl")?.args(args).run(dl)?)
    }

    /// `xl list DOM` succeeds: the domain exists here.
    fn exists(&self, ctx: &Context, dl: &Deadline, dom: &str) -> Result<bool, Failure> {
        let out = self.xl(ctx, dl, ["list", dom])?;
        if !out.success() {
            ocf::debug!("xl list {dom}: {}", out.message());
        }
        Ok(out.success())
    }

    /// Like [`Xen::exists`], but a domain we started here gets
    /// [`REBOOT_GRACE`] to show up again: a rebooting guest vanishes from
    /// `xl list` for a moment.
    fn exists_with_grace(&self, ctx: &Context, dl: &Deadline, dom: &str) -> Result<bool, Failure> {
        if self.exists(ctx, dl, dom)? {
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
                self.exists(ctx, &grace, dom).ok().filter(|&b| b)
            })
            .is_some())
    }

    fn remember(&self, ctx: &Context, dom: &str) {
        self.record.keep(&ctx.env, dom);
    }

    fn forget(&self, ctx: &Context) {
        self.record.clear(&ctx.env);
    }

    /// Run the monitor scripts; the first failing one is the failure.
    fn run_monitor_scripts(&self, ctx: &Context, dl: &Deadline) -> Result<(), Failure> {
        ctx.tools()
            .run_scripts("monitor script", &self.monitor_scripts, dl)
    }

    /// Rebalance memory over the running guests, as heartbeat does:
    /// `(total - reserved_Dom0_memory) / (running + new)` each. Best effort:
    /// returns the new size, or `None` when disabled or not computable.
    fn adjust_memory(&self, ctx: &Context, dl: &Deadline, new: i64) -> Option<i64> {
        if !self.mem_management {
            return None;
        }
        let run = |args: &[&str]| match self.xl(ctx, dl, args) {
            Ok(o) if o.success() => Some(o.stdout),
            Ok(o) => {
                ocf::warn!("xl {}: {}", args.join(" "), o.message());
                None
            }
            Err(e) => {
                ocf::warn!("{}", e.reason);
                None
            }
        };
        let total = parse_total_memory(&run(&["info"])?)?;
        let running: Vec<ListEntry> = parse_list(&run(&["list"])?)
            .into_iter()
            .filter(|e| e.domid != 0)
            .collect();
        let count = match (running.len() as i64, new) {
            (0, 0) => 1,
            (n, _) => n,
        };
        let mem = (total - self.reserved_dom0) / (count + new);
        for d in &running {
            run(&["mem-set", &d.domid.to_string(), &mem.to_string()]);
        }
        let names: Vec<&str> = running.iter().map(|d| d.name.as_str()).collect();
        ocf::info!(
            "Adjusted memory to: {mem}, for the following {count} domains: {}",
            names.join(" ")
        );
        Some(mem)
    }

    /// Put vCPUs and memory from `xl list` into the resource's utilization
    /// (Pacemaker only; best effort).
    fn update_utilization(&self, ctx: &Context, dl: &Deadline, dom: &str) {
        let Some(instance) = &self.instance else {
            return;
        };
        let Ok(out) = self.xl(ctx, dl, ["list", dom]) else {
            return;
        };
        let Some(entry) = parse_list(&out.stdout).into_iter().next() else {
            return;
        };
        let tools = ctx.tools();
        let mut attrs = Vec::new();
        if self.util_cpu {
            attrs.push(("cpu", entry.vcpus.to_string()));
        }
        if self.util_mem {
            attrs.push(("hv_memory", entry.mem.to_string()));
        }
        for (attr, val) in attrs {
            let Ok(get) = tools.command("crm_resource") else {
                ocf::debug!("crm_resource not found; not setting utilization");
                return;
            };
            let current = get
                .args(["-Q", "-r", instance, "-z", "-g", attr])
                .run(dl)
                .ok();
            if current.as_ref().is_some_and(|o| o.stdout.trim() == val) {
                continue;
            }
            if current
                .as_ref()
                .is_some_and(|o| o.stderr.contains("not connected"))
            {
                ocf::debug!("Unable to get utilization attribute {attr}: cib is not available");
                continue;
            }
            let set = tools.command("crm_resource").map(|c| {
                c.args(["-r", instance, "-z", "-p", attr, "-v", &val])
                    .run(dl)
            });
            match set {
                Ok(Ok(o)) if o.success() => {}
                Ok(Ok(o)) => ocf::warn!(
                    "Unable to set utilization attribute {attr}: {}",
                    o.message()
                ),
                Ok(Err(e)) => ocf::warn!("Unable to set utilization attribute {attr}: {e}"),
                Err(e) => ocf::warn!("{}", e.reason),
            }
        }
    }

    /// The address to migrate to: `node_ip_attribute` of the target node if
    /// set there, else the node name.
    fn migration_address(&self, ctx: &Context, dl: &Deadline, target: &str) -> String {
        let Some(attr) = &self.node_ip_attribute else {
            return target.to_string();
        };
        let cmd = match ctx.tools().command("crm_attribute") {
            Ok(c) => c,
            Err(e) => {
                ocf::warn!("{}; migrating to {target} by name", e.reason);
                return target.to_string();
            }
        };
        match cmd
            .args(["--type", "nodes", "--node", target, "-n", attr, "-G", "-q"])
            .run(dl)
        {
            Ok(o) if o.success() => {
                let v = o.stdout.trim();
                if !v.is_empty() && v != "(null)" {
                    ocf::info!("{target} is using address {v}");
                    return v.to_string();
                }
                target.to_string()
            }
            Ok(o) => {
                ocf::warn!("node attribute {attr} of {target}: {}", o.message());
                target.to_string()
            }
            Err(e) => {
                ocf::warn!("{e}");
                target.to_string()
            }
        }
    }

    /// Shut `dom` down (or press its power button), wait, then destroy it,
    /// all within `dl`.
    fn stop_domain(&self, ctx: &Context, dl: &Deadline, dom: &str) -> Result<(), Failure> {
        let orderly = self
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
            let args: &[&str] = if self.shutdown_acpi {
                &["trigger", dom, "power"]
            } else {
                &["shutdown", dom]
            };
            let asked = match self.xl(ctx, &phase, args) {
                Ok(o) if o.success() => true,
                Ok(o) => {
                    ocf::warn!("xl {} failed: {}", args[0], o.message());
                    false
                }
                Err(e) => {
                    ocf::warn!("{}", e.reason);
                    false
                }
            };
            if asked {
                let gone = phase.wait_for(POLL, || {
                    ocf::debug!("{dom} still not stopped. Waiting...");
                    self.exists(ctx, &phase, dom).ok().filter(|&b| !b)
                });
                if gone.is_some() {
                    ocf::info!("Xen domain {dom} stopped.");
                    return Ok(());
                }
            }
        }
        ocf::warn!("Xen domain {dom} will be destroyed!");
        let gone = dl.wait_for(Duration::from_secs(1), || {
            if let Ok(o) = self.xl(ctx, dl, ["destroy", dom]) {
                if !o.success() {
                    ocf::warn!("xl destroy {dom}: {}", o.message());
                }
            }
            self.exists(ctx, dl, dom).ok().filter(|&b| !b)
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
        let xmfile = PathBuf::from(p.str("xmfile").unwrap_or(DEFAULT_XMFILE));
        let instance = ctx
            .env
            .non_empty("OCF_RESOURCE_INSTANCE")
            .map(str::to_string);
        let record = Record::new(&["Xen", &ctx.instance, &xmfile.to_string_lossy(), "domain"]);
        let recorded = record
            .read(&ctx.env)
            .filter(|n| check_domain_name(n).is_ok());
        let name = Xen::resolve_name(
            p.str("name"),
            &xmfile,
            recorded.as_deref(),
            instance.as_deref(),
        );
        Ok(Xen {
            xmfile,
            name,
            recorded,
            record,
            instance,
            shutdown_timeout: p
                .int("shutdown_timeout")
                .map(|s| Duration::from_secs(s.max(0) as u64)),
            shutdown_acpi: p.bool("shutdown_acpi"),
            mem_management: p.bool("allow_mem_management"),
            reserved_dom0: p.int("reserved_Dom0_memory").unwrap_or(512),
            node_ip_attribute: p.str("node_ip_attribute").map(str::to_string),
            util_cpu: p.bool("autoset_utilization_cpu"),
            util_mem: p.bool("autoset_utilization_hv_memory"),
            monitor_scripts: p
                .str("monitor_scripts")
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        })
    }

    /// xl must be installed, and we must know the domain's name; neither
    /// can be wrong while a domain of ours runs here.
    fn validate(&self, ctx: &Context) -> Result<(), Failure> {
        ctx.tools().require("xl")?;
        self.domain_name()?;
        Ok(())
    }

    fn start(&self, ctx: &Context) -> OcfResult {
        let dom = self.domain_name()?;
        let dl = ctx.deadline();
        if self.exists(ctx, &dl, dom)? {
            ocf::info!("Xen domain {dom} already running.");
            self.remember(ctx, dom);
            return Ok(OcfStatus::Success);
        }
        if !self.xmfile.is_file() {
            return Err(Failure::installed(format!(
                "Config file {} for {dom} does not exist.",
                self.xmfile.display()
            )));
        }
        let mem = self.adjust_memory(ctx, &dl, 1);
        let mut args = vec![
            "create".to_string(),
            self.xmfile.to_string_lossy().into_owned(),
            format!("name=\"{dom}\""),
        ];
        if let Some(m) = mem {
            ocf::info!("New memory for virtual domains: {m}");
            args.push(format!("memory={m}"));
        }
        let out = self.xl(ctx, &dl, &args)?;
        if !out.success() {
            return Err(Failure::generic(format!(
                "xl create {} failed: {}",
                self.xmfile.display(),
                out.message()
            )));
        }
        self.remember(ctx, dom);
        if self.exists_wait(ctx, &dl, dom).is_none() {
            return Err(Failure::generic(format!(
                "Xen domain {dom} was created but is not listed; gave up at the start timeout"
            )));
        }
        if !self.monitor_scripts.is_empty() {
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
        let victim = if self.exists_with_grace(ctx, &dl.reserving(reserve), dom)? {
            Some(dom.to_string())
        } else if self.exists(ctx, &dl, &away)? {
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
                let _ = self.xl(ctx, &dl, ["destroy", dom]);
            }
        }
        self.adjust_memory(ctx, &dl, 0);
        self.forget(ctx);
        Ok(OcfStatus::Success)
    }

    fn monitor(&self, ctx: &Context) -> OcfResult {
        self.check(ctx, true)
    }

    /// `status` (NCS `ocf_status`, rgmanager, admins): monitor without
    /// touching Pacemaker's utilization.
    fn status(&self, ctx: &Context) -> OcfResult {
        self.check(ctx, false)
    }

    fn validate_all(&self, ctx: &Context) -> OcfResult {
        let dom = self.domain_name()?;
        let meta = std::fs::metadata(&self.xmfile).map_err(|e| {
            Failure::installed(format!(
                "Config file {} for {dom}: {e}",
                self.xmfile.display()
            ))
        })?;
        if !meta.is_file() {
            return Err(Failure::installed(format!(
                "Config file {} for {dom} is not a regular file",
                self.xmfile.display()
            )));
        }
        std::fs::File::open(&self.xmfile).map_err(|e| {
            Failure::installed(format!(
                "Config file {} for {dom}: {e}",
                self.xmfile.display()
            ))
        })?;
        let tools = ctx.tools();
        for script in &self.monitor_scripts {
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
        if !self.exists(ctx, &dl, dom)? {
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
        let out = self.xl(ctx, &dl, ["migrate", dom, addr.as_str()])?;
        if !out.success() {
            return Err(Failure::generic(format!(
                "{dom}: xl migrate to {target} failed: {}",
                out.message()
            )));
        }
        self.forget(ctx);
        self.adjust_memory(ctx, &dl, 0);
        ocf::info!("{dom}: xl migrate to {target} succeeded.");
        Ok(OcfStatus::Success)
    }

    fn migrate_from(&self, ctx: &Context) -> OcfResult {
        let dom = self.domain_name()?;
        let wait = ctx.timeout.map(|t| t * 2 / 3).unwrap_or(MIGRATE_FROM_WAIT);
        let dl = ctx.deadline().capped(wait);
        if self.exists_wait(ctx, &dl, dom).is_none() {
            return Err(Failure::generic(format!(
                "{dom}: Not active locally, migration failed!"
            )));
        }
        self.remember(ctx, dom);
        self.adjust_memory(ctx, &ctx.deadline(), 0);
        ocf::info!("{dom}: Active locally, migration successful");
        Ok(OcfStatus::Success)
    }
}

impl Xen {
    /// Poll until `dom` is listed, within `dl`.
    fn exists_wait(&self, ctx: &Context, dl: &Deadline, dom: &str) -> Option<()> {
        dl.wait_for(POLL, || {
            self.exists(ctx, dl, dom).ok().filter(|&b| b).map(|_| ())
        })
    }

    /// monitor / status.
    fn check(&self, ctx: &Context, utilization: bool) -> OcfResult {
        let dom = self.domain_name()?;
        let dl = ctx.deadline();
        let running = if ctx.is_probe() {
            self.exists(ctx, &dl, dom)?
        } else {
            self.exists_with_grace(ctx, &dl, dom)?
        };
        if !running {
            if self.recorded.as_deref() == Some(dom) {
                ocf::error!("Xen domain {dom} stopped");
            }
            return Ok(OcfStatus::NotRunning);
        }
        if utilization && (self.util_cpu || self.util_mem) {
            self.update_utilization(ctx, &dl, dom);
        }
        self.run_monitor_scripts(ctx, &dl)?;
        Ok(OcfStatus::Success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_read_and_expressions_refused() {
        assert_eq!(
            parse_config_name("kernel = \"x\"\nname = \"vm1\"\nmemory = 512\n"),
            ConfigName::Plain("vm1".into())
        );
        assert_eq!(
            parse_config_name("name='my vm' # the guest\n"),
            ConfigName::Plain("my vm".into())
        );
        assert_eq!(
            parse_config_name("  name=\"a\";\n"),
            ConfigName::Plain("a".into())
        );
        assert_eq!(parse_config_name("memory = 512\n"), ConfigName::Absent);
        // not a name line
        assert_eq!(
            parse_config_name("name_suffix = \"x\"\n"),
            ConfigName::Absent
        );
        assert!(matches!(
            parse_config_name("name = \"vm%d\" % 3\n"),
            ConfigName::NotPlain(_)
        ));
        assert!(matches!(
            parse_config_name("name = vm1\n"),
            ConfigName::NotPlain(_)
        ));
        assert!(matches!(
            parse_config_name("name = \"a\"\nname = \"b\"\n"),
            ConfigName::NotPlain(_)
        ));
        assert!(matches!(
            parse_config_name("name = \"unterminated\n"),
            ConfigName::NotPlain(_)
        ));
    }

    #[test]
    fn unsafe_names_are_refused() {
        for ok in ["vm1", "my vm", "web-01.example", "vm_%d", "a'b"] {
            assert_eq!(check_domain_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a\"b",
            "a\\b",
            "a\nb",
            " lead",
            "trail ",
            "-x",
            "42",
            "Domain-0",
            "vm--migratedaway",
            "vm--incoming",
        ] {
            assert!(check_domain_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn xl_list_lines_are_split_from_the_right() {
        let out = "Name                                        ID   Mem VCPUs\tState\tTime(s)\n\
                   Domain-0                                     0  2048     2     r-----     100.5\n\
                   my vm                                        7   512     1     -b----       3.2\n";
        let l = parse_list(out);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].domid, 0);
        assert_eq!(
            l[1],
            ListEntry {
                name: "my vm".into(),
                domid: 7,
                mem: 512,
                vcpus: 1
            }
        );
    }

    #[test]
    fn total_memory_from_xl_info() {
        let info = "host : h\nrelease : 6\ntotal_memory           : 8191\nfree_memory : 100\n";
        assert_eq!(parse_total_memory(info), Some(8191));
        assert_eq!(parse_total_memory("host : h\n"), None);
    }

    #[test]
    fn meta_data_has_the_heartbeat_parameters_and_actions() {
        let xml = META.render();
        for p in [
            "xmfile",
            "name",
            "shutdown_timeout",
            "shutdown_acpi",
            "allow_mem_management",
            "node_ip_attribute",
            "reserved_Dom0_memory",
            "autoset_utilization_cpu",
            "autoset_utilization_hv_memory",
            "monitor_scripts",
        ] {
            assert!(xml.contains(&format!("<parameter name=\"{p}\"")), "{p}");
        }
        assert!(xml.contains("default=\"/etc/xen/vm/MyDomU\""));
        assert!(
            xml.contains("<action name=\"monitor\" depth=\"0\" timeout=\"30s\" interval=\"10s\"/>")
        );
        assert!(xml.contains("<action name=\"migrate_to\" timeout=\"120s\"/>"));
    }
}
