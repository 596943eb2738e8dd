//! Instance parameters, declared once per agent.
//!
//! A [`ParamSpec`] table is the single source of truth: it drives parsing of
//! `OCF_RESKEY_*`, defaults, type checks and the `<parameters>` section of the
//! meta-data. An agent never reads `OCF_RESKEY_*` by hand.

use std::collections::BTreeMap;

use crate::env::Env;
use crate::status::Failure;

/// How a value is checked, and the `content type` advertised for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    /// What `ocf_is_true` accepts as true, or the matching false words.
    Boolean,
    /// One of a fixed set of words (advertised as `string`; the OCF 1.0 DTD
    /// that ocf-tester validates against has no `select`).
    Enum(&'static [&'static str]),
}

impl ParamType {
    pub fn content_type(&self) -> &'static str {
        match self {
            ParamType::String | ParamType::Enum(_) => "string",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
        }
    }
}

/// An extra check of a value: `Err` says what is wrong with it.
pub type ValueCheck = fn(&str) -> Result<(), String>;

/// One parameter of an agent.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    pub default: Option<&'static str>,
    pub required: bool,
    pub unique: bool,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    /// An extra check for values a type cannot describe (a list of signals,
    /// a mode with modifiers); returns what is wrong.
    pub check: Option<ValueCheck>,
    /// rgmanager: the attribute that names the resource
    /// (`OCF_RESOURCE_INSTANCE=<type>:<value>`); at most one per agent.
    pub primary: bool,
    /// rgmanager: take the value from the parent resource's attribute of
    /// this name (`"nfslock"`, or `"service%nfslock"` for a named parent type).
    pub inherit: Option<&'static str>,
    /// rgmanager: the value may change while the resource runs (`reconfig`).
    pub reconfig: bool,
    /// What names the resource (device and mount point, VG, domain, portal
    /// and target): stop and probes need it, so a missing or malformed value
    /// is `OCF_ERR_CONFIGURED` for them too. Every other parameter is read
    /// leniently by stop and probes ([`Params::parse_lenient`]).
    pub identity: bool,
    /// Required (the meta-data says so), but its absence is the agent's to
    /// judge by action, not [`Params::parse`]'s: LVM-activate's
    /// `vg_access_mode` fails start without it, never stop or monitor (as
    /// heartbeat's).
    pub required_by_agent: bool,
}

impl ParamSpec {
    pub const fn new(name: &'static str, ty: ParamType) -> ParamSpec {
        ParamSpec {
            name,
            ty,
            default: None,
            required: false,
            unique: false,
            shortdesc: "",
            longdesc: "",
            check: None,
            primary: false,
            inherit: None,
            reconfig: false,
            identity: false,
            required_by_agent: false,
        }
    }
    pub const fn string(name: &'static str) -> ParamSpec {
        ParamSpec::new(name, ParamType::String)
    }
    pub const fn integer(name: &'static str) -> ParamSpec {
        ParamSpec::new(name, ParamType::Integer)
    }
    pub const fn boolean(name: &'static str) -> ParamSpec {
        ParamSpec::new(name, ParamType::Boolean)
    }
    pub const fn one_of(name: &'static str, words: &'static [&'static str]) -> ParamSpec {
        ParamSpec::new(name, ParamType::Enum(words))
    }
    pub const fn default(mut self, value: &'static str) -> ParamSpec {
        self.default = Some(value);
        self
    }
    pub const fn required(mut self) -> ParamSpec {
        self.required = true;
        self
    }
    /// Required in the meta-data; the agent refuses its absence where it
    /// matters (see [`ParamSpec::required_by_agent`]).
    pub const fn required_by_agent(mut self) -> ParamSpec {
        self.required = true;
        self.required_by_agent = true;
        self
    }
    pub const fn unique(mut self) -> ParamSpec {
        self.unique = true;
        self
    }
    pub const fn short(mut self, text: &'static str) -> ParamSpec {
        self.shortdesc = text;
        self
    }
    pub const fn long(mut self, text: &'static str) -> ParamSpec {
        self.longdesc = text;
        self
    }
    pub const fn check(mut self, f: ValueCheck) -> ParamSpec {
        self.check = Some(f);
        self
    }
    /// rgmanager `primary="1"`: the resource's name.
    pub const fn primary(mut self) -> ParamSpec {
        self.primary = true;
        self
    }
    /// rgmanager `inherit="<attr>"`: the value comes from the parent.
    pub const fn inherit(mut self, attr: &'static str) -> ParamSpec {
        self.inherit = Some(attr);
        self
    }
    /// rgmanager `reconfig="1"`: changeable at runtime through `reconfig`.
    pub const fn reconfig(mut self) -> ParamSpec {
        self.reconfig = true;
        self
    }
    /// What names the resource: strict even for stop and probes (not
    /// advertised in meta-data).
    pub const fn identity(mut self) -> ParamSpec {
        self.identity = true;
        self
    }

    /// Check one value against this parameter's type and extra check.
    fn validate(&self, value: &str) -> Result<(), Failure> {
        let bad = |what: String| Failure::configured(format!("parameter '{}': {what}", self.name));
        match self.ty {
            ParamType::String => {}
            ParamType::Integer => {
                value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| bad(format!("'{value}' is not an integer")))?;
            }
            ParamType::Boolean => {
                parse_bool(value).ok_or_else(|| bad(format!("'{value}' is not a boolean")))?;
            }
            ParamType::Enum(words) => {
                if !words.contains(&value) {
                    return Err(bad(format!("'{value}' is not one of {}", words.join(", "))));
                }
            }
        }
        if let Some(check) = self.check {
            check(value).map_err(|e| bad(format!("'{value}': {e}")))?;
        }
        Ok(())
    }
}

