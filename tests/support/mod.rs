//! Test support: run an agent as a process with an exact environment, and
//! make (and always clean up) the real things tests mount and manage.
//!
//! Every agent run starts from an empty environment (`env_clear`) plus what
//! the test sets, so a test sees exactly what a cluster manager would pass.
//! Fixtures remove what they created in `Drop`, which also runs when an
//! assertion fails and the test unwinds.
#![allow(dead_code)]

pub mod cluster;
pub mod guest;
pub mod libvirt;
pub mod lvm;
pub mod rgmanager;
pub mod two_nodes;
pub mod virtualdomain;
pub mod xml;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::sync::atomic::AtomicBool;

use assert_cmd::assert::Assert;
use assert_cmd::prelude::*;

/// OCF exit codes by name, for readable assertions.
pub mod rc {
    pub const SUCCESS: i32 = 0;
    pub const ERR_GENERIC: i32 = 1;
    pub const ERR_ARGS: i32 = 2;
    pub const ERR_UNIMPLEMENTED: i32 = 3;
    pub const ERR_PERM: i32 = 4;
    pub const ERR_INSTALLED: i32 = 5;
    pub const ERR_CONFIGURED: i32 = 6;
    pub const NOT_RUNNING: i32 = 7;
}

/// One agent binary and the environment of the next run.
#[derive(Clone, Debug)]
pub struct Agent {
    bin: PathBuf,
    env: Vec<(String, OsString)>,
}

