#!/usr/bin/env bash
# Usage: mk/bench.sh BINARY [SECTION...]
# Sections (default: all, in this order): hash size.
# Each section is a function bench_NAME; add later benchmarks (boot time, migrate, imgfetch) as
# more bench_* functions and list them in SECTIONS. Commands compared in one row are run
# interleaved (A B C, A B C, ...) RUNS times and the median is reported, so a busy machine
# slows all of them alike. Nothing here asserts a timing.
#
# Environment: RUNS (default 5), BENCH_MIB (hash file size, default 1024), TMPDIR.
set -euo pipefail

SECTIONS=(hash size)
RUNS=${RUNS:-5}
BENCH_MIB=${BENCH_MIB:-1024}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=mk/size.sh
source "$HERE/size.sh"

[[ $# -ge 1 && -x $1 ]] || { echo "usage: $0 BINARY [SECTION...]" >&2; exit 2; }
BIN=$(readlink -f "$1")
shift
(($# > 0)) && SECTIONS=("$@")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/liveroot-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/bin"
for a in $("$BIN" --list); do ln -s "$BIN" "$WORK/bin/$a"; done
export PATH="$WORK/bin:$PATH"

now() { date +%s.%N; }

# Seconds one run of the command string takes (its output discarded; failure aborts).
time_once() {
    local t0 t1
    t0=$(now)
    bash -c "$1" >/dev/null || { echo "bench: failed: $1" >&2; exit 1; }
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.4f\n", b - a}'
}

median() { sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# interleave CMD... : sets MEDIAN[i] for each command, runs interleaved RUNS times.
declare -a MEDIAN
interleave() {
    local -a cmds=("$@") samples=()
    local r i
    for ((r = 0; r < RUNS; r++)); do
        for i in "${!cmds[@]}"; do samples[i]+="$(time_once "${cmds[i]}") "; done
    done
    MEDIAN=()
    for i in "${!cmds[@]}"; do MEDIAN[i]=$(tr ' ' '\n' <<<"${samples[i]}" | grep . | median); done
}

mbps() { awk -v s="$1" -v m="$BENCH_MIB" 'BEGIN{printf "%.0f", m * 1048576 / s / 1e6}'; }

row() { printf '%-34s %10s %10s %10s %10s\n' "$@"; }

bench_hash() {
    local f="$WORK/image" mem
    mem=$(awk '/MemAvailable/{print int($2/1024)}' /proc/meminfo)
    echo "== hash: ${BENCH_MIB} MiB random file, warm page cache, median of $RUNS interleaved runs =="
    if ((mem < BENCH_MIB * 2)); then
        echo "note: only ${mem} MiB available; the file may not stay cached"
    fi
    head -c "$((BENCH_MIB << 20))" /dev/urandom >"$f"
    cat "$f" >/dev/null
    local ours="imgcheck '$f'" crc="imgcheck --crc32 '$f'"
    interleave "$ours" "openssl dgst -sha256 '$f'" "sha256sum '$f'" "$crc"
    local t_ours=${MEDIAN[0]} t_ssl=${MEDIAN[1]} t_sum=${MEDIAN[2]} t_crc=${MEDIAN[3]}
    row "command" "seconds" "MB/s" "ratio" ""
    row "imgcheck" "$t_ours" "$(mbps "$t_ours")" "1.00" ""
    row "openssl dgst -sha256" "$t_ssl" "$(mbps "$t_ssl")" \
        "$(awk -v a="$t_ours" -v b="$t_ssl" 'BEGIN{printf "%.2f", b/a}')" "(imgcheck/openssl throughput)"
    row "sha256sum" "$t_sum" "$(mbps "$t_sum")" \
        "$(awk -v a="$t_ours" -v b="$t_sum" 'BEGIN{printf "%.2f", b/a}')" "(imgcheck/sha256sum throughput)"
    row "imgcheck --crc32" "$t_crc" "$(mbps "$t_crc")" \
        "$(awk -v a="$t_ours" -v b="$t_crc" 'BEGIN{printf "%+.1f%%", (b/a - 1) * 100}')" "(cost of --crc32)"
    rm -f "$f"
    echo
}

bench_size() {
    echo "== size =="
    size_table "$BIN"
    echo
}

for s in "${SECTIONS[@]}"; do
    declare -F "bench_$s" >/dev/null || { echo "bench: no section '$s' (have: ${SECTIONS[*]})" >&2; exit 2; }
    "bench_$s"
done
