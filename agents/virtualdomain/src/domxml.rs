//! What the agent reads from a domain's XML: its name, its disks (for the
//! migration safety warnings) and the storage pools and networks it uses
//! (`start_resources`). Parsed with quick-xml, never with grep.

use quick_xml::events::Event;
use quick_xml::Reader;

/// One `<disk>` of the domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disk {
    /// `device=` (disk, cdrom, floppy, lun).
    pub device: String,
    /// The image, device or volume (`<source file|dev|volume|name>`).
    pub source: Option<String>,
    /// `<driver cache=...>`.
    pub cache: Option<String>,
    pub readonly: bool,
    pub shareable: bool,
}

/// The parts of a domain XML the agent uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainXml {
    pub name: Option<String>,
    /// `<uuid>`, when the definition fixes one.
    pub uuid: Option<String>,
    /// `<domain type=...>`: the hypervisor driver (kvm, qemu, xen, lxc, test).
    pub kind: Option<String>,
    pub disks: Vec<Disk>,
    pub pools: Vec<String>,
    pub networks: Vec<String>,
}

fn attr(e: &quick_xml::events::BytesStart, key: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == key.as_bytes())
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// Parse a domain XML document; `Err` says why it is not one.
pub fn parse(xml: &str) -> Result<DomainXml, String> {
    let mut r = Reader::from_str(xml);
    let mut out = DomainXml::default();
    let mut path: Vec<String> = Vec::new();
    let mut disk: Option<Disk> = None;
    let mut name_text = String::new();
    let mut uuid_text = String::new();
    let mut saw_domain = false;
    loop {
        let ev = r
            .read_event()
            .map_err(|e| format!("XML error at byte {}: {e}", r.error_position()))?;
        let (start, empty) = match &ev {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
            if path.is_empty() {
                if tag != "domain" {
                    return Err(format!("root element is <{tag}>, not <domain>"));
                }
                saw_domain = true;
                out.kind = attr(&e, "type");
            }
            let in_devices = path.len() >= 2 && path[1] == "devices";
            match tag.as_str() {
                "disk" if in_devices && path.len() == 2 => {
                    disk = Some(Disk {
                        device: attr(&e, "device").unwrap_or_else(|| "disk".into()),
                        ..Default::default()
                    })
                }
                "source" => {
                    if let (Some(d), 3) = (disk.as_mut(), path.len()) {
                        d.source = ["file", "dev", "volume", "name", "dir"]
                            .iter()
                            .find_map(|k| attr(&e, k));
                    }
                    if let Some(p) = attr(&e, "pool") {
                        if !out.pools.contains(&p) {
                            out.pools.push(p);
                        }
                    }
                    if let Some(n) = attr(&e, "network") {
                        if !out.networks.contains(&n) {
                            out.networks.push(n);
                        }
                    }
                }
                "driver" => {
                    if let (Some(d), 3) = (disk.as_mut(), path.len()) {
                        d.cache = attr(&e, "cache");
                    }
                }
                "readonly" => {
                    if let Some(d) = disk.as_mut() {
                        d.readonly = true;
                    }
                }
                "shareable" => {
                    if let Some(d) = disk.as_mut() {
                        d.shareable = true;
                    }
                }
                _ => {}
            }
            if empty {
                if tag == "disk" {
                    out.disks.extend(disk.take());
                }
            } else {
                path.push(tag);
            }
            continue;
        }
        match ev {
            Event::Text(t) if path.len() == 2 && path[1] == "name" => {
                let text = t.decode().map_err(|e| e.to_string())?;
                name_text.push_str(&quick_xml::escape::unescape(&text).map_err(|e| e.to_string())?);
            }
            Event::Text(t) if path.len() == 2 && path[1] == "uuid" => {
                uuid_text.push_str(&t.decode().map_err(|e| e.to_string())?);
            }
            Event::GeneralRef(g) if path.len() == 2 && path[1] == "name" => {
                let ent = format!("&{};", String::from_utf8_lossy(&g));
                name_text.push_str(&quick_xml::escape::unescape(&ent).map_err(|e| e.to_string())?);
            }
            Event::End(_) => {
                let tag = path.pop().unwrap_or_default();
                if tag == "name" && path.len() == 1 {
                    out.name = Some(name_text.trim().to_string()).filter(|n| !n.is_empty());
                }
                if tag == "uuid" && path.len() == 1 {
                    out.uuid = Some(uuid_text.trim().to_string()).filter(|u| !u.is_empty());
                }
                if tag == "disk" && path.len() == 2 {
                    out.disks.extend(disk.take());
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_domain {
        return Err("no <domain> element".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_disks_pools_and_networks() {
        let x = r#"<?xml version="1.0"?>
<domain type='kvm'>
  <name>web &amp; db</name>
  <uuid> 3f1c2b9a-0d4e-4a8b-9c7d-1e2f3a4b5c6d </uuid>
  <metadata><name>not this</name></metadata>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='/shared/vm.qcow2'/>
    </disk>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='raw'/>
      <source pool='pool1' volume='v1'/>
      <shareable/>
    </disk>
    <disk type='file' device='cdrom'><source file='/iso/x.iso'/><readonly/></disk>
    <interface type='network'><source network='mignet'/></interface>
  </devices>
</domain>"#;
        let d = parse(x).unwrap();
        assert_eq!(d.name.as_deref(), Some("web & db"));
        assert_eq!(
            d.uuid.as_deref(),
            Some("3f1c2b9a-0d4e-4a8b-9c7d-1e2f3a4b5c6d")
        );
        assert_eq!(d.kind.as_deref(), Some("kvm"));
        assert_eq!(d.disks.len(), 3);
        assert_eq!(d.disks[0].cache.as_deref(), Some("none"));
        assert_eq!(d.disks[0].source.as_deref(), Some("/shared/vm.qcow2"));
        assert!(d.disks[1].shareable);
        assert_eq!(d.disks[1].source.as_deref(), Some("v1"));
        assert!(d.disks[2].readonly);
        assert_eq!(d.pools, vec!["pool1"]);
        assert_eq!(d.networks, vec!["mignet"]);
    }

    #[test]
    fn not_a_domain() {
        assert!(parse("<network><name>x</name></network>").is_err());
        assert!(parse("<domain><name>x</nam></domain>").is_err());
        assert_eq!(parse("<domain/>").unwrap().name, None);
        assert_eq!(parse("<domain/>").unwrap().uuid, None);
    }
}
