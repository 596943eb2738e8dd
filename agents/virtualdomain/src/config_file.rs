//! The config file (`config`): the domain's XML, read bounded (`ocf::file`:
//! a regular file of at most 1 MiB, inside a quarter of the operation's
//! time) and parsed, and — when it gives no domain — what kind of problem
//! that is. The kind decides what an action may answer without the file
//! (stop 0 and probe 7 for a file that is simply not there, 6 for a FIFO or
//! a device, 1 for storage that hangs), so it is kept apart from the
//! actions that act on it, in `lib.rs`.

use std::path::Path;

use ocf::{Context, Failure};

use crate::domxml::{self, DomainXml};

/// Why the config file gave no domain, which decides what an action may
/// answer without it (when no record of a start names the domain).
#[derive(Clone, Debug)]
pub(crate) enum ConfigProblem {
    /// Not there or not readable, or no domain name in it (heartbeat's
    /// "not readable"): nothing of ours can run from it, so stop is 0 and a
    /// probe 7 (the dispatcher's invalid-environment mapping), start 5.
    Absent(String),
    /// Not a configuration file: a FIFO, a device, a directory, more than
    /// 1 MiB, not text. Wrong wherever it is seen: 6 for every action that
    /// needs the domain name.
    NotAConfig(String),
    /// Its storage did not answer within the time given (a hung network
    /// filesystem): the domain may well run. 1 for every action that needs
    /// the domain name.
    Unanswered(String),
}

impl ConfigProblem {
    pub(crate) fn from_read(e: &ocf::file::ReadError) -> ConfigProblem {
        if e.not_a_config() {
            ConfigProblem::NotAConfig(format!("Configuration file {e}"))
        } else if e.timed_out() {
            ConfigProblem::Unanswered(format!("Configuration file {e}"))
        } else {
            ConfigProblem::Absent(format!("Configuration file {e}"))
        }
    }

    pub(crate) fn reason(&self) -> &str {
        match self {
            ConfigProblem::Absent(r)
            | ConfigProblem::NotAConfig(r)
            | ConfigProblem::Unanswered(r) => r,
        }
    }

    pub(crate) fn failure(&self) -> Failure {
        match self {
            ConfigProblem::Absent(r) => Failure::installed(r.clone()),
            ConfigProblem::NotAConfig(r) => Failure::configured(r.clone()),
            ConfigProblem::Unanswered(r) => Failure::generic(r.clone()),
        }
    }
}

/// The config read gets at most this share of the operation's time, so an
/// answer from libvirt (by the recorded name) still fits after a read of
/// dead storage was given up.
const CONFIG_READ_SHARE: u32 = 4;

/// The config file as read for one action.
pub(crate) struct ConfigFile {
    /// Its text when it was read, also when it is not a domain (the vm
    /// persona tells an xm config by it).
    pub text: Option<String>,
    /// Its text and parsed form, when it is a domain with a name.
    pub xml: Option<(String, DomainXml)>,
    /// Why it could not be used.
    pub problem: Option<ConfigProblem>,
}

/// Read and parse `config` within this action's share of time
/// ([`CONFIG_READ_SHARE`]).
pub(crate) fn read(config: &Path, ctx: &Context) -> ConfigFile {
    // An empty path: no config file (a persona's domain libvirt has
    // defined by name).
    let read = if config.as_os_str().is_empty() {
        Err(ConfigProblem::Absent("no configuration file".into()))
    } else {
        let dl = ctx.deadline();
        ocf::file::read_config(config, &dl.capped(dl.total() / CONFIG_READ_SHARE))
            .map_err(|e| ConfigProblem::from_read(&e))
    };
    let (text, xml, config_problem) = match read {
        Ok(text) => match domxml::parse(&text) {
            Ok(parsed) if parsed.name.is_some() => (Some(text.clone()), Some((text, parsed)), None),
            Ok(_) => (
                Some(text),
                None,
                Some(ConfigProblem::Absent(format!(
                    "no domain name in {}",
                    config.display()
                ))),
            ),
            Err(e) => (
                Some(text),
                None,
                Some(ConfigProblem::Absent(format!("{}: {e}", config.display()))),
            ),
        },
        Err(problem) => (None, None, Some(problem)),
    };
    ConfigFile {
        text,
        xml,
        problem: config_problem,
    }
}
