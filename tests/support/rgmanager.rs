//! rgmanager as a caller: the environment it builds for an agent, and
//! helpers to read the rgmanager meta-data extensions.

use std::path::Path;

pub use super::xml::{attrs, get};
use super::Agent;

/// What rgmanager passes for resource `<rtype>:<name>` (before the
/// resource's other attributes): only OCF variables (`restree.c`), the
/// timeout in seconds.
pub fn agent(bin: &str, rtype: &str, name: &str, timeout_s: u32) -> Agent {
    Agent::new(bin, Path::new("/nonexistent"))
        .unset("HA_RSCTMP")
        .unset("HA_LOGFACILITY")
        .env("OCF_ROOT", "/usr/share/cluster")
        .env("OCF_RA_VERSION_MAJOR", "1")
        .env("OCF_RA_VERSION_MINOR", "0")
        .env("OCF_RESOURCE_TYPE", rtype)
        .env("OCF_RESOURCE_INSTANCE", format!("{rtype}:{name}"))
        .env("OCF_CHECK_LEVEL", "0")
        .env("OCF_RESKEY_RGMANAGER_meta_refcnt", "0")
        .env("OCF_RESKEY_RGMANAGER_meta_timeout", timeout_s.to_string())
        .param("name", name)
}

/// Every variable of the run is an OCF one: the harness adds nothing, in
/// particular no PATH and no LANG.
#[track_caller]
pub fn assert_only_ocf(a: &Agent) {
    let cmd = a.command(&["status"]);
    let names: Vec<String> = cmd
        .get_envs()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|k| k.starts_with("OCF_")),
        "not an rgmanager environment: {names:?}"
    );
    assert!(!names.iter().any(|k| k == "PATH" || k == "LANG"));
}

/// The same agent at status depth `level`.
pub fn depth(a: &Agent, level: u32) -> Agent {
    a.clone().env("OCF_CHECK_LEVEL", level.to_string())
}

/// An rgmanager agent's meta-data, read as rgmanager reads it (`meta-data`
/// with an empty environment) and checked against what
/// `ra-api-1-modified.dtd` and rgmanager's `resrules.c` require of every
/// agent: well-formed (xmllint), the DTD's DOCTYPE, `version="rgmanager
/// 2.0"`, the children in DTD order with a `<special tag="rgmanager">`,
/// parameter attributes the DTD knows (flags 0/1), `inherit` never with
/// primary/unique/required, exactly one primary and it is `name`, action
/// names the DTD allows, each with a timeout. What is left for a test is
/// what is particular to its agent.
pub struct MetaData {
    /// The document as printed.
    pub xml: String,
    pub params: Vec<Vec<(String, String)>>,
    pub actions: Vec<Vec<(String, String)>>,
    /// The children of `<special tag="rgmanager">`: (element, attributes).
    pub special: Vec<(String, Vec<(String, String)>)>,
}

impl MetaData {
    /// The parameter `name`'s attributes (panics when it is missing).
    pub fn param(&self, name: &str) -> &[(String, String)] {
        self.params
            .iter()
            .find(|p| get(p, "name") == Some(name))
            .unwrap_or_else(|| panic!("no parameter {name}"))
    }

    /// Parameter names in meta-data order.
    pub fn param_names(&self) -> Vec<&str> {
        self.params.iter().filter_map(|p| get(p, "name")).collect()
    }

    /// (depth, interval) of every `status` action, in order.
    pub fn status_schedule(&self) -> Vec<(Option<&str>, Option<&str>)> {
        self.actions
            .iter()
            .filter(|a| get(a, "name") == Some("status"))
            .map(|a| (get(a, "depth"), get(a, "interval")))
            .collect()
    }

    /// (depth, timeout, interval) of every action `name`, in order.
    pub fn schedule(&self, name: &str) -> Vec<(Option<&str>, Option<&str>, Option<&str>)> {
        self.actions
            .iter()
            .filter(|a| get(a, "name") == Some(name))
            .map(|a| (get(a, "depth"), get(a, "timeout"), get(a, "interval")))
            .collect()
    }

    pub fn has_action(&self, name: &str) -> bool {
        self.actions.iter().any(|a| get(a, "name") == Some(name))
    }
}

