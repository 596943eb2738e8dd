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

/// The lockspaces in `lvmlockctl --info` output: its `info=ls` lines.
pub fn parse_info(text: &str) -> Vec<Lockspace> {
    text.lines()
        .filter(|l| l.split_whitespace().next() == Some("info=ls"))
        .map(|l| {
            let field = |key: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .unwrap_or("")
                    .to_string()
            };
            Lockspace {
                name: field("ls_name="),
                vg: field("vg_name="),
            }
        })
        .collect()
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
        let out = "info=global_lockspace_exists 1\n\
                   info=ls ls_name=lvm_global vg_name= vg_uuid= vg_sysid= vg_args= lm_type=dlm host_id=0\n\
                   info=r name=GLLK type=gl mode=un sh_count=0 version=0\n\
                   info=ls ls_name=lvm_vg1 vg_name=vg1 vg_uuid=abc vg_sysid= vg_args=1.0.0: lm_type=dlm\n\
                   info=lk mode=ex version=0 flags=0 client_id=1\n";
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
        assert!(parse_info("info=global_lockspace_exists 0\n").is_empty());
    }
}
