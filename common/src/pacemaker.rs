//! Pacemaker's command-line tools (`crm_resource`, `crm_attribute`), called
//! from one place.
//!
//! Agents reach the CIB only through these tools: libcib is a C library
//! without a stable API, and a statically linked agent cannot link it. Each
//! call forks a tool that connects to the CIB manager and asks it: about as
//! much as the rest of a monitor together. So the heartbeat agents' habit of
//! asking for the current value and setting it again on every monitor (Xen,
//! VirtualDomain: three to six forks) is replaced here by [`Utilization`]:
//! what this node last wrote is remembered in a [`Record`], and a monitor
//! forks nothing while the values stay the same. The record goes with the
//! resource (stop, migration: [`Utilization::forget`]), so the first
//! monitor after a start sets everything again, and a failed round is not
//! recorded, so the next monitor tries again.
//!
//! Where no CIB can be reached (no cluster runs on this node: ocf-tester, an
//! admin's test run, a node with the cluster stopped), [`Utilization`] forks
//! nothing at all: crm_resource would only fail with "Not connected" after
//! ~10 ms, and warn on every start and monitor. [`cib_reachable`] tells,
//! from the environment and one read of `/proc/net/unix`, the way the
//! tools themselves pick a CIB.
//!
//! The one-shot calls ([`utilization_get`], [`utilization_set`],
//! [`utilization_delete`], [`node_attribute`]) use heartbeat's arguments, so
//! the CIB sees the same requests as from the shell agents.

use std::path::Path;

use crate::command::{Cmd, Tools};
use crate::context::Context;
use crate::deadline::Deadline;
use crate::env::Env;
use crate::state::Record;
use crate::status::Failure;

/// A resource's utilization attributes, kept in step with the CIB through
/// `crm_resource`, writing only what changed since this node last wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Utilization {
    record: Record,
}

impl Utilization {
    /// The utilization of `instance` of the agent `agent` (the record
    /// `AGENT.INSTANCE.utilization` under `HA_RSCTMP`).
    pub fn new(agent: &str, instance: &str) -> Utilization {
        Utilization {
            record: Record::new(&[agent, instance, "utilization"]),
        }
    }

    /// Make the resource's utilization `want`: each attribute set to its
    /// value, or deleted for `None`; attributes not named are left alone.
    /// Nothing runs when this node last wrote exactly this. Best effort: a
    /// failure is a warning (the first one ends the round: without a CIB
    /// the others fail alike) and the next call tries again.
    pub fn update(&self, ctx: &Context, want: &[(&str, Option<String>)], dl: &Deadline) {
        if want.is_empty() {
            return;
        }
        let Some(instance) = ctx.env.non_empty("OCF_RESOURCE_INSTANCE") else {
            return;
        };
        let text: String = want
            .iter()
            .map(|(name, value)| format!("{name}={}\n", value.as_deref().unwrap_or("-")))
            .collect();
        if self.record.read(&ctx.env).as_deref() == Some(text.as_str()) {
            return;
        }
        if !cib_reachable(&ctx.env) {
            crate::debug!(
                "no CIB here (no cluster running, CIB_file/CIB_shadow/CIB_port unset): utilization not updated"
            );
            return;
        }
        let tools = ctx.tools();
        let Some(crm) = tools.find("crm_resource") else {
            crate::debug!("crm_resource not found; utilization not updated");
            return;
        };
        for (name, value) in want {
            let cmd = Cmd::new(&crm).path(tools.path());
            let (verb, cmd) = match value {
                Some(v) => ("set", set_args(cmd, instance, name, v)),
                None => ("unset", delete_args(cmd, instance, name)),
            };
            match cmd.run(dl) {
                Ok(o) if o.success() => {}
                Ok(o) => {
                    crate::warn!(
                        "crm_resource failed to {verb} utilization attribute {name}: {}",
                        o.message()
                    );
                    return;
                }
                Err(e) => {
                    crate::warn!("{e}");
                    return;
                }
            }
        }
        if let Err(e) = self.record.write(&ctx.env, &text) {
            crate::debug!("{}", e.reason);
        }
    }

    /// The resource left this node (or is about to start): the next
    /// [`Utilization::update`] writes everything again.
    pub fn forget(&self, env: &Env) {
        self.record.clear(env);
    }
}

/// Whether Pacemaker's tools could reach a CIB from here, decided as they
/// decide where it is (libcib's `cib_new`): `CIB_shadow` or `CIB_file`
/// name a file, `CIB_port` a CIB manager over TCP; else it is the local CIB
/// manager's IPC service `cib_rw`, served by pacemaker-based on a cluster
/// node and by pacemaker-remoted's proxy on a remote node. libqb listens on
/// it as the abstract socket `cib_rw` (as a file `.../cib_rw` with
/// `/etc/libqb/force-filesystem-sockets`), listed in `/proc/net/unix` of
/// this network namespace, the one crm_resource would connect from.
///
/// Not the environment Pacemaker gives agents (`OCF_RESKEY_CRM_meta_*`):
/// it says who called, not whether a CIB answers (a cluster being stopped
/// still runs its agents' stops; an admin's run on a live node may set the
/// utilization). Not `/var/lib/pacemaker/cib/cib.xml`: it stays when the
/// cluster stops, and remote nodes have none.
pub fn cib_reachable(env: &Env) -> bool {
    if ["CIB_shadow", "CIB_file", "CIB_port"]
        .iter()
        .any(|k| env.non_empty(k).is_some())
    {
        return true;
    }
    cib_listening_in(Path::new("/proc/net/unix"))
}