#[track_caller]
pub fn meta_data(bin: &str, rtype: &str) -> MetaData {
    use quick_xml::events::Event;
    use std::process::{Command, Stdio};

    let out = Command::new(bin)
        .arg("meta-data")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(xml.contains("<!DOCTYPE resource-agent SYSTEM \"ra-api-1-modified.dtd\">"));
    let lint = Command::new("xmllint")
        .args(["--noout", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(xml.as_bytes())?;
            c.wait_with_output()
        })
        .expect("xmllint is installed");
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stderr)
    );

    let mut reader = quick_xml::Reader::from_str(&xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut top: Vec<String> = Vec::new();
    let mut root = Vec::new();
    let mut special_tag = None;
    let mut md = MetaData {
        xml: xml.clone(),
        params: Vec::new(),
        actions: Vec::new(),
        special: Vec::new(),
    };
    loop {
        let (e, empty) = match reader.read_event().unwrap() {
            Event::Start(e) => (e.into_owned(), false),
            Event::Empty(e) => (e.into_owned(), true),
            Event::End(_) => {
                path.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
        let a = attrs(&e);
        match path
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] => {
                assert_eq!(name, "resource-agent");
                root = a;
            }
            ["resource-agent"] => {
                top.push(name.clone());
                if name == "special" {
                    special_tag = get(&a, "tag").map(str::to_string);
                }
            }
            ["resource-agent", "parameters"] => {
                assert_eq!(name, "parameter");
                md.params.push(a);
            }
            ["resource-agent", "actions"] => {
                assert_eq!(name, "action");
                md.actions.push(a);
            }
            ["resource-agent", "special"] => md.special.push((name.clone(), a)),
            _ => {}
        }
        if !empty {
            path.push(name);
        }
    }
    assert_eq!(get(&root, "name"), Some(rtype));
    assert_eq!(get(&root, "version"), Some("rgmanager 2.0"));
    assert_eq!(
        top,
        [
            "version",
            "longdesc",
            "shortdesc",
            "parameters",
            "actions",
            "special"
        ]
    );
    assert_eq!(special_tag.as_deref(), Some("rgmanager"));

    let allowed = [
        "name", "primary", "required", "inherit", "unique", "reconfig",
    ];
    for p in &md.params {
        for (k, v) in p {
            assert!(allowed.contains(&k.as_str()), "parameter attribute {k}");
            if k != "name" && k != "inherit" {
                assert!(v == "0" || v == "1", "{k}={v}");
            }
        }
        if get(p, "inherit").is_some() {
            for k in ["primary", "unique", "required"] {
                assert_ne!(get(p, k), Some("1"), "inherit with {k}");
            }
        }
    }
    let primaries: Vec<&str> = md
        .params
        .iter()
        .filter(|p| get(p, "primary") == Some("1"))
        .filter_map(|p| get(p, "name"))
        .collect();
    assert_eq!(primaries, ["name"]);

    let allowed = [
        "start",
        "stop",
        "recover",
        "status",
        "reconfig",
        "monitor",
        "reload",
        "meta-data",
        "validate-all",
        "verify-all",
        "migrate",
        "methods",
    ];
    for a in &md.actions {
        let n = get(a, "name").unwrap();
        assert!(allowed.contains(&n), "action {n}");
        assert!(get(a, "timeout").is_some(), "action {n} has no timeout");
    }
    md
}

/// A TEST DOUBLE of `reboot` (self_fence must not reboot the test
/// machine): a script in `dir/bin` that records its arguments in
/// `dir/rebooted`. `path` puts it first on the default PATH, and is
/// checked to find it before anything else.
pub struct RecordingReboot {
    pub path: String,
    pub marker: std::path::PathBuf,
}

impl RecordingReboot {
    pub fn new(dir: &Path) -> RecordingReboot {
        let bin = dir.join("fencebin");
        std::fs::create_dir_all(&bin).unwrap();
        let marker = dir.join("rebooted");
        let fake = bin.join("reboot");
        std::fs::write(
            &fake,
            format!("#!/bin/sh\necho \"$@\" > '{}'\n", marker.display()),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let path = format!("{}:{}", bin.display(), ocf::command::DEFAULT_PATH);
        let tools = ocf::Tools::from_env(&ocf::Env::from_pairs([("PATH", path.as_str())]));
        assert_eq!(
            tools.find("reboot"),
            Some(fake),
            "refusing to run: the real reboot would be found"
        );
        RecordingReboot { path, marker }
    }

    /// The arguments reboot was called with; None if it was not.
    pub fn called_with(&self) -> Option<String> {
        std::fs::read_to_string(&self.marker)
            .ok()
            .map(|s| s.trim().to_string())
    }
}
