//! The VirtualDomain agent's binaries and whether libvirt's daemons are here.
//!
//! VirtualDomain and the rgmanager `vm` persona are binaries of this package
//! like every other agent (they link libvirt, so they exist for the gnu
//! target only; see .cargo/config.toml). Used by tests/virtualdomain.rs,
//! tests/rgmanager_vm.rs, tests/pacemaker.rs, tests/metadata.rs and
//! tests/packaging.rs, and by bench/virtualdomain.sh (through
//! tests/virtualdomain.rs).

use std::path::{Path, PathBuf};

/// The VirtualDomain agent binary.
pub fn vd_binary() -> &'static str {
    super::built_binary("VirtualDomain", option_env!("CARGO_BIN_EXE_VirtualDomain"))
}

/// The rgmanager `vm` persona.
pub fn vm_binary() -> &'static str {
    super::built_binary("vm", option_env!("CARGO_BIN_EXE_vm"))
}

/// An example program of the VirtualDomain crate
/// (`agents/virtualdomain/examples/<name>.rs`), built by `cargo test
/// --workspace` or `cargo build --examples` next to the agents' binaries.
pub fn vd_example(name: &str) -> PathBuf {
    let path = Path::new(vd_binary())
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --examples` first",
        path.display()
    );
    path
}

/// [`have_libvirtd`] for the tests that CI must run: without the daemons
/// they SKIP, or fail where RA_REQUIRE_GUEST is set.
pub fn require_libvirtd() -> bool {
    let ok = have_libvirtd();
    assert!(
        ok || std::env::var_os("RA_REQUIRE_GUEST").is_none(),
        "RA_REQUIRE_GUEST is set but libvirtd/virtlogd are not installed"
    );
    ok
}

/// libvirt's daemons are installed: the VirtualDomain tests can run.
pub fn have_libvirtd() -> bool {
    let ok = Path::new("/usr/sbin/libvirtd").exists() && Path::new("/usr/sbin/virtlogd").exists();
    if !ok {
        eprintln!("SKIP: libvirtd/virtlogd not installed (.ci/install-libvirt.sh)");
    }
    ok
}