/// Whether the `/proc/net/unix` table at `table` lists the `cib_rw` socket.
fn cib_listening_in(table: &Path) -> bool {
    // unreadable: assume a CIB (crm_resource then tells)
    let Ok(text) = std::fs::read_to_string(table) else {
        return true;
    };
    text.lines().skip(1).any(|line| {
        // Num RefCount Protocol Flags Type St Inode [Path]; the kernel
        // shows NUL bytes as '@', and libqb binds the whole sun_path:
        // "@cib_rw@@@@..."
        let path = line.split_whitespace().nth(7).unwrap_or("");
        let path = path.trim_end_matches('@');
        path == "@cib_rw" || path.ends_with("/cib_rw")
    })
}

fn set_args(cmd: Cmd, instance: &str, name: &str, value: &str) -> Cmd {
    cmd.args(["-r", instance, "-z", "-p", name, "-v", value])
}

fn delete_args(cmd: Cmd, instance: &str, name: &str) -> Cmd {
    cmd.arg(format!("--resource={instance}"))
        .arg("--utilization")
        .arg(format!("--delete-parameter={name}"))
}

/// Run `cmd`; its stdout when it succeeded, else a failure naming `what`.
fn run(cmd: Cmd, what: &str, dl: &Deadline) -> Result<String, Failure> {
    let out = cmd.run(dl)?;
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(Failure::generic(format!("{what}: {}", out.message())))
    }
}

/// The utilization attribute `name` of `instance`
/// (`crm_resource -Q -r INSTANCE -z -g NAME`); a missing attribute, like an
/// unreachable CIB, is a failure (crm_resource exits non-zero for both).
pub fn utilization_get(
    tools: &Tools,
    instance: &str,
    name: &str,
    dl: &Deadline,
) -> Result<String, Failure> {
    let cmd = tools
        .command("crm_resource")?
        .args(["-Q", "-r", instance, "-z", "-g", name]);
    let out = run(cmd, &format!("utilization attribute {name}"), dl)?;
    Ok(out.trim().to_string())
}

/// Set the utilization attribute `name` of `instance` to `value`
/// (`crm_resource -r INSTANCE -z -p NAME -v VALUE`), unconditionally; see
/// [`Utilization`] for setting only what changed.
pub fn utilization_set(
    tools: &Tools,
    instance: &str,
    name: &str,
    value: &str,
    dl: &Deadline,
) -> Result<(), Failure> {
    let cmd = set_args(tools.command("crm_resource")?, instance, name, value);
    run(cmd, &format!("setting utilization attribute {name}"), dl).map(|_| ())
}

/// Delete the utilization attribute `name` of `instance`
/// (`crm_resource --resource=INSTANCE --utilization --delete-parameter=NAME`).
pub fn utilization_delete(
    tools: &Tools,
    instance: &str,
    name: &str,
    dl: &Deadline,
) -> Result<(), Failure> {
    let cmd = delete_args(tools.command("crm_resource")?, instance, name);
    run(cmd, &format!("deleting utilization attribute {name}"), dl).map(|_| ())
}

