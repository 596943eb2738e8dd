//! Logging the way `ocf_log` does, so admins find our lines where they find
//! the heartbeat agents' lines.
//!
//! Targets, as in `ocf-shellfuncs` (`__ha_log`/`ha_debug`):
//! - stderr is a tty (an admin at a shell): `TAG: PRIO: message` on stderr only;
//! - `HA_LOGFACILITY` (or `PCMK_logfacility`; `none` turns it off): syslog;
//! - `HA_LOGFILE` (or `PCMK_logfile`): appended, `DATE TAG:    PRIO: message`;
//! - neither of the two: `DATEPRIO: message` on stderr (Pacemaker logs it);
//! - `HA_DEBUGLOG`: appended too, when it is another file than the log file.
//!
//! Debug lines are dropped unless `HA_debug` is set and not `0`. The tag is
//! `HA_LOGTAG`, else `Type(instance)[pid]`. Exit reasons go to stderr with
//! `OCF_EXIT_REASON_PREFIX` (default `ocf-exit-reason:`) and are logged too.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use crate::env::Env;
use crate::trace::Destination;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Crit,
    Err,
    Warn,
    Info,
    Debug,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Crit => "CRIT",
            Level::Err => "ERROR",
            Level::Warn => "WARNING",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }
    fn syslog_priority(self) -> libc::c_int {
        match self {
            Level::Crit => libc::LOG_CRIT,
            Level::Err => libc::LOG_ERR,
            Level::Warn => libc::LOG_WARNING,
            Level::Info => libc::LOG_INFO,
            Level::Debug => libc::LOG_DEBUG,
        }
    }
}

/// Where lines go, decided once from the environment.
#[derive(Clone, Debug)]
pub struct Logger {
    pub tag: String,
    pub tty: bool,
    pub facility: Option<libc::c_int>,
    pub logfile: Option<PathBuf>,
    pub debuglog: Option<PathBuf>,
    pub debug: bool,
    pub datefmt: String,
    pub exit_reason_prefix: String,
    /// Where this run is traced (`trace_ra`; see [`crate::trace`]): every
    /// line, debug included.
    pub trace: Option<Destination>,
}

fn facility_by_name(name: &str) -> Option<libc::c_int> {
    Some(match name.to_ascii_lowercase().as_str() {
        "daemon" => libc::LOG_DAEMON,
        "user" => libc::LOG_USER,
        "auth" => libc::LOG_AUTH,
        "authpriv" => libc::LOG_AUTHPRIV,
        "cron" => libc::LOG_CRON,
        "kern" => libc::LOG_KERN,
        "lpr" => libc::LOG_LPR,
        "mail" => libc::LOG_MAIL,
        "news" => libc::LOG_NEWS,
        "syslog" => libc::LOG_SYSLOG,
        "uucp" => libc::LOG_UUCP,
        "local0" => libc::LOG_LOCAL0,
        "local1" => libc::LOG_LOCAL1,
        "local2" => libc::LOG_LOCAL2,
        "local3" => libc::LOG_LOCAL3,
        "local4" => libc::LOG_LOCAL4,
        "local5" => libc::LOG_LOCAL5,
        "local6" => libc::LOG_LOCAL6,
        "local7" => libc::LOG_LOCAL7,
        _ => return None,
    })
}

impl Logger {
    /// Decide the targets from `env`, for an instance of `resource_type`.
    pub fn from_env(env: &Env, resource_type: &str, instance: Option<&str>, tty: bool) -> Logger {
        let pick = |a: &str, b: &str| env.non_empty(a).or_else(|| env.non_empty(b));
        // log files are paths, which need not be UTF-8
        let file = |a: &str, b: &str| {
            env.non_empty_os(a)
                .or_else(|| env.non_empty_os(b))
                .map(PathBuf::from)
        };
        let tag = env
            .non_empty("HA_LOGTAG")
            .map(str::to_string)
            .unwrap_or_else(|| {
                let pid = std::process::id();
                match instance {
                    Some(i) => format!("{resource_type}({i})[{pid}]"),
                    None => format!("{resource_type}[{pid}]"),
                }
            });
        let facility = pick("HA_LOGFACILITY", "PCMK_logfacility")
            .filter(|f| *f != "none")
            .map(|f| facility_by_name(f).unwrap_or(libc::LOG_DAEMON));
        Logger {
            tag,
            tty,
            facility,
            logfile: file("HA_LOGFILE", "PCMK_logfile"),
            debuglog: file("HA_DEBUGLOG", "PCMK_debugfile"),
            debug: env.non_empty("HA_debug").is_some_and(|v| v != "0"),
            datefmt: env.get("HA_DATEFMT").unwrap_or("%Y/%m/%d_%T ").to_string(),
            exit_reason_prefix: env
                .non_empty("OCF_EXIT_REASON_PREFIX")
                .unwrap_or("ocf-exit-reason:")
                .to_string(),
            trace: None,
        }
    }

