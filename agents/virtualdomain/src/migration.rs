//! Live (and paused) migration: `migrate_options` read with virsh's option
//! names and mapped onto libvirt flags and parameters, `migrate_to` (one
//! virDomainMigrate3 call bounded by the deadline, the downtime setter
//! beside it), `migrate_from` (wait for the guest, resume a paused one), and
//! the warnings of validate-all about a domain that cannot migrate safely.
//! The URIs themselves are [`crate::uri`]'s.

use std::time::Duration;

use ocf::{Context, Deadline, Failure, OcfResult, OcfStatus};
use virt::domain::{Domain, MigrateParameters};
use virt::sys;

use crate::lv::{self, DomState, LvError};
use crate::{lv_failure, uri, VirtualDomain};

/// `migrate_options`, read with virsh's option names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrateOptions {
    pub flags: u32,
    pub migrateuri: Option<String>,
    pub listen_address: Option<String>,
    pub dname: Option<String>,
    pub disks_port: Option<i32>,
    pub compression: Option<String>,
    pub parallel_connections: Option<i32>,
}

impl MigrateOptions {
    /// Words split on white space, as heartbeat's unquoted `$migrate_opts`;
    /// `--opt=value` and `--opt value` both work.
    pub fn parse(text: &str) -> Result<MigrateOptions, String> {
        let mut o = MigrateOptions::default();
        let mut words = text.split_whitespace();
        while let Some(w) = words.next() {
            let (opt, inline) = match w.split_once('=') {
                Some((a, b)) => (a, Some(b.to_string())),
                None => (w, None),
            };
            let flag = match opt {
                "--live" => Some(sys::VIR_MIGRATE_LIVE),
                "--p2p" => Some(sys::VIR_MIGRATE_PEER2PEER),
                "--tunnelled" => Some(sys::VIR_MIGRATE_TUNNELLED),
                "--persistent" => Some(sys::VIR_MIGRATE_PERSIST_DEST),
                "--undefinesource" => Some(sys::VIR_MIGRATE_UNDEFINE_SOURCE),
                "--suspend" => Some(sys::VIR_MIGRATE_PAUSED),
                "--copy-storage-all" => Some(sys::VIR_MIGRATE_NON_SHARED_DISK),
                "--copy-storage-inc" => Some(sys::VIR_MIGRATE_NON_SHARED_INC),
                "--change-protection" => Some(sys::VIR_MIGRATE_CHANGE_PROTECTION),
                "--unsafe" => Some(sys::VIR_MIGRATE_UNSAFE),
                "--offline" => Some(sys::VIR_MIGRATE_OFFLINE),
                "--compressed" => Some(sys::VIR_MIGRATE_COMPRESSED),
                "--abort-on-error" => Some(sys::VIR_MIGRATE_ABORT_ON_ERROR),
                "--auto-converge" => Some(sys::VIR_MIGRATE_AUTO_CONVERGE),
                "--postcopy" => Some(sys::VIR_MIGRATE_POSTCOPY),
                "--tls" => Some(sys::VIR_MIGRATE_TLS),
                "--parallel" => Some(sys::VIR_MIGRATE_PARALLEL),
                "--direct" => Some(0),
                _ => None,
            };
            if let Some(f) = flag {
                if inline.is_some() {
                    return Err(format!("option {opt} takes no value"));
                }
                o.flags |= f;
                continue;
            }
            let mut value = || -> Result<String, String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => words
                        .next()
                        .map(str::to_string)
                        .ok_or_else(|| format!("option {opt} needs a value")),
                }
            };
            let int = |s: String| {
                s.parse::<i32>()
                    .map_err(|_| format!("{opt}: '{s}' is not a number"))
            };
            match opt {
                "--migrateuri" => o.migrateuri = Some(value()?),
                "--listen-address" => o.listen_address = Some(value()?),
                "--dname" => o.dname = Some(value()?),
                "--disks-port" => o.disks_port = Some(int(value()?)?),
                "--comp-methods" => o.compression = Some(value()?),
                "--parallel-connections" => o.parallel_connections = Some(int(value()?)?),
                other => return Err(format!("unsupported migrate option '{other}'")),
            }
        }
        Ok(o)
    }
}