/// The node attribute `name` of `node`
/// (`crm_attribute --type nodes --node NODE -n NAME -G -q`): None when it
/// is not set (empty, or crm_attribute's `(null)`).
pub fn node_attribute(
    tools: &Tools,
    node: &str,
    name: &str,
    dl: &Deadline,
) -> Result<Option<String>, Failure> {
    let cmd = tools
        .command("crm_attribute")?
        .args(["--type", "nodes", "--node", node, "-n", name, "-G", "-q"]);
    let out = run(cmd, &format!("node attribute {name} of {node}"), dl)?;
    let v = out.trim();
    Ok((!v.is_empty() && v != "(null)").then(|| v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Action;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    /// A TEST DOUBLE of crm_resource and crm_attribute (no CIB runs here):
    /// logs its arguments, prints the file `out`, fails while `fail` exists.
    struct Doubles {
        dir: std::path::PathBuf,
    }

    impl Doubles {
        fn new(name: &str) -> Doubles {
            let dir = std::env::temp_dir().join(format!("ocf-pcmk-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("bin")).unwrap();
            for tool in ["crm_resource", "crm_attribute"] {
                let script = format!(
                    "#!/bin/sh\necho \"{tool} $*\" >> '{d}/log'\ncat '{d}/out' 2>/dev/null\n\
                     [ -e '{d}/fail' ] && {{ echo 'not connected' >&2; exit 102; }}\nexit 0\n",
                    d = dir.display()
                );
                let p = dir.join("bin").join(tool);
                std::fs::write(&p, script).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            Doubles { dir }
        }
        fn ctx(&self) -> Context {
            let env = Env::from_pairs([
                (
                    "PATH",
                    format!("{}:/usr/bin:/bin", self.dir.join("bin").display()),
                ),
                ("HA_RSCTMP", self.dir.join("rsc").display().to_string()),
                ("OCF_RESOURCE_INSTANCE", "r1".into()),
                ("HA_LOGFACILITY", "none".into()),
                // the CIB a file: as a cluster for the tools' doubles
                ("CIB_file", self.dir.join("cib.xml").display().to_string()),
            ]);
            Context::from_env(Action::Monitor, "X", env).unwrap()
        }
        fn output(&self, text: &str) {
            std::fs::write(self.dir.join("out"), text).unwrap();
        }
        fn take(&self) -> Vec<String> {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            let _ = std::fs::remove_file(self.dir.join("log"));
            log.lines().map(str::to_string).collect()
        }
        fn failing(&self, yes: bool) {
            if yes {
                std::fs::write(self.dir.join("fail"), "").unwrap();
            } else {
                let _ = std::fs::remove_file(self.dir.join("fail"));
            }
        }
    }

    impl Drop for Doubles {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn utilization_is_written_only_when_it_changes() {
        let d = Doubles::new("util");
        let ctx = d.ctx();
        let dl = Deadline::after(Duration::from_secs(10));
        let u = Utilization::new("X", "r1");
        let want = [("cpu", Some("2".to_string())), ("hv_memory", None)];
        u.update(&ctx, &want, &dl);
        assert_eq!(
            d.take(),
            [
                "crm_resource -r r1 -z -p cpu -v 2",
                "crm_resource --resource=r1 --utilization --delete-parameter=hv_memory"
            ]
        );
        u.update(&ctx, &want, &dl);
        assert_eq!(d.take(), Vec::<String>::new(), "unchanged: nothing runs");
        // a failure ends the round and is not recorded: the next one retries
        d.failing(true);
        let want = [("cpu", Some("1".to_string())), ("hv_memory", None)];
        u.update(&ctx, &want, &dl);
        assert_eq!(d.take(), ["crm_resource -r r1 -z -p cpu -v 1"]);
        d.failing(false);
        u.update(&ctx, &want, &dl);
        assert_eq!(d.take().len(), 2);
        u.forget(&ctx.env);
        u.update(&ctx, &want, &dl);
        assert_eq!(d.take().len(), 2, "forgotten: written again");
    }

    #[test]
    fn without_a_cib_nothing_runs() {
        let d = Doubles::new("nocib");
        let mut ctx = d.ctx();
        ctx.env.remove("CIB_file");
        let table = d.dir.join("unix");
        let head = "Num       RefCount Protocol Flags    Type St Inode Path\n";
        let other = "0000000000000000: 00000002 00000000 00010000 0001 01 21 @cib_rwx@@@\n";
        std::fs::write(&table, format!("{head}{other}")).unwrap();
        assert!(!cib_listening_in(&table));
        let padded = format!("@cib_rw{}", "@".repeat(100));
        for cib in ["@cib_rw", &padded, "/run/cib_rw"] {
            let line = format!("0000000000000000: 00000002 00000000 00010000 0001 01 22 {cib}\n");
            std::fs::write(&table, format!("{head}{other}{line}")).unwrap();
            assert!(cib_listening_in(&table), "{cib}");
        }
        assert!(cib_listening_in(&d.dir.join("no-such-table")));
        if cib_reachable(&ctx.env) {
            println!("a CIB is reachable on this machine: the no-CIB run is skipped");
            return;
        }
        let dl = Deadline::after(Duration::from_secs(10));
        let u = Utilization::new("X", "r1");
        u.update(&ctx, &[("cpu", Some("2".to_string()))], &dl);
        assert_eq!(d.take(), Vec::<String>::new());
    }

    #[test]
    fn one_shot_calls_use_heartbeats_arguments() {
        let d = Doubles::new("once");
        let dl = Deadline::after(Duration::from_secs(10));
        let tools = d.ctx().tools();
        d.output("10.0.0.2\n");
        assert_eq!(
            node_attribute(&tools, "n2", "ip", &dl).unwrap().as_deref(),
            Some("10.0.0.2")
        );
        d.output("(null)");
        assert_eq!(node_attribute(&tools, "n2", "ip", &dl).unwrap(), None);
        d.output("");
        utilization_set(&tools, "r1", "cpu", "2", &dl).unwrap();
        utilization_delete(&tools, "r1", "cpu", &dl).unwrap();
        assert_eq!(
            d.take(),
            [
                "crm_attribute --type nodes --node n2 -n ip -G -q",
                "crm_attribute --type nodes --node n2 -n ip -G -q",
                "crm_resource -r r1 -z -p cpu -v 2",
                "crm_resource --resource=r1 --utilization --delete-parameter=cpu"
            ]
        );
        d.failing(true);
        let e = utilization_get(&tools, "r1", "cpu", &dl).unwrap_err();
        assert!(e.reason.contains("not connected"), "{}", e.reason);
    }
}
