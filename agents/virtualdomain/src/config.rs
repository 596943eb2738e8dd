//! The parameters of a VirtualDomain resource: the meta-data table (what
//! `meta-data` prints, what the dispatcher checks every value against before
//! any action runs), the checks behind it, and [`Config`], the same
//! parameters typed. Kept apart from the actions so the table reads as the
//! agent's documentation, which it also is (`metadata/VirtualDomain.xml`,
//! the man page).
//!
//! [`Config`] is what the agent is built from ([`crate::VirtualDomain::new`]):
//! `configure` reads it from the `OCF_RESKEY_*` parameters, a persona (the
//! rgmanager `vm` agent) fills it in from its own parameters directly,
//! without rendering them into another agent's environment first.

use std::path::PathBuf;

use ocf::{ActionSpec, AgentMeta, Failure, ParamSpec, Params};
use virt::sys;

use crate::migration::{MigrateOptions, MigrationMode};
use crate::uri;

// The shared checks, under the names the parameter table uses.
use ocf::checks::{
    absolute_path as check_absolute, non_negative as check_non_negative, port as check_port,
};

/// An absolute path, or empty (a default of "" is checked too).
fn check_absolute_or_empty(v: &str) -> Result<(), String> {
    if v.is_empty() {
        Ok(())
    } else {
        check_absolute(v)
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

fn check_migration_user(v: &str) -> Result<(), String> {
    if uri::valid_user(v) {
        Ok(())
    } else {
        Err("must match ^[a-z][-a-z0-9]*$".into())
    }
}

static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("config")
        .identity()
        .required()
        .unique()
        .check(check_absolute)
        .short("Virtual domain configuration file")
        .long(
            "Absolute path to the libvirt configuration file, for this virtual \
             domain. The domain name is read from its <name> element.",
        ),
    ParamSpec::string("hypervisor")
        // where the domain lives: with its name, what stop acts on
        .identity()
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
    version: env!("CARGO_PKG_VERSION"),
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

/// A VirtualDomain resource's settings, typed; [`Config::default`] is the
/// meta-data's defaults (with no `config`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `config`: the libvirt XML file (absolute).
    pub config: PathBuf,
    /// `hypervisor`; None: libvirt's default URI.
    pub hypervisor: Option<String>,
    pub force_stop: bool,
    pub migration_transport: Option<String>,
    pub migration_user: Option<String>,
    /// Milliseconds; 0: libvirt's default.
    pub migration_downtime: u64,
    /// MiB/s; 0: unlimited.
    pub migration_speed: u64,
    pub migration_network_suffix: Option<String>,
    pub migrateuri: Option<String>,
    pub migrate_options: MigrateOptions,
    /// `monitor_scripts`, split on white space.
    pub monitor_scripts: Vec<String>,
    /// `autoset_utilization_{cpu,host_memory,hv_memory}`, in that order.
    pub autoset_utilization: [bool; 3],
    /// `unset_utilization_{cpu,host_memory,hv_memory}`, in that order.
    pub unset_utilization: [bool; 3],
    /// None: a high port picked per process (49152-49215).
    pub migrateport: Option<i64>,
    pub remoteuri: Option<String>,
    pub save_config_on_stop: bool,
    pub sync_config_on_stop: bool,
    pub snapshot: Option<PathBuf>,
    pub backingfile: Option<PathBuf>,
    pub stateless: bool,
    /// `copyindirs`, split on white space.
    pub copyindirs: Vec<String>,
    /// `shutdown_mode` as libvirt flags ([`shutdown_flags`]); 0: the
    /// hypervisor's choice.
    pub shutdown_flags: u32,
    pub start_resources: bool,
    pub migration_mode: MigrationMode,
    /// Not a parameter of the heartbeat agent: the domain name to act on
    /// when neither the config file nor the record of a start names one
    /// (rgmanager's `vm` starts a domain libvirt has defined by name).
    pub domain_name: Option<String>,
    /// Not a parameter of the heartbeat agent: never destroy; a graceful
    /// stop that does not finish fails (rgmanager vm.sh's `no_kill`).
    pub no_destroy: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            config: PathBuf::new(),
            hypervisor: None,
            force_stop: false,
            migration_transport: None,
            migration_user: None,
            migration_downtime: 0,
            migration_speed: 0,
            migration_network_suffix: None,
            migrateuri: None,
            migrate_options: MigrateOptions::default(),
            monitor_scripts: Vec::new(),
            autoset_utilization: [true; 3],
            unset_utilization: [false; 3],
            migrateport: None,
            remoteuri: None,
            save_config_on_stop: false,
            sync_config_on_stop: false,
            snapshot: None,
            backingfile: None,
            stateless: false,
            copyindirs: Vec::new(),
            shutdown_flags: 0,
            start_resources: false,
            migration_mode: MigrationMode::Live,
            domain_name: None,
            no_destroy: false,
        }
    }
}

