//! What this agent knows about its guest while libvirtd cannot be asked
//! (down, or frozen): heartbeat's `pid_status`, made safe. A running
//! emulator process proves the guest runs, for any driver; finding none
//! proves it stopped only for a QEMU guest of this host whose UUID is known
//! ([`crate::emulator`] reads the process table). That UUID is kept here
//! whenever libvirt shows the guest running, so a monitor or stop with the
//! daemon away can still tell "stopped" from "cannot tell"; anywhere else
//! the answer is an error, never "not running".

use ocf::{Context, Deadline};
use virt::connect::Connect;
use virt::domain::Domain;

use crate::{emulator, lv, VirtualDomain};

/// What the process table says about a domain while libvirt cannot be
/// asked.
pub(crate) enum Evidence {
    /// Its emulator process runs.
    Running,
    /// No emulator process, and none would go unseen (a guest of this
    /// host's QEMU driver with a known UUID).
    Stopped,
    /// No process found, which proves nothing here: why.
    Unknown(String),
}

impl VirtualDomain {
    /// The domain runs here: keep what finds its emulator without libvirt.
    pub(crate) fn note_running(&self, ctx: &Context, conn: &Connect, dom: &str, dl: &Deadline) {
        if let Ok(Some(d)) = lv::lookup(conn, dom, dl) {
            self.note_emulator(ctx, conn, &d, dl);
        }
    }

    /// The UUID of the domain's QEMU process, when the domain is a guest
    /// of this host's QEMU driver: kept when libvirt showed it running
    /// here, else fixed by the config (`<uuid>` of a kvm/qemu domain).
    fn qemu_uuid(&self, ctx: &Context) -> Option<String> {
        let uri = self
            .cfg
            .hypervisor
            .as_deref()
            .or(ctx.env.non_empty("LIBVIRT_DEFAULT_URI"));
        if uri.is_some_and(|u| !emulator::local_qemu_uri(u)) {
            return None;
        }
        self.emulator_record
            .read(&ctx.env)
            .or_else(|| {
                let (_, x) = self.xml.as_ref()?;
                matches!(x.kind.as_deref(), Some("kvm" | "qemu"))
                    .then(|| x.uuid.clone())
                    .flatten()
            })
            .filter(|u| emulator::valid_uuid(u))
    }

    /// The domain runs (libvirt says so): keep the UUID of its emulator
    /// when it is a QEMU guest of this host, for [`Self::without_libvirt`].
    pub(crate) fn note_emulator(&self, ctx: &Context, conn: &Connect, d: &Domain, dl: &Deadline) {
        let uri = match &self.cfg.hypervisor {
            Some(h) => h.clone(),
            None => {
                let c = conn.clone();
                match lv::bounded(dl, "libvirt URI", move || c.uri()) {
                    Ok(u) => u,
                    Err(_) => return,
                }
            }
        };
        if !emulator::local_qemu_uri(&uri) {
            return;
        }
        if let Ok(uuid) = d.uuid_string() {
            self.emulator_record.keep(&ctx.env, &uuid);
        }
    }

    /// Whether domain `dom` runs, from the process table alone (libvirt is
    /// unreachable). A running emulator (by `-name` or by the recorded
    /// UUID) is proof for any driver; its absence only where nothing would
    /// go unseen ([`emulator`]).
    pub(crate) fn without_libvirt(&self, ctx: &Context, dom: &str) -> Evidence {
        let uuid = self.qemu_uuid(ctx);
        if !emulator::emulator_pids(dom).is_empty()
            || uuid
                .as_deref()
                .is_some_and(|u| !emulator::uuid_pids(u).is_empty())
        {
            return Evidence::Running;
        }
        if uuid.is_some() {
            return Evidence::Stopped;
        }
        let uri = self
            .cfg
            .hypervisor
            .as_deref()
            .or(ctx.env.non_empty("LIBVIRT_DEFAULT_URI"));
        Evidence::Unknown(match uri {
            Some(u) if !emulator::local_qemu_uri(u) => format!(
                "the guests of {u} are not processes of this host, so finding no emulator proves nothing"
            ),
            _ => format!(
                "libvirt never showed {dom} running here as a QEMU guest, so no emulator UUID is known to look for"
            ),
        })
    }
}
