//! The packages hold every agent and persona and really install: files
//! where Pacemaker and rgmanager look, `crm_resource --list-agents` and
//! `--show-metadata` read every agent, man pages, the opt-in drop-in under
//! the heartbeat provider (.deb only) and its undoing, and a clean removal.
//!
//! The .deb is installed with the real `dpkg -i` — but never on the host:
//! the install runs on a thread in a private mount namespace where `/usr`
//! and `/var/lib/dpkg` are overlays whose writes land in a scratch directory
//! (see [`Scratch`]). The host's OCF tree, its dpkg database and an admin's
//! own installation stay untouched, which the test checks at the end.
//!
//! When the shipped release binaries exist (tests/run.sh builds them with
//! `cargo static-agents` and `cargo libvirt-agents`; `RA_REQUIRE_RELEASE=1`
//! makes them mandatory) the packages are built from them, and the static
//! agents are checked to be static executables with no glibc NSS inside;
//! otherwise from this test build.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

const OCF_DIR: &str = "/usr/lib/ocf/resource.d/heartbeat-rs";
const HB_FILESYSTEM: &str = "/usr/lib/ocf/resource.d/heartbeat/Filesystem";
const AGENTS: &[&str] = &[
    "Filesystem",
    "LVM-activate",
    "LVM",
    "lvmlockd",
    "iscsi",
    "VirtualDomain",
    "Xen",
];
const PERSONAS: &[&str] = &["fs", "lvm", "vm"];
/// Linked against libvirt, dynamically.
const LIBVIRT_LINKED: &[&str] = &["VirtualDomain", "vm"];

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The shipped builds' directories (static, libvirt), when both are built.
fn release_dirs() -> Option<(PathBuf, PathBuf)> {
    let stat = target_dir().join("x86_64-unknown-linux-musl/release");
    let dynamic = target_dir().join("release");
    let complete = AGENTS.iter().chain(PERSONAS).all(|b| {
        let dir = if LIBVIRT_LINKED.contains(b) {
            &dynamic
        } else {
            &stat
        };
        dir.join(b).is_file()
    });
    if complete {
        return Some((stat, dynamic));
    }
    assert!(
        std::env::var_os("RA_REQUIRE_RELEASE").is_none(),
        "RA_REQUIRE_RELEASE: build the release binaries first (cargo static-agents; cargo libvirt-agents)"
    );
    eprintln!("SKIP (static checks): no release build; packaging this test build instead");
    None
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

fn sha(path: &str) -> String {
    run("sha256sum", &[path])
        .1
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// What an install could change on the host: the listings of the trees the
/// package writes to and the dpkg database's state of our package.
fn host_state() -> String {
    let mut s = String::new();
    for dir in [
        "/usr/lib/ocf/resource.d",
        "/usr/share/cluster",
        "/usr/share/resource-agents-rs",
    ] {
        s.push_str(&run("ls", &["-laR", dir]).1);
    }
    s.push_str(&run("dpkg-query", &["-W", "-f=${Status}", "resource-agents-rs"]).1);
    s.push_str(&std::fs::read_to_string("/var/lib/dpkg/diversions").unwrap_or_default());
    s
}

/// A private mount namespace (for the calling thread and what it starts)
/// where `/usr` and `/var/lib/dpkg` are overlays over the host's: dpkg
/// installs for real, every write lands in the scratch directory, and it
/// all vanishes with the thread.
struct Scratch {
    _dir: tempfile::TempDir,
}

impl Scratch {
    fn enter() -> Scratch {
        let dir = support::tempdir("pkg-root");
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
        let (ok, text) = run("mount", &["--make-rprivate", "/"]);
        assert!(ok, "{text}");
        for (i, lower) in ["/usr", "/var/lib/dpkg"].iter().enumerate() {
            let upper = dir.path().join(format!("{i}/upper"));
            let work = dir.path().join(format!("{i}/work"));
            std::fs::create_dir_all(&upper).unwrap();
            std::fs::create_dir_all(&work).unwrap();
            let opts = format!(
                "lowerdir={lower},upperdir={},workdir={}",
                upper.display(),
                work.display()
            );
            let (ok, text) = run("mount", &["-t", "overlay", "overlay", "-o", &opts, lower]);
            assert!(ok, "overlay on {lower}: {text}");
        }
        Scratch { _dir: dir }
    }
}

/// Run `f` on a thread of its own inside a [`Scratch`] namespace.
fn in_scratch_root(f: impl FnOnce() + Send + 'static) {
    let result = std::thread::spawn(move || {
        let _scratch = Scratch::enter();
        f();
    })
    .join();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn packages_hold_every_agent_and_install_into_a_scratch_root() {
    let out = support::tempdir("pkg");
    let test_build = Path::new(env!("CARGO_BIN_EXE_Filesystem"))
        .parent()
        .unwrap()
        .to_path_buf();
    let release = release_dirs();
    let (static_dir, libvirt_dir) = release
        .clone()
        .unwrap_or((test_build.clone(), test_build.clone()));
    if release.is_some() {
        for b in AGENTS.iter().chain(PERSONAS) {
            if LIBVIRT_LINKED.contains(b) {
                continue;
            }
            let bin = static_dir.join(b);
            let (_, ldd) = run("ldd", &[bin.to_str().unwrap()]);
            assert!(ldd.contains("not a dynamic executable"), "{b}: {ldd}");
            let (_, strings) = run("strings", &[bin.to_str().unwrap()]);
            assert!(!strings.contains("libnss"), "{b} carries glibc NSS");
        }
    }
    let (ok, text) = run(
        concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/build-deb.sh"),
        &[
            "--static-dir",
            static_dir.to_str().unwrap(),
            "--libvirt-dir",
            libvirt_dir.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ],
    );
    assert!(ok, "build-deb.sh failed:\n{text}");
    let deb = text
        .lines()
        .find(|l| l.ends_with(".deb"))
        .unwrap_or_else(|| panic!("no .deb reported:\n{text}"))
        .to_string();
    let (_, depends) = run("dpkg-deb", &["-f", &deb, "Depends"]);
    assert_eq!(depends.trim(), "libvirt0");
    let (_, contents) = run("dpkg-deb", &["-c", &deb]);
    for a in AGENTS {
        assert!(
            contents.contains(&format!(".{OCF_DIR}/{a}\n")),
            "{a} not in the .deb"
        );
    }
    for p in PERSONAS {
        assert!(
            contents.contains(&format!("./usr/share/cluster/{p}.sh\n")),
            "{p}.sh not in the .deb"
        );
    }
    assert!(contents.contains("./usr/sbin/heartbeat-rs-dropin\n"));

    if let Some(rpm) = text.lines().find(|l| l.ends_with(".rpm")) {
        let (ok, files) = run("rpm", &["-qlp", rpm]);
        assert!(ok, "{files}");
        for a in AGENTS {
            assert!(
                files.contains(&format!("{OCF_DIR}/{a}\n")),
                "{a} not in the .rpm"
            );
        }
        for p in PERSONAS {
            assert!(
                files.contains(&format!("/usr/share/cluster/{p}.sh\n")),
                "{p}.sh not in the .rpm"
            );
        }
        // dpkg-divert does not exist there: the drop-in is .deb only
        assert!(!files.contains("heartbeat-rs-dropin"), "{files}");
        let (_, requires) = run("rpm", &["-qp", "--requires", rpm]);
        assert!(
            requires.lines().any(|l| l.trim() == "libvirt-libs"),
            "{requires}"
        );
        let (_, scripts) = run("rpm", &["-qp", "--scripts", rpm]);
        assert!(!scripts.contains("dropin"), "{scripts}");
    }

    let host_before = host_state();
    let static_checks = release.is_some();
    in_scratch_root(move || install_use_and_remove(&deb, static_checks));
    assert_eq!(host_state(), host_before, "the install reached the host");
}

/// Inside the scratch root: what an admin does with the .deb.
fn install_use_and_remove(deb: &str, static_checks: bool) {
    let hb_before = Path::new(HB_FILESYSTEM)
        .exists()
        .then(|| sha(HB_FILESYSTEM));
    let (ok, text) = run("dpkg", &["--log=/dev/null", "-i", deb]);
    assert!(ok, "dpkg -i failed:\n{text}");

    let (ok, listed) = run("crm_resource", &["--list-agents", "ocf:heartbeat-rs"]);
    assert!(ok, "{listed}");
    let mut listed: Vec<&str> = listed.lines().map(str::trim).collect();
    listed.sort();
    let mut want = AGENTS.to_vec();
    want.sort();
    assert_eq!(listed, want, "crm_resource --list-agents ocf:heartbeat-rs");
    for agent in AGENTS {
        let path = Path::new(OCF_DIR).join(agent);
        if static_checks && !LIBVIRT_LINKED.contains(agent) {
            let (_, ldd) = run("ldd", &[path.to_str().unwrap()]);
            assert!(ldd.contains("not a dynamic executable"), "{agent}: {ldd}");
        }
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
    // rgmanager personas in /usr/share/cluster
    for p in PERSONAS {
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
        let (ok, text) = run("dpkg", &["--log=/dev/null", "-r", "resource-agents-rs"]);
        assert!(ok, "{text}");
        assert_eq!(
            sha(HB_FILESYSTEM),
            before,
            "package removal left the drop-in behind"
        );
    } else {
        let (ok, text) = run("dpkg", &["--log=/dev/null", "-r", "resource-agents-rs"]);
        assert!(ok, "{text}");
    }
    let (_, status) = run("dpkg-query", &["-W", "-f=${Status}", "resource-agents-rs"]);
    assert!(!status.contains("install ok installed"), "{status}");
    assert!(!Path::new(OCF_DIR).exists(), "{OCF_DIR} left behind");
    assert!(!Path::new("/usr/share/man/man7/ocf_heartbeat-rs_Filesystem.7.gz").exists());
}
