//! Tracing a single run, as resource-agents' `trace_ra`/`trace_file` do.
//!
//! Pacemaker admins turn tracing on per resource (`pcs resource update R
//! trace_ra=1`, `crm resource trace R start`) or for one run (`crm_resource
//! --force-start -V`, which sets `OCF_TRACE_RA`). The shell agents then run
//! under `set -x` into a file. Ours have no shell to trace; what an admin
//! wants from that file is what the agent decided and every command it ran,
//! so a traced run writes every log line at every level (debug included,
//! whatever `HA_debug` says: each command line, its exit and the decisions
//! around it) to the trace file, stamped with the time.
//!
//! Where, as `ocf_start_trace` decides it:
//! - `trace_file` (`OCF_TRACE_FILE`): an absolute path with a directory, or a
//!   file descriptor 3-9 the caller opened for writing;
//! - else `trace_dir` (default `$HA_VARLIB/trace_ra`, `HA_VARLIB` defaulting
//!   to `/var/lib/heartbeat`) `/<type>/<instance>.<action>.<date>`, unless
//!   standard input is a terminal (an admin at a shell), where the trace goes
//!   to stderr.
//!
//! Unlike `set -x`, the environment is not dumped into the file: only the
//! agent's own parameters are, and secrets never appear in log lines.

use std::path::PathBuf;

use crate::env::Env;
use crate::params::{parse_bool, ParamSpec};

/// The two parameters pcs allows for resource-agents' agents, which every
/// OCF agent of ours accepts and advertises too.
pub static TRACE_PARAMS: &[ParamSpec] = &[
    ParamSpec::boolean("trace_ra")
        .default("0")
        .short("Trace this agent's runs")
        .long("Set to 1 to trace the agent's runs: every decision and every command it runs, with their results, written with a time stamp to trace_file, or by default to $HA_VARLIB/trace_ra/<type>/<id>.<action>.<timestamp> (e.g. /var/lib/heartbeat/trace_ra/Filesystem/fs1.start.2026-12-01.08:37:08)."),
    ParamSpec::string("trace_file")
        .short("Where the trace goes")
        .long("Path to a file to store the trace in (absolute), or a file descriptor 3-9 open for writing; default: under $HA_VARLIB/trace_ra/ (see trace_ra)."),
];

/// Where this run's trace goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Appended to this file.
    File(PathBuf),
    /// Standard error (an admin at a terminal).
    Stderr,
}

fn first<'a>(env: &'a Env, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| env.non_empty(n))
}

/// Whether this run is traced, and where to. `stdin_tty`: standard input is
/// a terminal (resource-agents then writes no default trace file).
pub fn destination(
    env: &Env,
    resource_type: &str,
    instance: Option<&str>,
    action: &str,
    stdin_tty: bool,
) -> Result<Option<Destination>, String> {
    let on = first(env, &["OCF_TRACE_RA", "OCF_RESKEY_trace_ra"]);
    if !on.is_some_and(|v| parse_bool(v) == Some(true)) {
        return Ok(None);
    }
    match first(env, &["OCF_TRACE_FILE", "OCF_RESKEY_trace_file"]) {
        Some(fd) if fd.len() == 1 && ('3'..='9').contains(&fd.chars().next().unwrap()) => {
            return Ok(Some(Destination::File(PathBuf::from(format!(
                "/proc/self/fd/{fd}"
            )))));
        }
        Some(path) if path.starts_with('/') && path[1..].contains('/') => {
            return Ok(Some(Destination::File(PathBuf::from(path))));
        }
        Some(other) => {
            return Err(format!(
                "trace_file '{other}' is neither an absolute path nor a file descriptor 3-9; tracing to the default place"
            ));
        }
        None => {}
    }
    if stdin_tty {
        return Ok(Some(Destination::Stderr));
    }
    let Some(instance) = instance else {
        return Ok(Some(Destination::Stderr));
    };
    let dir = match first(env, &["OCF_RESKEY_trace_dir"]) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env.non_empty("HA_VARLIB").unwrap_or("/var/lib/heartbeat"))
            .join("trace_ra"),
    };
    let stamp = crate::log::format_now("%F.%T");
    Ok(Some(Destination::File(dir.join(resource_type).join(
        format!("{}.{action}.{stamp}", instance.replace('/', "_")),
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn off_unless_asked() {
        assert_eq!(
            destination(&env(&[]), "X", Some("r"), "start", false),
            Ok(None)
        );
        let e = env(&[("OCF_RESKEY_trace_ra", "0")]);
        assert_eq!(destination(&e, "X", Some("r"), "start", false), Ok(None));
    }

    #[test]
    fn default_place_is_under_ha_varlib() {
        let e = env(&[("OCF_RESKEY_trace_ra", "1"), ("HA_VARLIB", "/v")]);
        let Ok(Some(Destination::File(p))) =
            destination(&e, "Filesystem", Some("fs1"), "start", false)
        else {
            panic!("no file")
        };
        let p = p.to_str().unwrap();
        assert!(p.starts_with("/v/trace_ra/Filesystem/fs1.start.20"), "{p}");
        let e = env(&[("OCF_TRACE_RA", "yes"), ("OCF_RESKEY_trace_dir", "/t")]);
        let Ok(Some(Destination::File(p))) = destination(&e, "Xen", Some("a/b"), "stop", false)
        else {
            panic!("no file")
        };
        let p = p.to_str().unwrap();
        assert!(p.starts_with("/t/Xen/a_b.stop."), "{p}");
        assert_eq!(
            destination(&e, "Xen", Some("a"), "stop", true),
            Ok(Some(Destination::Stderr))
        );
    }

    #[test]
    fn trace_file_as_path_or_descriptor() {
        let e = env(&[
            ("OCF_RESKEY_trace_ra", "true"),
            ("OCF_RESKEY_trace_file", "/tmp/x/t"),
        ]);
        assert_eq!(
            destination(&e, "X", Some("r"), "start", true),
            Ok(Some(Destination::File("/tmp/x/t".into())))
        );
        let e = env(&[("OCF_TRACE_RA", "1"), ("OCF_TRACE_FILE", "5")]);
        assert_eq!(
            destination(&e, "X", Some("r"), "start", false),
            Ok(Some(Destination::File("/proc/self/fd/5".into())))
        );
        let e = env(&[("OCF_TRACE_RA", "1"), ("OCF_TRACE_FILE", "relative")]);
        assert!(destination(&e, "X", Some("r"), "start", false).is_err());
    }
}
