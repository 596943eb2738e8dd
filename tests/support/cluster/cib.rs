//! The CIB the cluster tests write and read: the seed every node starts
//! from, and resources written exactly as for `ocf:heartbeat:*` before
//! the provider is switched to ours.

use super::PROVIDER;

/// The CIB every node starts from: no fencing, DC elected after 2 s
/// instead of 20, resources stay where they run.
pub const SEED_CIB: &str = r#"<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>
        <nvpair id="cib-bootstrap-options-dc-deadtime" name="dc-deadtime" value="2s"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources/>
    <constraints/>
    <rsc_defaults>
      <meta_attributes id="rsc-options">
        <nvpair id="rsc-options-resource-stickiness" name="resource-stickiness" value="100"/>
      </meta_attributes>
    </rsc_defaults>
  </configuration>
  <status/>
</cib>
"#;

/// The value of attribute `name` in the text of one XML element.
pub fn attr<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = element[start..].find('"')?;
    Some(&element[start..start + len])
}

// ---------------------------------------------------------------------------
// Resource definitions, written as for the heartbeat agents

/// The primitives in a piece of CIB XML, in order, as `id ocf:provider:type`.
pub fn primitives(xml: &str) -> Vec<String> {
    xml.split("<primitive ")
        .skip(1)
        .map(|e| format!(" {}", e.split('>').next().unwrap_or("")))
        .map(|e| {
            let a = |n| attr(&e, n).unwrap_or("?");
            format!("{} ocf:{}:{}", a("id"), a("provider"), a("type"))
        })
        .collect()
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
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
    let mut x =
        format!("<primitive id=\"{id}\" class=\"ocf\" provider=\"heartbeat\" type=\"{agent}\">");
    x += &format!("<instance_attributes id=\"{id}-ia\">");
    for (k, v) in params {
        x += &format!(
            "<nvpair id=\"{id}-ia-{k}\" name=\"{k}\" value=\"{}\"/>",
            escape(v)
        );
    }
    x += "</instance_attributes>";
    if !meta.is_empty() {
        x += &format!("<meta_attributes id=\"{id}-meta\">");
        for (k, v) in meta {
            x += &format!(
                "<nvpair id=\"{id}-meta-{k}\" name=\"{k}\" value=\"{}\"/>",
                escape(v)
            );
        }
        x += "</meta_attributes>";
    }
    x += "<operations>";
    for o in ops {
        let oid = format!("{id}-{}-{}", o.name, o.interval);
        x += &format!(
            "<op id=\"{oid}\" name=\"{}\" interval=\"{}\" timeout=\"{}\"",
            o.name, o.interval, o.timeout
        );
        match o.depth {
            Some(d) => {
                x += &format!(
                    "><instance_attributes id=\"{oid}-ia\"><nvpair id=\"{oid}-depth\" \
                     name=\"OCF_CHECK_LEVEL\" value=\"{d}\"/></instance_attributes></op>"
                )
            }
            None => x += "/>",
        }
    }
    x += "</operations></primitive>";
    x
}

/// A heartbeat configuration switched to our provider, and nothing else.
pub fn our_provider(heartbeat_xml: &str) -> String {
    let from = "provider=\"heartbeat\"";
    assert!(heartbeat_xml.contains(from));
    heartbeat_xml.replace(from, &format!("provider=\"{PROVIDER}\""))
}
