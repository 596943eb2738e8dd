//! The domain's life on this node through libvirt: create (over the
//! backingfile overlay of `crate::overlay`), destroy, save and restore its
//! state (`snapshot`), the storage pools and networks it needs, and writing
//! its definition back to the config file (`save_config_on_stop`,
//! `sync_config_on_stop`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ocf::{Context, Deadline, Failure};
use virt::connect::Connect;
use virt::domain::Domain;
use virt::sys;

use crate::config_file::ConfigProblem;
use crate::lv::{self, DomState, LvError};
use crate::{domxml, lv_failure, VirtualDomain, POLL};

impl VirtualDomain {
    /// Write the domain's inactive XML back to `config` (atomically).
    pub(crate) fn save_config(&self, ctx: &Context, dom: &Domain, dl: &Deadline) {
        if !self.cfg.saves_config() {
            return;
        }
        // never over something that is no config file, nor into storage
        // that did not answer the read
        if let Some(p @ (ConfigProblem::NotAConfig(_) | ConfigProblem::Unanswered(_))) =
            &self.config_problem
        {
            ocf::warn!("save_config: {}; config left alone", p.reason());
            return;
        }
        let d = dom.clone();
        let flags = sys::VIR_DOMAIN_XML_INACTIVE | sys::VIR_DOMAIN_XML_SECURE;
        let xml = match lv::bounded(dl, "dumping the domain XML", move || d.xml_desc(flags)) {
            Ok(x) => x,
            Err(e) => {
                ocf::warn!("save_config: {e}");
                return;
            }
        };
        if domxml::parse(&xml).is_err() {
            ocf::warn!("save_config: libvirt returned XML we cannot read; config left alone");
            return;
        }
        if self.xml.as_ref().map(|(t, _)| t.as_str()) == Some(xml.as_str()) {
            return;
        }
        // heartbeat rewrites the file in place (`cat >`), keeping its mode;
        // here a new file with the old one's mode replaces it atomically
        let tmp = self.cfg.config.with_extension("ra-rs-tmp");
        let mode = std::fs::metadata(&self.cfg.config).map(|m| m.permissions());
        let res = std::fs::write(&tmp, &xml)
            .and_then(|_| match mode {
                Ok(m) => std::fs::set_permissions(&tmp, m),
                Err(_) => Ok(()),
            })
            .and_then(|_| std::fs::rename(&tmp, &self.cfg.config));
        match res {
            Ok(()) => ocf::info!(
                "saved the domain configuration to {}",
                self.cfg.config.display()
            ),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                ocf::warn!("cannot save config {}: {e}", self.cfg.config.display());
                return;
            }
        }
        if self.cfg.sync_config_on_stop {
            let out = ctx
                .tools()
                .command("csync2")
                .and_then(|c| Ok(c.arg("-x").arg(&self.cfg.config).run(dl)?));
            match out {
                Ok(o) if o.success() => {}
                Ok(o) => ocf::warn!("csync2 -x {}: {}", self.cfg.config.display(), o.message()),
                Err(f) => ocf::warn!("{}", f.reason),
            }
        }
    }

    /// Start the storage pools and networks the XML names, on `conn`.
    pub(crate) fn ensure_resources(&self, conn: &Connect, dl: &Deadline) -> Result<(), Failure> {
        if !self.cfg.start_resources {
            return Ok(());
        }
        let Some((_, parsed)) = &self.xml else {
            return Ok(());
        };
        for pool in &parsed.pools {
            let c = conn.clone();
            let p = pool.clone();
            lv::bounded(dl, "starting a storage pool", move || {
                let sp = c.lookup_storage_pool_by_name(&p)?;
                if sp.is_active()? {
                    sp.refresh(0)
                } else {
                    sp.create(0).map(|_| ())
                }
            })
            .map_err(|e| lv_failure(&format!("storage pool {pool}"), &e))?;
        }
        for net in &parsed.networks {
            let c = conn.clone();
            let n = net.clone();
            lv::bounded(dl, "starting a network", move || {
                let nw = c.lookup_network_by_name(&n)?;
                if !nw.is_active()? {
                    nw.create()?;
                }
                Ok(())
            })
            .map_err(|e| lv_failure(&format!("network {net}"), &e))?;
        }
        Ok(())
    }

    pub(crate) fn snapshot_file(&self, dom: &str) -> Option<PathBuf> {
        self.cfg
            .snapshot
            .as_ref()
            .map(|d| d.join(format!("{dom}.state")))
    }

    /// heartbeat's verify_undefined: a persistent definition of the domain
    /// would shadow our transient one; undefine it, keeping the config file
    /// (libvirt may delete it when it lives in its own directory).
    pub(crate) fn undefine_stale(
        &self,
        conn: &Connect,
        dom: &str,
        dl: &Deadline,
    ) -> Result<(), Failure> {
        let Some(d) = lv::lookup(conn, dom, dl).map_err(|e| lv_failure("lookup", &e))? else {
            return Ok(());
        };
        let keep = std::fs::read(&self.cfg.config).ok();
        let dd = d.clone();
        let r = lv::bounded(dl, "undefining the stale definition", move || {
            if dd.is_persistent()? {
                dd.undefine().map(|_| true)
            } else {
                Ok(false)
            }
        });
        match r {
            Ok(true) => ocf::info!("{dom}: undefined the stale persistent definition"),
            Ok(false) => {}
            Err(e) => ocf::warn!("{dom}: could not undefine: {e}"),
        }
        if let Some(bytes) = keep {
            if !self.cfg.config.exists() {
                let _ = std::fs::write(&self.cfg.config, bytes);
            }
        }
        Ok(())
    }

    /// Create `dom` from the config: a transient domain, or, over a
    /// `backingfile`, a defined one on its overlay image.
    pub(crate) fn create(
        &self,
        ctx: &Context,
        conn: &Connect,
        dom: &str,
        dl: &Deadline,
    ) -> Result<(), Failure> {
        let (xml, _) = self.xml.as_ref().ok_or_else(|| {
            self.config_failure()
                .unwrap_or_else(|| Failure::installed("config not readable"))
        })?;
        let classify = |what: &str, e: LvError| {
            if e.bad_config() {
                Failure::configured(format!("{what}: {e}"))
            } else {
                lv_failure(what, &e)
            }
        };
        let Some(backing) = &self.cfg.backingfile else {
            let c = conn.clone();
            let x = xml.clone();
            lv::bounded(dl, "creating the domain", move || {
                c.create_domain_xml(&x, 0)
            })
            .map_err(|e| classify(&format!("failed to start {dom}"), e))?;
            return Ok(());
        };
        let fresh = self.prepare_overlay(ctx, dom, backing, dl)?;
        let c = conn.clone();
        let x = xml.clone();
        let d = lv::bounded(dl, "defining the domain", move || c.define_domain_xml(&x))
            .map_err(|e| classify(&format!("failed to define {dom}"), e))?;
        // heartbeat copies the directories in whenever it has just created
        // the image (every stateless start, or the first one)
        if fresh {
            self.copy_in_dirs(ctx, dom, dl)?;
        }
        lv::bounded(dl, "starting the domain", move || d.create().map(|_| ()))
            .map_err(|e| classify(&format!("failed to start {dom}"), e))?;
        Ok(())
    }

    /// Wait until `dom` is active here and its monitor scripts pass.
    pub(crate) fn wait_active(
        &self,
        ctx: &Context,
        conn: &Connect,
        dom: &str,
        dl: &Deadline,
    ) -> Option<()> {
        dl.wait_for(POLL, || {
            let st = lv::state(conn, dom, dl).ok()?;
            if !st.active() {
                return None;
            }
            self.run_monitor_scripts(ctx, dl).ok()
        })
    }

    /// Destroy `dom` until it is off, within `dl`.
    pub(crate) fn destroy(&self, conn: &Connect, dom: &str, dl: &Deadline) -> Result<(), Failure> {
        ocf::info!("Issuing forced shutdown (destroy) request for domain {dom}.");
        let mut last = String::new();
        let off = dl.wait_for(Duration::from_millis(500), || {
            let d = match lv::lookup(conn, dom, dl) {
                Ok(None) => return Some(()),
                Ok(Some(d)) => d,
                Err(e) => {
                    last = e.to_string();
                    return None;
                }
            };
            match lv::dom_state(&d, dl) {
                Ok(DomState::Off) => return Some(()),
                Ok(_) => {}
                Err(e) => last = e.to_string(),
            }
            let dd = d.clone();
            match lv::bounded(dl, "destroying the domain", move || dd.destroy()) {
                Ok(()) => {}
                Err(e) if e.no_domain() || e.invalid_operation() => {}
                Err(e) => {
                    ocf::warn!("destroy {dom}: {e}");
                    last = e.to_string();
                }
            }
            matches!(lv::dom_state(&d, dl), Ok(DomState::Off)).then_some(())
        });
        off.ok_or_else(|| {
            Failure::generic(format!(
                "{dom} is still running after destroy; giving up at the stop timeout ({last})"
            ))
        })
    }

    /// Save the domain's state to the snapshot file (which stops it).
    pub(crate) fn save_snapshot(
        &self,
        d: &Domain,
        file: &Path,
        dl: &Deadline,
    ) -> Result<(), LvError> {
        lv::save(d, file, dl)
    }
}
