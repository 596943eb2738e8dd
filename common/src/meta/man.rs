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

    #[test]
    fn roff_escapes_control_lines_and_backslashes() {
        assert_eq!(
            roff(".dangerous\nfine\n\nnext"),
            "\\&.dangerous\nfine\n.sp\nnext"
        );
        assert_eq!(roff("a\\b"), "a\\eb");
    }
}
