//! The lockspaces lvmlockd holds, as `lvmlockctl --info` tells them.
//!
//! Each shared VG has its own lockspace (`lvm_<vg>`), and with dlm the
//! global lock lives in `lvm_global`. Stop must see them all gone before it
//! ends the daemon: a daemon killed with lockspaces held leaves their locks
//! to the lock manager until it times out or this node is fenced. The
//! heartbeat agent asks `dlm_tool ls lvm_global` (dlm only, and only the
//! global one); lvmlockd itself knows every lockspace of every lock manager.

/// One lockspace: its name and the VG it belongs to (empty for the global
/// one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lockspace {
    pub name: String,
    pub vg: String,
}

/// The lockspaces in `lvmlockctl --info` output: each `VG <name> ...`
/// line opens a VG's block (the global lock's block has no name: its first
/// word is a `key=value`), each `LS <lock manager> <lockspace>` line in it
/// is a lockspace held.
pub fn parse_info(text: &str) -> Vec<Lockspace> {
    let mut vg = String::new();
    let mut found = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("VG") => {
                vg = words
                    .next()
                    .filter(|w| !w.contains('='))
                    .unwrap_or("")
                    .to_string();
            }
            Some("LS") => {
                if let Some(name) = words.last() {
                    found.push(Lockspace {
                        name: name.to_string(),
                        vg: vg.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    found
}

/// The names people know the lockspaces by: the VG, else the lockspace.
pub fn describe(lockspaces: &[Lockspace]) -> String {
    lockspaces
        .iter()
        .map(|l| {
            if l.vg.is_empty() {
                l.name.clone()
            } else {
                format!("VG {}", l.vg)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockspaces_are_the_info_ls_lines() {
        // lvmlockctl 2.03.16 with dlm, the global lock and one shared VG
        let out = "VG vg_uuid= lock_type= \n\
                   LS  lvm_global\n\
                   LK VG un ver 0\n\
                   LK GL un ver 1\n\
                   \n\
                   VG vg1 lock_type=dlm MWIwsj-PuTm-PCtV-JtQi-XGi6-GMsW-ydUMSQ\n\
                   LS dlm lvm_vg1\n\
                   LK VG un ver 3\n\
                   LK LV un Ekh0ci-urgL-4PAJ-0Mm3-VnmP-uqMa-dWz4rn\n";
        let ls = parse_info(out);
        assert_eq!(
            ls,
            vec![
                Lockspace {
                    name: "lvm_global".into(),
                    vg: "".into()
                },
                Lockspace {
                    name: "lvm_vg1".into(),
                    vg: "vg1".into()
                },
            ]
        );
        assert_eq!(describe(&ls), "lvm_global, VG vg1");
        assert!(parse_info("").is_empty());
        assert!(parse_info("\n").is_empty());
    }
}
