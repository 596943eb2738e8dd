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

. .ci/prelude.sh
ra_need_root tests/run.sh "the tests need root (loop devices, guest kernels, clusters)"
ra_find_cargo tests/run.sh
trap ra_give_back EXIT
ra_apt_install resource-agents libxml2-utils e2fsprogs xfsprogs util-linux mount psmisc \
    pacemaker pacemaker-cli-utils corosync iproute2 pcs rpm libvirt-dev pkg-config
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
trap 'rm -f "$log"; ra_give_back' EXIT
status=0
cargo test --workspace "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
