//! NCS (OES Cluster Services) compatibility: the load, unload and monitor
//! scripts of the "Xen_Template" and "XenLive_Template" resource templates,
//! as the OES guide prints them ("Virtual Machines as Cluster Resources"),
//! run against our Xen and Filesystem agents installed as a drop-in under
//! a temporary `$OCF_ROOT/resource.d/heartbeat/`.
//!
//! Outside an OES node three things are stood in for, and the scripts are
//! adapted only where they name paths of that node (see [`adapt`]):
//! - `/opt/novell/ncs/lib/ncsfuncs`: a small shell library (`NCSFUNCS`)
//!   whose `ocf_<action> <agent>` runs
//!   `$OCF_ROOT/resource.d/heartbeat/<agent> <action>`, `exit_on_error`
//!   exits with a failing command's code and `ignore_error` ignores it. The
//!   real library is not public; `ocf_migrate_to` prints its exit code
//!   because the XenLive unload script reads it with `RC=\`...\``;
//! - `vgchange` (LVM lives outside the guest here): a logging stub;
//! - `xl`: the test double of `tests/doubles/xl.rs`.
//!
//! The Xen_Template's filesystem is a real ext4 on a loop device (the
//! guide's default, ext3, becomes ext4: the fixture makes ext4), and the
//! guest's config file lives on it, as the template expects.

mod doubles;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use support::{is_mounted, sh, tempdir, LoopDevice};

const XEN: &str = env!("CARGO_BIN_EXE_Xen");
const FILESYSTEM: &str = env!("CARGO_BIN_EXE_Filesystem");

// ---- the scripts, as printed in the OES guide -------------------------
//
// Every script of a template is the same frame: the ncsfuncs library and
// OCF_ROOT, the template's settings, the steps of the action, and
// `# return status` / `exit`. The frame and each template's settings are
// written once here; the steps are the guide's, as printed.

/// A script of a template: `settings` (the template's, after OCF_ROOT),
/// `steps` (each a comment and its commands, separated by a blank line),
/// then `exit <exit>`.
fn script(settings: &str, steps: &[&str], exit: &str) -> String {
    format!(
        "#!/bin/bash\n\
         . /opt/novell/ncs/lib/ncsfuncs\n\
         export OCF_ROOT=/usr/lib/ocf/\n\
         {settings}\n\
         {}\n\
         # return status\n\
         exit {exit}\n",
        steps.join("\n")
    )
}

/// The settings of the Xen_Template: the domU, its volume, its filesystem.
const XEN_SETTINGS: &str = r#"
#define domU name
OCF_RESOURCE_INSTANCE=xen_vm_name

#define shared volume name
VOLUME_NAME=$OCF_RESOURCE_INSTANCE

#define the volume group name
CONTAINER_NAME=name
# define the device
MOUNT_DEV=/dev/$CONTAINER_NAME/$VOLUME_NAME

# filesystem settings
export OCF_RESKEY_device=$MOUNT_DEV
export OCF_RESKEY_directory=/mnt/$OCF_RESOURCE_INSTANCE
export OCF_RESKEY_fstype=ext3
#export OCF_RESKEY_options=

# service settings
export OCF_RESKEY_xmfile=$OCF_RESKEY_directory/$OCF_RESOURCE_INSTANCE
"#;

/// The settings of the XenLive_Template (the guest's config on OCFS2).
const LIVE_SETTINGS: &str = r#"OCF_RESOURCE_INSTANCE=xen_vm_name

# filesystem settings
export OCF_RESKEY_directory=/mnt/$OCF_RESOURCE_INSTANCE

# service settings
export OCF_RESKEY_xmfile=$OCF_RESKEY_directory/$OCF_RESOURCE_INSTANCE
"#;