/// `migration_mode`: how migrate_to moves the domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationMode {
    /// A live migration (heartbeat's only mode).
    Live,
    /// Suspend, move while paused, resume on the target (rgmanager's
    /// `migrate="pause"`).
    Paused,
}

/// Local file systems: a config on one of these is not on shared storage.
const LOCAL_FS: &[i64] = &[
    0xEF53,     // ext2/3/4
    0x58465342, // xfs
    0x9123683E, // btrfs
    0x01021994, // tmpfs
    0x858458f6, // ramfs
    0x2FC12FC1, // zfs
    0xF2F52010, // f2fs
];

impl VirtualDomain {
    /// migrate_to: move the running domain to the target node.
    pub(crate) fn migrate_out(&self, ctx: &Context) -> OcfResult {
        let dom = self.name()?;
        let dl = ctx.deadline();
        let target = ctx.migrate_target.as_deref().ok_or_else(|| {
            Failure::generic(format!(
                "{dom}: migrate_to needs the target node (OCF_RESKEY_CRM_meta_migrate_target)"
            ))
        })?;
        let conn = self.open(&dl).map_err(|e| self.connect_failure(&e))?;
        let d = match lv::lookup(&conn, dom, &dl).map_err(|e| lv_failure(dom, &e))? {
            Some(d) if lv::dom_state(&d, &dl).is_ok_and(|s| s.active()) => d,
            _ => {
                return Err(Failure::generic(format!(
                    "{dom}: migrate_to: Not active locally!"
                )))
            }
        };
        let hypervisor = match &self.cfg.hypervisor {
            Some(h) => h.clone(),
            None => {
                let c = conn.clone();
                lv::bounded(&dl, "libvirt URI", move || c.uri())
                    .map_err(|e| lv_failure("cannot read the hypervisor URI", &e))?
            }
        };
        let uris = uri::migration_uris(&self.uri_params(&hypervisor), target);
        self.save_config(ctx, &d, &dl);
        let t0 = std::time::Instant::now();
        let dconn = lv::open(Some(&uris.remote), &dl)
            .map_err(|e| lv_failure(&format!("{dom}: cannot connect to {}", uris.remote), &e))?;
        self.ensure_resources(&dconn, &dl)?;
        if self.cfg.migration_speed > 0 {
            ocf::info!(
                "{dom}: Setting live migration speed limit for {dom} (using: migrate-setspeed {}).",
                self.cfg.migration_speed
            );
        }
        let o = &self.cfg.migrate_options;
        let mut flags = o.flags;
        if self.cfg.migration_mode == MigrationMode::Live {
            flags |= sys::VIR_MIGRATE_LIVE;
        } else {
            flags &= !sys::VIR_MIGRATE_LIVE;
            let dd = d.clone();
            lv::bounded(&dl, "suspending the domain", move || dd.suspend())
                .map_err(|e| lv_failure(&format!("{dom}: cannot suspend for migration"), &e))?;
            ocf::info!("{dom}: suspended for offline migration");
        }
        let params = MigrateParameters {
            uri: uris.migrate.clone(),
            bandwidth: (self.cfg.migration_speed > 0).then_some(self.cfg.migration_speed),
            listen_address: o.listen_address.clone(),
            dest_name: o.dname.clone(),
            disks_port: o.disks_port,
            compression: o.compression.clone(),
            parallel_connections: o.parallel_connections,
            ..Default::default()
        };
        ocf::info!(
            "{dom}: Starting {} migration to {target} (remote URI {}, migrate URI {}).",
            if self.cfg.migration_mode == MigrationMode::Live {
                "live"
            } else {
                "offline"
            },
            uris.remote,
            uris.migrate.as_deref().unwrap_or("(libvirt's choice)")
        );
        let downtime = self.set_downtime(&d, &dl);
        let dd = d.clone();
        let dc = dconn.clone();
        let peer2peer = flags & sys::VIR_MIGRATE_PEER2PEER != 0;
        let remote = uris.remote.clone();
        let result = lv::bounded(&dl, "migration", move || {
            if peer2peer {
                dd.migrate_to_uri3(Some(&remote), params, flags)
                    .map(|_| None)
            } else {
                dd.migrate3(&dc, params, flags).map(Some)
            }
        });
        if let Some((done, setter)) = downtime {
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            // The setter may sit in a libvirt call that does not answer:
            // wait for it only inside the deadline, else leave it behind.
            let finished = dl.wait_for(Duration::from_millis(20), || {
                setter.is_finished().then_some(())
            });
            if finished.is_some() {
                let _ = setter.join();
            }
        }
        let moved = match result {
            Ok(m) => m,
            Err(e) => {
                if self.cfg.migration_mode == MigrationMode::Paused {
                    let dd = d.clone();
                    let _ = lv::bounded(&dl, "resuming", move || dd.resume());
                }
                if matches!(e, LvError::TimedOut(_)) {
                    let dd = d.clone();
                    let _ = lv::abort_job(&dd, &dl.capped(Duration::from_secs(2)));
                }
                return Err(lv_failure(
                    &format!("{dom}: migration to {target} failed"),
                    &e,
                ));
            }
        };
        if self.cfg.migration_mode == MigrationMode::Paused {
            let resumed = match moved {
                Some(nd) => lv::bounded(&dl, "resuming on the target", move || nd.resume()),
                None => {
                    let c = dconn.clone();
                    let n = dom.to_string();
                    lv::bounded(&dl, "resuming on the target", move || {
                        c.lookup_domain_by_name(&n)?.resume()
                    })
                }
            };
            if let Err(e) = resumed {
                ocf::warn!("{dom}: resuming on {target} failed ({e}); migrate_from will retry");
            }
        }
        self.forget(ctx);
        ocf::info!(
            "{dom}: migration to {target} succeeded ({} ms).",
            t0.elapsed().as_millis()
        );
        Ok(OcfStatus::Success)
    }

