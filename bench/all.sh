#!/usr/bin/env bash
# Every agent's side-by-side benchmark in one command, then one table of
# ratios against the heartbeat agents and /bin/true (not tests: nothing is
# asserted; numbers depend on the machine and its load).
#
#   sudo ./bench/all.sh [RUNS]        (default 100 runs per host command)
#
#   Filesystem     bench/filesystem.sh: a loop ext4 mount, monitor depths
#                  0/10/20, meta-data, start and stop
#   Xen            bench/xen.sh: both agents over the xl TEST DOUBLE
#                  (monitor, meta-data, start, stop)
#   VirtualDomain  bench/virtualdomain.sh: private libvirtd, test-driver
#                  domain (monitor, start, stop) and a real QEMU TCG guest
#                  (monitor, migration; RA_BENCH_QEMU=0: test driver only)
#   LVM-activate,  inside the stock Debian kernel booted with virtme-ng (the
#   LVM, iscsi     host kernel lacks device-mapper and SCSI): the ignored
#                  `bench_*` cases of tests/lvm.rs and tests/iscsi.rs
#                  (monitor, start, stop), where a process start alone
#                  costs 20-40 ms under TCG
#
# RA_BENCH_ONLY="Filesystem Xen" limits the run to those parts (names as
# above; `guest` for the LVM and iscsi part). Each part's own output goes to
# $OUT/<part>.log (OUT defaults to a fresh directory under /var/tmp); a part
# that fails is reported and the others still run.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-100}
ONLY=${RA_BENCH_ONLY:-Filesystem Xen VirtualDomain guest}
OUT=${OUT:-$(mktemp -d /var/tmp/ra-rs-bench-all-XXXXXX)}
mkdir -p "$OUT"
FAILED=()

want() { [[ " $ONLY " == *" $1 "* ]]; }
part() {
    local name=$1
    shift
    echo "== $name: $* (log: $OUT/$name.log)"
    if ! "$@" >"$OUT/$name.log" 2>&1; then
        FAILED+=("$name")
        echo "   FAILED; last lines:"
        tail -5 "$OUT/$name.log" | sed 's/^/   /'
    fi
}

want Filesystem && part Filesystem ./bench/filesystem.sh "$RUNS"
want Xen && part Xen ./bench/xen.sh "$RUNS"
want VirtualDomain && part VirtualDomain ./bench/virtualdomain.sh "$((RUNS < 50 ? RUNS : 50))"
if want guest; then
    # the guest benchmarks copy the shipped (static, release) binaries
    cargo static-agents --quiet
    STATIC=$(realpath "${CARGO_TARGET_DIR:-target}"/x86_64-unknown-linux-musl/release)
    for suite in lvm iscsi; do
        part "$suite" env RA_REQUIRE_GUEST=1 RA_GUEST_FILTER=bench_ RA_BENCH_BIN_DIR="$STATIC" \
            cargo test --quiet --test "$suite" "${suite}_suite_in_guest_kernel" -- --nocapture
    done
fi

echo
grep -ho 'BENCH agent=.*' "$OUT"/*.log | awk '
function field(name,   i, kv) {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == name) return kv[2] }
    return ""
}
BEGIN {
    printf "%-14s %-20s %10s %13s %10s %11s %10s  %s\n", "agent", "action", "ours ms",
        "heartbeat ms", "true ms", "faster by", "x true", "where"
}
{
    o = field("ours_ms"); h = field("heartbeat_ms"); t = field("true_ms")
    printf "%-14s %-20s %10.2f %13.2f %10s %10.1fx %9s  %s\n", field("agent"), field("action"), o, h,
        (t == "" ? "-" : sprintf("%.2f", t)), h / o, (t == "" ? "-" : sprintf("%.1fx", o / t)), field("where")
}'
echo
echo "faster by = heartbeat ms / ours ms; x true = ours ms / true ms (process start-up is the floor)."
echo "guest-kernel rows: under TCG with the root filesystem over 9p, the dynamically linked"
echo "/bin/true loads libc over 9p at every start; our static binaries do not, hence x true < 1."
echo "Logs: $OUT"
[ ${#FAILED[@]} -eq 0 ] || { echo "failed parts: ${FAILED[*]}" >&2; exit 1; }
