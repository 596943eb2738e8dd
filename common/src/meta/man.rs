//! `--man`: the manual page `ocf_<provider>_<Agent>(7)`, from the meta-data
//! (packaging installs one per agent).

use super::AgentMeta;

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
pub fn render(meta: &AgentMeta, provider: &str) -> String {
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
    let actions: Vec<String> = meta
        .callable_actions()
        .iter()
        .map(|a| a.replace('-', "\\-"))
        .collect();
    s.push_str(&format!(
        ".SH \"SYNOPSIS\"\n.HP\n{name} [{}] [\\-o name=value ...] | \\-\\-help | \\-\\-version\n",
        actions.join(" | ")
    ));
    s.push_str(&format!(".SH \"DESCRIPTION\"\n{}\n", roff(meta.longdesc)));
    s.push_str(".SH \"SUPPORTED PARAMETERS\"\n");
    for p in meta.all_params() {
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
    s.push_str(&examples(meta, provider));
    s.push_str(".SH \"EXIT STATUS\"\n.PP\nThe OCF exit codes: 0 success, 1 generic error, 2 invalid argument, 3 unimplemented action, 4 insufficient privilege, 5 not installed, 6 not configured, 7 not running.\n");
    s.push_str(
        ".SH \"SEE ALSO\"\n.PP\n\\fBocf-tester\\fR(8), \\fBcrm_resource\\fR(8), \\fBpcs\\fR(8)\n",
    );
    s
}

/// A value to show for a required parameter in the examples: its default,
/// else a placeholder naming its type.
fn example_value(p: &crate::params::ParamSpec) -> String {
    match (p.default, p.ty) {
        (Some(d), _) if !d.is_empty() => d.to_string(),
        (_, crate::params::ParamType::Enum(words)) => words[0].to_string(),
        _ => format!("<{}>", p.name),
    }
}

/// The EXAMPLE sections, for pcs and the crm shell: the agent's required
/// parameters and its own advertised start, stop and monitor timeouts.
fn examples(meta: &AgentMeta, provider: &str) -> String {
    let name = meta.name;
    let params: Vec<String> = meta
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| format!("{}=\"{}\"", p.name, example_value(p)))
        .collect();
    let op = |action: &str| meta.actions.iter().find(|a| a.name == action);
    let mut pcs_ops = Vec::new();
    let mut crm_ops = Vec::new();
    for action in ["start", "stop", "monitor"] {
        let Some(a) = op(action) else { continue };
        let mut attrs = format!("timeout=\"{}s\"", a.timeout);
        if let Some(i) = a.interval {
            attrs.push_str(&format!(" interval=\"{i}s\""));
        }
        pcs_ops.push(format!("{action} {attrs}"));
        crm_ops.push(format!("op {action} {attrs}"));
    }
    let mut pcs = format!("pcs resource create example_{name} ocf:{provider}:{name}");
    let mut crm = format!("crm configure primitive example_{name} ocf:{provider}:{name}");
    if !params.is_empty() {
        pcs.push_str(&format!(" \\e\n  {}", params.join(" ")));
        crm.push_str(&format!(" \\e\n  params {}", params.join(" ")));
    }
    if !pcs_ops.is_empty() {
        pcs.push_str(&format!(" \\e\n  op {}", pcs_ops.join(" \\e\n     ")));
        crm.push_str(&format!(" \\e\n  {}", crm_ops.join(" \\e\n  ")));
    }
    format!(
        ".SH \"EXAMPLE PCS\"\n.PP\nThe following is an example configuration for a {name} resource using\n\\fBpcs\\fR(8):\n.sp\n.RS 4\n.nf\n{pcs}\n.fi\n.RE\n\
         .SH \"EXAMPLE CRM SHELL\"\n.PP\nThe same resource with \\fBcrm\\fR(8):\n.sp\n.RS 4\n.nf\n{crm}\n.fi\n.RE\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_escapes_control_lines_and_backslashes() {
        assert_eq!(
            roff(".dangerous\nfine\n\nnext"),
            "\\&.dangerous\nfine\n.sp\nnext"
        );
        assert_eq!(roff("a\\b"), "a\\eb");
    }
}
