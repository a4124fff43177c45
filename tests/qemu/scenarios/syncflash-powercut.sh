# Power cuts during syncflash on a FAT32 flash whose writes QEMU throttles to a CF card's speed
# (2 MB/s): QEMU is killed with SIGKILL at every named step (the test hook: a line
# syncflash=STEP in /run/liveroot/test-hooks) and at SYNCFLASH_CUTS (default 8) moments spread
# over a run, then the next boot, with no network, must come up with v1 or v2, verified (never
# neither, never an unverified image). Each boot checks what booted, then syncs the other version
# and is cut in turn, so one boot both checks the previous cut and makes the next one.
. "$TOP/tests/qemu/syncflash-lib.sh"
DESC="SIGKILL at each syncflash step and at timed moments on throttled FAT32: v1 or v2 always boots"
MEDIUM=
FLASH_UNCHANGED=
TIMEOUT=120
EXPECT="root-md7 synced"
STEPS="preflight remount-rw delete write-image write-half write-sidecars write-manifest verify old-manifest old-sig
	old-roothash old-verity old-kernel old-initrd old-uki old-image new-image new-uki new-initrd new-kernel new-verity new-roothash
	new-sig new-manifest remount-ro"
# 8, not 20 as before: syncflash-flushpoints now replays every flush state of a syncflash (and
# reordered ones), which the timed moments only sampled; 12 fewer boots keep `make test` near
# 45 minutes. SYNCFLASH_CUTS=20 for the old count.
CUTS=${SYNCFLASH_CUTS:-8}
BPS=${SYNCFLASH_BPS:-2000000}
prepare() {
	local d=$RUNDIR/files
	mkdir -p "$d"
	# Two versions of the same size (6 MiB of filler each) so that timed cuts land alike.
	make_version "$BUILD/syncflash-cut1" 1 6
	make_version "$BUILD/syncflash-cut2" 2 6
	local v
	for v in 1 2; do
		cp "$BUILD/syncflash-cut$v/squashfs.img" "$d/v$v.img"
		cp "$BUILD/syncflash-cut$v/SHA256SUMS" "$d/v$v.sums"
		SHA[v]=$(sha256sum <"$d/v$v.img" | cut -c1-64)
	done
	# The flash: FAT32 holding v1.
	CUTFLASH=$RUNDIR/flash.img
	make_flash "$BUILD/$FAT_IMG" "$CUTFLASH"
	MTOOLS_SKIP_CHECK=1 mcopy -o -i "$CUTFLASH" "$d/v1.img" ::/LiveOS/squashfs.img
	MTOOLS_SKIP_CHECK=1 mcopy -o -i "$CUTFLASH" "$d/v1.sums" ::/LiveOS/SHA256SUMS
	QEMU_EXTRA+=(-drive "file=$CUTFLASH,format=raw,if=none,id=cutflash,throttling.bps-write=$BPS"
		-device "virtio-blk-pci,drive=cutflash,id=flash")
	TESTS_FILES=("$d"/*)
}
# Every boot: say what booted, then sync the other version (pausing where the cmdline says).
cycle() {
	cat <<'G'
V=$(cat /etc/liveroot-version)
echo "SYNCFLASH-BOOTED version=$V verified=$(liveinit state get verified) pair=$(liveinit state get medium_pair) sha=$(liveinit state get image_sha256)"
ls -l /run/live/medium/LiveOS | awk '{ print "  flash:", $5, $NF }'
N=$((3 - V))
P=$(sed -n 's/.*sfpause=\([^ ]*\).*/\1/p' /proc/cmdline)
mkdir -p /run/live/ram && cp $T/v$N.img /run/live/ram/squashfs.img && cp $T/v$N.sums /run/live/ram/SHA256SUMS
liveinit state set booted=ram image_file=/run/live/ram/squashfs.img
mkdir -p /run/liveroot && echo "syncflash=${P:-none}" >/run/liveroot/test-hooks
echo SYNCFLASH-START
# --tries 0: the power is cut in every boot, before any mark-good, so an image on trial would
# use up its tries; this scenario is about the rotation (trial-powercut cuts the trial writes).
syncflash --tries 0; echo "SYNCFLASH-END"
syncflash --tries 0 --dry-run >/dev/null 2>&1 ; rc=$?
[ "$rc" = 5 ] && ok synced
G
}
guest() {
	echo check_live_root
	cycle
}
now() { date +%s.%N; }
drive() {
	# The first boot syncs v1 → v2 uncut: the run's length, for spreading the timed cuts.
	wait_for 'SYNCFLASH-START' 100 || return
	local t0
	t0=$(now)
	wait_for 'SYNCFLASH-END' 100 || return
	RUN_S=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
}
# booted_ok LABEL: the console shows a verified v1 or v2 (counted in BOOTS).
booted_ok() {
	local line v ver sha
	line=$(tr -d '\r' <"$RUNDIR/console.log" | grep -a '^SYNCFLASH-BOOTED' | tail -n 1)
	if [[ -z $line ]]; then
		problem "$1: the next boot did not come up ($(tr -d '\r' <"$RUNDIR/console.log" | grep -a 'liveroot: ' | tail -n 1))"
		return 1
	fi
	v=$(sed -n 's/.*version=\([0-9]*\).*/\1/p' <<<"$line")
	ver=$(sed -n 's/.*verified=\([a-z0-9]*\).*/\1/p' <<<"$line")
	sha=$(sed -n 's/.*sha=\([0-9a-f]*\).*/\1/p' <<<"$line")
	if [[ ($v != 1 && $v != 2) || $ver != sha256 || $sha != "${SHA[v]}" ]]; then
		problem "$1: booted '$line'"
		return 1
	fi
	BOOTS[v]=$((BOOTS[v] + 1))
	return 0
}
# cut_boot LABEL PAUSE DELAY: boot, sync, SIGKILL QEMU at step PAUSE (or DELAY s after start).
# Returns 1 when the run ended before reaching PAUSE (a step that this flash state skips, e.g.
# the old-* renames when the keeper is not the primary): no cut, the caller retries.
cut_boot() {
	local label=$1 pause=$2 delay=$3 pid
	mv "$RUNDIR/console.log" "$RUNDIR/console.$((++NBOOT)).log"
	: >"$RUNDIR/console.log"
	qemu_start "$RUNDIR" "$APPEND sfpause=$pause" "" "$TESTS_IMG" 90
	if ! wait_for 'SYNCFLASH-START' 80; then
		qemu_quit; qemu_wait
		booted_ok "before cut $label"
		return
	fi
	booted_ok "before cut $label"
	if [[ $pause != none ]]; then
		wait_for "syncflash-step $pause\$|^SYNCFLASH-END" 60 || problem "cut $label: no step $pause, no end"
		if ! tr -d '\r' <"$RUNDIR/console.log" | grep -aq "syncflash-step $pause\$"; then
			qemu_wait 2>/dev/null
			return 1
		fi
	else
		sleep "$delay"
	fi
	pid=$(pgrep -P "$QEMU_PID" | head -n 1)
	[[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
	{ qemu_wait; } 2>/dev/null
	NCUTS=$((NCUTS + 1))
	CUT_LIST+=" $label"
}
verify() {
	[[ -n ${RUN_S:-} ]] || { problem "the first syncflash never ended"; return; }
	TESTS_IMG=$RUNDIR/tests.img NBOOT=0 NCUTS=0
	BOOTS=(0 0 0) CUT_LIST=
	local missed=
	echo ". /run/tests/lib.sh" >"$RUNDIR/cycle.sh"
	cycle >>"$RUNDIR/cycle.sh"
	make_tests_disk "$TESTS_IMG" "$RUNDIR/cycle.sh" || { problem "cannot build the TESTS disk"; return; }
	local s i d
	for s in $STEPS; do
		cut_boot "$s" "$s" 0 || cut_boot "$s" "$s" 0 || missed+=" $s"
	done
	[[ -n $missed ]] && problem "steps never reached twice in a row:$missed"
	for ((i = 0; i < CUTS; i++)); do
		d=$(awk -v t="$RUN_S" -v i="$i" -v n="$CUTS" 'BEGIN { printf "%.2f", t * (i + 0.5) / n }')
		cut_boot "at ${d}s of ${RUN_S}s" none "$d"
	done
	# The last cut's aftermath: one more boot, checked, left to finish its sync.
	mv "$RUNDIR/console.log" "$RUNDIR/console.$((++NBOOT)).log"
	: >"$RUNDIR/console.log"
	qemu_start "$RUNDIR" "$APPEND sfpause=none" "" "$TESTS_IMG" 90
	qemu_wait
	booted_ok "after the last cut"
	echo "    $NCUTS power cuts ($(wc -w <<<"$STEPS") named steps, $CUTS timed over a ${RUN_S}s run): every next boot verified; v1 booted ${BOOTS[1]}x, v2 ${BOOTS[2]}x"
	echo "    cut at:$CUT_LIST"
}
