//! The remote URI and the migrate URI of `migrate_to`, built exactly as the
//! heartbeat agent builds them (`VirtualDomain_migrate_to`, `mk_migrateuri`),
//! but on strings: no sed, so a node name holding `/`, `&` or `\` is
//! substituted literally.

/// What `migrate_to` needs to know to build its URIs.
#[derive(Clone, Debug, Default)]
pub struct UriParams<'a> {
    /// The local hypervisor URI (the `hypervisor` parameter, else libvirt's).
    pub hypervisor: &'a str,
    pub remoteuri: Option<&'a str>,
    pub migrateuri: Option<&'a str>,
    pub migration_transport: Option<&'a str>,
    pub migration_user: Option<&'a str>,
    pub migration_network_suffix: Option<&'a str>,
    /// `--migrateuri=` taken out of `migrate_options`.
    pub options_migrateuri: Option<&'a str>,
    pub migrateport: i64,
}

/// `%n` replaced by `node`, everything else literal.
pub fn subst_node(template: &str, node: &str) -> String {
    template.replace("%n", node)
}

/// `foo.example.com` with suffix `-mig` is `foo-mig.example.com`.
pub fn suffixed(node: &str, suffix: &str) -> String {
    // sed `s,^\([^.]\+\),\1SUFFIX,`: nothing happens without a first label.
    let end = node.find('.').unwrap_or(node.len());
    if end == 0 {
        return node.to_string();
    }
    format!("{}{suffix}{}", &node[..end], &node[end..])
}

/// heartbeat accepts a `migration_user` only when it looks like a user name.
pub fn valid_user(user: &str) -> bool {
    let mut chars = user.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `scheme://host:port/path` with scheme + `transport` and `target` as host,
/// keeping port and path: heartbeat's
/// `s,\(.*\)://[^/:]*\(:\?[0-9]*\)/\(.*\),\1T://N\2/\3,`.
/// A URI the expression does not match is returned unchanged.
pub fn rewrite_hypervisor(hypervisor: &str, transport_suffix: &str, target: &str) -> String {
    let Some(sep) = hypervisor.rfind("://") else {
        return hypervisor.to_string();
    };
    let scheme = &hypervisor[..sep];
    let rest = &hypervisor[sep + 3..];
    let host_end = rest.find(['/', ':']).unwrap_or(rest.len());
    let after_host = &rest[host_end..];
    let (port, after_port) = match after_host.strip_prefix(':') {
        Some(p) => {
            let digits = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
            (&after_host[..1 + digits], &p[digits..])
        }
        None => ("", after_host),
    };
    let Some(path) = after_port.strip_prefix('/') else {
        return hypervisor.to_string();
    };
    format!("{scheme}{transport_suffix}://{target}{port}/{path}")
}

/// The URIs of one migration: where libvirt connects (`remote`) and where
/// the memory goes (`migrate`, None lets libvirt choose).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationUris {
    pub remote: String,
    pub migrate: Option<String>,
}

