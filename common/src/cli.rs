//! The command line for people: parsing `--help`, `--man`, and `-o name=value` to pass
//! instance parameters without exporting `OCF_RESKEY_*` by hand.
//!
//! ```text
//! Filesystem --help
//! Filesystem monitor -o device=/dev/sdb1 -o directory=/srv -o fstype=ext4
//! Filesystem start --param device=/dev/sdb1 --param=directory=/srv ...
//! ```
//!
//! With any `-o`/`--param` the run is a human one: after the action the
//! result is printed by name (`Filesystem monitor: OCF_NOT_RUNNING (7)`).
//! The exit code is the OCF code either way. Cluster managers never pass
//! these options, so their calls are untouched.
//!
//! `--exit-codes=cmdline` gives the exit code the meaning PRIMECLUSTER's
//! Cmdline resources expect from their check command (see [`ExitCodes`]).

use crate::meta::AgentMeta;

/// What the process exit code means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExitCodes {
    /// The OCF exit code (the default).
    #[default]
    Ocf,
    /// `--exit-codes=cmdline`: PRIMECLUSTER Cmdline resources. Their check
    /// command answers 0 = online, 1 = offline; with the resource flag
    /// `ALLEXITCODES=yes` also 2 = faulted. `monitor`/`status`: running
    /// (OCF 0, 8, 190, 191) → 0, not running (OCF 7) → 1, any failure
    /// (1-6, 9) → 2 ([`CMDLINE_FAULTED`]), which RMS reads as faulted with
    /// `ALLEXITCODES=yes` and as offline without. Every other action keeps
    /// its OCF code: 0 is success, anything else a failure, which is what
    /// Cmdline start and stop commands mean.
    Cmdline,
}

/// The Cmdline check exit code for a failed monitor: "faulted".
pub const CMDLINE_FAULTED: i32 = 2;

impl ExitCodes {
    fn parse(v: &str) -> Result<ExitCodes, String> {
        match v {
            "ocf" => Ok(ExitCodes::Ocf),
            "cmdline" => Ok(ExitCodes::Cmdline),
            _ => Err(format!("--exit-codes: '{v}' is not ocf or cmdline")),
        }
    }

    /// The process exit code for `status` answering `action` (by its name
    /// as given on the command line).
    pub fn code(self, action: &str, status: crate::OcfStatus) -> i32 {
        use crate::OcfStatus as S;
        match self {
            ExitCodes::Cmdline if matches!(action, "monitor" | "status") => match status {
                S::Success | S::RunningPromoted | S::Degraded | S::DegradedPromoted => 0,
                S::NotRunning => 1,
                _ => CMDLINE_FAULTED,
            },
            _ => status.code(),
        }
    }

    /// How the code reads, for the human result line.
    pub fn describe(self, action: &str, status: crate::OcfStatus) -> Option<String> {
        if self != ExitCodes::Cmdline || !matches!(action, "monitor" | "status") {
            return None;
        }
        let code = self.code(action, status);
        let word = match code {
            0 => "online",
            1 => "offline",
            _ => "faulted",
        };
        Some(format!("Cmdline exit {code} ({word})"))
    }
}

/// The command line, split into the action's arguments and parameters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CommandLine {
    /// What is left for the action parser (action, migrate target, ...).
    pub args: Vec<String>,
    /// `name=value` pairs from `-o`/`--param`, in order.
    pub params: Vec<(String, String)>,
    pub help: bool,
    /// `--man`: print the manual page (roff), for packaging.
    pub man: bool,
    /// `--version`: print the package version.
    pub version: bool,
    /// `--exit-codes=ocf|cmdline`.
    pub exit_codes: ExitCodes,
}

impl CommandLine {
    /// A person is driving: print the result by name.
    pub fn human(&self) -> bool {
        !self.params.is_empty()
    }
}

fn split_pair(pair: &str) -> Result<(String, String), String> {
    match pair.split_once('=') {
        Some((k, v))
            if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            Ok((k.to_string(), v.to_string()))
        }
        _ => Err(format!("'{pair}' is not name=value")),
    }
}

/// Split `args` (without the program name).
pub fn parse(args: &[String]) -> Result<CommandLine, String> {
    let mut cl = CommandLine::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => cl.help = true,
            "--man" => cl.man = true,
            "-V" | "--version" => cl.version = true,
            "-o" | "--param" => {
                let pair = it.next().ok_or_else(|| format!("{a} needs name=value"))?;
                cl.params.push(split_pair(pair)?);
            }
            s if s.starts_with("--param=") => cl.params.push(split_pair(&s["--param=".len()..])?),
            "--exit-codes" => {
                let v = it.next().ok_or("--exit-codes needs ocf or cmdline")?;
                cl.exit_codes = ExitCodes::parse(v)?;
            }
            s if s.starts_with("--exit-codes=") => {
                cl.exit_codes = ExitCodes::parse(&s["--exit-codes=".len()..])?
            }
            s if s.starts_with("-o") && s.len() > 2 => cl.params.push(split_pair(&s[2..])?),
            _ => cl.args.push(a.clone()),
        }
    }
    Ok(cl)
}

