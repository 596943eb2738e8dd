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

if [ "$(id -u)" != 0 ]; then
    echo "demo: it starts a cluster, mounts a filesystem and runs a guest: run it as root (sudo ./demo/run.sh)" >&2
    exit 1
fi
# rustup's cargo, also when sudo reset PATH and HOME: the invoking user's
# toolchain (its rustup home too, or rustup would install another one here)
for home in "$HOME" "$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)"; do
    if [ -n "$home" ] && [ -x "$home/.cargo/bin/cargo" ]; then
        PATH=$home/.cargo/bin:$PATH
        [ -d "$home/.rustup" ] && export RUSTUP_HOME=${RUSTUP_HOME:-$home/.rustup}
        break
    fi
done
export PATH
command -v cargo >/dev/null || {
    echo "demo: cargo not found: install Rust with rustup (https://rustup.rs), then run this again" >&2
    exit 1
}
rustc_minor=$(rustc --version | sed -n 's/^rustc 1\.\([0-9]*\).*/\1/p')
if [ -z "$rustc_minor" ] || [ "$rustc_minor" -lt 80 ]; then
    echo "demo: $(rustc --version) is too old: Rust >= 1.80 is needed (rustup update stable)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# No init system in containers: keep package scripts from starting daemons.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
fi
need=()
for pkg in e2fsprogs util-linux mount pacemaker pacemaker-cli-utils corosync iproute2 pcs \
    libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config \
    qemu-system-x86 busybox-static cpio linux-image-amd64; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        e2fsprogs util-linux mount pacemaker pacemaker-cli-utils corosync iproute2 pcs >/dev/null
    bash .ci/install-libvirt.sh
fi

echo "== building the agents (Filesystem, VirtualDomain) and the demo"
cargo build --quiet --bin Filesystem --bin VirtualDomain --example ha_demo
exec cargo run --quiet --example ha_demo
