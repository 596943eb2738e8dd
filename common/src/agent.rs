//! The dispatcher: from `argv` and the environment to an exit code.
//!
//! An agent is a type implementing [`ResourceAgent`]: its meta-data, how it
//! reads its parameters, what must hold for it to act (`validate`), and its
//! actions. [`run`] does the rest, the same way for every agent:
//!
//! 1. no action → usage on stderr, exit 2; `meta-data`, `usage`, `methods`
//!    answer at once without reading any parameter;
//! 2. an action the meta-data does not advertise (nor
//!    [`ResourceAgent::UNLISTED_ACTIONS`]) → 3;
//! 3. the cluster context and the parameters are read; anything malformed is
//!    `OCF_ERR_CONFIGURED` with one line naming it — except for stop and
//!    probes (below);
//! 4. state-changing actions and monitors take the per-instance lock (stop
//!    and probes go on without it when the state directory cannot be used:
//!    [`crate::state::lock_instance`]);
//! 5. `validate` checks the environment (tools, devices, config files); its
//!    failure is mapped by action in one place: stop → 0 (nothing of ours can
//!    be running), probe → 7, recurring monitor → 1, `status` → 7, anything
//!    else → the failure's own code;
//! 6. the action runs; a [`Failure`] prints its exit reason.
//!
//! Stop and probes read only what names the resource. A stop that fails is
//! a fenced node, and a probe that fails is a failed resource, so neither may
//! fail over a value it does not need (the heartbeat agents do not either):
//!
//! | what is malformed or missing | stop, `kill`, probe | any other action |
//! |---|---|---|
//! | an identity parameter ([`ParamSpec::identity`](crate::params::ParamSpec::identity): device/directory, VG, domain/config, portal+target) | `OCF_ERR_CONFIGURED` | `OCF_ERR_CONFIGURED` |
//! | a value stop uses (signals, timeouts, shutdown mode) | its default, one warning naming parameter and value | `OCF_ERR_CONFIGURED` |
//! | a value stop does not use | ignored (its default), one warning | `OCF_ERR_CONFIGURED` |
//! | `OCF_CHECK_LEVEL` | read as 0 (stop's depth-20 cleanup needs a valid 20), one warning | `OCF_ERR_CONFIGURED` |
//!
//! It is applied here, once ([`Params::parse_lenient`],
//! [`Context::from_env`]); an agent's `configure` only re-checks what the
//! table cannot, and must accept every value the table's defaults give.

use crate::action::{Action, ActionError};
use crate::context::Context;
use crate::env::Env;
use crate::log::{self, Logger};
use crate::meta::AgentMeta;
use crate::params::Params;
use crate::status::{Failure, OcfResult, OcfStatus};

/// The OCF provider directory the agents install into.
pub const PROVIDER: &str = "heartbeat-rs";

/// One kind of resource.
pub trait ResourceAgent: Sized {
    /// What `meta-data` prints; also the list of implemented actions.
    fn meta() -> &'static AgentMeta;

