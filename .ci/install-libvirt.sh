#!/usr/bin/env bash
# What tests/virtualdomain.rs needs (Debian 12): libvirtd + virtlogd (started
# by the tests themselves, in private mount namespaces, never through
# systemd), virsh for the tests' own checks, libvirt-dev + pkg-config to
# link the agent, QEMU and a stock kernel + busybox for real guests,
# qemu-img (qemu-utils) for the backingfile case.
# --no-install-recommends keeps dbus, dnsmasq and polkit out: libvirtd runs
# without them. libvirt-daemon-system creates the libvirt-qemu user and
# /etc/libvirt/*.conf, without which the qemu driver does not initialise.
set -euo pipefail
. "$(dirname "$0")/prelude.sh"
ra_apt_install libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients \
    libvirt-dev pkg-config qemu-system-x86 busybox-static cpio \
    linux-image-amd64 xz-utils util-linux qemu-utils
