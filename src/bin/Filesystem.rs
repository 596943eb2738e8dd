//! The `Filesystem` OCF agent.
fn main() {
    ocf::main::<ra_filesystem::Filesystem>()
}
