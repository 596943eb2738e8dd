//! OCF exit codes and the failure type every action returns.
//!
//! Agents never exit with a bare integer: an action returns
//! `Ok(OcfStatus::...)` for an answer (monitor's `NotRunning` is an answer, not
//! an error) or `Err(Failure)` for something that went wrong, which carries the
//! exit reason Pacemaker shows to the admin.

use std::fmt;

/// Every exit code defined by OCF resource agent API 1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OcfStatus {
    Success,
    ErrGeneric,
    ErrArgs,
    ErrUnimplemented,
    ErrPerm,
    ErrInstalled,
    ErrConfigured,
    NotRunning,
    RunningPromoted,
    FailedPromoted,
    Degraded,
    DegradedPromoted,
}

impl OcfStatus {
    pub const ALL: [OcfStatus; 12] = [
        OcfStatus::Success,
        OcfStatus::ErrGeneric,
        OcfStatus::ErrArgs,
        OcfStatus::ErrUnimplemented,
        OcfStatus::ErrPerm,
        OcfStatus::ErrInstalled,
        OcfStatus::ErrConfigured,
        OcfStatus::NotRunning,
        OcfStatus::RunningPromoted,
        OcfStatus::FailedPromoted,
        OcfStatus::Degraded,
        OcfStatus::DegradedPromoted,
    ];

    /// The numeric exit code.
    pub fn code(self) -> i32 {
        match self {
            OcfStatus::Success => 0,
            OcfStatus::ErrGeneric => 1,
            OcfStatus::ErrArgs => 2,
            OcfStatus::ErrUnimplemented => 3,
            OcfStatus::ErrPerm => 4,
            OcfStatus::ErrInstalled => 5,
            OcfStatus::ErrConfigured => 6,
            OcfStatus::NotRunning => 7,
            OcfStatus::RunningPromoted => 8,
            OcfStatus::FailedPromoted => 9,
            OcfStatus::Degraded => 190,
            OcfStatus::DegradedPromoted => 191,
        }
    }

    /// The name the shell library uses (`OCF_SUCCESS`, ...), with the 1.1
    /// names for 8, 9, 190 and 191.
    pub fn name(self) -> &'static str {
        match self {
            OcfStatus::Success => "OCF_SUCCESS",
            OcfStatus::ErrGeneric => "OCF_ERR_GENERIC",
            OcfStatus::ErrArgs => "OCF_ERR_ARGS",
            OcfStatus::ErrUnimplemented => "OCF_ERR_UNIMPLEMENTED",
            OcfStatus::ErrPerm => "OCF_ERR_PERM",
            OcfStatus::ErrInstalled => "OCF_ERR_INSTALLED",
            OcfStatus::ErrConfigured => "OCF_ERR_CONFIGURED",
            OcfStatus::NotRunning => "OCF_NOT_RUNNING",
            OcfStatus::RunningPromoted => "OCF_RUNNING_PROMOTED",
            OcfStatus::FailedPromoted => "OCF_FAILED_PROMOTED",
            OcfStatus::Degraded => "OCF_DEGRADED",
            OcfStatus::DegradedPromoted => "OCF_DEGRADED_PROMOTED",
        }
    }

    pub fn from_code(code: i32) -> Option<OcfStatus> {
        OcfStatus::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl fmt::Display for OcfStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// An action that could not do its job: the exit code to report and one
/// line for the admin (printed as the OCF exit reason).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: OcfStatus,
    pub reason: String,
    /// The process exit code, when the caller expects one that is not
    /// `status`'s: rgmanager's `migrate` exits 150 for "failed, the VM still
    /// runs here" (vm.sh's `RG_ERELO`), which OCF has no status for. Only
    /// the exit code changes; everything else goes by `status`.
    pub exit_code: Option<i32>,
}

impl Failure {
    pub fn new(status: OcfStatus, reason: impl Into<String>) -> Failure {
        Failure {
            status,
            reason: reason.into(),
            exit_code: None,
        }
    }
    /// This failure, exiting with `code` instead of `status`'s code.
    pub fn with_exit_code(mut self, code: i32) -> Failure {
        self.exit_code = Some(code);
        self
    }
    /// 1: the action failed (monitor: the resource is broken).
    pub fn generic(reason: impl Into<String>) -> Failure {
        Failure::new(OcfStatus::ErrGeneric, reason)
    }
    /// 2: invalid in the context of this host.
    pub fn args(reason: impl Into<String>) -> Failure {
        Failure::new(OcfStatus::ErrArgs, reason)
    }
    /// 3: the agent does not implement the action.
    pub fn unimplemented(reason: impl Into<String>) -> Failure {
        Failure::new(OcfStatus::ErrUnimplemented, reason)
    }
    /// 4: not enough privilege.
    pub fn perm(reason: impl Into<String>) -> Failure {
        Failure::new(OcfStatus::ErrPerm, reason)
    }
    /// 5: a tool or device this resource needs is missing on this host.
    pub fn installed(reason: impl Into<String>) -> Failure {
        Failure::new(OcfStatus::ErrInstalled, reason)
    }
    /// 6: the configuration itself is wrong, on every host.
    pub fn configured(reason: impl Into<String>) -> Failure {
        Failure::new(OcfStatus::ErrConfigured, reason)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.name(), self.reason)
    }
}

impl std::error::Error for Failure {}

/// What an action returns.
pub type OcfResult<T = OcfStatus> = Result<T, Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ocf_1_1_code_round_trips() {
        let codes: Vec<i32> = OcfStatus::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes, vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 190, 191]);
        for s in OcfStatus::ALL {
            assert_eq!(OcfStatus::from_code(s.code()), Some(s));
        }
        assert_eq!(OcfStatus::from_code(10), None);
        assert_eq!(OcfStatus::from_code(150), None);
    }

    #[test]
    fn names_match_the_shell_library() {
        assert_eq!(OcfStatus::NotRunning.name(), "OCF_NOT_RUNNING");
        assert_eq!(
            OcfStatus::ErrConfigured.to_string(),
            "OCF_ERR_CONFIGURED (6)"
        );
        let f = Failure::installed("mount not found");
        assert_eq!(f.status, OcfStatus::ErrInstalled);
        assert_eq!(f.to_string(), "OCF_ERR_INSTALLED: mount not found");
    }
}
