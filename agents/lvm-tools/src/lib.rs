//! LVM for the agents that manage it: `LVM-activate`, the legacy `LVM` and
//! the rgmanager `lvm` persona. One crate of tools, so the legacy agent and
//! the persona stand on LVM itself rather than on another agent:
//!
//! * [`lvm`]: the `lvm` tool run as argument vectors, what a VG looks like
//!   to this node, what lvm.conf says, VG ownership by tag or system ID,
//!   activation and deactivation within the deadline, and the monitor;
//! * [`dm`]: device-mapper state read from sysfs, which is what makes
//!   monitor depth 0 cheap (no fork, no disk scan, no LVM lock).

pub mod dm;
pub mod lvm;
