//! Hostile input and faults for Xen and the LVM agents (issue 13), as
//! processes. Xen runs against the `xl` TEST DOUBLE (`tests/doubles/xl.rs`:
//! Xen cannot run here) as in `tests/xen.rs`; crm_resource is a TEST
//! DOUBLE recording its argv (no cluster runs here); LVM refusals run on
//! the host with an `lvm` wrapper recording argv (a refusal must come
//! before any tool runs). What needs device-mapper is in `tests/lvm.rs`'s
//! guest suite.

mod doubles;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{exit_reasons, rc, tempdir, Agent};

const XEN: &str = env!("CARGO_BIN_EXE_Xen");

/// One pretend Xen host ([`doubles::XenHost`]: the double's state, a
/// `bin/` first in PATH with `xl`) with the recording doubles beside `xl`,
/// and the agent's `HA_RSCTMP`.
struct XenLab {
    dir: tempfile::TempDir,
    xen: doubles::XenHost,
}

impl XenLab {
    fn new(name: &str) -> XenLab {
        let dir = tempdir(&format!("hxl-{name}"));
        let xen = doubles::XenHost::new(dir.path());
        XenLab { dir, xen }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self, file: &str, text: &str) -> PathBuf {
        let p = self.path().join(file);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn agent(&self, xmfile: &Path) -> Agent {
        Agent::new(XEN, &self.path().join("node"))
            .env("PATH", &self.xen.path)
            .env("XL_DOUBLE_STATE", &self.xen.state)
            .env("OCF_RESOURCE_INSTANCE", "vm1")
            .env("OCF_RESKEY_CRM_meta_timeout", "20000")
            .param("xmfile", xmfile)
    }

    fn flag(&self, name: &str, on: bool) {
        if on {
            self.xen.set_flag(name, "");
        } else {
            self.xen.clear_flag(name);
        }
    }

    /// The xl calls since the last `take_calls`, one `{:?}` line each.
    fn take_calls(&self) -> Vec<String> {
        self.xen.take_calls()
    }

    /// Run the double as an admin or the guest would.
    fn xl(&self, args: &[&str]) -> bool {
        self.xen.xl(args).status.success()
    }

    /// A TEST DOUBLE of `tool` in `bin/`: appends its argv (each in
    /// brackets) as one line to `<tool>.calls` and succeeds.
    fn recording_double(&self, tool: &str) -> PathBuf {
        let calls = self.path().join(format!("{tool}.calls"));
        let script = self.xen.bin.join(tool);
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n# TEST DOUBLE of {tool} (tests/hostile_xen_lvm.rs)\n\
                 for a in \"$@\"; do printf '[%s]' \"$a\"; done >>'{c}'\necho >>'{c}'\nexit 0\n",
                c = calls.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        calls
    }
}

fn take(calls: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(calls).unwrap_or_default();
    let _ = std::fs::remove_file(calls);
    text.lines().map(str::to_string).collect()
}

/// Run `action`, killing the agent if it has not returned after `limit`
/// (a hang guard, so a regression fails instead of blocking the suite):
/// `Some((exit code, stderr))`, `None` when it had to be killed.
fn run_guarded(agent: &Agent, action: &str, limit: Duration) -> Option<(i32, String)> {
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = agent
        .command(&[action])
        .stdout(Stdio::null())
        .stderr(err.reopen().unwrap())
        .spawn()
        .unwrap();
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let stderr = std::fs::read_to_string(err.path()).unwrap_or_default();
            return Some((st.code().unwrap_or(-1), stderr));
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[track_caller]
fn expect_guarded(agent: &Agent, action: &str, want: i32) -> String {
    let (code, stderr) = run_guarded(agent, action, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("Xen {action} hung (killed after 60 s)"));
    assert_eq!(code, want, "Xen {action}: {stderr}");
    stderr
}

// ---------------------------------------------------------------------------
// Xen
// ---------------------------------------------------------------------------

/// Issue 15 part 4: the monitor sets utilization through ocf::pacemaker,
/// forking crm_resource only when a value changed (heartbeat: a get and a
/// set per attribute on every monitor).
#[test]
fn xen_utilization_forks_crm_resource_only_on_change() {
    let lab = XenLab::new("util");
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\nmemory = 256\nvcpus = 2\n");
    let crm = lab.recording_double("crm_resource");
    // a CIB the tools can reach (crm_resource's CIB_file)
    let a = lab
        .agent(&cfg)
        .env("CIB_file", lab.path().join("cib.xml"))
        .param("autoset_utilization_cpu", "true")
        .param("autoset_utilization_hv_memory", "true")
        .recurring();
    a.expect("start", rc::SUCCESS);
    take(&crm);
    a.expect("monitor", rc::SUCCESS);
    assert_eq!(
        take(&crm),
        vec![
            "[-r][vm1][-z][-p][cpu][-v][2]".to_string(),
            "[-r][vm1][-z][-p][hv_memory][-v][256]".to_string(),
        ]
    );
    a.expect("monitor", rc::SUCCESS);
    assert_eq!(
        take(&crm),
        Vec::<String>::new(),
        "unchanged: no crm_resource"
    );
    // the guest gets more memory: only then crm_resource runs again
    assert!(lab.xl(&["mem-set", "vm1", "512"]));
    a.expect("monitor", rc::SUCCESS);
    assert_eq!(
        take(&crm),
        vec![
            "[-r][vm1][-z][-p][cpu][-v][2]".to_string(),
            "[-r][vm1][-z][-p][hv_memory][-v][512]".to_string(),
        ]
    );
    // stopped and started again: written again
    a.expect("stop", rc::SUCCESS);
    a.expect("start", rc::SUCCESS);
    take(&crm);
    a.expect("monitor", rc::SUCCESS);
    assert_eq!(take(&crm).len(), 2, "after a restart: set again");
    a.expect("stop", rc::SUCCESS);
}

/// Issue 13 part 4: `xmfile` replaced by a FIFO (a hung network
/// filesystem behaves alike) or pointing at /dev/zero: monitor and stop
/// answer by the deadline, stop stops by the remembered name, and a
/// monitor never says "not running" while the guest may run.
#[test]
fn xen_xmfile_fifo_or_device_is_read_bounded() {
    let lab = XenLab::new("fifo");
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\n");
    let a = lab.agent(&cfg);
    a.expect("start", rc::SUCCESS);
    std::fs::remove_file(&cfg).unwrap();
    let st = Command::new("mkfifo").arg(&cfg).status().unwrap();
    assert!(st.success());
    expect_guarded(&a.clone().recurring(), "monitor", rc::SUCCESS);
    expect_guarded(&a, "stop", rc::SUCCESS);
    assert!(
        !lab.xl(&["list", "vm1"]),
        "stop stopped vm1 by its recorded name"
    );

    // Nothing recorded: the name is unknown, an error and not "stopped"
    // (a probe included).
    let fresh = lab.agent(&cfg).env("HA_RSCTMP", lab.path().join("fresh"));
    let stderr = expect_guarded(&fresh, "monitor", rc::ERR_GENERIC);
    let reasons = exit_reasons(&stderr);
    assert!(
        reasons.len() == 1 && reasons[0].contains("FIFO"),
        "{stderr}"
    );
    let zero = lab
        .agent(Path::new("/dev/zero"))
        .env("HA_RSCTMP", lab.path().join("zero"));
    let stderr = expect_guarded(&zero, "monitor", rc::ERR_GENERIC);
    assert!(
        stderr.contains("/dev/zero is a character device"),
        "{stderr}"
    );
    expect_guarded(&zero, "stop", rc::ERR_GENERIC);
}

/// Issue 13 part 6: the guest died (no stop ran, its name is still
/// recorded) and `xmfile`'s name line was edited into one that cannot be
/// parsed: start refuses (6, one line) instead of starting the old name.
#[test]
fn xen_start_refuses_an_unparseable_name_instead_of_the_recorded_one() {
    let lab = XenLab::new("name");
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\n");
    let a = lab.agent(&cfg);
    a.expect("start", rc::SUCCESS);
    assert!(lab.xl(&["destroy", "vm1"]));
    std::fs::write(&cfg, "name = \"vm\" + \"2\"\n").unwrap();
    lab.take_calls();
    let stderr = support::expect(&a, "start", rc::ERR_CONFIGURED);
    let reasons = exit_reasons(&stderr);
    assert!(
        reasons.len() == 1 && reasons[0].contains("cannot read the name from"),
        "{stderr}"
    );
    assert!(
        !lab.take_calls().iter().any(|c| c.contains("\"create\"")),
        "no xl create"
    );
    // stop still works by the recorded name
    a.expect("stop", rc::SUCCESS);
}

/// Issue 13 part 7: `status` (the NCS `ocf_status` path) of a dead guest
/// answers from one `xl list` (xl's "invalid domain identifier" is
/// definitive; heartbeat's status does not retry either); an xl failure
/// that may pass is an error, never "not running".
#[test]
fn xen_status_of_a_dead_guest_asks_xl_once() {
    let lab = XenLab::new("status");
    let cfg = lab.config("vm1.cfg", "name = \"vm1\"\n");
    let a = lab.agent(&cfg);
    a.expect("start", rc::SUCCESS);
    a.expect("status", rc::SUCCESS);
    assert!(lab.xl(&["destroy", "vm1"]));
    lab.take_calls();
    a.expect("status", rc::NOT_RUNNING);
    assert_eq!(
        lab.take_calls(),
        vec![format!("{:?}", ["list", "vm1"])],
        "one xl list"
    );

    // xl cannot reach xenstore: the guest may run
    assert!(lab.xl(&["create", cfg.to_str().unwrap()]));
    lab.flag("fail-list", true);
    let short = a.clone().env("OCF_RESKEY_CRM_meta_timeout", "3000");
    let stderr = support::expect(&short, "status", rc::ERR_GENERIC);
    assert!(
        stderr.contains("cannot tell whether domain vm1 runs"),
        "{stderr}"
    );
    short.clone().recurring().expect("monitor", rc::ERR_GENERIC);
    lab.flag("fail-list", false);
    a.expect("stop", rc::SUCCESS);
}

// ---------------------------------------------------------------------------
// LVM: no value becomes an option of lvm (issue 13 part 3)
// ---------------------------------------------------------------------------

const LVM_ACTIVATE: &str = env!("CARGO_BIN_EXE_LVM-activate");
const LVM_LEGACY: &str = env!("CARGO_BIN_EXE_LVM");
const LVM_PERSONA: &str = env!("CARGO_BIN_EXE_lvm");

/// A PATH wrapper around the real `lvm`: records its argv, one line a
/// call, each argument in brackets, then runs `/sbin/lvm` with it (a
/// refused name must never get there).
struct LvmWrapper {
    dir: tempfile::TempDir,
}

impl LvmWrapper {
    fn new(name: &str) -> LvmWrapper {
        let dir = tempdir(&format!("hlvm-{name}"));
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let calls = dir.path().join("lvm.calls");
        let script = bin.join("lvm");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n# PATH wrapper of lvm (tests/hostile_xen_lvm.rs): records argv\n\
                 for a in \"$@\"; do printf '[%s]' \"$a\"; done >>'{c}'\necho >>'{c}'\n\
                 exec /sbin/lvm \"$@\"\n",
                c = calls.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        LvmWrapper { dir }
    }

    fn agent(&self, bin: &str) -> Agent {
        Agent::new(bin, self.dir.path())
            .env(
                "PATH",
                format!(
                    "{}:/usr/sbin:/usr/bin:/sbin:/bin",
                    self.dir.path().join("bin").display()
                ),
            )
            .env("OCF_RESOURCE_INSTANCE", "hostile")
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("lvm.calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Option-shaped and otherwise invalid VG/LV names are refused by LVM's
/// name rules (OCF_ERR_INSTALLED as heartbeat; stop 0 and probe 7, since
/// no volume of that name can exist) before lvm runs; no value lands in an
/// option position of any lvm call.
#[test]
fn lvm_names_never_become_lvm_options() {
    let hostile = ["--config=x", "-an", "-", "..", "a b", "vg/lv", "$(id)"];
    for value in hostile {
        let w = LvmWrapper::new("names");
        let legacy = w.agent(LVM_LEGACY).param("volgrpname", value);
        let act = w
            .agent(LVM_ACTIVATE)
            .param("vg_access_mode", "system_id")
            .param("vgname", value);
        let act_lv = w
            .agent(LVM_ACTIVATE)
            .param("vg_access_mode", "system_id")
            .param("vgname", "vg")
            .param("lvname", value);
        for (what, a) in [
            ("LVM", &legacy),
            ("LVM-activate", &act),
            ("LVM-activate lv", &act_lv),
        ] {
            let stderr = support::expect(a, "start", rc::ERR_INSTALLED);
            let reasons = exit_reasons(&stderr);
            assert!(
                reasons.len() == 1 && reasons[0].contains("not a valid LVM name"),
                "{what} {value}: {stderr}"
            );
            a.expect("validate-all", rc::ERR_INSTALLED);
            a.expect("monitor", rc::NOT_RUNNING);
            a.expect("stop", rc::SUCCESS);
        }
        // rgmanager's lvm persona: refused when the parameters are read
        let persona = support::rgmanager::agent(LVM_PERSONA, "lvm", "hostile", 30)
            .env(
                "PATH",
                format!(
                    "{}:/usr/sbin:/usr/bin:/sbin:/bin",
                    w.dir.path().join("bin").display()
                ),
            )
            .param("name", "hostile")
            .param("vg_name", value);
        persona.expect("start", rc::ERR_CONFIGURED);
        persona
            .clone()
            .param("vg_name", "vg")
            .param("lv_name", value)
            .expect("start", rc::ERR_CONFIGURED);
        assert_eq!(w.calls(), Vec::<String>::new(), "{value}: lvm never ran");
    }
}

/// Valid names reach lvm only after `--`: every call that names the VG
/// puts it behind the end of options.
#[test]
fn lvm_operands_follow_double_dash() {
    let w = LvmWrapper::new("dd");
    // a VG that does not exist here: start reads it with lvs/vgs and fails
    let vg = "ra-rs-hostile-novg";
    let a = w
        .agent(LVM_ACTIVATE)
        .param("vg_access_mode", "system_id")
        .param("vgname", vg);
    let (code, _, _) = support::run(&a, "start");
    assert_ne!(code, rc::SUCCESS);
    let legacy = w.agent(LVM_LEGACY).param("volgrpname", vg);
    let (code, _, _) = support::run(&legacy, "start");
    assert_ne!(code, rc::SUCCESS);
    let calls = w.calls();
    let naming: Vec<&String> = calls.iter().filter(|c| c.contains(vg)).collect();
    assert!(!naming.is_empty(), "{calls:?}");
    for c in naming {
        assert!(
            c.contains(&format!("[--][{vg}]")),
            "operand without --: {c}"
        );
    }
}

/// Issue 14: LVM-activate refuses to start without `vg_access_mode`, so its
/// meta-data says it is required; stop and probe still answer without it,
/// as heartbeat's (stop never fails for it).
#[test]
fn lvm_activate_vg_access_mode_is_required_but_stop_runs_without_it() {
    let w = LvmWrapper::new("mode");
    let out = Command::new(LVM_ACTIVATE)
        .arg("meta-data")
        .output()
        .unwrap();
    let xml = String::from_utf8_lossy(&out.stdout);
    let line = xml
        .lines()
        .find(|l| l.contains("name=\"vg_access_mode\""))
        .unwrap();
    assert!(line.contains("required=\"1\""), "{line}");
    let a = w.agent(LVM_ACTIVATE).param("vgname", "ra-rs-hostile-novg");
    let stderr = support::expect(&a, "start", rc::ERR_CONFIGURED);
    assert!(stderr.contains("vg_access_mode"), "{stderr}");
    a.expect("monitor", rc::NOT_RUNNING);
    a.expect("stop", rc::SUCCESS);
}
