//! `Filesystem`: mounts a filesystem on a node, checks it, and unmounts it,
//! killing what holds it, within the operation's deadline.
//!
//! A drop-in for `ocf:heartbeat:Filesystem`: the same parameters, defaults
//! and meanings, so a configuration only changes its provider. Where the
//! shell agent is weak this one is not:
//! - the mount table is `/proc/self/mountinfo`, parsed with its escapes, and
//!   paths compare by whole components (`/u` is not `/usr`);
//! - the users of a mount are found by a `/proc` walk that cannot hang on a
//!   dead NFS server, matched by mount ID so a bind mount of `/` never
//!   selects the whole system (see [`holders`]);
//! - stop unmounts sub-mounts deepest first, then the mount point, all inside
//!   the deadline, and fails if *any* of them stays mounted;
//! - depths 10 and 20 do uncached I/O on a helper thread and answer by the
//!   deadline even when the storage hangs; depth 20 reads its write back.
//! - our device mounted with another type than configured is running but
//!   wrong (`OCF_ERR_GENERIC` naming both types), never "stopped", and stop
//!   unmounts it: a 7 would let the cluster mount it on a second node;
//! - the depth-20 status file is never written or removed through a
//!   symlink, FIFO or foreign directory planted on the mount (see [`io`]).

pub mod device;
pub mod holders;
pub mod io;
pub mod mounts;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use ocf::{
    info, warn, ActionSpec, AgentMeta, Context, Deadline, Failure, OcfResult, OcfStatus, ParamSpec,
    Params, ResourceAgent,
};

use device::Device;
use mounts::Mount;

/// fast_stop: the time each mount gets.
const FAST_STOP_BUDGET: Duration = Duration::from_secs(6);

/// Filesystems that must not be mounted on two nodes at once.
const NOT_CLUSTER_SAFE: &[&str] = &[
    "ext4", "ext4dev", "ext3", "ext2", "reiserfs", "reiser4", "xfs", "jfs",
];

/// Filesystems fsck skips under `run_fsck=auto`.
const NO_AUTO_FSCK: &[&str] = &[
    "ext4",
    "ext4dev",
    "ext3",
    "reiserfs",
    "reiser4",
    "nss",
    "xfs",
    "jfs",
    "vfat",
    "fat",
    "nfs4",
    "nfs",
    "aznfs",
    "efs",
    "cifs",
    "smbfs",
    "ocfs2",
    "gfs2",
    "none",
    "lustre",
    "glusterfs",
    "ceph",
    "tmpfs",
    "overlay",
    "overlayfs",
    "rozofs",
    "zfs",
    "cvfs",
    "btrfs",
];

/// Network filesystems: umount gets `-f`.
const NETWORK: &[&str] = &["nfs", "nfs4", "efs", "aznfs", "cifs", "smbfs"];

static PARAMS: &[ParamSpec] = &[
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

static ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", 60),
    ActionSpec::new("stop", 60),
    ActionSpec::new("monitor", 40).interval(20).depth(0),
    ActionSpec::new("validate-all", 5),
    ActionSpec::new("meta-data", 5),
];

static META: AgentMeta = AgentMeta {
    name: "Filesystem",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Manages filesystem mounts",
    longdesc: "Mounts a filesystem (block device, NFS/CIFS export or bind mount) on a mount point, checks it and unmounts it.\n\nMonitor depth 0 (also the probe) checks that the filesystem is mounted, from /proc/self/mountinfo. Set OCF_CHECK_LEVEL for deeper checks:\n\n10: read the first block of the device, bypassing the cache (nothing to do for non-block devices such as NFS, CIFS or bind mounts).\n\n20: write a status file with O_DIRECT|O_SYNC and read it back. The status file and its directory must be root's own, which NFS exports with root_squash do not allow: use depth 10 or no_root_squash there. The file is reached without following symlinks; a symlink, FIFO, hard link or foreign directory planted in its place (a world-writable mount) is reported and removed, never written through.\n\nStop unmounts everything mounted below the mount point first (deepest first), then the mount point, signalling the processes that use it, and fails if anything stays mounted.",
    params: PARAMS,
    actions: ACTIONS,
    special: None,
};

fn check_force_unmount(v: &str) -> Result<(), String> {
    if v == "safe" || ocf::parse_bool(v).is_some() {
        Ok(())
    } else {
        Err("expected true, safe or false".into())
    }
}

