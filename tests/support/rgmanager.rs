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
