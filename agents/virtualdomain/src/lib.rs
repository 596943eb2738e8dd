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
//!   no crm_resource while nothing changes (heartbeat forks three to six);
//! - `backingfile`: the overlay is created with its backing file's format
//!   (`qemu-img create -F`, which qemu-img 6.1 and later require and
//!   heartbeat does not pass) and named by cutting the config's file name,
//!   not its whole path, at the first dot;
//! - `migration_downtime` is set before the migration (or, where libvirt
//!   only takes it during one, as soon as it runs), not 2 s after its start,
//!   when a short migration is already over.

mod domxml;
pub mod emulator;
pub mod lv;
pub mod uri;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ocf::{
    Action, ActionSpec, AgentMeta, Context, Deadline, Failure, OcfResult, OcfStatus, ParamSpec,
    Params, Record, ResourceAgent,
};
use virt::connect::Connect;
use virt::domain::{Domain, MigrateParameters};
use virt::sys;

use lv::{DomState, LvError};

/// At most this much of stop's time is kept for destroy: libvirt gives QEMU
/// 10 s from SIGTERM to SIGKILL, then cleans up.
const DESTROY_RESERVE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(200);

fn check_absolute(v: &str) -> Result<(), String> {
    if v.starts_with('/') {
        Ok(())
    } else {
        Err("must be an absolute path".into())
    }
}

fn check_absolute_or_empty(v: &str) -> Result<(), String> {
    if v.is_empty() {
        Ok(())
    } else {
        check_absolute(v)
    }
}

fn check_non_negative(v: &str) -> Result<(), String> {
    match v.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(()),
        _ => Err("must be a non-negative number".into()),
    }
}

fn check_port(v: &str) -> Result<(), String> {
    match v.trim().parse::<i64>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(()),
        _ => Err("must be a port number".into()),
    }
}

/// `shutdown_mode`: virsh's words, comma-separated.
pub fn shutdown_flags(mode: &str) -> Result<u32, String> {
    let mut flags = 0;
    for word in mode.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        flags |= match word {
            "acpi" => sys::VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN,
            "agent" => sys::VIR_DOMAIN_SHUTDOWN_GUEST_AGENT,
            "initctl" => sys::VIR_DOMAIN_SHUTDOWN_INITCTL,
            "signal" => sys::VIR_DOMAIN_SHUTDOWN_SIGNAL,
            "paravirt" => sys::VIR_DOMAIN_SHUTDOWN_PARAVIRT,
            other => {
                return Err(format!(
                    "unknown mode '{other}' (acpi, agent, initctl, signal, paravirt)"
                ))
            }
        };
    }
    Ok(flags)
}

fn check_shutdown_mode(v: &str) -> Result<(), String> {
    shutdown_flags(v).map(|_| ())
}

fn check_migrate_options(v: &str) -> Result<(), String> {
    MigrateOptions::parse(v).map(|_| ())
}

/// `migrate_options`, read with virsh's option names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrateOptions {
    pub flags: u32,
    pub migrateuri: Option<String>,
    pub listen_address: Option<String>,
    pub dname: Option<String>,
    pub disks_port: Option<i32>,
    pub compression: Option<String>,
    pub parallel_connections: Option<i32>,
}

impl MigrateOptions {
    /// Words split on white space, as heartbeat's unquoted `$migrate_opts`;
    /// `--opt=value` and `--opt value` both work.
    pub fn parse(text: &str) -> Result<MigrateOptions, String> {
        let mut o = MigrateOptions::default();
        let mut words = text.split_whitespace();
        while let Some(w) = words.next() {
            let (opt, inline) = match w.split_once('=') {
                Some((a, b)) => (a, Some(b.to_string())),
                None => (w, None),
            };
            let flag = match opt {
                "--live" => Some(sys::VIR_MIGRATE_LIVE),
                "--p2p" => Some(sys::VIR_MIGRATE_PEER2PEER),
                "--tunnelled" => Some(sys::VIR_MIGRATE_TUNNELLED),
                "--persistent" => Some(sys::VIR_MIGRATE_PERSIST_DEST),
                "--undefinesource" => Some(sys::VIR_MIGRATE_UNDEFINE_SOURCE),
                "--suspend" => Some(sys::VIR_MIGRATE_PAUSED),
                "--copy-storage-all" => Some(sys::VIR_MIGRATE_NON_SHARED_DISK),
                "--copy-storage-inc" => Some(sys::VIR_MIGRATE_NON_SHARED_INC),
                "--change-protection" => Some(sys::VIR_MIGRATE_CHANGE_PROTECTION),
                "--unsafe" => Some(sys::VIR_MIGRATE_UNSAFE),
                "--offline" => Some(sys::VIR_MIGRATE_OFFLINE),
                "--compressed" => Some(sys::VIR_MIGRATE_COMPRESSED),
                "--abort-on-error" => Some(sys::VIR_MIGRATE_ABORT_ON_ERROR),
                "--auto-converge" => Some(sys::VIR_MIGRATE_AUTO_CONVERGE),
                "--postcopy" => Some(sys::VIR_MIGRATE_POSTCOPY),
                "--tls" => Some(sys::VIR_MIGRATE_TLS),
                "--parallel" => Some(sys::VIR_MIGRATE_PARALLEL),
                "--direct" => Some(0),
                _ => None,
            };
            if let Some(f) = flag {
                if inline.is_some() {
                    return Err(format!("option {opt} takes no value"));
                }
                o.flags |= f;
                continue;
            }
            let mut value = || -> Result<String, String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => words
                        .next()
                        .map(str::to_string)
                        .ok_or_else(|| format!("option {opt} needs a value")),
                }
            };
            let int = |s: String| {
                s.parse::<i32>()
                    .map_err(|_| format!("{opt}: '{s}' is not a number"))
            };
            match opt {
                "--migrateuri" => o.migrateuri = Some(value()?),
                "--listen-address" => o.listen_address = Some(value()?),
                "--dname" => o.dname = Some(value()?),
                "--disks-port" => o.disks_port = Some(int(value()?)?),
                "--comp-methods" => o.compression = Some(value()?),
                "--parallel-connections" => o.parallel_connections = Some(int(value()?)?),
                other => return Err(format!("unsupported migrate option '{other}'")),
            }
        }
        Ok(o)
    }
}