    /// Write one line to every target. `skip_stderr` is for messages that
    /// were already printed on stderr (exit reasons).
    pub fn log(&self, level: Level, msg: &str, skip_stderr: bool) {
        let msg = &without_rust_error_codes(msg);
        if let Some(trace) = &self.trace {
            let line = format!("{} {}: {msg}", format_now("%T"), level.label());
            match trace {
                Destination::File(path) => append_private(path, &line),
                Destination::Stderr => eprintln!("+ {line}"),
            }
        }
        if level == Level::Debug && !self.debug {
            return;
        }
        let line = format!("{}: {msg}", level.label());
        if self.tty {
            if !skip_stderr {
                eprintln!("{}: {line}", self.tag);
            }
            return;
        }
        let date = format_now(&self.datefmt);
        if let Some(facility) = self.facility {
            syslog(&self.tag, facility | level.syslog_priority(), &line);
        }
        if level != Level::Debug {
            if let Some(f) = &self.logfile {
                append(f, &format!("{date} {}:    {line}", self.tag));
            }
            if self.facility.is_none() && self.logfile.is_none() && !skip_stderr {
                eprintln!("{date}{line}");
            }
        } else if self.facility.is_none() && self.debuglog.is_none() {
            eprintln!("{}:\t{date}{line}", self.tag);
        }
        if let Some(d) = &self.debuglog {
            if level == Level::Debug || Some(d) != self.logfile.as_ref() {
                append(d, &format!("{}:\t{date}{line}", self.tag));
            }
        }
    }

    /// Print the exit reason for the cluster manager and log it.
    pub fn exit_reason(&self, msg: &str) {
        let msg = &without_rust_error_codes(msg);
        eprintln!("{}{msg}", self.exit_reason_prefix);
        self.log(Level::Err, msg, true);
    }
}

