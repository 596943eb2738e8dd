//! The cluster context of one invocation: who is calling, for what, with how
//! much time.
//!
//! Pacemaker describes the operation in `OCF_RESKEY_CRM_meta_*` (timeouts and
//! intervals in milliseconds); rgmanager in `OCF_RESKEY_RGMANAGER_meta_*`
//! (timeout in **seconds**); both may set `OCF_CHECK_LEVEL`. This module reads
//! all of it once, so agents ask questions (`is_probe`, `deadline`,
//! `check_level`) instead of parsing variables.

use std::time::{Duration, Instant};

use crate::action::Action;
use crate::command::Tools;
use crate::deadline::Deadline;
use crate::env::Env;
use crate::status::Failure;

/// Used when neither the caller nor the agent's meta-data names a timeout.
pub const FALLBACK_TIMEOUT: Duration = Duration::from_secs(20);

/// The longest timeout taken from a caller: a year. A longer one (up to
/// `18446744073709551615`, or more digits than a u64 holds) is read as
/// this, so every sum and product an agent makes of it (the deadline, two
/// thirds of it for an orderly shutdown) stays in range instead of
/// panicking the stop that must not fail.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(366 * 24 * 3600);

#[derive(Clone, Debug)]
pub struct Context {
    pub action: Action,
    /// `OCF_RESOURCE_TYPE`, else the agent's own name.
    pub resource_type: String,
    /// `OCF_RESOURCE_INSTANCE`, else `default` (how the shell library treats
    /// an agent run as an init script).
    pub instance: String,
    /// `OCF_CHECK_LEVEL`, falling back to `OCF_RESKEY_OCF_CHECK_LEVEL`, then 0.
    pub check_level: u32,
    /// `OCF_RESKEY_CRM_meta_interval` in ms; 0 when unset.
    pub interval_ms: u64,
    /// The caller's timeout for this operation, if it named one.
    pub timeout: Option<Duration>,
    pub migrate_source: Option<String>,
    pub migrate_target: Option<String>,
    /// `OCF_RESKEY_CRM_meta_clone_max` (or `_clone`) is set.
    pub clone: bool,
    /// `OCF_RESKEY_CRM_meta_promotable` true or `_master_max` set.
    pub promotable: bool,
    /// Pacemaker's name for this node, if it passed one.
    pub on_node: Option<String>,
    /// The timeout this action advertises in meta-data (the dispatcher sets
    /// it), used when the caller names none.
    pub default_timeout: Option<Duration>,
    /// When the agent started; the deadline counts from here.
    pub started: Instant,
    pub env: Env,
}

/// A count (milliseconds, seconds) from the caller; a number too large
/// for a u64 is the largest one, not "unset".
fn parse_count(v: &str) -> Option<u64> {
    let v = v.trim();
    match v.parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => Some(u64::MAX),
        Err(_) => None,
    }
}

/// Whether `action` (with this interval) is a stop or a probe.
fn lenient_for(action: &Action, interval_ms: u64) -> bool {
    match action {
        Action::Stop | Action::Kill => true,
        Action::Monitor => interval_ms == 0,
        _ => false,
    }
}

