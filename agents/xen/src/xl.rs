//! The `xl` toolstack as this agent uses it: every `xl` command line
//! ([`Xl`]), the names xl gives domains during a migration, the `name` line
//! of an xl config file, and the output of `xl list` and `xl info`.
//!
//! [`Xl`] only builds argument vectors and runs them inside the deadline it
//! is given; what a failure means (fatal, retried, logged) is the agent's
//! decision. Parsing is kept apart from running so it can be tested on
//! captured output: xl cannot run without a Xen hypervisor.

use std::ffi::OsStr;
use std::path::Path;

use ocf::{Context, Deadline, Failure, Output, Tools};

/// The `xl` of this node, looked up on the caller's `PATH` at every run: a
/// run without it is OCF_ERR_INSTALLED (`validate` requires it first).
#[derive(Clone, Debug)]
pub struct Xl {
    tools: Tools,
}

impl Xl {
    pub fn new(ctx: &Context) -> Xl {
        Xl { tools: ctx.tools() }
    }

    /// `xl <args...>` within `dl`.
    pub fn run<I, S>(&self, dl: &Deadline, args: I) -> Result<Output, Failure>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Ok(self.tools.command("xl")?.args(args).run(dl)?)
    }

    /// Whether `dom` exists here: `xl list DOM` succeeds (yes) or says
    /// "DOM is an invalid domain identifier" (no: libxl looked the name up
    /// and it is not there, a definitive answer). Any other failure (libxl
    /// cannot reach the hypervisor or xenstore, a lock held by another xl)
    /// may pass: it is asked again for at most [`TRANSIENT_RETRY`] within
    /// `dl`, then it is an error, never "not there" (the guest may run).
    /// The retry window bounds the asking again, not one `xl list`: a slow
    /// one (a loaded host) may take the operation's time, as heartbeat's
    /// agent lets it; cutting it at the window failed a stop that had
    /// minutes left, and a failed stop gets the node fenced.
    pub fn exists(&self, dl: &Deadline, dom: &str) -> Result<bool, Failure> {
        // Keep time back to answer: the last attempt must not run into
        // the caller's deadline.
        let within = dl.reserving((dl.total() / 4).min(TRANSIENT_RESERVE));
        let retry = within.capped(TRANSIENT_RETRY);
        loop {
            let why = match self.run(&within, ["list", dom]) {
                Ok(out) if out.success() => return Ok(true),
                Ok(out) if is_not_found(&out.stderr, dom) => {
                    ocf::debug!("xl list {dom}: {}", out.message());
                    return Ok(false);
                }
                Ok(out) => out.message(),
                // xl is not installed: no retry helps
                Err(e) if e.status == ocf::OcfStatus::ErrInstalled => return Err(e),
                Err(e) => e.reason,
            };
            if retry.remaining() <= TRANSIENT_POLL {
                return Err(Failure::generic(format!(
                    "cannot tell whether domain {dom} runs: xl list {dom}: {why}"
                )));
            }
            ocf::debug!("xl list {dom} (retrying): {why}");
            std::thread::sleep(TRANSIENT_POLL);
        }
    }

    /// The `xl list DOM` line of `dom`, best effort (`None` when xl cannot
    /// run or prints no domain line).
    pub fn entry(&self, dl: &Deadline, dom: &str) -> Option<ListEntry> {
        let out = self.run(dl, ["list", dom]).ok()?;
        parse_list(&out.stdout).into_iter().next()
    }

    /// `xl create XMFILE name="DOM" [memory=MB]`: the name given on the
    /// command line wins over the file's.
    pub fn create(
        &self,
        dl: &Deadline,
        xmfile: &Path,
        dom: &str,
        memory: Option<i64>,
    ) -> Result<Output, Failure> {
        let mut args = vec![
            "create".to_string(),
            xmfile.to_string_lossy().into_owned(),
            format!("name=\"{dom}\""),
        ];
        if let Some(m) = memory {
            args.push(format!("memory={m}"));
        }
        self.run(dl, &args)
    }

    /// Ask `dom` to shut down: `xl shutdown DOM`, or with `acpi` the power
    /// button, `xl trigger DOM power`. A failure names the subcommand.
    pub fn shutdown(&self, dl: &Deadline, dom: &str, acpi: bool) -> Result<(), Failure> {
        let args: &[&str] = if acpi {
            &["trigger", dom, "power"]
        } else {
            &["shutdown", dom]
        };
        let out = self.run(dl, args)?;
        if out.success() {
            Ok(())
        } else {
            Err(Failure::generic(format!(
                "xl {} failed: {}",
                args[0],
                out.message()
            )))
        }
    }

    /// `xl destroy DOM`.
    pub fn destroy(&self, dl: &Deadline, dom: &str) -> Result<Output, Failure> {
        self.run(dl, ["destroy", dom])
    }

    /// `xl migrate DOM ADDRESS`.
    pub fn migrate(&self, dl: &Deadline, dom: &str, address: &str) -> Result<Output, Failure> {
        self.run(dl, ["migrate", dom, address])
    }

    /// `total_memory` of `xl info`, in MB; best effort.
    pub fn total_memory(&self, dl: &Deadline) -> Option<i64> {
        parse_total_memory(&self.stdout_or_warn(dl, &["info"])?)
    }

    /// Every domain `xl list` shows, Domain-0 included; best effort.
    pub fn domains(&self, dl: &Deadline) -> Option<Vec<ListEntry>> {
        Some(parse_list(&self.stdout_or_warn(dl, &["list"])?))
    }

    /// `xl mem-set DOMID MB`; best effort.
    pub fn mem_set(&self, dl: &Deadline, domid: u32, mb: i64) {
        self.stdout_or_warn(dl, &["mem-set", &domid.to_string(), &mb.to_string()]);
    }

    /// What `xl <args...>` printed, or `None` with a warning saying why not.
    fn stdout_or_warn(&self, dl: &Deadline, args: &[&str]) -> Option<String> {
        match self.run(dl, args) {
            Ok(o) if o.success() => Some(o.stdout),
            Ok(o) => {
                ocf::warn!("xl {}: {}", args.join(" "), o.message());
                None
            }
            Err(e) => {
                ocf::warn!("{}", e.reason);
                None
            }
        }
    }
}

