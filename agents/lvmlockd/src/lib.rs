//! `lvmlockd`: runs the LVM lock daemon on this node, for the shared VGs
//! (`vgcreate --shared`) that replaced clvmd's clustered VGs in LVM 2.03;
//! drop-in for `ocf:heartbeat:lvmlockd` (same parameters, names, defaults,
//! the same dlm lock manager), cloned on every node after
//! `ocf:pacemaker:controld`.
//!
//! What a node needs before any shared VG can be used is the daemon AND the
//! VGs' lockspaces; what it must give up before the daemon may go is every
//! lockspace. The heartbeat agent does the first half of each: it starts the
//! daemon and leaves the lockspaces to whoever runs `vgchange --lock-start`,
//! and on stop it asks for the lockspaces to stop and then sends SIGTERM to
//! whatever pid its pid file names. Here:
//!
//! * start checks lvm.conf (`use_lvmlockd = 1`, without which lvm commands
//!   never ask the daemon) and that dlm_controld runs, starts
//!   `lvmlockd -p PIDFILE -s SOCKET -S PRIORITY -A ADOPT -g dlm`, waits
//!   (bounded) until it serves its socket, then starts the lockspaces of the
//!   shared VGs this node sees (`vgchange --lock-start`); a VG whose
//!   lockspace cannot start is a warning, not a failed clone: that VG's own
//!   LVM-activate resource fails with its name, the other VGs stay usable;
//! * lvm.conf is checked, never edited (the heartbeat agent rewrites
//!   /etc/lvm/lvm.conf with `sed` during start): a wrong setting is
//!   OCF_ERR_CONFIGURED naming the line to change;
//! * stop stops the VG lockspaces (`vgchange --lock-stop`), then the rest
//!   (`lvmlockctl --stop-lockspaces`), waits until lvmlockd holds none, and
//!   only then ends the daemon (`lvmlockctl --quit`, then SIGTERM, then
//!   SIGKILL, all inside the stop timeout). A lockspace that stays held
//!   (an LV of a shared VG is still active: its LVM-activate resource was
//!   not stopped first) fails the stop with the VG named, and the daemon is
//!   left running: killing it would leave the LV active with no lock;
//! * the daemon is known by its pid file AND its command name, and the pid
//!   file is never followed through a symlink ([`daemon`]): a stale or
//!   planted pid never makes monitor say "running" nor stop kill a
//!   stranger; a daemon started without our pid file but serving our socket
//!   is found in /proc;
//! * monitor forks nothing: the process table, then a connect to the socket
//!   (a daemon lvm commands cannot reach is a failure, not "running");
//! * `with_cmirrord` (from the retired `clvm` agent) also runs cmirrord for
//!   clustered mirror LVs.
//!
//! A start after a killed daemon (`adopt=1`) takes longer, and not here:
//! the new lvmlockd rejoins the orphaned lockspaces and tries to adopt
//! every lock before it serves any client, collecting the results one per
//! second (`adopt_locks` in lvmlockd-core.c polls with `sleep(1)`): 5 s for
//! one VG with no LV active, measured in the guest test. Its socket accepts
//! connections meanwhile (the listen backlog), so the start's `vgchange
//! --lock-start` simply waits in lvmlockd's queue; the agent's own share is
//! its two lvm commands (`lvmconfig`, `vgchange`), the same with or without
//! adoption (6-8 s each in a loaded TCG guest, milliseconds on hardware).

pub mod daemon;
pub mod lockspaces;

use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use ocf::{
    Action, ActionSpec, AgentMeta, Cmd, Context, Failure, OcfResult, OcfStatus, ParamSpec, Params,
    ResourceAgent,
};
use ra_lvm_tools::lvm::{Lvm, LvmConf};

use crate::daemon::{Daemon, Found};
use crate::lockspaces::Lockspace;

