//! Value checks several agents attach to their parameters
//! ([`ParamSpec::check`](crate::ParamSpec::check)), written once so the
//! same mistake is refused with the same words by every agent.
//!
//! Each returns what is wrong with the value; [`Params::parse`](crate::Params::parse)
//! turns that into one OCF_ERR_CONFIGURED line naming the parameter and the
//! value (`parameter 'xmfile': 'vm1.cfg': must be an absolute path`). An
//! empty value counts as unset and is never checked.

/// A path from `/`: an agent runs in whatever directory its caller is in,
/// so a relative path would name a different file for each caller.
pub fn absolute_path(v: &str) -> Result<(), String> {
    if v.starts_with('/') {
        Ok(())
    } else {
        Err("must be an absolute path".into())
    }
}

/// A whole number of at least 0 (seconds, megabytes), white space around it
/// allowed as for any integer parameter.
pub fn non_negative(v: &str) -> Result<(), String> {
    match v.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(()),
        _ => Err("must be a non-negative number".into()),
    }
}

/// A TCP or UDP port, 1 to 65535.
pub fn port(v: &str) -> Result<(), String> {
    match v.trim().parse::<i64>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(()),
        _ => Err("must be a port number".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Env, OcfStatus, ParamSpec, Params};

    #[test]
    fn absolute_paths() {
        assert_eq!(absolute_path("/etc/xen/vm1"), Ok(()));
        assert_eq!(absolute_path("/"), Ok(()));
        for bad in ["vm1", "./vm1", " /x", "~/vm1"] {
            assert_eq!(
                absolute_path(bad),
                Err("must be an absolute path".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn non_negative_numbers() {
        for ok in ["0", "1", " 60 ", "512"] {
            assert_eq!(non_negative(ok), Ok(()), "{ok}");
        }
        for bad in ["-1", "1.5", "x", "", "9999999999999999999999"] {
            assert_eq!(
                non_negative(bad),
                Err("must be a non-negative number".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn ports() {
        for ok in ["1", "5900", " 65535 "] {
            assert_eq!(port(ok), Ok(()), "{ok}");
        }
        for bad in ["0", "65536", "-22", "ssh", ""] {
            assert_eq!(port(bad), Err("must be a port number".into()), "{bad}");
        }
    }

    #[test]
    fn a_failed_check_is_one_line_naming_parameter_and_value() {
        static SPECS: &[ParamSpec] = &[
            ParamSpec::string("config").check(absolute_path),
            ParamSpec::integer("timeout").check(non_negative),
        ];
        let parse = |k: &str, v: &str| {
            Params::parse(SPECS, &Env::from_pairs([(format!("OCF_RESKEY_{k}"), v)]))
        };
        let e = parse("config", "vm1.cfg").unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrConfigured);
        assert_eq!(
            e.reason,
            "parameter 'config': 'vm1.cfg': must be an absolute path"
        );
        let e = parse("timeout", "-5").unwrap_err();
        assert_eq!(
            e.reason,
            "parameter 'timeout': '-5': must be a non-negative number"
        );
        assert!(parse("config", "").is_ok(), "empty is unset, not checked");
    }
}
