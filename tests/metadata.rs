//! The meta-data every agent prints: committed in `metadata/<Agent>.xml`,
//! identical to what the binary prints, and valid against the OCF 1.0 DTD
//! that ocf-tester (and so `xmllint --valid`) checks.
//!
//! After changing an agent's parameters, regenerate the files with
//! `UPDATE_METADATA=1 cargo test --test metadata`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every agent binary of the package.
const AGENTS: &[&str] = &[
    "Filesystem",
    "LVM",
    "LVM-activate",
    "lvmlockd",
    "Xen",
    "iscsi",
    "VirtualDomain",
];

fn binary(name: &str) -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_Filesystem"))
        .parent()
        .unwrap()
        .join(name)
}

fn meta_data(name: &str, extra: &[(&str, &str)]) -> String {
    let out = Command::new(binary(name))
        .arg("meta-data")
        .env_clear()
        .envs(extra.iter().copied())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{name} meta-data failed");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn committed_metadata_matches_every_binary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("metadata");
    for &name in AGENTS {
        let printed = meta_data(name, &[]);
        let file = dir.join(format!("{name}.xml"));
        if std::env::var_os("UPDATE_METADATA").is_some() {
            std::fs::write(&file, &printed).unwrap();
        }
        let committed = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (regenerate with UPDATE_METADATA=1)",
                file.display()
            )
        });
        assert_eq!(
            committed,
            printed,
            "{} differs from `{name} meta-data` (regenerate with UPDATE_METADATA=1)",
            file.display()
        );
        // meta-data must not depend on the environment or the tools
        assert_eq!(
            meta_data(name, &[("OCF_TESTER_FAIL_HAVE_BINARY", "1")]),
            printed
        );
    }
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            f.strip_suffix(".xml").is_some_and(|n| AGENTS.contains(&n)),
            "metadata/{f}: a file without an agent"
        );
    }
}

#[test]
fn metadata_is_valid_against_ra_api_1_dtd() {
    let dtd_dir = Path::new("/usr/share/resource-agents");
    assert!(
        dtd_dir.join("ra-api-1.dtd").exists(),
        "ra-api-1.dtd missing: apt-get install resource-agents"
    );
    // every committed file, VirtualDomain.xml included
    for name in AGENTS {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("metadata/{name}.xml"));
        // as ocf-tester does it: the document on stdin, the DTD beside us
        let out = Command::new("xmllint")
            .args(["--noout", "--valid", "-"])
            .current_dir(dtd_dir)
            .stdin(Stdio::from(std::fs::File::open(&file).unwrap()))
            .output()
            .expect("xmllint is installed (apt-get install libxml2-utils)");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn metadata_names_the_agent_and_is_readable_by_nobody() {
    for &name in AGENTS {
        let out = Command::new("su")
            .args(["nobody", "-s", "/bin/sh", "-c"])
            .arg(format!("'{}' meta-data", binary(name).display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: meta-data as nobody failed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("<resource-agent name=\"{name}\"")),
            "{text}"
        );
    }
}