    /// migrate_from: the domain arrived here; wait for it, resume it.
    pub(crate) fn migrate_in(&self, ctx: &Context) -> OcfResult {
        let dom = self.name()?;
        let dl = ctx.deadline();
        // only named in messages: the domain arrives (or not) either way
        let source = match ctx.migrate_source.as_deref() {
            Some(s) => s.to_string(),
            None => "an unnamed node (OCF_RESKEY_CRM_meta_migrate_source is not set)".into(),
        };
        let conn = self.open_retry(&dl).map_err(|e| self.connect_failure(&e))?;
        if self.wait_active(ctx, &conn, dom, &dl).is_none() {
            return Err(Failure::generic(format!(
                "{dom}: Not active locally, migration from {source} failed!"
            )));
        }
        if let Ok(Some(d)) = lv::lookup(&conn, dom, &dl) {
            if self.cfg.migration_mode == MigrationMode::Paused
                && lv::dom_state(&d, &dl).is_ok_and(|s| s == DomState::Paused)
            {
                let dd = d.clone();
                lv::bounded(&dl, "resuming", move || dd.resume())
                    .map_err(|e| lv_failure(&format!("{dom}: cannot resume"), &e))?;
            }
            self.save_config(ctx, &d, &dl);
            self.note_emulator(ctx, &conn, &d, &dl);
        }
        self.remember(ctx, dom);
        self.refresh_utilization(ctx, &conn, dom, &dl);
        ocf::info!("{dom}: live migration from {source} succeeded.");
        Ok(OcfStatus::Success)
    }

