fn main() {
    ocf::main::<ra_lvmlockd::Lvmlockd>()
}