    /// Actions this agent runs that its meta-data cannot list: rgmanager
    /// runs `restart` (and vm.sh accepts `kill`), which its DTD has no name
    /// for.
    const UNLISTED_ACTIONS: &'static [&'static str] = &[];

    /// Build the agent from its parsed parameters. Checks that need nothing
    /// but the parameters belong here (they are `OCF_ERR_CONFIGURED` for
    /// every action).
    fn configure(params: Params, ctx: &Context) -> Result<Self, Failure>;

    /// What must hold on this node for the resource to exist here: tools,
    /// devices, config files. A failure is mapped by action (see the module
    /// documentation), so it must only fail when the resource cannot be
    /// running here.
    fn validate(&self, _ctx: &Context) -> Result<(), Failure> {
        Ok(())
    }

    fn start(&self, ctx: &Context) -> OcfResult;
    fn stop(&self, ctx: &Context) -> OcfResult;
    fn monitor(&self, ctx: &Context) -> OcfResult;

    /// `status` (rgmanager, NCS, admins): monitor semantics by default.
    fn status(&self, ctx: &Context) -> OcfResult {
        self.monitor(ctx)
    }
    /// `validate-all`, after `validate` passed.
    fn validate_all(&self, _ctx: &Context) -> OcfResult {
        Ok(OcfStatus::Success)
    }
    fn migrate_to(&self, _ctx: &Context) -> OcfResult {
        Err(unimplemented("migrate_to"))
    }
    fn migrate_from(&self, _ctx: &Context) -> OcfResult {
        Err(unimplemented("migrate_from"))
    }
    /// rgmanager's `migrate <target-node>`.
    fn migrate(&self, _ctx: &Context, _target: &str) -> OcfResult {
        Err(unimplemented("migrate"))
    }
    fn reload(&self, _ctx: &Context) -> OcfResult {
        Err(unimplemented("reload"))
    }
    fn reload_agent(&self, _ctx: &Context) -> OcfResult {
        Err(unimplemented("reload-agent"))
    }
    fn notify(&self, _ctx: &Context) -> OcfResult {
        Err(unimplemented("notify"))
    }
    fn promote(&self, _ctx: &Context) -> OcfResult {
        Err(unimplemented("promote"))
    }
    fn demote(&self, _ctx: &Context) -> OcfResult {
        Err(unimplemented("demote"))
    }
    fn recover(&self, _ctx: &Context) -> OcfResult {
        Err(unimplemented("recover"))
    }
    fn reconfig(&self, _ctx: &Context) -> OcfResult {
        Err(unimplemented("reconfig"))
    }
    fn restart(&self, _ctx: &Context) -> OcfResult {
        Err(unimplemented("restart"))
    }
    /// Stop at once, without a graceful attempt.
    fn kill(&self, _ctx: &Context) -> OcfResult {
        Err(unimplemented("kill"))
    }
}

fn unimplemented(action: &str) -> Failure {
    Failure::unimplemented(format!("action '{action}' is not implemented"))
}

/// The usage line, listing the advertised actions.
pub fn usage(meta: &AgentMeta) -> String {
    let names = meta.callable_actions();
    format!("usage: {} {{{}}}", meta.name, names.join("|"))
}

/// Whether the meta-data advertises `action` (or the action it aliases).
fn advertised(meta: &AgentMeta, action: &Action) -> bool {
    match action {
        Action::Status => meta.action("status").is_some() || meta.action("monitor").is_some(),
        // rgmanager agents may advertise either spelling
        Action::ValidateAll => {
            meta.action("validate-all").is_some() || meta.action("verify-all").is_some()
        }
        Action::Other(_) => false,
        a => meta.action(a.name()).is_some(),
    }
}

/// How a failed `validate` is reported, by action.
pub fn map_invalid_env(ctx: &Context, failure: &Failure) -> OcfStatus {
    match ctx.action {
        Action::Stop | Action::Kill => OcfStatus::Success,
        Action::Monitor if ctx.is_probe() => OcfStatus::NotRunning,
        Action::Monitor => OcfStatus::ErrGeneric,
        Action::Status => OcfStatus::NotRunning,
        _ => failure.status,
    }
}

/// Output of one run: what goes to stdout, and the exit status. Logging and
/// exit reasons have already gone to their targets.
pub struct Outcome {
    pub stdout: String,
    pub status: OcfStatus,
    /// The process exit code when it is not `status.code()`
    /// (`--exit-codes=cmdline`, [`Failure::exit_code`]).
    pub exit: Option<i32>,
}

impl Outcome {
    /// The process exit code.
    pub fn code(&self) -> i32 {
        self.exit.unwrap_or_else(|| self.status.code())
    }
}

