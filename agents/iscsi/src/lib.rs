//! `iscsi`: logs the open-iscsi initiator of this node in to one target
//! through one portal, drop-in for `ocf:heartbeat:iscsi` with its parameter
//! names, defaults and meanings, and without its shell:
//!
//! * monitor reads the session from sysfs ([`sysfs`]) and forks nothing;
//!   a session matches by target name AND the portal's address and port,
//!   so two portals of one target (multipath) are never confused
//!   ([`portal`]);
//! * start discovers only when the node record of this target at this
//!   portal is missing, and then only adds records (`-o new`): existing
//!   records in /etc/iscsi/nodes are never rewritten;
//! * every wait (login, udev, recovery, logout) ends inside the operation
//!   timeout, where the heartbeat agent loops forever on udev and recovery;
//! * iscsiadm output reaches the logs only with passwords masked
//!   ([`iscsiadm::mask_secrets`]).

pub mod iscsiadm;
pub mod portal;
pub mod sysfs;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ocf::{
    Action, ActionSpec, AgentMeta, Context, Failure, OcfResult, OcfStatus, ParamSpec, Params,
    ResourceAgent,
};

use crate::iscsiadm::Iscsiadm;
use crate::portal::Portal;
use crate::sysfs::Session;

/// The discovery types iscsiadm knows.
const DISCOVERY_TYPES: &[&str] = &["sendtargets", "st", "isns", "fw", "slp"];

static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("portal")
        .identity()
        .required()
        .check(check_portal)
        .short("Portal address")
        .long(
            "The iSCSI portal address in the form: {ip_address|hostname}[\":\"port] \
             (IPv6 addresses in brackets when a port follows). The port defaults to 3260. \
             A session counts as this resource's only when it is logged in to this address \
             and port, so two resources for one target through two portals (multipath) \
             never see each other's session.",
        ),
    ParamSpec::string("target")
        .identity()
        .required()
        .unique()
        .check(check_target)
        .short("Target IQN")
        .long("The iSCSI target IQN."),
    ParamSpec::string("discovery_type")
        .default("sendtargets")
        .check(check_discovery_type)
        .short("Target discovery type")
        .long(
            "Target discovery type (sendtargets, st, isns, fw or slp; see iscsiadm(8)). \
             Discovery runs at start only when no node record of the target at the portal \
             exists, and only adds records: existing ones are never rewritten.",
        ),
    ParamSpec::string("iscsiadm")
        .default("iscsiadm")
        .short("iscsiadm binary")
        .long("open-iscsi administration utility binary (a name looked up on PATH, or a path)."),
    ParamSpec::string("udev").default("yes").short("udev").long(
        "If the next resource depends on udev creating a device, start waits until \
             udev has made a /dev/disk/by-path link for a disk of the new session. The wait \
             ends with the start timeout (it fails the start then). If you are not using \
             udev set this to \"no\".",
    ),
    ParamSpec::boolean("try_recovery")
        .default("false")
        .short("On error wait for iSCSI recovery in monitor")
        .long(
            "If the iSCSI session exists but is currently inactive/broken, which is most \
             probably due to network problems, the iSCSI layer will try to recover. If this \
             parameter is set to true, a recurring monitor waits for the recovery to succeed, \
             until shortly before its timeout (then it fails). Probes never wait.",
        ),
];

static ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", 120),
    ActionSpec::new("stop", 120),
    ActionSpec::new("status", 30),
    ActionSpec::new("monitor", 30).interval(120).depth(0),
    ActionSpec::new("validate-all", 5),
    ActionSpec::new("methods", 5),
    ActionSpec::new("meta-data", 5),
];

static META: AgentMeta = AgentMeta {
    name: "iscsi",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Manages a local iSCSI initiator and its connections to iSCSI targets",
    longdesc: "OCF Resource Agent for iSCSI. Add (start) or remove (stop) iSCSI targets: start \
               logs the open-iscsi initiator in to the target through the portal (discovering \
               it first when no node record exists), stop logs that session out.\n\n\
               Monitor reads the session from sysfs (/sys/class/iscsi_session): running when \
               a session to the target through this portal is logged in, stopped when there is \
               none, failed when it exists but is not logged in (see try_recovery). Only depth \
               0 is supported.\n\n\
               iscsiadm missing or iscsid not running (and no iscsid.startup in \
               /etc/iscsi/iscsid.conf): start and validate-all fail with OCF_ERR_INSTALLED.",
    params: PARAMS,
    actions: ACTIONS,
    special: None,
};

