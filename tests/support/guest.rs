//! The guest-kernel harness: tests that need kernel features the host
//! lacks (device-mapper, SCSI, LIO, iSCSI) boot the stock Debian kernel with
//! virtme-ng (`vng`, QEMU TCG, the host's root filesystem shared read-only)
//! ONCE per test binary and run that same binary inside it with
//! `RA_IN_GUEST=1 ... --ignored guest_`: every `guest_*` case runs in that
//! one boot, its libtest output comes back on vng's stdout, and the host test
//! fails unless the guest run ended with `test result: ok.` and ran at least
//! one case.
//!
//! The `guest_*` tests are `#[ignore]`d on the host (they need the guest).
//! No `vng` or kernel: the host test prints SKIP, unless `RA_REQUIRE_GUEST`
//! is set (CI installs both through `.ci/install-guest.sh`).
//! `RA_GUEST_FILTER` narrows the guest run to the cases matching it. The
//! host environment is not forwarded, except the benchmarks' own
//! `RA_BENCH_BIN_DIR` (which agent build they time) and `RA_BENCH_TRACE`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `PATH` of the guest run (the host environment is not forwarded).
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Whether this process runs inside the guest.
pub fn in_guest() -> bool {
    std::env::var_os("RA_IN_GUEST").is_some()
}

/// One guest run: what the kernel must have, what runs before the cases.
pub struct Suite<'a> {
    /// For messages: `lvm`, `iscsi`.
    pub name: &'a str,
    /// A directory under `/lib/modules/<version>/` the kernel must have
    /// (`kernel/drivers/md`): kernels without it are not candidates.
    pub modules: &'a str,
    /// Extra `NAME=value` exported in the guest.
    pub env: &'a [&'a str],
    /// Shell commands run in the guest before the cases (modprobe, ...).
    pub setup: &'a str,
    /// The whole guest run, boot included.
    pub limit: Duration,
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/bin", "/usr/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// The newest /boot/vmlinuz-* whose modules (with `modules` in them) are
/// installed.
fn guest_kernel(modules: &str) -> Option<PathBuf> {
    let mut kernels: Vec<(String, PathBuf)> = std::fs::read_dir("/boot")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let ver = name.strip_prefix("vmlinuz-")?.to_string();
            Path::new("/lib/modules")
                .join(&ver)
                .join(modules)
                .is_dir()
                .then(|| (ver, e.path()))
        })
        .collect();
    kernels.sort();
    kernels.pop().map(|(_, p)| p)
}

/// Host side: boot the guest once and run this test binary's guest cases
/// in it; panics unless they all passed. Does nothing inside the guest.
pub fn run(suite: &Suite) {
    if in_guest() {
        return;
    }
    let require = std::env::var_os("RA_REQUIRE_GUEST").is_some();
    let (vng, kernel) = match (find_in_path("vng"), guest_kernel(suite.modules)) {
        (Some(v), Some(k)) => (v, k),
        (v, k) => {
            let msg = format!(
                "vng: {v:?}, guest kernel: {k:?}; run .ci/install-guest.sh to install them"
            );
            assert!(
                !require,
                "RA_REQUIRE_GUEST is set but the guest is missing: {msg}"
            );
            eprintln!("SKIP {} guest suite: {msg}", suite.name);
            return;
        }
    };
    let exe = std::env::current_exe().unwrap();
    let filter = std::env::var("RA_GUEST_FILTER").unwrap_or_else(|_| "guest_".into());
    let mut exports = String::from("RA_IN_GUEST=1");
    for e in suite.env {
        exports.push(' ');
        exports.push_str(e);
    }
    // what the benchmarks read inside (bench/all.sh sets them)
    for name in ["RA_BENCH_BIN_DIR", "RA_BENCH_TRACE"] {
        if let Ok(v) = std::env::var(name) {
            assert!(!v.contains('\''), "{name} holds a quote: {v}");
            exports.push_str(&format!(" {name}='{v}'"));
        }
    }
    // The host environment is not forwarded: everything goes on the line.
    let script = format!(
        "export {exports} PATH={PATH}; {}; \
         cd / && '{}' --ignored --test-threads=1 --nocapture '{filter}' 2>&1",
        suite.setup,
        exe.display()
    );
    let t0 = Instant::now();
    let mut child = Command::new(&vng)
        .args(["-r"])
        .arg(&kernel)
        .args(["--disable-kvm", "--memory", "1G", "--cpus", "2", "--exec"])
        .arg(&script)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", vng.display()));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let ereader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if t0.elapsed() > suite.limit {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stdout = reader.join().unwrap();
    let stderr = ereader.join().unwrap();
    println!(
        "---- guest output ({:.0}s) ----\n{stdout}",
        t0.elapsed().as_secs_f64()
    );
    if !stderr.trim().is_empty() {
        println!("---- vng stderr ----\n{stderr}");
    }
    let status = status.unwrap_or_else(|| panic!("guest run exceeded {:?}", suite.limit));
    let summary = stdout
        .lines()
        .rfind(|l| l.starts_with("test result:"))
        .unwrap_or_else(|| panic!("no libtest summary from the guest (vng exit {status})"));
    assert!(
        status.success() && summary.starts_with("test result: ok."),
        "guest cases failed (vng exit {status}): {summary}"
    );
    let passed: u32 = summary
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 1, "no guest case ran: {summary}");
}
