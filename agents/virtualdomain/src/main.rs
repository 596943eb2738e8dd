fn main() {
    ocf::main::<ra_virtualdomain::VirtualDomain>()
}
