//! libvirt through the `virt` crate, every call bounded by a deadline and
//! every error classified by its libvirt error code (never by its text).
//!
//! A libvirt call blocks as long as the daemon makes it (a job holding the
//! domain, a daemon that hangs); each call therefore runs on a worker
//! thread and the agent waits for it no longer than the deadline allows.
//! A call still running then is abandoned (the process exits soon after).
//!
//! This is the one module of the agents allowed `unsafe`: the few libvirt
//! calls the `virt` crate does not wrap (or wraps without reporting their
//! failure) are made here on the raw domain pointer, each with its safety
//! argument; everything else in the workspace denies `unsafe_code`.
#![allow(unsafe_code)]

use std::time::Duration;

use ocf::Deadline;
use virt::connect::Connect;
use virt::domain::Domain;
use virt::sys;

/// A libvirt failure, or a call that did not return in time.
#[derive(Clone, Debug)]
pub enum LvError {
    /// `code` is the virErrorNumber, `domain` the virErrorDomain (the part
    /// of libvirt that raised it).
    Libvirt {
        code: i32,
        domain: i32,
        message: String,
    },
    TimedOut(String),
}

impl LvError {
    fn from_virt(e: virt::error::Error) -> LvError {
        LvError::Libvirt {
            code: e.code().to_raw() as i32,
            domain: e.domain().to_raw() as i32,
            message: e.message().to_string(),
        }
    }

    fn raised_by(&self, d: sys::virErrorDomain) -> bool {
        matches!(self, LvError::Libvirt { domain, .. } if *domain == d as i32)
    }

    /// The connection URI itself cannot be used, now or later: libvirt
    /// cannot parse it (raised by its URI parser), it names no driver
    /// ("no connection driver available", raised before any driver ran),
    /// or its transport is unknown to the remote driver. Retrying cannot
    /// help; the configuration is wrong.
    pub fn bad_uri(&self) -> bool {
        self.raised_by(sys::VIR_FROM_URI)
            || (self.is(sys::VIR_ERR_NO_CONNECT) && self.raised_by(sys::VIR_FROM_NONE))
            || (self.is(sys::VIR_ERR_INVALID_ARG) && self.raised_by(sys::VIR_FROM_REMOTE))
    }

    pub fn code(&self) -> Option<i32> {
        match self {
            LvError::Libvirt { code, .. } => Some(*code),
            LvError::TimedOut(_) => None,
        }
    }

    fn is(&self, c: sys::virErrorNumber) -> bool {
        self.code() == Some(c as i32)
    }

    /// VIR_ERR_NO_DOMAIN: the domain does not exist (any more).
    pub fn no_domain(&self) -> bool {
        self.is(sys::VIR_ERR_NO_DOMAIN)
    }

    /// VIR_ERR_OPERATION_INVALID: e.g. "domain is not running".
    pub fn invalid_operation(&self) -> bool {
        self.is(sys::VIR_ERR_OPERATION_INVALID)
    }

    /// The daemon cannot be reached or stopped answering (and the URI is
    /// not simply wrong: [`LvError::bad_uri`]).
    pub fn unreachable(&self) -> bool {
        matches!(self, LvError::TimedOut(_))
            || (!self.bad_uri()
                && (self.is(sys::VIR_ERR_NO_CONNECT)
                    || self.is(sys::VIR_ERR_SYSTEM_ERROR)
                    || self.is(sys::VIR_ERR_RPC)
                    || self.is(sys::VIR_ERR_INVALID_CONN)))
    }

    /// The domain XML (or an argument derived from the configuration) is
    /// wrong, on every node.
    pub fn bad_config(&self) -> bool {
        self.is(sys::VIR_ERR_XML_ERROR)
            || self.is(sys::VIR_ERR_XML_DETAIL)
            || self.is(sys::VIR_ERR_CONFIG_UNSUPPORTED)
    }

