//! `ocf`: everything resource-agents-rs agents share, written once; with
//! the value checks several agents' parameters use ([`checks`]) and what
//! the rgmanager personas share ([`rgmanager`]).
//!
//! An agent describes its resource (parameters, actions) and implements
//! [`ResourceAgent`]; this crate does the OCF plumbing around it the way the
//! ClusterLabs shell library (`ocf-shellfuncs`, `ocf-rarun`) does, minus the
//! shell: exit codes ([`OcfStatus`]), the action on the command line and the
//! aliases other cluster managers use ([`Action`]), the caller's context and
//! its units ([`Context`]), parameters declared once ([`ParamSpec`]),
//! deadlines for every wait ([`Deadline`]), tools run as argument vectors
//! ([`Tools`], [`Cmd`]), `ocf_log`-style logging ([`log`]), private state and
//! per-instance locks ([`StateDir`]), configuration files read within
//! bounds ([`file`](mod@file)), meta-data ([`AgentMeta`]), the
//! process table ([`procs`]) and Pacemaker's CIB tools ([`pacemaker`]).

pub mod action;
pub mod agent;
pub mod checked;
pub mod checks;
pub mod cli;
pub mod command;
pub mod context;
pub mod deadline;
pub mod env;
pub mod file;
pub mod log;
pub mod meta;
pub mod pacemaker;
pub mod params;
pub mod procs;
pub mod rgmanager;
pub mod state;
pub mod status;
pub mod trace;

pub use action::Action;
pub use agent::{dispatch, lock_name, main, map_invalid_env, Outcome, ResourceAgent};
pub use checked::CheckedOnce;
pub use command::{Cmd, Output, RunError, Tools};
pub use context::Context;
pub use deadline::Deadline;
pub use env::Env;
pub use meta::{ActionSpec, AgentMeta, Special, SpecialElement};
pub use params::{is_true, parse_bool, ParamSpec, ParamType, Params};
pub use state::{encode_name, InstanceLock, Record, StateDir};
pub use status::{Failure, OcfResult, OcfStatus};
