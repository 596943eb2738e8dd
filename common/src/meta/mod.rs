//! Meta-data: what an agent tells the cluster manager about itself.
//!
//! One model ([`AgentMeta`]: the same [`ParamSpec`] table the parser uses, and
//! the advertised actions) and three renderings of it, each in its own
//! module: the XML for cluster managers ([`AgentMeta::render`]), `--help` for
//! people ([`AgentMeta::help`]) and the manual page for packaging
//! ([`AgentMeta::man`]), so none of them can drift from what the agent parses.
//!
//! The XML is rendered with quick-xml
//! in the OCF 1.0 form that `ocf-tester` validates against `ra-api-1.dtd`
//! (`xmllint --valid`), which is also what `crm_resource --show-metadata` and
//! `pcs resource describe` read.
//!
//! rgmanager personas (`fs`, `lvm`, `vm` in place of `fs.sh`, ...) print the
//! rgmanager dialect of the same document (`ra-api-1-modified.dtd`): an agent
//! whose meta-data carries a `<special tag="rgmanager">` block declares that
//! DTD, and its parameters may carry rgmanager's `primary`, `inherit` and
//! `reconfig` attributes ([`ParamSpec::primary`], [`ParamSpec::inherit`],
//! [`ParamSpec::reconfig`]). rgmanager reads these at start-up: the primary
//! attribute names the resource, `<attributes maxinstances=.../>` and
//! `<child type=... start=... stop=.../>` order it among its children, and
//! the `status` actions' depths and intervals are its status schedule.
//! Nothing of this is printed for the OCF agents, whose output stays valid
//! against `ra-api-1.dtd`.

use std::time::Duration;

use crate::params::ParamSpec;

mod help;
mod man;
mod xml;

/// An action as advertised in `<actions>`.
#[derive(Clone, Copy, Debug)]
pub struct ActionSpec {
    pub name: &'static str,
    /// Default timeout, seconds.
    pub timeout: u32,
    /// Suggested interval, seconds.
    pub interval: Option<u32>,
    pub depth: Option<u32>,
    pub role: Option<&'static str>,
}

impl ActionSpec {
    pub const fn new(name: &'static str, timeout: u32) -> ActionSpec {
        ActionSpec {
            name,
            timeout,
            interval: None,
            depth: None,
            role: None,
        }
    }
    pub const fn interval(mut self, seconds: u32) -> ActionSpec {
        self.interval = Some(seconds);
        self
    }
    pub const fn depth(mut self, depth: u32) -> ActionSpec {
        self.depth = Some(depth);
        self
    }
    pub const fn role(mut self, role: &'static str) -> ActionSpec {
        self.role = Some(role);
        self
    }
}

/// One empty child element of a `<special>` block, e.g.
/// `<child type="fs" start="1" stop="3"/>`.
#[derive(Clone, Copy, Debug)]
pub struct SpecialElement {
    pub element: &'static str,
    pub attrs: &'static [(&'static str, &'static str)],
}

impl SpecialElement {
    pub const fn new(
        element: &'static str,
        attrs: &'static [(&'static str, &'static str)],
    ) -> SpecialElement {
        SpecialElement { element, attrs }
    }
}

/// `<special tag="...">`: a caller-specific block (rgmanager's).
#[derive(Clone, Copy, Debug)]
pub struct Special {
    pub tag: &'static str,
    pub children: &'static [SpecialElement],
}

impl Special {
    /// The tag rgmanager reads.
    pub const RGMANAGER: &'static str = "rgmanager";

    /// `<special tag="rgmanager">` holding `children` in order
    /// (`attributes` first, then the `child` elements, as the DTD wants).
    pub const fn rgmanager(children: &'static [SpecialElement]) -> Special {
        Special {
            tag: Special::RGMANAGER,
            children,
        }
    }
}

/// The DTD of the OCF 1.0 meta-data (what ocf-tester validates against).
pub const OCF_DTD: &str = "ra-api-1.dtd";
/// The DTD of rgmanager's dialect (`/usr/share/cluster/ra-api-1-modified.dtd`).
pub const RGMANAGER_DTD: &str = "ra-api-1-modified.dtd";

/// Everything `meta-data` prints.
#[derive(Clone, Copy, Debug)]
pub struct AgentMeta {
    pub name: &'static str,
    pub version: &'static str,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    pub params: &'static [ParamSpec],
    pub actions: &'static [ActionSpec],
    pub special: Option<Special>,
}

