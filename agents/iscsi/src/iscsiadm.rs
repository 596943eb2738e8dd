//! `iscsiadm`, run as an argument vector inside the operation deadline,
//! with its output kept away from the logs unless secrets are masked:
//! node and discovery records print `node.session.auth.password = ...`.

use std::path::PathBuf;

use ocf::{Cmd, Context, Failure, Output};

/// Exit code of iscsiadm when the session already exists
/// (`ISCSI_ERR_SESS_EXISTS`).
pub const ERR_SESS_EXISTS: i32 = 15;

/// The iscsiadm of this node.
#[derive(Clone, Debug)]
pub struct Iscsiadm {
    bin: PathBuf,
    path: String,
}

impl Iscsiadm {
    /// Find `name` (the `iscsiadm` parameter: a name on PATH or a path);
    /// missing is OCF_ERR_INSTALLED.
    pub fn find(ctx: &Context, name: &str) -> Result<Iscsiadm, Failure> {
        let tools = ctx.tools();
        Ok(Iscsiadm {
            bin: tools.require(name)?,
            path: tools.path().to_string(),
        })
    }

    fn cmd(&self, args: &[&str]) -> Cmd {
        Cmd::new(&self.bin).path(&self.path).args(args)
    }

    /// Run within the operation deadline; the (masked) output goes to the
    /// debug log.
    pub fn run(&self, ctx: &Context, args: &[&str]) -> Result<Output, Failure> {
        let out = self.cmd(args).run(&ctx.deadline())?;
        ocf::debug!(
            "iscsiadm {} -> {:?}\n{}{}",
            args.join(" "),
            out.code(),
            mask_secrets(&out.stdout),
            mask_secrets(&out.stderr)
        );
        Ok(out)
    }

    /// `iscsiadm --version`: `2.1.8`, `2.0-874`.
    pub fn version(&self, ctx: &Context) -> Option<String> {
        let out = self.run(ctx, &["--version"]).ok()?;
        out.stdout.split_whitespace().nth(2).map(str::to_string)
    }

    /// Whether the node record of `target` at `portal` exists. Its output
    /// (the record, secrets included) is never logged unmasked.
    pub fn node_exists(&self, ctx: &Context, portal: &str, target: &str) -> Result<bool, Failure> {
        let out = self.run(ctx, &["-m", "node", "-p", portal, "-T", target])?;
        Ok(out.success())
    }
}

/// The last line of a tool's complaint, with secrets masked: for exit
/// reasons.
pub fn message(out: &Output) -> String {
    mask_secrets(&out.message())
}

/// Replace what follows `password`, `secret` or `passwd` (and the rest of
/// that key: `password_in`) and then `=` or `:` with `********`, up to the
/// end of the line, wherever it stands in the line.
pub fn mask_secrets(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        match secret_value_at(body) {
            Some(i) => {
                s.push_str(&body[..i]);
                s.push_str(" ********");
            }
            None => s.push_str(body),
        }
        s.push_str(nl);
    }
    s
}

/// Where the value of the first secret key of `line` starts (just after
/// its `=` or `:`).
fn secret_value_at(line: &str) -> Option<usize> {
    let lower = line.to_ascii_lowercase();
    let b = lower.as_bytes();
    let mut best: Option<usize> = None;
    for word in ["password", "passwd", "secret"] {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(word) {
            let mut i = from + pos + word.len();
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b"_.[]".contains(&b[i])) {
                i += 1;
            }
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            if i < b.len() && (b[i] == b'=' || b[i] == b':') {
                best = Some(best.map_or(i + 1, |x: usize| x.min(i + 1)));
                break;
            }
            from += pos + word.len();
        }
    }
    best
}

/// `ocf_version_cmp`'s question: is version `v` newer than `than`? Both
/// split on `.` and `-` into numbers (`2.0-871` → 2, 0, 871).
pub fn version_newer(v: &str, than: &str) -> Option<bool> {
    let parts = |s: &str| -> Option<Vec<u64>> {
        s.split(['.', '-'])
            .map(|p| p.trim().parse::<u64>().ok())
            .collect()
    };
    Some(parts(v)? > parts(than)?)
}

/// The portals (`addr:port`, tag removed) at which discovery output offers
/// `target`: lines `addr:port,tpgt target` (SLES compat: one more field
/// in front).
pub fn offered_portals(output: &str, target: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 2 || f[f.len() - 1] != target {
                return None;
            }
            let p = f[f.len() - 2];
            Some(p.split(',').next().unwrap_or(p).to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_everything_else_kept() {
        let record = "# BEGIN RECORD 2.1.8\nnode.name = iqn.t:a\n\
                      node.session.auth.username = admin\n\
                      node.session.auth.password = hunter2\n\
                      node.session.auth.password_in = s3cret\n\
                      discovery.sendtargets.auth.password = <empty>\n\
                      Password: topsecret\n\
                      node.conn[0].address = 10.0.0.1";
        let m = mask_secrets(record);
        for secret in ["hunter2", "s3cret", "topsecret"] {
            assert!(!m.contains(secret), "{m}");
        }
        assert!(m.contains("node.session.auth.username = admin"));
        assert!(m.contains("node.session.auth.password = ********\n"));
        assert!(m.contains("Password: ********\n"));
        assert!(m.ends_with("node.conn[0].address = 10.0.0.1"));
        let inline = mask_secrets("iscsiadm: bad value: node.session.auth.password=abc def");
        assert_eq!(
            inline,
            "iscsiadm: bad value: node.session.auth.password= ********"
        );
        assert_eq!(mask_secrets(""), "");
    }

    #[test]
    fn versions_compare_like_ocf_version_cmp() {
        assert_eq!(version_newer("2.1.8", "2.0-871"), Some(true));
        assert_eq!(version_newer("2.0-874", "2.0-871"), Some(true));
        assert_eq!(version_newer("2.0-871", "2.0-871"), Some(false));
        assert_eq!(version_newer("2.0-870", "2.0-871"), Some(false));
        assert_eq!(version_newer("git", "2.0-871"), None);
    }

    #[test]
    fn discovery_output_gives_the_target_s_portals() {
        let out = "127.0.0.1:3260,1 iqn.t:a\n127.0.0.1:3261,1 iqn.t:a\n\
                   127.0.0.1:3260,1 iqn.t:ab\n[fe80::1]:3260,2 iqn.t:a\n";
        assert_eq!(
            offered_portals(out, "iqn.t:a"),
            vec!["127.0.0.1:3260", "127.0.0.1:3261", "[fe80::1]:3260"]
        );
        assert!(offered_portals(out, "iqn.t:none").is_empty());
        assert_eq!(
            offered_portals("[1] 10.0.0.1:3260,1 iqn.t:a", "iqn.t:a"),
            vec!["10.0.0.1:3260"]
        );
    }
}