/// lvmlockd's own defaults (`lvmlockd --help`), which are the heartbeat
/// agent's too.
pub const DEFAULT_PIDFILE: &str = "/run/lvmlockd.pid";
pub const DEFAULT_SOCKET: &str = "/run/lvm/lvmlockd.socket";

/// The levels lvmlockd's `-S` takes (it maps them to syslog levels).
const PRIORITIES: &[&str] = &[
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("pidfile")
        .identity()
        .default(DEFAULT_PIDFILE)
        .check(check_absolute)
        .short("pid file")
        .long(
            "The pid file lvmlockd writes (-p). A pid counts only when its process is \
             lvmlockd; the file is never followed through a symlink.",
        ),
    ParamSpec::string("socket_path")
        .identity()
        .default(DEFAULT_SOCKET)
        .check(check_absolute)
        .short("socket path")
        .long(
            "Set the socket path to listen on (-s). LVM commands reach lvmlockd only at its \
             built-in path, so change this for tests alone.",
        ),
    ParamSpec::one_of("syslog_priority", PRIORITIES)
        .default("warning")
        .short("syslog priority")
        .long("Write log messages from this level up to syslog (-S: err, warning, debug, ...)."),
    ParamSpec::integer("adopt")
        .default("1")
        .check(check_adopt)
        .short("Adopt locks from a previous instance of lvmlockd")
        .long(
            "Adopt locks from a previous instance of lvmlockd (-A 1): a daemon that \
             crashed or was killed leaves its locks in the lock manager, and the next one \
             takes them over instead of failing on them. 0 or 1.",
        ),
    ParamSpec::boolean("with_cmirrord")
        .default("false")
        .short("Start with cmirrord (cluster mirror log daemon)")
        .long(
            "Also run cmirrord, the cluster mirror log daemon, which clustered mirror LVs \
             (lvcreate --type mirror in a shared VG) need; started after lvmlockd, stopped \
             before it.",
        ),
];

static ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", 90),
    ActionSpec::new("stop", 90),
    ActionSpec::new("monitor", 90).interval(30).depth(0),
    ActionSpec::new("meta-data", 10),
    ActionSpec::new("validate-all", 20),
];

static META: AgentMeta = AgentMeta {
    name: "lvmlockd",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "This agent manages the lvmlockd daemon",
    longdesc: "This agent manages the lvmlockd daemon. \"lvmlockd\" is like \"clvmd\": LVM \
               commands use it to coordinate access to shared storage (shared VGs, vgcreate \
               --shared). lvmlockd can use two lock managers, dlm and sanlock; this agent runs \
               it with dlm, which needs dlm_controld: configure the \"controld\" resource \
               agent (ocf:pacemaker:controld) and order this agent after it, both cloned.\n\n\
               Start starts the daemon and the lockspaces of the shared VGs this node sees \
               (vgchange --lock-start); stop stops every lockspace, then the daemon, and \
               fails, naming the VG, while an LV of a shared VG is still active (stop the \
               LVM-activate resources first).\n\n\
               Using lvmlockd requires \"use_lvmlockd = 1\" in the global section of the LVM \
               configuration (/etc/lvm/lvm.conf) and, with LVM before 2.03, \
               \"locking_type = 1\". The agent checks these and refuses to start without \
               them; it never edits lvm.conf.\n\n\
               For more information, refer to manpage lvmlockd.8.",
    params: PARAMS,
    actions: ACTIONS,
    special: None,
};

fn check_absolute(v: &str) -> Result<(), String> {
    if !v.starts_with('/') {
        return Err("not an absolute path".into());
    }
    if v.ends_with('/') || v.split('/').any(|c| c == "..") {
        return Err("not a file path".into());
    }
    Ok(())
}

fn check_adopt(v: &str) -> Result<(), String> {
    match v.trim() {
        "0" | "1" => Ok(()),
        _ => Err("expected 0 or 1".into()),
    }
}