fn check_signals(v: &str) -> Result<(), String> {
    holders::parse_signals(v).map(|_| ())
}

fn parse_delay(v: &str) -> Result<Duration, String> {
    let s: f64 = v
        .trim()
        .parse()
        .map_err(|_| "not a number of seconds".to_string())?;
    if !(0.0..=3600.0).contains(&s) {
        return Err("out of range".into());
    }
    Ok(Duration::from_secs_f64(s))
}

fn check_delay(v: &str) -> Result<(), String> {
    parse_delay(v).map(|_| ())
}

/// A filesystem type name as mount -t, fsck -t and modprobe take it:
/// letters, digits and `._+-`, not starting with `-` (empty: detected).
fn check_fstype(v: &str) -> Result<(), String> {
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
fn check_statusfile_prefix(v: &str) -> Result<(), String> {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForceUnmount {
    Kill,
    Safe,
    No,
}

/// Where our filesystem stands on this node.
#[derive(Debug)]
enum State {
    /// Mounted at the mount point.
    Mounted(Mount),
    /// Our device is mounted at the mount point, but as another type than
    /// the configured one: running, and wrong (never "stopped": the cluster
    /// would mount it on a second node).
    WrongType(Mount),
    /// Something else is mounted at the mount point.
    Foreign(Mount),
    NotMounted,
}

/// One `Filesystem` resource.
#[derive(Debug)]
pub struct Filesystem {
    device: Device,
    directory: PathBuf,
    fstype: String,
    options: Vec<String>,
    /// The prefix, or what is wrong with it (stop does not need it; start
    /// and monitor refuse it).
    statusfile_prefix: Result<String, String>,
    run_fsck: String,
    force_clones: bool,
    fast_stop: bool,
    force_unmount: ForceUnmount,
    term_signals: Vec<Signal>,
    kill_signals: Vec<Signal>,
    signal_delay: Duration,
    block: bool,
}

/// The settings of one resource, for callers that build a [`Filesystem`]
/// from something other than its own `OCF_RESKEY_*` parameters (the
/// rgmanager `fs` persona). Field meanings and [`Default`] values are those
/// of the parameters of the same names; `fstype` may be empty (mount
/// detects the type, nothing checks it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub device: String,
    pub directory: String,
    pub fstype: String,
    /// Comma separated, as the `options` parameter.
    pub options: String,
    pub statusfile_prefix: String,
    /// `auto`, `force` or `no`.
    pub run_fsck: String,
    pub fast_stop: bool,
    pub force_clones: bool,
    pub force_unmount: ForceUnmount,
    pub term_signals: String,
    pub kill_signals: String,
    /// Seconds, decimals allowed.
    pub signal_delay: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            device: String::new(),
            directory: String::new(),
            fstype: String::new(),
            options: String::new(),
            statusfile_prefix: ".Filesystem_status/".into(),
            run_fsck: "auto".into(),
            fast_stop: false,
            force_clones: false,
            force_unmount: ForceUnmount::Kill,
            term_signals: "TERM".into(),
            kill_signals: "KILL".into(),
            signal_delay: "1".into(),
        }
    }
}

impl Filesystem {
    /// A resource from `c`, checked as `configure` checks the parameters
    /// (`OCF_ERR_CONFIGURED` naming what is wrong).
    pub fn new(c: &Config) -> Result<Filesystem, Failure> {
        if c.device.trim().is_empty() {
            return Err(Failure::configured(
                "required parameter 'device' is not set",
            ));
        }
        if !["auto", "force", "no"].contains(&c.run_fsck.as_str()) {
            return Err(Failure::configured(format!(
                "run_fsck: '{}' is not one of auto, force, no",
                c.run_fsck
            )));
        }
        let options: Vec<String> = c
            .options
            .split(',')
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
            .collect();
        let device = Device::parse(&c.device);
        let signals = |name: &str, v: &str| {
            holders::parse_signals(v).map_err(|e| Failure::configured(format!("{name}: {e}")))
        };
        Ok(Filesystem {
            block: device::is_block_resource(&device, &c.fstype, &options),
            directory: mount_point(&c.directory)?,
            statusfile_prefix: check_statusfile_prefix(&c.statusfile_prefix)
                .map(|()| c.statusfile_prefix.clone()),
            run_fsck: c.run_fsck.clone(),
            force_clones: c.force_clones,
            fast_stop: c.fast_stop,
            force_unmount: c.force_unmount,
            term_signals: signals("term_signals", &c.term_signals)?,
            kill_signals: signals("kill_signals", &c.kill_signals)?,
            signal_delay: parse_delay(&c.signal_delay)
                .map_err(|e| Failure::configured(format!("signal_delay: {e}")))?,
            device,
            fstype: c.fstype.clone(),
            options,
        })
    }