fn check_portal(v: &str) -> Result<(), String> {
    Portal::parse(v).map(|_| ())
}

fn check_target(v: &str) -> Result<(), String> {
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("whitespace in a target name".into());
    }
    Ok(())
}

fn check_discovery_type(v: &str) -> Result<(), String> {
    if DISCOVERY_TYPES.contains(&v) {
        Ok(())
    } else {
        Err(format!("expected one of {}", DISCOVERY_TYPES.join(", ")))
    }
}

fn iscsid_running() -> bool {
    ocf::procs::running("iscsid")
}

/// `iscsid.startup` in iscsid.conf: iscsiadm starts iscsid itself with it.
fn iscsid_autostarts() -> bool {
    std::fs::read_to_string("/etc/iscsi/iscsid.conf")
        .is_ok_and(|c| c.lines().any(|l| l.starts_with("iscsid.startup")))
}

fn require_root() -> Result<(), Failure> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Failure::perm("the iscsi agent must be run as root"))
    }
}

/// One `iscsi` resource.
#[derive(Debug)]
pub struct Iscsi {
    pub portal: Portal,
    pub target: String,
    pub discovery_type: String,
    pub iscsiadm: String,
    pub udev: bool,
    pub try_recovery: bool,
    /// `/sys` (tests read a fake tree).
    pub sys: PathBuf,
    /// `/dev/disk/by-path`.
    pub by_path: PathBuf,
}

/// How often waits look at sysfs again.
const POLL: Duration = Duration::from_millis(100);

impl Iscsi {
    /// The sessions of our target through our portal. Only a host name
    /// portal with sessions of the target at its port needs resolving
    /// (bounded by the deadline); no session of the target needs nothing.
    pub fn our_sessions(&self, ctx: &Context) -> Result<Vec<Session>, Failure> {
        let all = sysfs::sessions(&self.sys, Some(&self.target));
        let candidates: Vec<Session> = all
            .into_iter()
            .filter(|s| s.port == self.portal.port)
            .collect();
        if candidates.is_empty() {
            return Ok(candidates);
        }
        let resolved: Vec<IpAddr> = self
            .portal
            .resolve(&ctx.deadline().capped(Duration::from_secs(10)))
            .map_err(Failure::generic)?;
        Ok(candidates
            .into_iter()
            .filter(|s| self.portal.matches(&s.address, s.port, &resolved))
            .collect())
    }

    fn what(&self) -> String {
        format!("{} at {}", self.target, self.portal)
    }

