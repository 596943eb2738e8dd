//! The guest's emulator process, for when libvirtd cannot be asked: a QEMU
//! started by libvirt carries `-name guest=NAME,debug-threads=on` (older
//! libvirt: `-name NAME`) and `-uuid UUID`, an LXC container `libvirt_lxc
//! --name NAME`. The heartbeat agent greps `ps awx` for the name; here /proc
//! is read directly.
//!
//! Finding such a process proves the guest runs. Finding none proves it
//! stopped only for a guest of this host's QEMU driver whose UUID is known:
//! QEMU is the one driver whose guests are processes here, and a process
//! found by `-uuid` is found whatever the emulator binary is called (an
//! `<emulator>` wrapper script) — by name alone a wrapper goes unseen.
//! Every other driver keeps its guests elsewhere (test: inside libvirtd;
//! Xen: in the hypervisor; remote URIs: on another host).

use std::path::Path;

/// Whether `argv` is an emulator (QEMU or libvirt_lxc) running domain `name`.
pub fn is_emulator_of(argv: &[String], name: &str) -> bool {
    let Some(prog) = argv.first() else {
        return false;
    };
    let base = Path::new(prog)
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    let qemu = base.starts_with("qemu-") || base == "qemu-kvm" || base == "kvm";
    let lxc = base == "libvirt_lxc";
    if !qemu && !lxc {
        return false;
    }
    argv.windows(2).any(|w| match w[0].as_str() {
        "-name" if qemu => qemu_name(&w[1]) == name,
        "--name" | "-n" if lxc => w[1] == name,
        _ => false,
    })
}

/// The guest name in a QEMU `-name` value: `guest=NAME,...` with `,,` for a
/// literal comma, or the bare `NAME`.
fn qemu_name(value: &str) -> String {
    let mut out = String::new();
    let v = value.strip_prefix("guest=").unwrap_or(value);
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                out.push(',');
                continue;
            }
            break;
        }
        out.push(c);
    }
    out
}

/// PIDs of the processes emulating domain `name` on this host.
pub fn emulator_pids(name: &str) -> Vec<i32> {
    ocf::procs::find_by_argv(|argv| is_emulator_of(argv, name))
}

/// Whether `argv` carries `-uuid UUID` (any emulator binary name).
pub fn has_uuid(argv: &[String], uuid: &str) -> bool {
    argv.windows(2)
        .any(|w| w[0] == "-uuid" && w[1].eq_ignore_ascii_case(uuid))
}

/// PIDs of the processes emulating the domain with UUID `uuid`.
pub fn uuid_pids(uuid: &str) -> Vec<i32> {
    ocf::procs::find_by_argv(|argv| has_uuid(argv, uuid))
}

/// A libvirt UUID as printed (`8-4-4-4-12` hexadecimal digits).
pub fn valid_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether `uri` names this host's QEMU driver: scheme `qemu` or
/// `qemu+unix`, no host (`qemu:///system`, `qemu+unix:///system?socket=..`).
pub fn local_qemu_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return false;
    };
    matches!(scheme, "qemu" | "qemu+unix") && rest.starts_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn guest_equals_form_and_bare_form() {
        let el8 = v(&[
            "/usr/bin/qemu-system-x86_64",
            "-name",
            "guest=vm1,debug-threads=on",
        ]);
        assert!(is_emulator_of(&el8, "vm1"));
        assert!(!is_emulator_of(&el8, "vm"));
        assert!(is_emulator_of(
            &v(&["/usr/libexec/qemu-kvm", "-name", "vm1"]),
            "vm1"
        ));
        assert!(is_emulator_of(
            &v(&["qemu-system-x86_64", "-name", "guest=a,,b,debug-threads=on"]),
            "a,b"
        ));
        assert!(is_emulator_of(
            &v(&["/usr/lib/libvirt/libvirt_lxc", "--name", "c1"]),
            "c1"
        ));
        // not an emulator, or the name elsewhere
        assert!(!is_emulator_of(&v(&["grep", "-name", "vm1"]), "vm1"));
        assert!(!is_emulator_of(&v(&["qemu-system-x86_64", "vm1"]), "vm1"));
    }

    #[test]
    fn uuid_form_and_local_qemu_uris() {
        let u = "3f1c2b9a-0d4e-4a8b-9c7d-1e2f3a4b5c6d";
        let argv = v(&["/usr/local/bin/my-qemu-wrapper", "-uuid", u, "-name", "x"]);
        assert!(has_uuid(&argv, u));
        assert!(has_uuid(&argv, &u.to_uppercase()));
        assert!(!has_uuid(&argv, "3f1c2b9a-0d4e-4a8b-9c7d-1e2f3a4b5c6e"));
        assert!(valid_uuid(u));
        assert!(!valid_uuid("3f1c2b9a0d4e4a8b9c7d1e2f3a4b5c6d"));
        assert!(!valid_uuid("x"));
        assert!(local_qemu_uri("qemu:///system"));
        assert!(local_qemu_uri("qemu:///session"));
        assert!(local_qemu_uri("qemu+unix:///system?socket=/run/x"));
        for remote_or_other in [
            "qemu+ssh://node2/system",
            "qemu://node2/system",
            "qemu+tcp://10.0.0.1/system",
            "test:///default",
            "test+unix:///default?socket=/x",
            "xen:///",
            "lxc:///",
            "qemu:system",
        ] {
            assert!(!local_qemu_uri(remote_or_other), "{remote_or_other}");
        }
    }

    #[test]
    fn scanning_proc_finds_nothing_for_an_unknown_guest() {
        assert!(emulator_pids("no-such-guest-anywhere-42").is_empty());
    }
}