fn xen_load() -> String {
    script(
        XEN_SETTINGS,
        &[
            "#activate the volume group\nexit_on_error vgchange -a ey $VOLGROUP_NAME\n",
            "# mount the file system\nexit_on_error ocf_start Filesystem\n",
            "# start the service\nexit_on_error ocf_start Xen\n",
        ],
        "0",
    )
}

fn xen_unload() -> String {
    script(
        XEN_SETTINGS,
        &[
            "# stop the service\nexit_on_error ocf_stop Xen\n",
            "# umount the file system\n\
             sleep 10 # if not using SMS for backup, please comment out this line\n\
             exit_on_error ocf_stop Filesystem\n",
            "#deactivate the volume group\nexit_on_error vgchange -a n $VOLGROUP_NAME\n",
        ],
        "0",
    )
}

fn xen_monitor() -> String {
    script(
        XEN_SETTINGS,
        &[
            "#check the logical volume\nexit_on_error status_lv $MOUNT_DEV\n",
            "# status of the file system\nexit_on_error ocf_status Filesystem\n",
            "# status of the service\nexit_on_error ocf_status Xen\n",
        ],
        "0",
    )
}

fn live_load() -> String {
    script(
        LIVE_SETTINGS,
        &["# start the service\n\
           if [ -n \"$NCS_TOFROM\" ]\n\
           then\n    exit_on_error ocf_migrate_from Xen\n\
           else\n    exit_on_error ocf_start Xen\n\
           fi\n"],
        "0",
    )
}

fn live_unload() -> String {
    script(
        &format!("{LIVE_SETTINGS}export OCF_RESKEY_CRM_meta_migrate_target=$NCS_TOFROM\n"),
        &["RC=0\n\
           # stop the service\n\
           if [ -n \"$NCS_TOFROM\" ]\n\
           then\n    RC=`ocf_migrate_to Xen`\n    if [ $RC -ne 0 ]\n    then\n        \
           ignore_error ocf_stop Xen\n    fi\n\
           else\n    ignore_error ocf_stop Xen\n\
           fi\n"],
        "$RC",
    )
}

fn live_monitor() -> String {
    script(
        LIVE_SETTINGS,
        &["# status of the service\nexit_on_error ocf_status Xen\n"],
        "0",
    )
}

/// Stand-in for `/opt/novell/ncs/lib/ncsfuncs` (the real one is not
/// public): just enough for the templates.
const NCSFUNCS: &str = r#"# ncsfuncs stand-in for tests/ncs.rs
ocf_run() {
    "$OCF_ROOT/resource.d/heartbeat/$1" "$2"
}
ocf_start() { ocf_run "$1" start; }
ocf_stop() { ocf_run "$1" stop; }
ocf_status() { ocf_run "$1" status; }
ocf_migrate_from() { ocf_run "$1" migrate_from; }
# The XenLive unload script reads the result with RC=`ocf_migrate_to Xen`.
ocf_migrate_to() {
    ocf_run "$1" migrate_to >&2
    echo $?
}
exit_on_error() {
    "$@"
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "exit_on_error: '$*' failed with $rc" >&2
        exit $rc
    fi
}
ignore_error() {
    "$@" || echo "ignore_error: '$*' failed with $?" >&2
    return 0
}
status_lv() { [ -b "$1" ]; }
"#;

// ---- the stage ---------------------------------------------------------

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// An OCF root with our agents, the ncsfuncs stand-in, stubs, two hosts
/// ([`doubles::XenHost`]).
struct Stage {
    dir: tempfile::TempDir,
    hosts: [doubles::XenHost; 2],
}