    /// Wait (bounded by the deadline) for one of our sessions to be logged
    /// in; logs each state change. `None`: still not logged in.
    fn wait_logged_in(&self, ctx: &Context) -> Result<Option<Session>, Failure> {
        let mut last = String::new();
        let mut error = None;
        let found = ctx
            .deadline()
            .wait_for(POLL, || match self.our_sessions(ctx) {
                Err(e) => {
                    error = Some(e);
                    None
                }
                Ok(s) => {
                    if let Some(ok) = s.iter().find(|s| s.logged_in()) {
                        return Some(ok.clone());
                    }
                    let now = s
                        .iter()
                        .map(Session::describe)
                        .collect::<Vec<_>>()
                        .join(", ");
                    if now != last && !now.is_empty() {
                        ocf::warn!("{}: {now}, waiting for recovery", self.what());
                    }
                    last = now;
                    None
                }
            });
        match (found, error) {
            (Some(s), _) => Ok(Some(s)),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }

    /// Discovery at our portal, when no node record exists: it must offer
    /// our target at our portal.
    fn discover(&self, ctx: &Context, adm: &Iscsiadm) -> Result<(), Failure> {
        let portal = self.portal.arg();
        let newer = adm
            .version(ctx)
            .and_then(|v| iscsiadm::version_newer(&v, "2.0-871"))
            .unwrap_or(true);
        let kind = self.discovery_type.as_str();
        let mut args: Vec<&str> = Vec::new();
        match kind {
            "sendtargets" | "st" | "isns" if newer => {
                args.extend(["-m", "discoverydb", "-t", kind, "-p", &portal]);
                // Add records for what is new; never update or delete the
                // existing ones.
                args.extend(["-o", "new", "-D"]);
            }
            "fw" => args.extend(["-m", "discovery", "-t", kind]),
            _ => args.extend(["-m", "discovery", "-t", kind, "-p", &portal, "-o", "new"]),
        }
        ocf::info!("discovering targets at {portal} ({kind})");
        let out = adm.run(ctx, &args)?;
        if !out.success() {
            return Err(self.iscsiadm_failure(
                &format!("discovery at {portal} failed"),
                &iscsiadm::message(&out),
            ));
        }
        let offered = iscsiadm::offered_portals(&out.stdout, &self.target);
        let resolved = self
            .portal
            .resolve(&ctx.deadline().capped(Duration::from_secs(10)))
            .map_err(Failure::generic)?;
        let ours = offered.iter().any(|p| {
            Portal::parse(p).is_ok_and(|p| self.portal.matches(&p.host, p.port, &resolved))
        });
        match (ours, offered.is_empty()) {
            (true, _) => Ok(()),
            (false, true) => Err(Failure::generic(format!(
                "target {} not found at portal {portal}",
                self.target
            ))),
            (false, false) => Err(Failure::generic(format!(
                "target {} is offered at {} but not at portal {portal}: set portal to one of them",
                self.target,
                offered.join(", ")
            ))),
        }
    }

    /// An iscsiadm failure: OCF_ERR_INSTALLED when iscsid is not running
    /// (iscsid.startup did not start it), else OCF_ERR_GENERIC.
    fn iscsiadm_failure(&self, what: &str, msg: &str) -> Failure {
        if iscsid_running() {
            Failure::generic(format!("{what}: {msg}"))
        } else {
            Failure::installed(format!("{what}: iscsid is not running ({msg})"))
        }
    }

    /// udev=yes: wait (bounded) until udev made a /dev/disk/by-path link
    /// for a disk of session `sid`.
    fn wait_udev(&self, ctx: &Context, sid: u32) -> Result<(), Failure> {
        let found = ctx.deadline().wait_for(POLL, || {
            let disks = sysfs::disks(&self.sys, sid);
            let links = sysfs::by_path_links(&self.by_path, &disks);
            links.into_iter().next()
        });
        match found {
            Some(link) => {
                ocf::debug!("udev made {}/{link}", self.by_path.display());
                Ok(())
            }
            None => Err(Failure::generic(format!(
                "logged in to {}, but no {} link for its disks appeared in time (udev=no if \
                 udev does not run here)",
                self.what(),
                self.by_path.display()
            ))),
        }
    }
}

impl ResourceAgent for Iscsi {
    fn meta() -> &'static AgentMeta {
        &META
    }

    fn configure(p: Params, _ctx: &Context) -> Result<Self, Failure> {
        let portal = Portal::parse(p.str("portal").unwrap_or_default())
            .map_err(|e| Failure::configured(format!("parameter 'portal': {e}")))?;
        Ok(Iscsi {
            portal,
            target: p.str("target").unwrap_or_default().to_string(),
            discovery_type: p.str("discovery_type").unwrap_or("sendtargets").to_string(),
            iscsiadm: p.str("iscsiadm").unwrap_or("iscsiadm").to_string(),
            udev: p.str("udev").is_some_and(ocf::is_true),
            try_recovery: p.bool("try_recovery"),
            sys: PathBuf::from(sysfs::SYS),
            by_path: PathBuf::from("/dev/disk/by-path"),
        })
    }

    /// Start and validate-all need root, iscsiadm and iscsid (or an
    /// iscsid.startup that starts it). Monitor and stop read sysfs and need
    /// nothing until there is a session to log out.
    fn validate(&self, ctx: &Context) -> Result<(), Failure> {
        if !matches!(ctx.action, Action::Start | Action::ValidateAll) {
            return Ok(());
        }
        require_root()?;
        Iscsiadm::find(ctx, &self.iscsiadm)?;
        if !iscsid_running() && !iscsid_autostarts() {
            return Err(Failure::installed(
                "iscsid is not running; please start open-iscsi utilities",
            ));
        }
        Ok(())
    }

