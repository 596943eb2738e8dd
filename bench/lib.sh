# Shared by the bench/*.sh scripts (sourced, not run): time commands the
# same way and print the same rows.
#
# bench_row AGENT ACTION OURS_US HB_US: the human row pair, and a
# machine-readable `BENCH agent=... ours_ms=... heartbeat_ms=... true_ms=...`
# line collected in BENCH_LINES, which bench_done prints last (bench/all.sh
# reads those). start_stop_rows AGENT OURS HB times both agents' start and
# stop (rows "start" and "stop") the same way.

RUNS=${RUNS:-100}
BENCH_LINES=()

# per_call_us CMD...: mean wall time of one call over $RUNS calls, in µs
# (one warm-up call first).
per_call_us() {
    local t0 t1 i
    "$@" >/dev/null 2>&1 || true
    t0=$EPOCHREALTIME
    for ((i = 0; i < RUNS; i++)); do "$@" >/dev/null 2>&1 || true; done
    t1=$EPOCHREALTIME
    echo $(((${t1/./} - ${t0/./}) / RUNS))
}

# one_call_us CMD...: the wall time of one call that must succeed, in µs.
one_call_us() {
    local t0 t1
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }
    t1=$EPOCHREALTIME
    echo $((${t1/./} - ${t0/./}))
}

# start_stop_rows AGENT OURS HB: $SS_RUNS (default: $RUNS, at most 50)
# cycles of start then stop of each agent, round robin (a load change hits
# both alike); the mean per call. Both agents must be stopped before.
start_stop_rows() {
    local agent=$1 ours=$2 hb=$3 n=${SS_RUNS:-$((RUNS < 50 ? RUNS : 50))} i us
    local os=0 ot=0 hs=0 ht=0
    for ((i = 0; i < n; i++)); do
        us=$(one_call_us "$ours" start) || return 1
        os=$((os + us))
        us=$(one_call_us "$ours" stop) || return 1
        ot=$((ot + us))
        us=$(one_call_us "$hb" start) || return 1
        hs=$((hs + us))
        us=$(one_call_us "$hb" stop) || return 1
        ht=$((ht + us))
    done
    RUNS=$n bench_row "$agent" start $((os / n)) $((hs / n))
    RUNS=$n bench_row "$agent" stop $((ot / n)) $((ht / n))
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }

bench_header() {
    TRUE_US=$(per_call_us /bin/true)
    printf '%-36s %10s %10s %12s\n' "command ($RUNS runs each)" "µs/call" "vs true" "heartbeat/ours"
    printf '%-36s %10d %10s\n' "/bin/true" "$TRUE_US" "1.0x"
}

bench_row() {
    local agent=$1 action=$2 ours=$3 hb=$4
    printf '%-36s %10d %10s\n' "ours: $action" "$ours" "$(ratio "$ours" "$TRUE_US")"
    printf '%-36s %10d %10s %12s\n' "heartbeat: $action" "$hb" "$(ratio "$hb" "$TRUE_US")" "$(ratio "$hb" "$ours")"
    BENCH_LINES+=("$(awk -v g="$agent" -v a="${action// /-}" -v o="$ours" -v h="$hb" -v t="$TRUE_US" -v n="$RUNS" 'BEGIN {
        printf "BENCH agent=%s action=%s ours_ms=%.3f heartbeat_ms=%.3f true_ms=%.3f runs=%d where=host",
            g, a, o / 1000, h / 1000, t / 1000, n }')")
}

bench_done() { printf '%s\n' "${BENCH_LINES[@]}"; }
