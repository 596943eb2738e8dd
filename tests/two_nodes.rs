//! Two real nodes on one shared disk (issue 16): two guest kernels as two
//! cluster nodes, one raw image attached to both as their SAN LUN, a
//! private link between them (`support::two_nodes`, the lab).
//!
//! - [`lab_two_kernels_share_one_disk_and_one_link`]: the lab itself. Each
//!   node has its own hostname and watchdog; a block written with O_DIRECT
//!   on one kernel is read back on the other, both ways; a TCP exchange
//!   crosses the private link.
//!
//! Every test boots its own pair (labs run one after the other) and stops
//! it, also when it fails. No `vng`, QEMU or guest kernel: SKIP, unless
//! `RA_REQUIRE_GUEST` is set. Needs root.

mod support;

use std::time::Duration;

use support::two_nodes::{Lab, ADDRS, NODES};

/// The TCP port of the link probe (inside the private link only).
const PROBE_PORT: u16 = 5505;

/// Inside a guest: the lab's command channel (see `support::two_nodes`).
#[test]
#[ignore = "the driver of a lab node: runs inside its guest kernel"]
fn guest_node_driver() {
    assert!(
        support::guest::in_guest(),
        "guest_node_driver runs inside a lab node (support::two_nodes)"
    );
    support::two_nodes::driver();
}

#[test]
fn lab_two_kernels_share_one_disk_and_one_link() {
    let Some(mut lab) = Lab::boot("two-nodes lab") else {
        return;
    };
    // Two kernels, each with its own name and watchdogs.
    let mut boots = Vec::new();
    for (i, name) in NODES.iter().enumerate() {
        let n = lab.node(name);
        assert_eq!(n.sh(&["uname", "-n"]).trim(), *name);
        assert_eq!(n.addr, ADDRS[i]);
        boots.push(n.sh(&["cat", "/proc/sys/kernel/random/boot_id"]));
        n.sh(&["modprobe", "softdog"]);
        let mut ids = Vec::new();
        for w in n.sh(&["ls", "/sys/class/watchdog"]).split_whitespace() {
            ids.push(
                n.sh(&["cat", &format!("/sys/class/watchdog/{w}/identity")])
                    .trim()
                    .to_string(),
            );
        }
        eprintln!("{name}: watchdogs {ids:?}");
        for want in ["i6300ESB timer", "Software Watchdog"] {
            assert!(
                ids.iter().any(|i| i == want),
                "{name}: no {want} in {ids:?}"
            );
        }
    }
    assert_ne!(boots[0], boots[1], "one kernel, not two");

    // The link: node-a serves a token on its link-local address, node-b
    // reads it over the socket netdev.
    let nics = lab.link_up();
    eprintln!("private link: {nics:?}");
    let token = format!("hello-from-node-a-{}", std::process::id());
    lab.node("node-a").tcp_serve(ADDRS[0], PROBE_PORT, &token);
    let got = lab
        .node("node-b")
        .tcp_fetch(ADDRS[0], PROBE_PORT, Duration::from_secs(90));
    assert!(got.ok(), "node-b cannot reach node-a: {}", got.text());
    assert_eq!(got.stdout, token);
    eprintln!("link: node-b read node-a's token {}", got.stderr);

    // The disk: a block written (O_DIRECT, fsync) by one kernel is read
    // by the other, both ways, on the SBD partition (unused here).
    for (writer, reader, block) in [("node-a", "node-b", "0"), ("node-b", "node-a", "1")] {
        let data: Vec<u8> = (0..4096u32)
            .map(|i| (i as u8) ^ (block.as_bytes()[0]) ^ (std::process::id() as u8))
            .collect();
        let src = lab.path(&format!("{writer}/block-{block}.written"));
        let dst = lab.path(&format!("{reader}/block-{block}.read"));
        std::fs::write(&src, &data).unwrap();
        let part = lab.node(writer).shared_partition(1);
        lab.node(writer).sh(&[
            "dd",
            &format!("if={}", src.display()),
            &format!("of={part}"),
            "bs=4096",
            "count=1",
            &format!("seek={block}"),
            "oflag=direct",
            "conv=fsync",
        ]);
        let part = lab.node(reader).shared_partition(1);
        lab.node(reader).sh(&[
            "dd",
            &format!("if={part}"),
            &format!("of={}", dst.display()),
            "bs=4096",
            "count=1",
            &format!("skip={block}"),
            "iflag=direct",
        ]);
        assert!(
            std::fs::read(&dst).unwrap() == data,
            "{reader} did not read what {writer} wrote on the shared disk"
        );
        eprintln!("disk: {reader} read the block {writer} wrote");
    }
}
