//! The action named on the command line, with the aliases other callers use.
//!
//! Pacemaker passes one argument (`start`, `monitor`, ...). rgmanager says
//! `status` and `verify-all`, and migrates with `migrate <target-node>`; NCS
//! scripts and admins say `status`. All of them land on one [`Action`].

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Monitor,
    /// `status`: monitor semantics for rgmanager/NCS/LSB-style callers.
    Status,
    MigrateTo,
    MigrateFrom,
    /// rgmanager's `migrate <target-node>`.
    Migrate(String),
    MetaData,
    /// `validate-all`, also reached as `verify-all`.
    ValidateAll,
    Methods,
    Usage,
    Reload,
    ReloadAgent,
    Notify,
    Promote,
    Demote,
    Recover,
    Reconfig,
    /// rgmanager's `restart` (its agents accept it; not in its DTD).
    Restart,
    /// rgmanager vm.sh's `kill`: stop without a graceful attempt.
    Kill,
    /// Anything else: answered with OCF_ERR_UNIMPLEMENTED.
    Other(String),
}

/// Why the command line names no action we can run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionError {
    /// No argument at all: print usage, exit 2.
    Missing,
    /// `migrate` without its target node.
    MissingTarget,
}

impl Action {
    /// Parse the arguments after the program name. Extra arguments are
    /// ignored, as the OCF spec demands, except `migrate`'s target node.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Action, ActionError> {
        let first = args.first().ok_or(ActionError::Missing)?.as_ref();
        Ok(match first {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "monitor" => Action::Monitor,
            "status" => Action::Status,
            "migrate_to" => Action::MigrateTo,
            "migrate_from" => Action::MigrateFrom,
            "migrate" => match args.get(1).map(|t| t.as_ref()) {
                Some(t) if !t.is_empty() => Action::Migrate(t.to_string()),
                _ => return Err(ActionError::MissingTarget),
            },
            "meta-data" | "meta_data" => Action::MetaData,
            "validate-all" | "verify-all" => Action::ValidateAll,
            "methods" => Action::Methods,
            "usage" | "help" => Action::Usage,
            "reload" => Action::Reload,
            "reload-agent" => Action::ReloadAgent,
            "notify" => Action::Notify,
            "promote" => Action::Promote,
            "demote" => Action::Demote,
            "recover" => Action::Recover,
            "reconfig" => Action::Reconfig,
            "restart" => Action::Restart,
            "kill" => Action::Kill,
            "" => return Err(ActionError::Missing),
            other => Action::Other(other.to_string()),
        })
    }

    /// The canonical OCF name, as advertised in meta-data.
    pub fn name(&self) -> &str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Monitor => "monitor",
            Action::Status => "status",
            Action::MigrateTo => "migrate_to",
            Action::MigrateFrom => "migrate_from",
            Action::Migrate(_) => "migrate",
            Action::MetaData => "meta-data",
            Action::ValidateAll => "validate-all",
            Action::Methods => "methods",
            Action::Usage => "usage",
            Action::Reload => "reload",
            Action::ReloadAgent => "reload-agent",
            Action::Notify => "notify",
            Action::Promote => "promote",
            Action::Demote => "demote",
            Action::Recover => "recover",
            Action::Reconfig => "reconfig",
            Action::Restart => "restart",
            Action::Kill => "kill",
            Action::Other(s) => s,
        }
    }

    /// Actions that answer without reading any instance parameter.
    pub fn needs_no_config(&self) -> bool {
        matches!(self, Action::MetaData | Action::Methods | Action::Usage)
    }

    /// Health checks: `monitor` and its alias `status`.
    pub fn is_monitor(&self) -> bool {
        matches!(self, Action::Monitor | Action::Status)
    }

    /// Actions that change or inspect the resource itself and must therefore
    /// never interleave with another action on the same instance.
    pub fn takes_instance_lock(&self) -> bool {
        !matches!(
            self,
            Action::MetaData
                | Action::Methods
                | Action::Usage
                | Action::ValidateAll
                | Action::Other(_)
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Migrate(t) => write!(f, "migrate {t}"),
            other => f.write_str(other.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacemaker_actions_parse_to_themselves() {
        for name in [
            "start",
            "stop",
            "monitor",
            "migrate_to",
            "migrate_from",
            "meta-data",
            "validate-all",
            "methods",
            "usage",
            "reload",
            "reload-agent",
            "notify",
            "promote",
            "demote",
            "recover",
            "restart",
            "kill",
        ] {
            assert_eq!(Action::parse(&[name]).unwrap().name(), name);
        }
    }

    #[test]
    fn aliases_of_other_callers() {
        assert_eq!(Action::parse(&["verify-all"]), Ok(Action::ValidateAll));
        assert_eq!(Action::parse(&["status"]), Ok(Action::Status));
        assert!(Action::parse(&["status"]).unwrap().is_monitor());
        assert_eq!(
            Action::parse(&["migrate", "node2"]),
            Ok(Action::Migrate("node2".into()))
        );
        assert_eq!(Action::parse(&["migrate"]), Err(ActionError::MissingTarget));
    }

    #[test]
    fn extra_arguments_are_ignored_and_unknown_actions_kept() {
        assert_eq!(Action::parse(&["stop", "whatever"]), Ok(Action::Stop));
        assert_eq!(
            Action::parse(&["frobnicate"]),
            Ok(Action::Other("frobnicate".into()))
        );
        assert_eq!(Action::parse::<&str>(&[]), Err(ActionError::Missing));
        assert_eq!(Action::parse(&[""]), Err(ActionError::Missing));
    }

    #[test]
    fn only_resource_actions_take_the_lock() {
        assert!(Action::Start.takes_instance_lock());
        assert!(Action::Monitor.takes_instance_lock());
        assert!(!Action::MetaData.takes_instance_lock());
        assert!(!Action::ValidateAll.takes_instance_lock());
    }
}
