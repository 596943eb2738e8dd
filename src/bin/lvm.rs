//! `lvm`: the rgmanager persona of the LVM agents (installed as
//! `/usr/share/cluster/lvm.sh`).
fn main() {
    ocf::main::<ra_rgmanager_lvm::RgLvm>()
}