fn check_migration_user(v: &str) -> Result<(), String> {
    if uri::valid_user(v) {
        Ok(())
    } else {
        Err("must match ^[a-z][-a-z0-9]*$".into())
    }
}

static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("config")
        .required()
        .unique()
        .check(check_absolute)
        .short("Virtual domain configuration file")
        .long(
            "Absolute path to the libvirt configuration file, for this virtual \
             domain. The domain name is read from its <name> element.",
        ),
    ParamSpec::string("hypervisor")
        .short("Hypervisor URI")
        .long("Hypervisor URI to connect to. When unset, libvirt's default URI is used (what 'virsh uri' prints)."),
    ParamSpec::boolean("force_stop")
        .default("0")
        .short("Always force shutdown on stop")
        .long(
            "Always forcefully shut down (\"destroy\") the domain on stop. The \
             default behavior is to resort to a forceful shutdown only after a \
             graceful shutdown attempt has failed. Cannot be combined with snapshot.",
        ),
    ParamSpec::string("migration_transport")
        .default("")
        .short("Remote hypervisor transport")
        .long(
            "Transport used to connect to the remote hypervisor while migrating: \
             inserted as '+transport' into the scheme of the hypervisor URI \
             (e.g. ssh, tcp, tls).",
        ),
    ParamSpec::string("migration_user")
        .check(check_migration_user)
        .short("Remote username for the remoteuri")
        .long("User name put in the derived remote URI (user@node). Ignored when remoteuri is set."),
    ParamSpec::integer("migration_downtime")
        .default("0")
        .check(check_non_negative)
        .short("Live migration downtime")
        .long("Maximum tolerable downtime in milliseconds, set 2 s after the live migration started. 0: libvirt's default."),
    ParamSpec::integer("migration_speed")
        .default("0")
        .check(check_non_negative)
        .short("Live migration speed")
        .long("Maximum migration bandwidth in MiB/s. 0: unlimited."),
    ParamSpec::string("migration_network_suffix")
        .default("")
        .short("Migration network host name suffix")
        .long(
            "Suffix added to the first label of the target node's name to reach \
             a dedicated migration network, e.g. '-mig' turns node2.example.com \
             into node2-mig.example.com, in both the remote and the migrate URI.",
        ),
    ParamSpec::string("migrateuri")
        .short("Custom migrateuri for migration state transfer")
        .long(
            "Migrate URI for the memory transfer; '%n' stands for the target \
             node. When set, migration_network_suffix, migrateport and a \
             --migrateuri in migrate_options are ignored.",
        ),
    ParamSpec::string("migrate_options")
        .check(check_migrate_options)
        .short("live migrate options")
        .long(
            "Extra virsh-style migrate options, e.g. '--p2p --listen-address \
             127.0.0.1', mapped to libvirt flags and parameters. May contain \
             --migrateuri=URI ('%n' for the target node).",
        ),
    ParamSpec::string("monitor_scripts")
        .default("")
        .short("space-separated list of monitor scripts")
        .long(
            "Scripts run on every monitor of a running domain; any failure makes \
             the monitor fail. Start and migrate_from wait for them to succeed.",
        ),
    ParamSpec::boolean("autoset_utilization_cpu")
        .default("true")
        .short("Enable auto-setting the CPU utilization of the resource")
        .long("Set the 'cpu' utilization attribute to the domain's vCPU count on monitor."),
    ParamSpec::boolean("autoset_utilization_host_memory")
        .default("true")
        .short("Enable auto-setting the host_memory utilization of the resource")
        .long("Set the 'host_memory' utilization attribute to the domain's memory (MiB) on monitor."),
    ParamSpec::boolean("autoset_utilization_hv_memory")
        .default("true")
        .short("Enable auto-setting the hv_memory utilization of the resource")
        .long("Set the 'hv_memory' utilization attribute to the domain's memory (MiB) on monitor."),
    ParamSpec::boolean("unset_utilization_cpu")
        .default("false")
        .short("Enable auto-removing the CPU utilization of the resource")
        .long("Remove the 'cpu' utilization attribute on monitor."),
    ParamSpec::boolean("unset_utilization_host_memory")
        .default("false")
        .short("Enable auto-removing the host_memory utilization of the resource")
        .long("Remove the 'host_memory' utilization attribute on monitor."),
    ParamSpec::boolean("unset_utilization_hv_memory")
        .default("false")
        .short("Enable auto-removing the hv_memory utilization of the resource")
        .long("Remove the 'hv_memory' utilization attribute on monitor."),
    ParamSpec::integer("migrateport")
        .check(check_port)
        .short("Port for migrateuri")
        .long("Port in the qemu migrate URI built from migration_network_suffix. If unset, a random high port (49152-49215)."),
    ParamSpec::string("remoteuri")
        .short("Custom remoteuri to communicate with a remote hypervisor")
        .long(
            "URI of the target's hypervisor for migration; '%n' stands for the \
             target node. When set, migration_transport, migration_user and \
             migration_network_suffix are not used for it.",
        ),
    ParamSpec::boolean("save_config_on_stop")
        .default("false")
        .short("Save running VM's config back to its config file")
        .long(
            "Write the domain's current (inactive, secure) XML back to config on \
             stop, migrate_to, migrate_from and monitor.",
        ),
    ParamSpec::boolean("sync_config_on_stop")
        .default("false")
        .short("Save running VM's config back to its config file")
        .long("Like save_config_on_stop, then run 'csync2 -x config' to spread it."),
    ParamSpec::string("snapshot")
        .default("")
        .short("Restore state on start/stop")
        .long(
            "Directory: stop saves the domain's state to DIR/NAME.state instead \
             of shutting it down, start restores it from there (and removes it).",
        ),
    ParamSpec::string("backingfile")
        .default("")
        .check(check_absolute_or_empty)
        .short("If the VM is wanted to work with Copy-On-Write mode, this is the backing file to use (with its full path)")
        .long(
            "With a backing file, start creates CONFIG-without-extension.qcow2 on \
             top of it (qemu-img), defines the domain and starts it.",
        ),
    ParamSpec::boolean("stateless")
        .default("false")
        .short("If set to true, the (<vmname>.qcow2) file will be re-created at each start, based on the backing file (if defined)")
        .long("Re-create the copy-on-write image at every start. Needs backingfile."),
    ParamSpec::string("copyindirs")
        .default("")
        .short("List of directories for the virt-copy-in before booting the VM stateless mode.")
        .long("Space-separated directories copied into the stateless domain (virt-copy-in) before it boots."),
    ParamSpec::string("shutdown_mode")
        .default("")
        .check(check_shutdown_mode)
        .short("Instruct virsh to use specific shutdown mode")
        .long("Comma-separated shutdown methods: acpi, agent, initctl, signal, paravirt. Empty: the hypervisor's choice."),
    ParamSpec::boolean("start_resources")
        .default("false")
        .short("Ensure the needed virtual storage pools and networks are started")
        .long("Start the storage pools and networks the domain XML refers to, locally on start and on the target before a migration."),
    ParamSpec::one_of("migration_mode", &["live", "paused"])
        .default("live")
        .short("How migrate_to moves the domain")
        .long(
            "live: live migration (heartbeat's only mode). paused: suspend the \
             domain, migrate it while paused, resume it on the target (offline \
             migration, rgmanager's migrate=\"pause\").",
        ),
];

static ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", 90),
    ActionSpec::new("stop", 90),
    ActionSpec::new("status", 30).interval(10).depth(0),
    ActionSpec::new("monitor", 30).interval(10).depth(0),
    ActionSpec::new("migrate_from", 60),
    ActionSpec::new("migrate_to", 120),
    ActionSpec::new("meta-data", 5),
    ActionSpec::new("validate-all", 5),
];

pub static META: AgentMeta = AgentMeta {
    name: "VirtualDomain",
    version: "1.1",
    shortdesc: "Manages virtual domains through the libvirt virtualization framework",
    longdesc: "Resource agent for a virtual domain (a.k.a. domU, virtual machine, \
               virtual environment etc., depending on context) managed by libvirtd, \
               through the libvirt API. Drop-in replacement for ocf:heartbeat:VirtualDomain. \
               validate-all with OCF_CHECK_LEVEL=10 also warns about a domain that \
               cannot migrate safely.",
    params: PARAMS,
    actions: ACTIONS,
    special: None,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MigrationMode {
    Live,
    Paused,
}

/// One VirtualDomain resource instance.
#[derive(Debug)]
pub struct VirtualDomain {
    config: PathBuf,
    /// The config's text and parsed form, when readable.
    xml: Option<(String, domxml::DomainXml)>,
    /// Why the config could not be used.
    config_problem: Option<String>,
    /// The domain name: from config, else from our record of a start.
    name: Option<String>,
    /// The domain name this instance started (for when the config is gone).
    record: Record,
    /// The utilization last set through crm_resource.
    util: Record,
    hypervisor: Option<String>,
    force_stop: bool,
    migration_transport: Option<String>,
    migration_user: Option<String>,
    migration_downtime: u64,
    migration_speed: u64,
    migration_network_suffix: Option<String>,
    migrateuri: Option<String>,
    migrate_options: MigrateOptions,
    monitor_scripts: Vec<String>,
    autoset: [bool; 3],
    unset: [bool; 3],
    migrateport: i64,
    remoteuri: Option<String>,
    save_config: bool,
    sync_config: bool,
    snapshot: Option<PathBuf>,
    backingfile: Option<PathBuf>,
    stateless: bool,
    copyindirs: Vec<String>,
    shutdown_flags: u32,
    start_resources: bool,
    mode: MigrationMode,
    /// Never destroy: a graceful stop that does not finish fails (rgmanager
    /// vm.sh's `no_kill`).
    no_destroy: bool,
}

fn non_empty(p: &Params, name: &str) -> Option<String> {
    p.str(name).filter(|v| !v.is_empty()).map(str::to_string)
}

const UTIL_NAMES: [&str; 3] = ["cpu", "host_memory", "hv_memory"];

/// What the monitor does with one utilization attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Util {
    Set,
    Remove,
    Leave,
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
        self.util.clear(&ctx.env);
    }

    fn open(&self, dl: &Deadline) -> Result<Connect, LvError> {
        lv::open(self.hypervisor.as_deref(), dl)
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
            .run_scripts("monitor script", &self.monitor_scripts, dl)
    }

    /// Write the domain's inactive XML back to `config` (atomically).
    fn save_config(&self, ctx: &Context, dom: &Domain, dl: &Deadline) {
        if !self.save_config {
            return;
        }
        let d = dom.clone();
        let flags = sys::VIR_DOMAIN_XML_INACTIVE | sys::VIR_DOMAIN_XML_SECURE;
        let xml = match lv::bounded(dl, "dumping the domain XML", move || d.xml_desc(flags)) {
            Ok(x) => x,
            Err(e) => {
                ocf::warn!("save_config: {e}");
                return;
            }
        };
        if domxml::parse(&xml).is_err() {
            ocf::warn!("save_config: libvirt returned XML we cannot read; config left alone");
            return;
        }
        if self.xml.as_ref().map(|(t, _)| t.as_str()) == Some(xml.as_str()) {
            return;
        }
        // heartbeat rewrites the file in place (`cat >`), keeping its mode;
        // here a new file with the old one's mode replaces it atomically
        let tmp = self.config.with_extension("ra-rs-tmp");
        let mode = std::fs::metadata(&self.config).map(|m| m.permissions());
        let res = std::fs::write(&tmp, &xml)
            .and_then(|_| match mode {
                Ok(m) => std::fs::set_permissions(&tmp, m),
                Err(_) => Ok(()),
            })
            .and_then(|_| std::fs::rename(&tmp, &self.config));
        match res {
            Ok(()) => ocf::info!(
                "saved the domain configuration to {}",
                self.config.display()
            ),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                ocf::warn!("cannot save config {}: {e}", self.config.display());
                return;
            }
        }
        if self.sync_config {
            let out = ctx
                .tools()
                .command("csync2")
                .and_then(|c| Ok(c.arg("-x").arg(&self.config).run(dl)?));
            match out {
                Ok(o) if o.success() => {}
                Ok(o) => ocf::warn!("csync2 -x {}: {}", self.config.display(), o.message()),
                Err(f) => ocf::warn!("{}", f.reason),
            }
        }
    }

    /// Start the storage pools and networks the XML names, on `conn`.
    fn ensure_resources(&self, conn: &Connect, dl: &Deadline) -> Result<(), Failure> {
        if !self.start_resources {
            return Ok(());
        }
        let Some((_, parsed)) = &self.xml else {
            return Ok(());
        };
        for pool in &parsed.pools {
            let c = conn.clone();
            let p = pool.clone();
            lv::bounded(dl, "starting a storage pool", move || {
                let sp = c.lookup_storage_pool_by_name(&p)?;
                if sp.is_active()? {
                    sp.refresh(0)
                } else {
                    sp.create(0).map(|_| ())
                }
            })
            .map_err(|e| lv_failure(&format!("storage pool {pool}"), &e))?;
        }
        for net in &parsed.networks {
            let c = conn.clone();
            let n = net.clone();
            lv::bounded(dl, "starting a network", move || {
                let nw = c.lookup_network_by_name(&n)?;
                if !nw.is_active()? {
                    nw.create()?;
                }
                Ok(())
            })
            .map_err(|e| lv_failure(&format!("network {net}"), &e))?;
        }
        Ok(())
    }

    /// What each utilization attribute should become, as heartbeat decides
    /// it: `autoset_utilization_X` wins, else `unset_utilization_X` removes
    /// it, else it is left alone.
    fn utilization_plan(&self) -> [Util; 3] {
        std::array::from_fn(|i| {
            if self.autoset[i] {
                Util::Set
            } else if self.unset[i] {
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
    fn update_utilization(
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
    fn refresh_utilization(&self, ctx: &Context, conn: &Connect, dom: &str, dl: &Deadline) {
        self.util.clear(&ctx.env);
        if let Ok(Some(d)) = lv::lookup(conn, dom, dl) {
            self.update_utilization(ctx, &d, None, dl);
        }
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

    fn snapshot_file(&self, dom: &str) -> Option<PathBuf> {
        self.snapshot
            .as_ref()
            .map(|d| d.join(format!("{dom}.state")))
    }

    /// heartbeat's verify_undefined: a persistent definition of the domain
    /// would shadow our transient one; undefine it, keeping the config file
    /// (libvirt may delete it when it lives in its own directory).
    fn undefine_stale(&self, conn: &Connect, dom: &str, dl: &Deadline) -> Result<(), Failure> {
        let Some(d) = lv::lookup(conn, dom, dl).map_err(|e| lv_failure("lookup", &e))? else {
            return Ok(());
        };
        let keep = std::fs::read(&self.config).ok();
        let dd = d.clone();
        let r = lv::bounded(dl, "undefining the stale definition", move || {
            if dd.is_persistent()? {
                dd.undefine().map(|_| true)
            } else {
                Ok(false)
            }
        });
        match r {
            Ok(true) => ocf::info!("{dom}: undefined the stale persistent definition"),
            Ok(false) => {}
            Err(e) => ocf::warn!("{dom}: could not undefine: {e}"),
        }
        if let Some(bytes) = keep {
            if !self.config.exists() {
                let _ = std::fs::write(&self.config, bytes);
            }
        }
        Ok(())
    }

    fn create(
        &self,
        ctx: &Context,
        conn: &Connect,
        dom: &str,
        dl: &Deadline,
    ) -> Result<(), Failure> {
        let (xml, _) = self.xml.as_ref().ok_or_else(|| {
            Failure::installed(
                self.config_problem
                    .clone()
                    .unwrap_or_else(|| "config not readable".into()),
            )
        })?;
        let classify = |what: &str, e: LvError| {
            if e.bad_config() {
                Failure::configured(format!("{what}: {e}"))
            } else {
                lv_failure(what, &e)
            }
        };
        let Some(backing) = &self.backingfile else {
            let c = conn.clone();
            let x = xml.clone();
            lv::bounded(dl, "creating the domain", move || {
                c.create_domain_xml(&x, 0)
            })
            .map_err(|e| classify(&format!("failed to start {dom}"), e))?;
            return Ok(());
        };
        let image = overlay_path(&self.config);
        let fresh = self.stateless || std::fs::metadata(&image).map_or(true, |m| m.len() == 0);
        if fresh {
            let _ = std::fs::remove_file(&image);
            let format = backing_format(ctx, backing, dl)?;
            let out = ctx
                .tools()
                .command("qemu-img")?
                .args(["create", "-f", "qcow2", "-F", &format, "-b"])
                .arg(backing)
                .arg(&image)
                .run(dl)?;
            if !out.success() {
                return Err(Failure::generic(format!(
                    "Failed qemu-img create {} with backing file {}: {}",
                    image.display(),
                    backing.display(),
                    out.message()
                )));
            }
            ocf::info!(
                "{dom}: created {} over {}",
                image.display(),
                backing.display()
            );
        }
        let c = conn.clone();
        let x = xml.clone();
        let d = lv::bounded(dl, "defining the domain", move || c.define_domain_xml(&x))
            .map_err(|e| classify(&format!("failed to define {dom}"), e))?;
        // heartbeat copies the directories in whenever it has just created
        // the image (every stateless start, or the first one)
        if fresh && !self.copyindirs.is_empty() {
            let out = ctx
                .tools()
                .command("virt-copy-in")?
                .arg("-d")
                .arg(dom)
                .args(&self.copyindirs)
                .arg("/")
                .run(dl)?;
            if !out.success() {
                return Err(Failure::generic(format!(
                    "Failed on virt-copy-in command {dom}: {}",
                    out.message()
                )));
            }
        }
        lv::bounded(dl, "starting the domain", move || d.create().map(|_| ()))
            .map_err(|e| classify(&format!("failed to start {dom}"), e))?;
        Ok(())
    }

    /// Wait until `dom` is active here and its monitor scripts pass.
    fn wait_active(&self, ctx: &Context, conn: &Connect, dom: &str, dl: &Deadline) -> Option<()> {
        dl.wait_for(POLL, || {
            let st = lv::state(conn, dom, dl).ok()?;
            if !st.active() {
                return None;
            }
            self.run_monitor_scripts(ctx, dl).ok()
        })
    }

    /// Destroy `dom` until it is off, within `dl`.
    fn destroy(&self, conn: &Connect, dom: &str, dl: &Deadline) -> Result<(), Failure> {
        ocf::info!("Issuing forced shutdown (destroy) request for domain {dom}.");
        let mut last = String::new();
        let off = dl.wait_for(Duration::from_millis(500), || {
            let d = match lv::lookup(conn, dom, dl) {
                Ok(None) => return Some(()),
                Ok(Some(d)) => d,
                Err(e) => {
                    last = e.to_string();
                    return None;
                }
            };
            match lv::dom_state(&d, dl) {
                Ok(DomState::Off) => return Some(()),
                Ok(_) => {}
                Err(e) => last = e.to_string(),
            }
            let dd = d.clone();
            match lv::bounded(dl, "destroying the domain", move || dd.destroy()) {
                Ok(()) => {}
                Err(e) if e.no_domain() || e.invalid_operation() => {}
                Err(e) => {
                    ocf::warn!("destroy {dom}: {e}");
                    last = e.to_string();
                }
            }
            matches!(lv::dom_state(&d, dl), Ok(DomState::Off)).then_some(())
        });
        off.ok_or_else(|| {
            Failure::generic(format!(
                "{dom} is still running after destroy; giving up at the stop timeout ({last})"
            ))
        })
    }

    /// Save the domain's state to the snapshot file (which stops it).
    fn save_snapshot(&self, d: &Domain, file: &Path, dl: &Deadline) -> Result<(), LvError> {
        let path = std::ffi::CString::new(file.as_os_str().as_encoded_bytes())
            .map_err(|_| LvError::TimedOut("snapshot path holds a NUL byte".into()))?;
        let dd = d.clone();
        lv::bounded(dl, "saving the domain state", move || {
            // SAFETY: `dd` keeps the domain referenced; `path` is a valid C
            // string for the duration of the call.
            let rc = unsafe { sys::virDomainSave(dd.as_ptr(), path.as_ptr()) };
            if rc < 0 {
                Err(virt::error::Error::last_error())
            } else {
                Ok(())
            }
        })
    }

    /// `migration_downtime`: the longest pause of the guest at the end of
    /// a live migration. heartbeat sets it 2 s after the migration started
    /// (`virsh migrate-setmaxdowntime`), which misses a migration that is
    /// over sooner. libvirt 3.x and later take it before the migration (a
    /// QEMU migration parameter, used by the next migration); an older one
    /// only while the migration job runs, so on "no migration"
    /// (VIR_ERR_OPERATION_INVALID) a thread retries until the job exists.
    /// The caller flags the end of the migration and joins the thread.
    fn set_downtime(
        &self,
        d: &Domain,
        dl: &Deadline,
    ) -> Option<(
        std::sync::Arc<std::sync::atomic::AtomicBool>,
        std::thread::JoinHandle<()>,
    )> {
        let ms = self.migration_downtime;
        if ms == 0 {
            return None;
        }
        let dd = d.clone();
        let first = lv::bounded(dl, "setting the migration downtime", move || {
            dd.migrate_set_max_downtime(ms, 0)
        });
        match first {
            Ok(()) => {
                ocf::info!("migration downtime set to {ms} ms");
                return None;
            }
            Err(e) if e.invalid_operation() => {
                ocf::debug!("migration downtime: {e}; setting it once the migration runs")
            }
            Err(e) => {
                ocf::warn!("cannot set migration downtime: {e}");
                return None;
            }
        }
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let over = done.clone();
        let dd = d.clone();
        let dl = *dl;
        let setter = std::thread::spawn(move || loop {
            match dd.migrate_set_max_downtime(ms, 0) {
                Ok(()) => {
                    ocf::info!("migration downtime set to {ms} ms");
                    return;
                }
                Err(e) => {
                    if over.load(std::sync::atomic::Ordering::Relaxed) || dl.expired() {
                        ocf::warn!("cannot set migration downtime: {e}");
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        });
        Some((done, setter))
    }

    fn uri_params<'a>(&'a self, hypervisor: &'a str) -> uri::UriParams<'a> {
        uri::UriParams {
            hypervisor,
            remoteuri: self.remoteuri.as_deref(),
            migrateuri: self.migrateuri.as_deref(),
            migration_transport: self.migration_transport.as_deref(),
            migration_user: self.migration_user.as_deref(),
            migration_network_suffix: self.migration_network_suffix.as_deref(),
            options_migrateuri: self.migrate_options.migrateuri.as_deref(),
            migrateport: self.migrateport,
        }
    }
}

impl ResourceAgent for VirtualDomain {
    fn meta() -> &'static AgentMeta {
        &META
    }

    fn configure(p: Params, ctx: &Context) -> Result<Self, Failure> {
        virt::error::clear_error_callback();
        let config = PathBuf::from(p.str("config").unwrap_or_default());
        let force_stop = p.bool("force_stop");
        let snapshot = non_empty(&p, "snapshot").map(PathBuf::from);
        if force_stop && snapshot.is_some() {
            return Err(Failure::configured(
                "The 'force_stop' and 'snapshot' options cannot be used together.",
            ));
        }
        let backingfile = non_empty(&p, "backingfile").map(PathBuf::from);
        let stateless = p.bool("stateless");
        if stateless && backingfile.is_none() {
            return Err(Failure::configured(
                "Stateless functionality can't be achieved without a backing file.",
            ));
        }
        let migrate_options = MigrateOptions::parse(p.str("migrate_options").unwrap_or(""))
            .map_err(|e| Failure::configured(format!("parameter 'migrate_options': {e}")))?;
        let record = Record::new(&[
            "VirtualDomain",
            &ctx.instance,
            &config.to_string_lossy(),
            "domain",
        ]);
        let util = Record::new(&["VirtualDomain", &ctx.instance, "utilization"]);
        let (xml, mut config_problem) = match std::fs::read_to_string(&config) {
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
        let recorded = record
            .read(&ctx.env)
            .filter(|n| !n.is_empty() && !n.contains('\n'));
        let name = match &xml {
            Some((_, parsed)) => parsed.name.clone(),
            None => recorded.clone(),
        };
        if xml.is_none() && name.is_some() {
            if let Some(problem) = config_problem.take() {
                ocf::warn!("{problem}; using the domain name recorded at start");
                config_problem = Some(problem);
            }
        }
        let words = |n: &str| -> Vec<String> {
            p.str(n)
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        Ok(VirtualDomain {
            xml,
            config_problem,
            name,
            record,
            util,
            hypervisor: non_empty(&p, "hypervisor"),
            force_stop,
            migration_transport: non_empty(&p, "migration_transport"),
            migration_user: non_empty(&p, "migration_user"),
            migration_downtime: p.int("migration_downtime").unwrap_or(0).max(0) as u64,
            migration_speed: p.int("migration_speed").unwrap_or(0).max(0) as u64,
            migration_network_suffix: non_empty(&p, "migration_network_suffix"),
            migrateuri: non_empty(&p, "migrateuri"),
            migrate_options,
            monitor_scripts: words("monitor_scripts"),
            autoset: UTIL_NAMES.map(|n| p.bool(&format!("autoset_utilization_{n}"))),
            unset: UTIL_NAMES.map(|n| p.bool(&format!("unset_utilization_{n}"))),
            migrateport: p
                .int("migrateport")
                .unwrap_or_else(|| 49152 + i64::from(std::process::id() % 64)),
            remoteuri: non_empty(&p, "remoteuri"),
            save_config: p.bool("save_config_on_stop") || p.bool("sync_config_on_stop"),
            sync_config: p.bool("sync_config_on_stop"),
            snapshot,
            backingfile,
            stateless,
            copyindirs: words("copyindirs"),
            shutdown_flags: shutdown_flags(p.str("shutdown_mode").unwrap_or(""))
                .map_err(Failure::configured)?,
            start_resources: p.bool("start_resources"),
            mode: if p.str("migration_mode") == Some("paused") {
                MigrationMode::Paused
            } else {
                MigrationMode::Live
            },
            config,
            no_destroy: false,
        })
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
        let reserve = if self.no_destroy {
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
        if !self.force_stop && st != DomState::Crashed {
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
                let flags = self.shutdown_flags;
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
        if !off && self.no_destroy && st != DomState::Crashed {
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
        if let Some(s) = &self.snapshot {
            if !s.is_dir() {
                return Err(Failure::installed(format!(
                    "snapshot directory {} does not exist",
                    s.display()
                )));
            }
        }
        if let Some(b) = &self.backingfile {
            if !b.is_file() {
                return Err(Failure::installed(format!(
                    "backing file {} does not exist",
                    b.display()
                )));
            }
        }
        let tools = ctx.tools();
        for script in &self.monitor_scripts {
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
        let dom = self.name()?;
        let dl = ctx.deadline();
        let target = ctx.migrate_target.as_deref().ok_or_else(|| {
            Failure::generic(format!(
                "{dom}: migrate_to needs the target node (OCF_RESKEY_CRM_meta_migrate_target)"
            ))
        })?;
        let conn = self
            .open(&dl)
            .map_err(|e| lv_failure("cannot connect to libvirt", &e))?;
        let d = match lv::lookup(&conn, dom, &dl).map_err(|e| lv_failure(dom, &e))? {
            Some(d) if lv::dom_state(&d, &dl).is_ok_and(|s| s.active()) => d,
            _ => {
                return Err(Failure::generic(format!(
                    "{dom}: migrate_to: Not active locally!"
                )))
            }
        };
        let hypervisor = match &self.hypervisor {
            Some(h) => h.clone(),
            None => {
                let c = conn.clone();
                lv::bounded(&dl, "libvirt URI", move || c.uri())
                    .map_err(|e| lv_failure("cannot read the hypervisor URI", &e))?
            }
        };
        let uris = uri::migration_uris(&self.uri_params(&hypervisor), target);
        self.save_config(ctx, &d, &dl);
        let t0 = std::time::Instant::now();
        let dconn = lv::open(Some(&uris.remote), &dl)
            .map_err(|e| lv_failure(&format!("{dom}: cannot connect to {}", uris.remote), &e))?;
        self.ensure_resources(&dconn, &dl)?;
        if self.migration_speed > 0 {
            ocf::info!(
                "{dom}: Setting live migration speed limit for {dom} (using: migrate-setspeed {}).",
                self.migration_speed
            );
        }
        let o = &self.migrate_options;
        let mut flags = o.flags;
        if self.mode == MigrationMode::Live {
            flags |= sys::VIR_MIGRATE_LIVE;
        } else {
            flags &= !sys::VIR_MIGRATE_LIVE;
            let dd = d.clone();
            lv::bounded(&dl, "suspending the domain", move || dd.suspend())
                .map_err(|e| lv_failure(&format!("{dom}: cannot suspend for migration"), &e))?;
            ocf::info!("{dom}: suspended for offline migration");
        }
        let params = MigrateParameters {
            uri: uris.migrate.clone(),
            bandwidth: (self.migration_speed > 0).then_some(self.migration_speed),
            listen_address: o.listen_address.clone(),
            dest_name: o.dname.clone(),
            disks_port: o.disks_port,
            compression: o.compression.clone(),
            parallel_connections: o.parallel_connections,
            ..Default::default()
        };
        ocf::info!(
            "{dom}: Starting {} migration to {target} (remote URI {}, migrate URI {}).",
            if self.mode == MigrationMode::Live {
                "live"
            } else {
                "offline"
            },
            uris.remote,
            uris.migrate.as_deref().unwrap_or("(libvirt's choice)")
        );
        let downtime = self.set_downtime(&d, &dl);
        let dd = d.clone();
        let dc = dconn.clone();
        let peer2peer = flags & sys::VIR_MIGRATE_PEER2PEER != 0;
        let remote = uris.remote.clone();
        let result = lv::bounded(&dl, "migration", move || {
            if peer2peer {
                dd.migrate_to_uri3(Some(&remote), params, flags)
                    .map(|_| None)
            } else {
                dd.migrate3(&dc, params, flags).map(Some)
            }
        });
        if let Some((done, setter)) = downtime {
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            // The setter may sit in a libvirt call that does not answer:
            // wait for it only inside the deadline, else leave it behind.
            let finished = dl.wait_for(Duration::from_millis(20), || {
                setter.is_finished().then_some(())
            });
            if finished.is_some() {
                let _ = setter.join();
            }
        }
        let moved = match result {
            Ok(m) => m,
            Err(e) => {
                if self.mode == MigrationMode::Paused {
                    let dd = d.clone();
                    let _ = lv::bounded(&dl, "resuming", move || dd.resume());
                }
                if matches!(e, LvError::TimedOut(_)) {
                    let dd = d.clone();
                    let _ = lv::dom_call(
                        &dd,
                        &dl.capped(Duration::from_secs(2)),
                        "aborting the migration",
                        |p, _| unsafe { sys::virDomainAbortJob(p) },
                        0,
                    );
                }
                return Err(lv_failure(
                    &format!("{dom}: migration to {target} failed"),
                    &e,
                ));
            }
        };
        if self.mode == MigrationMode::Paused {
            let resumed = match moved {
                Some(nd) => lv::bounded(&dl, "resuming on the target", move || nd.resume()),
                None => {
                    let c = dconn.clone();
                    let n = dom.to_string();
                    lv::bounded(&dl, "resuming on the target", move || {
                        c.lookup_domain_by_name(&n)?.resume()
                    })
                }
            };
            if let Err(e) = resumed {
                ocf::warn!("{dom}: resuming on {target} failed ({e}); migrate_from will retry");
            }
        }
        self.forget(ctx);
        ocf::info!(
            "{dom}: migration to {target} succeeded ({} ms).",
            t0.elapsed().as_millis()
        );
        Ok(OcfStatus::Success)
    }

    fn migrate_from(&self, ctx: &Context) -> OcfResult {
        let dom = self.name()?;
        let dl = ctx.deadline();
        let source = ctx.migrate_source.as_deref().unwrap_or("?");
        let conn = self
            .open_retry(&dl)
            .map_err(|e| lv_failure("cannot connect to libvirt", &e))?;
        if self.wait_active(ctx, &conn, dom, &dl).is_none() {
            return Err(Failure::generic(format!(
                "{dom}: Not active locally, migration from {source} failed!"
            )));
        }
        if let Ok(Some(d)) = lv::lookup(&conn, dom, &dl) {
            if self.mode == MigrationMode::Paused
                && lv::dom_state(&d, &dl).is_ok_and(|s| s == DomState::Paused)
            {
                let dd = d.clone();
                lv::bounded(&dl, "resuming", move || dd.resume())
                    .map_err(|e| lv_failure(&format!("{dom}: cannot resume"), &e))?;
            }
            self.save_config(ctx, &d, &dl);
        }
        self.remember(ctx, dom);
        self.refresh_utilization(ctx, &conn, dom, &dl);
        ocf::info!("{dom}: live migration from {source} succeeded.");
        Ok(OcfStatus::Success)
    }
}

/// The copy-on-write image of a `backingfile` domain: heartbeat's
/// `${config%%.*}.qcow2`, cut at the first dot of the file name only (not
/// at a dot in a directory name): `/etc/vm.d/web.prod.xml` gives
/// `/etc/vm.d/web.qcow2`.
pub fn overlay_path(config: &Path) -> PathBuf {
    let name = config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = match name.char_indices().find(|&(i, c)| c == '.' && i > 0) {
        Some((i, _)) => &name[..i],
        None => &name[..],
    };
    config.with_file_name(format!("{stem}.qcow2"))
}

/// The format of `backing` as `qemu-img info` sees it: qemu-img (6.1 and
/// later) refuses an overlay without its backing format (`-F`), which
/// heartbeat does not give.
fn backing_format(ctx: &Context, backing: &Path, dl: &Deadline) -> Result<String, Failure> {
    let out = ctx
        .tools()
        .command("qemu-img")?
        .args(["info", "-U", "--output=json"])
        .arg(backing)
        .run(dl)?;
    if !out.success() {
        return Err(Failure::generic(format!(
            "qemu-img info {}: {}",
            backing.display(),
            out.message()
        )));
    }
    json_string(&out.stdout, "format").ok_or_else(|| {
        Failure::generic(format!(
            "qemu-img info {}: no format in its output",
            backing.display()
        ))
    })
}

/// The first `"key": "value"` string of a JSON text (qemu-img's flat
/// output; no escapes in format names).
fn json_string(text: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\"");
    let at = text.find(&pat)? + pat.len();
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// Local file systems: a config on one of these is not on shared storage.
const LOCAL_FS: &[i64] = &[
    0xEF53,     // ext2/3/4
    0x58465342, // xfs
    0x9123683E, // btrfs
    0x01021994, // tmpfs
    0x858458f6, // ramfs
    0x2FC12FC1, // zfs
    0xF2F52010, // f2fs
];

impl VirtualDomain {
    /// The domain's name: from the config, else from our record of a start
    /// (or as set by [`VirtualDomain::set_domain_name`]).
    pub fn domain_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// For a domain libvirt knows by name only (no config file): stop,
    /// monitor and migrate act on `name`; start still needs a config.
    pub fn set_domain_name(&mut self, name: &str) {
        if self.name.is_none() {
            self.name = Some(name.to_string());
        }
    }

    /// Stop without destroy: a graceful shutdown that does not finish
    /// inside the stop timeout fails the stop, and the domain keeps running.
    pub fn set_no_destroy(&mut self, no_destroy: bool) {
        self.no_destroy = no_destroy;
    }

    /// What makes this domain unsafe to migrate (validate-all, depth 10).
    pub fn migration_warnings(&self, ctx: &Context) -> Vec<String> {
        let mut w = Vec::new();
        let migrating = ctx
            .env
            .non_empty("OCF_RESKEY_CRM_meta_allow_migrate")
            .is_some_and(ocf::is_true)
            || self.remoteuri.is_some()
            || self.migration_transport.is_some()
            || self.migrateuri.is_some();
        if let Some((_, parsed)) = &self.xml {
            for disk in &parsed.disks {
                if disk.device == "cdrom" || disk.device == "floppy" || disk.readonly {
                    continue;
                }
                if disk.cache.as_deref() != Some("none") {
                    w.push(format!(
                        "disk {} has cache='{}', not cache='none': live migration is unsafe",
                        disk.source.as_deref().unwrap_or("?"),
                        disk.cache.as_deref().unwrap_or("default")
                    ));
                }
            }
        }
        if migrating {
            if let Ok(fs) = nix::sys::statfs::statfs(&self.config) {
                let t = fs.filesystem_type().0;
                if LOCAL_FS.contains(&t) {
                    w.push(format!(
                        "config {} is on a local file system, not on shared storage, while the resource migrates",
                        self.config.display()
                    ));
                }
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_options_map_to_flags_and_parameters() {
        let o = MigrateOptions::parse("--p2p --listen-address 127.0.0.1 --migrateuri=tcp://%n")
            .unwrap();
        assert_eq!(o.flags, sys::VIR_MIGRATE_PEER2PEER);
        assert_eq!(o.listen_address.as_deref(), Some("127.0.0.1"));
        assert_eq!(o.migrateuri.as_deref(), Some("tcp://%n"));
        assert!(MigrateOptions::parse("--bogus").is_err());
        assert!(MigrateOptions::parse("--listen-address").is_err());
        assert!(MigrateOptions::parse("--p2p=yes").is_err());
        assert_eq!(
            MigrateOptions::parse("").unwrap(),
            MigrateOptions::default()
        );
    }

    #[test]
    fn overlay_image_names_cut_at_the_first_dot_of_the_file_name() {
        assert_eq!(
            overlay_path(Path::new("/etc/libvirt/qemu/vm1.xml")),
            Path::new("/etc/libvirt/qemu/vm1.qcow2")
        );
        assert_eq!(
            overlay_path(Path::new("/srv/vm.d/web.prod.xml")),
            Path::new("/srv/vm.d/web.qcow2")
        );
        assert_eq!(
            overlay_path(Path::new("/srv/vm")),
            Path::new("/srv/vm.qcow2")
        );
        assert_eq!(
            overlay_path(Path::new("/srv/.vm.xml")),
            Path::new("/srv/.vm.qcow2")
        );
    }

    #[test]
    fn qemu_img_json_format() {
        let j = "{\n    \"virtual-size\": 1048576,\n    \"filename\": \"/b.img\",\n    \"format\": \"raw\",\n    \"backing-filename-format\": \"x\"\n}";
        assert_eq!(json_string(j, "format").as_deref(), Some("raw"));
        assert_eq!(json_string(j, "nothing"), None);
    }

    #[test]
    fn shutdown_modes() {
        assert_eq!(shutdown_flags(""), Ok(0));
        assert_eq!(
            shutdown_flags("acpi,agent"),
            Ok(sys::VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN | sys::VIR_DOMAIN_SHUTDOWN_GUEST_AGENT)
        );
        assert!(shutdown_flags("reboot").is_err());
    }

    #[test]
    fn meta_data_has_every_heartbeat_parameter() {
        let xml = META.render();
        for p in [
            "config",
            "hypervisor",
            "force_stop",
            "migration_transport",
            "migration_user",
            "migration_downtime",
            "migration_speed",
            "migration_network_suffix",
            "migrateuri",
            "migrate_options",
            "monitor_scripts",
            "autoset_utilization_cpu",
            "autoset_utilization_host_memory",
            "autoset_utilization_hv_memory",
            "unset_utilization_cpu",
            "unset_utilization_host_memory",
            "unset_utilization_hv_memory",
            "migrateport",
            "remoteuri",
            "save_config_on_stop",
            "sync_config_on_stop",
            "snapshot",
            "backingfile",
            "stateless",
            "copyindirs",
            "shutdown_mode",
            "start_resources",
        ] {
            assert!(xml.contains(&format!("<parameter name=\"{p}\"")), "{p}");
        }
        assert!(xml.contains("<action name=\"migrate_to\" timeout=\"120s\"/>"));
    }
}