/// Run the agent for `args` (without the program name) in `env`.
pub fn dispatch<A: ResourceAgent>(args: &[String], env: Env, tty: bool) -> Outcome {
    let meta = A::meta();
    let done = |status| Outcome {
        stdout: String::new(),
        status,
        exit: None,
    };
    let cl = match crate::cli::parse(args).and_then(|cl| {
        crate::cli::check_names(meta, &cl.params)?;
        Ok(cl)
    }) {
        Ok(cl) => cl,
        Err(why) => {
            eprintln!("{}", usage(meta));
            eprintln!("{}: {why}", meta.name);
            return done(OcfStatus::ErrArgs);
        }
    };
    if cl.help {
        return Outcome {
            stdout: meta.help(),
            status: OcfStatus::Success,
            exit: None,
        };
    }
    if cl.version {
        return Outcome {
            stdout: format!(
                "{} (resource-agents-rs) {}\n",
                meta.name,
                env!("CARGO_PKG_VERSION")
            ),
            status: OcfStatus::Success,
            exit: None,
        };
    }
    if cl.man {
        return Outcome {
            stdout: meta.man(PROVIDER),
            status: OcfStatus::Success,
            exit: None,
        };
    }
    let mut env = env;
    for (k, v) in &cl.params {
        env.set(format!("OCF_RESKEY_{k}"), v);
    }
    let mut outcome = dispatch_action::<A>(&cl.args, env, tty);
    let action = cl.args.first().map(String::as_str).unwrap_or("");
    if cl.exit_codes != crate::cli::ExitCodes::Ocf {
        outcome.exit = Some(cl.exit_codes.code(action, outcome.status));
    }
    if cl.human() {
        let mut line = format!("{} {action}: {}", meta.name, outcome.status);
        if let Some(how) = cl.exit_codes.describe(action, outcome.status) {
            line.push_str(&format!(", {how}"));
        }
        outcome.stdout.push_str(&line);
        outcome.stdout.push('\n');
    }
    outcome
}

fn dispatch_action<A: ResourceAgent>(args: &[String], env: Env, tty: bool) -> Outcome {
    let meta = A::meta();
    let done = |status| Outcome {
        stdout: String::new(),
        status,
        exit: None,
    };
    let action = match Action::parse(args) {
        Ok(a) => a,
        Err(ActionError::Missing) => {
            eprintln!("{}", usage(meta));
            return done(OcfStatus::ErrArgs);
        }
        Err(ActionError::MissingTarget) => {
            eprintln!("{}", usage(meta));
            init_logger(meta, &env, None, tty)
                .exit_reason("migrate needs the target node as its second argument");
            return done(OcfStatus::ErrArgs);
        }
    };
    match action {
        Action::MetaData => {
            return Outcome {
                stdout: meta.render(),
                status: OcfStatus::Success,
                exit: None,
            }
        }
        Action::Usage => {
            return Outcome {
                stdout: format!("{}\n", usage(meta)),
                status: OcfStatus::Success,
                exit: None,
            }
        }
        Action::Methods => {
            let mut s = String::new();
            for name in meta.callable_actions() {
                s.push_str(name);
                s.push('\n');
            }
            return Outcome {
                stdout: s,
                status: OcfStatus::Success,
                exit: None,
            };
        }
        _ => {}
    }
    let instance = env.non_empty("OCF_RESOURCE_INSTANCE").map(str::to_string);
    let mut logger = init_logger(meta, &env, instance.as_deref(), tty);
    if !meta.is_rgmanager() {
        logger = start_trace(meta, &env, instance.as_deref(), &action, logger);
    }
    if !advertised(meta, &action) && !A::UNLISTED_ACTIONS.contains(&action.name()) {
        eprintln!("{}", usage(meta));
        logger.exit_reason(&format!(
            "{}: action '{}' is not implemented",
            meta.name,
            action.name()
        ));
        return done(OcfStatus::ErrUnimplemented);
    }
    match run_action::<A>(action, env, meta) {
        Ok(status) => done(status),
        Err(f) => {
            logger.exit_reason(&f.reason);
            Outcome {
                exit: f.exit_code,
                ..done(f.status)
            }
        }
    }
}

/// Turn tracing on for this run when asked (`trace_ra`, see
/// [`crate::trace`]), and say in the trace what runs.
fn start_trace(
    meta: &AgentMeta,
    env: &Env,
    instance: Option<&str>,
    action: &Action,
    mut logger: Logger,
) -> Logger {
    let rtype = env.non_empty("OCF_RESOURCE_TYPE").unwrap_or(meta.name);
    let stdin_tty = nix::unistd::isatty(std::io::stdin()).unwrap_or(false);
    let dest = match crate::trace::destination(env, rtype, instance, action.name(), stdin_tty) {
        Ok(d) => d,
        Err(why) => {
            logger.log(log::Level::Warn, &why, false);
            let mut plain = env.clone();
            plain.remove("OCF_TRACE_FILE");
            plain.remove("OCF_RESKEY_trace_file");
            crate::trace::destination(&plain, rtype, instance, action.name(), stdin_tty)
                .ok()
                .flatten()
        }
    };
    let Some(dest) = dest else {
        return logger;
    };
    logger.trace = Some(dest);
    log::init(logger.clone());
    crate::debug!(
        "trace: {} {} (resource-agents-rs {}), instance {}",
        meta.name,
        action.name(),
        env!("CARGO_PKG_VERSION"),
        instance.unwrap_or("(none)")
    );
    for p in meta.params {
        if let Some(v) = env.reskey(p.name) {
            crate::debug!("trace: parameter {}={:?}", p.name, v);
        }
    }
    logger
}

