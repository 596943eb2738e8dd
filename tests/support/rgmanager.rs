//! rgmanager as a caller: the environment it builds for an agent, and
//! helpers to read the rgmanager meta-data extensions.

use std::path::Path;

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

/// Attributes of an element, as owned pairs.
pub fn attrs(e: &quick_xml::events::BytesStart) -> Vec<(String, String)> {
    e.attributes()
        .map(|a| {
            let a = a.unwrap();
            (
                String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                a.unescape_value().unwrap().into_owned(),
            )
        })
        .collect()
}

/// The value of attribute `key`.
pub fn get<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// An rgmanager meta-data document, element by element (what
/// `ra-api-1-modified.dtd` describes).
#[derive(Debug, Default)]
pub struct MetaDoc {
    /// Attributes of `<resource-agent>`.
    pub root: Vec<(String, String)>,
    /// The element names directly under `<resource-agent>`, in order.
    pub top: Vec<String>,
    pub params: Vec<Vec<(String, String)>>,
    pub actions: Vec<Vec<(String, String)>>,
    /// `tag` of `<special>`.
    pub special_tag: Option<String>,
    /// The elements of `<special>`, in order.
    pub special: Vec<(String, Vec<(String, String)>)>,
}

impl MetaDoc {
    /// The attributes of parameter `name`.
    pub fn param(&self, name: &str) -> &[(String, String)] {
        self.params
            .iter()
            .find(|p| get(p, "name") == Some(name))
            .unwrap_or_else(|| panic!("no parameter {name}"))
    }

    /// (depth, timeout, interval) of every action `name`, in order.
    pub fn schedule(&self, name: &str) -> Vec<(Option<&str>, Option<&str>, Option<&str>)> {
        self.actions
            .iter()
            .filter(|a| get(a, "name") == Some(name))
            .map(|a| (get(a, "depth"), get(a, "timeout"), get(a, "interval")))
            .collect()
    }
}

/// Parse `xml` into a [`MetaDoc`], checking that parameters and actions
/// hold nothing but `<parameter>` and `<action>`.
pub fn parse_meta(xml: &str) -> MetaDoc {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut m = MetaDoc::default();
    loop {
        let ev = reader.read_event().unwrap();
        let (e, empty) = match &ev {
            Event::Start(e) => (e.clone(), false),
            Event::Empty(e) => (e.clone(), true),
            Event::End(_) => {
                path.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
        let a = attrs(&e);
        let at: Vec<&str> = path.iter().map(String::as_str).collect();
        match at.as_slice() {
            [] => {
                assert_eq!(name, "resource-agent");
                m.root = a;
            }
            ["resource-agent"] => {
                m.top.push(name.clone());
                if name == "special" {
                    m.special_tag = get(&a, "tag").map(str::to_string);
                }
            }
            ["resource-agent", "parameters"] => {
                assert_eq!(name, "parameter");
                m.params.push(a);
            }
            ["resource-agent", "actions"] => {
                assert_eq!(name, "action");
                m.actions.push(a);
            }
            ["resource-agent", "special"] => m.special.push((name.clone(), a)),
            _ => {}
        }
        if !empty {
            path.push(name);
        }
    }
    m
}
