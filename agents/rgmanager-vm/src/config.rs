//! vm.sh's parameters: the rgmanager meta-data (names, defaults, checks)
//! and their mapping onto the VirtualDomain agent's [`Config`] (URIs,
//! migration target mapping, where the domain's XML comes from). Apart
//! from the actions in `lib.rs` so the mapping table of the crate
//! documentation can be read next to the code that implements it.

use std::path::{Path, PathBuf};

use ocf::{ActionSpec, AgentMeta, Failure, ParamSpec, Params, Special, SpecialElement};
use ra_virtualdomain::{Config, MigrateOptions, MigrationMode};

// The shared check, under the name the parameter table uses.
use ocf::checks::absolute_path as check_absolute;

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

fn check_migrate_options(v: &str) -> Result<(), String> {
    MigrateOptions::parse(v.trim()).map(|_| ())
}

fn check_mapping(v: &str) -> Result<(), String> {
    migration_mapping(v).map(|_| ())
}

static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("name")
        .identity()
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
        .identity()
        .check(check_absolute)
        .short("Full path to libvirt XML file describing the domain.")
        .long("Full path to the libvirt XML file describing the domain; start creates the domain from it. When unset, NAME or NAME.xml is searched on path, and without either the domain libvirt has defined as NAME is started."),
    ParamSpec::one_of("migrate", &["live", "pause"])
        .default("live")
        .short("Migration type (live or pause, default = live).")
        .long("live: live migration. pause: the domain is suspended, moved while paused and resumed on the target."),
    ParamSpec::string("migrate_options")
        .check(check_migrate_options)
        .short("Extra options for the guest live migration.")
        .long("Extra virsh-style migrate options (e.g. --auto-converge, --migrateuri tcp://host, --listen-address ADDR), mapped to libvirt flags and parameters; unknown options are a configuration error."),
    ParamSpec::boolean("tunnelled")
        .short("Tunnel data over ssh to securely migrate virtual machines.")
        .long("If set, the migration is tunnelled through the libvirt connection (--tunnelled --p2p)."),
    ParamSpec::string("path")
        .identity()
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
        // where the domain lives: with its name, what stop acts on
        .identity()
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
    longdesc: "A virtual machine managed through libvirt, for rgmanager, in place of vm.sh; built on the heartbeat-rs VirtualDomain agent (the libvirt API, no virsh, no shell).\n\nStart creates the domain from xmlfile (or NAME / NAME.xml found on path), or starts the domain libvirt has defined as NAME. Status depth 0 asks libvirt for the domain's state (with libvirtd down, looks for its emulator process); depth 10 also runs status_program. Stop asks the domain to shut down and destroys it when it does not in time (not with no_kill). migrate TARGET moves the running domain to the member TARGET: 0 moved, 150 failed but still running here, 6 no such domain here, 1 not running here (as vm.sh). restart answers 0 without acting and kill destroys the domain at once, as vm.sh does. Every wait ends inside the operation's timeout.",
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

/// vm.sh used `xm` for a config file that is not XML; that needs Xen's xm
/// toolstack, which this agent does not drive. `text` is the file's text
/// (read by the VirtualDomain code, bounded).
pub(crate) fn refuse_xm_config(f: &Path, text: &str) -> Result<(), Failure> {
    match text.trim_start().chars().next() {
        Some('<') | None => Ok(()),
        Some(_) => Err(Failure::configured(format!(
            "{} is not libvirt XML (an xm config needs use_virsh=0, which this agent does not support)",
            f.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocf::OcfStatus;

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
        // an option VirtualDomain does not know: one line naming it, from
        // the parameter table already (so stop and probes fall back instead)
        let e = params(&[("name", "g"), ("migrate_options", "--bogus")]).unwrap_err();
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
        assert_eq!(
            refuse_xm_config(&a.join("xm"), "name = 'xm'\n")
                .unwrap_err()
                .status,
            OcfStatus::ErrConfigured
        );
        assert!(refuse_xm_config(&a.join("g"), " \n<domain/>").is_ok());
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