/// True for what `ocf_is_true` accepts (`yes`, `true`, `1`, `on`, `ja`), in
/// any case.
pub fn is_true(value: &str) -> bool {
    parse_bool(value) == Some(true)
}

/// `Some(true)` for the words `ocf_is_true` accepts, `Some(false)` for their
/// opposites (`no`, `false`, `0`, `off`, `nein`), any case; `None` otherwise.
pub fn parse_bool(value: &str) -> Option<bool> {
    let v = value.trim().to_ascii_lowercase();
    match v.as_str() {
        "yes" | "true" | "1" | "on" | "ja" => Some(true),
        "no" | "false" | "0" | "off" | "nein" => Some(false),
        _ => None,
    }
}

/// The one warning for a malformed value a lenient parse passes over.
fn fall_back(spec: &ParamSpec, value: &str, why: &str) {
    let instead = match spec.default {
        Some(d) => format!("using the default '{d}'"),
        None => "ignoring it".to_string(),
    };
    let why = why
        .strip_prefix(&format!("parameter '{}': ", spec.name))
        .unwrap_or(why);
    crate::warn!(
        "parameter '{}': '{}' is malformed ({why}); {instead}",
        spec.name,
        value.escape_debug()
    );
}

/// The parsed values of one instance, defaults applied.
#[derive(Clone, Debug)]
pub struct Params {
    specs: &'static [ParamSpec],
    values: BTreeMap<&'static str, String>,
    /// Names the caller set explicitly (not from a default).
    explicit: Vec<&'static str>,
}

impl Params {
    /// Parse every declared parameter from `OCF_RESKEY_<name>`. An empty
    /// value counts as unset. A missing required parameter, a non-UTF-8 value
    /// or a value of the wrong type is OCF_ERR_CONFIGURED with one line
    /// naming the parameter.
    pub fn parse(specs: &'static [ParamSpec], env: &Env) -> Result<Params, Failure> {
        Params::parse_with(specs, env, false)
    }

    /// How stop and probes read parameters: only an identity parameter
    /// ([`ParamSpec::identity`]) that is missing or malformed fails
    /// (OCF_ERR_CONFIGURED). Any other malformed value is replaced by its
    /// default (or left unset) with one warning naming the parameter and the
    /// value, and a missing required one is left unset with a warning: a
    /// stop that fails over a value it does not need gets the node fenced.
    pub fn parse_lenient(specs: &'static [ParamSpec], env: &Env) -> Result<Params, Failure> {
        Params::parse_with(specs, env, true)
    }

