//! Meta-data: what an agent tells the cluster manager about itself.
//!
//! Rendered with quick-xml from the same [`ParamSpec`] table the parser uses,
//! in the OCF 1.0 form that `ocf-tester` validates against `ra-api-1.dtd`
//! (`xmllint --valid`), which is also what `crm_resource --show-metadata` and
//! `pcs resource describe` read. rgmanager's `<special tag="rgmanager">` block
//! has a place here too, for the rgmanager personas.

use std::io::Cursor;
use std::time::Duration;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use crate::params::ParamSpec;

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

/// `<special tag="...">`: a caller-specific block (rgmanager's).
#[derive(Clone, Copy, Debug)]
pub struct Special {
    pub tag: &'static str,
    pub children: &'static [SpecialElement],
}

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

    /// The meta-data document.
    pub fn render(&self) -> String {
        let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 2);
        self.write(&mut w)
            .expect("writing XML to memory cannot fail");
        let mut xml =
            String::from_utf8(w.into_inner().into_inner()).expect("quick-xml writes UTF-8");
        xml.push('\n');
        xml
    }

    fn write(&self, w: &mut Writer<Cursor<Vec<u8>>>) -> std::io::Result<()> {
        w.write_event(Event::Decl(BytesDecl::new("1.0", None, None)))?;
        w.write_event(Event::DocType(BytesText::from_escaped(
            "resource-agent SYSTEM \"ra-api-1.dtd\"",
        )))?;
        w.create_element("resource-agent")
            .with_attribute(("name", self.name))
            .with_attribute(("version", self.version))
            .write_inner_content(|w| {
                w.create_element("version")
                    .write_text_content(BytesText::new("1.0"))?;
                desc(w, "longdesc", self.longdesc)?;
                desc(w, "shortdesc", self.shortdesc)?;
                w.create_element("parameters").write_inner_content(|w| {
                    for p in self.params {
                        write_param(w, p)?;
                    }
                    Ok(())
                })?;
                w.create_element("actions").write_inner_content(|w| {
                    for a in self.actions {
                        write_action(w, a)?;
                    }
                    Ok(())
                })?;
                if let Some(special) = &self.special {
                    w.create_element("special")
                        .with_attribute(("tag", special.tag))
                        .write_inner_content(|w| {
                            for c in special.children {
                                w.create_element(c.element)
                                    .with_attributes(c.attrs.iter().copied())
                                    .write_empty()?;
                            }
                            Ok(())
                        })?;
                }
                Ok(())
            })?;
        Ok(())
    }
}

fn desc(w: &mut Writer<Cursor<Vec<u8>>>, element: &str, text: &str) -> std::io::Result<()> {
    w.create_element(element)
        .with_attribute(("lang", "en"))
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

fn write_param(w: &mut Writer<Cursor<Vec<u8>>>, p: &ParamSpec) -> std::io::Result<()> {
    let mut el = w
        .create_element("parameter")
        .with_attribute(("name", p.name));
    if p.required {
        el = el.with_attribute(("required", "1"));
    }
    if p.unique {
        el = el.with_attribute(("unique", "1"));
    }
    el.write_inner_content(|w| {
        desc(
            w,
            "longdesc",
            if p.longdesc.is_empty() {
                p.shortdesc
            } else {
                p.longdesc
            },
        )?;
        desc(w, "shortdesc", p.shortdesc)?;
        let mut content = w
            .create_element("content")
            .with_attribute(("type", p.ty.content_type()));
        if let Some(d) = p.default {
            content = content.with_attribute(("default", d));
        }
        content.write_empty()?;
        Ok(())
    })?;
    Ok(())
}

fn write_action(w: &mut Writer<Cursor<Vec<u8>>>, a: &ActionSpec) -> std::io::Result<()> {
    let timeout = format!("{}s", a.timeout);
    let interval = a.interval.map(|i| format!("{i}s"));
    let depth = a.depth.map(|d| d.to_string());
    let mut el = w.create_element("action").with_attribute(("name", a.name));
    if let Some(d) = &depth {
        el = el.with_attribute(("depth", d.as_str()));
    }
    el = el.with_attribute(("timeout", timeout.as_str()));
    if let Some(i) = &interval {
        el = el.with_attribute(("interval", i.as_str()));
    }
    if let Some(r) = a.role {
        el = el.with_attribute(("role", r));
    }
    el.write_empty()?;
    Ok(())
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
    }
}
