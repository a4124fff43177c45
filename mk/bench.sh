#!/usr/bin/env bash
# Usage: mk/bench.sh BINARY [SECTION...]
# Sections (default: all, in this order): hash verity fetch delta size boot bootverity migrate
# syncflash firmware initramfs.
# delta builds (once per run, under TMPDIR) an ext4 image from the host's own DELTA_SRC (default
# /usr/bin /usr/sbin) inside a squashfs, as the project's images are; v2 = the same tree with 5 %
# of its files changed in place (every 20th file, 256 bytes overwritten), rebuilt the same way.
# Over the same loopback server it compares imgfetch --seed v1 (its signed .zidx included)
# with zsync -i v1 (its .zsync included) and a full download: bytes sent by the server (its
# --log), and the median time of RUNS interleaved runs.
# bootverity boots (QEMU TCG, flash reads throttled to 20 MB/s) a 1 GiB image with dm-verity
# sidecars, the same image without them (/init hashes it whole) and an 8 MiB image with them,
# BOOT_RUNS times interleaved (images built once into build/fill-1024/ and build/fill-8/, slow
# the first time; a full-hash boot takes minutes: FULLHASH_TIMEOUT, default 900 s).
# migrate boots QEMU (TCG) with a 1 GiB root image (built once into build/bench-1g/, slow the
# first time) MIGRATE_RUNS times (default 3) and times dd of live-rw vs migrate, each onto a
# fresh disk and flushed, in alternating order.
# Each section is a function bench_NAME; add later benchmarks (boot time, migrate, imgfetch) as
# more bench_* functions and list them in SECTIONS. Commands compared in one row are run
# interleaved (A B C, A B C, ...) RUNS times and the median is reported, so a busy machine
# slows all of them alike. Nothing here asserts a timing.
#
# BINARY is the box's build (build/liveroot); what only the publisher's build has (imgcheck
# --verity-format, --make-index, mk/mkimage.sh) runs PUBLISHER (default: BINARY's directory's
# publisher/liveroot).
# Environment: RUNS (default 5), BENCH_MIB (hash file size, default 1024), BOOT_RUNS (boots of
# each initramfs, default RUNS, at least 3), BOOT_CLOCKS (the boot section's clocks, default
# "icount wall"), BOOT_ICOUNT (its -icount, default shift=0), BOOT_BASELINE (an initramfs booted
# beside, for a before/after), BOOT_TIMEOUT (s per boot, default 180), TMPDIR,
# FETCH_MIBS (image sizes for the fetch section, default "64 1024"), BOOTVERITY_BPS (bootverity's
# flash read throttle, bytes/s, default 20000000), FULLHASH_TIMEOUT (s per full-hash boot, 900).
set -euo pipefail

SECTIONS=(hash verity fetch delta size boot bootverity migrate syncflash firmware initramfs)
RUNS=${RUNS:-5}
BENCH_MIB=${BENCH_MIB:-1024}
HERE=$(cd "$(dirname "$0")" && pwd)
BOOT_RUNS=${BOOT_RUNS:-$RUNS}
((BOOT_RUNS >= 3)) || BOOT_RUNS=3
BOOT_TIMEOUT=${BOOT_TIMEOUT:-180}
# shellcheck source=mk/size.sh
source "$HERE/size.sh"