/// Build both URIs for migrating to `target`, as heartbeat does, quirks
/// included: without `remoteuri`, the node substituted for `%n` in the
/// migrate URI already carries the network suffix and the `user@`.
pub fn migration_uris(p: &UriParams, target: &str) -> MigrationUris {
    let suffix = p.migration_network_suffix.unwrap_or("");
    let mut node = target.to_string();
    let remote = match p.remoteuri {
        Some(r) => subst_node(r, target),
        None => {
            let transport = match p.migration_transport {
                Some(t) if !t.is_empty() => format!("+{t}"),
                _ => String::new(),
            };
            node = suffixed(&node, suffix);
            if let Some(u) = p.migration_user.filter(|u| valid_user(u)) {
                node = format!("{u}@{node}");
            }
            rewrite_hypervisor(p.hypervisor, &transport, &node)
        }
    };
    let migrate = if let Some(m) = p.migrateuri {
        Some(subst_node(m, &node))
    } else if let Some(m) = p.options_migrateuri {
        Some(subst_node(m, &node))
    } else if !suffix.is_empty() {
        // mk_migrateuri: from the raw target node, by hypervisor driver.
        let mig_target = suffixed(target, suffix);
        let driver = p.hypervisor.split(['+', ':']).next().unwrap_or("");
        match driver {
            "qemu" => Some(format!("tcp:{mig_target}:{}", p.migrateport)),
            "xen" => Some(mig_target),
            other => {
                ocf::warn!("Migration via dedicated network currently not supported for {other}.");
                None
            }
        }
    } else {
        None
    };
    MigrationUris { remote, migrate }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(h: &str) -> UriParams<'_> {
        UriParams {
            hypervisor: h,
            migrateport: 49152,
            ..Default::default()
        }
    }

    #[test]
    fn hypervisor_uri_rewritten_like_the_sed_expression() {
        assert_eq!(
            rewrite_hypervisor("qemu:///system", "+ssh", "nodeB-mig"),
            "qemu+ssh://nodeB-mig/system"
        );
        assert_eq!(
            rewrite_hypervisor("qemu://foo:9999/system", "+tcp", "bar"),
            "qemu+tcp://bar:9999/system"
        );
        assert_eq!(rewrite_hypervisor("xen:///", "", "n2"), "xen://n2/");
        // no match: unchanged, as sed leaves it
        assert_eq!(
            rewrite_hypervisor("qemu:system", "+ssh", "n"),
            "qemu:system"
        );
        // the query string stays in the path, as in heartbeat
        assert_eq!(
            rewrite_hypervisor("qemu:///system?socket=/x", "", "n"),
            "qemu://n/system?socket=/x"
        );
    }

    #[test]
    fn transport_user_and_suffix_build_the_remote_uri() {
        let mut p = base("qemu:///system");
        p.migration_transport = Some("ssh");
        p.migration_user = Some("migrator");
        p.migration_network_suffix = Some("-mig");
        let u = migration_uris(&p, "node2.example.com");
        assert_eq!(u.remote, "qemu+ssh://migrator@node2-mig.example.com/system");
        assert_eq!(
            u.migrate.as_deref(),
            Some("tcp:node2-mig.example.com:49152")
        );
        // an invalid user name is ignored, as heartbeat does
        p.migration_user = Some("Bad User");
        assert_eq!(
            migration_uris(&p, "node2").remote,
            "qemu+ssh://node2-mig/system"
        );
    }

    #[test]
    fn remoteuri_and_migrateuri_substitute_percent_n_literally() {
        let mut p = base("qemu:///system");
        p.remoteuri = Some("qemu+tcp://%n/system?x=%n");
        p.migrateuri = Some("tcp://%n-mig");
        p.migration_user = Some("u");
        p.migration_network_suffix = Some("-s");
        let u = migration_uris(&p, "a/b&c\\d");
        assert_eq!(u.remote, "qemu+tcp://a/b&c\\d/system?x=a/b&c\\d");
        // with remoteuri, %n is the raw target
        assert_eq!(u.migrate.as_deref(), Some("tcp://a/b&c\\d-mig"));
        // without remoteuri, %n carries suffix and user (heartbeat's quirk)
        p.remoteuri = None;
        let u = migration_uris(&p, "n2");
        assert_eq!(u.migrate.as_deref(), Some("tcp://u@n2-s-mig"));
    }

    #[test]
    fn options_migrateuri_is_used_when_migrateuri_is_not_set() {
        let mut p = base("qemu:///system");
        p.options_migrateuri = Some("tcp://%n:4444");
        let u = migration_uris(&p, "n2");
        assert_eq!(u.remote, "qemu://n2/system");
        assert_eq!(u.migrate.as_deref(), Some("tcp://n2:4444"));
        p.migrateuri = Some("tcp://fixed");
        assert_eq!(
            migration_uris(&p, "n2").migrate.as_deref(),
            Some("tcp://fixed")
        );
    }

    #[test]
    fn suffix_goes_after_the_first_label_and_xen_gets_a_bare_host() {
        assert_eq!(suffixed("a.b.c", "-m"), "a-m.b.c");
        assert_eq!(suffixed("a", "-m"), "a-m");
        let mut p = base("xen:///");
        p.migration_network_suffix = Some("-m");
        assert_eq!(
            migration_uris(&p, "n2.x").migrate.as_deref(),
            Some("n2-m.x")
        );
        let p = base("qemu:///system");
        assert_eq!(migration_uris(&p, "n2").migrate, None);
    }
}
