//! The command line for people: `--help`, and `-o name=value` to pass
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

use crate::meta::AgentMeta;

/// The command line, split into the action's arguments and parameters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CommandLine {
    /// What is left for the action parser (action, migrate target, ...).
    pub args: Vec<String>,
    /// `name=value` pairs from `-o`/`--param`, in order.
    pub params: Vec<(String, String)>,
    pub help: bool,
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
            "-o" | "--param" => {
                let pair = it.next().ok_or_else(|| format!("{a} needs name=value"))?;
                cl.params.push(split_pair(pair)?);
            }
            s if s.starts_with("--param=") => cl.params.push(split_pair(&s["--param=".len()..])?),
            s if s.starts_with("-o") && s.len() > 2 => cl.params.push(split_pair(&s[2..])?),
            _ => cl.args.push(a.clone()),
        }
    }
    Ok(cl)
}

/// Check the names against the agent's parameters (`CRM_meta_*` and
/// `RGMANAGER_meta_*` pass too, for trying timeouts and intervals).
pub fn check_names(meta: &AgentMeta, params: &[(String, String)]) -> Result<(), String> {
    for (k, _) in params {
        let known = meta.params.iter().any(|p| p.name == k)
            || k.starts_with("CRM_meta_")
            || k.starts_with("RGMANAGER_meta_");
        if !known {
            return Err(format!("{} has no parameter '{k}' (see --help)", meta.name));
        }
    }
    Ok(())
}

/// `--help`: actions and parameters, from the meta-data.
pub fn help(meta: &AgentMeta) -> String {
    let mut s = format!("{} - {}\n\n", meta.name, meta.shortdesc);
    s.push_str(&format!(
        "usage: {0} ACTION [-o NAME=VALUE ...]\n       {0} --help\n\n",
        meta.name
    ));
    s.push_str("Parameters come from OCF_RESKEY_<name> or -o/--param name=value.\n");
    s.push_str("The exit code is the OCF exit code.\n\nActions:\n");
    for a in meta.actions {
        let mut line = format!("  {:<14} timeout {}s", a.name, a.timeout);
        if let Some(i) = a.interval {
            line.push_str(&format!(", interval {i}s"));
        }
        if let Some(d) = a.depth {
            line.push_str(&format!(", depth {d}"));
        }
        s.push_str(&line);
        s.push('\n');
    }
    s.push_str("\nParameters:\n");
    for p in meta.params {
        let mut attrs = vec![p.ty.content_type().to_string()];
        if p.required {
            attrs.push("required".into());
        }
        if let Some(d) = p.default {
            attrs.push(format!("default \"{d}\""));
        }
        if let crate::params::ParamType::Enum(words) = p.ty {
            attrs.push(format!("one of {}", words.join("|")));
        }
        s.push_str(&format!(
            "  {:<22} {} ({})\n",
            p.name,
            p.shortdesc,
            attrs.join(", ")
        ));
    }
    s
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
}