impl Config {
    /// The settings from parameters the dispatcher has parsed (and checked
    /// against [`META`]).
    pub fn from_params(p: &Params) -> Result<Config, Failure> {
        let non_empty = |name: &str| p.str(name).filter(|v| !v.is_empty()).map(str::to_string);
        let words = |name: &str| -> Vec<String> {
            p.str(name)
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        let utilization = |prefix: &str| {
            crate::utilization::UTIL_NAMES.map(|n| p.bool(&format!("{prefix}_utilization_{n}")))
        };
        Ok(Config {
            config: PathBuf::from(p.str("config").unwrap_or_default()),
            hypervisor: non_empty("hypervisor"),
            force_stop: p.bool("force_stop"),
            migration_transport: non_empty("migration_transport"),
            migration_user: non_empty("migration_user"),
            migration_downtime: p.int("migration_downtime").unwrap_or(0).max(0) as u64,
            migration_speed: p.int("migration_speed").unwrap_or(0).max(0) as u64,
            migration_network_suffix: non_empty("migration_network_suffix"),
            migrateuri: non_empty("migrateuri"),
            migrate_options: MigrateOptions::parse(p.str("migrate_options").unwrap_or(""))
                .map_err(|e| Failure::configured(format!("parameter 'migrate_options': {e}")))?,
            monitor_scripts: words("monitor_scripts"),
            autoset_utilization: utilization("autoset"),
            unset_utilization: utilization("unset"),
            migrateport: p.int("migrateport"),
            remoteuri: non_empty("remoteuri"),
            save_config_on_stop: p.bool("save_config_on_stop"),
            sync_config_on_stop: p.bool("sync_config_on_stop"),
            snapshot: non_empty("snapshot").map(PathBuf::from),
            backingfile: non_empty("backingfile").map(PathBuf::from),
            stateless: p.bool("stateless"),
            copyindirs: words("copyindirs"),
            shutdown_flags: shutdown_flags(p.str("shutdown_mode").unwrap_or(""))
                .map_err(Failure::configured)?,
            start_resources: p.bool("start_resources"),
            migration_mode: if p.str("migration_mode") == Some("paused") {
                MigrationMode::Paused
            } else {
                MigrationMode::Live
            },
            domain_name: None,
            no_destroy: false,
        })
    }

    /// What no single parameter's check can see: combinations.
    pub(crate) fn check(&self) -> Result<(), Failure> {
        if self.force_stop && self.snapshot.is_some() {
            return Err(Failure::configured(
                "The 'force_stop' and 'snapshot' options cannot be used together.",
            ));
        }
        if self.stateless && self.backingfile.is_none() {
            return Err(Failure::configured(
                "Stateless functionality can't be achieved without a backing file.",
            ));
        }
        Ok(())
    }

    /// `save_config_on_stop`, also implied by `sync_config_on_stop`.
    pub(crate) fn saves_config(&self) -> bool {
        self.save_config_on_stop || self.sync_config_on_stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_meta_data_defaults() {
        let env = ocf::Env::from_pairs([("OCF_RESKEY_config", "/etc/vm.xml")]);
        let p = Params::parse(META.params, &env).unwrap();
        assert_eq!(
            Config::from_params(&p).unwrap(),
            Config {
                config: "/etc/vm.xml".into(),
                ..Config::default()
            }
        );
    }

    #[test]
    fn combinations_are_configuration_errors() {
        for c in [
            Config {
                force_stop: true,
                snapshot: Some("/snap".into()),
                ..Config::default()
            },
            Config {
                stateless: true,
                ..Config::default()
            },
        ] {
            assert_eq!(c.check().unwrap_err().status, ocf::OcfStatus::ErrConfigured);
        }
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
