//! The guest's emulator process, for when libvirtd cannot be asked: a QEMU
//! started by libvirt carries `-name guest=NAME,debug-threads=on` (older
//! libvirt: `-name NAME`), an LXC container `libvirt_lxc --name NAME`. The
//! heartbeat agent greps `ps awx` for the same; here /proc is read directly.

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
    fn scanning_proc_finds_nothing_for_an_unknown_guest() {
        assert!(emulator_pids("no-such-guest-anywhere-42").is_empty());
    }
}
