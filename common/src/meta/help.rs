//! `--help`: the actions and parameters for people, from the meta-data.

use super::AgentMeta;

/// `--help`: actions and parameters, from the meta-data.
pub fn render(meta: &AgentMeta) -> String {
    let mut s = format!("{} - {}\n\n", meta.name, meta.shortdesc);
    s.push_str(&format!(
        "usage: {0} ACTION [-o NAME=VALUE ...] [--exit-codes=ocf|cmdline]\n       {0} --help\n\n",
        meta.name
    ));
    s.push_str("Parameters come from OCF_RESKEY_<name> or -o/--param name=value.\n");
    s.push_str("The exit code is the OCF exit code; with --exit-codes=cmdline, monitor and\n");
    s.push_str("status exit 0 running, 1 not running, 2 failed (PRIMECLUSTER Cmdline).\n");
    s.push_str("\nActions:\n");
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
        if p.primary {
            attrs.push("primary".into());
        }
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
