//! `fs`: the rgmanager persona of the Filesystem agent.
//!
//! rgmanager (Red Hat Cluster Suite) loads `/usr/share/cluster/fs.sh`, reads
//! its meta-data at start-up and runs it with nothing but OCF variables in
//! the environment (no `PATH`, no `LANG`), `OCF_RESOURCE_INSTANCE=fs:<name>`,
//! `OCF_CHECK_LEVEL` as the status depth and, on RHEL6,
//! `OCF_RESKEY_RGMANAGER_meta_timeout` in seconds. Installed under that name,
//! this binary takes its place: fs.sh's parameters (`name`, `mountpoint`,
//! `device`, `fstype`, `force_unmount`, `quick_status`, `self_fence`,
//! `nfslock`, `nfsrestart`, `fsid`, `force_fsck`, `options`, `use_findmnt`),
//! its rgmanager meta-data (primary attribute, inheritance, child ordering,
//! status depths and intervals), its actions.
//!
//! Mounting, checking and unmounting are the Filesystem agent's
//! ([`ra_filesystem::Filesystem`]); this crate only maps rgmanager's names
//! and conventions onto it:
//!
//! | fs.sh | here |
//! |---|---|
//! | `mountpoint`, `device`, `fstype`, `options` | Filesystem `directory`, `device`, `fstype` (may be empty: mount detects it), `options` |
//! | `force_unmount` | Filesystem `force_unmount=true` (TERM, then KILL, from a /proc walk that cannot hang) or `false` |
//! | `force_fsck` | Filesystem `run_fsck=force`, else `auto` (journalled filesystems skip fsck) |
//! | status depth 0 / 10 / 20 | Filesystem monitor depth 0 (mounted) / 10 (uncached read of the device) / 20 (write and read-back of a status file); `quick_status` stays at depth 0, `ro` in `options` stops at 10 |
//! | `self_fence` | a failed stop reboots the node (`reboot -fn`) |
//! | `nfslock` | before a forced unmount, the kernel's `lockd` threads are killed so NFS locks on the filesystem are dropped |
//! | `nfsrestart` | when a forced unmount fails, the NFS server is restarted (`systemctl restart nfs-server`) and the unmount tried again |
//! | `fsid`, `use_findmnt` | accepted; `fsid` is for child `nfsexport`/`nfsclient` resources, and the mount table is always `/proc/self/mountinfo` (never findmnt, never blocking on autofs) |

use std::path::PathBuf;

use ocf::{
    info, rgmanager, warn, ActionSpec, AgentMeta, Context, Failure, OcfResult, ParamSpec, Params,
    ResourceAgent, Special, SpecialElement,
};
use ra_filesystem::{device, mounts, Config, Filesystem, ForceUnmount};

/// The types fs.sh accepts (anything else is for `clusterfs` or `netfs`).
pub const FSTYPES: &[&str] = &[
    "ext2", "ext3", "ext4", "btrfs", "jfs", "xfs", "reiserfs", "vfat", "tmpfs", "vxfs",
];

static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("name")
        .identity()
        .primary()
        .short("File System Name")
        .long("Symbolic name for this file system; rgmanager names the resource fs:<name>."),
    ParamSpec::string("mountpoint")
        .identity()
        .required()
        .unique()
        .short("Mount Point")
        .long("Path in the file system hierarchy to mount this file system on. Created if missing; / is refused."),
    ParamSpec::string("device")
        .identity()
        .required()
        .unique()
        .short("Device or Label")
        .long("Block device, file system label (LABEL=...) or UUID (UUID=...) of the file system."),
    ParamSpec::string("fstype")
        .check(check_fstype)
        .short("File system type")
        .long("File system type: ext2, ext3, ext4, btrfs, jfs, xfs, reiserfs, vfat, tmpfs or vxfs. If not specified, mount(8) determines it."),
    ParamSpec::boolean("force_unmount")
        .short("Force Unmount")
        .long("If set, processes using the file system are killed (TERM, then KILL) when the resource stops. Otherwise the unmount fails while it is in use, and the service is restarted."),
    ParamSpec::boolean("quick_status")
        .short("Quick/brief status checks.")
        .long("If set, status only checks that the file system is mounted, at every depth: no read or write test."),
    ParamSpec::boolean("self_fence")
        .short("Seppuku Unmount")
        .long("If set and unmounting the file system fails, the node reboots immediately (reboot -fn). Usually combined with force_unmount."),
    ParamSpec::boolean("nfslock")
        .inherit("nfslock")
        .short("Enable NFS lock workarounds")
        .long("If set, a forced unmount first kills the kernel lock manager (lockd) so that NFS clients' locks on this file system are dropped. Inherited from the service's nfslock attribute."),
    ParamSpec::boolean("nfsrestart")
        .short("Enable NFS daemon and lockd workaround")
        .long("If set and a forced unmount fails, the NFS server is restarted to drop its references to the file system, and the unmount is tried again. Needs force_unmount; a last resort, not compatible with an nfsserver resource."),
    ParamSpec::string("fsid")
        .short("NFS File system ID")
        .long("File system ID for NFS exports of this file system; read by child nfsexport/nfsclient resources, which may override it."),
    ParamSpec::boolean("force_fsck")
        .short("Force fsck support")
        .long("If set, the file system is checked with fsck before mounting even if it is journalled. Non-journalled file systems (ext2, vfat) are always checked."),
    ParamSpec::string("options")
        .short("Mount Options")
        .long("Options used when the file system is mounted (comma separated, as mount -o takes them). With ro, status skips the write test."),
    ParamSpec::boolean("use_findmnt")
        .short("Utilize findmnt to detect if and where filesystems are mounted")
        .long("Accepted for compatibility and ignored: the mount table is always read from /proc/self/mountinfo, which never blocks on autofs or dead network storage."),
];

static ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", 900),
    ActionSpec::new("stop", 30),
    // mounted in the right place
    ActionSpec::new("status", 10).interval(60),
    ActionSpec::new("monitor", 10).interval(60),
    // the device can be read
    ActionSpec::new("status", 30).interval(30).depth(10),
    ActionSpec::new("monitor", 30).interval(30).depth(10),
    // the file system can be written (unless mounted ro)
    ActionSpec::new("status", 30).interval(60).depth(20),
    ActionSpec::new("monitor", 30).interval(60).depth(20),
    ActionSpec::new("recover", 930),
    ActionSpec::new("reload", 10),
    ActionSpec::new("reconfig", 10),
    ActionSpec::new("meta-data", 5),
    ActionSpec::new("validate-all", 5),
    ActionSpec::new("verify-all", 5),
];

static SPECIAL: &[SpecialElement] = &[
    SpecialElement::new("attributes", &[("maxinstances", "1")]),
    SpecialElement::new("child", &[("type", "fs"), ("start", "1"), ("stop", "3")]),
    SpecialElement::new(
        "child",
        &[("type", "clusterfs"), ("start", "1"), ("stop", "3")],
    ),
    SpecialElement::new(
        "child",
        &[("type", "nfsexport"), ("start", "3"), ("stop", "1")],
    ),
];

static META: AgentMeta = AgentMeta {
    name: "fs",
    version: "rgmanager 2.0",
    shortdesc: "Defines a file system mount.",
    longdesc: "A standard (not clustered, not shared) file system mount for rgmanager, in place of fs.sh; built on the heartbeat-rs Filesystem agent.\n\nStatus depth 0 checks that the file system is mounted on the mount point (from /proc/self/mountinfo). Depth 10 also reads the device, bypassing the cache; depth 20 also writes a status file with O_DIRECT|O_SYNC and reads it back (skipped when mounted ro). Every check ends inside the operation's timeout, even on hung storage.\n\nStop unmounts everything mounted below the mount point first, then the mount point; with force_unmount the processes using it are signalled (TERM, then KILL), found by a /proc walk that never blocks on unresponsive network file systems.",
    params: PARAMS,
    actions: ACTIONS,
    special: Some(Special::rgmanager(SPECIAL)),
};

fn check_fstype(v: &str) -> Result<(), String> {
    if FSTYPES.contains(&v) {
        Ok(())
    } else {
        Err(format!(
            "file system type not supported by fs (one of {}; clusterfs and netfs handle the others)",
            FSTYPES.join(", ")
        ))
    }
}

/// The Filesystem monitor depth a status depth maps to.
pub fn monitor_depth(requested: u32, quick_status: bool, read_only: bool) -> u32 {
    match requested {
        _ if quick_status => 0,
        0..=9 => 0,
        10..=19 => 10,
        _ if read_only => 10,
        _ => 20,
    }
}

/// The Filesystem settings for fs.sh's parameters.
pub fn filesystem_config(p: &Params) -> Config {
    let text = |name: &str| p.str(name).unwrap_or_default().to_string();
    Config {
        device: text("device"),
        directory: text("mountpoint"),
        fstype: text("fstype"),
        options: text("options"),
        run_fsck: if p.bool("force_fsck") {
            "force"
        } else {
            "auto"
        }
        .into(),
        force_unmount: if p.bool("force_unmount") {
            ForceUnmount::Kill
        } else {
            ForceUnmount::No
        },
        ..Config::default()
    }
}

