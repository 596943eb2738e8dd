#!/usr/bin/env bash
# Installs what the guest-kernel tests (tests/lvm.rs, tests/iscsi.rs,
# tests/lvmlockd.rs, tests/two_nodes*.rs) need on
# a fresh Debian machine, as root: a stock Debian kernel with its modules
# (device-mapper, loop, LIO, iSCSI), QEMU to boot it under TCG, LVM tools,
# the open-iscsi initiator, and virtme-ng (`vng`) from PyPI, which boots that
# kernel over the host's root filesystem.
# Idempotent; called by .ci/run before `cargo test`.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need=()
dpkg-query -W -f='${Status}' linux-image-amd64 2>/dev/null | grep -q "install ok installed" || need+=(linux-image-amd64)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v lvm >/dev/null || need+=(lvm2)
# iscsiadm and iscsid (the guest starts iscsid itself; the package's
# services are not started on the host: no systemd, policy-rc.d); ss -K
# (iproute2) breaks one path of a multipath pair in tests/iscsi.rs
command -v iscsiadm >/dev/null || need+=(open-iscsi)
command -v ss >/dev/null || need+=(iproute2)
command -v udevadm >/dev/null || need+=(udev)
command -v losetup >/dev/null || need+=(util-linux)
# lvmlockd and lvmlockctl, and the dlm lock manager for tests/lvmlockd.rs
# (corosync comes with pacemaker); their services are not started here
command -v lvmlockd >/dev/null || need+=(lvm2-lockd)
command -v dlm_controld >/dev/null || need+=(dlm-controld)
command -v corosync >/dev/null || need+=(corosync)
# GFS2 on the shared LV of tests/two_nodes_shared.rs (mkfs.gfs2)
command -v mkfs.gfs2 >/dev/null || need+=(gfs2-utils)
command -v ocf-tester >/dev/null || need+=(resource-agents)
# fencing in tests/two_nodes.rs: SBD on the shared disk, fence_sbd
command -v sbd >/dev/null || need+=(sbd)
command -v fence_sbd >/dev/null || need+=(fence-agents)
command -v mkfs.xfs >/dev/null || need+=(xfsprogs)
command -v modprobe >/dev/null || need+=(kmod)
# vng builds a small initramfs with busybox
command -v busybox >/dev/null || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v vng >/dev/null; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
    fi
    python3 -m pip install -q virtme-ng 2>/dev/null ||
        python3 -m pip install -q --break-system-packages virtme-ng
    # pip may put `vng` in a directory that is not on every PATH (pyenv,
    # ~/.local/bin): make it reachable for the tests.
    scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
    if [ -x "$scripts/vng" ] && [ ! -e /usr/local/bin/vng ]; then
        ln -sf "$scripts/vng" /usr/local/bin/vng
    fi
fi
vng --version
ls /boot/vmlinuz-*