    /// The hypervisor cannot do this for this domain, now or later: not
    /// supported, or the domain lacks what it needs (a guest-agent shutdown
    /// of a domain without a guest agent channel).
    pub fn unsupported(&self) -> bool {
        self.is(sys::VIR_ERR_NO_SUPPORT)
            || self.is(sys::VIR_ERR_ARGUMENT_UNSUPPORTED)
            || self.is(sys::VIR_ERR_CONFIG_UNSUPPORTED)
            || self.is(sys::VIR_ERR_OPERATION_UNSUPPORTED)
            || self.is(sys::VIR_ERR_INVALID_ARG)
    }

    /// Not allowed to (authentication, access control).
    pub fn denied(&self) -> bool {
        self.is(sys::VIR_ERR_AUTH_FAILED)
            || self.is(sys::VIR_ERR_AUTH_CANCELLED)
            || self.is(sys::VIR_ERR_OPERATION_DENIED)
            || self.is(sys::VIR_ERR_ACCESS_DENIED)
    }

    pub fn message(&self) -> String {
        match self {
            LvError::Libvirt { message, .. } => message.clone(),
            LvError::TimedOut(what) => format!("{what}: libvirt did not answer in time"),
        }
    }
}

impl std::fmt::Display for LvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LvError::Libvirt { code, message, .. } => {
                write!(f, "{message} (libvirt error {code})")
            }
            LvError::TimedOut(_) => f.write_str(&self.message()),
        }
    }
}

/// Least time a call is given even when the deadline is (nearly) gone:
/// enough for a local daemon to answer, so an answer beats a guess.
const MIN_CALL: Duration = Duration::from_millis(200);

/// Run `f` on a worker thread; wait for it until `dl` passes (a libvirt
/// call can block for as long as libvirtd does not answer).
pub fn bounded<T, F>(dl: &Deadline, what: &str, f: F) -> Result<T, LvError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, virt::error::Error> + Send + 'static,
{
    dl.on_thread(MIN_CALL, move || f().map_err(LvError::from_virt))
        .unwrap_or_else(|| Err(LvError::TimedOut(what.to_string())))
}

/// Open a connection to `uri` (libvirt's default when None).
pub fn open(uri: Option<&str>, dl: &Deadline) -> Result<Connect, LvError> {
    let uri = uri.map(str::to_string);
    bounded(dl, "connecting to libvirt", move || {
        Connect::open(uri.as_deref())
    })
}

/// Where a domain is, as the agent needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomState {
    /// Not known to libvirt, or defined but shut off.
    Off,
    Running,
    Blocked,
    Paused,
    /// Shutting down (still running).
    InShutdown,
    Crashed,
    PmSuspended,
    /// libvirt knows the domain but not its state.
    NoState,
}

impl DomState {
    pub fn active(self) -> bool {
        !matches!(self, DomState::Off | DomState::Crashed)
    }

    fn from_raw(s: sys::virDomainState) -> DomState {
        match s {
            sys::VIR_DOMAIN_RUNNING => DomState::Running,
            sys::VIR_DOMAIN_BLOCKED => DomState::Blocked,
            sys::VIR_DOMAIN_PAUSED => DomState::Paused,
            sys::VIR_DOMAIN_SHUTDOWN => DomState::InShutdown,
            sys::VIR_DOMAIN_SHUTOFF => DomState::Off,
            sys::VIR_DOMAIN_CRASHED => DomState::Crashed,
            sys::VIR_DOMAIN_PMSUSPENDED => DomState::PmSuspended,
            _ => DomState::NoState,
        }
    }
}

