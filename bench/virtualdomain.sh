#!/usr/bin/env bash
# Benchmark (not a test): the VirtualDomain agent's monitor against the
# heartbeat shell agent, `virsh domstate` and a bare libvirt state query
# (agents/virtualdomain/examples/domstate.rs: the same `virt` crate, one
# connect + lookup + virDomainGetState), on the same domain in the same
# run, printing the time per call and the ratios; then migrate_to's
# overhead beyond libvirt's own migration time on a real QEMU TCG guest
# live-migrated between two daemons.
#
#   sudo ./bench/virtualdomain.sh [RUNS]    (default 50 runs per command)
#
# Environment: RA_BENCH_MIGRATIONS (pairs of migrations, default 2),
# RA_BENCH_QEMU=0 (test driver only, no guest).
#
# The work is the ignored test `bench_virtualdomain` in
# tests/virtualdomain.rs, which reuses the tests' fixtures: a private
# libvirtd + virtlogd (mount namespace), a test-driver domain, the tests'
# tiny guest (Debian kernel + busybox initramfs) in a second pair of
# daemons. Its fixtures clean up in Drop; a Ctrl-C or kill skips Drop, so
# the trap below ends the processes it started (found by the directory and
# guest names, which carry this run's tag) and removes its directories.
# Agents are debug builds (the tests' build; a monitor's cost is process
# start + libvirt round trips, not our code). Needs root, libvirtd,
# virsh, resource-agents; QEMU, busybox-static and a kernel for the guest.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-50}
TAG=vdbench$$
export RA_BENCH_RUNS=$RUNS RA_BENCH_TAG=$TAG
[ -x /usr/lib/ocf/resource.d/heartbeat/VirtualDomain ] ||
    { echo "heartbeat VirtualDomain not found: apt-get install resource-agents" >&2; exit 1; }

# PIDs of processes this run started: their command lines name its
# directories (/var/tmp/ra-rs-vd-TAG-*, ra-rs-vdq-TAG-*) or its guest.
ours() {
    local p cmd
    for p in /proc/[0-9]*; do
        cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
        case $cmd in
            *"ra-rs-vd-$TAG-"* | *"ra-rs-vdq-$TAG-"* | *"guest=ravm-$TAG-"*) echo "${p#/proc/}" ;;
        esac
    done
}
cleanup() {
    local pids tries=0
    trap - EXIT INT TERM
    pids=$(ours)
    [ -n "$pids" ] || { rm -rf /var/tmp/ra-rs-vd-"$TAG"-* /var/tmp/ra-rs-vdq-"$TAG"-*; return; }
    echo "cleanup: ending $(echo $pids | wc -w) processes of this run" >&2
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    while [ -n "$(ours)" ] && [ $((tries += 1)) -le 100 ]; do sleep 0.1; done
    pids=$(ours)
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    sleep 0.2
    rm -rf /var/tmp/ra-rs-vd-"$TAG"-* /var/tmp/ra-rs-vdq-"$TAG"-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cargo build --quiet --examples
cargo test --quiet --test virtualdomain --no-run
cargo test --quiet --test virtualdomain -- --ignored --exact bench_virtualdomain \
    --nocapture --test-threads=1
