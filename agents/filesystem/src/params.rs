//! The parameter table (heartbeat's names, defaults and meanings), the
//! advertised actions, and the checks each value must pass: what the
//! meta-data prints and what the parser reads, from one place.

use std::time::Duration;

use ocf::{ActionSpec, AgentMeta, ParamSpec};

use crate::*;

pub(crate) static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("device")
        .identity()
        .required()
        .short("block device")
        .long("The block device for the filesystem, or -U/-L (also UUID=, LABEL=, --uuid=, --label=) to name it by UUID or label, or an NFS/CIFS specification (server:/export, //server/share), or the source directory of a bind mount (an absolute path). Anything else that starts with '-' is refused (OCF_ERR_INSTALLED at start, as the heartbeat agent answers): it would be read as an option of mount."),
    ParamSpec::string("directory")
        .identity()
        .required()
        .short("mount point")
        .long("The mount point for the filesystem. Created if missing. Trailing slashes are ignored; / is refused."),
    ParamSpec::string("fstype")
        .required()
        .short("filesystem type")
        .long("The type of filesystem to be mounted (ext4, xfs, nfs, fuse.sshfs, ...): letters, digits and ._+- not starting with '-'. Use 'none' with options 'bind' for a bind mount."),
    ParamSpec::string("options")
        .short("options")
        .long("Any extra options to be given as -o options to mount. For bind mounts, add 'bind' here and set fstype to 'none'; options such as 'bind,ro' are applied to the bind mount only."),
    ParamSpec::string("statusfile_prefix")
        .default(".Filesystem_status/")
        .short("status file prefix")
        .long("The prefix, relative to the mount point, of the status file written and read back by monitor depth 20; it must stay inside the mount (no leading /, no '..'). The file name adds the resource instance, the clone number if any, and the node name."),
    ParamSpec::one_of("run_fsck", &["auto", "force", "no"])
        .default("auto")
        .short("run_fsck")
        .long("How to decide whether to run fsck before mounting: 'auto' (by filesystem type; journalling and network filesystems skip it), 'force' (always), 'no' (never). An fsck exit code of 4 or more fails the start."),
    ParamSpec::boolean("fast_stop")
        .default("no")
        .short("fast stop")
        .long("If yes, each mount gets 6 seconds to unmount (processes are signalled in that time); if no, the whole stop timeout. The stop never runs past its timeout either way."),
    ParamSpec::boolean("force_clones")
        .default("false")
        .short("allow running as a clone, regardless of filesystem type")
        .long("Local filesystems (ext4, xfs, ...) are refused as clones, because mounting them on two nodes corrupts them. Set this to true only for setups where each node mounts its own device (e.g. glusterfs bricks)."),
    ParamSpec::string("force_unmount")
        .default("true")
        .check(check_force_unmount)
        .short("Kill processes before unmount")
        .long("How to treat processes that use the mount point at stop. 'true' and 'safe': signal them (term_signals, then kill_signals); both use a /proc walk that never blocks on unresponsive NFS servers and matches the exact mount, never the whole device. 'false': signal nothing."),
    ParamSpec::string("term_signals")
        .default("TERM")
        .check(check_signals)
        .short("Signals for the graceful phase of stop")
        .long("Signals (names or numbers, whitespace separated) sent to processes using the mount during the first half of a mount's stop time."),
    ParamSpec::string("kill_signals")
        .default("KILL")
        .check(check_signals)
        .short("Signals for the forceful phase of stop")
        .long("Signals (names or numbers, whitespace separated) sent to processes still using the mount during the second half of a mount's stop time."),
    ParamSpec::string("signal_delay")
        .default("1")
        .check(check_delay)
        .short("Seconds to wait after signalling")
        .long("How many seconds (decimals allowed) to wait after sending signals before trying to unmount again."),
];

pub(crate) static ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", 60),
    ActionSpec::new("stop", 60),
    ActionSpec::new("monitor", 40).interval(20).depth(0),
    ActionSpec::new("validate-all", 5),
    ActionSpec::new("meta-data", 5),
];

pub(crate) static META: AgentMeta = AgentMeta {
    name: "Filesystem",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Manages filesystem mounts",
    longdesc: "Mounts a filesystem (block device, NFS/CIFS export or bind mount) on a mount point, checks it and unmounts it.\n\nMonitor depth 0 (also the probe) checks that the filesystem is mounted, from /proc/self/mountinfo. Set OCF_CHECK_LEVEL for deeper checks:\n\n10: read the first block of the device, bypassing the cache (nothing to do for non-block devices such as NFS, CIFS or bind mounts).\n\n20: write a status file with O_DIRECT|O_SYNC and read it back. The status file and its directory must be root's own, which NFS exports with root_squash do not allow: use depth 10 or no_root_squash there. The file is reached without following symlinks; a symlink, FIFO, hard link or foreign directory planted in its place (a world-writable mount) is reported and removed, never written through.\n\nStop unmounts everything mounted below the mount point first (deepest first), then the mount point, signalling the processes that use it, and fails if anything stays mounted.",
    params: PARAMS,
    actions: ACTIONS,
    special: None,
};

pub(crate) fn check_force_unmount(v: &str) -> Result<(), String> {
    if v == "safe" || ocf::parse_bool(v).is_some() {
        Ok(())
    } else {
        Err("expected true, safe or false".into())
    }
}

pub(crate) fn check_signals(v: &str) -> Result<(), String> {
    holders::parse_signals(v).map(|_| ())
}

pub(crate) fn parse_delay(v: &str) -> Result<Duration, String> {
    let s: f64 = v
        .trim()
        .parse()
        .map_err(|_| "not a number of seconds".to_string())?;
    if !(0.0..=3600.0).contains(&s) {
        return Err("out of range".into());
    }
    Ok(Duration::from_secs_f64(s))
}

pub(crate) fn check_delay(v: &str) -> Result<(), String> {
    parse_delay(v).map(|_| ())
}

/// A filesystem type name as mount -t, fsck -t and modprobe take it:
/// letters, digits and `._+-`, not starting with `-` (empty: detected).
pub(crate) fn check_fstype(v: &str) -> Result<(), String> {
    let ok = v.is_empty()
        || (v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c)));
    if ok {
        Ok(())
    } else {
        Err(format!("fstype '{v}' is not a filesystem type name"))
    }
}

/// The status file must stay inside the mount: a relative prefix without
/// `..` (heartbeat writes wherever the prefix points).
pub(crate) fn check_statusfile_prefix(v: &str) -> Result<(), String> {
    use std::path::Component;
    let p = Path::new(v);
    if p.is_absolute() {
        return Err(format!(
            "statusfile_prefix: '{v}' is absolute; it must be relative to the mount point"
        ));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "statusfile_prefix: '{v}' holds '..'; it must stay inside the mount point"
        ));
    }
    Ok(())
}
