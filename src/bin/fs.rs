//! `fs`: the rgmanager persona of the Filesystem agent (installed as
//! `/usr/share/cluster/fs.sh`).
fn main() {
    ocf::main::<ra_rgmanager_fs::Fs>()
}
