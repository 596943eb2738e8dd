//! The CIB the cluster tests write and read: the seed every node starts
//! from, and resources written exactly as for `ocf:heartbeat:*` before
//! the provider is switched to ours. Written with quick-xml's writer (it
//! escapes the values) and read with its reader.

use std::io;

use quick_xml::Writer;

use super::PROVIDER;
use crate::support::xml::{document, elements, empty, get};

/// `<tag id="<id>">` holding one nvpair per `(name, value)`, each with the
/// id `<id>-<name>` (cluster_property_set, instance_attributes, ...).
fn nvpair_set<W: io::Write>(
    w: &mut Writer<W>,
    tag: &str,
    id: &str,
    pairs: &[(&str, &str)],
) -> io::Result<()> {
    w.create_element(tag)
        .with_attribute(("id", id))
        .write_inner_content(|w| {
            for (name, value) in pairs {
                nvpair(w, &format!("{id}-{name}"), name, value)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn nvpair<W: io::Write>(w: &mut Writer<W>, id: &str, name: &str, value: &str) -> io::Result<()> {
    empty(w, "nvpair", &[("id", id), ("name", name), ("value", value)])
}

/// The CIB every node starts from: no fencing, DC elected after 2 s
/// instead of 20, resources stay where they run.
pub fn seed_cib() -> String {
    let cib = [
        ("crm_feature_set", "3.16.1"),
        ("validate-with", "pacemaker-3.9"),
        ("epoch", "1"),
        ("num_updates", "0"),
        ("admin_epoch", "0"),
    ];
    document(true, |w| {
        w.create_element("cib")
            .with_attributes(cib)
            .write_inner_content(|w| {
                w.create_element("configuration").write_inner_content(|w| {
                    w.create_element("crm_config").write_inner_content(|w| {
                        nvpair_set(
                            w,
                            "cluster_property_set",
                            "cib-bootstrap-options",
                            &[("stonith-enabled", "false"), ("dc-deadtime", "2s")],
                        )
                    })?;
                    for tag in ["nodes", "resources", "constraints"] {
                        empty(w, tag, &[])?;
                    }
                    w.create_element("rsc_defaults").write_inner_content(|w| {
                        nvpair_set(
                            w,
                            "meta_attributes",
                            "rsc-options",
                            &[("resource-stickiness", "100")],
                        )
                    })?;
                    Ok(())
                })?;
                empty(w, "status", &[])
            })?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Resource definitions, written as for the heartbeat agents

/// The primitives in a piece of CIB XML, in order, as `id ocf:provider:type`.
pub fn primitives(xml: &str) -> Vec<String> {
    elements(xml, "primitive")
        .iter()
        .map(|p| {
            let a = |n| get(p, n).unwrap_or("?");
            format!("{} ocf:{}:{}", a("id"), a("provider"), a("type"))
        })
        .collect()
}

/// The result (`rc-code`) of operation `key` (`fs1_monitor_3000`) on
/// `node` in the status section `status`.
pub fn op_rc(status: &str, key: &str, node: &str) -> Option<i32> {
    elements(status, "lrm_rsc_op")
        .iter()
        .filter(|e| get(e, "operation_key") == Some(key) && get(e, "on_node") == Some(node))
        .find_map(|e| get(e, "rc-code")?.parse().ok())
}

/// One operation of a primitive; `depth` is its OCF_CHECK_LEVEL.
pub struct Op {
    name: &'static str,
    interval: &'static str,
    timeout: &'static str,
    depth: Option<u32>,
}

pub fn op(name: &'static str, interval: &'static str, timeout: &'static str) -> Op {
    Op {
        name,
        interval,
        timeout,
        depth: None,
    }
}

/// A primitive exactly as for `ocf:heartbeat:<agent>`.
pub fn heartbeat_primitive(
    id: &str,
    agent: &str,
    params: &[(&str, String)],
    meta: &[(&str, &str)],
    ops: &[Op],
) -> String {
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let primitive = [
        ("id", id),
        ("class", "ocf"),
        ("provider", "heartbeat"),
        ("type", agent),
    ];
    document(false, |w| {
        w.create_element("primitive")
            .with_attributes(primitive)
            .write_inner_content(|w| {
                nvpair_set(w, "instance_attributes", &format!("{id}-ia"), &params)?;
                if !meta.is_empty() {
                    nvpair_set(w, "meta_attributes", &format!("{id}-meta"), meta)?;
                }
                w.create_element("operations").write_inner_content(|w| {
                    for o in ops {
                        let oid = format!("{id}-{}-{}", o.name, o.interval);
                        let op = w.create_element("op").with_attributes([
                            ("id", oid.as_str()),
                            ("name", o.name),
                            ("interval", o.interval),
                            ("timeout", o.timeout),
                        ]);
                        match o.depth {
                            Some(d) => op.write_inner_content(|w| {
                                w.create_element("instance_attributes")
                                    .with_attribute(("id", format!("{oid}-ia").as_str()))
                                    .write_inner_content(|w| {
                                        let id = format!("{oid}-depth");
                                        nvpair(w, &id, "OCF_CHECK_LEVEL", &d.to_string())
                                    })?;
                                Ok(())
                            })?,
                            None => op.write_empty()?,
                        };
                    }
                    Ok(())
                })?;
                Ok(())
            })?;
        Ok(())
    })
}

/// A heartbeat configuration switched to our provider, and nothing else.
pub fn our_provider(heartbeat_xml: &str) -> String {
    let from = "provider=\"heartbeat\"";
    assert!(heartbeat_xml.contains(from));
    heartbeat_xml.replace(from, &format!("provider=\"{PROVIDER}\""))
}