/// What lvm.conf must say for lvm commands to use lvmlockd; `Err` is the
/// line to change. `locking_type` (gone in LVM 2.03, where the key is
/// ignored) must be 1 when it is set.
pub fn check_lvm_conf(conf: &LvmConf) -> Result<(), Failure> {
    match conf.get("global/use_lvmlockd").as_deref() {
        Some("1") => {}
        other => {
            return Err(Failure::configured(format!(
                "lvm.conf: global/use_lvmlockd is {}; lvmlockd needs use_lvmlockd = 1 in the global section",
                other.unwrap_or("not set (0)")
            )))
        }
    }
    if let Some(t) = conf.get("global/locking_type").filter(|t| t != "1") {
        return Err(Failure::configured(format!(
            "lvm.conf: global/locking_type is {t}; lvmlockd needs locking_type = 1 (or none)"
        )));
    }
    Ok(())
}

/// A daemon's program as found on PATH (no fork), canonical.
fn program(ctx: &Context, name: &str) -> Option<PathBuf> {
    ctx.tools()
        .find(name)
        .and_then(|p| std::fs::canonicalize(p).ok())
}

/// One `lvmlockd` resource.
#[derive(Debug)]
pub struct Lvmlockd {
    pub pidfile: PathBuf,
    pub socket_path: PathBuf,
    pub syslog_priority: String,
    pub adopt: u8,
    pub with_cmirrord: bool,
}

/// How often waits look again.
const POLL: Duration = Duration::from_millis(50);

/// What monitor finds.
#[derive(Debug, PartialEq, Eq)]
enum State {
    Stopped,
    Running(Found),
}

impl Lvmlockd {
    fn daemon(&self, ctx: &Context) -> Daemon {
        Daemon {
            name: "lvmlockd",
            program: program(ctx, "lvmlockd"),
            pidfile: self.pidfile.clone(),
            socket: Some((
                self.socket_path.to_string_lossy().into_owned(),
                DEFAULT_SOCKET,
            )),
        }
    }

    fn cmirrord(&self, ctx: &Context) -> Daemon {
        Daemon {
            name: "cmirrord",
            program: program(ctx, "cmirrord"),
            pidfile: PathBuf::from("/run/cmirrord.pid"),
            socket: None,
        }
    }

    /// The argument vector lvmlockd is started with.
    pub fn daemon_args(&self) -> Vec<String> {
        vec![
            "-p".into(),
            self.pidfile.to_string_lossy().into_owned(),
            "-s".into(),
            self.socket_path.to_string_lossy().into_owned(),
            "-S".into(),
            self.syslog_priority.clone(),
            "-A".into(),
            self.adopt.to_string(),
            "-g".into(),
            "dlm".into(),
        ]
    }

    /// Whether lvmlockd accepts connections on our socket (no fork: one
    /// connect, closed at once).
    fn serves_socket(&self) -> bool {
        let is_socket =
            std::fs::symlink_metadata(&self.socket_path).is_ok_and(|m| m.file_type().is_socket());
        is_socket && UnixStream::connect(&self.socket_path).is_ok()
    }

    fn state(&self, ctx: &Context) -> State {
        match self.daemon(ctx).find() {
            Some(f) => State::Running(f),
            None => State::Stopped,
        }
    }

    fn tool(&self, ctx: &Context, name: &str) -> Result<Cmd, Failure> {
        ctx.tools().command(name)
    }

    /// `lvmlockctl ARGS` talking to our daemon.
    fn lvmlockctl(
        &self,
        deadline: &ocf::Deadline,
        ctx: &Context,
        args: &[&str],
    ) -> Result<ocf::Output, Failure> {
        let cmd = self.tool(ctx, "lvmlockctl")?.args(args);
        Ok(cmd.run(deadline)?)
    }

    /// The lockspaces the daemon holds; `None` when it cannot be asked.
    fn lockspaces(&self, ctx: &Context) -> Option<Vec<Lockspace>> {
        let deadline = ctx.deadline().capped(Duration::from_secs(5));
        let out = self.lvmlockctl(&deadline, ctx, &["--info"]).ok()?;
        out.success().then(|| lockspaces::parse_info(&out.stdout))
    }