    fn start(&self, ctx: &Context) -> OcfResult {
        let ours = self.our_sessions(ctx)?;
        if ours.iter().any(Session::logged_in) {
            ocf::info!("iscsi {} already running", self.what());
            return Ok(OcfStatus::Success);
        }
        if ours.is_empty() {
            let adm = Iscsiadm::find(ctx, &self.iscsiadm)?;
            let portal = self.portal.arg();
            if !adm.node_exists(ctx, &portal, &self.target)? {
                self.discover(ctx, &adm)?;
                if !adm.node_exists(ctx, &portal, &self.target)? {
                    return Err(Failure::generic(format!(
                        "discovery offered {} but left no node record for it",
                        self.what()
                    )));
                }
            }
            ocf::info!("logging in to {}", self.what());
            let out = adm.run(
                ctx,
                &["-m", "node", "-p", &portal, "-T", &self.target, "-l"],
            )?;
            if !out.success() && out.code() != Some(iscsiadm::ERR_SESS_EXISTS) {
                return Err(self.iscsiadm_failure(
                    &format!("login to {} failed", self.what()),
                    &iscsiadm::message(&out),
                ));
            }
        } else {
            ocf::warn!(
                "iscsi {} in failed state ({})",
                self.what(),
                ours[0].describe()
            );
        }
        let Some(session) = self.wait_logged_in(ctx)? else {
            let now = self.our_sessions(ctx).unwrap_or_default();
            return Err(Failure::generic(match now.first() {
                Some(s) => format!(
                    "{} to {} did not recover in time",
                    s.describe(),
                    self.what()
                ),
                None => format!("no session to {} after login", self.what()),
            }));
        };
        if self.udev {
            self.wait_udev(ctx, session.sid)?;
        }
        ocf::info!("logged in to {} (session {})", self.what(), session.sid);
        Ok(OcfStatus::Success)
    }

    fn stop(&self, ctx: &Context) -> OcfResult {
        let ours = self.our_sessions(ctx)?;
        if ours.is_empty() {
            ocf::info!("iscsi {} already stopped", self.what());
            return Ok(OcfStatus::Success);
        }
        require_root()?;
        let adm = Iscsiadm::find(ctx, &self.iscsiadm).map_err(|f| {
            Failure::generic(format!("cannot log out of {}: {}", self.what(), f.reason))
        })?;
        let mut last = String::new();
        for s in &ours {
            ocf::info!("logging out of {} ({})", self.what(), s.describe());
            let sid = s.sid.to_string();
            let out = adm.run(ctx, &["-m", "session", "-r", &sid, "-u"])?;
            if !out.success() {
                last = iscsiadm::message(&out);
            }
        }
        // iscsiadm waits for the logout; when it failed, only a short look.
        let deadline = if last.is_empty() {
            ctx.deadline()
        } else {
            ctx.deadline().capped(Duration::from_secs(2))
        };
        let gone = deadline
            .wait_for(POLL, || {
                self.our_sessions(ctx)
                    .is_ok_and(|s| s.iter().all(|s| !ours.iter().any(|o| o.sid == s.sid)))
                    .then_some(())
            })
            .is_some();
        if !gone {
            return Err(self.iscsiadm_failure(
                &format!("logout of {} failed", self.what()),
                if last.is_empty() {
                    "session still present"
                } else {
                    &last
                },
            ));
        }
        ocf::info!("logged out of {}", self.what());
        Ok(OcfStatus::Success)
    }

    fn monitor(&self, ctx: &Context) -> OcfResult {
        if ctx.check_level != 0 {
            return Err(Failure::configured(format!(
                "unsupported monitor depth {} (only 0 is)",
                ctx.check_level
            )));
        }
        let ours = self.our_sessions(ctx)?;
        if ours.is_empty() {
            return Ok(OcfStatus::NotRunning);
        }
        if ours.iter().any(Session::logged_in) {
            return Ok(OcfStatus::Success);
        }
        if self.try_recovery && !ctx.is_probe() {
            if let Some(s) = self.wait_logged_in(ctx)? {
                ocf::info!("{}: session {} restored", self.what(), s.sid);
                return Ok(OcfStatus::Success);
            }
        }
        let states: Vec<String> = ours.iter().map(Session::describe).collect();
        Err(Failure::generic(format!(
            "{} to {} is not logged in",
            states.join(", "),
            self.what()
        )))
    }

    fn validate_all(&self, _ctx: &Context) -> OcfResult {
        Ok(OcfStatus::Success)
    }
}

#[cfg(test)]
mod tests {
    use super::sysfs::fake::FakeSys;
    use super::*;
    use ocf::Env;

    fn agent(sys: &FakeSys, portal: &str, try_recovery: bool) -> Iscsi {
        Iscsi {
            portal: Portal::parse(portal).unwrap(),
            target: "iqn.t:a".into(),
            discovery_type: "sendtargets".into(),
            iscsiadm: "iscsiadm".into(),
            udev: true,
            try_recovery,
            sys: sys.root.clone(),
            by_path: sys.root.join("by-path"),
        }
    }

