#!/usr/bin/env bash
# Benchmark (not a test): the Xen agent's monitor and meta-data against the
# heartbeat shell agent, both over the same `xl` TEST DOUBLE
# (tests/doubles/xl.rs: this machine has no Xen), and against /bin/true.
# Both agents ask the double the same question (`xl list DOMAIN`), so the
# ratio is what each agent costs around that call: shell start-up,
# ocf-shellfuncs and its forks versus one static binary. Then start and
# stop latency, both agents over the same double.
#
#   sudo ./bench/xen.sh [RUNS]      (default 200 runs per command)
#
# Needs the resource-agents package (the heartbeat agent). Builds our
# agents and the double in release mode first.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-200}
. bench/lib.sh
HB=/usr/lib/ocf/resource.d/heartbeat/Xen
[ -x "$HB" ] || { echo "heartbeat Xen not found: apt-get install resource-agents" >&2; exit 1; }

cargo static-agents --quiet
cargo build --quiet --release --example xl
REL=$(realpath "${CARGO_TARGET_DIR:-target}"/release)
OURS=$(realpath "${CARGO_TARGET_DIR:-target}"/x86_64-unknown-linux-musl/release/Xen)

WORK=$(mktemp -d /var/tmp/ra-rs-bench-xen-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/bin" "$WORK/hosts/node1"
ln -s "$REL/examples/xl" "$WORK/bin/xl"
printf 'name = "bench"\nmemory = 128\nvcpus = 1\n' >"$WORK/bench.cfg"

export PATH=$WORK/bin:/usr/sbin:/usr/bin:/sbin:/bin XL_DOUBLE_STATE=$WORK/hosts/node1 \
    OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=bench OCF_RESKEY_xmfile=$WORK/bench.cfg \
    HA_RSCTMP=$WORK/rsctmp HA_LOGFACILITY=none OCF_RESKEY_CRM_meta_interval=10000 \
    OCF_RESKEY_CRM_meta_timeout=20000
"$OURS" start 2>/dev/null

bench_header
for action in monitor meta-data; do
    bench_row Xen "$action" "$(per_call_us "$OURS" "$action")" "$(per_call_us "$HB" "$action")"
done
"$OURS" stop 2>/dev/null
# start (xl create) and stop (xl shutdown) latency over the double
start_stop_rows Xen "$OURS" "$HB"
bench_done
