//! What the rgmanager personas (`fs`, `lvm`, `vm`: agents installed in
//! place of rgmanager's `fs.sh`, `lvm.sh`, `vm.sh`) share besides their
//! meta-data dialect ([`Special::rgmanager`](crate::Special::rgmanager)).
//!
//! A persona wraps an agent and answers rgmanager's way: `status` at
//! rgmanager's depths mapped onto the agent's ([`at_depth`]), the extra
//! actions rgmanager calls (`recover`, `reload`, `reconfig`), and
//! `self_fence` after a failed stop ([`fence_on_failure`]).

use crate::agent::ResourceAgent;
use crate::context::Context;
use crate::status::{Failure, OcfResult, OcfStatus};

/// The context of `ctx` with its check depth replaced: rgmanager's status
/// depth mapped onto the depths the wrapped agent knows, or a fixed depth
/// for an action that must do the deepest clean-up.
pub fn at_depth(ctx: &Context, depth: u32) -> Context {
    let mut c = ctx.clone();
    c.check_level = depth;
    c
}

/// `recover`: rgmanager recovers a failed resource in place, without
/// stopping the rest of the service, when the agent advertises `recover`.
/// Stop (nothing to do when it is already stopped), then start, both inside
/// the one `recover` timeout.
pub fn recover<A: ResourceAgent>(agent: &A, ctx: &Context) -> OcfResult {
    agent.stop(ctx)?;
    agent.start(ctx)
}

/// `restart`, which rgmanager's fs.sh (`do_restart`) and lvm.sh accept
/// though their meta-data cannot list it: stop, then start; either
/// failing is OCF_ERR_GENERIC (with its own reason), as there.
pub fn restart<A: ResourceAgent>(agent: &A, ctx: &Context) -> OcfResult {
    recover(agent, ctx).map_err(|f| Failure {
        status: OcfStatus::ErrGeneric,
        ..f
    })
}

/// `reload` and `reconfig` of a persona that keeps nothing in memory
/// between calls: every call reads its parameters afresh, so there is
/// nothing to do. (No parameter of fs or lvm carries `reconfig`; vm's are
/// rgmanager's service policy or read at every call.)
pub fn nothing_to_reload(_ctx: &Context) -> OcfResult {
    Ok(OcfStatus::Success)
}

/// `self_fence`: when set and the stop failed, the node reboots at once
/// (`reboot -fn`), so the resource cannot stay active on a node the cluster
/// takes for clean. The failure is returned either way.
pub fn fence_on_failure(ctx: &Context, self_fence: bool, stop: OcfResult) -> OcfResult {
    if let Err(f) = &stop {
        if self_fence {
            ctx.tools().self_fence(&f.reason);
        }
    }
    stop
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Env, Failure};

    fn ctx(depth: &str) -> Context {
        let env = Env::from_pairs([("OCF_CHECK_LEVEL", depth)]);
        Context::from_env(Action::Status, "fs", env).unwrap()
    }

    #[test]
    fn at_depth_changes_only_the_depth() {
        let c = ctx("20");
        let d = at_depth(&c, 10);
        assert_eq!(d.check_level, 10);
        assert_eq!(c.check_level, 20);
        assert_eq!(d.instance, c.instance);
        assert_eq!(d.started, c.started, "the same deadline");
    }

    /// Counts stops and starts; `stop_fails` makes stop fail.
    struct Probe {
        stop_fails: bool,
        calls: std::cell::RefCell<Vec<&'static str>>,
    }

    impl ResourceAgent for Probe {
        fn meta() -> &'static crate::AgentMeta {
            unreachable!()
        }
        fn configure(_: crate::Params, _: &Context) -> Result<Self, Failure> {
            unreachable!()
        }
        fn start(&self, _: &Context) -> OcfResult {
            self.calls.borrow_mut().push("start");
            Ok(OcfStatus::Success)
        }
        fn stop(&self, _: &Context) -> OcfResult {
            self.calls.borrow_mut().push("stop");
            if self.stop_fails {
                Err(Failure::generic("busy"))
            } else {
                Ok(OcfStatus::Success)
            }
        }
        fn monitor(&self, _: &Context) -> OcfResult {
            unreachable!()
        }
    }

    #[test]
    fn recover_is_stop_then_start_and_no_start_after_a_failed_stop() {
        let p = Probe {
            stop_fails: false,
            calls: Default::default(),
        };
        assert_eq!(recover(&p, &ctx("0")), Ok(OcfStatus::Success));
        assert_eq!(*p.calls.borrow(), ["stop", "start"]);
        let p = Probe {
            stop_fails: true,
            calls: Default::default(),
        };
        let e = recover(&p, &ctx("0")).unwrap_err();
        assert_eq!(e.reason, "busy");
        assert_eq!(*p.calls.borrow(), ["stop"]);
    }

    #[test]
    fn without_self_fence_a_failed_stop_is_only_returned() {
        let failed: OcfResult = Err(Failure::generic("umount failed"));
        assert_eq!(fence_on_failure(&ctx("0"), false, failed.clone()), failed);
        let ok: OcfResult = Ok(OcfStatus::Success);
        assert_eq!(fence_on_failure(&ctx("0"), true, ok.clone()), ok);
    }
}
