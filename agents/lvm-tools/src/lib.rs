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