    fn start_cmirrord(&self, ctx: &Context) -> Result<(), Failure> {
        let d = self.cmirrord(ctx);
        if d.find().is_some() {
            return Ok(());
        }
        ocf::info!("starting cmirrord");
        let out = self.tool(ctx, "cmirrord")?.run(&ctx.deadline())?;
        if !out.success() {
            return Err(Failure::generic(format!(
                "cmirrord failed to start: {}",
                out.message()
            )));
        }
        ctx.deadline()
            .wait_for(POLL, || d.find())
            .map(|_| ())
            .ok_or_else(|| Failure::generic("cmirrord did not stay up after starting"))
    }

    fn stop_cmirrord(&self, ctx: &Context) -> Result<(), Failure> {
        let d = self.cmirrord(ctx);
        let Some(found) = d.find() else {
            return Ok(());
        };
        let deadline = ctx.deadline().reserving(Duration::from_secs(1));
        if d.terminate(found.pid(), &deadline) {
            Ok(())
        } else {
            Err(Failure::generic(format!(
                "cmirrord (pid {}) did not stop",
                found.pid()
            )))
        }
    }

    /// `vgchange --lock-start`: the lockspaces of every shared VG this node
    /// sees. A failure is a warning (see the module documentation).
    fn lock_start(&self, ctx: &Context) -> Result<(), Failure> {
        let lvm = Lvm::find(ctx)?;
        // at most half the time left: a lockspace join that hangs (a lock
        // manager in trouble) must not fail the daemon's start
        let half = ctx.deadline().capped(ctx.deadline().remaining() / 2);
        let cmd = lvm.cmd(&["vgchange", "--lock-start"]);
        let out = match cmd.run(&half) {
            Ok(out) => out,
            Err(e) => {
                ocf::warn!(
                    "vgchange --lock-start: {e}; the shared VGs' lockspaces are not started"
                );
                return Ok(());
            }
        };
        if out.success() {
            ocf::info!("started the lockspaces of the shared VGs");
        } else {
            ocf::warn!(
                "vgchange --lock-start failed: {}; the VGs concerned are not usable until their lockspace starts",
                out.message()
            );
        }
        Ok(())
    }

    /// Stop every lockspace and wait until lvmlockd holds none. A VG whose
    /// lockspace `vgchange --lock-stop` cannot stop has an active LV: that
    /// fails the stop at once, naming the VG (lvmlockctl would wait for it
    /// until the timeout).
    fn lock_stop(&self, ctx: &Context) -> Result<(), Failure> {
        let lvm = Lvm::find(ctx)?;
        let out = lvm.run(ctx, &["vgchange", "--lock-stop"])?;
        if !out.success() {
            let busy: Vec<Lockspace> = self
                .lockspaces(ctx)
                .unwrap_or_default()
                .into_iter()
                .filter(|l| !l.vg.is_empty())
                .collect();
            if !busy.is_empty() {
                return Err(Failure::generic(format!(
                    "cannot stop the lockspace of {} ({}): stop the LVM-activate resources of shared VGs before lvmlockd; lvmlockd left running",
                    lockspaces::describe(&busy),
                    out.message()
                )));
            }
            ocf::warn!("vgchange --lock-stop failed: {}", out.message());
        }
        let held = self.lockspaces(ctx).unwrap_or_default();
        if !held.is_empty() {
            ocf::info!(
                "stopping the remaining lockspaces: {}",
                lockspaces::describe(&held)
            );
            let half = ctx.deadline().capped(ctx.deadline().remaining() / 2);
            let out = self.lvmlockctl(&half, ctx, &["--stop-lockspaces"])?;
            if !out.success() {
                ocf::warn!("lvmlockctl --stop-lockspaces failed: {}", out.message());
            }
        }
        // The dlm leaves a lockspace asynchronously: wait, inside the stop
        // timeout, leaving time to end the daemon.
        let wait = ctx.deadline().reserving(Duration::from_secs(5));
        let mut left = Vec::new();
        let done = wait.wait_for(Duration::from_millis(200), || {
            left = self.lockspaces(ctx).unwrap_or_default();
            left.is_empty().then_some(())
        });
        match done {
            Some(()) => Ok(()),
            None => Err(Failure::generic(format!(
                "lvmlockd still holds the lockspace(s) of {} at the end of the stop timeout; lvmlockd left running",
                lockspaces::describe(&left)
            ))),
        }
    }
}

