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

# median_of N...: the median of the numbers.
median_of() { printf '%s\n' "$@" | sort -n | sed -n "$(($# / 2 + 1))p"; }

# per_call_us CMD...: median wall time of one call over $RUNS calls, in µs
# (one warm-up call first). The median, not the mean: on a shared machine
# one call stalled by another job's burst would move a mean, not a median.
per_call_us() {
    local t0 t1 i times=()
    "$@" >/dev/null 2>&1 || true
    for ((i = 0; i < RUNS; i++)); do
        t0=$EPOCHREALTIME
        "$@" >/dev/null 2>&1 || true
        t1=$EPOCHREALTIME
        times+=($((${t1/./} - ${t0/./})))
    done
    median_of "${times[@]}"
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
# both alike); the median per call. Both agents must be stopped before.
start_stop_rows() {
    local agent=$1 ours=$2 hb=$3 n=${SS_RUNS:-$((RUNS < 50 ? RUNS : 50))} i us
    local os=() ot=() hs=() ht=()
    for ((i = 0; i < n; i++)); do
        us=$(one_call_us "$ours" start) || return 1
        os+=("$us")
        us=$(one_call_us "$ours" stop) || return 1
        ot+=("$us")
        us=$(one_call_us "$hb" start) || return 1
        hs+=("$us")
        us=$(one_call_us "$hb" stop) || return 1
        ht+=("$us")
    done
    RUNS=$n bench_row "$agent" start "$(median_of "${os[@]}")" "$(median_of "${hs[@]}")"
    RUNS=$n bench_row "$agent" stop "$(median_of "${ot[@]}")" "$(median_of "${ht[@]}")"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }

bench_header() {
    TRUE_US=$(per_call_us /bin/true)
    printf '%-36s %10s %10s %12s\n' "command ($RUNS runs each)" "median µs" "vs true" "heartbeat/ours"
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
