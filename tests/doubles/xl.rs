//! TEST DOUBLE of the Xen `xl` toolstack, for `tests/xen.rs`. It is not
//! `xl` and manages no domain: it keeps pretend domains as files so the Xen
//! agent can be tested on a machine without Xen. Never install it.
//!
//! State lives in the directory `$XL_DOUBLE_STATE` (one "host"); its
//! sibling directories are the other hosts, named as `xl migrate` is told.
//! Every call appends its argv (without the program name) to
//! `$XL_DOUBLE_STATE/calls`, one Rust `{:?}` line per call, so tests can
//! assert the exact commands.
//!
//! Files a test may create in the state directory to steer it:
//! - `ignore-shutdown`: `shutdown` and `trigger ... power` succeed but the
//!   guest keeps running (a hung guest);
//! - `shutdown-delay-ms`: how long a guest takes to shut down (default 0);
//! - `fail-create`, `fail-migrate`, `fail-destroy`: the command fails;
//! - `fail-list`: `list` fails as when libxl cannot reach xenstore (an
//!   answer that may pass, not "invalid domain identifier");
//! - `total-memory`: MB reported by `xl info` (default 8192).
//!
//! Modelled: `list [DOM...]`, `create [-opts] FILE [key=value...]` (name,
//! memory and vcpus from the file, overridable), `shutdown [-w] DOM`,
//! `trigger DOM power`, `destroy DOM`, `migrate DOM HOST`, `info`,
//! `mem-set DOM MB`, `domid NAME`, `domname ID`.
//!
//! Built by `cargo test` as the example `xl`; `tests/xen.rs` compiles it
//! with rustc itself when that is missing (it uses only std).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::exit;
use std::time::{SystemTime, UNIX_EPOCH};

struct Host {
    dir: PathBuf,
}

#[derive(Clone, Debug)]
struct Domain {
    name: String,
    domid: u32,
    mem: u64,
    vcpus: u32,
    config: String,
    /// Unix ms at which a requested shutdown completes.
    shutdown_at: Option<u128>,
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn hex(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    exit(1)
}

impl Host {
    fn domains_dir(&self) -> PathBuf {
        self.dir.join("domains")
    }

    fn flag(&self, name: &str) -> bool {
        self.dir.join(name).exists()
    }

    fn number(&self, name: &str, default: u128) -> u128 {
        fs::read_to_string(self.dir.join(name))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(default)
    }

    fn log(&self, args: &[String]) {
        let _ = fs::create_dir_all(&self.dir);
        if let Ok(mut f) = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("calls"))
        {
            let _ = writeln!(f, "{args:?}");
        }
    }

    fn next_domid(&self) -> u32 {
        let id = self.number("next-domid", 1) as u32;
        let _ = fs::write(self.dir.join("next-domid"), (id + 1).to_string());
        id
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.domains_dir().join(hex(name))
    }

    fn save(&self, d: &Domain) {
        let _ = fs::create_dir_all(self.domains_dir());
        let text = format!(
            "name={}\ndomid={}\nmem={}\nvcpus={}\nconfig={}\nshutdown_at={}\n",
            d.name,
            d.domid,
            d.mem,
            d.vcpus,
            d.config,
            d.shutdown_at.map(|t| t.to_string()).unwrap_or_default()
        );
        let tmp = self
            .domains_dir()
            .join(format!(".tmp-{}", std::process::id()));
        fs::write(&tmp, text).expect("write domain");
        fs::rename(&tmp, self.path_of(&d.name)).expect("rename domain");
    }

    fn remove(&self, name: &str) {
        let _ = fs::remove_file(self.path_of(name));
    }

    fn load(path: &Path) -> Option<Domain> {
        let text = fs::read_to_string(path).ok()?;
        let kv: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        Some(Domain {
            name: kv.get("name")?.to_string(),
            domid: kv.get("domid")?.parse().ok()?,
            mem: kv.get("mem")?.parse().ok()?,
            vcpus: kv.get("vcpus")?.parse().ok()?,
            config: kv.get("config").unwrap_or(&"").to_string(),
            shutdown_at: kv.get("shutdown_at").and_then(|v| v.parse().ok()),
        })
    }

    /// Every domain, after guests whose shutdown has completed are gone.
    fn domains(&self) -> Vec<Domain> {
        let mut v = Vec::new();
        let Ok(rd) = fs::read_dir(self.domains_dir()) else {
            return v;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if let Some(d) = Host::load(&e.path()) {
                if d.shutdown_at.is_some_and(|t| t <= now_ms()) {
                    self.remove(&d.name);
                } else {
                    v.push(d);
                }
            }
        }
        v.sort_by_key(|d| d.domid);
        v
    }

    /// A domain by name or domid, or xl's error.
    fn find(&self, id: &str) -> Domain {
        self.domains()
            .into_iter()
            .find(|d| d.name == id || d.domid.to_string() == id)
            .unwrap_or_else(|| fail(&format!("{id} is an invalid domain identifier (rc=-6)")))
    }
}

fn line(name: &str, domid: u32, mem: u64, vcpus: u32, state: &str) -> String {
    format!(
        "{name:<40} {domid:>5} {mem:>5} {vcpus:>5}     {state} {:>8.1}",
        1.0
    )
}

fn header() -> String {
    "Name                                        ID   Mem VCPUs\tState\tTime(s)".to_string()
}

