#!/usr/bin/env bash
# The smaller demo: build the Filesystem agent and drive a real, loop-backed
# ext4 filesystem through it the way a cluster manager would (probe, start,
# monitors at every depth, stop), printing each call and its OCF result.
# (demo/run.sh is the whole story: a two-node Pacemaker cluster.)
#
#   sudo ./demo/filesystem.sh
#
# Everything lives in a fresh directory under /var/tmp and is removed at the
# end, also on failure or Ctrl-C. Needs root (it attaches a loop device and
# mounts), a Rust toolchain from rustup (>= 1.80; its cargo is found in
# ~/.cargo/bin, also the invoking user's through sudo), and mkfs.ext4/losetup
# (e2fsprogs, util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."

. .ci/prelude.sh
ra_need_root demo "it mounts a filesystem"
ra_find_cargo demo
trap ra_give_back EXIT
ra_apt_install e2fsprogs util-linux mount

echo "== building the Filesystem agent"
cargo build --quiet --bin Filesystem
ra_give_back
AGENT=$(realpath "${CARGO_TARGET_DIR:-target}/debug/Filesystem")

WORK=$(mktemp -d /var/tmp/ra-rs-demo-XXXXXX)
IMG=$WORK/disk.img
MNT="$WORK/shared data"
LOOP=
cleanup() {
    if grep -qF " ${MNT// /\\040} " /proc/self/mountinfo 2>/dev/null; then umount "$MNT" || umount -l "$MNT"; fi
    [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== sandbox: a 64 MiB image on a loop device, formatted ext4"
truncate -s 64M "$IMG"
LOOP=$(losetup -f --show "$IMG")
mkfs.ext4 -q -F "$LOOP"
echo "   device=$LOOP directory=\"$MNT\" fstype=ext4"

names=(OCF_SUCCESS OCF_ERR_GENERIC OCF_ERR_ARGS OCF_ERR_UNIMPLEMENTED OCF_ERR_PERM
       OCF_ERR_INSTALLED OCF_ERR_CONFIGURED OCF_NOT_RUNNING)

# call LABEL ACTION [VAR=VALUE ...]: run the agent with exactly the
# environment Pacemaker would pass, and print the call and its result.
call() {
    local label=$1 action=$2; shift 2
    local rc=0
    env -i HA_LOGFACILITY=none HA_RSCTMP="$WORK/rsctmp" \
        OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=demo_fs \
        OCF_RESKEY_device="$LOOP" OCF_RESKEY_directory="$MNT" OCF_RESKEY_fstype=ext4 \
        OCF_RESKEY_CRM_meta_timeout=20000 "$@" \
        "$AGENT" "$action" >"$WORK/out" 2>&1 || rc=$?
    printf '%-34s Filesystem %-8s -> %3d %s\n' "$label" "$action" "$rc" "${names[$rc]:-?}"
    sed 's/^/      | /' "$WORK/out"
}

echo "== the resource's life"
call "probe (is it running here?)" monitor
call "start" start
call "start again (idempotent)" start
call "probe" monitor
call "recurring monitor, depth 0" monitor OCF_RESKEY_CRM_meta_interval=20000
call "recurring monitor, depth 10" monitor OCF_RESKEY_CRM_meta_interval=20000 OCF_CHECK_LEVEL=10
call "recurring monitor, depth 20" monitor OCF_RESKEY_CRM_meta_interval=20000 OCF_CHECK_LEVEL=20
echo "   (a process now holds the mount: stop has to end it)"
( cd "$MNT" && exec sleep 300 ) &
call "stop" stop OCF_CHECK_LEVEL=20
call "stop again (idempotent)" stop
call "probe" monitor
echo "== done: every call above ran the real agent against a real mount"
