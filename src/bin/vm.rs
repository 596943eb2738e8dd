//! `vm`: the rgmanager persona of the VirtualDomain agent (installed as
//! `/usr/share/cluster/vm.sh`).
fn main() {
    ocf::main::<ra_rgmanager_vm::Vm>()
}
