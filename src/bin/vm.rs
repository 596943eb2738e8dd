//! `vm`: the rgmanager persona of the VirtualDomain agent (installed as
//! `/usr/share/cluster/vm.sh`).
fn main() {
    ra_rgmanager_vm::main()
}
