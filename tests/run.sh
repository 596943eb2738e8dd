#!/usr/bin/env bash
# The test command: installs everything the test suite needs (idempotently,
# without questions), then runs every test.
#
#   sudo ./tests/run.sh [cargo test arguments...]
#
# Needs root (tests mount loop devices, boot guest kernels, start private
# libvirt daemons and clusters) and a Rust toolchain from rustup (>= 1.80;
# found in ~/.cargo/bin and in the invoking user's, also through sudo).
# Installs with apt-get: resource-agents (ocf-tester, ra-api-1.dtd, the
# heartbeat agents compared against), libxml2-utils, e2fsprogs, xfsprogs,
# pacemaker, corosync, pcs, rpm, libvirt (daemons, libvirt-dev), QEMU, a
# stock Debian kernel, lvm2, open-iscsi and virtme-ng (pip); the musl target
# with rustup. Then builds the shipped binaries (`cargo static-agents`,
# `cargo libvirt-agents`) and runs `cargo test --workspace`, ending with
# one line `tests: N passed, N failed` over every test binary.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "tests/run.sh: the tests need root (loop devices, guest kernels, clusters): run it with sudo" >&2
    exit 1
fi
# rustup's cargo, also when sudo reset PATH
for home in "$HOME" "$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)"; do
    [ -n "$home" ] && [ -x "$home/.cargo/bin/cargo" ] && PATH=$home/.cargo/bin:$PATH
done
export PATH
command -v cargo >/dev/null || {
    echo "tests/run.sh: cargo not found: install Rust with rustup (https://rustup.rs), then run this again" >&2
    exit 1
}
rustc_minor=$(rustc --version | sed -n 's/^rustc 1\.\([0-9]*\).*/\1/p')
if [ -z "$rustc_minor" ] || [ "$rustc_minor" -lt 80 ]; then
    echo "tests/run.sh: $(rustc --version) is too old: Rust >= 1.80 is needed (rustup update stable)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# No init system in containers: keep package scripts from starting daemons.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
fi
need=()
for pkg in resource-agents libxml2-utils e2fsprogs xfsprogs util-linux mount psmisc \
    pacemaker pacemaker-cli-utils corosync iproute2 pcs rpm libvirt-dev pkg-config; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# guest kernel, QEMU, LVM, open-iscsi and virtme-ng (tests/lvm.rs, iscsi.rs)
bash .ci/install-guest.sh >/dev/null
export RA_REQUIRE_GUEST=${RA_REQUIRE_GUEST:-1}
# libvirt's daemons and QEMU (tests/virtualdomain.rs, pacemaker.rs)
bash .ci/install-libvirt.sh
rustup target list --installed | grep -qx x86_64-unknown-linux-musl ||
    rustup target add x86_64-unknown-linux-musl

# the shipped binaries: tests/packaging.rs checks them (static, no NSS)
cargo static-agents --quiet
export RA_REQUIRE_RELEASE=${RA_REQUIRE_RELEASE:-1}
cargo libvirt-agents --quiet

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