    /// The mount point, as the kernel shows it.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// The device, parsed.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The mount options, split.
    pub fn options(&self) -> &[String] {
        &self.options
    }

    /// Whether the resource lives on a local block device.
    pub fn is_block(&self) -> bool {
        self.block
    }

    /// Whether this filesystem (not another one) is mounted at the mount
    /// point now.
    pub fn is_mounted(&self) -> Result<bool, Failure> {
        Ok(matches!(
            self.state()?,
            State::Mounted(_) | State::WrongType(_)
        ))
    }
}

/// The mount point as the kernel will show it: trailing slashes removed and
/// the parent directory resolved (the last component is not followed, so a
/// dead NFS mount at the mount point itself cannot block us), unless the
/// last component is itself a symlink.
fn mount_point(dir: &str) -> Result<PathBuf, Failure> {
    let trimmed = dir.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(Failure::configured(
            "directory: refusing to manage the root filesystem /",
        ));
    }
    let p = Path::new(trimmed);
    if !p.is_absolute() {
        return Err(Failure::configured(format!(
            "directory: '{dir}' is not an absolute path"
        )));
    }
    let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
        return Ok(p.to_path_buf());
    };
    let parent = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
    let joined = parent.join(name);
    match std::fs::symlink_metadata(&joined) {
        Ok(m) if m.file_type().is_symlink() => Ok(std::fs::canonicalize(&joined).unwrap_or(joined)),
        _ => Ok(joined),
    }
}

