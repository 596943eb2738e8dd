#!/usr/bin/env bash
# Benchmark (not a test): the Filesystem agent's monitor and meta-data
# against the heartbeat shell agent on the same mount, in the same run, and
# against /bin/true, printing the time per call and the ratios; then the
# start and stop latency of both on the same device.
#
#   sudo ./bench/filesystem.sh [RUNS]      (default 200 runs per command)
#
# Needs root, the resource-agents package (the heartbeat agent) and
# e2fsprogs. Builds our agents in release mode first.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-200}
. bench/lib.sh
HB=/usr/lib/ocf/resource.d/heartbeat/Filesystem
[ -x "$HB" ] || { echo "heartbeat Filesystem not found: apt-get install resource-agents" >&2; exit 1; }

cargo static-agents --quiet
OURS=$(realpath "${CARGO_TARGET_DIR:-target}"/x86_64-unknown-linux-musl/release/Filesystem)

WORK=$(mktemp -d /var/tmp/ra-rs-bench-XXXXXX)
MNT=$WORK/mnt LOOP=
cleanup() {
    grep -qF " $MNT " /proc/self/mountinfo && umount "$MNT"
    [ -n "$LOOP" ] && losetup -d "$LOOP"
    rm -rf "$WORK"
}
trap cleanup EXIT
truncate -s 64M "$WORK/img"
LOOP=$(losetup -f --show "$WORK/img")
mkfs.ext4 -q -F "$LOOP"

export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=bench OCF_RESKEY_device=$LOOP \
    OCF_RESKEY_directory=$MNT OCF_RESKEY_fstype=ext4 HA_LOGFACILITY=none \
    HA_RSCTMP=$WORK/rsctmp OCF_RESKEY_CRM_meta_interval=20000 OCF_RESKEY_CRM_meta_timeout=20000
"$OURS" start

bench_header
for spec in "monitor|0" "monitor|10" "monitor|20" "meta-data|0"; do
    action=${spec%|*} level=${spec#*|}
    ours=$(OCF_CHECK_LEVEL=$level per_call_us "$OURS" "$action")
    hb=$(OCF_CHECK_LEVEL=$level per_call_us "$HB" "$action")
    label="$action${level:+ depth $level}"; [ "$action" = meta-data ] && label=meta-data
    bench_row Filesystem "$label" "$ours" "$hb"
done
"$OURS" stop
# start (mount) and stop (umount) latency, each agent from unmounted
start_stop_rows Filesystem "$OURS" "$HB"
bench_done
