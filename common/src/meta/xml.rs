//! The meta-data XML: what `meta-data` prints for cluster managers, in the
//! OCF 1.0 form (or rgmanager's dialect, see the parent module).

use std::io::Cursor;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::{ActionSpec, AgentMeta};
use crate::params::ParamSpec;

/// The meta-data document.
pub fn render(meta: &AgentMeta) -> String {
    let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 2);
    write(meta, &mut w).expect("writing XML to memory cannot fail");
    let mut xml = String::from_utf8(w.into_inner().into_inner()).expect("quick-xml writes UTF-8");
    xml.push('\n');
    xml
}

fn write(meta: &AgentMeta, w: &mut Writer<Cursor<Vec<u8>>>) -> std::io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", None, None)))?;
    let doctype = format!("resource-agent SYSTEM \"{}\"", meta.dtd());
    w.write_event(Event::DocType(BytesText::from_escaped(doctype)))?;
    w.create_element("resource-agent")
        .with_attribute(("name", meta.name))
        .with_attribute(("version", meta.version))
        .write_inner_content(|w| {
            w.create_element("version")
                .write_text_content(BytesText::new("1.0"))?;
            desc(w, "longdesc", meta.longdesc)?;
            desc(w, "shortdesc", meta.shortdesc)?;
            w.create_element("parameters").write_inner_content(|w| {
                for p in meta.all_params() {
                    write_param(w, p)?;
                }
                Ok(())
            })?;
            w.create_element("actions").write_inner_content(|w| {
                for a in meta.actions {
                    write_action(w, a)?;
                }
                Ok(())
            })?;
            if let Some(special) = &meta.special {
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
    if p.primary {
        el = el.with_attribute(("primary", "1"));
    }
    if p.required {
        el = el.with_attribute(("required", "1"));
    }
    if let Some(parent) = p.inherit {
        el = el.with_attribute(("inherit", parent));
    }
    if p.unique {
        el = el.with_attribute(("unique", "1"));
    }
    if p.reconfig {
        el = el.with_attribute(("reconfig", "1"));
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
