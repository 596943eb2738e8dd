//! The steps the actions are made of: where (and how) the filesystem is
//! mounted now, the device it comes from, fsck, mount and unmount. `lib.rs`
//! decides, in the order an action needs them; these do one step each,
//! inside the deadline they are given.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ocf::{info, warn, Context, Deadline, Failure};

use crate::mounts::Mount;
use crate::*;

impl Filesystem {
    pub(crate) fn device_name(&self) -> String {
        self.device.mount_args().join(" ")
    }

    pub(crate) fn is_bind(&self) -> bool {
        self.options.iter().any(|o| o == "bind" || o == "rbind")
    }

    pub(crate) fn state(&self) -> Result<State, Failure> {
        let table = mounts::read()
            .map_err(|e| Failure::generic(format!("cannot read mount table: {e}")))?;
        Ok(self.classify(&table))
    }

    /// Ours or not: for a block device whose node we can see, the mounted
    /// device number must match; otherwise any mount at the mount point is.
    /// Our device (by number, else by name) mounted as another type than
    /// the configured one is [`State::WrongType`].
    pub(crate) fn classify(&self, table: &[Mount]) -> State {
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

    pub(crate) fn device_number(&self) -> Option<(u32, u32)> {
        self.device.node().and_then(|n| device::dev_number(&n))
    }

    /// A type is configured and `m` is not of it.
    pub(crate) fn wrong_fstype(&self, m: &Mount) -> bool {
        !self.fstype.is_empty() && self.fstype != "none" && !fstype_matches(&self.fstype, &m.fstype)
    }

    /// Our device mounted as the wrong type, in one line naming both.
    pub(crate) fn wrong_type(&self, m: &Mount) -> String {
        format!(
            "{} is mounted on {} as {}, but fstype is {}",
            self.device_name(),
            self.directory.display(),
            m.fstype,
            self.fstype
        )
    }

    /// Another filesystem at the mount point, saying what differs.
    pub(crate) fn foreign(&self, m: &Mount) -> String {
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
    pub(crate) fn status_file(&self, ctx: &Context) -> Result<PathBuf, String> {
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

    pub(crate) fn refuse_unsafe_clone(&self, ctx: &Context) -> Result<(), Failure> {
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

    pub(crate) fn fstype_listed(&self) -> bool {
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

    pub(crate) fn ensure_fstype_supported(
        &self,
        ctx: &Context,
        deadline: &Deadline,
    ) -> Result<(), Failure> {
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
    pub(crate) fn wait_for_device(
        &self,
        ctx: &Context,
        deadline: &Deadline,
    ) -> Result<PathBuf, Failure> {
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

    pub(crate) fn blkid_lookup(&self, ctx: &Context, deadline: &Deadline) -> Option<PathBuf> {
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

    pub(crate) fn fsck(
        &self,
        ctx: &Context,
        node: &Path,
        deadline: &Deadline,
    ) -> Result<(), Failure> {
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

    pub(crate) fn mount(&self, ctx: &Context, deadline: &Deadline) -> Result<(), Failure> {
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
    pub(crate) fn unmount(
        &self,
        umount: &Path,
        m: &Mount,
        budget: &Deadline,
    ) -> Result<(), String> {
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
pub(crate) fn fstype_matches(configured: &str, mounted: &str) -> bool {
    configured == mounted
        || (configured.starts_with("nfs") && mounted.starts_with("nfs"))
        || (configured.starts_with("ext") && mounted.starts_with("ext"))
        || mounted.starts_with("fuse")
        || configured == "auto"
}

/// "pid(comm), ..." for the log.
pub(crate) fn describe(pids: &[i32]) -> String {
    pids.iter()
        .map(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            format!("{p}({})", comm.trim())
        })
        .collect::<Vec<_>>()
        .join(", ")
}
