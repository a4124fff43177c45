# Power cuts (SIGKILL of QEMU) during each kind of trial-state write on a FAT32 flash: syncflash's
# trial start, a boot's take (in /init), and mark-good. Each write pauses twice (the test hook
# trial=write,written, core/src/testhook.rs: in /run/liveroot/test-hooks for syncflash and mark-good, in
# /etc/liveroot/test-hooks of an archive appended to the initramfs for /init's take): just before
# its sector is written, where the host copies the flash (the state a cut before the write leaves),
# and once it is flushed, where the host copies the flash again and kills QEMU. On the host, for
# each write: the two copies differ in exactly one 512-byte sector; LiveOS/trial.state of both reads
# (liveinit trial status --file) as the old record and the new one; a sector torn at every 64 bytes
# between them reads as one of the two, never a third; `liveinit select-image` still finds a pair in
# both. The next boot, from the cut flash, must be a verified v2 in the state the record says (on
# trial with one try fewer, then good). syncflash writes the record before its renames, so the boot
# after that cut is still v1, and a second syncflash finishes the rotation keeping the record. One
# boot per cut plus two: 6 boots.
. "$TOP/tests/qemu/syncflash-lib.sh"
. "$TOP/tests/qemu/trial-lib.sh"
DESC="SIGKILL at each trial-state write (syncflash's start, /init's take, mark-good): old or new record, next boot verified"
MEDIUM=$FAT_IMG
FLASH_UNCHANGED=
TIMEOUT=150
EXPECT="booted-v1"

prepare() {
	V2=$BUILD/trial-v2
	make_version "$V2" 2 0
	TESTS_FILES=("$V2/squashfs.img" "$V2/SHA256SUMS")
	trial_file_on_flash
}

guest() {
	cat <<'G'
check_live_root
check booted-v1 test "$(cat /etc/liveroot-version)" = 1
G
}

# The guest of every cut boot: what booted, then the action the cmdline names (tcdo=).
cycle() {
	cat <<'G'
echo "TRIAL-BOOTED version=$(cat /etc/liveroot-version) verified=$(liveinit state get verified) pair=$(liveinit state get medium_pair) trial=$(liveinit state get trial) fallback=$(liveinit state get fallback_reason)"
case $(sed -n 's/.*tcdo=\([^ ]*\).*/\1/p' /proc/cmdline) in
sync)
	mkdir -p /run/live/ram && cp $T/squashfs.img $T/SHA256SUMS /run/live/ram/
	liveinit state set booted=ram image_file=/run/live/ram/squashfs.img
	mkdir -p /run/liveroot && echo trial=write,written >/run/liveroot/test-hooks
	echo TC-START
	syncflash ;;
resync)
	mkdir -p /run/live/ram && cp $T/squashfs.img $T/SHA256SUMS /run/live/ram/
	liveinit state set booted=ram image_file=/run/live/ram/squashfs.img
	syncflash 2>&1 | sed 's/^/TC-RESYNC /' ;;
good)
	mkdir -p /run/liveroot && echo trial=write,written >/run/liveroot/test-hooks
	echo TC-START
	liveinit mark-good ;;
esac
G
}

# record IMG: the trial record of the flash image IMG as STATUS/LEFT/SEQ (none//: no record).
record() {
	local t out
	t=$(mktemp -d "$RUNDIR/rec.XXXXXX")
	MTOOLS_SKIP_CHECK=1 mcopy -n -i "$1" ::/LiveOS/trial.state "$t/trial.state" 2>/dev/null
	if out=$("$BUILD/liveroot" liveinit trial status --file "$t/trial.state" 2>&1); then
		eval "$out"
		echo "$TRIAL_STATUS/$TRIAL_LEFT/$TRIAL_SEQ"
	else
		echo "unreadable: $out"
	fi
	rm -rf "$t"
}

