//! `--help`: the actions and parameters for people, from the meta-data.
//!
//! Every action a caller can name is listed (the advertised ones with their
//! default timeouts, then those every agent answers), and the parameter
//! table's columns are aligned to the longest name, so the text reads the
//! same for an agent with three parameters and one with thirty.

use super::AgentMeta;
use crate::params::ParamType;

/// `--help`: actions and parameters, from the meta-data.
pub fn render(meta: &AgentMeta) -> String {
    let mut s = format!("{} - {}\n\n", meta.name, meta.shortdesc);
    s.push_str(&format!(
        "usage: {0} ACTION [-o NAME=VALUE ...] [--exit-codes=ocf|cmdline]\n       {0} --help | --version | --man\n\n",
        meta.name
    ));
    s.push_str("Parameters come from OCF_RESKEY_<name> or -o/--param name=value.\n");
    s.push_str("The exit code is the OCF exit code; with --exit-codes=cmdline, monitor and\n");
    s.push_str("status exit 0 running, 1 not running, 2 failed (PRIMECLUSTER Cmdline).\n");

    s.push_str("\nActions:\n");
    let actions = meta.callable_actions();
    let width = actions.iter().map(|a| a.len()).max().unwrap_or(0);
    for name in actions {
        let advertised: Vec<_> = meta.actions.iter().filter(|a| a.name == name).collect();
        let mut facts: Vec<String> = advertised
            .iter()
            .map(|a| {
                let mut f = format!("timeout {}s", a.timeout);
                if let Some(i) = a.interval {
                    f.push_str(&format!(", interval {i}s"));
                }
                if let Some(d) = a.depth {
                    f.push_str(&format!(", depth {d}"));
                }
                f
            })
            .collect();
        if facts.is_empty() {
            facts.push(
                match name {
                    "status" => "monitor semantics (rgmanager, NCS, admins)",
                    "meta-data" => "print the OCF meta-data",
                    "validate-all" => "check the parameters",
                    "methods" => "list the actions",
                    "usage" => "print the usage line",
                    _ => "",
                }
                .to_string(),
            );
        }
        s.push_str(&format!("  {name:<width$}  {}\n", facts.join("; ")));
    }

    s.push_str("\nParameters:\n");
    let width = meta.all_params().map(|p| p.name.len()).max().unwrap_or(0);
    for p in meta.all_params() {
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
        if let ParamType::Enum(words) = p.ty {
            attrs.push(format!("one of {}", words.join("|")));
        }
        s.push_str(&format!(
            "  {:<width$}  {} ({})\n",
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
    use crate::meta::ActionSpec;
    use crate::params::ParamSpec;

    static PARAMS: &[ParamSpec] = &[
        ParamSpec::string("device").required().short("The device"),
        ParamSpec::string("directory_with_long_name").short("Where"),
    ];
    static ACTIONS: &[ActionSpec] = &[
        ActionSpec::new("start", 60),
        ActionSpec::new("monitor", 40).interval(20).depth(0),
    ];
    static META: AgentMeta = AgentMeta {
        name: "Demo",
        version: "1.0",
        shortdesc: "demo",
        longdesc: "demo",
        params: PARAMS,
        actions: ACTIONS,
        special: None,
    };

    #[test]
    fn every_callable_action_and_aligned_parameters() {
        let h = render(&META);
        for a in [
            "start",
            "monitor",
            "status",
            "meta-data",
            "validate-all",
            "methods",
            "usage",
        ] {
            assert!(h.contains(&format!("\n  {a} ")), "{a} missing:\n{h}");
        }
        assert!(
            h.contains("  monitor       timeout 40s, interval 20s, depth 0\n"),
            "{h}"
        );
        assert!(
            h.contains("\n  device                    The device (string, required)\n"),
            "{h}"
        );
    }
}