    /// [`Params::parse`] (`lenient` false) or [`Params::parse_lenient`].
    pub fn parse_with(
        specs: &'static [ParamSpec],
        env: &Env,
        lenient: bool,
    ) -> Result<Params, Failure> {
        let mut values = BTreeMap::new();
        let mut explicit = Vec::new();
        for spec in specs {
            let forgiving = lenient && !spec.identity;
            let given = match env.reskey(spec.name) {
                None => None,
                Some(raw) => match raw.to_str() {
                    Some(v) => Some(v),
                    None if forgiving => {
                        fall_back(spec, &format!("{raw:?}"), "value is not valid UTF-8");
                        None
                    }
                    None => {
                        return Err(Failure::configured(format!(
                            "parameter '{}': value is not valid UTF-8",
                            spec.name
                        )))
                    }
                },
            }
            .filter(|v| !v.is_empty());
            let value = match (given, spec.default) {
                (Some(v), _) => v,
                (None, Some(d)) => d,
                (None, None) if spec.required && !spec.required_by_agent && forgiving => {
                    crate::warn!(
                        "required parameter '{}' is not set; stop and probes do not need it",
                        spec.name
                    );
                    continue;
                }
                (None, None) if spec.required && !spec.required_by_agent => {
                    return Err(Failure::configured(format!(
                        "required parameter '{}' is not set",
                        spec.name
                    )))
                }
                (None, None) => continue,
            };
            match spec.validate(value) {
                Ok(()) => {}
                Err(e) if forgiving && given.is_some() => {
                    fall_back(spec, value, &e.reason);
                    match spec.default {
                        Some(d) if spec.validate(d).is_ok() => {
                            values.insert(spec.name, d.to_string());
                        }
                        _ => {}
                    }
                    continue;
                }
                Err(e) => return Err(e),
            }
            if given.is_some() {
                explicit.push(spec.name);
            }
            values.insert(spec.name, value.to_string());
        }
        Ok(Params {
            specs,
            values,
            explicit,
        })
    }