impl Context {
    /// Read the context from `env`. `agent_name` stands in for a missing
    /// `OCF_RESOURCE_TYPE`; `default_timeout` is the action's timeout
    /// advertised in meta-data, used when the caller sets none.
    ///
    /// A malformed `OCF_CHECK_LEVEL` is `OCF_ERR_CONFIGURED`, except for
    /// stop and probes ([`Context::is_lenient`]): they read it as 0 with one
    /// warning.
    pub fn from_env(action: Action, agent_name: &str, env: Env) -> Result<Context, Failure> {
        let ms = |key: &str| env.non_empty(key).and_then(parse_count);
        let interval_ms = ms("OCF_RESKEY_CRM_meta_interval").unwrap_or(0);
        let lenient = lenient_for(&action, interval_ms);
        let check_level = match env
            .non_empty("OCF_CHECK_LEVEL")
            .or_else(|| env.non_empty("OCF_RESKEY_OCF_CHECK_LEVEL"))
        {
            None => 0,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) => n,
                Err(_) if lenient => {
                    crate::warn!(
                        "OCF_CHECK_LEVEL: '{}' is not a check level; using 0",
                        v.escape_debug()
                    );
                    0
                }
                Err(_) => {
                    return Err(Failure::configured(format!(
                        "OCF_CHECK_LEVEL: '{v}' is not a check level"
                    )))
                }
            },
        };
        let timeout = ms("OCF_RESKEY_CRM_meta_timeout")
            .filter(|&t| t > 0)
            .map(Duration::from_millis)
            .or_else(|| {
                env.non_empty("OCF_RESKEY_RGMANAGER_meta_timeout")
                    .and_then(parse_count)
                    .filter(|&t| t > 0)
                    .map(Duration::from_secs)
            })
            .map(|t| t.min(MAX_TIMEOUT));
        let owned = |key: &str| env.non_empty(key).map(str::to_string);
        Ok(Context {
            resource_type: owned("OCF_RESOURCE_TYPE").unwrap_or_else(|| agent_name.to_string()),
            instance: owned("OCF_RESOURCE_INSTANCE").unwrap_or_else(|| "default".to_string()),
            check_level,
            interval_ms,
            timeout,
            migrate_source: owned("OCF_RESKEY_CRM_meta_migrate_source"),
            migrate_target: owned("OCF_RESKEY_CRM_meta_migrate_target"),
            clone: env.non_empty("OCF_RESKEY_CRM_meta_clone_max").is_some()
                || env.non_empty("OCF_RESKEY_CRM_meta_clone").is_some(),
            promotable: env
                .non_empty("OCF_RESKEY_CRM_meta_promotable")
                .is_some_and(crate::params::is_true)
                || env.non_empty("OCF_RESKEY_CRM_meta_master_max").is_some(),
            on_node: owned("OCF_RESKEY_CRM_meta_on_node"),
            default_timeout: None,
            started: Instant::now(),
            action,
            env,
        })
    }

    /// Stop (and `kill`) and probes: they read only what names the resource
    /// strictly, and fall back to defaults for everything else (see the
    /// dispatcher's module documentation, [`crate::agent`]).
    pub fn is_lenient(&self) -> bool {
        lenient_for(&self.action, self.interval_ms)
    }

    /// A monitor with no interval: Pacemaker asking "is it running here?"
    /// before it has started anything. `status` is never a probe.
    pub fn is_probe(&self) -> bool {
        self.action == Action::Monitor && self.interval_ms == 0
    }

    /// A monitor repeated on an interval, which expects the resource running.
    pub fn is_recurring_monitor(&self) -> bool {
        self.action == Action::Monitor && self.interval_ms > 0
    }

    /// The deadline for this operation: the caller's timeout, else the
    /// action's advertised timeout, else [`FALLBACK_TIMEOUT`], counted from
    /// the agent's start. Every wait of the action stays inside it.
    pub fn deadline(&self) -> Deadline {
        let total = self
            .timeout
            .or(self.default_timeout)
            .unwrap_or(FALLBACK_TIMEOUT);
        Deadline::new(self.started, total)
    }

    /// The node's tools, as this caller's environment finds them.
    pub fn tools(&self) -> Tools {
        Tools::from_env(&self.env)
    }

    /// The node this instance runs on, as Pacemaker names it, else the
    /// kernel's host name.
    pub fn node_name(&self) -> String {
        self.on_node.clone().unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "localhost".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(action: Action, pairs: &[(&str, &str)]) -> Result<Context, Failure> {
        Context::from_env(action, "Dummy", Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn probe_is_a_monitor_without_interval() {
        assert!(ctx(Action::Monitor, &[]).unwrap().is_probe());
        assert!(
            ctx(Action::Monitor, &[("OCF_RESKEY_CRM_meta_interval", "0")])
                .unwrap()
                .is_probe()
        );
        let recurring = ctx(
            Action::Monitor,
            &[("OCF_RESKEY_CRM_meta_interval", "10000")],
        )
        .unwrap();
        assert!(!recurring.is_probe());
        assert!(recurring.is_recurring_monitor());
        assert!(!ctx(Action::Status, &[]).unwrap().is_probe());
        assert!(!ctx(Action::Start, &[]).unwrap().is_probe());
    }

    #[test]
    fn pacemaker_timeout_is_milliseconds_rgmanager_seconds() {
        let pcmk = ctx(Action::Start, &[("OCF_RESKEY_CRM_meta_timeout", "20000")]).unwrap();
        assert_eq!(pcmk.timeout, Some(Duration::from_secs(20)));
        let rgm = ctx(
            Action::Start,
            &[("OCF_RESKEY_RGMANAGER_meta_timeout", "30")],
        )
        .unwrap();
        assert_eq!(rgm.timeout, Some(Duration::from_secs(30)));
        let both = ctx(
            Action::Start,
            &[
                ("OCF_RESKEY_CRM_meta_timeout", "5000"),
                ("OCF_RESKEY_RGMANAGER_meta_timeout", "30"),
            ],
        )
        .unwrap();
        assert_eq!(both.timeout, Some(Duration::from_secs(5)));
        assert_eq!(ctx(Action::Start, &[]).unwrap().timeout, None);
    }

    #[test]
    fn huge_timeouts_are_capped_not_overflowed() {
        for (key, v) in [
            ("OCF_RESKEY_RGMANAGER_meta_timeout", "18446744073709551615"),
            ("OCF_RESKEY_CRM_meta_timeout", "18446744073709551615"),
            ("OCF_RESKEY_CRM_meta_timeout", "99999999999999999999999999"),
        ] {
            let c = ctx(Action::Stop, &[(key, v)]).unwrap();
            assert_eq!(c.timeout, Some(MAX_TIMEOUT), "{key}={v}");
            let d = c.deadline();
            assert!(!d.expired());
            assert!(d.remaining() > Duration::from_secs(300 * 24 * 3600));
            // what agents compute from it stays in range
            let _ = c.timeout.map(|t| t * 2 / 3);
            let _ = d.capped(Duration::MAX).reserving(Duration::MAX);
        }
        let c = ctx(Action::Stop, &[("OCF_RESKEY_CRM_meta_timeout", "-5")]).unwrap();
        assert_eq!(c.timeout, None);
    }

    #[test]
    fn deadline_prefers_caller_then_metadata_then_fallback() {
        let mut c = ctx(Action::Start, &[("OCF_RESKEY_CRM_meta_timeout", "4000")]).unwrap();
        c.default_timeout = Some(Duration::from_secs(60));
        assert_eq!(c.deadline().total(), Duration::from_secs(4));
        let mut c = ctx(Action::Start, &[]).unwrap();
        assert_eq!(c.deadline().total(), FALLBACK_TIMEOUT);
        c.default_timeout = Some(Duration::from_secs(60));
        assert_eq!(c.deadline().total(), Duration::from_secs(60));
    }

    #[test]
    fn check_level_and_its_fallback() {
        assert_eq!(ctx(Action::Monitor, &[]).unwrap().check_level, 0);
        assert_eq!(
            ctx(Action::Monitor, &[("OCF_CHECK_LEVEL", "20")])
                .unwrap()
                .check_level,
            20
        );
        assert_eq!(
            ctx(Action::Monitor, &[("OCF_RESKEY_OCF_CHECK_LEVEL", "10")])
                .unwrap()
                .check_level,
            10
        );
        let recurring = ("OCF_RESKEY_CRM_meta_interval", "10000");
        let bad = ctx(Action::Monitor, &[("OCF_CHECK_LEVEL", "deep"), recurring]).unwrap_err();
        assert_eq!(bad.status, crate::OcfStatus::ErrConfigured);
        assert!(bad.reason.contains("deep"));
        let bad = ctx(Action::Start, &[("OCF_CHECK_LEVEL", "deep")]).unwrap_err();
        assert_eq!(bad.status, crate::OcfStatus::ErrConfigured);
        // stop and probes read it as 0
        for action in [Action::Stop, Action::Kill, Action::Monitor] {
            let c = ctx(action.clone(), &[("OCF_CHECK_LEVEL", "deep")]).unwrap();
            assert_eq!(c.check_level, 0, "{action:?}");
            assert!(c.is_lenient());
        }
    }

    #[test]
    fn instance_type_clone_and_migration() {
        let c = ctx(
            Action::MigrateTo,
            &[
                ("OCF_RESOURCE_INSTANCE", "vm1"),
                ("OCF_RESKEY_CRM_meta_migrate_target", "node2"),
                ("OCF_RESKEY_CRM_meta_clone_max", "2"),
            ],
        )
        .unwrap();
        assert_eq!(c.instance, "vm1");
        assert_eq!(c.resource_type, "Dummy");
        assert_eq!(c.migrate_target.as_deref(), Some("node2"));
        assert!(c.clone);
        let c = ctx(Action::Start, &[]).unwrap();
        assert_eq!(c.instance, "default");
        assert!(!c.clone);
    }
}
