fn main() {
    ocf::main::<ra_iscsi::Iscsi>()
}