    /// `migration_downtime`: the longest pause of the guest at the end of
    /// a live migration. heartbeat sets it 2 s after the migration started
    /// (`virsh migrate-setmaxdowntime`), which misses a migration that is
    /// over sooner. libvirt 3.x and later take it before the migration (a
    /// QEMU migration parameter, used by the next migration); an older one
    /// only while the migration job runs, so on "no migration"
    /// (VIR_ERR_OPERATION_INVALID) a thread retries until the job exists.
    /// The caller flags the end of the migration and joins the thread.
    pub(crate) fn set_downtime(
        &self,
        d: &Domain,
        dl: &Deadline,
    ) -> Option<(
        std::sync::Arc<std::sync::atomic::AtomicBool>,
        std::thread::JoinHandle<()>,
    )> {
        let ms = self.cfg.migration_downtime;
        if ms == 0 {
            return None;
        }
        let dd = d.clone();
        let first = lv::bounded(dl, "setting the migration downtime", move || {
            dd.migrate_set_max_downtime(ms, 0)
        });
        match first {
            Ok(()) => {
                ocf::info!("migration downtime set to {ms} ms");
                return None;
            }
            Err(e) if e.invalid_operation() => {
                ocf::debug!("migration downtime: {e}; setting it once the migration runs")
            }
            Err(e) => {
                ocf::warn!("cannot set migration downtime: {e}");
                return None;
            }
        }
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let over = done.clone();
        let dd = d.clone();
        let dl = *dl;
        let setter = std::thread::spawn(move || loop {
            match dd.migrate_set_max_downtime(ms, 0) {
                Ok(()) => {
                    ocf::info!("migration downtime set to {ms} ms");
                    return;
                }
                Err(e) => {
                    if over.load(std::sync::atomic::Ordering::Relaxed) || dl.expired() {
                        ocf::warn!("cannot set migration downtime: {e}");
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        });
        Some((done, setter))
    }

    pub(crate) fn uri_params<'a>(&'a self, hypervisor: &'a str) -> uri::UriParams<'a> {
        uri::UriParams {
            hypervisor,
            remoteuri: self.cfg.remoteuri.as_deref(),
            migrateuri: self.cfg.migrateuri.as_deref(),
            migration_transport: self.cfg.migration_transport.as_deref(),
            migration_user: self.cfg.migration_user.as_deref(),
            migration_network_suffix: self.cfg.migration_network_suffix.as_deref(),
            options_migrateuri: self.cfg.migrate_options.migrateuri.as_deref(),
            migrateport: self.migrateport,
        }
    }

    /// What makes this domain unsafe to migrate (validate-all, depth 10).
    pub fn migration_warnings(&self, ctx: &Context) -> Vec<String> {
        let mut w = Vec::new();
        let migrating = ctx
            .env
            .non_empty("OCF_RESKEY_CRM_meta_allow_migrate")
            .is_some_and(ocf::is_true)
            || self.cfg.remoteuri.is_some()
            || self.cfg.migration_transport.is_some()
            || self.cfg.migrateuri.is_some();
        if let Some((_, parsed)) = &self.xml {
            for disk in &parsed.disks {
                if disk.device == "cdrom" || disk.device == "floppy" || disk.readonly {
                    continue;
                }
                if disk.cache.as_deref() != Some("none") {
                    w.push(format!(
                        "disk {} has cache='{}', not cache='none': live migration is unsafe",
                        disk.source.as_deref().unwrap_or("?"),
                        disk.cache.as_deref().unwrap_or("default")
                    ));
                }
            }
        }
        if migrating {
            if let Ok(fs) = nix::sys::statfs::statfs(&self.cfg.config) {
                let t = fs.filesystem_type().0;
                if LOCAL_FS.contains(&t) {
                    w.push(format!(
                        "config {} is on a local file system, not on shared storage, while the resource migrates",
                        self.cfg.config.display()
                    ));
                }
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_options_map_to_flags_and_parameters() {
        let o = MigrateOptions::parse("--p2p --listen-address 127.0.0.1 --migrateuri=tcp://%n")
            .unwrap();
        assert_eq!(o.flags, sys::VIR_MIGRATE_PEER2PEER);
        assert_eq!(o.listen_address.as_deref(), Some("127.0.0.1"));
        assert_eq!(o.migrateuri.as_deref(), Some("tcp://%n"));
        assert!(MigrateOptions::parse("--bogus").is_err());
        assert!(MigrateOptions::parse("--listen-address").is_err());
        assert!(MigrateOptions::parse("--p2p=yes").is_err());
        assert_eq!(
            MigrateOptions::parse("").unwrap(),
            MigrateOptions::default()
        );
    }
}