/// How long an `xl list` failure that may pass is retried.
pub const TRANSIENT_RETRY: std::time::Duration = std::time::Duration::from_secs(5);
const TRANSIENT_POLL: std::time::Duration = std::time::Duration::from_millis(250);
/// Kept back from the retries to answer within the caller's deadline.
const TRANSIENT_RESERVE: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether `xl list DOM`'s error output says the domain is not there:
/// xl's "DOM is an invalid domain identifier (rc=-6)" (libxl's
/// ERROR_INVAL from the name lookup).
pub fn is_not_found(stderr: &str, dom: &str) -> bool {
    stderr.lines().any(|l| {
        l.trim()
            .starts_with(&format!("{dom} is an invalid domain identifier"))
    })
}

/// Suffix xl gives the source domain while a migration finishes.
pub const MIGRATED_AWAY: &str = "--migratedaway";
/// Suffix xl gives the target domain while a migration copies.
pub const INCOMING: &str = "--incoming";

/// What the `name` setting of an xl config file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigName {
    /// No `name` line.
    Absent,
    /// `name = "value"` (or single quotes), optionally followed by a comment.
    Plain(String),
    /// Something we will not guess at (an expression, several lines).
    NotPlain(String),
}

/// Find the domain name in the text of an xl config file.
pub fn parse_config_name(text: &str) -> ConfigName {
    let mut found = Vec::new();
    for line in text.lines() {
        let l = line.trim_start();
        let Some(rest) = l.strip_prefix("name") else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(value) = rest.strip_prefix('=') {
            found.push((line, value.trim()));
        }
    }
    let (line, value) = match found.as_slice() {
        [] => return ConfigName::Absent,
        [one] => *one,
        _ => return ConfigName::NotPlain("more than one 'name' line".into()),
    };
    let not_plain = || ConfigName::NotPlain(format!("not a plain quoted string: {}", line.trim()));
    let mut chars = value.chars();
    let Some(quote @ ('"' | '\'')) = chars.next() else {
        return not_plain();
    };
    let body: &str = chars.as_str();
    let Some(end) = body.find(quote) else {
        return not_plain();
    };
    let after = body[end + 1..].trim();
    if !(after.is_empty() || after.starts_with('#') || after == ";") {
        return not_plain();
    }
    ConfigName::Plain(body[..end].to_string())
}