impl ResourceAgent for Filesystem {
    fn meta() -> &'static AgentMeta {
        &META
    }

    fn configure(p: Params, ctx: &Context) -> Result<Self, Failure> {
        let force_unmount = match p.str("force_unmount") {
            Some("safe") => ForceUnmount::Safe,
            Some(v) if ocf::is_true(v) => ForceUnmount::Kill,
            _ => ForceUnmount::No,
        };
        // a probe answers at depth 0 rather than fail over a level it does
        // not need (the dispatcher's rule for stop and probes)
        let mut depth_ok = [0, 10, 20].contains(&ctx.check_level);
        if ctx.action.is_monitor() && !depth_ok && ctx.is_lenient() {
            warn!(
                "unsupported monitor level {} (0, 10 and 20 are); probing at depth 0",
                ctx.check_level
            );
            depth_ok = true;
        }
        if ctx.action.is_monitor() && !depth_ok {
            return Err(Failure::configured(format!(
                "unsupported monitor level {} (0, 10 and 20 are)",
                ctx.check_level
            )));
        }
        let text = |name: &str| p.str(name).unwrap_or_default().to_string();
        let fs = Filesystem::new(&Config {
            device: text("device"),
            directory: text("directory"),
            fstype: text("fstype"),
            options: text("options"),
            statusfile_prefix: text("statusfile_prefix"),
            run_fsck: p.str("run_fsck").unwrap_or("auto").to_string(),
            fast_stop: p.bool("fast_stop"),
            force_clones: p.bool("force_clones"),
            force_unmount,
            term_signals: text("term_signals"),
            kill_signals: text("kill_signals"),
            signal_delay: p.str("signal_delay").unwrap_or("1").to_string(),
        })?;
        // stop needs the prefix only to clean up, and warns instead; a
        // probe at depth 0 does not need it
        if !ctx.is_lenient() {
            if let Err(e) = &fs.statusfile_prefix {
                return Err(Failure::configured(e.clone()));
            }
        }
        Ok(fs)
    }

    /// Tools are needed only while nothing is mounted: a mounted filesystem
    /// must never be reported stopped because a tool went missing.
    fn validate(&self, ctx: &Context) -> Result<(), Failure> {
        if matches!(self.state()?, State::Mounted(_) | State::WrongType(_)) {
            return Ok(());
        }
        // what names the filesystem reaches mount, modprobe and fsck on
        // their command lines: only what it can be (heartbeat: 5, "Couldn't
        // find device" / "failed to load kernel module")
        self.device
            .check(self.is_bind())
            .map_err(Failure::installed)?;
        check_fstype(&self.fstype).map_err(Failure::installed)?;
        let tools = ctx.tools();
        tools.require("mount")?;
        tools.require("umount")?;
        if ctx.action == ocf::Action::ValidateAll
            && self.block
            && self.device.node().is_none()
            && self.blkid_lookup(ctx, &ctx.deadline()).is_none()
        {
            return Err(Failure::installed(format!(
                "Couldn't find device [{}]",
                self.device_name()
            )));
        }
        Ok(())
    }

    fn start(&self, ctx: &Context) -> OcfResult {
        info!(
            "Running start for {} on {}",
            self.device_name(),
            self.directory.display()
        );
        self.refuse_unsafe_clone(ctx)?;
        let table = mounts::read()
            .map_err(|e| Failure::generic(format!("cannot read mount table: {e}")))?;
        let below = mounts::below(&table, &self.directory);
        if !below.is_empty() {
            return Err(Failure::configured(format!(
                "There is one or more mounts mounted under {}: {}",
                self.directory.display(),
                below
                    .iter()
                    .map(|m| m.target.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        match self.classify(&table) {
            State::Mounted(_) => {
                info!(
                    "Filesystem {} is already mounted.",
                    self.directory.display()
                );
                return Ok(OcfStatus::Success);
            }
            State::WrongType(m) => return Err(Failure::generic(self.wrong_type(&m))),
            State::Foreign(m) => {
                return Err(Failure::generic(format!(
                    "{}; refusing to mount {} over it",
                    self.foreign(&m),
                    self.device_name()
                )))
            }
            State::NotMounted => {}
        }
        let deadline = ctx.deadline();
        self.ensure_fstype_supported(ctx, &deadline)?;
        if self.block {
            let node = self.wait_for_device(ctx, &deadline)?;
            self.fsck(ctx, &node, &deadline)?;
        }
        std::fs::create_dir_all(&self.directory).map_err(|e| {
            Failure::installed(format!(
                "Couldn't create mount point {}: {e}",
                self.directory.display()
            ))
        })?;
        self.mount(ctx, &deadline)?;
        match self.state()? {
            State::Mounted(_) => Ok(OcfStatus::Success),
            _ => Err(Failure::generic(format!(
                "mount reported success but {} is not mounted on {}",
                self.device_name(),
                self.directory.display()
            ))),
        }
    }

    fn stop(&self, ctx: &Context) -> OcfResult {
        info!(
            "Running stop for {} on {}",
            self.device_name(),
            self.directory.display()
        );
        let deadline = ctx.deadline();
        let table = mounts::read()
            .map_err(|e| Failure::generic(format!("cannot read mount table: {e}")))?;
        let ours = match self.classify(&table) {
            State::Mounted(m) => m,
            State::WrongType(m) => {
                warn!("{}; unmounting it", self.wrong_type(&m));
                m
            }
            State::Foreign(m) => {
                info!(
                    "{} is not mounted: {}",
                    self.device_name(),
                    self.foreign(&m)
                );
                return Ok(OcfStatus::Success);
            }
            State::NotMounted => {
                info!("Filesystem {} is not mounted", self.directory.display());
                return Ok(OcfStatus::Success);
            }
        };
        if ctx.check_level == 20 {
            match self.status_file(ctx) {
                Ok(rel) => io::remove_status_file(
                    &self.directory,
                    &rel,
                    &deadline.capped(Duration::from_secs(2)),
                ),
                Err(e) => warn!("{e}; the status file is not cleaned up"),
            }
        }
        // Sub-mounts deepest first, other mounts of the same block device,
        // then the mount point itself.
        let mut order: Vec<Mount> = mounts::below(&table, &self.directory)
            .into_iter()
            .cloned()
            .collect();
        if self.block && !self.is_bind() && ours.dev.0 != 0 {
            let mut binds: Vec<Mount> = table
                .iter()
                .filter(|m| {
                    m.dev == ours.dev && m.id != ours.id && !order.iter().any(|o| o.id == m.id)
                })
                .cloned()
                .collect();
            binds.sort_by_key(|m| std::cmp::Reverse(m.target.components().count()));
            order.extend(binds);
        }
        order.push(ours);
        let umount = ctx.tools().require("umount")?;
        let mut failed = Vec::new();
        for m in &order {
            let budget = if self.fast_stop {
                deadline.capped(FAST_STOP_BUDGET)
            } else {
                deadline
            };
            if let Err(why) = self.unmount(&umount, m, &budget) {
                warn!("{why}");
                failed.push(m.target.display().to_string());
            }
        }
        if failed.is_empty() {
            info!("unmounted {} successfully", self.directory.display());
            Ok(OcfStatus::Success)
        } else {
            Err(Failure::generic(format!(
                "Couldn't unmount {}",
                failed.join(", ")
            )))
        }
    }

    fn monitor(&self, ctx: &Context) -> OcfResult {
        let mount = match self.state()? {
            State::Mounted(m) => m,
            State::WrongType(m) => return Err(Failure::generic(self.wrong_type(&m))),
            State::Foreign(m) => {
                warn!("{}", self.foreign(&m));
                return Ok(OcfStatus::NotRunning);
            }
            State::NotMounted => return Ok(OcfStatus::NotRunning),
        };
        let deadline = ctx.deadline();
        match ctx.check_level {
            10 => {
                if !self.block {
                    warn!(
                        "{} is not a block device, monitor 10 is noop",
                        self.device_name()
                    );
                    return Ok(OcfStatus::Success);
                }
                let node = device::node_of(mount.dev)
                    .or_else(|| self.device.node())
                    .ok_or_else(|| {
                        Failure::generic(format!(
                            "Couldn't find device of {}",
                            self.directory.display()
                        ))
                    })?;
                io::read_device(&node, &deadline).map_err(|e| {
                    Failure::generic(format!("Failed to read device {}: {e}", node.display()))
                })?;
            }
            20 => {
                let rel = self.status_file(ctx).map_err(Failure::configured)?;
                io::write_status_file(
                    &self.directory,
                    &rel,
                    &format!("{}\n", ctx.instance),
                    self.block,
                    &deadline,
                )
                .map_err(Failure::generic)?;
            }
            _ => {}
        }
        Ok(OcfStatus::Success)
    }

    fn status(&self, ctx: &Context) -> OcfResult {
        let r = self.monitor(ctx)?;
        if r == OcfStatus::Success {
            info!("{} is mounted (running)", self.directory.display());
        } else {
            info!("{} is unmounted (stopped)", self.directory.display());
        }
        Ok(r)
    }

    fn validate_all(&self, ctx: &Context) -> OcfResult {
        self.refuse_unsafe_clone(ctx)?;
        if !self.fstype.is_empty() && self.fstype != "none" && !self.fstype_listed() {
            info!(
                "{} is not in /proc/filesystems yet; start will try to load its module",
                self.fstype
            );
        }
        Ok(OcfStatus::Success)
    }
}

impl Filesystem {
    fn device_name(&self) -> String {
        self.device.mount_args().join(" ")
    }

    fn is_bind(&self) -> bool {
        self.options.iter().any(|o| o == "bind" || o == "rbind")
    }

    fn state(&self) -> Result<State, Failure> {
        let table = mounts::read()
            .map_err(|e| Failure::generic(format!("cannot read mount table: {e}")))?;
        Ok(self.classify(&table))
    }

    /// Ours or not: for a block device whose node we can see, the mounted
    /// device number must match; otherwise any mount at the mount point is.
    /// Our device (by number, else by name) mounted as another type than
    /// the configured one is [`State::WrongType`].
    fn classify(&self, table: &[Mount]) -> State {
        let Some(top) = mounts::at(table, &self.directory)
            .last()
            .map(|m| (*m).clone())
        else {
            return State::NotMounted;
        };
        // Filesystems such as btrfs show an anonymous device number (major 0)
        // in mountinfo: a different number of the same type is still ours.
        let anonymous_same_type = top.dev.0 == 0 && top.fstype == self.fstype;
        let mut same_device = false;
        if self.block && !self.is_bind() && !anonymous_same_type {
            if let Some(want) = self.device_number() {
                if want != top.dev {
                    return State::Foreign(top);
                }
                same_device = true;
            }
        }
        if self.wrong_fstype(&top) {
            return if same_device || self.device_name() == top.source {
                State::WrongType(top)
            } else {
                State::Foreign(top)
            };
        }
        State::Mounted(top)
    }

    fn device_number(&self) -> Option<(u32, u32)> {
        self.device.node().and_then(|n| device::dev_number(&n))
    }

    /// A type is configured and `m` is not of it.
    fn wrong_fstype(&self, m: &Mount) -> bool {
        !self.fstype.is_empty() && self.fstype != "none" && !fstype_matches(&self.fstype, &m.fstype)
    }

    /// Our device mounted as the wrong type, in one line naming both.
    fn wrong_type(&self, m: &Mount) -> String {
        format!(
            "{} is mounted on {} as {}, but fstype is {}",
            self.device_name(),
            self.directory.display(),
            m.fstype,
            self.fstype
        )
    }

    /// Another filesystem at the mount point, saying what differs.
    fn foreign(&self, m: &Mount) -> String {
        let mut what = Vec::new();
        match self
            .device_number()
            .filter(|_| self.block && !self.is_bind())
        {
            Some(want) if want != m.dev => what.push(format!(
                "device {} ({}:{}) instead of {} ({}:{})",
                m.source,
                m.dev.0,
                m.dev.1,
                self.device_name(),
                want.0,
                want.1
            )),
            _ if m.source != self.device_name() => what.push(format!(
                "source {} instead of {}",
                m.source,
                self.device_name()
            )),
            _ => {}
        }
        if self.wrong_fstype(m) {
            what.push(format!("type {} instead of {}", m.fstype, self.fstype));
        }
        format!(
            "another filesystem is mounted on {}: {}",
            self.directory.display(),
            what.join(", ")
        )
    }

    /// The status file, relative to the mount point (`Err`: the prefix is
    /// unusable).
    fn status_file(&self, ctx: &Context) -> Result<PathBuf, String> {
        let prefix = self.statusfile_prefix.as_ref().map_err(String::clone)?;
        let mut suffix = ctx.instance.clone();
        if let Some(clone) = ctx.env.non_empty("OCF_RESKEY_CRM_meta_clone") {
            suffix.push('_');
            suffix.push_str(clone);
        }
        let node = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        suffix.push('_');
        suffix.push_str(&node);
        Ok(PathBuf::from(format!("{prefix}{suffix}")))
    }

    fn refuse_unsafe_clone(&self, ctx: &Context) -> Result<(), Failure> {
        if !ctx.clone || !NOT_CLUSTER_SAFE.contains(&self.fstype.as_str()) {
            return Ok(());
        }
        if self.force_clones {
            warn!(
                "{} on {} is NOT cluster-aware! Running as a clone because force_clones is set.",
                self.fstype,
                self.device_name()
            );
            return Ok(());
        }
        if self.options.iter().any(|o| o == "ro") {
            warn!("{} on {} is NOT cluster-aware! Running as a clone because it is mounted read-only.", self.fstype, self.device_name());
            return Ok(());
        }
        Err(Failure::configured(format!(
            "DANGER! {} on {} is NOT cluster-aware; refusing to run it as a clone (set force_clones only if each node has its own device)",
            self.fstype,
            self.device_name()
        )))
    }

    fn fstype_listed(&self) -> bool {
        let want = match self.fstype.as_str() {
            t if t.starts_with("fuse.") => "fuse",
            "glusterfs" | "rozofs" => "fuse",
            "efs" | "aznfs" => "nfs4",
            t => t,
        };
        std::fs::read_to_string("/proc/filesystems")
            .map(|t| t.lines().any(|l| l.split_whitespace().last() == Some(want)))
            .unwrap_or(false)
    }

    fn ensure_fstype_supported(&self, ctx: &Context, deadline: &Deadline) -> Result<(), Failure> {
        if self.fstype.is_empty() || self.fstype == "none" || self.fstype_listed() {
            return Ok(());
        }
        if let Some(modprobe) = ctx.tools().find("modprobe") {
            let _ = ocf::Cmd::new(modprobe)
                .args(["--", self.fstype.as_str()])
                .run(deadline);
        }
        let seen = deadline
            .capped(Duration::from_secs(5))
            .wait_for(Duration::from_millis(250), || {
                self.fstype_listed().then_some(())
            });
        seen.ok_or_else(|| {
            Failure::installed(format!(
                "Couldn't find filesystem {} in /proc/filesystems and failed to load kernel module",
                self.fstype
            ))
        })
    }

    /// The device node, waiting (bounded) for udev to create it; a UUID or
    /// label is also looked up with blkid, for nodes without udev links.
    fn wait_for_device(&self, ctx: &Context, deadline: &Deadline) -> Result<PathBuf, Failure> {
        if let Some(n) = self.device.node() {
            return Ok(n);
        }
        if let Some(n) = self.blkid_lookup(ctx, deadline) {
            return Ok(n);
        }
        if let Some(udevadm) = ctx.tools().find("udevadm") {
            let secs = deadline.remaining().as_secs().clamp(1, 10).to_string();
            let mut cmd = ocf::Cmd::new(udevadm).args(["settle", "-t", secs.as_str()]);
            if let Device::Path(p) = &self.device {
                cmd = cmd.arg(format!("--exit-if-exists={}", p.display()));
            }
            let _ = cmd.run(deadline);
        }
        self.device.node().ok_or_else(|| {
            Failure::installed(format!(
                "Couldn't find device [{}]. Expected /dev/??? to exist",
                self.device_name()
            ))
        })
    }

    fn blkid_lookup(&self, ctx: &Context, deadline: &Deadline) -> Option<PathBuf> {
        let (flag, value) = match &self.device {
            Device::Uuid(u) => ("-U", u),
            Device::Label(l) => ("-L", l),
            _ => return None,
        };
        let out = ctx
            .tools()
            .command("blkid")
            .ok()?
            .args([flag, value.as_str()])
            .run(deadline)
            .ok()?;
        let node = PathBuf::from(out.stdout.trim());
        (out.success() && node.exists()).then_some(node)
    }

    fn fsck(&self, ctx: &Context, node: &Path, deadline: &Deadline) -> Result<(), Failure> {
        let needed = match self.run_fsck.as_str() {
            "force" => true,
            "no" => false,
            _ => !NO_AUTO_FSCK.contains(&self.fstype.as_str()),
        };
        if !needed {
            return Ok(());
        }
        info!("Starting filesystem check on {}", node.display());
        let mut cmd = ctx.tools().command("fsck")?;
        if !self.fstype.is_empty() {
            cmd = cmd.args(["-t", self.fstype.as_str()]);
        }
        // no `--`: fsck passes what follows it to the checker as options;
        // the node is an absolute path, which fsck always takes as a device
        let out = cmd.arg("-p").arg(node).run(deadline)?;
        match out.code() {
            Some(c) if c < 4 => Ok(()),
            _ => Err(Failure::generic(format!(
                "Couldn't successfully fsck filesystem for {}: {}",
                node.display(),
                out.message()
            ))),
        }
    }

    fn mount(&self, ctx: &Context, deadline: &Deadline) -> Result<(), Failure> {
        let tools = ctx.tools();
        if self.block {
            let node = self
                .device
                .node()
                .or_else(|| self.blkid_lookup(ctx, deadline));
            if let (Some(blockdev), Some(node)) = (tools.find("blockdev"), node) {
                let _ = ocf::Cmd::new(blockdev)
                    .arg("--flushbufs")
                    .arg(node)
                    .run(deadline);
            }
        }
        let mut cmd = tools.command("mount")?;
        if !self.fstype.is_empty() && self.fstype != "none" {
            cmd = cmd.args(["-t", self.fstype.as_str()]);
        }
        if !self.options.is_empty() {
            cmd = cmd.args(["-o", self.options.join(",").as_str()]);
        }
        // -U/-L take the UUID or label as their argument; a path or a
        // source name is an operand, after `--`
        let cmd = match &self.device {
            Device::Uuid(_) | Device::Label(_) => cmd.args(self.device.mount_args()).arg("--"),
            _ => cmd.arg("--").args(self.device.mount_args()),
        };
        let out = cmd.arg(&self.directory).run(deadline)?;
        if !out.success() {
            return Err(Failure::generic(format!(
                "Couldn't mount device [{}] as {}: {}",
                self.device_name(),
                self.directory.display(),
                out.message()
            )));
        }
        // A bind mount ignores most options on the first call; apply them to
        // this bind mount only (remount,bind,...), never to its source.
        let extra: Vec<&str> = self
            .options
            .iter()
            .map(String::as_str)
            .filter(|o| *o != "bind" && *o != "rbind")
            .collect();
        if self.is_bind() && !extra.is_empty() {
            let opts = format!("remount,bind,{}", extra.join(","));
            let out = tools
                .command("mount")?
                .args(["-o", opts.as_str(), "--"])
                .arg(&self.directory)
                .run(deadline)?;
            if !out.success() {
                return Err(Failure::generic(format!(
                    "Couldn't apply {} to bind mount {}: {}",
                    extra.join(","),
                    self.directory.display(),
                    out.message()
                )));
            }
        }
        Ok(())
    }

    /// Unmount one mount within `budget`: umount, and while it stays
    /// mounted signal its users (term_signals for the first half of the
    /// budget, kill_signals after) and try again.
    fn unmount(&self, umount: &Path, m: &Mount, budget: &Deadline) -> Result<(), String> {
        let gone = |m: &Mount| {
            mounts::read()
                .map(|t| !t.iter().any(|x| x.is_same(m)))
                .unwrap_or(false)
        };
        let graceful = budget.reserving(budget.remaining() / 2);
        let force = NETWORK.contains(&m.fstype.as_str());
        loop {
            info!("Trying to unmount {}", m.target.display());
            let mut cmd = ocf::Cmd::new(umount);
            if force {
                cmd = cmd.arg("-f");
            }
            let out = cmd.arg("--").arg(&m.target).run(budget);
            if gone(m) {
                return Ok(());
            }
            let why = match out {
                Ok(o) => o.message(),
                Err(e) => e.to_string(),
            };
            if budget.expired() {
                return Err(format!(
                    "Couldn't unmount {} before the deadline: {why}",
                    m.target.display()
                ));
            }
            if self.force_unmount != ForceUnmount::No {
                let users = holders::find(&holders::Targets {
                    ids: BTreeSet::from([m.id]),
                    dirs: vec![m.target.clone()],
                });
                if !users.is_empty() {
                    let (phase, signals) = if graceful.expired() {
                        ("kill", &self.kill_signals)
                    } else {
                        ("term", &self.term_signals)
                    };
                    warn!(
                        "sending {phase} signals {:?} to {} process(es) using {}: {}",
                        signals,
                        users.len(),
                        m.target.display(),
                        describe(&users)
                    );
                    holders::signal(&users, signals);
                }
            }
            if !budget.sleep(self.signal_delay.max(Duration::from_millis(100))) {
                if gone(m) {
                    return Ok(());
                }
                return Err(format!(
                    "Couldn't unmount {} before the deadline: {why}",
                    m.target.display()
                ));
            }
        }
    }
}

/// Whether the mounted type is the configured one (`nfs` mounts may show
/// as `nfs4`, `ext4dev` as `ext4`, FUSE types as `fuse.*`).
fn fstype_matches(configured: &str, mounted: &str) -> bool {
    configured == mounted
        || (configured.starts_with("nfs") && mounted.starts_with("nfs"))
        || (configured.starts_with("ext") && mounted.starts_with("ext"))
        || mounted.starts_with("fuse")
        || configured == "auto"
}

/// "pid(comm), ..." for the log.
fn describe(pids: &[i32]) -> String {
    pids.iter()
        .map(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            format!("{p}({})", comm.trim())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_lose_trailing_slashes_and_root_is_refused() {
        assert_eq!(mount_point("/mnt/x//").unwrap(), PathBuf::from("/mnt/x"));
        assert_eq!(
            mount_point("/").unwrap_err().status,
            OcfStatus::ErrConfigured
        );
        assert_eq!(
            mount_point("relative/dir").unwrap_err().status,
            OcfStatus::ErrConfigured
        );
    }

    #[test]
    fn fstype_names() {
        for good in ["", "ext4", "fuse.sshfs", "nfs4", "9p", "ext4dev"] {
            assert!(check_fstype(good).is_ok(), "{good}");
        }
        for bad in ["-r", "--", "ext4 -r", "a/b", ".x"] {
            assert!(check_fstype(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parameter_checks() {
        assert!(check_force_unmount("safe").is_ok());
        assert!(check_force_unmount("TRUE").is_ok());
        assert!(check_force_unmount("no").is_ok());
        assert!(check_force_unmount("move").is_err());
        assert_eq!(parse_delay("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_delay("-1").is_err());
        assert!(parse_delay("soon").is_err());
    }

    #[test]
    fn meta_data_lists_every_heartbeat_parameter() {
        let names: Vec<&str> = PARAMS.iter().map(|p| p.name).collect();
        for n in [
            "device",
            "directory",
            "fstype",
            "options",
            "statusfile_prefix",
            "run_fsck",
            "fast_stop",
            "force_clones",
            "force_unmount",
            "term_signals",
            "kill_signals",
            "signal_delay",
        ] {
            assert!(names.contains(&n), "{n}");
        }
    }
}