    fn spec(&self, name: &str) -> &ParamSpec {
        self.specs
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("parameter '{name}' is not declared"))
    }

    /// The value (or default); `None` when unset with no default.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.spec(name);
        self.values.get(name).map(String::as_str)
    }

    /// A boolean parameter; unset without default is false.
    pub fn bool(&self, name: &str) -> bool {
        self.str(name).is_some_and(is_true)
    }

    /// An integer parameter (already checked by [`Params::parse`]).
    pub fn int(&self, name: &str) -> Option<i64> {
        self.str(name).and_then(|v| v.trim().parse().ok())
    }

    /// Whether the caller set this parameter rather than taking the default.
    pub fn is_explicit(&self, name: &str) -> bool {
        self.spec(name);
        self.explicit.contains(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OcfStatus;

    static SPECS: &[ParamSpec] = &[
        ParamSpec::string("device").identity().required().unique(),
        ParamSpec::integer("count").default("3"),
        ParamSpec::boolean("fast").default("no"),
        ParamSpec::one_of("mode", &["auto", "force", "no"]).default("auto"),
        ParamSpec::string("signals").check(|v| {
            if v.split(',').all(|s| !s.is_empty()) {
                Ok(())
            } else {
                Err("empty signal name".into())
            }
        }),
    ];

    fn parse(pairs: &[(&str, &str)]) -> Result<Params, Failure> {
        let env = Env::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())),
        );
        Params::parse(SPECS, &env)
    }

    #[test]
    fn defaults_apply_and_explicit_values_win() {
        let p = parse(&[("device", "/dev/sdb1")]).unwrap();
        assert_eq!(p.str("device"), Some("/dev/sdb1"));
        assert_eq!(p.int("count"), Some(3));
        assert!(!p.bool("fast"));
        assert_eq!(p.str("mode"), Some("auto"));
        assert_eq!(p.str("signals"), None);
        assert!(p.is_explicit("device"));
        assert!(!p.is_explicit("count"));
        let p = parse(&[
            ("device", "d"),
            ("count", " 7 "),
            ("fast", "YES"),
            ("mode", "no"),
        ])
        .unwrap();
        assert_eq!(p.int("count"), Some(7));
        assert!(p.bool("fast"));
        assert_eq!(p.str("mode"), Some("no"));
    }

    #[test]
    fn missing_required_is_not_configured() {
        for pairs in [&[][..], &[("device", "")][..]] {
            let e = parse(pairs).unwrap_err();
            assert_eq!(e.status, OcfStatus::ErrConfigured);
            assert_eq!(e.reason, "required parameter 'device' is not set");
        }
    }

    #[test]
    fn bad_values_name_the_parameter_and_the_value() {
        let e = parse(&[("device", "d"), ("count", "many")]).unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrConfigured);
        assert_eq!(e.reason, "parameter 'count': 'many' is not an integer");
        let e = parse(&[("device", "d"), ("mode", "sometimes")]).unwrap_err();
        assert_eq!(
            e.reason,
            "parameter 'mode': 'sometimes' is not one of auto, force, no"
        );
        let e = parse(&[("device", "d"), ("fast", "maybe")]).unwrap_err();
        assert_eq!(e.reason, "parameter 'fast': 'maybe' is not a boolean");
        let e = parse(&[("device", "d"), ("signals", "TERM,,KILL")]).unwrap_err();
        assert_eq!(
            e.reason,
            "parameter 'signals': 'TERM,,KILL': empty signal name"
        );
    }

    #[test]
    fn lenient_parse_keeps_only_the_identity_strict() {
        let lenient = |pairs: &[(&str, &str)]| {
            let env = Env::from_pairs(
                pairs
                    .iter()
                    .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())),
            );
            Params::parse_lenient(SPECS, &env)
        };
        let p = lenient(&[
            ("device", "d"),
            ("count", "many"),
            ("fast", "maybe"),
            ("mode", "sometimes"),
            ("signals", "TERM,,KILL"),
        ])
        .unwrap();
        assert_eq!(p.int("count"), Some(3));
        assert!(!p.bool("fast"));
        assert_eq!(p.str("mode"), Some("auto"));
        assert_eq!(p.str("signals"), None);
        assert!(!p.is_explicit("count"));
        let e = lenient(&[("count", "many")]).unwrap_err();
        assert_eq!(e.reason, "required parameter 'device' is not set");
        use std::os::unix::ffi::OsStringExt;
        let bytes = |b: &[u8]| std::ffi::OsString::from_vec(b.to_vec());
        let env = Env::from_pairs([
            ("OCF_RESKEY_device", bytes(b"d")),
            ("OCF_RESKEY_count", bytes(&[0xff])),
        ]);
        assert_eq!(
            Params::parse_lenient(SPECS, &env).unwrap().int("count"),
            Some(3)
        );
        let env = Env::from_pairs([("OCF_RESKEY_device", bytes(&[0x2f, 0xff]))]);
        assert!(Params::parse_lenient(SPECS, &env).is_err());
    }

    #[test]
    fn booleans_accept_what_ocf_is_true_accepts_in_any_case() {
        for t in [
            "yes", "YES", "Yes", "true", "TRUE", "True", "1", "on", "ON", "ja", "Ja",
        ] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["no", "NO", "false", "False", "0", "off", "nein"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for x in ["y", "2", "", "maybe"] {
            assert_eq!(parse_bool(x), None, "{x}");
        }
    }

    #[test]
    fn non_utf8_values_are_rejected() {
        use std::os::unix::ffi::OsStringExt;
        let env = Env::from_pairs([(
            "OCF_RESKEY_device",
            std::ffi::OsString::from_vec(vec![0x2f, 0xff]),
        )]);
        let e = Params::parse(SPECS, &env).unwrap_err();
        assert_eq!(e.reason, "parameter 'device': value is not valid UTF-8");
    }

    #[test]
    #[should_panic(expected = "not declared")]
    fn reading_an_undeclared_parameter_is_a_bug() {
        parse(&[("device", "d")]).unwrap().str("nonsense");
    }
}