impl Stage {
    fn new(name: &str) -> Stage {
        let dir = tempdir(&format!("ncs-{name}"));
        let p = dir.path();
        let heartbeat = p.join("ocf/resource.d/heartbeat");
        std::fs::create_dir_all(&heartbeat).unwrap();
        for (agent, bin) in [("Xen", XEN), ("Filesystem", FILESYSTEM)] {
            std::fs::copy(bin, heartbeat.join(agent)).unwrap();
        }
        std::fs::create_dir_all(p.join("ncs/lib")).unwrap();
        std::fs::write(p.join("ncs/lib/ncsfuncs"), NCSFUNCS).unwrap();
        let hosts = ["node1", "node2"].map(|n| doubles::XenHost::node(p, n));
        write_exec(
            &hosts[0].bin.join("vgchange"),
            &format!(
                "#!/bin/sh\necho \"vgchange $*\" >> '{}'\n",
                p.join("vgchange.calls").display()
            ),
        );
        for n in ["node1", "node2"] {
            std::fs::create_dir_all(p.join("rsctmp").join(n)).unwrap();
        }
        std::fs::create_dir_all(p.join("mnt/xen_vm_name")).unwrap();
        Stage { dir, hosts }
    }

    fn host(&self, node: &str) -> &doubles::XenHost {
        match node {
            "node1" => &self.hosts[0],
            "node2" => &self.hosts[1],
            _ => panic!("no pretend host {node}"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The guide's script with this node's paths: the ncsfuncs stand-in,
    /// our OCF root, our mount root, `device`, ext4, and no 10 s sleep.
    fn adapt(&self, script: &str, device: Option<&str>) -> String {
        let p = self.path().display().to_string();
        let mut s = script
            .replace(
                ". /opt/novell/ncs/lib/ncsfuncs",
                &format!(". {p}/ncs/lib/ncsfuncs"),
            )
            .replace(
                "export OCF_ROOT=/usr/lib/ocf/",
                &format!("export OCF_ROOT={p}/ocf/"),
            )
            .replace(
                "=/mnt/$OCF_RESOURCE_INSTANCE",
                &format!("={p}/mnt/$OCF_RESOURCE_INSTANCE"),
            )
            .replace("OCF_RESKEY_fstype=ext3", "OCF_RESKEY_fstype=ext4")
            .replace("sleep 10 #", "sleep 0 #");
        if let Some(d) = device {
            s = s.replace(
                "MOUNT_DEV=/dev/$CONTAINER_NAME/$VOLUME_NAME",
                &format!("MOUNT_DEV={d}"),
            );
        }
        s
    }

    /// Run one adapted script as NCS would on `node`.
    fn run(&self, node: &str, script: &str, device: Option<&str>, tofrom: Option<&str>) -> Output {
        let file = self.path().join("script");
        write_exec(&file, &self.adapt(script, device));
        let mut c = Command::new("/bin/bash");
        c.env_clear()
            .arg(&file)
            .env("PATH", &self.host(node).path)
            .env("XL_DOUBLE_STATE", &self.host(node).state)
            .env("HA_RSCTMP", self.path().join("rsctmp").join(node))
            .env("HA_LOGFACILITY", "none");
        if let Some(t) = tofrom {
            c.env("NCS_TOFROM", t);
        }
        c.output().unwrap()
    }

    fn domains(&self, node: &str) -> Vec<String> {
        self.host(node).domains()
    }

    fn calls(&self, node: &str) -> String {
        self.host(node).calls().join("\n")
    }
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const GUEST: &str = "name = \"xen_vm_name\"\nmemory = 512\nvcpus = 1\n";

#[test]
fn xen_template_load_monitor_unload() {
    let stage = Stage::new("xen");
    let dev = LoopDevice::new(stage.path(), 64, "ext4");
    // The guest's config file lives on the shared volume.
    let staging = stage.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    sh("mount", &[&dev.device, staging.to_str().unwrap()]);
    std::fs::write(staging.join("xen_vm_name"), GUEST).unwrap();
    sh("umount", &[staging.to_str().unwrap()]);
    let mnt = stage.path().join("mnt/xen_vm_name");
    let d = Some(dev.device.as_str());

    ok(&stage.run("node1", &xen_load(), d, None), "load");
    assert!(is_mounted(&mnt));
    assert_eq!(stage.domains("node1"), vec!["xen_vm_name"]);
    // The name came from the config file on the mounted volume.
    assert!(stage.calls("node1").contains(&format!(
        "[\"create\", \"{}\", \"name=\\\"xen_vm_name\\\"\"]",
        mnt.join("xen_vm_name").display()
    )));
    // VOLGROUP_NAME is never set by the template (it sets CONTAINER_NAME).
    assert_eq!(
        std::fs::read_to_string(stage.path().join("vgchange.calls")).unwrap(),
        "vgchange -a ey\n"
    );
    // Loading again is harmless.
    ok(&stage.run("node1", &xen_load(), d, None), "second load");
    assert_eq!(stage.domains("node1"), vec!["xen_vm_name"]);

    ok(&stage.run("node1", &xen_monitor(), d, None), "monitor");

    // The guest dies: the monitor script fails.
    stage.host("node1").xl(&["destroy", "xen_vm_name"]);
    let m = stage.run("node1", &xen_monitor(), d, None);
    assert_eq!(m.status.code(), Some(7), "{m:?}");
    ok(&stage.run("node1", &xen_load(), d, None), "reload");

    ok(&stage.run("node1", &xen_unload(), d, None), "unload");
    assert!(stage.domains("node1").is_empty());
    assert!(!is_mounted(&mnt));
    assert!(std::fs::read_to_string(stage.path().join("vgchange.calls"))
        .unwrap()
        .ends_with("vgchange -a n\n"));
    // Unloading again is harmless.
    ok(&stage.run("node1", &xen_unload(), d, None), "second unload");
    // With the volume gone the monitor fails at the Filesystem step.
    let m = stage.run("node1", &xen_monitor(), d, None);
    assert_eq!(m.status.code(), Some(7), "{m:?}");
}

#[test]
fn xenlive_template_live_migration() {
    let stage = Stage::new("live");
    // OCFS2 in the guide: the same config path on both nodes.
    let mnt = stage.path().join("mnt/xen_vm_name");
    std::fs::write(mnt.join("xen_vm_name"), GUEST).unwrap();

    ok(
        &stage.run("node1", &live_load(), None, None),
        "load on node1",
    );
    assert_eq!(stage.domains("node1"), vec!["xen_vm_name"]);
    ok(
        &stage.run("node1", &live_monitor(), None, None),
        "monitor on node1",
    );

    // Manual migration node1 -> node2: unload on the source with
    // NCS_TOFROM=node2, then load on the target with NCS_TOFROM=node1.
    ok(
        &stage.run("node1", &live_unload(), None, Some("node2")),
        "unload node1",
    );
    assert!(stage
        .calls("node1")
        .contains("[\"migrate\", \"xen_vm_name\", \"node2\"]"));
    assert!(!stage.calls("node1").contains("[\"shutdown\""));
    ok(
        &stage.run("node2", &live_load(), None, Some("node1")),
        "load node2",
    );
    assert!(stage.domains("node1").is_empty());
    assert_eq!(stage.domains("node2"), vec!["xen_vm_name"]);
    ok(
        &stage.run("node2", &live_monitor(), None, None),
        "monitor on node2",
    );
    let m = stage.run("node1", &live_monitor(), None, None);
    assert_eq!(m.status.code(), Some(7), "{m:?}");

    // A failed live migration (unknown target) falls back to a stop, and
    // the unload reports the migration's code.
    let u = stage.run("node2", &live_unload(), None, Some("nowhere"));
    assert_eq!(u.status.code(), Some(1), "{u:?}");
    assert!(stage.domains("node2").is_empty());

    // Plain failover: load without NCS_TOFROM starts, unload stops.
    ok(
        &stage.run("node1", &live_load(), None, None),
        "failover load",
    );
    ok(
        &stage.run("node1", &live_unload(), None, None),
        "failover unload",
    );
    assert!(stage.domains("node1").is_empty());
}
