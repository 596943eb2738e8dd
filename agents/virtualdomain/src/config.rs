//! The parameters of a VirtualDomain resource: the meta-data table (what
//! `meta-data` prints, what the dispatcher checks every value against before
//! any action runs) and the checks behind it. Kept apart from the actions so
//! the table reads as the agent's documentation, which it also is
//! (`metadata/VirtualDomain.xml`, the man page).

use ocf::{ActionSpec, AgentMeta, ParamSpec, Params};
use virt::sys;

use crate::migration::MigrateOptions;
use crate::uri;

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

pub(crate) fn non_empty(p: &Params, name: &str) -> Option<String> {
    p.str(name).filter(|v| !v.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

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