/// Check the names against the agent's parameters (`CRM_meta_*` and
/// `RGMANAGER_meta_*` pass too, for trying timeouts and intervals, and
/// `OCF_CHECK_LEVEL`, the monitor depth, for callers such as PRIMECLUSTER
/// Cmdline resources that run a command line and set no environment).
pub fn check_names(meta: &AgentMeta, params: &[(String, String)]) -> Result<(), String> {
    for (k, _) in params {
        let known = meta.all_params().any(|p| p.name == k)
            || k.starts_with("CRM_meta_")
            || k.starts_with("RGMANAGER_meta_")
            || k == "OCF_CHECK_LEVEL";
        if !known {
            let hint = closest(k, meta.all_params().map(|p| p.name))
                .map(|n| format!("; did you mean '{n}'?"))
                .unwrap_or_default();
            return Err(format!(
                "{} has no parameter '{k}'{hint} (see --help)",
                meta.name
            ));
        }
    }
    Ok(())
}

/// The candidate nearest to `typed` by edit distance, if it is near enough
/// to be a typo (at most a third of the name's letters differ).
fn closest<'a>(typed: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.to_ascii_lowercase();
    candidates
        .map(|c| (edit_distance(&typed, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over bytes (parameter names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(x != y))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_spelling_of_a_parameter() {
        let cl = parse(&v(&[
            "start",
            "-o",
            "a=1",
            "-ob=2",
            "--param",
            "c=x=y",
            "--param=d=",
        ]))
        .unwrap();
        assert_eq!(cl.args, v(&["start"]));
        assert_eq!(
            cl.params,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
                ("c".into(), "x=y".into()),
                ("d".into(), "".into())
            ]
        );
        assert!(cl.human());
    }

    #[test]
    fn a_mistyped_parameter_gets_a_suggestion() {
        let names = ["device", "directory", "fstype", "options"];
        assert_eq!(closest("fsytpe", names.iter().copied()), Some("fstype"));
        assert_eq!(
            closest("directroy", names.iter().copied()),
            Some("directory")
        );
        assert_eq!(closest("Device", names.iter().copied()), Some("device"));
        assert_eq!(closest("colour", names.iter().copied()), None);
        assert!(parse(&v(&["--version"])).unwrap().version);
    }

    #[test]
    fn plain_cluster_calls_are_untouched() {
        let cl = parse(&v(&["migrate", "node2"])).unwrap();
        assert_eq!(cl.args, v(&["migrate", "node2"]));
        assert!(!cl.human() && !cl.help);
    }

    #[test]
    fn malformed_parameters_are_refused() {
        assert!(parse(&v(&["start", "-o"]))
            .unwrap_err()
            .contains("needs name=value"));
        assert!(parse(&v(&["start", "-o", "novalue"]))
            .unwrap_err()
            .contains("not name=value"));
        assert!(parse(&v(&["start", "-o", "a b=1"])).is_err());
        assert!(parse(&v(&["--help"])).unwrap().help);
    }

    #[test]
    fn exit_codes_for_primecluster_cmdline() {
        use crate::OcfStatus as S;
        let cl = parse(&v(&["monitor", "--exit-codes=cmdline", "-o", "a=1"])).unwrap();
        assert_eq!(cl.exit_codes, ExitCodes::Cmdline);
        assert_eq!(cl.args, v(&["monitor"]));
        let cl = parse(&v(&["--exit-codes", "cmdline", "status"])).unwrap();
        assert_eq!(cl.exit_codes, ExitCodes::Cmdline);
        assert!(!cl.human(), "the flag alone is not a human run");
        assert_eq!(parse(&v(&["start"])).unwrap().exit_codes, ExitCodes::Ocf);
        assert!(parse(&v(&["start", "--exit-codes=lsb"])).is_err());
        assert!(parse(&v(&["start", "--exit-codes"])).is_err());

        let c = ExitCodes::Cmdline;
        for action in ["monitor", "status"] {
            assert_eq!(c.code(action, S::Success), 0);
            assert_eq!(c.code(action, S::NotRunning), 1);
            for failed in [S::ErrGeneric, S::ErrArgs, S::ErrInstalled, S::ErrConfigured] {
                assert_eq!(c.code(action, failed), CMDLINE_FAULTED);
            }
            assert_eq!(c.code(action, S::Degraded), 0);
        }
        assert_eq!(c.code("start", S::Success), 0);
        assert_eq!(c.code("stop", S::ErrGeneric), 1);
        assert_eq!(c.code("start", S::ErrConfigured), 6);
        assert_eq!(ExitCodes::Ocf.code("monitor", S::NotRunning), 7);
        assert_eq!(
            c.describe("monitor", S::NotRunning).as_deref(),
            Some("Cmdline exit 1 (offline)")
        );
        assert_eq!(c.describe("start", S::Success), None);
    }
}