/// `key = value` settings of a config file or override, quotes removed.
fn settings(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for l in text.lines() {
        let l = l.split('#').next().unwrap_or("").trim();
        if let Some((k, v)) = l.split_once('=') {
            let v = v.trim().trim_end_matches(';').trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            m.insert(k.trim().to_string(), v.to_string());
        }
    }
    m
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = std::env::var_os("XL_DOUBLE_STATE") else {
        eprintln!("xl test double: XL_DOUBLE_STATE is not set");
        exit(3)
    };
    let host = Host {
        dir: PathBuf::from(dir),
    };
    host.log(&args);
    let Some(cmd) = args.first() else {
        eprintln!("Usage xl [-vfNtT] <subcommand> [args]");
        exit(1)
    };
    let rest = &args[1..];
    let operands: Vec<&String> = rest.iter().filter(|a| !a.starts_with('-')).collect();
    match cmd.as_str() {
        "list" => {
            if host.flag("fail-list") {
                fail("libxl: error: libxl.c: cannot connect to xenstore (test double)");
            }
            if operands.is_empty() {
                println!("{}", header());
                println!("{}", line("Domain-0", 0, 2048, 2, "r-----"));
                for d in host.domains() {
                    println!("{}", line(&d.name, d.domid, d.mem, d.vcpus, "-b----"));
                }
            } else {
                let found: Vec<Domain> = operands.iter().map(|o| host.find(o)).collect();
                println!("{}", header());
                for d in found {
                    println!("{}", line(&d.name, d.domid, d.mem, d.vcpus, "-b----"));
                }
            }
        }
        "create" => {
            let Some(file) = operands.first() else {
                fail("xl create: no config file")
            };
            if host.flag("fail-create") {
                fail("libxl: error: test double told to fail create");
            }
            let text = fs::read_to_string(file)
                .unwrap_or_else(|e| fail(&format!("Failed to read config file: {file}: {e}")));
            let mut cfg = settings(&text);
            for o in &operands[1..] {
                cfg.extend(settings(o));
            }
            let Some(name) = cfg.get("name").cloned() else {
                fail("Domain name must be specified.")
            };
            if host.domains().iter().any(|d| d.name == name) {
                fail(&format!(
                    "libxl: error: domain with name \"{name}\" already exists."
                ));
            }
            let d = Domain {
                domid: host.next_domid(),
                mem: cfg
                    .get("memory")
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(512),
                vcpus: cfg.get("vcpus").and_then(|m| m.parse().ok()).unwrap_or(1),
                config: file.to_string(),
                shutdown_at: None,
                name,
            };
            host.save(&d);
            eprintln!("Parsing config from {file}");
        }
        "shutdown" | "trigger" => {
            let Some(id) = operands.first() else {
                fail("xl: missing domain")
            };
            if cmd == "trigger" && operands.get(1).map(|s| s.as_str()) != Some("power") {
                fail("xl trigger: only 'power' is modelled");
            }
            let mut d = host.find(id);
            if host.flag("ignore-shutdown") {
                return;
            }
            let delay = host.number("shutdown-delay-ms", 0);
            if delay == 0 {
                host.remove(&d.name);
            } else if d.shutdown_at.is_none() {
                d.shutdown_at = Some(now_ms() + delay);
                host.save(&d);
            }
        }
        "destroy" => {
            let Some(id) = operands.first() else {
                fail("xl: missing domain")
            };
            let d = host.find(id);
            if host.flag("fail-destroy") {
                fail("libxl: error: test double told to fail destroy");
            }
            host.remove(&d.name);
        }
        "migrate" => {
            let (Some(id), Some(target)) = (operands.first(), operands.get(1)) else {
                fail("Usage: xl migrate <Domain> <host>")
            };
            let d = host.find(id);
            if host.flag("fail-migrate") {
                fail("migration sender: test double told to fail");
            }
            let other = match host.dir.parent() {
                Some(p) if !target.contains('/') && target.as_str() != ".." => p.join(target),
                _ => fail(&format!("ssh: Could not resolve hostname {target}")),
            };
            if !other.is_dir() || other == host.dir {
                fail(&format!("ssh: Could not resolve hostname {target}"));
            }
            let there = Host { dir: other };
            there.log(&["migrate-receive".to_string(), d.name.clone()]);
            if there.domains().iter().any(|x| x.name == d.name) {
                fail(&format!(
                    "migration target: domain with name \"{}\" already exists",
                    d.name
                ));
            }
            let moved = Domain {
                domid: there.next_domid(),
                ..d.clone()
            };
            there.save(&moved);
            host.remove(&d.name);
        }
        "info" => {
            println!("host                   : {}", host.dir.display());
            println!(
                "total_memory           : {}",
                host.number("total-memory", 8192)
            );
            println!("free_memory            : 1024");
        }
        "mem-set" => {
            let (Some(id), Some(mem)) = (operands.first(), operands.get(1)) else {
                fail("Usage: xl mem-set <Domain> <Mem>")
            };
            let mut d = host.find(id);
            d.mem = mem
                .trim_end_matches(['m', 'M'])
                .parse()
                .unwrap_or_else(|_| fail("invalid memory size"));
            host.save(&d);
        }
        "domid" => {
            let Some(id) = operands.first() else {
                fail("xl: missing domain")
            };
            let d = host
                .domains()
                .into_iter()
                .find(|d| &d.name == *id)
                .unwrap_or_else(|| {
                    fail(&format!(
                        "Can't get domid of domain name '{id}', maybe this domain does not exist."
                    ))
                });
            println!("{}", d.domid);
        }
        "domname" => {
            let Some(id) = operands.first() else {
                fail("xl: missing domain")
            };
            let d = host
                .domains()
                .into_iter()
                .find(|d| d.domid.to_string() == **id)
                .unwrap_or_else(|| fail(&format!("Can't get domain name of domain id '{id}', maybe this domain does not exist.")));
            println!("{}", d.name);
        }
        other => {
            eprintln!("xl test double: command '{other}' is not modelled");
            exit(2)
        }
    }
}
