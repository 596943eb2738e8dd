fn main() {
    ocf::main::<ra_lvm::LvmAgent>()
}