impl Agent {
    /// `bin` is `env!("CARGO_BIN_EXE_<Agent>")`. The run gets its own
    /// `HA_RSCTMP` under `state`, logging off syslog, and nothing else.
    pub fn new(bin: &str, state: &Path) -> Agent {
        Agent {
            bin: PathBuf::from(bin),
            env: vec![
                ("HA_RSCTMP".into(), state.join("rsctmp").into()),
                ("HA_LOGFACILITY".into(), "none".into()),
                ("OCF_ROOT".into(), "/usr/lib/ocf".into()),
            ],
        }
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Set (or replace) an environment variable.
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Agent {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Set `OCF_RESKEY_<name>`.
    pub fn param(self, name: &str, value: impl Into<OsString>) -> Agent {
        self.env(&format!("OCF_RESKEY_{name}"), value)
    }

    pub fn unset(mut self, key: &str) -> Agent {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// A recurring monitor (not a probe).
    pub fn recurring(self) -> Agent {
        self.env("OCF_RESKEY_CRM_meta_interval", "10000")
    }

    pub fn check_level(self, level: u32) -> Agent {
        self.env("OCF_CHECK_LEVEL", level.to_string())
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.env_clear();
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.args(args);
        c
    }

    /// Run `action` and return the assertion object.
    pub fn run(&self, action: &str) -> Assert {
        self.command(&[action]).assert()
    }

    /// Run `action` and require exit code `rc`.
    pub fn expect(&self, action: &str, rc: i32) -> Assert {
        self.run(action).code(rc)
    }
}

/// Run `action`: (exit code, stdout, stderr); -1 when killed by a signal.
pub fn run(agent: &Agent, action: &str) -> (i32, String, String) {
    let out = agent.command(&[action]).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Require exit code `want`; returns stderr. The panic shows both outputs
/// (in a guest-kernel run there is nothing else to look at).
#[track_caller]
pub fn expect(agent: &Agent, action: &str, want: i32) -> String {
    let (code, stdout, stderr) = run(agent, action);
    assert_eq!(
        code,
        want,
        "{} {action}: wanted {want}, got {code}\nstdout: {stdout}\nstderr: {stderr}",
        agent.bin().display()
    );
    stderr
}

/// The exit reason lines (`ocf-exit-reason:...`) of an agent's stderr.
pub fn exit_reasons(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("ocf-exit-reason:"))
        .collect()
}

/// Require `want` and exactly one exit reason, containing `needle`.
#[track_caller]
pub fn expect_reason(agent: &Agent, action: &str, want: i32, needle: &str) {
    let stderr = expect(agent, action, want);
    let reasons = exit_reasons(&stderr);
    assert_eq!(reasons.len(), 1, "one exit reason wanted: {stderr}");
    assert!(
        reasons[0].contains(needle),
        "'{needle}' not in: {}",
        reasons[0]
    );
}

/// Run `action` requiring exit code `code`; how long it took.
pub fn timed(agent: &Agent, action: &str, code: i32) -> std::time::Duration {
    let t = std::time::Instant::now();
    agent.expect(action, code);
    t.elapsed()
}

/// Run `cmd` (stdin and stdout closed) for at most `limit`: its exit code
/// and stderr, or, when it is still running then, `Err` after killing it.
/// What the hostile suites use where an agent that hangs must fail the
/// test instead of hanging it. Stderr is read while the child runs, so a
/// child writing much of it cannot block on a full pipe.
pub fn run_within(mut cmd: Command, limit: std::time::Duration) -> Result<(i32, String), String> {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("hung: killed after {limit:?}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let err = reader.join().unwrap();
    Ok((status.code().unwrap_or(-1), err))
}

/// The median wall time of `n` calls of `f`, in ms (benchmarks).
pub fn median_ms(n: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            let t = std::time::Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[n / 2]
}

/// The median of `n` successful `monitor` runs of `agent`, in ms.
pub fn monitor_median_ms(agent: &Agent, n: usize) -> f64 {
    median_ms(n, || {
        let out = agent.command(&["monitor"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", agent.bin().display());
    })
}

/// The median of `n` runs of `program` (no arguments, must succeed), in ms.
pub fn program_median_ms(program: &str, n: usize) -> f64 {
    median_ms(n, || {
        assert!(Command::new(program).output().unwrap().status.success());
    })
}

/// A copy of `bin` in `dir` (benchmarks in the guest kernel: a binary on
/// the host's root is read over 9p at every exec, one in the guest's tmpfs
/// is not); returns its path.
///
/// With `RA_BENCH_BIN_DIR` set (bench/all.sh: the static release build), an
/// agent binary of that name is taken from there, so benchmarks measure
/// what ships rather than the tests' debug build.
pub fn local_copy(dir: &Path, bin: &str) -> String {
    let name = Path::new(bin).file_name().unwrap();
    let from = std::env::var_os("RA_BENCH_BIN_DIR")
        .map(|d| Path::new(&d).join(name))
        .filter(|p| p.exists())
        .unwrap_or_else(|| bin.into());
    let to = dir.join(name);
    std::fs::copy(&from, &to).unwrap();
    to.to_str().unwrap().to_string()
}

/// Start and stop latency of our agent and the heartbeat agent on the same
/// resource (benchmarks): `n` rounds of ours start, ours stop, heartbeat
/// start, heartbeat stop (round robin, so a load change hits both alike),
/// each required to succeed; prints the rows `start` and `stop` with the
/// medians. Both agents must find the resource stopped.
pub fn bench_start_stop(
    agent: &str,
    (ours, heartbeat): (&Agent, &Agent),
    n: usize,
    true_ms: f64,
    at: &str,
) {
    let mut times: [Vec<f64>; 4] = Default::default();
    let timed_ms = |a: &Agent, action: &str| {
        let t = std::time::Instant::now();
        expect(a, action, rc::SUCCESS);
        t.elapsed().as_secs_f64() * 1000.0
    };
    for _ in 0..n {
        times[0].push(timed_ms(ours, "start"));
        times[1].push(timed_ms(ours, "stop"));
        times[2].push(timed_ms(heartbeat, "start"));
        times[3].push(timed_ms(heartbeat, "stop"));
    }
    let [os, ot, hs, ht] = times.map(|mut v| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    });
    bench_line(agent, "start", (os, hs, true_ms), n, at);
    bench_line(agent, "stop", (ot, ht, true_ms), n, at);
}

/// One benchmark row in the machine-readable form bench/all.sh collects.
pub fn bench_line(
    agent: &str,
    action: &str,
    (ours, heartbeat, true_ms): (f64, f64, f64),
    runs: usize,
    at: &str,
) {
    println!(
        "BENCH agent={agent} action={action} ours_ms={ours:.2} heartbeat_ms={heartbeat:.2} \
         true_ms={true_ms:.2} runs={runs} where={at}"
    );
}

/// Remove every device-mapper device of volume group `vg` (a test's VG,
/// whoever activated it), forcibly: a fixture's last word.
pub fn remove_dm_devices_of_vg(vg: &str) {
    let prefix = format!("{}-", vg.replace('-', "--"));
    let names = Command::new("dmsetup")
        .args(["info", "-c", "--noheadings", "-o", "name"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for n in names
        .lines()
        .map(str::trim)
        .filter(|n| n.starts_with(&prefix))
    {
        let _ = Command::new("dmsetup").args(["remove", "-f", n]).status();
    }
}

/// ocf-tester, as the resource-agents package installs it.
pub const OCF_TESTER: &str = "/usr/sbin/ocf-tester";

/// Whether ocf-tester is installed; prints SKIP when it is not.
pub fn have_ocf_tester() -> bool {
    let ok = Path::new(OCF_TESTER).exists();
    if !ok {
        eprintln!("SKIP: ocf-tester not installed (Debian: resource-agents)");
    }
    ok
}

/// Run `ocf-tester -n <name> -o <k>=<v>... <agent>`; `setup` adds what the
/// agent needs (its environment, `-v`) before the options. Panics unless
/// ocf-tester exits 0 and says "passed all tests"; returns what it printed
/// (stdout, then stderr).
#[track_caller]
pub fn ocf_tester(
    name: &str,
    params: &[(&str, &str)],
    agent: impl AsRef<std::ffi::OsStr>,
    setup: impl FnOnce(&mut Command),
) -> String {
    let mut c = Command::new(OCF_TESTER);
    setup(&mut c);
    c.args(["-n", name]);
    for (k, v) in params {
        c.arg("-o").arg(format!("{k}={v}"));
    }
    let agent = agent.as_ref();
    let out = c
        .arg(agent)
        .output()
        .expect("ocf-tester is installed (apt-get install resource-agents)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && stdout.contains("passed all tests"),
        "ocf-tester {name} ({}) failed:\n{text}",
        agent.to_string_lossy()
    );
    text
}

/// A binary of this package: `from_cargo` is `option_env!("CARGO_BIN_EXE_<name>")`,
/// which cargo sets for test targets only; a program that includes these
/// modules from elsewhere (examples/ha_demo.rs) finds the binary next to
/// itself (`target/<profile>/examples/<program>` → `target/<profile>/<name>`).
pub fn built_binary(name: &str, from_cargo: Option<&'static str>) -> &'static str {
    if let Some(p) = from_cargo {
        return p;
    }
    let exe = std::env::current_exe().expect("the running program's path");
    let path = exe
        .ancestors()
        .nth(2)
        .expect("target/<profile>/examples/<program>")
        .join(name);
    assert!(
        path.is_file(),
        "{} is not built: cargo build --bin {name}",
        path.display()
    );
    Box::leak(path.to_string_lossy().into_owned().into_boxed_str())
}

/// cargo's scratch directory for tests (`CARGO_TARGET_TMPDIR`, set for test
/// targets only); elsewhere `target/tmp`, found from the running program.
pub fn target_tmpdir() -> PathBuf {
    match option_env!("CARGO_TARGET_TMPDIR") {
        Some(d) => PathBuf::from(d),
        None => std::env::current_exe()
            .expect("the running program's path")
            .ancestors()
            .nth(3)
            .expect("target/<profile>/examples/<program>")
            .join("tmp"),
    }
}

/// Set by a program's SIGINT/SIGTERM handler (examples/ha_demo.rs):
/// [`cluster::wait_for`] then stops waiting and panics, so the fixtures'
/// `Drop` cleans up.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// A temporary directory removed on drop.
pub fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ra-rs-{prefix}-"))
        .tempdir_in("/var/tmp")
        .expect("create temp dir")
}

/// Run a host command, panicking with its output when it fails.
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `dir` is a mount point now (reads /proc/self/mountinfo).
pub fn is_mounted(dir: &Path) -> bool {
    let want = dir
        .to_string_lossy()
        .replace(' ', "\\040")
        .replace('\t', "\\011");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// Unmount everything at or below `dir` (deepest first), lazily if needed.
pub fn unmount_tree(dir: &Path) {
    let prefix = dir.to_string_lossy().replace(' ', "\\040");
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let m = m.replace("\\040", " ");
        let ok = Command::new("umount")
            .arg(&m)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
    }
}

/// A sparse file attached to a loop device, formatted; detached on drop
/// after unmounting anything mounted from it under `owner_dir`.
pub struct LoopDevice {
    pub image: PathBuf,
    pub device: String,
    owner_dir: PathBuf,
}

impl LoopDevice {
    /// A `size_mb` image in `dir`, attached and formatted with `fstype`
    /// (`ext4`, `xfs`, or `none` for unformatted).
    pub fn new(dir: &Path, size_mb: u64, fstype: &str) -> LoopDevice {
        let image = dir.join(format!("{fstype}.img"));
        let f = std::fs::File::create(&image).unwrap();
        f.set_len(size_mb * 1024 * 1024).unwrap();
        drop(f);
        let device = sh("losetup", &["-f", "--show", image.to_str().unwrap()])
            .trim()
            .to_string();
        let dev = LoopDevice {
            image,
            device,
            owner_dir: dir.to_path_buf(),
        };
        match fstype {
            "ext4" => {
                sh("mkfs.ext4", &["-q", "-F", &dev.device]);
            }
            "xfs" => {
                sh("mkfs.xfs", &["-q", "-f", &dev.device]);
            }
            "none" => {}
            other => panic!("no mkfs for {other}"),
        }
        dev
    }

    /// Detach now (the device disappears) but keep the fixture for cleanup.
    /// Only where no other test attaches loop devices meanwhile (the guest
    /// runs its cases one at a time): a freed device number is reused.
    pub fn detach(&self) {
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }

    /// Take the medium away while keeping the device ours: the image
    /// shrinks to nothing and the loop device to size 0. (Detaching would
    /// free the device number for a parallel test to reuse.)
    pub fn remove_medium(&self) {
        std::fs::File::options()
            .write(true)
            .open(&self.image)
            .unwrap()
            .set_len(0)
            .unwrap();
        sh("losetup", &["-c", &self.device]);
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        unmount_tree(&self.owner_dir);
        // Only detach loops backed by our own image.
        if let Ok(out) = Command::new("losetup")
            .args(["-j", self.image.to_str().unwrap()])
            .output()
        {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some(dev) = line.split(':').next() {
                    let _ = Command::new("losetup").args(["-d", dev]).status();
                }
            }
        }
    }
}

/// A process that keeps `dir` busy (cwd there, a file open there); killed
/// on drop if still alive.
pub struct Holder(pub std::process::Child);

impl Holder {
    pub fn new(dir: &Path) -> Holder {
        let child = Command::new("sleep")
            .arg("300")
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn holder");
        std::thread::sleep(std::time::Duration::from_millis(100));
        Holder(child)
    }
    pub fn with_open_file(file: &Path) -> Holder {
        // tail keeps the file open; its cwd is elsewhere.
        let child = Command::new("tail")
            .arg("-f")
            .arg(file)
            .current_dir("/")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn tail");
        std::thread::sleep(std::time::Duration::from_millis(100));
        Holder(child)
    }
    pub fn is_dead(&mut self) -> bool {
        // try_wait reaps it once it is gone
        for _ in 0..50 {
            if self.0.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