/// One `fs` resource.
#[derive(Debug)]
pub struct Fs {
    fs: Filesystem,
    mountpoint: PathBuf,
    quick_status: bool,
    self_fence: bool,
    nfslock: bool,
    nfsrestart: bool,
    force_unmount: bool,
    read_only: bool,
}

impl ResourceAgent for Fs {
    fn meta() -> &'static AgentMeta {
        &META
    }

    /// rgmanager runs `restart`, which fs.sh and lvm.sh accept but their
    /// DTD cannot list.
    const UNLISTED_ACTIONS: &'static [&'static str] = &["restart"];

    fn configure(p: Params, _ctx: &Context) -> Result<Self, Failure> {
        if p.str("name").filter(|n| !n.trim().is_empty()).is_none() {
            return Err(Failure::configured("No file system name specified (name)"));
        }
        let fs = Filesystem::new(&filesystem_config(&p))?;
        Ok(Fs {
            mountpoint: PathBuf::from(p.str("mountpoint").unwrap_or_default()),
            quick_status: p.bool("quick_status"),
            self_fence: p.bool("self_fence"),
            nfslock: p.bool("nfslock"),
            nfsrestart: p.bool("nfsrestart"),
            force_unmount: p.bool("force_unmount"),
            read_only: fs.options().iter().any(|o| o == "ro"),
            fs,
        })
    }

    fn validate(&self, ctx: &Context) -> Result<(), Failure> {
        if self.mountpoint.exists() && !self.mountpoint.is_dir() {
            return Err(Failure::configured(format!(
                "{} exists but is not a directory",
                self.mountpoint.display()
            )));
        }
        self.fs.validate(ctx)
    }

    fn start(&self, ctx: &Context) -> OcfResult {
        if !self.fs.is_mounted()? {
            self.refuse_device_in_use()?;
        }
        self.fs.start(ctx)
    }

    fn stop(&self, ctx: &Context) -> OcfResult {
        // the depth-20 status file goes with every stop, whatever depth the
        // caller names (rgmanager stops at depth 0)
        let c = rgmanager::at_depth(ctx, 20);
        if self.nfslock && self.force_unmount && self.fs.is_mounted()? {
            drop_nfs_locks();
        }
        let mut result = self.fs.stop(&c);
        if result.is_err() && self.nfsrestart && self.force_unmount {
            if self.restart_nfs(ctx) {
                result = self.fs.stop(&c);
            }
        } else if result.is_err() && self.nfsrestart {
            info!("nfsrestart is set but force_unmount is not: the NFS server is left alone");
        }
        rgmanager::fence_on_failure(ctx, self.self_fence, result)
    }

    fn monitor(&self, ctx: &Context) -> OcfResult {
        self.fs.monitor(&self.at_depth(ctx))
    }

    fn status(&self, ctx: &Context) -> OcfResult {
        self.fs.status(&self.at_depth(ctx))
    }

    /// rgmanager's own agent accepts `restart` (stop, then start); its
    /// DTD has no name for it.
    fn restart(&self, ctx: &Context) -> OcfResult {
        rgmanager::restart(self, ctx)
    }

    /// Unmount (nothing to do when not mounted), mount again.
    fn recover(&self, ctx: &Context) -> OcfResult {
        rgmanager::recover(self, ctx)
    }

    fn reload(&self, ctx: &Context) -> OcfResult {
        rgmanager::nothing_to_reload(ctx)
    }

    fn reconfig(&self, ctx: &Context) -> OcfResult {
        rgmanager::nothing_to_reload(ctx)
    }

    fn validate_all(&self, ctx: &Context) -> OcfResult {
        self.fs.validate_all(ctx)
    }
}

impl Fs {
    fn at_depth(&self, ctx: &Context) -> Context {
        let depth = monitor_depth(ctx.check_level, self.quick_status, self.read_only);
        rgmanager::at_depth(ctx, depth)
    }

    /// fs.sh refuses to mount a device that is mounted anywhere already.
    fn refuse_device_in_use(&self) -> Result<(), Failure> {
        if !self.fs.is_block() {
            return Ok(());
        }
        let Some(dev) = self.fs.device().node().and_then(|n| device::dev_number(&n)) else {
            return Ok(());
        };
        let table = mounts::read()
            .map_err(|e| Failure::generic(format!("cannot read mount table: {e}")))?;
        match table.iter().find(|m| m.dev == dev) {
            Some(m) => Err(Failure::generic(format!(
                "{} is already mounted on {}; refusing to mount it on {}",
                m.source,
                m.target.display(),
                self.fs.directory().display()
            ))),
            None => Ok(()),
        }
    }

