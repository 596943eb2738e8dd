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
    /// `--man`: print the manual page (roff), for packaging.
    pub man: bool,
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

/// Escape text for roff: backslashes, and lines starting with `.` or `'`.
fn roff(text: &str) -> String {
    text.trim()
        .replace('\\', "\\e")
        .lines()
        .map(|l| {
            let l = l.trim_end();
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else if l.is_empty() {
                ".sp".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The manual page `ocf_<provider>_<Agent>(7)`, in the layout of
/// resource-agents' generated pages.
pub fn man(meta: &AgentMeta, provider: &str) -> String {
    let name = meta.name;
    let mut s = String::new();
    s.push_str(&format!(
        ".TH \"OCF_{p}_{n}\" \"7\" \"\" \"resource-agents-rs {v}\" \"OCF resource agents\"\n",
        p = provider.to_uppercase(),
        n = name.to_uppercase(),
        v = env!("CARGO_PKG_VERSION")
    ));
    s.push_str(&format!(
        ".SH \"NAME\"\nocf_{provider}_{name} \\- {}\n",
        roff(meta.shortdesc)
    ));
    s.push_str(&format!(
        ".SH \"SYNOPSIS\"\n.HP\n{name} [start | stop | monitor | status | validate\\-all | meta\\-data | methods | usage] [\\-o name=value ...] | \\-\\-help\n"
    ));
    s.push_str(&format!(".SH \"DESCRIPTION\"\n{}\n", roff(meta.longdesc)));
    s.push_str(".SH \"SUPPORTED PARAMETERS\"\n");
    for p in meta.params {
        s.push_str(&format!(
            ".PP\n\\fB{}\\fR\n.RS 4\n{}\n",
            p.name,
            roff(if p.longdesc.is_empty() {
                p.shortdesc
            } else {
                p.longdesc
            })
        ));
        let mut facts = vec![format!("type: {}", p.ty.content_type())];
        if let Some(d) = p.default {
            facts.push(format!(
                "default: {}",
                if d.is_empty() {
                    "\"\"".to_string()
                } else {
                    roff(d)
                }
            ));
        }
        if p.required {
            facts.push("required".into());
        }
        if p.unique {
            facts.push("unique".into());
        }
        s.push_str(&format!(".sp\n({})\n.RE\n", facts.join(", ")));
    }
    s.push_str(".SH \"SUPPORTED ACTIONS\"\n.PP\nThis resource agent supports the following actions (operations):\n");
    for a in meta.actions {
        let mut line = format!("\\fB{}\\fR\n.RS 4\nDefault timeout: {}s", a.name, a.timeout);
        if let Some(i) = a.interval {
            line.push_str(&format!(". Suggested interval: {i}s"));
        }
        if let Some(d) = a.depth {
            line.push_str(&format!(". Depth: {d}"));
        }
        s.push_str(&format!(".PP\n{line}.\n.RE\n"));
    }
    let required: Vec<String> = meta
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| format!("{}=\"string\"", p.name))
        .collect();
    s.push_str(&format!(
        ".SH \"EXAMPLE PCS\"\n.PP\nThe following is an example configuration for a {name} resource using\n\\fBpcs\\fR(8):\n.sp\n.RS 4\n.nf\npcs resource create example_{name} ocf:{provider}:{name} \\e\n  {} \\e\n  op monitor OCF_CHECK_LEVEL=\"0\" timeout=\"40s\" interval=\"20s\"\n.fi\n.RE\n",
        required.join(" ")
    ));
    s.push_str(".SH \"EXIT STATUS\"\n.PP\nThe OCF exit codes: 0 success, 1 generic error, 2 invalid argument, 3 unimplemented action, 4 insufficient privilege, 5 not installed, 6 not configured, 7 not running.\n");
    s.push_str(
        ".SH \"SEE ALSO\"\n.PP\n\\fBocf-tester\\fR(8), \\fBcrm_resource\\fR(8), \\fBpcs\\fR(8)\n",
    );
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
    fn roff_escapes_control_lines_and_backslashes() {
        assert_eq!(
            roff(".dangerous\nfine\n\nnext"),
            "\\&.dangerous\nfine\n.sp\nnext"
        );
        assert_eq!(roff("a\\b"), "a\\eb");
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