# pair IMG: the pair select-image chooses on the flash image IMG, and which version it holds
# (v2: the synced image's SHA-256; the sample images are unsigned); empty: none.
pair() {
	local t out
	t=$(mktemp -d "$RUNDIR/sel.XXXXXX")
	MTOOLS_SKIP_CHECK=1 mcopy -s -n -i "$1" ::/LiveOS "$t/" 2>/dev/null
	out=$("$BUILD/liveroot" liveinit select-image "$t/LiveOS" squashfs.img --check auto 2>/dev/null) &&
		eval "$out" && echo "$IMG_PAIR:$([[ $IMG_SHA256 == "$(cut -c1-64 "$V2/SHA256SUMS")" ]] && echo v2 || echo v1)"
	rm -rf "$t"
}

# power_cut LABEL APPEND: boot the flash with the cut-boot guest, copy the flash at `trial-step write`
# (before.img) and at `trial-step written` (after.img), SIGKILL QEMU there, then check both copies
# and the torn sectors between them. WANT_OLD / WANT_NEW: the records expected (STATUS/LEFT).
power_cut() {
	local label=$1 n=1 pid
	while [[ -e $RUNDIR/console.$n.log ]]; do n=$((n + 1)); done
	mv "$RUNDIR/console.log" "$RUNDIR/console.$n.log"
	: >"$RUNDIR/console.log"
	qemu_start "$RUNDIR" "$2" "$FLASH" "$CYCLE_IMG" 120
	if ! wait_for '^trial-step write$' 100; then
		problem "$label: never reached the write ($(tr -d '\r' <"$RUNDIR/console.log" | grep -a 'trial\|liveroot:' | tail -n 2 | tr '\n' ' '))"
		qemu_quit; qemu_wait
		return 1
	fi
	cp "$FLASH" "$RUNDIR/before.img"
	BOOTED=$(tr -d '\r' <"$RUNDIR/console.log" | grep -a '^TRIAL-BOOTED' | tail -n 1)
	wait_for '^trial-step written$' 40 || problem "$label: the write was not flushed within 40 s"
	cp "$FLASH" "$RUNDIR/after.img"
	pid=$(pgrep -P "$QEMU_PID" | head -n 1)
	[[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
	{ qemu_wait; } 2>/dev/null
	cmp -s "$FLASH" "$RUNDIR/after.img" || problem "$label: the flash changed between the flush and the kill"
	local s old new at k= torn r p
	s=$(changed_sectors "$RUNDIR/before.img" "$RUNDIR/after.img")
	[[ $s == 1 ]] || problem "$label: the write changed $s sectors, not 1"
	old=$(record "$RUNDIR/before.img") new=$(record "$RUNDIR/after.img")
	[[ ${old%/*} == "$WANT_OLD" ]] || problem "$label: before the write the record is $old, not $WANT_OLD/…"
	[[ ${new%/*} == "$WANT_NEW" ]] || problem "$label: after the write the record is $new, not $WANT_NEW/…"
	local pairs=
	for p in before after; do
		r=$(pair "$RUNDIR/$p.img")
		[[ -n $r ]] || problem "$label: no bootable pair $p the write"
		pairs+=" $p: ${r:-none}"
	done
	# A sector torn inside the write: its first k bytes new, the rest old.
	at=$(cmp -l "$RUNDIR/before.img" "$RUNDIR/after.img" | awk 'NR == 1 { print int(($1 - 1) / 512) * 512 }')
	torn=0
	[[ -n $at ]] || k=512
	for ((k = ${k:-64}; k < 512; k += 64)); do
		cp "$RUNDIR/before.img" "$RUNDIR/torn.img"
		dd if="$RUNDIR/after.img" of="$RUNDIR/torn.img" bs=1 skip="$at" seek="$at" count="$k" conv=notrunc status=none
		r=$(record "$RUNDIR/torn.img")
		[[ $r == "$old" || $r == "$new" ]] || problem "$label: a sector torn after $k bytes reads as '$r' (old $old, new $new)"
		torn=$((torn + 1))
	done
	rm -f "$RUNDIR/before.img" "$RUNDIR/after.img" "$RUNDIR/torn.img"
	echo "    cut $label: 1 sector written; record $old → $new; $torn torn sectors read as old or new; pairs chosen$pairs"
	NCUTS=$((NCUTS + 1))
}

# plain_boot APPEND: one boot of the flash with the cut-boot guest, run to its end; BOOTED is its
# TRIAL-BOOTED line.
plain_boot() {
	local n=1
	while [[ -e $RUNDIR/console.$n.log ]]; do n=$((n + 1)); done
	mv "$RUNDIR/console.log" "$RUNDIR/console.$n.log"
	: >"$RUNDIR/console.log"
	qemu_start "$RUNDIR" "$1" "$FLASH" "$CYCLE_IMG" 120
	qemu_wait
	BOOTED=$(tr -d '\r' <"$RUNDIR/console.log" | grep -a '^TRIAL-BOOTED' | tail -n 1)
}

# booted_line LABEL: the last TRIAL-BOOTED line of this boot, checked: verified v2 (or v1).
booted_line() {
	BOOTED=$(tr -d '\r' <"$RUNDIR/console.log" | grep -a '^TRIAL-BOOTED' | tail -n 1)
	[[ $BOOTED =~ version=[12]\ verified=sha256 ]] || problem "$1: booted '${BOOTED:-nothing}'"
}

verify() {
	marker booted-v1 || return
	NCUTS=0
	CYCLE_IMG=$RUNDIR/cycle.img
	{ echo ". /run/tests/lib.sh"; cycle; echo done_tests; } >"$RUNDIR/cycle.sh"
	make_tests_disk "$CYCLE_IMG" "$RUNDIR/cycle.sh" ||
		{ problem "cannot build the TESTS disk"; return; }
	local base="$TRIAL_APPEND rd.live.tries=3"
	WANT_OLD=none/ WANT_NEW=trial/3
	power_cut "syncflash's trial start" "$base tcdo=sync" || return
	[[ $BOOTED == *"version=1 verified=sha256 "* ]] || problem "the syncing boot was not a verified v1: ${BOOTED:-nothing}"
	# The record is written before the renames: the cut left v1 the primary and v2 complete
	# under .new, on trial. v1 boots plain (the record is not about it: nothing spent), and the
	# updater's next run finishes the rotation and keeps the record.
	plain_boot "$base tcdo=resync"
	[[ $BOOTED == *"version=1 verified=sha256 pair=primary trial= "* ]] || problem "after the start's cut: not a plain v1 boot: ${BOOTED:-nothing}"
	grep -aq "TC-RESYNC syncflash: the trial state already covers this image; kept" <(tr -d '\r' <"$RUNDIR/console.log") ||
		problem "the second syncflash did not keep the record of the cut one"
	[[ $(record "$FLASH") == trial/3/* ]] || problem "after the second syncflash the record is $(record "$FLASH"), not trial/3"
	WANT_OLD=trial/3 WANT_NEW=trial/2
	hook_initrd "$RUNDIR/initrd-hooks.gz" trial=write,written || { problem "cannot add the hook to the initramfs"; return; }
	INITRD=$RUNDIR/initrd-hooks.gz power_cut "/init's take" "$base" || return
	# The boot after the start's cut: /init chose v2 (verified) and was taking its first try.
	grep -aq "is on trial: try 1 of 3" <(tr -d '\r' <"$RUNDIR/console.log") && problem "/init's take went on past the pause"
	# That boot takes its try (2 of 3) in /init before the OS calls mark-good.
	WANT_OLD=trial/1 WANT_NEW=good/1
	power_cut "mark-good" "$base tcdo=good" || return
	[[ $BOOTED == *"version=2 "*"trial=1 fallback="* ]] || problem "after the cut take: not v2 on trial with 1 try left: $BOOTED"
	# The boot after the last cut: v2, good, a plain boot.
	cp "$FLASH" "$RUNDIR/prev.img"
	plain_boot "$base"
	booted_line "after the last cut"
	[[ $BOOTED == *"version=2 "*"pair=primary trial= fallback=" ]] || problem "after the cut mark-good: not a plain v2 boot: $BOOTED"
	cmp -s "$RUNDIR/prev.img" "$FLASH" || problem "the boot after mark-good wrote $(changed_sectors "$RUNDIR/prev.img" "$FLASH") sectors"
	local fs
	fs=$(all_fails)
	[[ -n $fs ]] && problem "$fs"
	echo "    $NCUTS trial-state writes cut (before and after each); every next boot a verified v2 in the state its record says"
}