    /// `nfsrestart`: restart the NFS server, which drops its references.
    fn restart_nfs(&self, ctx: &Context) -> bool {
        let Ok(cmd) = ctx.tools().command("systemctl") else {
            warn!("nfsrestart: systemctl not found; the NFS server was not restarted");
            return false;
        };
        warn!(
            "Restarting the NFS server to release {}",
            self.fs.directory().display()
        );
        match cmd
            .args(["restart", "nfs-server.service"])
            .run(&ctx.deadline())
        {
            Ok(o) if o.success() => true,
            Ok(o) => {
                warn!("restarting the NFS server failed: {}", o.message());
                false
            }
            Err(e) => {
                warn!("restarting the NFS server failed: {e}");
                false
            }
        }
    }
}

/// `nfslock`: kill the kernel's lock manager threads (`lockd`), which makes
/// the kernel drop every NFS lock it holds, so none pins the file system.
/// Only kernel threads (no command line) named exactly `lockd` are touched.
fn drop_nfs_locks() {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if comm.trim_end() == "lockd" && cmdline.is_empty() {
            warn!("Dropping node-wide NFS locks (killing lockd, pid {pid})");
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocf::OcfStatus;

    #[test]
    fn status_depths_map_onto_filesystem_depths() {
        assert_eq!(monitor_depth(0, false, false), 0);
        assert_eq!(monitor_depth(5, false, false), 0);
        assert_eq!(monitor_depth(10, false, false), 10);
        assert_eq!(monitor_depth(20, false, false), 20);
        assert_eq!(monitor_depth(30, false, false), 20);
        assert_eq!(monitor_depth(20, false, true), 10, "ro: no write test");
        assert_eq!(monitor_depth(20, true, false), 0, "quick_status");
        assert_eq!(monitor_depth(10, true, false), 0);
    }

    fn params(pairs: &[(&str, &str)]) -> Result<Params, Failure> {
        let env = ocf::Env::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())),
        );
        Params::parse(PARAMS, &env)
    }

    #[test]
    fn fs_sh_parameters_become_filesystem_settings() {
        let p = params(&[
            ("name", "data"),
            ("mountpoint", "/mnt/data"),
            ("device", "LABEL=data"),
            ("force_unmount", "1"),
            ("force_fsck", "yes"),
            ("options", "noatime,ro"),
        ])
        .unwrap();
        let c = filesystem_config(&p);
        assert_eq!(c.directory, "/mnt/data");
        assert_eq!(c.device, "LABEL=data");
        assert_eq!(c.fstype, "");
        assert_eq!(c.force_unmount, ForceUnmount::Kill);
        assert_eq!(c.run_fsck, "force");
        assert_eq!(c.options, "noatime,ro");
        let p = params(&[("mountpoint", "/m"), ("device", "/dev/x")]).unwrap();
        let c = filesystem_config(&p);
        assert_eq!(c.force_unmount, ForceUnmount::No, "fs.sh default: no");
        assert_eq!(c.run_fsck, "auto");
    }

    #[test]
    fn fstypes_are_those_of_fs_sh() {
        assert!(params(&[("mountpoint", "/m"), ("device", "/d"), ("fstype", "xfs")]).is_ok());
        let e = params(&[("mountpoint", "/m"), ("device", "/d"), ("fstype", "nfs")]).unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrConfigured);
        assert!(e.reason.contains("fstype"), "{}", e.reason);
    }

    #[test]
    fn meta_data_is_the_rgmanager_dialect() {
        let xml = META.render();
        assert!(xml.contains("<resource-agent name=\"fs\" version=\"rgmanager 2.0\">"));
        assert!(xml.contains("ra-api-1-modified.dtd"));
        assert!(xml.contains("<parameter name=\"name\" primary=\"1\">"));
        assert!(xml.contains("<parameter name=\"nfslock\" inherit=\"nfslock\">"));
        assert!(xml.contains("<attributes maxinstances=\"1\"/>"));
        assert_eq!(META.primary_param().map(|p| p.name), Some("name"));
        let names: Vec<&str> = PARAMS.iter().map(|p| p.name).collect();
        for n in [
            "name",
            "mountpoint",
            "device",
            "fstype",
            "force_unmount",
            "quick_status",
            "self_fence",
            "nfslock",
            "nfsrestart",
            "fsid",
            "force_fsck",
            "options",
            "use_findmnt",
        ] {
            assert!(names.contains(&n), "{n}");
        }
    }
}
