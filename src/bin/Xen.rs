fn main() {
    ocf::main::<ra_xen::Xen>()
}
