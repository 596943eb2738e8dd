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

/// One pretend Xen host for a test: `bin/xl` (the double) first in the
/// `PATH` it gives, the double's state directory, and a guest `vm1`'s
/// xmfile, all under `dir`.
pub struct XenHost {
    pub path: String,
    pub state: PathBuf,
    pub xmfile: PathBuf,
}

impl XenHost {
    pub fn new(dir: &Path) -> XenHost {
        let bin = dir.join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(xl(), bin.join("xl")).unwrap();
        let state = dir.join("host");
        std::fs::create_dir(&state).unwrap();
        let xmfile = dir.join("vm1.cfg");
        std::fs::write(&xmfile, "name = \"vm1\"\nmemory = 256\n").unwrap();
        XenHost {
            path: format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display()),
            state,
            xmfile,
        }
    }

    /// Whether the double lists `vm1` as running.
    pub fn vm1_listed(&self) -> bool {
        Command::new(xl())
            .env("XL_DOUBLE_STATE", &self.state)
            .args(["list", "vm1"])
            .output()
            .unwrap()
            .status
            .success()
    }
}