fn append(path: &PathBuf, line: &str) {
    // A log file we cannot write must not change the result of the action.
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

/// A message as an admin should read it: Rust's rendering of an OS error
/// ("No such file or directory (os error 2)") loses its " (os error N)"
/// tail; the system's own text stays.
pub fn without_rust_error_codes(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(" (os error ") {
        let tail = &rest[i + " (os error ".len()..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && tail[digits..].starts_with(')') {
            out.push_str(&rest[..i]);
            rest = &tail[digits + 1..];
        } else {
            out.push_str(&rest[..i + 1]);
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// Append to a trace file: its directory made (0700) as needed, the file
/// itself created 0600 and never followed through a symbolic link.
fn append_private(path: &std::path::Path, line: &str) {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    if let Ok(mut f) = file {
        let _ = writeln!(f, "{line}");
    }
}

#[allow(unsafe_code)] // FFI: openlog(3)/syslog(3)
fn syslog(tag: &str, priority: libc::c_int, line: &str) {
    static IDENT: OnceLock<CString> = OnceLock::new();
    let ident = IDENT.get_or_init(|| CString::new(tag.replace('\0', "")).unwrap_or_default());
    let Ok(msg) = CString::new(line.replace('\0', "")) else {
        return;
    };
    // SAFETY: `ident` lives for the whole process (a static), the format is
    // a constant "%s" and `msg` is a valid C string.
    unsafe {
        libc::openlog(ident.as_ptr(), 0, 0);
        libc::syslog(priority, c"%s".as_ptr(), msg.as_ptr());
    }
}

/// The local time formatted with strftime, as `hadate` does.
#[allow(unsafe_code)] // FFI: localtime_r(3)/strftime(3)
pub(crate) fn format_now(fmt: &str) -> String {
    let Ok(cfmt) = CString::new(fmt) else {
        return String::new();
    };
    let mut buf = [0u8; 128];
    // SAFETY: localtime_r writes into our `tm`; strftime writes at most
    // `buf.len()` bytes into `buf` and returns how many.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return String::new();
        }
        let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), cfmt.as_ptr(), &tm);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);

/// Set the process-wide logger (the dispatcher does this for each run).
pub fn init(logger: Logger) {
    *LOGGER.lock().unwrap_or_else(|e| e.into_inner()) = Some(logger);
}

/// Log through the process-wide logger; one reading the process
/// environment if the dispatcher has not set one.
pub fn log(level: Level, msg: &str) {
    let mut guard = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    let logger = guard.get_or_insert_with(|| {
        let tty = nix::unistd::isatty(std::io::stderr()).unwrap_or(false);
        Logger::from_env(&Env::from_process(), "ocf", None, tty)
    });
    logger.log(level, msg, false);
}

/// `ocf_log info`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Info, &format!($($arg)*)) };
}
/// `ocf_log warn`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Warn, &format!($($arg)*)) };
}
/// `ocf_log err`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Err, &format!($($arg)*)) };
}
/// `ocf_log debug`: only with `HA_debug`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Debug, &format!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ocf-log-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn tag_names_type_instance_and_pid() {
        let l = Logger::from_env(&Env::default(), "Filesystem", Some("fs1"), false);
        assert_eq!(l.tag, format!("Filesystem(fs1)[{}]", std::process::id()));
        let l = Logger::from_env(&Env::from_pairs([("HA_LOGTAG", "mine")]), "X", None, false);
        assert_eq!(l.tag, "mine");
    }

    #[test]
    fn facility_none_turns_syslog_off() {
        let l = Logger::from_env(
            &Env::from_pairs([("HA_LOGFACILITY", "none")]),
            "X",
            None,
            false,
        );
        assert_eq!(l.facility, None);
        let l = Logger::from_env(
            &Env::from_pairs([("HA_LOGFACILITY", "local3")]),
            "X",
            None,
            false,
        );
        assert_eq!(l.facility, Some(libc::LOG_LOCAL3));
        let l = Logger::from_env(
            &Env::from_pairs([("PCMK_logfacility", "daemon")]),
            "X",
            None,
            false,
        );
        assert_eq!(l.facility, Some(libc::LOG_DAEMON));
    }

    #[test]
    fn logfile_gets_info_but_debug_only_with_ha_debug() {
        let d = tmpdir("file");
        let file = d.join("ha.log");
        let dbg = d.join("debug.log");
        let env = Env::from_pairs([
            ("HA_LOGFILE", file.to_str().unwrap()),
            ("HA_DEBUGLOG", dbg.to_str().unwrap()),
            ("HA_LOGFACILITY", "none"),
            ("HA_DATEFMT", "DATE "),
        ]);
        let l = Logger::from_env(&env, "Filesystem", Some("fs1"), false);
        l.log(Level::Info, "mounting /mnt", false);
        l.log(Level::Debug, "hidden", false);
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text, format!("DATE  {}:    INFO: mounting /mnt\n", l.tag));
        let debug_text = std::fs::read_to_string(&dbg).unwrap();
        assert!(debug_text.contains("INFO: mounting /mnt"));
        assert!(!debug_text.contains("hidden"));

        let mut env2 = env.clone();
        env2.set("HA_debug", "1");
        let l = Logger::from_env(&env2, "Filesystem", Some("fs1"), false);
        l.log(Level::Debug, "now visible", false);
        assert!(std::fs::read_to_string(&dbg)
            .unwrap()
            .contains("DEBUG: now visible"));
        assert!(!std::fs::read_to_string(&file)
            .unwrap()
            .contains("now visible"));

        let mut env3 = env.clone();
        env3.set("HA_debug", "0");
        assert!(!Logger::from_env(&env3, "F", None, false).debug);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn exit_reason_prefix_defaults_and_overrides() {
        let l = Logger::from_env(&Env::default(), "X", None, false);
        assert_eq!(l.exit_reason_prefix, "ocf-exit-reason:");
        let l = Logger::from_env(
            &Env::from_pairs([("OCF_EXIT_REASON_PREFIX", "R:")]),
            "X",
            None,
            false,
        );
        assert_eq!(l.exit_reason_prefix, "R:");
    }

    #[test]
    fn no_rust_error_codes_reach_an_admin() {
        let e = std::fs::read("/nonexistent/x").unwrap_err();
        let msg = format!("cannot read /nonexistent/x: {e}");
        assert!(msg.contains("(os error 2)"));
        assert_eq!(
            without_rust_error_codes(&msg),
            "cannot read /nonexistent/x: No such file or directory"
        );
        assert_eq!(
            without_rust_error_codes("a (os error x) b"),
            "a (os error x) b"
        );
        assert_eq!(without_rust_error_codes("plain"), "plain");
    }

    #[test]
    fn dates_follow_ha_datefmt() {
        assert_eq!(format_now("fixed"), "fixed");
        assert_eq!(format_now("%Y").len(), 4);
    }
}