impl ResourceAgent for Lvmlockd {
    fn meta() -> &'static AgentMeta {
        &META
    }

    fn configure(p: Params, _ctx: &Context) -> Result<Self, Failure> {
        let s = |n: &str| p.str(n).unwrap_or_default().to_string();
        Ok(Lvmlockd {
            pidfile: PathBuf::from(s("pidfile")),
            socket_path: PathBuf::from(s("socket_path")),
            syslog_priority: s("syslog_priority"),
            adopt: u8::from(s("adopt").trim() == "1"),
            with_cmirrord: p.bool("with_cmirrord"),
        })
    }

    /// The tools start needs. Monitor and stop need none to see or end the
    /// daemon (they read /proc), so only start and validate-all ask.
    fn validate(&self, ctx: &Context) -> Result<(), Failure> {
        if matches!(ctx.action, Action::Start | Action::ValidateAll) {
            let tools = ctx.tools();
            for t in ["lvmlockd", "lvmlockctl", "lvm"] {
                tools.require(t)?;
            }
            if self.with_cmirrord {
                tools.require("cmirrord")?;
            }
        }
        Ok(())
    }

    fn validate_all(&self, ctx: &Context) -> OcfResult {
        check_lvm_conf(&Lvm::find(ctx)?.config(ctx)?)?;
        Ok(OcfStatus::Success)
    }

    fn start(&self, ctx: &Context) -> OcfResult {
        check_lvm_conf(&Lvm::find(ctx)?.config(ctx)?)?;
        if !ocf::procs::running("dlm_controld") {
            return Err(Failure::configured(
                "DLM is not running (no dlm_controld): start ocf:pacemaker:controld before lvmlockd",
            ));
        }
        match self.state(ctx) {
            State::Running(found) => {
                ocf::info!("lvmlockd already runs (pid {})", found.pid());
            }
            State::Stopped => {
                if let Some(dir) = self.socket_path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Failure::generic(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                let cmd = self.tool(ctx, "lvmlockd")?.args(self.daemon_args());
                ocf::info!("starting {}", cmd.display());
                let out = cmd.run(&ctx.deadline())?;
                if !out.success() {
                    return Err(Failure::generic(format!(
                        "lvmlockd failed to start: {}",
                        out.message()
                    )));
                }
            }
        }
        let up = ctx.deadline().wait_for(POLL, || {
            (matches!(self.state(ctx), State::Running(_)) && self.serves_socket()).then_some(())
        });
        if up.is_none() {
            return Err(Failure::generic(format!(
                "lvmlockd did not come up serving {}",
                self.socket_path.display()
            )));
        }
        if self.with_cmirrord {
            self.start_cmirrord(ctx)?;
        }
        self.lock_start(ctx)?;
        Ok(OcfStatus::Success)
    }

    fn stop(&self, ctx: &Context) -> OcfResult {
        let State::Running(found) = self.state(ctx) else {
            if self.with_cmirrord {
                self.stop_cmirrord(ctx)?;
            }
            ocf::info!("lvmlockd is not running");
            return Ok(OcfStatus::Success);
        };
        if self.with_cmirrord {
            self.stop_cmirrord(ctx)?;
        }
        self.lock_stop(ctx)?;
        let pid = found.pid();
        let d = self.daemon(ctx);
        // lvmlockctl --quit ends a daemon that holds no lockspace cleanly.
        let quick = ctx.deadline().capped(Duration::from_secs(5));
        if let Ok(out) = self.lvmlockctl(&quick, ctx, &["--quit"]) {
            if !out.success() {
                ocf::debug!("lvmlockctl --quit: {}", out.message());
            }
        }
        let quit = ctx
            .deadline()
            .capped(Duration::from_secs(3))
            .wait_for(POLL, || d.find().is_none().then_some(()));
        if quit.is_none() && !d.terminate(pid, &ctx.deadline()) {
            return Err(Failure::generic(format!(
                "lvmlockd (pid {pid}) did not stop"
            )));
        }
        if let Some(other) = d.find() {
            return Err(Failure::generic(format!(
                "lvmlockd still runs (pid {})",
                other.pid()
            )));
        }
        Ok(OcfStatus::Success)
    }

    fn monitor(&self, ctx: &Context) -> OcfResult {
        let State::Running(found) = self.state(ctx) else {
            ocf::info!("lvmlockd not running");
            return Ok(OcfStatus::NotRunning);
        };
        if let Found::Scan(pid) = found {
            ocf::warn!(
                "lvmlockd (pid {pid}) serves {} but {} does not name it",
                self.socket_path.display(),
                self.pidfile.display()
            );
        }
        if !self.serves_socket() {
            return Err(Failure::generic(format!(
                "lvmlockd (pid {}) runs but does not accept connections on {}",
                found.pid(),
                self.socket_path.display()
            )));
        }
        if self.with_cmirrord && self.cmirrord(ctx).find().is_none() {
            return Err(Failure::generic("lvmlockd runs but cmirrord does not"));
        }
        Ok(OcfStatus::Success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> LvmConf {
        LvmConf::parse(text)
    }

    #[test]
    fn lvm_conf_must_turn_lvmlockd_on() {
        assert!(check_lvm_conf(&conf("global {\n\tuse_lvmlockd=1\n}\n")).is_ok());
        let off = check_lvm_conf(&conf("global {\n\tuse_lvmlockd=0\n}\n")).unwrap_err();
        assert_eq!(off.status, OcfStatus::ErrConfigured);
        assert!(off.reason.contains("use_lvmlockd is 0"), "{}", off.reason);
        let unset = check_lvm_conf(&conf("devices {\n\tfilter=[\"a|.*|\"]\n}\n")).unwrap_err();
        assert!(unset.reason.contains("not set"), "{}", unset.reason);
        let lt =
            check_lvm_conf(&conf("global {\n\tuse_lvmlockd=1\n\tlocking_type=3\n}\n")).unwrap_err();
        assert!(lt.reason.contains("locking_type is 3"), "{}", lt.reason);
        assert!(check_lvm_conf(&conf("global {\n\tuse_lvmlockd=1\n\tlocking_type=1\n}\n")).is_ok());
    }

    #[test]
    fn the_daemon_gets_every_parameter_and_dlm() {
        let a = Lvmlockd {
            pidfile: "/run/x.pid".into(),
            socket_path: "/run/x.sock".into(),
            syslog_priority: "debug".into(),
            adopt: 0,
            with_cmirrord: false,
        };
        assert_eq!(
            a.daemon_args(),
            [
                "-p",
                "/run/x.pid",
                "-s",
                "/run/x.sock",
                "-S",
                "debug",
                "-A",
                "0",
                "-g",
                "dlm"
            ]
        );
    }

    #[test]
    fn values_are_checked() {
        assert!(check_absolute("/run/lvmlockd.pid").is_ok());
        for bad in ["run/x.pid", "", "/run/", "/run/../etc/x"] {
            assert!(check_absolute(bad).is_err(), "{bad:?}");
        }
        assert!(check_adopt("1").is_ok() && check_adopt("0").is_ok());
        assert!(check_adopt("2").is_err());
    }
}
