fn main() {
    ocf::main::<ra_lvm_activate::LvmActivate>()
}