fn init_logger(meta: &AgentMeta, env: &Env, instance: Option<&str>, tty: bool) -> Logger {
    let rtype = env.non_empty("OCF_RESOURCE_TYPE").unwrap_or(meta.name);
    let logger = Logger::from_env(env, rtype, instance, tty);
    log::init(logger.clone());
    logger
}

fn run_action<A: ResourceAgent>(action: Action, env: Env, meta: &AgentMeta) -> OcfResult {
    let mut ctx = Context::from_env(action, meta.name, env)?;
    let depth = ctx.check_level;
    ctx.default_timeout = match &ctx.action {
        Action::Status => meta
            .default_timeout_at("status", depth)
            .or(meta.default_timeout_at("monitor", depth)),
        Action::ValidateAll => meta
            .default_timeout("validate-all")
            .or(meta.default_timeout("verify-all")),
        Action::Kill => meta.default_timeout("stop"),
        a => meta.default_timeout_at(a.name(), depth),
    };
    let params = Params::parse_with(meta.params, &ctx.env, ctx.is_lenient())?;
    let agent = A::configure(params, &ctx)?;
    let _lock = if ctx.action.takes_instance_lock() {
        crate::state::lock_instance(&ctx, &lock_name(&ctx))?
    } else {
        None
    };
    if let Err(f) = agent.validate(&ctx) {
        let status = map_invalid_env(&ctx, &f);
        if status == f.status {
            return Err(f);
        }
        crate::info!(
            "{}; reporting {} for {}",
            f.reason,
            status.name(),
            ctx.action.name()
        );
        return Ok(status);
    }
    match &ctx.action {
        Action::Start => agent.start(&ctx),
        Action::Stop => agent.stop(&ctx),
        Action::Monitor => agent.monitor(&ctx),
        Action::Status => agent.status(&ctx),
        Action::ValidateAll => agent.validate_all(&ctx),
        Action::MigrateTo => agent.migrate_to(&ctx),
        Action::MigrateFrom => agent.migrate_from(&ctx),
        Action::Migrate(target) => agent.migrate(&ctx, target),
        Action::Reload => agent.reload(&ctx),
        Action::ReloadAgent => agent.reload_agent(&ctx),
        Action::Notify => agent.notify(&ctx),
        Action::Promote => agent.promote(&ctx),
        Action::Demote => agent.demote(&ctx),
        Action::Recover => agent.recover(&ctx),
        Action::Reconfig => agent.reconfig(&ctx),
        Action::Restart => agent.restart(&ctx),
        Action::Kill => agent.kill(&ctx),
        Action::MetaData | Action::Usage | Action::Methods | Action::Other(_) => {
            unreachable!("answered before the parameters were read")
        }
    }
}

/// The name the instance lock goes by: the instance name, or, when the
/// caller names no instance (NCS scripts and admins often do not), one
/// derived from the instance parameters, so two different resources of one
/// type never wait on each other while the same one always shares a lock.
pub fn lock_name(ctx: &Context) -> String {
    if ctx.env.non_empty("OCF_RESOURCE_INSTANCE").is_some() {
        return ctx.instance.clone();
    }
    let mut params: Vec<(&str, &std::ffi::OsStr)> = ctx
        .env
        .iter()
        .filter(|(k, _)| k.starts_with("OCF_RESKEY_") && !k.starts_with("OCF_RESKEY_CRM_meta_"))
        .filter(|(k, _)| !k.starts_with("OCF_RESKEY_RGMANAGER_meta_"))
        .collect();
    params.sort();
    // FNV-1a: stable across builds and versions, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in params {
        for b in k
            .bytes()
            .chain([0])
            .chain(v.as_encoded_bytes().iter().copied())
            .chain([0])
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{}-{h:016x}", ctx.instance)
}