[[ $# -ge 1 && -x $1 ]] || { echo "usage: $0 BINARY [SECTION...]" >&2; exit 2; }
BIN=$(readlink -f "$1")
PUB=$(readlink -f "${PUBLISHER:-$(dirname "$BIN")/publisher/liveroot}")
[[ -x $PUB ]] || { echo "bench: $PUB: missing (PUBLISHER: liveroot built with the publisher feature)" >&2; exit 2; }
export PUBLISHER=$PUB
shift
(($# > 0)) && SECTIONS=("$@")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/liveroot-bench.XXXXXX")
QEMU_PID=
# Servers a section started (nginx), stopped, and directories outside $WORK (fetch's tmpfs
# one), removed, however the run ends.
SERVER_PIDS= OUT_DIRS=
trap '{ [[ -z $QEMU_PID ]] || kill "$QEMU_PID" 2>/dev/null || true; }; { [[ -z $SERVER_PIDS ]] || kill $SERVER_PIDS 2>/dev/null || true; }; rm -rf "$WORK" $OUT_DIRS' EXIT
mkdir "$WORK/bin"
for a in $("$BIN" --list); do ln -s "$BIN" "$WORK/bin/$a"; done
HOST_PATH=$PATH
export PATH="$WORK/bin:$PATH"

now() { date +%s.%N; }

# "ELAPSED CPU" seconds of one run of the command string (output discarded; failure aborts).
# CPU (user+sys, from /usr/bin/time) suffers less than elapsed time when the machine is busy.
time_once() {
    local t0 t1 cpu=0
    t0=$(now)
    if [[ -x /usr/bin/time ]]; then
        /usr/bin/time -f '%U %S' -o "$WORK/time" bash -c "$1" >/dev/null || { echo "bench: failed: $1" >&2; exit 1; }
    else
        bash -c "$1" >/dev/null || { echo "bench: failed: $1" >&2; exit 1; }
    fi
    t1=$(now)
    [[ -x /usr/bin/time ]] && cpu=$(awk '{print $1 + $2}' "$WORK/time")
    awk -v a="$t0" -v b="$t1" -v c="$cpu" 'BEGIN{printf "%.4f %.2f\n", b - a, c}'
}

median() { sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# interleave CMD... : runs the commands interleaved RUNS times; sets MEDIAN[i] (elapsed) and
# MEDIAN_CPU[i] for each.
declare -a MEDIAN MEDIAN_CPU
interleave() {
    local -a cmds=("$@") el=() cpu=()
    local r i t
    for ((r = 0; r < RUNS; r++)); do
        for i in "${!cmds[@]}"; do
            t=$(time_once "${cmds[i]}")
            el[i]+="${t% *} "
            cpu[i]+="${t#* } "
        done
    done
    MEDIAN=() MEDIAN_CPU=()
    for i in "${!cmds[@]}"; do
        MEDIAN[i]=$(tr ' ' '\n' <<<"${el[i]}" | grep . | median)
        MEDIAN_CPU[i]=$(tr ' ' '\n' <<<"${cpu[i]}" | grep . | median)
    done
}

mbps() { awk -v s="$1" -v m="$BENCH_MIB" 'BEGIN{printf "%.0f", m * 1048576 / s / 1e6}'; }

# ratio OURS OTHER: how many times faster ours is (other/ours).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (a > 0) ? b/a : 0}'; }

row() { printf '%-22s %9s %8s %8s %11s %10s  %s\n' "$@"; }

bench_hash() {
    local f="$WORK/image" mem
    mem=$(awk '/MemAvailable/{print int($2/1024)}' /proc/meminfo)
    echo "== hash: ${BENCH_MIB} MiB random file, warm page cache, median of $RUNS interleaved runs =="
    if ((mem < BENCH_MIB * 2)); then
        echo "note: only ${mem} MiB available; the file may not stay cached"
    fi
    head -c "$((BENCH_MIB << 20))" /dev/urandom >"$f"
    cat "$f" >/dev/null
    interleave "imgcheck '$f'" "openssl dgst -sha256 '$f'" "sha256sum '$f'" "imgcheck --crc32 '$f'"
    local e=("${MEDIAN[@]}") c=("${MEDIAN_CPU[@]}")
    row "command" "elapsed s" "MB/s" "cpu s" "x (elapsed)" "x (cpu)" ""
    row "imgcheck" "${e[0]}" "$(mbps "${e[0]}")" "${c[0]}" "1.00" "1.00" ""
    row "openssl dgst -sha256" "${e[1]}" "$(mbps "${e[1]}")" "${c[1]}" "$(ratio "${e[0]}" "${e[1]}")" \
        "$(ratio "${c[0]}" "${c[1]}")" "imgcheck throughput / openssl's"
    row "sha256sum" "${e[2]}" "$(mbps "${e[2]}")" "${c[2]}" "$(ratio "${e[0]}" "${e[2]}")" \
        "$(ratio "${c[0]}" "${c[2]}")" "imgcheck throughput / sha256sum's"
    row "imgcheck --crc32" "${e[3]}" "$(mbps "${e[3]}")" "${c[3]}" \
        "$(awk -v a="${e[0]}" -v b="${e[3]}" 'BEGIN{printf "%+.1f%%", (b/a - 1) * 100}')" \
        "$(awk -v a="${c[0]}" -v b="${c[3]}" 'BEGIN{printf "%+.1f%%", (a > 0) ? (b/a - 1) * 100 : 0}')" "cost of --crc32"
    rm -f "$f"
    echo
}

# dm-verity sidecars: `imgcheck --verity-format` vs `veritysetup format` on the same file, same
# salt and uuid, warm cache, alternating which goes first; the outputs must be identical.
# Goal: imgcheck's throughput >= 1.0x veritysetup's.
bench_verity() {
    local f="$WORK/vimage" runs=$RUNS r t salt=5eed uuid=12345678-1234-1234-1234-123456789abc
    local -a oe=() oc=() ve=() vc=()
    ((runs >= 3)) || runs=3
    echo "== verity: sidecars of a ${BENCH_MIB} MiB random file, warm page cache, median of $runs runs, alternating order =="
    head -c "$((BENCH_MIB << 20))" /dev/urandom >"$f"
    cat "$f" >/dev/null
    local ours="'$PUB' imgcheck --verity-format '$f' --salt $salt --uuid $uuid"
    local theirs="PATH='$HOST_PATH' veritysetup format '$f' '$f.ref.verity' --salt $salt --uuid $uuid --root-hash-file '$f.ref.roothash'"
    for ((r = 0; r < runs; r++)); do
        if ((r % 2 == 0)); then
            t=$(time_once "$ours"); oe+=("${t% *}"); oc+=("${t#* }")
            t=$(time_once "$theirs"); ve+=("${t% *}"); vc+=("${t#* }")
        else
            t=$(time_once "$theirs"); ve+=("${t% *}"); vc+=("${t#* }")
            t=$(time_once "$ours"); oe+=("${t% *}"); oc+=("${t#* }")
        fi
    done
    cmp -s "$f.verity" "$f.ref.verity" && cmp -s "$f.roothash" "$f.ref.roothash" ||
        { echo "bench: verity: imgcheck's sidecars differ from veritysetup's" >&2; exit 1; }
    local e1 c1 e2 c2
    e1=$(printf '%s\n' "${oe[@]}" | median) c1=$(printf '%s\n' "${oc[@]}" | median)
    e2=$(printf '%s\n' "${ve[@]}" | median) c2=$(printf '%s\n' "${vc[@]}" | median)
    row "command" "elapsed s" "MB/s" "cpu s" "x (elapsed)" "x (cpu)" ""
    row "imgcheck --verity-fmt" "$e1" "$(mbps "$e1")" "$c1" "1.00" "1.00" "sidecars byte-identical"
    row "veritysetup format" "$e2" "$(mbps "$e2")" "$c2" "$(ratio "$e1" "$e2")" "$(ratio "$c1" "$c2")" \
        "imgcheck throughput / veritysetup's (goal >= 1.00)"
    rm -f "$f" "$f".*
    echo
}

# CPU seconds (user + sys) a process has used so far, all its threads, dead ones included.
proc_cpu() {
    local t=$(( $(getconf CLK_TCK) ))
    awk -v t="$t" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# fetch_rows BASE_URL SERVER_PID ARM...: the fetch arms named (imgfetch, curl+sha256sum -c,
# curl|tee|openssl, curl (no check)) for each of FETCH_MIBS from BASE_URL/imgN, interleaved RUNS
# times; a row each, and the line imgfetch / bare curl. Uses $d (key, srv, out) and $BIN.
fetch_rows() {
    local base=$1 spid=$2 mib r i e m u s c0
    shift 2
    local names=("$@")
    row "command" "elapsed s" "MB/s" "cpu s/GiB" "peak RSS" "x this" ""
    for mib in ${FETCH_MIBS:-64 1024}; do
        local url="$base/img$mib" want
        want=$(awk -v n="img$mib" '$2 == n { print $1 }' "$d/srv/SHA256SUMS")
        # The arms; each leaves the image in $d/out and fails when its check fails.
        local -A all=(
            [imgfetch]="'$BIN' imgfetch --pubkey-file '$d/key.pub' --to '$d/out' '$url'"
            ["curl+sha256sum -c"]="curl -sS -o '$d/out/img$mib' '$url' && cd '$d/out' && grep ' img$mib\$' '$d/srv/SHA256SUMS' | sha256sum -c --quiet"
            ["curl|tee|openssl"]="set -o pipefail; curl -sS '$url' | tee '$d/out/img$mib' | openssl dgst -sha256 -r | grep -q '^$want '"
            ["curl (no check)"]="curl -sS -o '$d/out/img$mib' '$url'"
        )
        local -a cmds=() E=() R=() C=() S=()
        for i in "${!names[@]}"; do cmds[i]=${all[${names[i]}]} E[i]= R[i]=0 C[i]= S[i]=; done
        for ((r = 0; r < RUNS; r++)); do
            for i in "${!cmds[@]}"; do
                rm -f "$d/out/"*
                c0=$(proc_cpu "$spid")
                # A plain command runs under time itself: through bash -c, the peak RSS would be
                # bash's (ru_maxrss is kept across exec), about 3 MiB.
                local -a argv=(bash -c "${cmds[i]}")
                [[ ${cmds[i]} == *[\;\|\&]* ]] || eval "argv=(${cmds[i]})"
                /usr/bin/time -f '%e %M %U %S' -o "$d/t" "${argv[@]}" >/dev/null 2>&1 ||
                    { echo "bench: ${names[i]} failed" >&2; kill "$spid"; exit 1; }
                S[i]+="$(awk -v a="$c0" -v b="$(proc_cpu "$spid")" 'BEGIN{print b - a}') "
                read -r e m u s <"$d/t"
                E[i]+="$e " C[i]+="$(awk -v a="$u" -v b="$s" 'BEGIN{print a + b}') "
                ((m > R[i])) && R[i]=$m
            done
        done
        BENCH_MIB=$mib
        local ours curl= me mc ms
        ours=$(tr ' ' '\n' <<<"${E[0]}" | grep . | median)
        per() { awk -v c="$1" -v m="$mib" 'BEGIN{printf "%.2f", c * 1024 / m}'; }
        for i in "${!cmds[@]}"; do
            me=$(tr ' ' '\n' <<<"${E[i]}" | grep . | median)
            mc=$(tr ' ' '\n' <<<"${C[i]}" | grep . | median)
            ms=$(tr ' ' '\n' <<<"${S[i]}" | grep . | median)
            row "${names[i]} ${mib}M" "$me" "$(mbps "$me")" "$(per "$mc")" "${R[i]} KiB" "$(ratio "$ours" "$me")" \
                "server $(per "$ms") cpu s/GiB$([[ $i == 0 ]] && echo "; x this = this arm's time / imgfetch's")"
            [[ ${names[i]} == "curl (no check)" ]] && curl=$me
        done
        [[ -n $curl ]] && printf '%-22s %s\n' "" "imgfetch / bare curl ${mib}M: $(ratio "$ours" "$curl")x its throughput (goal >= 0.90 on 1 GiB), peak RSS ${R[0]} KiB (goal <= 4096)"
    done
}

# fetch_syscalls URL MIB: syscalls per MiB of imgfetch and of bare curl, one untimed run each
# under strace -c -f, with the calls that dominate.
fetch_syscalls() {
    local url=$1 mib=$2 name cmd
    command -v strace >/dev/null || { echo "syscalls: no strace, skipped"; return 0; }
    for name in imgfetch curl; do
        rm -f "$d/out/"*
        if [[ $name == imgfetch ]]; then
            cmd=("$BIN" imgfetch --pubkey-file "$d/key.pub" --to "$d/out" "$url")
        else
            cmd=(curl -sS -o "$d/out/img$mib" "$url")
        fi
        strace -c -f -o "$d/strace" "${cmd[@]}" >/dev/null 2>&1 || { echo "bench: strace $name failed" >&2; return 1; }
        # strace -c columns: % time, seconds, usecs/call, calls, [errors,] syscall.
        awk -v n="$name" -v m="$mib" '
            $1 !~ /^[0-9.]+$/ { next }
            $NF == "total" { total = $4; next }
            { calls[$NF] = $4 }
            END {
                printf "syscalls per MiB, %-9s %7.1f (", n, total / m
                k = 0
                for (c in calls) if (calls[c] / m >= 1) { printf "%s%s %.1f", (k++ ? ", " : ""), c, calls[c] / m }
                print "; strace -c -f, one untimed run)"
            }' "$d/strace"
    done
    rm -f "$d/out/"*
}

# fetch_nginx MIB: imgfetch and bare curl from nginx (sendfile, C) on 127.0.0.1, when one is at
# hand, for the largest image only.
fetch_nginx() {
    local mib=$1 ng np ngpid
    ng=$(PATH=$HOST_PATH command -v nginx || true)
    [[ -n $ng ]] || ng=${LIVEROOT_CACHE:-/var/cache/liveroot}/nginx/usr/sbin/nginx
    if [[ ! -x $ng ]]; then
        echo "nginx: none at hand (apt-get install nginx, or run a debian-* QEMU test once), skipped"
        return 0
    fi
    np=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir -p "$d/nginx"
    cat >"$d/nginx/nginx.conf" <<C
daemon off;
$( ((EUID == 0)) && echo "user root;")
worker_processes 1;
pid $d/nginx/pid;
error_log $d/nginx/error.log;
events { worker_connections 64; }
http {
	access_log off;
	sendfile on;
	client_body_temp_path $d/nginx/body;
	proxy_temp_path $d/nginx/proxy;
	fastcgi_temp_path $d/nginx/fastcgi;
	uwsgi_temp_path $d/nginx/uwsgi;
	scgi_temp_path $d/nginx/scgi;
	server { listen 127.0.0.1:$np; root $d/srv; }
}
C
    "$ng" -c "$d/nginx/nginx.conf" -p "$d/nginx" 2>/dev/null &
    ngpid=$!
    SERVER_PIDS+=" $ngpid"
    local n=40
    while ! (exec 3<>"/dev/tcp/127.0.0.1/$np") 2>/dev/null && ((n-- > 0)); do sleep 0.1; done
    # The worker serves; the master's /proc times do not include it.
    local wpid
    wpid=$(pgrep -P "$ngpid" | head -n 1 || true)
    echo "-- the same from nginx ($ng, sendfile, one worker): ${mib}M only --"
    FETCH_MIBS=$mib fetch_rows "http://127.0.0.1:$np" "${wpid:-$ngpid}" imgfetch "curl (no check)"
    kill "$ngpid" 2>/dev/null
    wait "$ngpid" 2>/dev/null || true
}

# fetch: imgfetch (signed manifest, Range requests, SHA-256 while streaming, fsync) against what
# a user would run instead: curl -o then sha256sum -c; curl | tee | openssl sha256 (hash while
# streaming); and bare curl -o (no check at all: the I/O floor). All from
# tests/httpd/misbehave.py on 127.0.0.1 (sendfile) into FETCH_OUT (default /dev/shm, a tmpfs as
# /run/live/ram is at boot); interleaved, medians; peak RSS is the largest of the runs. CPU is
# user + sys per GiB; the server's own CPU per GiB (from /proc) says whether the server is what
# limits both. Then, untimed, syscalls per MiB (strace -c -f) of imgfetch and bare curl, and,
# when an nginx binary is at hand (PATH, or the tests' $LIVEROOT_CACHE/nginx), imgfetch against
# bare curl from nginx. Goal: imgfetch >= 0.9x bare curl on 1 GiB, RSS <= 4 MiB at any size.
bench_fetch() {
    local d="$WORK/fetch" mib port pid r out i
    out=$(mktemp -d "${FETCH_OUT:-/dev/shm}/liveroot-bench.XXXXXX")
    OUT_DIRS+=" $out"
    mkdir -p "$d/srv"
    ln -s "$out" "$d/out"
    minisign -G -W -f -p "$d/key.pub" -s "$d/key.sec" >/dev/null
    for mib in ${FETCH_MIBS:-64 1024}; do
        head -c "$((mib << 20))" /dev/urandom >"$d/srv/img$mib"
    done
    (cd "$d/srv" && sha256sum img* >SHA256SUMS && minisign -S -W -s ../key.sec -m SHA256SUMS -t version=1 >/dev/null)
    python3 "$HERE/../tests/httpd/misbehave.py" "$d/srv" --idle 120 --log "$d/wire.log" >"$d/port" &
    pid=$!
    while [[ ! -s $d/port ]]; do sleep 0.1; done
    port=$(cat "$d/port")
    echo "== fetch: image over loopback (127.0.0.1, python sendfile server), median of $RUNS interleaved runs =="
    fetch_rows "http://127.0.0.1:$port/ok" "$pid" imgfetch "curl+sha256sum -c" "curl|tee|openssl" "curl (no check)"
    local mibs=${FETCH_MIBS:-64 1024} big
    big=${mibs##* }
    fetch_syscalls "http://127.0.0.1:$port/ok/img$big" "$big"
    fetch_nginx "$big"
    # A poll with nothing new (imgfetch --cache): one conditional GET of the signature, 304.
    local n
    local purl="http://127.0.0.1:$port/ok/img${mibs%% *}"
    "$BIN" imgfetch --pubkey-file "$d/key.pub" --to "$d/out" --newer-than 1 --cache "$d/cache" "$purl" >/dev/null 2>&1 || true
    sleep 0.3
    n=$(wc -l <"$d/wire.log")
    "$BIN" imgfetch --pubkey-file "$d/key.pub" --to "$d/out" --newer-than 1 --cache "$d/cache" "$purl" >/dev/null 2>&1 || true
    sleep 0.3
    tail -n +$((n + 1)) "$d/wire.log" | awk '{ b += $4 + $5; r++ } END { printf "poll with nothing new: %d bytes on the wire (%d request, requests + responses; goal < 1024)\n", b, r }'
    kill "$pid" 2>/dev/null
    rm -rf "$d" "$out"
    echo
}

bench_delta() {
    local d="$WORK/delta" epoch=1700000000 i port pid
    mkdir -p "$d/tree" "$d/sq/LiveOS" "$d/srv" "$d/out"
    export E2FSPROGS_FAKE_TIME=$epoch
    # shellcheck disable=SC2086
    cp -a ${DELTA_SRC:-/usr/bin /usr/sbin} "$d/tree/"
    find "$d/tree" -type f | LC_ALL=C sort >"$d/files"
    # mkimg OUT: the tree as ext4 (fixed uuid, hash seed, times: only the changes differ) in a
    # squashfs with fixed times.
    mkimg() {
        local mib
        mib=$(( $(du -sm --apparent-size "$d/tree" | cut -f1) * 12 / 10 + 16 ))
        rm -f "$d/sq/LiveOS/rootfs.img"
        mke2fs -q -F -t ext4 -L rootfs -U 4c495645-0000-4000-8000-0000000000d1 \
            -E hash_seed=4c495645-0000-4000-8000-0000000000d2,root_owner=0:0 -b 4096 \
            -d "$d/tree" "$d/sq/LiveOS/rootfs.img" "${mib}M" >/dev/null
        (cd "$d/tree" && find . -mindepth 1) | sed -e 's|^\.||' |
            awk -v t="@$epoch" '{ printf "sif \"%s\" ctime %s\nsif \"%s\" atime %s\n", $0, t, $0, t }' >"$d/sif"
        debugfs -w -f "$d/sif" "$d/sq/LiveOS/rootfs.img" >/dev/null 2>&1
        env -u SOURCE_DATE_EPOCH mksquashfs "$d/sq" "$1" -noappend -quiet -no-progress -all-root \
            -mkfs-time "$epoch" -all-time "$epoch" >/dev/null
    }
    mkimg "$d/v1.img"
    local ext_mib changed
    ext_mib=$(( $(stat -c %s "$d/sq/LiveOS/rootfs.img") >> 20 ))
    changed=0
    while read -r f; do
        local sz
        sz=$(stat -c %s "$f")
        ((sz >= 512)) || continue
        head -c 256 /dev/urandom | dd of="$f" bs=256 seek=$(( (sz / 2) / 256 )) conv=notrunc status=none
        changed=$((changed + 1))
    done < <(awk 'NR % 20 == 0' "$d/files")
    mkimg "$d/srv/squashfs.img"
    rm -rf "$d/tree" "$d/sq"
    "$PUB" imgcheck --make-index "$d/srv/squashfs.img"
    minisign -G -W -f -p "$d/key.pub" -s "$d/key.sec" >/dev/null
    (cd "$d/srv" && sha256sum squashfs.img squashfs.img.zidx >SHA256SUMS &&
        minisign -S -W -s ../key.sec -m SHA256SUMS -t version=2 >/dev/null &&
        zsyncmake -u squashfs.img -o squashfs.img.zsync squashfs.img >/dev/null 2>&1)
    python3 "$HERE/../tests/httpd/misbehave.py" "$d/srv" --idle 300 --log "$d/log" >"$d/port" &
    pid=$!
    while [[ ! -s $d/port ]]; do sleep 0.1; done
    port=$(cat "$d/port")
    local url="http://127.0.0.1:$port/ok/" size nfiles
    size=$(stat -c %s "$d/srv/squashfs.img")
    nfiles=$(wc -l <"$d/files")
    # Reuse if only 4 KiB-aligned blocks could be matched (what a block-hash scheme without a
    # rolling scan gets from squashfs).
    local aligned
    aligned=$(python3 - "$d/v1.img" "$d/srv/squashfs.img" <<'PY'
import sys
def blocks(p):
    with open(p, "rb") as f:
        while True:
            b = f.read(4096)
            if len(b) < 4096:
                return
            yield b
have = set(blocks(sys.argv[1]))
new = list(blocks(sys.argv[2]))
print("%.1f" % (100.0 * sum(b in have for b in new) / max(len(new), 1)))
PY
)
    local names=("imgfetch --seed" "zsync -i" "imgfetch (full)")
    local cmds=(
        "'$BIN' imgfetch --pubkey-file '$d/key.pub' --to '$d/out' --seed '$d/v1.img' '$url'"
        "cd '$d/out' && zsync -q -i '$d/v1.img' -o '$d/out/squashfs.img' '${url}squashfs.img.zsync'"
        "'$BIN' imgfetch --pubkey-file '$d/key.pub' --to '$d/out' --no-delta '$url'"
    )
    local -a E B
    for i in "${!cmds[@]}"; do E[i]= B[i]=0; done
    for ((r = 0; r < RUNS; r++)); do
        for i in "${!cmds[@]}"; do
            rm -rf "$d/out" && mkdir "$d/out"
            : >"$d/log"
            /usr/bin/time -f '%e' -o "$d/t" bash -c "${cmds[i]}" >/dev/null 2>"$d/err" ||
                { echo "bench: ${names[i]} failed: $(tail -n 3 "$d/err")" >&2; kill "$pid"; exit 1; }
            cmp -s "$d/out/squashfs.img" "$d/srv/squashfs.img" || { echo "bench: ${names[i]}: wrong result" >&2; kill "$pid"; exit 1; }
            E[i]+="$(cat "$d/t") "
            B[i]=$(awk '{ n += $5 } END { print n + 0 }' "$d/log")
        done
    done
    echo "== delta: v2 = v1 with $changed of $nfiles files changed (ext4 $ext_mib MiB in squashfs, $((size >> 20)) MiB), loopback, median of $RUNS =="
    echo "4 KiB blocks of v2 found at aligned offsets of v1: $aligned %"
    printf '%-18s %14s %9s %10s %9s\n' "arm" "bytes sent" "% image" "elapsed s" "x this"
    local ours
    ours=$(tr ' ' '\n' <<<"${E[0]}" | grep . | median)
    for i in "${!cmds[@]}"; do
        local me
        me=$(tr ' ' '\n' <<<"${E[i]}" | grep . | median)
        printf '%-18s %14s %9s %10s %9s\n' "${names[i]}" "${B[i]}" "$(awk -v a="${B[i]}" -v b="$size" 'BEGIN{printf "%.1f", 100 * a / b}')" "$me" "$(ratio "$ours" "$me")"
    done
    echo "(bytes sent: everything the server wrote for the run, manifest, signature and index or .zsync included; x this > 1: imgfetch --seed faster)"
    kill "$pid" 2>/dev/null
    unset E2FSPROGS_FAKE_TIME
    rm -rf "$d"
    echo
}

bench_size() {
    echo "== size =="
    # The host's PATH: the stock tools are the host's, not our applet links in $WORK/bin.
    PATH=$HOST_PATH size_table "$BIN"
    echo
}

# boot_once INITRD [FLASH] [TIMEOUT]: boot FLASH (default the sample image) with INITRD (no TESTS
# disk: nothing but the boot runs) and liveroot.stamps on the command line until the sample OS's
# /sbin/init prints its stamp, then stop QEMU. Sets STAMPS to the uptime stamps "INIT_START
# INIT_EXEC REAL_INIT" (seconds since the kernel started) and STAMP[STEP] to every step's stamp
# (core/src/stamp.rs; the last of a step counts) from the console log. FLASH_DRIVE_OPTS
# (tests/qemu/lib.sh) reaches the flash -drive, QEMU_EXTRA the command line; with
# BOOT_BLOCKSTATS=1, RD_BYTES is set to the bytes the guest read from the flash.
declare -A STAMP
boot_once() {
    local run=$WORK/boot tmo=${3:-$BOOT_TIMEOUT} k v
    rm -rf "$run"
    mkdir "$run"
    make_flash "${2:-$BUILD/$LIVE_IMG}" "$run/flash.img"
    : >"$run/console.log"
    INITRD=$1 qemu_start "$run" "root=live:LABEL=$LIVE_LABEL rd.live.image liveroot.stamps" "$run/flash.img" "" "$tmo"
    wait_for 'liveroot-stamp real-init [0-9]' "$tmo" || true
    RD_BYTES=
    if [[ ${BOOT_BLOCKSTATS:-} == 1 ]] && qemu_running; then
        RD_BYTES=$(monitor 'info blockstats' | grep -a '^flashdrv:' | grep -aoE 'rd_bytes=[0-9]+' | cut -d= -f2)
    fi
    qemu_quit || true
    qemu_wait
    QEMU_PID=
    STAMP=()
    while read -r k v; do STAMP[$k]=$v; done < <(tr -d '\r' <"$run/console.log" |
        grep -aoE 'liveroot-stamp [a-z-]+ [0-9.]+' | awk '{ print $2, $3 }')
    STAMPS=
    [[ -n ${STAMP[init-start]:-} && -n ${STAMP[init-exec]:-} && -n ${STAMP[real-init]:-} ]] &&
        STAMPS="${STAMP[init-start]} ${STAMP[init-exec]} ${STAMP[real-init]}"
    if [[ -z $STAMPS ]]; then
        cp "$run/console.log" "${TMPDIR:-/tmp}/liveroot-bench-boot.log"
        echo "bench: boot with ${1##*/} gave no complete set of stamps (console: ${TMPDIR:-/tmp}/liveroot-bench-boot.log); last lines:" >&2
        tr -d '\r' <"$run/console.log" | tail -n 15 | sed 's/^/    | /' >&2
        exit 1
    fi
}

# The steps of the boot table, in order (core/src/stamp.rs); each row is the time from the
# previous step's stamp (the kernel's start for the first) to this one's. Both initramfs stamp
# all of them; a step one of them leaves out adds its time to the next row.
BOOT_STEPS=(init-start modules medium verified image root state init-exec real-init)
declare -A BOOT_STEP_NAME=([init-start]="kernel -> /init" [modules]="modules loaded"
    [medium]="medium found, mounted" [verified]="image verified" [image]="squashfs, rootfs mounted"
    [root]="snapshot, md, /sysroot" [state]="state, tools to /run" [init-exec]="-> switch_root"
    [real-init]="switch_root -> real init")

# boot_steps: the steps of STAMP as "STEP SECONDS" lines (SECONDS since the previous stamp).
boot_steps() {
    local s prev=0
    for s in "${BOOT_STEPS[@]}"; do
        [[ -n ${STAMP[$s]:-} ]] || continue
        awk -v s="$s" -v a="$prev" -v b="${STAMP[$s]}" 'BEGIN{printf "%s %.3f\n", s, b - a}'
        prev=${STAMP[$s]}
    done
}

# boot: liveroot's initramfs against mk/stockinit's, same kernel, image and QEMU, BOOT_RUNS
# interleaved boots of each under each clock of BOOT_CLOCKS (default "icount wall"):
#   icount  QEMU -icount BOOT_ICOUNT (default shift=0: the guest's clock advances 1 ns per
#           guest instruction, and in real time only while the guest idles, waiting for a
#           disk read): the guest's uptime counts the work done, whatever else the host runs, so
#           the figure repeats run to run. The per-step table is from these boots.
#   wall    plain TCG: the guest's clock is the host's; it says how long the boot takes under
#           emulation today, and varies with the machine's load. A report beside the first.
# BOOT_BASELINE=INITRD (another liveroot initramfs, say main's: make initramfs there) boots as a
# third arm, "before", for a before/after of a change in one run.
bench_boot() {
    local top=$HERE/.. r i a b c clk s w
    local icount=${BOOT_ICOUNT:-shift=0} clocks=${BOOT_CLOCKS:-icount wall}
    echo "== boot: /init start -> real init, liveroot vs stock-tools initramfs, same kernel and image,"
    echo "   QEMU TCG, $BOOT_RUNS interleaved boots each, per clock ($clocks; icount: -icount $icount),"
    echo "   stamps from the guest's uptime (liveroot.stamps) =="
    # shellcheck source=tests/qemu/lib.sh
    . "$top/tests/qemu/lib.sh"
    # The host's PATH: the stock initramfs bundles the host's losetup, not our applet link.
    PATH=$HOST_PATH make -s -C "$top" kernel image initramfs stock-initramfs >/dev/null
    # shellcheck disable=SC1091
    . "$BUILD/live-images.env"
    local -A initrd=([ours]=$BUILD/initramfs.cpio.gz [stock]=$BUILD/stock-initramfs.cpio.gz)
    local -A label=([ours]=liveroot [stock]=stock [before]=before)
    local arms=(ours stock)
    if [[ -n ${BOOT_BASELINE:-} ]]; then
        [[ -f $BOOT_BASELINE ]] || { echo "bench: BOOT_BASELINE=$BOOT_BASELINE: no such file" >&2; exit 2; }
        initrd[before]=$BOOT_BASELINE
        arms+=(before)
    fi
    # T[clock.arm.what]: the boots' values, space-separated; what = start|init|total|STEP.
    local -A T=()
    local saved=("${QEMU_EXTRA[@]}")
    sub() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b - a}'; }
    for ((r = 1; r <= BOOT_RUNS; r++)); do
        for clk in $clocks; do
            case $clk in
            icount) QEMU_EXTRA=("${saved[@]}" -icount "$icount") ;;
            wall) QEMU_EXTRA=("${saved[@]}") ;;
            *) echo "bench: BOOT_CLOCKS: $clk: expected icount or wall" >&2; exit 2 ;;
            esac
            for i in "${arms[@]}"; do
                boot_once "${initrd[$i]}"
                read -r a b c <<<"$STAMPS"
                b=$(sub "$a" "$b") c=$(sub "$a" "$c")
                printf '   boot %d %-6s %-8s kernel->/init %6.2f s  /init->exec %6.2f s  /init->real init %6.2f s\n' \
                    "$r" "$clk" "${label[$i]}" "$a" "$b" "$c"
                T[$clk.$i.start]+="$a " T[$clk.$i.init]+="$b " T[$clk.$i.total]+="$c "
                while read -r s a; do T[$clk.$i.$s]+="$a "; done < <(boot_steps)
            done
        done
    done
    QEMU_EXTRA=("${saved[@]}")
    med() { tr ' ' '\n' <<<"${T[$1]:-}" | grep . | median | awk '{printf "%.3f", $1}'; }
    spread() { tr ' ' '\n' <<<"${T[$1]:-}" | grep . | sort -g | awk 'NR == 1 { a = $1 } { b = $1 } END { if (NR) printf "%.2f-%.2f", a, b }'; }
    # liveroot/stock: below 1 means liveroot is faster or smaller (goals: time 0.6, size 0.5).
    share() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (b > 0) ? a/b : 0}'; }
    local first=${clocks%% *} before=
    [[ -n ${initrd[before]:-} ]] && before=1
    echo
    echo "steps ($first clock, medians; seconds from the previous step's stamp):"
    printf '%-12s %-26s %10s %10s %7s%s\n' "stamp" "step" "liveroot s" "stock s" "l/s" "${before:+$(printf ' %10s %7s' "before s" "l/b")}"
    for s in "${BOOT_STEPS[@]}"; do
        local o k f
        o=${T[$first.ours.$s]:+$(med "$first.ours.$s")} k=${T[$first.stock.$s]:+$(med "$first.stock.$s")}
        f=${T[$first.before.$s]:+$(med "$first.before.$s")}
        [[ -n $o || -n $k || -n $f ]] || continue
        printf '%-12s %-26s %10s %10s %7s%s\n' "$s" "${BOOT_STEP_NAME[$s]}" "${o:--}" "${k:--}" \
            "$([[ -n $o && -n $k ]] && share "$o" "$k")" \
            "${before:+$(printf ' %10s %7s' "${f:--}" "$([[ -n $o && -n $f ]] && share "$o" "$f")")}"
    done
    echo "(a step one initramfs does not stamp, '-', adds its time to that one's next row)"
    echo
    local row='%-34s %10s %10s %6s %11s %11s%s\n'
    printf "$row" "figure" "liveroot s" "stock s" "l/s" "liveroot" "stock" "${before:+$(printf ' %10s %6s' "before s" "l/b")}"
    printf "$row" "" "(median)" "(median)" "" "(range)" "(range)" ""
    for clk in $clocks; do
        local lbl=$clk what=(start init total) name=("kernel -> /init" "/init -> exec" "/init -> real init")
        [[ $clk == icount ]] && lbl="icount $icount"
        for w in 0 1 2; do
            local mo ms mb=
            mo=$(med "$clk.ours.${what[w]}") ms=$(med "$clk.stock.${what[w]}")
            [[ -n $before ]] && mb=$(med "$clk.before.${what[w]}")
            printf "$row" "${name[w]} ($lbl)" "$mo" "$ms" "$(share "$mo" "$ms")" \
                "$(spread "$clk.ours.${what[w]}")" "$(spread "$clk.stock.${what[w]}")" \
                "${before:+$(printf ' %10s %6s' "$mb" "$(share "$mo" "$mb")")}"
        done
    done
    local sz_o sz_s
    sz_o=$(stat -c %s "${initrd[ours]}") sz_s=$(stat -c %s "${initrd[stock]}")
    printf "$row" ".cpio.gz bytes" "$sz_o" "$sz_s" "$(share "$sz_o" "$sz_s")" "" "" \
        "${before:+$(printf ' %10s %6s' "$(stat -c %s "${initrd[before]}")" "$(share "$sz_o" "$(stat -c %s "${initrd[before]}")")")}"
    echo "goals (liveroot/stock): /init -> real init <= 0.60, .cpio.gz <= 0.50; nothing here asserts them."
    echo "stock tools: busybox + util-linux losetup + dmsetup + mdadm (+ their shared libraries), the"
    echo "same modules (mk/stockinit). /init -> exec: the /init script's own work, from its first stamp"
    echo "(right after mounting /proc) to switch_root; /init -> real init adds switch_root and the exec"
    echo "of the sample OS's /sbin/init, whose first line prints the last stamp.${before:+ before: $BOOT_BASELINE.}"
    echo
}

# bootverity: the boot of a 1 GiB image on a slow flash (a CF card: QEMU throttles the flash's
# reads to BOOTVERITY_BPS, default 20000000 B/s) when /init maps it through dm-verity (the
# sidecars are listed in SHA256SUMS: only the blocks read are hashed) vs when it must hash the whole
# image first (sidecars stripped, SHA256SUMS lists squashfs.img alone), and vs the verity boot
# of an image with 8 MiB of content. Images from mk/mkimage.sh FILL_MIB=1024 / FILL_MIB=8
# (build/fill-1024, build/fill-8; slow the first time), the same initramfs (make initramfs).
# Goals: verity <= 0.1 x full hash, verity 1 GiB <= 1.2 x verity 8 MiB.
bench_bootverity() {
    local top=$HERE/.. bps=${BOOTVERITY_BPS:-20000000} full_tmo=${FULLHASH_TIMEOUT:-900}
    local r i a b c sums
    top=$(cd "$top" && pwd)
    echo "== bootverity: /init start -> real init, flash reads throttled to $bps B/s, QEMU TCG,"
    echo "   median of $BOOT_RUNS interleaved boots each (stamps from /proc/uptime) =="
    # shellcheck source=tests/qemu/lib.sh
    . "$top/tests/qemu/lib.sh"
    PATH=$HOST_PATH make -s -C "$top" kernel initramfs >/dev/null
    local m
    for m in 1024 8; do
        FILL_MIB=$m "$HERE/mkimage.sh" "$top/build/fill-$m" >/dev/null
    done
    # shellcheck disable=SC1091
    . "$top/build/fill-8/live-images.env"
    local big=$top/build/fill-1024/$LIVE_IMG small=$top/build/fill-8/$LIVE_IMG full=$WORK/fullhash.img
    # The full-hash medium: as corrupt-squashfs.sh publishes it (no sidecars), image intact.
    make_flash "$big" "$full"
    sums=$WORK/sums
    debugfs -R "cat /LiveOS/SHA256SUMS" "$full" 2>/dev/null | grep ' squashfs.img$' >"$sums"
    printf 'cd /LiveOS\nrm squashfs.img.verity\nrm squashfs.img.roothash\nrm SHA256SUMS\nwrite %s SHA256SUMS\n' "$sums" |
        debugfs -w -f - "$full" >/dev/null 2>&1
    [[ -s $sums && $(debugfs -R "ls -l /LiveOS" "$full" 2>/dev/null | grep -c 'squashfs.img\.') == 0 ]] ||
        { echo "bench: bootverity: could not strip the sidecars from $full" >&2; exit 1; }
    local sq_big sq_small
    sq_big=$(debugfs -R "stat /LiveOS/squashfs.img" "$big" 2>/dev/null | grep -oE 'Size: [0-9]+' | head -n1 | cut -d' ' -f2)
    sq_small=$(debugfs -R "stat /LiveOS/squashfs.img" "$small" 2>/dev/null | grep -oE 'Size: [0-9]+' | head -n1 | cut -d' ' -f2)
    local names=("verity 1 GiB" "full hash 1 GiB" "verity 8 MiB")
    local flashes=("$big" "$full" "$small") tmos=("$BOOT_TIMEOUT" "$full_tmo" "$BOOT_TIMEOUT")
    local -a T X RD
    for i in 0 1 2; do T[i]= X[i]= RD[i]=; done
    for ((r = 1; r <= BOOT_RUNS; r++)); do
        for i in 0 1 2; do
            FLASH_DRIVE_OPTS="throttling.bps-read=$bps" BOOT_BLOCKSTATS=1 \
                boot_once "$BUILD/initramfs.cpio.gz" "${flashes[i]}" "${tmos[i]}"
            read -r a b c <<<"$STAMPS"
            b=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", b - a}')
            c=$(awk -v a="$a" -v b="$c" 'BEGIN{printf "%.3f", b - a}')
            printf '   boot %d %-16s /init->exec %7.2f s  /init->real init %7.2f s  read %s bytes\n' \
                "$r" "${names[i]}" "$b" "$c" "${RD_BYTES:-?}"
            T[i]+="$c " X[i]+="$b " RD[i]+="${RD_BYTES:-0} "
        done
    done
    med() { tr ' ' '\n' <<<"$1" | grep . | median | awk '{printf "%.2f", $1}'; }
    mib() { awk -v b="$1" 'BEGIN{printf "%.1f", b / 1048576}'; }
    local -a mt mx mr
    for i in 0 1 2; do
        mt[i]=$(med "${T[i]}") mx[i]=$(med "${X[i]}") mr[i]=$(tr ' ' '\n' <<<"${RD[i]}" | grep . | median)
    done
    local sz=("$sq_big" "$sq_big" "$sq_small")
    echo
    printf '%-18s %12s %12s %13s %13s\n' "arm" "/init->" "/init->" "squashfs.img" "read from"
    printf '%-18s %12s %12s %13s %13s\n' "" "exec s" "real init s" "MiB" "flash MiB"
    for i in 0 1 2; do
        printf '%-18s %12s %12s %13s %13s\n' "${names[i]}" "${mx[i]}" "${mt[i]}" "$(mib "${sz[i]:-0}")" "$(mib "${mr[i]:-0}")"
    done
    share() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", (b > 0) ? a/b : 0}'; }
    printf '%-18s %12s %12s  %s\n' "verity/full hash" "$(share "${mx[0]}" "${mx[1]}")" "$(share "${mt[0]}" "${mt[1]}")" "goal <= 0.1"
    printf '%-18s %12s %12s  %s\n' "verity 1G/8M" "$(share "${mx[0]}" "${mx[2]}")" "$(share "${mt[0]}" "${mt[2]}")" "goal <= 1.2"
    # The fastest boot of each: less sensitive to other load on a shared machine (the two verity
    # boots differ by less than that load's jitter).
    mn() { tr ' ' '\n' <<<"$1" | grep . | sort -g | head -n 1; }
    printf '%-18s %12s %12s  %s\n' "  fastest boots" "$(share "$(mn "${X[0]}")" "$(mn "${X[2]}")")" \
        "$(share "$(mn "${T[0]}")" "$(mn "${T[2]}")")" "(verity 1G/8M of the fastest boot of each)"
    echo "read from flash: the guest's reads of the whole flash medium (QEMU info blockstats rd_bytes),"
    echo "median, until the sample OS's /sbin/init ran. Ratios of the medians unless said; nothing here"
    echo "asserts them."
    rm -f "$full"
    echo
}

bench_migrate() {
    local top out dd=() mig=() r order n=${MIGRATE_RUNS:-3} d m
    top=$(cd "$HERE/.." && pwd)
    echo "== migrate: 1 GiB image, dd vs migrate --no-grow --keep-live, each onto a fresh 2 GiB virtio disk, both flushed; QEMU TCG, $n boots alternating the order, medians =="
    ROOT_MIB=1024 "$HERE/mkimage.sh" "$top/build/bench-1g" >/dev/null
    for ((r = 0; r < n; r++)); do
        ((r % 2)) && order=migrate-first || order=dd-first
        out=$(MIGRATE_ORDER=$order "$top/tests/qemu/run.sh" "$top/tests/qemu/bench/migrate-1g.sh" 2>&1) || {
            echo "$out" | tail -n 30
            echo "bench: migrate: the QEMU run failed" >&2
            return 1
        }
        d=$(awk '$1 == "BENCH" && $2 == "dd" { print $3 }' <<<"$out")
        m=$(awk '$1 == "BENCH" && $2 == "migrate" { print $3 }' <<<"$out")
        echo "  boot $((r + 1)) ($order): dd ${d} s, migrate ${m} s"
        dd+=("$d") mig+=("$m")
    done
    d=$(printf '%s\n' "${dd[@]}" | median)
    m=$(printf '%s\n' "${mig[@]}" | median)
    row "command" "elapsed s" "MB/s" "" "x dd" "" ""
    BENCH_MIB=1024 row "dd (1 GiB, fsync)" "$d" "$(BENCH_MIB=1024 mbps "$d")" "" "1.00" "" ""
    BENCH_MIB=1024 row "migrate (no grow)" "$m" "$(BENCH_MIB=1024 mbps "$m")" "" \
        "$(awk -v a="$m" -v b="$d" 'BEGIN{printf "%.2f", (b > 0) ? a/b : 0}')" "" "goal: <= 1.20 x dd"
    echo
}

# syncflash: a 512 MiB image from guest RAM onto a FAT32 virtual disk, `cp` + `sync` vs
# syncflash (which writes once and reads back once: goal <= 2.2 x), alternating in one boot.
bench_syncflash() {
    local top out cp sf rd
    top=$(cd "$HERE/.." && pwd)
    echo "== syncflash: 512 MiB image, RAM -> FAT32 virtio disk, QEMU TCG, one boot, medians of ${SYNCFLASH_RUNS:-3} alternating runs =="
    out=$(SYNCFLASH_RUNS=${SYNCFLASH_RUNS:-3} "$top/tests/qemu/run.sh" "$top/tests/qemu/bench/syncflash-512m.sh" 2>&1) || {
        echo "$out" | tail -n 30
        echo "bench: syncflash: the QEMU run failed" >&2
        return 1
    }
    cp=$(awk '$1 == "BENCH" && $2 == "cp" { print $3 }' <<<"$out" | median)
    sf=$(awk '$1 == "BENCH" && $2 == "syncflash" { print $3 }' <<<"$out" | median)
    row "command" "elapsed s" "MB/s" "" "x cp+sync" "" ""
    BENCH_MIB=512 row "cp + sync" "$cp" "$(BENCH_MIB=512 mbps "$cp")" "" "1.00" "" ""
    BENCH_MIB=512 row "syncflash" "$sf" "$(BENCH_MIB=512 mbps "$sf")" "" \
        "$(awk -v a="$sf" -v b="$cp" 'BEGIN{printf "%.2f", (b > 0) ? a/b : 0}')" "" "goal: <= 2.2 x cp + sync"
    rd=$(awk '$1 == "BENCH" && $2 == "read" { print $3 }' <<<"$out" | median)
    BENCH_MIB=512 row "  read back (cat)" "$rd" "$(BENCH_MIB=512 mbps "$rd")" "" "" "" "the read-back pass without SHA-256"
    echo "syncflash = write + fsync + read back + SHA-256 (+ renames); under TCG SHA-256 is emulated without"
    echo "SHA instructions (~15-20 MB/s) and dominates; cp + sync + read back is the I/O floor."
    echo
}

# firmware: one boot each of the `make flash` image through SeaBIOS (syslinux) and OVMF
# (systemd-boot), next to the -kernel boot of the same kernel and initramfs (taken from the
# flash) with the same image; the flash on virtio in all three, so only the way in differs (plus
# SeaBIOS from the flash as a USB stick). Host clock from QEMU's start to the console line
# `liveroot-stamp init-start` (/init's first line), and the guest's own uptime at that line
# (kernel -> /init): the difference is firmware + boot loader + loading the files. One run of each,
# side by side: report only.
bench_firmware() {
    local top=$HERE/.. img run t0 t1 k i
    top=$(cd "$top" && pwd)
    echo "== firmware: QEMU start -> /init start, make flash image, QEMU TCG, one boot each =="
    # shellcheck source=tests/qemu/lib.sh
    . "$top/tests/qemu/lib.sh"
    img=$BUILD/flash-bench.img
    PATH=$HOST_PATH make -s -C "$top" flash FLASH="$img" APPEND="rd.live.image panic=-1 loglevel=4 liveroot.stamps" >/dev/null
    run=$WORK/fw
    mkdir -p "$run"
    MTOOLS_SKIP_CHECK=1 mcopy -n -i "$img@@1M" ::/boot/initrd.img "$run/initrd.img"
    MTOOLS_SKIP_CHECK=1 mcopy -n -i "$img@@1M" ::/boot/vmlinuz "$run/vmlinuz"
    local names=("-kernel (virtio)" "SeaBIOS+syslinux (virtio)" "SeaBIOS+syslinux (USB)" "OVMF+systemd-boot (virtio)")
    local fws=("" bios bios uefi) buses=(virtio virtio usb virtio)
    printf '%-28s %14s %14s %16s\n' "boot" "QEMU start->" "kernel->" "firmware+loader"
    printf '%-28s %14s %14s %16s\n' "" "/init s (host)" "/init s (guest)" "s (difference)"
    for i in 0 1 2 3; do
        make_flash "$img" "$run/flash.img"
        : >"$run/console.log"
        t0=$(now)
        FIRMWARE=${fws[i]} FLASH_BUS=${buses[i]} KERNEL=$run/vmlinuz INITRD=$run/initrd.img \
            qemu_start "$run" "root=live:LABEL=LIVE rd.live.image liveroot.stamps" "$run/flash.img" "" 600
        if wait_for 'liveroot-stamp init-start [0-9]' 600; then t1=$(now); else t1=; fi
        qemu_quit
        qemu_wait
        if [[ -z $t1 ]]; then
            cp "$run/console.log" "${TMPDIR:-/tmp}/liveroot-bench-firmware.log"
            echo "bench: firmware: ${names[i]}: no init-start stamp (console: ${TMPDIR:-/tmp}/liveroot-bench-firmware.log)" >&2
            exit 1
        fi
        k=$(tr -d '\r' <"$run/console.log" | grep -aoE 'liveroot-stamp init-start [0-9.]+' | head -n1 | awk '{print $3}')
        printf '%-28s %14s %14s %16s\n' "${names[i]}" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')" "$k" \
            "$(awk -v a="$t0" -v b="$t1" -v k="$k" 'BEGIN{printf "%.2f", b - a - k}')"
    done
    echo "host times are polled every 0.25 s; the -kernel row's difference is QEMU's own start-up."
    echo
}

# initramfs: ours (make initramfs: liveroot + busybox + the boot and real-hardware modules) vs
# Debian's initramfs-tools image for the same kernel with its default configuration
# (MODULES=most, COMPRESS=zstd; the hooks of the packages installed here, e.g. mdadm, busybox),
# built by mkinitramfs in a temporary directory. mkinitramfs reads /lib/modules/KVER and
# /boot/config-KVER only: both are made symlinks into build/kernel for the run and removed
# after (refused when they already exist). Goal: ours <= 0.25 x Debian's.
bench_initramfs() {
    local top=$HERE/.. kver kdir d ours deb made=()
    top=$(cd "$top" && pwd)
    echo "== initramfs: size, liveroot's vs Debian's initramfs-tools, same kernel =="
    PATH=$HOST_PATH make -s -C "$top" kernel initramfs >/dev/null
    kdir=$top/build/kernel
    kver=$(cat "$kdir/kver")
    for p in "/lib/modules/$kver" "/boot/config-$kver"; do
        if [[ -e $p || -L $p ]]; then
            echo "bench: initramfs: $p exists; not replacing it for mkinitramfs" >&2
            return 1
        fi
    done
    d=$WORK/deb
    mkdir -p "$d"
    cp -a /etc/initramfs-tools "$d/conf"
    [[ -d /lib/modules ]] || { mkdir /lib/modules && made+=(/lib/modules); }
    ln -s "$kdir/modules/lib/modules/$kver" "/lib/modules/$kver" && made=("/lib/modules/$kver" "${made[@]}")
    ln -s "$kdir/config" "/boot/config-$kver" && made=("/boot/config-$kver" "${made[@]}")
    local rc=0
    PATH=$HOST_PATH mkinitramfs -d "$d/conf" -o "$d/initrd.img" "$kver" >"$d/log" 2>&1 || rc=$?
    local m
    for m in "${made[@]}"; do
        if [[ -L $m ]]; then rm -f "$m"; else rmdir "$m"; fi
    done
    if ((rc != 0)); then
        tail -n 5 "$d/log" >&2
        echo "bench: initramfs: mkinitramfs failed" >&2
        return 1
    fi
    ours=$(stat -c %s "$top/build/initramfs.cpio.gz")
    deb=$(stat -c %s "$d/initrd.img")
    local mods
    mods=$(zcat "$top/build/initramfs.cpio.gz" | cpio -t --quiet 2>/dev/null | grep -c '\.ko' || true)
    printf '%-44s %12s %8s %8s\n' "initramfs" "bytes" "modules" "x Debian"
    printf '%-44s %12s %8s %8s\n' "liveroot (build/initramfs.cpio.gz, gzip -9)" "$ours" "$mods" \
        "$(awk -v a="$ours" -v b="$deb" 'BEGIN{printf "%.3f", a/b}')"
    printf '%-44s %12s %8s %8s\n' "Debian mkinitramfs (MODULES=most, zstd)" "$deb" \
        "$(PATH=$HOST_PATH lsinitramfs "$d/initrd.img" 2>/dev/null | grep -c '\.ko' || true)" "1.000"
    printf '%-44s %12s %8s %8s\n' "goal" "" "" "<= 0.25"
    echo
}

for s in "${SECTIONS[@]}"; do
    declare -F "bench_$s" >/dev/null || { echo "bench: no section '$s' (have: ${SECTIONS[*]})" >&2; exit 2; }
    "bench_$s"
done
