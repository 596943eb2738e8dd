//! Test doubles of the node's tools, for the integration tests. Each is a
//! small std-only program in this directory, registered as an example so
//! `cargo test` builds (and clippy checks) it; when a test runs without the
//! examples built (`cargo test --test xen`), it is compiled here with rustc.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn mtime(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The `xl` double (`tests/doubles/xl.rs`): the `xl` example next to our
/// binaries when it is at least as new as its source, else built here.
pub fn xl() -> &'static Path {
    static XL: OnceLock<PathBuf> = OnceLock::new();
    XL.get_or_init(|| {
        let src = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/doubles/xl.rs"));
        let example = Path::new(env!("CARGO_BIN_EXE_Xen"))
            .parent()
            .unwrap()
            .join("examples/xl");
        if mtime(&example).is_some() && mtime(&example) >= mtime(src) {
            return example;
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("doubles");
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("xl");
        if mtime(&out).is_some() && mtime(&out) >= mtime(src) {
            return out;
        }
        // Another test binary may be building it too: each writes its own
        // file and renames it into place.
        let tmp = dir.join(format!("xl.{}", std::process::id()));
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let st = Command::new(rustc)
            .args(["--edition", "2021", "-o"])
            .arg(&tmp)
            .arg(src)
            .status()
            .expect("run rustc for the xl double");
        assert!(st.success(), "cannot compile the xl double");
        std::fs::rename(&tmp, &out).unwrap();
        out
    })
}

/// One pretend Xen host for a test: the double's state directory (what
/// `XL_DOUBLE_STATE` names) and a `PATH` with `bin/xl` (the double) first.
/// Every Xen suite builds its hosts here, so they all run the agent in the
/// same surroundings: hosts of one directory share its `bin/` and keep
/// their states side by side in `hosts/`, where the double's
/// `xl migrate DOM NODE` finds the other node.
#[derive(Clone)]
pub struct XenHost {
    /// `PATH` for whatever should find the double: `bin/` first, then the
    /// system directories.
    pub path: String,
    /// `bin/`, for more doubles a suite puts beside `xl`.
    pub bin: PathBuf,
    /// The double's state: its domains, its call log, the steering flags.
    pub state: PathBuf,
}

impl XenHost {
    /// The one host of a test under `dir`.
    pub fn new(dir: &Path) -> XenHost {
        XenHost::node(dir, "host")
    }

    /// Host `name` under `dir` (its state `hosts/<name>`), beside any
    /// other host made there.
    pub fn node(dir: &Path, name: &str) -> XenHost {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let xl_link = bin.join("xl");
        if std::fs::symlink_metadata(&xl_link).is_err() {
            std::os::unix::fs::symlink(xl(), &xl_link).unwrap();
        }
        let state = dir.join("hosts").join(name);
        std::fs::create_dir_all(&state).unwrap();
        XenHost {
            path: format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display()),
            bin,
            state,
        }
    }

    /// Run the double on this host, as an admin or the guest would (the
    /// call is logged like the agent's).
    pub fn xl(&self, args: &[&str]) -> std::process::Output {
        Command::new(xl())
            .env("XL_DOUBLE_STATE", &self.state)
            .args(args)
            .output()
            .unwrap()
    }

    /// Whether the double lists `vm1` as running.
    pub fn vm1_listed(&self) -> bool {
        self.xl(&["list", "vm1"]).status.success()
    }

    /// Names of the domains the double holds (Domain-0 aside), sorted.
    pub fn domains(&self) -> Vec<String> {
        let out = self.xl(&["list"]);
        assert!(out.status.success(), "xl list: {out:?}");
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f[..f.len() - 5].join(" ")
            })
            .filter(|n| n != "Domain-0")
            .collect();
        names.sort();
        names
    }

    /// The calls made to the double, one `{:?}` line each.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.state.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The calls so far ([`XenHost::calls`]), forgotten.
    pub fn take_calls(&self) -> Vec<String> {
        let calls = self.calls();
        let _ = std::fs::remove_file(self.state.join("calls"));
        calls
    }

    /// Set a steering flag of the double (`tests/doubles/xl.rs`).
    pub fn set_flag(&self, name: &str, value: &str) {
        std::fs::write(self.state.join(name), value).unwrap();
    }

    /// Remove a steering flag of the double.
    pub fn clear_flag(&self, name: &str) {
        let _ = std::fs::remove_file(self.state.join(name));
    }
}

/// Guest `vm1`'s xmfile (`name = "vm1"`, 256 MB) in `dir`.
pub fn vm1_xmfile(dir: &Path) -> PathBuf {
    let xmfile = dir.join("vm1.cfg");
    std::fs::write(&xmfile, "name = \"vm1\"\nmemory = 256\n").unwrap();
    xmfile
}