    fn ctx(action: Action, pairs: &[(&str, &str)]) -> Context {
        let mut c =
            Context::from_env(action, "iscsi", Env::from_pairs(pairs.iter().copied())).unwrap();
        c.default_timeout = Some(Duration::from_secs(2));
        c
    }

    #[test]
    fn monitor_matches_target_and_portal_only() {
        let f = FakeSys::new("monitor");
        let probe = ctx(Action::Monitor, &[]);
        assert_eq!(
            agent(&f, "127.0.0.1:3260", false).monitor(&probe),
            Ok(OcfStatus::NotRunning)
        );
        // another target, and our target through the other portal
        f.session(1, "iqn.t:b", "127.0.0.1", 3260, "LOGGED_IN", None);
        f.session(2, "iqn.t:a", "127.0.0.1", 3261, "LOGGED_IN", None);
        f.session(3, "iqn.t:a", "127.0.0.10", 3260, "LOGGED_IN", None);
        let a = agent(&f, "127.0.0.1:3260", false);
        assert_eq!(a.monitor(&probe), Ok(OcfStatus::NotRunning));
        assert_eq!(
            agent(&f, "127.0.0.1:3261", false).monitor(&probe),
            Ok(OcfStatus::Success)
        );
        f.session(4, "iqn.t:a", "127.0.0.1", 3260, "FAILED", None);
        let e = a.monitor(&probe).unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrGeneric);
        assert!(e.reason.contains("session 4 (FAILED"), "{e}");
        f.set_state(4, "LOGGED_IN");
        assert_eq!(a.monitor(&probe), Ok(OcfStatus::Success));
        let deep = ctx(Action::Monitor, &[("OCF_CHECK_LEVEL", "10")]);
        assert_eq!(
            a.monitor(&deep).unwrap_err().status,
            OcfStatus::ErrConfigured
        );
    }

    #[test]
    fn try_recovery_waits_inside_the_deadline_but_never_in_a_probe() {
        let f = FakeSys::new("recovery");
        f.session(1, "iqn.t:a", "127.0.0.1", 3260, "FAILED", None);
        let a = agent(&f, "127.0.0.1", true);
        let t = std::time::Instant::now();
        assert!(a.monitor(&ctx(Action::Monitor, &[])).is_err());
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "a probe must not wait"
        );
        let recurring = ctx(
            Action::Monitor,
            &[("OCF_RESKEY_CRM_meta_interval", "10000")],
        );
        let t = std::time::Instant::now();
        assert!(a.monitor(&recurring).is_err());
        assert!(
            t.elapsed() >= Duration::from_millis(1500),
            "{:?}",
            t.elapsed()
        );
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        let root = f.root.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::write(
                root.join("class/iscsi_session/session1/state"),
                "LOGGED_IN\n",
            )
            .unwrap();
        });
        let recurring = ctx(
            Action::Monitor,
            &[("OCF_RESKEY_CRM_meta_interval", "10000")],
        );
        assert_eq!(a.monitor(&recurring), Ok(OcfStatus::Success));
        h.join().unwrap();
    }

    #[test]
    fn udev_wait_is_bounded() {
        let f = FakeSys::new("udev");
        f.session(1, "iqn.t:a", "127.0.0.1", 3260, "LOGGED_IN", Some("sdq"));
        let a = agent(&f, "127.0.0.1", false);
        let c = ctx(Action::Start, &[]);
        let t = std::time::Instant::now();
        assert!(a.wait_udev(&c, 1).is_err());
        assert!(t.elapsed() < Duration::from_secs(3));
        std::fs::create_dir_all(&a.by_path).unwrap();
        std::os::unix::fs::symlink(
            "../../sdq",
            a.by_path.join("ip-127.0.0.1:3260-iscsi-iqn.t:a-lun-0"),
        )
        .unwrap();
        assert!(a.wait_udev(&ctx(Action::Start, &[]), 1).is_ok());
    }

    #[test]
    fn parameters_are_checked() {
        assert!(check_portal("10.0.0.1:3260").is_ok());
        assert!(check_portal("10.0.0.1:x").is_err());
        assert!(check_target("iqn.2003-01.org.example:t1").is_ok());
        assert!(check_target("iqn.x y").is_err());
        assert!(check_discovery_type("st").is_ok());
        assert!(check_discovery_type("dns").is_err());
    }
}
