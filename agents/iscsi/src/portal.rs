//! The `portal` parameter: `{ip_address|hostname}[:port]` as open-iscsi
//! writes it (`[v6addr]:port` for IPv6, an optional `,tpgt` suffix as
//! discovery prints it), and whether a session's address is this portal.
//!
//! The heartbeat agent greps `] $portal` in `iscsiadm -m session`, so
//! `10.0.0.1` also matched `10.0.0.10:3260`, and `host` (no port) matched
//! every port of the host: two portals of one target (multipath) were
//! confused. Here the port is always explicit (3260 by default) and the
//! addresses are compared as addresses.

use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use ocf::Deadline;

/// The iSCSI well-known port.
pub const DEFAULT_PORT: u16 = 3260;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Portal {
    /// An address or a host name, without brackets.
    pub host: String,
    pub port: u16,
}

/// An address without an IPv6 zone (`fe80::1%eth0`), parsed.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.split('%').next().unwrap_or(s);
    s.parse().ok()
}

impl Portal {
    /// Parse a portal as the parameter or discovery output gives it.
    pub fn parse(raw: &str) -> Result<Portal, String> {
        let s = raw.trim();
        // Discovery prints `addr:port,tpgt`: the tag is not part of the
        // address.
        let s = match s.rsplit_once(',') {
            Some((a, tpgt)) if !tpgt.is_empty() && tpgt.bytes().all(|b| b.is_ascii_digit()) => a,
            _ => s,
        };
        if s.is_empty() {
            return Err("empty portal".into());
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("whitespace in portal".into());
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| "missing ']' after an IPv6 address".to_string())?;
            match after {
                "" => (h, None),
                a => match a.strip_prefix(':') {
                    Some(p) => (h, Some(p)),
                    None => return Err(format!("unexpected '{a}' after ']'")),
                },
            }
        } else if s.matches(':').count() == 1 {
            let (h, p) = s.split_once(':').unwrap_or((s, ""));
            (h, Some(p))
        } else {
            // No colon, or a bare IPv6 address (no port possible).
            (s, None)
        };
        if host.is_empty() {
            return Err("no address or host name".into());
        }
        if host.contains(':') && parse_ip(host).is_none() {
            return Err(format!("'{host}' is not an IPv6 address"));
        }
        if host.starts_with('-') {
            return Err(format!("'{host}' is not a host name"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(format!("'{p}' is not a port number")),
            },
        };
        Ok(Portal {
            host: host.to_string(),
            port,
        })
    }

    /// The host as an address, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        parse_ip(&self.host)
    }

    /// `addr:port`, `[v6addr]:port`: what `iscsiadm -p` gets. The port is
    /// always written: without it iscsiadm matches the node records of
    /// every port of that address.
    pub fn arg(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether a session connected to `address`:`port` is on this portal,
    /// given the addresses this portal's host name resolves to (`None` for
    /// an address literal).
    pub fn matches(&self, address: &str, port: u16, resolved: &[IpAddr]) -> bool {
        if port != self.port {
            return false;
        }
        match (self.ip(), parse_ip(address)) {
            (Some(ours), Some(theirs)) => same_ip(ours, theirs),
            (None, Some(theirs)) => resolved.iter().any(|r| same_ip(*r, theirs)),
            _ => self.host.eq_ignore_ascii_case(address),
        }
    }

    /// The addresses of a host name (nothing for an address literal),
    /// resolved on a helper thread so a dead name server cannot hold us
    /// past `deadline`.
    pub fn resolve(&self, deadline: &Deadline) -> Result<Vec<IpAddr>, String> {
        if self.ip().is_some() {
            return Ok(Vec::new());
        }
        let query = (self.host.clone(), self.port);
        let limit = deadline.remaining().max(Duration::from_millis(100));
        let answer = deadline.on_thread(limit, move || {
            query
                .to_socket_addrs()
                .map(|it| it.map(|a| a.ip()).collect::<Vec<_>>())
        });
        match answer {
            Some(Ok(v)) if !v.is_empty() => Ok(v),
            Some(Ok(_)) => Err(format!("{} has no address", self.host)),
            Some(Err(e)) => Err(format!("cannot resolve {}: {e}", self.host)),
            None => Err(format!(
                "cannot resolve {}: no answer in {:.1}s",
                self.host,
                limit.as_secs_f64()
            )),
        }
    }
}

/// IPv4 and its IPv4-mapped IPv6 form are one address.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    canon(a) == canon(b)
}

impl std::fmt::Display for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.arg())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Portal {
        Portal::parse(s).unwrap()
    }

    #[test]
    fn forms_open_iscsi_writes() {
        assert_eq!(
            p("10.0.0.1"),
            Portal {
                host: "10.0.0.1".into(),
                port: 3260
            }
        );
        assert_eq!(p("10.0.0.1:3261").port, 3261);
        assert_eq!(p("10.0.0.1:3260,1"), p("10.0.0.1:3260"));
        assert_eq!(p("storage.example:3262").host, "storage.example");
        assert_eq!(
            p("[fe80::1]:3261"),
            Portal {
                host: "fe80::1".into(),
                port: 3261
            }
        );
        assert_eq!(p("[fe80::1]").port, 3260);
        assert_eq!(p("fe80::1").host, "fe80::1");
        assert_eq!(p("[2001:db8::5]:3260,2").arg(), "[2001:db8::5]:3260");
        assert_eq!(p(" 10.0.0.1 ").arg(), "10.0.0.1:3260");
    }

    #[test]
    fn malformed_portals_are_refused() {
        for bad in [
            "",
            " ",
            "10.0.0.1:",
            "10.0.0.1:x",
            "10.0.0.1:0",
            "10.0.0.1:70000",
            "[fe80::1",
            "[fe80::1]x",
            ":3260",
            "a b:3260",
            "fe80::zz",
            "-p:3260",
        ] {
            assert!(Portal::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn multipath_portals_are_never_confused() {
        let a = p("127.0.0.1:3260");
        assert!(a.matches("127.0.0.1", 3260, &[]));
        assert!(!a.matches("127.0.0.1", 3261, &[]), "other port");
        assert!(
            !a.matches("127.0.0.10", 3260, &[]),
            "prefix of another address"
        );
        assert!(!p("10.0.0.1").matches("10.0.0.10", 3260, &[]));
        assert!(p("10.0.0.1").matches("::ffff:10.0.0.1", 3260, &[]));
        assert!(p("[fe80::0:1]:3260").matches("fe80::1", 3260, &[]));
        let named = p("san-a:3260");
        let ips: Vec<IpAddr> = vec!["192.0.2.7".parse().unwrap()];
        assert!(named.matches("192.0.2.7", 3260, &ips));
        assert!(!named.matches("192.0.2.8", 3260, &ips));
        assert!(!named.matches("192.0.2.7", 3260, &[]));
    }

    #[test]
    fn literals_need_no_resolution() {
        let d = Deadline::after(Duration::from_secs(5));
        assert!(p("127.0.0.1").resolve(&d).unwrap().is_empty());
        assert!(!p("localhost").resolve(&d).unwrap().is_empty());
    }
}
