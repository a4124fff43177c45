#!/usr/bin/env bash
# Usage: [PUBLISHER=FILE] mk/size.sh BINARY [INITRAMFS]
# Prints the size of the liveroot binary (the box's build, the one in the initramfs) beside
# busybox's and the stock tool set it replaces (util-linux losetup + dmsetup + mdadm, with the
# shared libraries they load), in KiB, and the budget it must fit; then the publisher's build
# (PUBLISHER, default the BINARY's directory's publisher/liveroot, when it is there), which has
# no budget: it never leaves the publisher's machine. With INITRAMFS, that image's size and
# module count too. Sourced by mk/bench.sh for the same numbers; run it directly to print them.
set -euo pipefail

BUDGET_KIB=832
STOCK_TOOLS=(losetup dmsetup mdadm)

kib() { echo $(( ($1 + 1023) / 1024 )); }

file_size() { stat -L -c %s "$1"; }

# Sum of the unique files (after resolving links) of the given programs and their ldd libraries.
stock_bytes() {
    local prog path lib
    local -A seen=()
    for prog in "$@"; do
        path=$(command -v "$prog" 2>/dev/null || true)
        [[ -n $path ]] || { echo "size: $prog not installed" >&2; continue; }
        seen[$(readlink -f "$path")]=1
        while read -r lib; do
            [[ -e $lib ]] && seen[$(readlink -f "$lib")]=1
        done < <(ldd "$path" 2>/dev/null | grep -o '/[^ ]*')
    done
    local total=0 f
    for f in "${!seen[@]}"; do total=$((total + $(file_size "$f"))); done
    echo "$total"
}

busybox_bytes() {
    local bb=/bin/busybox
    [[ -x $bb ]] && file_size "$bb" || echo 0
}

# One table: name, KiB, and the liveroot share of each.
size_table() {
    local bin=$1 ours bb stock
    ours=$(file_size "$bin")
    bb=$(busybox_bytes)
    stock=$(stock_bytes "${STOCK_TOOLS[@]}")
    printf '%-52s %8s %8s\n' "binary" "KiB" "liveroot/x"
    printf '%-52s %8s %8s\n' "liveroot, the box's build ($bin)" "$(kib "$ours")" "1.00"
    if ((bb > 0)); then
        printf '%-52s %8s %8s\n' "busybox (/bin/busybox, static)" "$(kib "$bb")" \
            "$(awk -v a="$ours" -v b="$bb" 'BEGIN{printf "%.2f", a/b}')"
    else
        printf '%-52s %8s\n' "busybox (/bin/busybox not found)" "-"
    fi
    printf '%-52s %8s %8s\n' "${STOCK_TOOLS[*]} + shared libs" "$(kib "$stock")" \
        "$(awk -v a="$ours" -v b="$stock" 'BEGIN{printf "%.2f", b ? a/b : 0}')"
    printf '%-52s %8s %8s\n' "budget" "$BUDGET_KIB" \
        "$(awk -v a="$ours" -v b="$BUDGET_KIB" 'BEGIN{printf "%.2f", a/(b*1024)}')"
    local budget=$((BUDGET_KIB * 1024)) pub=${PUBLISHER:-$(dirname "$bin")/publisher/liveroot}
    if ((ours <= budget)); then
        echo "box's build: $ours bytes, budget $budget ($BUDGET_KIB KiB): $((budget - ours)) to spare"
    else
        echo "box's build: $ours bytes, budget $budget ($BUDGET_KIB KiB): $((ours - budget)) over"
        echo "size: liveroot is over the ${BUDGET_KIB} KiB budget" >&2
    fi
    if [[ -f $pub ]]; then
        echo "publisher's build: $(file_size "$pub") bytes ($pub; not in the initramfs, no budget)"
    fi
}

# The initramfs as booted: compressed bytes, and the kernel modules it carries.
initramfs_line() {
    local f=$1 n
    n=$(zcat "$f" | cpio -t --quiet 2>/dev/null | grep -c '\.ko' || true)
    printf '%-52s %8s %8s\n' "initramfs ($f, $n modules)" "$(kib "$(file_size "$f")")" ""
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    [[ ($# -eq 1 || $# -eq 2) && -f $1 ]] || { echo "usage: $0 BINARY [INITRAMFS]" >&2; exit 2; }
    size_table "$1"
    if [[ -n ${2:-} ]]; then
        [[ -f $2 ]] || { echo "size: $2: missing" >&2; exit 1; }
        initramfs_line "$2"
    fi
fi
