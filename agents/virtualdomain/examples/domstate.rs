//! The bare libvirt state query the benchmark (bench/virtualdomain.sh)
//! compares the agent's monitor with: the same `virt` crate and build, one
//! connection, one lookup by name, one virDomainGetState, nothing else.
//!
//!     domstate URI NAME      prints the state ("running", ...)
//!
//! Never installed; exit 1 on any libvirt error.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, uri, name] = &args[..] else {
        eprintln!("usage: domstate URI NAME");
        std::process::exit(2);
    };
    let state = virt::connect::Connect::open(Some(uri))
        .and_then(|c| c.lookup_domain_by_name(name))
        .and_then(|d| d.state())
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        });
    println!("{}", state.0);
}
