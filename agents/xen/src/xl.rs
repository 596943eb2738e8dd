//! The `xl` toolstack as this agent sees it: the names xl gives domains
//! during a migration, the `name` line of an xl config file, and the output
//! of `xl list` and `xl info`.
//!
//! Parsing is kept apart from running so it can be tested on captured
//! output: xl cannot run without a Xen hypervisor.

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
