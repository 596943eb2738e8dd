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
mod params;
mod steps;

use params::*;

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use ocf::{info, warn, AgentMeta, Context, Failure, OcfResult, OcfStatus, Params, ResourceAgent};

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
