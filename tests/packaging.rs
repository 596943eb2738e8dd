//! The .deb really installs: files where Pacemaker and rgmanager look,
//! `crm_resource --show-metadata` reads every agent, man pages, the opt-in
//! drop-in under the heartbeat provider and its undoing, and a clean removal.
//! Where libvirt is installed the package includes the VirtualDomain agent
//! and the rgmanager vm persona (built in their own workspace,
//! `support::virtualdomain`) and depends on libvirt0.
//!
//! This test installs a package on the machine, so it refuses to run when
//! resource-agents-rs is already installed (it never touches an admin's
//! installation), and removes what it installed even when it fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

const OCF_DIR: &str = "/usr/lib/ocf/resource.d/heartbeat-rs";
const HB_FILESYSTEM: &str = "/usr/lib/ocf/resource.d/heartbeat/Filesystem";

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_Filesystem"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn installed() -> bool {
    run("dpkg-query", &["-W", "-f=${Status}", "resource-agents-rs"])
        .1
        .contains("install ok installed")
}

/// Removes the package (and with it any drop-in) when dropped.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        if installed() {
            let _ = run("dpkg", &["-r", "resource-agents-rs"]);
        }
    }
}

fn sha(path: &str) -> String {
    run("sha256sum", &[path])
        .1
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn deb_installs_every_agent_for_pacemaker_and_removes_cleanly() {
    assert!(
        !installed(),
        "resource-agents-rs is installed on this machine; this test will not touch it"
    );
    let out = support::tempdir("pkg");
    let vd = Some(support::virtualdomain::vd_binary());
    let bins = bin_dir();
    let args = vec![
        "--bin-dir",
        bins.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ];
    let (ok, text) = run(
        concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/build-deb.sh"),
        &args,
    );
    assert!(ok, "build-deb.sh failed:\n{text}");
    let deb = text
        .lines()
        .find(|l| l.ends_with(".deb"))
        .unwrap_or_else(|| panic!("no .deb reported:\n{text}"))
        .to_string();
    let (_, depends) = run("dpkg-deb", &["-f", &deb, "Depends"]);
    assert_eq!(depends.trim(), if vd.is_some() { "libvirt0" } else { "" });
    if let Some(rpm) = text.lines().find(|l| l.ends_with(".rpm")) {
        let (ok, files) = run("rpm", &["-qlp", rpm]);
        assert!(
            ok && files.contains("/usr/lib/ocf/resource.d/heartbeat-rs/Filesystem"),
            "{files}"
        );
        let (_, requires) = run("rpm", &["-qp", "--requires", rpm]);
        assert_eq!(
            requires.lines().any(|l| l.trim() == "libvirt-libs"),
            vd.is_some(),
            "{requires}"
        );
    }

    let hb_before = Path::new(HB_FILESYSTEM)
        .exists()
        .then(|| sha(HB_FILESYSTEM));
    let _guard = Installed;
    let (ok, text) = run("dpkg", &["-i", &deb]);
    assert!(ok, "dpkg -i failed:\n{text}");

    let mut agents = vec!["Filesystem", "LVM", "LVM-activate", "Xen"];
    if vd.is_some() {
        agents.push("VirtualDomain");
    }
    for agent in agents {
        let path = Path::new(OCF_DIR).join(agent);
        assert!(path.is_file(), "{} missing", path.display());
        let (ok, xml) = run(
            "crm_resource",
            &["--show-metadata", &format!("ocf:heartbeat-rs:{agent}")],
        );
        assert!(ok, "crm_resource cannot read {agent}:\n{xml}");
        assert!(
            xml.contains(&format!("<resource-agent name=\"{agent}\"")),
            "{xml}"
        );
        let man = format!("/usr/share/man/man7/ocf_heartbeat-rs_{agent}.7.gz");
        let (ok, page) = run("zcat", &[&man]);
        assert!(ok && page.starts_with(".TH"), "{man}");
        assert!(Path::new(&format!("/usr/share/resource-agents-rs/{agent}.xml")).is_file());
    }
    // rgmanager personas in /usr/share/cluster (vm with libvirt)
    let mut personas = vec!["fs", "lvm"];
    if vd.is_some() {
        personas.push("vm");
    }
    for p in personas {
        let script = format!("/usr/share/cluster/{p}.sh");
        let (ok, xml) = run(&script, &["meta-data"]);
        assert!(ok, "{script}:\n{xml}");
        assert!(
            xml.contains(&format!(
                "<resource-agent name=\"{p}\" version=\"rgmanager 2.0\">"
            )),
            "{xml}"
        );
    }
    let (_, providers) = run("crm_resource", &["--list-ocf-providers"]);
    assert!(
        providers.lines().any(|l| l.trim() == "heartbeat-rs"),
        "{providers}"
    );

    // The opt-in drop-in, when the heartbeat agent is installed.
    if let Some(before) = hb_before {
        let (ok, text) = run("heartbeat-rs-dropin", &["enable", "Filesystem"]);
        assert!(ok, "{text}");
        assert_eq!(
            std::fs::read_link(HB_FILESYSTEM).unwrap(),
            Path::new(OCF_DIR).join("Filesystem")
        );
        let (ok, xml) = run(
            "crm_resource",
            &["--show-metadata", "ocf:heartbeat:Filesystem"],
        );
        assert!(
            ok && xml.contains("/proc/self/mountinfo"),
            "heartbeat:Filesystem is not ours:\n{xml}"
        );
        let (_, status) = run("heartbeat-rs-dropin", &["status"]);
        assert!(status.contains("Filesystem: enabled"), "{status}");
        let (ok, text) = run("heartbeat-rs-dropin", &["disable", "Filesystem"]);
        assert!(ok, "{text}");
        assert!(!std::fs::symlink_metadata(HB_FILESYSTEM)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            sha(HB_FILESYSTEM),
            before,
            "the heartbeat agent was not restored"
        );
        // enabled again, then removing the package restores it too
        assert!(run("heartbeat-rs-dropin", &["enable", "Filesystem"]).0);
        let (ok, text) = run("dpkg", &["-r", "resource-agents-rs"]);
        assert!(ok, "{text}");
        assert_eq!(
            sha(HB_FILESYSTEM),
            before,
            "package removal left the drop-in behind"
        );
    } else {
        let (ok, text) = run("dpkg", &["-r", "resource-agents-rs"]);
        assert!(ok, "{text}");
    }
    assert!(!installed());
    assert!(!Path::new(OCF_DIR).exists(), "{OCF_DIR} left behind");
    assert!(!Path::new("/usr/share/man/man7/ocf_heartbeat-rs_Filesystem.7.gz").exists());
}
