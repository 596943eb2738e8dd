//! A snapshot of the process environment.
//!
//! Everything an agent reads from its caller goes through [`Env`], so unit
//! tests build the exact environment a caller would pass (rgmanager passes
//! only OCF variables, ocf-tester a handful more) without touching the real
//! process environment.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};

#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: HashMap<String, OsString>,
}

impl Env {
    /// The environment this process was started with.
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
                .collect(),
        }
    }

    /// An environment holding exactly these pairs.
    pub fn from_pairs<K: Into<String>, V: Into<OsString>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value as UTF-8 text; `None` when unset or not UTF-8.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).and_then(|v| v.to_str())
    }

    /// The raw value.
    pub fn get_os(&self, key: &str) -> Option<&OsStr> {
        self.vars.get(key).map(|v| v.as_os_str())
    }

    /// The value, with an empty string treated as unset (as the shell's
    /// `${VAR:-default}` does).
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// The raw value, with an empty string treated as unset: for paths,
    /// which need not be UTF-8.
    pub fn non_empty_os(&self, key: &str) -> Option<&OsStr> {
        self.get_os(key).filter(|v| !v.is_empty())
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<OsString>) {
        self.vars.insert(key.into(), value.into());
    }

    pub fn remove(&mut self, key: &str) {
        self.vars.remove(key);
    }

    /// `OCF_RESKEY_<name>`.
    pub fn reskey(&self, name: &str) -> Option<&OsStr> {
        self.get_os(&format!("OCF_RESKEY_{name}"))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &OsStr)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_os_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_unset_only_where_asked() {
        let env = Env::from_pairs([("A", ""), ("OCF_RESKEY_device", "/dev/x")]);
        assert_eq!(env.get("A"), Some(""));
        assert_eq!(env.non_empty("A"), None);
        assert_eq!(env.reskey("device"), Some(OsStr::new("/dev/x")));
        assert_eq!(env.get("B"), None);
        assert_eq!(env.non_empty_os("A"), None);
    }

    #[test]
    fn values_that_are_not_utf8_are_kept_raw() {
        use std::os::unix::ffi::OsStrExt;
        let raw = OsStr::from_bytes(b"/run/\xffx");
        let env = Env::from_pairs([("HA_RSCTMP", raw)]);
        assert_eq!(env.get("HA_RSCTMP"), None);
        assert_eq!(env.non_empty_os("HA_RSCTMP"), Some(raw));
    }
}