/// The `main` of every agent binary: dispatch on the process's arguments
/// and environment, print, exit with the OCF code (or the one a
/// [`Failure::exit_code`] asks for).
pub fn main<A: ResourceAgent>() -> ! {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("ocf-exit-reason:internal error: {info}");
        std::process::exit(OcfStatus::ErrGeneric.code());
    }));
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let tty = nix::unistd::isatty(std::io::stderr()).unwrap_or(false);
    let outcome = dispatch::<A>(&args, Env::from_process(), tty);
    if !outcome.stdout.is_empty() {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(outcome.stdout.as_bytes());
        let _ = out.flush();
    }
    std::process::exit(outcome.code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::ActionSpec;
    use crate::params::ParamSpec;
    use std::cell::Cell;

    /// A resource whose existence is a file: enough to drive the dispatcher.
    struct FileResource {
        path: std::path::PathBuf,
        tool: String,
        calls: Cell<u32>,
    }

    static PARAMS: &[ParamSpec] = &[
        ParamSpec::string("path")
            .identity()
            .required()
            .short("the file"),
        ParamSpec::string("tool")
            .default("sh")
            .short("a tool that must exist"),
        ParamSpec::integer("size").default("1").short("a number"),
    ];
    static ACTIONS: &[ActionSpec] = &[
        ActionSpec::new("start", 20),
        ActionSpec::new("stop", 20),
        ActionSpec::new("monitor", 20).interval(10),
        ActionSpec::new("validate-all", 5),
        ActionSpec::new("meta-data", 5),
    ];
    static META: AgentMeta = AgentMeta {
        name: "FileResource",
        version: "0.1.0",
        shortdesc: "a file",
        longdesc: "a file",
        params: PARAMS,
        actions: ACTIONS,
        special: None,
    };

    impl ResourceAgent for FileResource {
        fn meta() -> &'static AgentMeta {
            &META
        }
        fn configure(p: Params, _ctx: &Context) -> Result<Self, Failure> {
            Ok(FileResource {
                path: p.str("path").unwrap().into(),
                tool: p.str("tool").unwrap().into(),
                calls: Cell::new(0),
            })
        }
        fn validate(&self, ctx: &Context) -> Result<(), Failure> {
            ctx.tools().require(&self.tool).map(|_| ())
        }
        fn start(&self, _ctx: &Context) -> OcfResult {
            self.calls.set(self.calls.get() + 1);
            std::fs::write(&self.path, "x").map_err(|e| Failure::generic(e.to_string()))?;
            Ok(OcfStatus::Success)
        }
        fn stop(&self, _ctx: &Context) -> OcfResult {
            let _ = std::fs::remove_file(&self.path);
            Ok(OcfStatus::Success)
        }
        fn monitor(&self, _ctx: &Context) -> OcfResult {
            Ok(if self.path.exists() {
                OcfStatus::Success
            } else {
                OcfStatus::NotRunning
            })
        }
    }

    struct Case {
        dir: std::path::PathBuf,
    }

    impl Case {
        fn new(name: &str) -> Case {
            let dir = std::env::temp_dir().join(format!("ocf-agent-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Case { dir }
        }
        fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> Outcome {
            let mut env = Env::from_pairs([
                (
                    "HA_RSCTMP",
                    self.dir.join("rsc").to_str().unwrap().to_string(),
                ),
                (
                    "OCF_RESKEY_path",
                    self.dir.join("res").to_str().unwrap().to_string(),
                ),
                ("HA_LOGFACILITY", "none".into()),
                (
                    "HA_LOGFILE",
                    self.dir.join("log").to_str().unwrap().to_string(),
                ),
            ]);
            for (k, v) in extra {
                env.set(*k, *v);
            }
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            dispatch::<FileResource>(&args, env, false)
        }
    }

    impl Drop for Case {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn lifecycle_through_the_dispatcher() {
        let c = Case::new("life");
        assert_eq!(c.run(&["monitor"], &[]).status, OcfStatus::NotRunning);
        assert_eq!(c.run(&["start"], &[]).status, OcfStatus::Success);
        assert_eq!(c.run(&["monitor"], &[]).status, OcfStatus::Success);
        assert_eq!(c.run(&["status"], &[]).status, OcfStatus::Success);
        assert_eq!(c.run(&["stop"], &[]).status, OcfStatus::Success);
        assert_eq!(c.run(&["monitor"], &[]).status, OcfStatus::NotRunning);
    }

    #[test]
    fn no_action_is_usage_and_2_unknown_is_3() {
        let c = Case::new("usage");
        assert_eq!(c.run(&[], &[]).status, OcfStatus::ErrArgs);
        assert_eq!(
            c.run(&["frobnicate"], &[]).status,
            OcfStatus::ErrUnimplemented
        );
        // advertised actions only: this agent has no migrate_to
        assert_eq!(
            c.run(&["migrate_to"], &[]).status,
            OcfStatus::ErrUnimplemented
        );
        assert_eq!(c.run(&["migrate"], &[]).status, OcfStatus::ErrArgs);
        let u = c.run(&["usage"], &[]);
        assert_eq!(u.status, OcfStatus::Success);
        assert_eq!(
            u.stdout,
            "usage: FileResource {start|stop|monitor|validate-all|meta-data|status|methods|usage}\n"
        );
    }

    #[test]
    fn meta_data_and_methods_need_no_parameters() {
        let out = dispatch::<FileResource>(&["meta-data".into()], Env::default(), false);
        assert_eq!(out.status, OcfStatus::Success);
        assert!(out.stdout.contains("<resource-agent name=\"FileResource\""));
        let out = dispatch::<FileResource>(&["methods".into()], Env::default(), false);
        assert_eq!(
            out.stdout,
            "start\nstop\nmonitor\nvalidate-all\nmeta-data\nstatus\nmethods\nusage\n"
        );
    }

    #[test]
    fn bad_parameters_are_not_configured_but_stop_and_probes_need_only_the_identity() {
        let c = Case::new("badparam");
        let big = ("OCF_RESKEY_size", "big");
        let recurring = ("OCF_RESKEY_CRM_meta_interval", "10000");
        for (action, extra) in [
            ("start", &[big][..]),
            ("monitor", &[big, recurring][..]),
            ("validate-all", &[big][..]),
            ("start", &[("OCF_CHECK_LEVEL", "abc")][..]),
            ("monitor", &[("OCF_CHECK_LEVEL", "abc"), recurring][..]),
        ] {
            assert_eq!(
                c.run(&[action], extra).status,
                OcfStatus::ErrConfigured,
                "{action} {extra:?}"
            );
        }
        // stop and a probe fall back to the default (one warning) and act
        assert_eq!(c.run(&["start"], &[]).status, OcfStatus::Success);
        for extra in [big, ("OCF_CHECK_LEVEL", "abc")] {
            assert_eq!(c.run(&["monitor"], &[extra]).status, OcfStatus::Success);
        }
        assert_eq!(c.run(&["stop"], &[big]).status, OcfStatus::Success);
        assert_eq!(c.run(&["monitor"], &[big]).status, OcfStatus::NotRunning);
        assert_eq!(
            c.run(&["stop"], &[("OCF_CHECK_LEVEL", "abc")]).status,
            OcfStatus::Success
        );
        // a missing identity stays not configured, for stop too
        for action in ["start", "stop", "monitor"] {
            let out = dispatch::<FileResource>(&[action.into()], Env::default(), false);
            assert_eq!(out.status, OcfStatus::ErrConfigured, "{action}");
        }
    }

    #[test]
    fn invalid_environment_is_mapped_by_action() {
        let c = Case::new("invalid");
        let missing = [("OCF_RESKEY_tool", "no-such-tool-anywhere")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v = missing.to_vec();
            v.extend_from_slice(extra);
            v
        };
        assert_eq!(c.run(&["stop"], &missing).status, OcfStatus::Success);
        assert_eq!(c.run(&["monitor"], &missing).status, OcfStatus::NotRunning);
        assert_eq!(
            c.run(
                &["monitor"],
                &with(&[("OCF_RESKEY_CRM_meta_interval", "10000")])
            )
            .status,
            OcfStatus::ErrGeneric
        );
        assert_eq!(c.run(&["status"], &missing).status, OcfStatus::NotRunning);
        assert_eq!(c.run(&["start"], &missing).status, OcfStatus::ErrInstalled);
        assert_eq!(
            c.run(&["validate-all"], &missing).status,
            OcfStatus::ErrInstalled
        );
        // ocf-tester hides every tool: probe still answers 7, meta-data 0
        let hidden = [("OCF_TESTER_FAIL_HAVE_BINARY", "1")];
        assert_eq!(c.run(&["monitor"], &hidden).status, OcfStatus::NotRunning);
        assert_eq!(c.run(&["meta-data"], &hidden).status, OcfStatus::Success);
    }

    #[test]
    fn unnamed_instances_lock_by_their_parameters() {
        let ctx = |pairs: &[(&str, &str)]| {
            Context::from_env(Action::Stop, "X", Env::from_pairs(pairs.iter().copied())).unwrap()
        };
        let a = lock_name(&ctx(&[("OCF_RESKEY_path", "/a")]));
        let a_again = lock_name(&ctx(&[
            ("OCF_RESKEY_path", "/a"),
            ("OCF_RESKEY_CRM_meta_timeout", "20000"),
        ]));
        let b = lock_name(&ctx(&[("OCF_RESKEY_path", "/b")]));
        assert_eq!(a, a_again, "operation meta-data must not change the lock");
        assert_ne!(a, b);
        assert!(a.starts_with("default-"));
        let named = ctx(&[("OCF_RESOURCE_INSTANCE", "fs1"), ("OCF_RESKEY_path", "/a")]);
        assert_eq!(lock_name(&named), "fs1");
    }

    #[test]
    fn people_pass_parameters_with_dash_o_and_read_the_result_by_name() {
        let c = Case::new("human");
        let path = c.dir.join("human-res");
        let o = format!("path={}", path.display());
        let out = dispatch::<FileResource>(
            &["start".into(), "-o".into(), o.clone()],
            Env::from_pairs([("HA_RSCTMP", c.dir.join("rsc"))]),
            false,
        );
        assert_eq!(out.status, OcfStatus::Success);
        assert_eq!(out.stdout, "FileResource start: OCF_SUCCESS (0)\n");
        assert!(path.exists());
        let out = dispatch::<FileResource>(
            &["monitor".into(), "--param".into(), "nosuch=1".into()],
            Env::default(),
            false,
        );
        assert_eq!(out.status, OcfStatus::ErrArgs);
        let help = dispatch::<FileResource>(&["--help".into()], Env::default(), false);
        assert_eq!(help.status, OcfStatus::Success);
        assert!(help.stdout.contains("path"));
        assert!(help
            .stdout
            .contains("\n  size        a number (integer, default \"1\")"));
    }

    #[test]
    fn cmdline_exit_codes_for_primecluster() {
        let c = Case::new("cmdline");
        let run = |args: &[&str]| {
            let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            v.push("--exit-codes=cmdline".into());
            let env = Env::from_pairs([
                ("HA_RSCTMP", c.dir.join("rsc")),
                ("OCF_RESKEY_path", c.dir.join("res")),
                ("HA_LOGFACILITY", "none".into()),
            ]);
            dispatch::<FileResource>(&v, env, false)
        };
        let off = run(&["monitor"]);
        assert_eq!((off.status, off.code()), (OcfStatus::NotRunning, 1));
        assert_eq!(run(&["status"]).code(), 1);
        assert_eq!(run(&["start"]).code(), 0);
        let on = run(&["monitor"]);
        assert_eq!((on.status, on.code()), (OcfStatus::Success, 0));
        assert_eq!(run(&["stop"]).code(), 0);
        // a failed check is "faulted"; other actions keep their OCF code
        let bad = run(&["status", "-o", "size=big"]);
        assert_eq!((bad.status, bad.code()), (OcfStatus::ErrConfigured, 2));
        assert!(bad
            .stdout
            .contains("OCF_ERR_CONFIGURED (6), Cmdline exit 2 (faulted)"));
        assert_eq!(run(&["start", "-o", "size=big"]).code(), 6);
        // without the flag nothing changes
        let plain = dispatch::<FileResource>(
            &["monitor".into()],
            Env::from_pairs([
                ("HA_RSCTMP", c.dir.join("rsc")),
                ("OCF_RESKEY_path", c.dir.join("res")),
            ]),
            false,
        );
        assert_eq!((plain.exit, plain.code()), (None, 7));
    }

    #[test]
    fn exit_reason_is_logged_to_the_logfile() {
        let c = Case::new("reason");
        c.run(&["start"], &[("OCF_RESKEY_size", "big")]);
        let log = std::fs::read_to_string(c.dir.join("log")).unwrap();
        assert!(
            log.contains("ERROR: parameter 'size': 'big' is not an integer"),
            "{log}"
        );
    }
}