impl AgentMeta {
    /// The advertised action of that name.
    pub fn action(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// The advertised default timeout of an action.
    pub fn default_timeout(&self, name: &str) -> Option<Duration> {
        self.action(name)
            .map(|a| Duration::from_secs(u64::from(a.timeout)))
    }

    /// The advertised default timeout of an action at a check depth: the
    /// entry of that depth (no `depth` counts as 0) when the action is
    /// advertised once per depth, as rgmanager agents do for `status`,
    /// else the first entry of that name.
    pub fn default_timeout_at(&self, name: &str, depth: u32) -> Option<Duration> {
        self.actions
            .iter()
            .find(|a| a.name == name && a.depth.unwrap_or(0) == depth)
            .or_else(|| self.action(name))
            .map(|a| Duration::from_secs(u64::from(a.timeout)))
    }

    /// The advertised action names, each once, in order (an action may be
    /// advertised once per depth).
    pub fn action_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for a in self.actions {
            if !names.contains(&a.name) {
                names.push(a.name);
            }
        }
        names
    }

    /// Every action a caller can name, each once: the advertised ones in
    /// order, then those every agent answers without advertising them
    /// (`status` has monitor semantics; `meta-data`, `validate-all`,
    /// `methods` and `usage` need no resource). What `--help`, the manual
    /// page's synopsis and `usage` list.
    pub fn callable_actions(&self) -> Vec<&'static str> {
        let mut names = self.action_names();
        if names.contains(&"verify-all") && !names.contains(&"validate-all") {
            names.push("validate-all");
        }
        for always in ["status", "meta-data", "validate-all", "methods", "usage"] {
            if !names.contains(&always) {
                names.push(always);
            }
        }
        names
    }

    /// Whether this is rgmanager's dialect (a `<special tag="rgmanager">`).
    pub fn is_rgmanager(&self) -> bool {
        self.special.is_some_and(|s| s.tag == Special::RGMANAGER)
    }

    /// The DTD the document declares.
    pub fn dtd(&self) -> &'static str {
        if self.is_rgmanager() {
            RGMANAGER_DTD
        } else {
            OCF_DTD
        }
    }

    /// Every parameter the agent advertises: its own, then, for OCF agents,
    /// resource-agents' tracing parameters (`trace_ra`, `trace_file`; see
    /// [`crate::trace`]), which pcs accepts for heartbeat's agents and so
    /// must find in ours. rgmanager's dialect has no tracing.
    pub fn all_params(&self) -> impl Iterator<Item = &'static ParamSpec> + Clone {
        let trace: &'static [ParamSpec] = if self.is_rgmanager() {
            &[]
        } else {
            crate::trace::TRACE_PARAMS
        };
        self.params.iter().chain(trace.iter())
    }

    /// The primary parameter (rgmanager), if one is declared.
    pub fn primary_param(&self) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.primary)
    }

    /// The meta-data document (the OCF XML; see [`xml`]).
    pub fn render(&self) -> String {
        xml::render(self)
    }

    /// `--help`: actions and parameters for people (see [`help`]).
    pub fn help(&self) -> String {
        help::render(self)
    }

    /// The manual page `ocf_<provider>_<Agent>(7)` (see [`man`]).
    pub fn man(&self, provider: &str) -> String {
        man::render(self, provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static PARAMS: &[ParamSpec] = &[
        ParamSpec::string("device")
            .required()
            .unique()
            .short("block device")
            .long("The device <to> mount & \"more\""),
        ParamSpec::boolean("fast_stop")
            .default("no")
            .short("fast stop"),
    ];
    static ACTIONS: &[ActionSpec] = &[
        ActionSpec::new("start", 60),
        ActionSpec::new("monitor", 40).interval(20).depth(0),
        ActionSpec::new("meta-data", 5),
    ];
    static META: AgentMeta = AgentMeta {
        name: "Dummy",
        version: "0.1.0",
        shortdesc: "A dummy",
        longdesc: "Long text",
        params: PARAMS,
        actions: ACTIONS,
        special: None,
    };

    #[test]
    fn renders_parameters_with_escaping_and_defaults() {
        let xml = META.render();
        assert!(xml.starts_with(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">"
        ));
        assert!(xml.contains("<parameter name=\"device\" required=\"1\" unique=\"1\">"));
        assert!(xml.contains("The device &lt;to&gt; mount &amp; &quot;more&quot;"));
        assert!(xml.contains("<content type=\"boolean\" default=\"no\"/>"));
        assert!(
            xml.contains("<action name=\"monitor\" depth=\"0\" timeout=\"40s\" interval=\"20s\"/>")
        );
        assert!(xml.ends_with("</resource-agent>\n"));
    }

    #[test]
    fn default_timeouts_come_from_the_advertised_actions() {
        assert_eq!(META.default_timeout("start"), Some(Duration::from_secs(60)));
        assert_eq!(META.default_timeout("stop"), None);
    }

    #[test]
    fn special_block_for_rgmanager() {
        let mut meta = META;
        meta.special = Some(Special {
            tag: "rgmanager",
            children: &[SpecialElement {
                element: "child",
                attrs: &[("type", "fs"), ("start", "1"), ("stop", "3")],
            }],
        });
        let xml = meta.render();
        assert!(xml.contains("<special tag=\"rgmanager\">"));
        assert!(xml.contains("<child type=\"fs\" start=\"1\" stop=\"3\"/>"));
        assert!(xml.contains("<!DOCTYPE resource-agent SYSTEM \"ra-api-1-modified.dtd\">"));
    }

    static RGM_PARAMS: &[ParamSpec] = &[
        ParamSpec::string("name").primary().short("name"),
        ParamSpec::string("mountpoint")
            .required()
            .unique()
            .reconfig()
            .short("mount point"),
        ParamSpec::boolean("nfslock")
            .inherit("service%nfslock")
            .short("nfs locks"),
    ];
    static RGM_ACTIONS: &[ActionSpec] = &[
        ActionSpec::new("start", 900),
        ActionSpec::new("status", 10).interval(60),
        ActionSpec::new("status", 30).interval(30).depth(10),
        ActionSpec::new("status", 31).interval(60).depth(20),
        ActionSpec::new("verify-all", 5),
    ];
    static RGM_SPECIAL: &[SpecialElement] = &[
        SpecialElement::new("attributes", &[("maxinstances", "1")]),
        SpecialElement::new(
            "child",
            &[("type", "nfsexport"), ("start", "3"), ("stop", "1")],
        ),
    ];
    static RGM: AgentMeta = AgentMeta {
        name: "fs",
        version: "rgmanager 2.0",
        shortdesc: "fs",
        longdesc: "fs",
        params: RGM_PARAMS,
        actions: RGM_ACTIONS,
        special: Some(Special::rgmanager(RGM_SPECIAL)),
    };

    #[test]
    fn rgmanager_dialect() {
        assert!(RGM.is_rgmanager() && !META.is_rgmanager());
        assert_eq!(META.dtd(), OCF_DTD);
        assert_eq!(RGM.primary_param().map(|p| p.name), Some("name"));
        assert!(META.primary_param().is_none());
        let xml = RGM.render();
        assert!(xml.contains("<resource-agent name=\"fs\" version=\"rgmanager 2.0\">"));
        assert!(xml.contains("<parameter name=\"name\" primary=\"1\">"));
        assert!(xml.contains(
            "<parameter name=\"mountpoint\" required=\"1\" unique=\"1\" reconfig=\"1\">"
        ));
        assert!(xml.contains("<parameter name=\"nfslock\" inherit=\"service%nfslock\">"));
        assert!(
            xml.contains("<action name=\"status\" depth=\"10\" timeout=\"30s\" interval=\"30s\"/>")
        );
        let attrs = xml.find("<attributes maxinstances=\"1\"/>").unwrap();
        let child = xml.find("<child type=\"nfsexport\"").unwrap();
        assert!(attrs < child);
        // OCF agents are untouched
        let ocf = META.render();
        assert!(!ocf.contains("primary") && !ocf.contains("inherit") && !ocf.contains("reconfig"));
    }

    #[test]
    fn timeouts_by_depth_and_names_once() {
        let secs = |d| RGM.default_timeout_at("status", d).map(|t| t.as_secs());
        assert_eq!(secs(0), Some(10));
        assert_eq!(secs(10), Some(30));
        assert_eq!(secs(20), Some(31));
        assert_eq!(secs(5), Some(10), "unknown depth: the first entry");
        assert_eq!(
            RGM.default_timeout_at("start", 20).map(|t| t.as_secs()),
            Some(900)
        );
        assert_eq!(RGM.default_timeout_at("stop", 0), None);
        assert_eq!(RGM.action_names(), vec!["start", "status", "verify-all"]);
    }
}