/// One line of `xl list`: `Name ID Mem VCPUs State Time(s)`. Names may hold
/// spaces, so the fields are taken from the right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    pub name: String,
    pub domid: u32,
    pub mem: u64,
    pub vcpus: u32,
}

/// The domains in `xl list` output (header skipped).
pub fn parse_list(text: &str) -> Vec<ListEntry> {
    let mut v = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let n = f.len();
        let (Ok(domid), Ok(mem), Ok(vcpus)) = (
            f[n - 5].parse::<u32>(),
            f[n - 4].parse::<u64>(),
            f[n - 3].parse::<u32>(),
        ) else {
            continue;
        };
        v.push(ListEntry {
            name: f[..n - 5].join(" "),
            domid,
            mem,
            vcpus,
        });
    }
    v
}

/// `total_memory` from `xl info`, in MB.
pub fn parse_total_memory(info: &str) -> Option<i64> {
    info.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "total_memory").then(|| v.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_read_and_expressions_refused() {
        assert_eq!(
            parse_config_name("kernel = \"x\"\nname = \"vm1\"\nmemory = 512\n"),
            ConfigName::Plain("vm1".into())
        );
        assert_eq!(
            parse_config_name("name='my vm' # the guest\n"),
            ConfigName::Plain("my vm".into())
        );
        assert_eq!(
            parse_config_name("  name=\"a\";\n"),
            ConfigName::Plain("a".into())
        );
        assert_eq!(parse_config_name("memory = 512\n"), ConfigName::Absent);
        // not a name line
        assert_eq!(
            parse_config_name("name_suffix = \"x\"\n"),
            ConfigName::Absent
        );
        assert!(matches!(
            parse_config_name("name = \"vm%d\" % 3\n"),
            ConfigName::NotPlain(_)
        ));
        assert!(matches!(
            parse_config_name("name = vm1\n"),
            ConfigName::NotPlain(_)
        ));
        assert!(matches!(
            parse_config_name("name = \"a\"\nname = \"b\"\n"),
            ConfigName::NotPlain(_)
        ));
        assert!(matches!(
            parse_config_name("name = \"unterminated\n"),
            ConfigName::NotPlain(_)
        ));
    }

    #[test]
    fn xl_list_lines_are_split_from_the_right() {
        let out = "Name                                        ID   Mem VCPUs\tState\tTime(s)\n\
                   Domain-0                                     0  2048     2     r-----     100.5\n\
                   my vm                                        7   512     1     -b----       3.2\n";
        let l = parse_list(out);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].domid, 0);
        assert_eq!(
            l[1],
            ListEntry {
                name: "my vm".into(),
                domid: 7,
                mem: 512,
                vcpus: 1
            }
        );
    }

    #[test]
    fn total_memory_from_xl_info() {
        let info = "host : h\nrelease : 6\ntotal_memory           : 8191\nfree_memory : 100\n";
        assert_eq!(parse_total_memory(info), Some(8191));
        assert_eq!(parse_total_memory("host : h\n"), None);
    }
}
