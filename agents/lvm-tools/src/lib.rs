//! LVM for the agents that manage it: `LVM-activate`, the legacy `LVM` and
//! the rgmanager `lvm` persona. One crate of tools, so the legacy agent and
//! the persona stand on LVM itself rather than on another agent:
//!
//! * [`lvm`]: the `lvm` tool run as argument vectors, what a VG looks like
//!   to this node, what lvm.conf says, deactivation within the deadline;
//! * [`owner`]: who may activate a VG (lock daemon, tag, system ID), and
//!   claiming or releasing it;
//! * [`dm`]: device-mapper state read from sysfs, which is what makes
//!   monitor depth 0 cheap (no fork, no disk scan, no LVM lock);
//! * [`monitor`]: the monitor of both LVM agents, over [`dm`].

pub mod dm;
pub mod lvm;
pub mod monitor;
pub mod owner;

/// The longest VG or LV name LVM accepts (`NAME_LEN` 128, less the NUL).
pub const MAX_NAME_LEN: usize = 127;

/// Why `name` cannot be a VG or LV name by LVM's rules (`validate_name`
/// in lvm2's lib/misc/lvm-string.c), or `None`: only `a-zA-Z0-9+_.-`, not
/// starting with `-` (so no value can become an option of an lvm tool),
/// not `.` or `..`, at most [`MAX_NAME_LEN`] characters.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.starts_with('-') {
        Some("starts with '-'")
    } else if name == "." || name == ".." {
        Some("is '.' or '..'")
    } else if name.len() > MAX_NAME_LEN {
        Some("is longer than 127 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+_.-".contains(&b))
    {
        Some("holds characters other than a-z A-Z 0-9 + _ . -")
    } else {
        None
    }
}

/// Check the VG name given as parameter `vg_param` (and the LV name
/// `lv_param`) against LVM's name rules before any lvm tool sees it: a
/// name that breaks them names no volume this node could have, and is
/// refused as the heartbeat agents refuse it (OCF_ERR_INSTALLED: the
/// dispatcher then answers stop 0, probe 7, since nothing of it can be
/// active).
pub fn check_names(
    vg_param: &str,
    vg: &str,
    lv_param: &str,
    lv: Option<&str>,
) -> Result<(), ocf::Failure> {
    let named = [(vg_param, Some(vg)), (lv_param, lv)];
    for (param, value) in named {
        let Some(v) = value else { continue };
        if let Some(why) = name_problem(v) {
            return Err(ocf::Failure::installed(format!(
                "parameter '{param}': '{v}' is not a valid LVM name: it {why}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lvm_name_rules() {
        for ok in ["vg", "vg-1", "lv_2.x", "a+b", &"v".repeat(127)] {
            assert_eq!(name_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "-vg",
            "--config=x",
            ".",
            "..",
            "a/b",
            "a b",
            "$(x)",
            "vé",
            &"v".repeat(128),
        ] {
            assert!(name_problem(bad).is_some(), "{bad}");
        }
        assert!(check_names("vgname", "vg", "lvname", Some("-lv")).is_err());
        assert!(check_names("vgname", "vg", "lvname", None).is_ok());
    }
}
