//! The parameters of the Xen agent, as the heartbeat agent names them, and
//! the checks a value must pass before any action runs ([`PARAMS`], which
//! the meta-data prints); [`Config`] is what they say, typed.

use std::path::PathBuf;
use std::time::Duration;

use ocf::{checks, ActionSpec, AgentMeta, ParamSpec, Params};

use crate::xl::{INCOMING, MIGRATED_AWAY};

/// Heartbeat's default for `xmfile`.
pub const DEFAULT_XMFILE: &str = "/etc/xen/vm/MyDomU";

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

pub static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("xmfile")
        .identity()
        .required()
        .default(DEFAULT_XMFILE)
        .check(checks::absolute_path)
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
        .check(checks::non_negative)
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
        .check(checks::non_negative)
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

pub static META: AgentMeta = AgentMeta {
    name: "Xen",
    version: env!("CARGO_PKG_VERSION"),
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

/// The parameters of one instance, typed, defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub xmfile: PathBuf,
    /// `name`, when set; otherwise the name comes from `xmfile` (or the
    /// instance).
    pub name: Option<String>,
    /// `shutdown_timeout`; unset: two thirds of the stop timeout.
    pub shutdown_timeout: Option<Duration>,
    pub shutdown_acpi: bool,
    /// `allow_mem_management`.
    pub mem_management: bool,
    /// `reserved_Dom0_memory`, MB.
    pub reserved_dom0: i64,
    pub node_ip_attribute: Option<String>,
    /// `autoset_utilization_cpu`.
    pub util_cpu: bool,
    /// `autoset_utilization_hv_memory`.
    pub util_mem: bool,
    /// `monitor_scripts`, split at white space.
    pub monitor_scripts: Vec<String>,
}

impl Config {
    /// From parameters [`Params::parse`] checked against [`PARAMS`].
    pub fn from_params(p: &Params) -> Config {
        Config {
            xmfile: PathBuf::from(p.str("xmfile").unwrap_or(DEFAULT_XMFILE)),
            name: p.str("name").map(str::to_string),
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn parameters_are_typed_with_the_heartbeat_defaults() {
        let parse = |pairs: &[(&str, &str)]| {
            let env = ocf::Env::from_pairs(
                pairs
                    .iter()
                    .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())),
            );
            Config::from_params(&Params::parse(PARAMS, &env).unwrap())
        };
        let c = parse(&[]);
        assert_eq!(c.xmfile, PathBuf::from(DEFAULT_XMFILE));
        assert_eq!(c.name, None);
        assert_eq!(c.shutdown_timeout, None);
        assert_eq!(c.reserved_dom0, 512);
        assert!(!c.shutdown_acpi && !c.mem_management && !c.util_cpu && !c.util_mem);
        assert!(c.monitor_scripts.is_empty());
        let c = parse(&[
            ("xmfile", "/etc/xen/vm1.cfg"),
            ("name", "my vm"),
            ("shutdown_timeout", "0"),
            ("shutdown_acpi", "yes"),
            ("monitor_scripts", " /bin/a  /bin/b "),
        ]);
        assert_eq!(c.xmfile, PathBuf::from("/etc/xen/vm1.cfg"));
        assert_eq!(c.name.as_deref(), Some("my vm"));
        assert_eq!(c.shutdown_timeout, Some(Duration::ZERO));
        assert!(c.shutdown_acpi);
        assert_eq!(c.monitor_scripts, ["/bin/a", "/bin/b"]);
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