/// Look a domain up by name; `None` when libvirt does not know it.
pub fn lookup(conn: &Connect, name: &str, dl: &Deadline) -> Result<Option<Domain>, LvError> {
    let c = conn.clone();
    let n = name.to_string();
    match bounded(dl, "looking up the domain", move || {
        c.lookup_domain_by_name(&n)
    }) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.no_domain() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The state of domain `name`. A domain that vanishes between lookup and
/// state query (libvirt removes a transient domain as it stops) is off.
pub fn state(conn: &Connect, name: &str, dl: &Deadline) -> Result<DomState, LvError> {
    let Some(dom) = lookup(conn, name, dl)? else {
        return Ok(DomState::Off);
    };
    dom_state(&dom, dl)
}

pub fn dom_state(dom: &Domain, dl: &Deadline) -> Result<DomState, LvError> {
    let d = dom.clone();
    // virt's Domain::state ignores a failed virDomainGetState; call it here.
    let r = bounded(dl, "querying the domain state", move || {
        let mut st: std::os::raw::c_int = -1;
        let mut reason: std::os::raw::c_int = -1;
        // SAFETY: `d` holds a reference on the domain for the whole call;
        // both out-pointers are valid locals.
        let rc = unsafe { sys::virDomainGetState(d.as_ptr(), &mut st, &mut reason, 0) };
        if rc < 0 {
            Err(virt::error::Error::last_error())
        } else {
            Ok(st)
        }
    });
    match r {
        Ok(s) => Ok(DomState::from_raw(s as sys::virDomainState)),
        Err(e) if e.no_domain() => Ok(DomState::Off),
        Err(e) => Err(e),
    }
}

/// What the utilization attributes are made of (heartbeat: dominfo's
/// "CPU(s)" and "Max memory").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    pub vcpus: u32,
    pub max_mem_kib: u64,
}

/// The state and the sizes of a domain in one round trip
/// (virDomainGetInfo), for a monitor that sets the utilization.
pub fn dom_info(dom: &Domain, dl: &Deadline) -> Result<(DomState, Option<Sizes>), LvError> {
    let d = dom.clone();
    match bounded(dl, "querying the domain state", move || d.info()) {
        Ok(i) => Ok((
            DomState::from_raw(i.state.to_raw()),
            Some(Sizes {
                vcpus: i.nr_virt_cpu,
                max_mem_kib: i.max_mem,
            }),
        )),
        Err(e) if e.no_domain() => Ok((DomState::Off, None)),
        Err(e) => Err(e),
    }
}

/// virDomainSave: save the domain's state to `file` (which stops it).
pub fn save(dom: &Domain, file: &std::path::Path, dl: &Deadline) -> Result<(), LvError> {
    let path = std::ffi::CString::new(file.as_os_str().as_encoded_bytes())
        .map_err(|_| LvError::TimedOut("snapshot path holds a NUL byte".into()))?;
    let d = dom.clone();
    bounded(dl, "saving the domain state", move || {
        // SAFETY: `d` keeps the domain referenced; `path` is a valid C
        // string for the duration of the call.
        let rc = unsafe { sys::virDomainSave(d.as_ptr(), path.as_ptr()) };
        if rc < 0 {
            Err(virt::error::Error::last_error())
        } else {
            Ok(())
        }
    })
}

/// virDomainAbortJob: abort the domain's running job (a migration).
pub fn abort_job(dom: &Domain, dl: &Deadline) -> Result<(), LvError> {
    dom_call(dom, dl, "aborting the migration", abort_job_raw, 0)
}

fn abort_job_raw(p: sys::virDomainPtr, _: u32) -> std::os::raw::c_int {
    // SAFETY: `dom_call` passes the pointer of a domain it keeps referenced
    // for the duration of the call.
    unsafe { sys::virDomainAbortJob(p) }
}

/// A raw libvirt call on a domain returning an int (< 0 is failure).
pub fn dom_call(
    dom: &Domain,
    dl: &Deadline,
    what: &str,
    f: fn(sys::virDomainPtr, u32) -> std::os::raw::c_int,
    arg: u32,
) -> Result<(), LvError> {
    let d = dom.clone();
    bounded(dl, what, move || {
        // SAFETY: `d` keeps the domain referenced during the call.
        let rc = f(unsafe { d.as_ptr() }, arg);
        if rc < 0 {
            Err(virt::error::Error::last_error())
        } else {
            Ok(())
        }
    })
}
