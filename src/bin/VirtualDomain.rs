//! The `VirtualDomain` OCF agent (links libvirt: gnu target only).
fn main() {
    ocf::main::<ra_virtualdomain::VirtualDomain>()
}
