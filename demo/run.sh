#!/usr/bin/env bash
# The demo: high availability for a virtual machine, on a throw-away
# two-node Pacemaker cluster running our agents (provider heartbeat-rs).
#
#   sudo ./demo/run.sh
#
# Sets itself up (idempotently, without questions): finds rustup's cargo
# (also the invoking user's through sudo), checks Rust >= 1.80, installs the
# Debian packages it needs when missing (pacemaker, corosync, pcs, libvirt,
# QEMU, a kernel and busybox-static for the guest; .ci/install-libvirt.sh),
# builds the two agents and the demo program (examples/ha_demo.rs, built on
# the fixtures of tests/pacemaker.rs), then runs it: a group of a
# loop-backed filesystem and a tiny QEMU guest created with pcs, the guest
# killed and the filesystem unmounted behind the cluster's back and
# recovered, the guest live-migrated to the other node and back, a summary.
# Everything lives in namespaces and temporary directories and goes away at
# the end, also on failure or Ctrl-C; the cluster's logs are kept (the path
# is printed). demo/filesystem.sh is the smaller walk-through of one agent.
set -euo pipefail
cd "$(dirname "$0")/.."

. .ci/prelude.sh
ra_need_root demo "it starts a cluster, mounts a filesystem and runs a guest"
ra_find_cargo demo
trap ra_give_back EXIT
ra_apt_install e2fsprogs util-linux mount pacemaker pacemaker-cli-utils corosync iproute2 pcs
bash .ci/install-libvirt.sh

echo "== building the agents (Filesystem, VirtualDomain) and the demo"
cargo build --quiet --bin Filesystem --bin VirtualDomain --example ha_demo
# the program itself, not `cargo run`: it cleans up (also on Ctrl-C) and
# exits, then the EXIT trap gives back what root built
"${CARGO_TARGET_DIR:-target}/debug/examples/ha_demo"
