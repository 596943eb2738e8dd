//! The VirtualDomain agent's binaries, built with the nested cargo.
//!
//! VirtualDomain links libvirt dynamically, so it is not a binary of this
//! (statically linked) package: it is its own cargo workspace under
//! `agents/virtualdomain`, built here with rustflags that replace the root's
//! `+crt-static` (see agents/virtualdomain/Cargo.toml), into
//! `<root target>/<triple>/virtualdomain`, with the rgmanager `vm` persona
//! (a member of that workspace). Used by tests/virtualdomain.rs,
//! tests/rgmanager_vm.rs, tests/metadata.rs and tests/packaging.rs, and by
//! bench/virtualdomain.sh (through tests/virtualdomain.rs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Flags for the VirtualDomain workspace: replace (RUSTFLAGS wins over
/// every config file's rustflags) the root's static linking.
pub const VD_RUSTFLAGS: &str = "-C target-feature=-crt-static";
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

pub fn vd_workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("agents/virtualdomain")
}

/// The nested workspace's target directory, beside this package's tests'.
pub fn vd_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("virtualdomain")
}

/// Run cargo with `args` (plus `--target`) in the VirtualDomain workspace.
pub fn nested_cargo(args: &[&str]) -> Output {
    Command::new(env!("CARGO"))
        .current_dir(vd_workspace())
        .args(args)
        .args(["--target", TARGET])
        .env("CARGO_TARGET_DIR", vd_target_dir())
        .env("RUSTFLAGS", VD_RUSTFLAGS)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run cargo for agents/virtualdomain")
}

/// The debug build directory of the nested workspace, built (the agent, the
/// rgmanager `vm` persona and the examples) once per test process.
fn built() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = nested_cargo(&["build", "--workspace", "--bins", "--examples"]);
        assert!(
            out.status.success(),
            "building agents/virtualdomain failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        vd_target_dir().join(TARGET).join("debug")
    })
}

/// The VirtualDomain agent binary (debug build).
pub fn vd_binary() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| built().join("VirtualDomain").to_string_lossy().into_owned())
}

/// The rgmanager `vm` persona (agents/rgmanager-vm, a member of the
/// VirtualDomain workspace; debug build).
pub fn vm_binary() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| built().join("vm").to_string_lossy().into_owned())
}

/// An example program of the VirtualDomain workspace (`examples/<name>.rs`).
pub fn vd_example(name: &str) -> PathBuf {
    built().join("examples").join(name)
}

/// libvirt's daemons are installed: the VirtualDomain tests can run.
pub fn have_libvirtd() -> bool {
    let ok = Path::new("/usr/sbin/libvirtd").exists() && Path::new("/usr/sbin/virtlogd").exists();
    if !ok {
        eprintln!("SKIP: libvirtd/virtlogd not installed (.ci/install-libvirt.sh)");
    }
    ok
}
