# Every flush point of a syncflash, not just a few kills: the guest boots v1 with rd.live.ram (the
# medium released), stacks dm-log-writes on the `make flash` partition with a log disk beside it,
# and runs syncflash of a signed v2 through it. The host then replays the log onto the flash as it
# was before the boot (tests/qemu/logreplay.py) and, at every FLUSH and FUA entry and every mark,
# checks the medium with the project's own selection (`liveinit select-image` with the key, the
# dm-verity tree checked offline when the chosen pair has sidecars, the next pair tried when it
# does not verify, as /init does): each state must hold a signed, verified pair. The replayed
# end state must be the flash byte for byte (the log missed no write). fsck.fat -n findings are
# counted, not fatal (FAT32 has no journal; what counts is what boots).
#
# The model: a card whose volatile write cache is lost at the cut keeps exactly what it was told
# to flush (and FUA writes); dm-log-writes logs a plain write only when a later flush completes,
# so each log prefix ending at a FLUSH/FUA entry is such a state. FUA-only points are checked too
# (the kernel logs them at completion). A cache that wrote back out of order: for each FLUSH, up
# to LOGREPLAY_REORDER (default 4) states holding only a subset of the writes logged before it
# (all subsets when there are few; logreplay.py --reorder). LOGREPLAY_POINTS=every adds every
# in-order prefix. Torn sectors are not modelled.
#
# The trial-state writes (issue 12) are recorded too: syncflash's trial start (inside the
# syncflash), then `liveinit trial take` and `liveinit mark-good` for v2 through /dev/mapper/lw
# (marks begin-/end-take, begin-/end-markgood). Each state's LiveOS/trial.state must read as one
# of the records written (none, v2 on trial with 3 then 2 tries, good), in log order never
# back; each record durable once its command returned; each record write FUA or flushed.
#
# Hook for other recorded operations (e.g. the trial-state update of issue 12): FLUSHPOINT_GUEST_EXTRA
# is guest shell run while the log is recording, after the syncflash, between the marks
# `begin-extra` and `end-extra`; its states are replayed and checked the same way.
. "$TOP/tests/qemu/flash-lib.sh"
. "$TOP/tests/qemu/syncflash-lib.sh"
DESC="dm-log-writes during syncflash: every FLUSH/FUA state replayed on the host holds a verified pair"
APPEND="root=live:LABEL=$LIVE_LABEL rd.live.image rd.live.ram"
TIMEOUT=300
FLASH_UNCHANGED=
EXPECT="root-md7 booted-v1 medium-released insmod lw-created flash-write-back synced nothing-to-do trial-started trial-take mark-good lw-removed"
FLUSHPOINT_GUEST_EXTRA=${FLUSHPOINT_GUEST_EXTRA:-}
POINTS=${LOGREPLAY_POINTS:-flush}
REORDER=${LOGREPLAY_REORDER:-4}
OFFSET=1048576
prepare() {
	flash_prepare || return
	signed_v2
	# v1 (the flash's own pair) signed too, version 1, with the same throw-away key: every state
	# is then checked with the key, so an unsigned or half-written pair never counts.
	KEY=$BUILD/syncflash-key
	local d=$RUNDIR/v1
	mkdir -p "$d"
	MTOOLS_SKIP_CHECK=1 mcopy -i "$FLASH@@$OFFSET" ::/LiveOS/SHA256SUMS "$d/SHA256SUMS"
	minisign -S -s "$KEY/sec" -m "$d/SHA256SUMS" -x "$d/SHA256SUMS.minisig" -t "version=1" >/dev/null
	MTOOLS_SKIP_CHECK=1 mcopy -i "$FLASH@@$OFFSET" "$d/SHA256SUMS.minisig" ::/LiveOS/SHA256SUMS.minisig
	cp "$FLASH" "$RUNDIR/base.img"
	truncate -s 64M "$RUNDIR/log.img"
	add_disk "$RUNDIR/log.img" lwlog
	local ko
	ko=$(find "$BUILD/kernel/modules" -name 'dm-log-writes.ko*' | head -n 1)
	[[ -n $ko ]] || problem "no dm-log-writes module under $BUILD/kernel/modules"
	cp "$KEY/pub" "$RUNDIR/pub"
	TESTS_FILES+=("$RUNDIR/pub" ${ko:+"$ko"})
}
TOOLS="dmsetup"
guest() {
	cat <<'G'
check_live_root
check booted-v1 test "$(cat /etc/liveroot-version)" = 1
MED=$(liveinit state get medium)
echo "medium: $MED"
check medium-released sh -c "! grep -q '^$MED ' /proc/mounts"
LOGDEV=$(disk_by_serial lwlog)
KO=$(ls $T/dm-log-writes.ko* | head -n 1)
check insmod insmod "$KO"
SECT=$(cat /sys/class/block/${MED#/dev/}/size)
check lw-created dmsetup --noudevsync create lw --table "0 $SECT log-writes $MED $LOGDEV"
# No udev: libdevmapper makes /dev/mapper/lw itself; the kernel's dm-N node otherwise.
LW=/dev/mapper/lw
[ -b $LW ] || for n in /sys/block/dm-*/dm/name; do [ "$(cat $n)" = lw ] && LW=/dev/${n#/sys/block/} && LW=${LW%/dm/name}; done
echo "log-writes: $LW = $MED logged to $LOGDEV ($SECT sectors)"
# The flushes reach the log only where the disk says it has a write-back cache.
DISK=$(basename "${MED%%[0-9]*}")
for q in /sys/block/$DISK/queue /sys/block/$(basename "$(readlink -f $LW)")/queue; do [ -e $q/write_cache ] && echo "write_cache $q: $(cat $q/write_cache)"; done
check flash-write-back grep -q 'write back' /sys/block/$DISK/queue/write_cache
mkdir -p /run/live/ram && cp $T/squashfs.img $T/SHA256SUMS $T/SHA256SUMS.minisig /run/live/ram/
# syncflash mounts the medium itself (the boot released it): through the logging device.
liveinit state set booted=ram image_file=/run/live/ram/squashfs.img medium=$LW medium_mount=
dmsetup message lw 0 mark begin-syncflash
if syncflash --pubkey-file $T/pub >/tmp/sf.out 2>&1; then ok synced; else fail synced "exit $?: $(cat /tmp/sf.out)"; fi
cat /tmp/sf.out
dmsetup message lw 0 mark end-syncflash
syncflash --pubkey-file $T/pub >/tmp/sf2.out 2>&1; rc=$?
check nothing-to-do test "$rc" = 5
cat /tmp/sf2.out
grep -q 'the new image is on trial' /tmp/sf.out && ok trial-started
# The trial-state writes a boot and the running v2 make (core/src/trial.rs RawStore: one sector in
# place through the device under the FS, here /dev/mapper/lw found through st_dev), recorded too.
SHA=$(sed -n 's/^\([0-9a-f]\{64\}\)  *\*\{0,1\}squashfs.img$/\1/p' $T/SHA256SUMS)
liveinit state set image_sha256=$SHA image_version=2
dmsetup message lw 0 mark begin-take
liveinit trial take --sha256 $SHA --version 2 >/tmp/take.out; cat /tmp/take.out
eval "$(grep '^TRIAL=' /tmp/take.out)"
check trial-take test "$TRIAL" = 2
dmsetup message lw 0 mark end-take
dmsetup message lw 0 mark begin-markgood
check mark-good sh -c 'liveinit mark-good | grep -q "marked good"'
dmsetup message lw 0 mark end-markgood
G
	if [[ -n $FLUSHPOINT_GUEST_EXTRA ]]; then
		echo 'dmsetup message lw 0 mark begin-extra'
		echo "$FLUSHPOINT_GUEST_EXTRA"
		echo 'dmsetup message lw 0 mark end-extra'
	fi
	cat <<'G'
dmsetup message lw 0 mark done
echo "log-writes status: $(dmsetup status lw)"
check lw-removed dmsetup --noudevsync remove lw
sync
G
}
# The host-side check of one replayed state (logreplay.py --check): LiveOS/ copied out with
# mtools (no vfat on the host kernel), then the pair /init would boot.
write_check() {
	cat >"$RUNDIR/check.sh" <<'C'
set -u
d=$(mktemp -d "$RUNDIR/state.XXXXXX")
trap 'rm -rf "$d"' EXIT
img="$REPLAY_IMAGE@@$REPLAY_OFFSET"
export MTOOLS_SKIP_CHECK=1
mcopy -s -n -i "$img" ::/LiveOS "$d/" 2>"$d/mcopy.err" || true
mkdir -p "$d/LiveOS"
# The boot files syncflash never touches must read back unchanged (boot.sha: the flash's before).
boot=ok
while read -r sum f; do
	[ "$(mtype -i "$img" "::$f" 2>/dev/null | sha256sum | cut -c1-64)" = "$sum" ] || boot="changed:$f"
done <"$RUNDIR/boot.sha"
dd if="$REPLAY_IMAGE" of="$d/part" bs=1M iflag=skip_bytes skip="$REPLAY_OFFSET" status=none
if fsck.fat -n "$d/part" >"$d/fsck.out" 2>&1; then fsck=clean; else fsck=complains; fi
rm -f "$d/part"
skip= pair= why=
while :; do
	# shellcheck disable=SC2086
	if ! out=$("$LIVEROOT" liveinit select-image "$d/LiveOS" squashfs.img --pubkey-file "$KEYPUB" --check auto $skip 2>"$d/sel.err"); then
		why="no pair: $(tr '\n' ' ' <"$d/sel.err")"
		break
	fi
	eval "$out"
	[ -z "$IMG_ROOTHASH" ] && { pair=$IMG_PAIR; break; }
	# dm-verity at boot: checked offline here over the same files; a failing pair is skipped.
	mkdir -p "$d/v" && rm -f "$d/v/"*
	ln -s "$IMG_FILE" "$d/v/i.img" && ln -s "$IMG_VERITY" "$d/v/i.img.verity"
	if "$LIVEROOT" imgcheck --verity-verify "$d/v/i.img" --roothash "$IMG_ROOTHASH" >/dev/null 2>"$d/ver.err"; then
		pair=$IMG_PAIR
		break
	fi
	skip="$skip --skip $IMG_PAIR"
done
ver=?
[ -n "$pair" ] && ver=${IMG_VERSION:-?}
# The trial record, read as /init reads it: one of the records written in turn (none before
# syncflash's trial start, v2 on trial with 3 tries, after the take 2, then good), never another.
if tr=$("$LIVEROOT" liveinit trial status --file "$d/LiveOS/trial.state" 2>&1); then
	eval "$tr"
	trial="$TRIAL_STATUS/${TRIAL_LEFT:-}/v${TRIAL_VERSION:-}"
else
	trial="unreadable"
fi
case $trial in
none//v | trial/3/v2 | trial/2/v2 | good/2/v2) ;;
*) why="${why:+$why; }trial record: $trial $(echo "$tr" | tr '\n' ' ')" ;;
esac
line="$REPLAY_POINT: pair=${pair:-none} version=$ver trial=$trial boot-files=$boot fsck=$fsck"
[ -n "$why" ] && line="$line why=$why"
echo "$line" >>"$RUNDIR/states.txt"
if [ "$fsck" = complains ]; then
	{ echo "== $REPLAY_POINT"; head -n 8 "$d/fsck.out"; } >>"$RUNDIR/fsck-notes.txt"
fi
[ -n "$pair" ] && [ "$boot" = ok ] && [ -z "$why" ]
C
}
# durable_at MARK REPLAY_OUTPUT: the last in-order state checked at or before the mark MARK: what
# the card holds for sure once the command before the mark returned.
durable_at() {
	local idx
	idx=$(sed -n "s/.*entry \([0-9]*\) mark '$1'.*/\1/p" <<<"$2" | head -n 1)
	[[ -n $idx ]] || return 0
	grep -v 'writes before it' "$RUNDIR/states.txt" | awk -v n="$idx" '$2 + 0 <= n + 0 { l = $0 } END { print l }'
}
# trial_checks REPLAY_OUTPUT: the trial-state writes (syncflash's trial start, a boot's take,
# mark-good) each durable when their command returned, the record only ever moving forward, and
# each sector write of the record followed by a FLUSH (or written FUA) in the log.
trial_checks() {
	local d want m
	for m in end-syncflash:trial/3/v2 end-take:trial/2/v2 end-markgood:good/2/v2; do
		want=${m#*:} m=${m%%:*}
		d=$(durable_at "$m" "$1")
		[[ $d == *" trial=$want "* ]] || problem "at mark $m the durable trial record is not $want: ${d:-no state}"
	done
	# In log order the record goes none → trial/3 → trial/2 → good, never back.
	local order
	order=$(grep -v 'writes before it' "$RUNDIR/states.txt" | sed -n 's/.* trial=\([^ ]*\) .*/\1/p' | uniq | tr '\n' ' ')
	[[ $order == "none//v trial/3/v2 trial/2/v2 good/2/v2 " ]] || problem "trial records in log order: $order"
	TRIAL_STATES=$(grep -c ' trial=[tg]' "$RUNDIR/states.txt")
	local flushes
	flushes=$(python3 - "$TOP/tests/qemu" "$RUNDIR/log.img" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import logreplay as lr
with open(sys.argv[2], "rb") as f:
    f.seek(0, 2)
    ss, es = lr.parse(f, f.tell())
    n = bad = fua = 0
    for i, e in enumerate(es):
        if e.data_at is None or e.flags & (lr.MARK | lr.DISCARD):
            continue
        f.seek(e.data_at)
        if f.read(8) != b"LRTRIAL\0":
            continue
        n += 1
        if e.flags & lr.FUA:
            fua += 1
            continue
        # Logged writes of one flush come just before it: only writes until the FLUSH entry.
        nxt = next((x for x in es[i + 1:] if not ((x.flags & ~lr.METADATA) == 0 and x.nr_sectors)), None)
        if nxt is None or not nxt.flags & lr.FLUSH:
            bad += 1
            print(f"BAD {e.describe(ss)}: no FLUSH after it ({nxt.describe(ss) if nxt else 'end of log'})")
    print(f"{n} trial-record writes, {n - bad} of them FUA or followed by a FLUSH ({fua} FUA)")
PY
)
	local m
	while IFS= read -r m; do problem "trial $m"; done < <(grep '^BAD' <<<"$flushes" | head -n 3)
	TRIAL_WRITES=$(tail -n 1 <<<"$flushes")
	[[ $TRIAL_WRITES == "3 trial-record writes, 3 of them FUA or followed by a FLUSH"* ]] || problem "trial-record writes in the log: $flushes"
}
verify() {
	marker synced || return
	write_check
	: >"$RUNDIR/states.txt"
	local f
	for f in /boot/vmlinuz /boot/initrd.img /boot/syslinux/ldlinux.sys /boot/syslinux/syslinux.cfg \
		/EFI/BOOT/BOOTX64.EFI /loader/entries/liveroot.conf; do
		MTOOLS_SKIP_CHECK=1 mtype -i "$RUNDIR/base.img@@$OFFSET" "::$f" >"$RUNDIR/bootfile" 2>/dev/null ||
			problem "$f: not on the flash"
		echo "$(sha256sum <"$RUNDIR/bootfile" | cut -c1-64) $f"
	done >"$RUNDIR/boot.sha"
	rm -f "$RUNDIR/bootfile"
	local out rc=0
	out=$(RUNDIR=$RUNDIR LIVEROOT=$BUILD/liveroot KEYPUB=$KEY/pub \
		python3 "$TOP/tests/qemu/logreplay.py" "$RUNDIR/log.img" "$RUNDIR/base.img" "$RUNDIR/work.img" \
		--offset "$OFFSET" --points "$POINTS" --reorder "$REORDER" --check "sh $RUNDIR/check.sh" 2>&1) || rc=$?
	# The per-state lines (pair chosen, fsck) are kept on failure, or with KEEP_LOGS=1.
	rm -f "$LOGDIR"/syncflash-flushpoints.*
	[[ $rc != 0 || -n ${KEEP_LOGS:-} ]] && cp "$RUNDIR/states.txt" "$LOGDIR/syncflash-flushpoints.states.txt" 2>/dev/null
	local summary n states re
	summary=$(grep -E '^[0-9]+ points, ' <<<"$out")
	n=$(awk '{ print $1 }' <<<"$summary")
	states=$(awk '{ print $3 }' <<<"$summary")
	re=$(sed -n 's/.*(+\([0-9]*\) reordered).*/\1/p' <<<"$summary")
	if ((rc != 0)) || [[ -z $summary ]]; then
		# Kept to replay by hand: logreplay.py LOG BASE WORK --offset 1048576 --list / --check ...
		cp --sparse=always "$RUNDIR/log.img" "$LOGDIR/syncflash-flushpoints.log.img"
		cp --sparse=always "$RUNDIR/base.img" "$LOGDIR/syncflash-flushpoints.base.img"
		cp "$RUNDIR/check.sh" "$LOGDIR/syncflash-flushpoints.check.sh" 2>/dev/null
		cp "$RUNDIR/boot.sha" "$LOGDIR/syncflash-flushpoints.boot.sha" 2>/dev/null
		echo "$out" >"$LOGDIR/syncflash-flushpoints.replay.txt"
		problem "replay: exit $rc: $(grep -E '^BAD|logreplay:' <<<"$out" | head -n 5 | tr '\n' ' ') $summary"
		local l
		while IFS= read -r l; do problem "state $l"; done < <(grep -E 'pair=none|boot-files=changed' "$RUNDIR/states.txt" | head -n 5)
		[[ -n $summary ]] || return
	fi
	((n > 0)) || { problem "no flush states in the log"; return; }
	# The log must hold every write: its full replay is the flash the guest left.
	cmp -s "$RUNDIR/work.img" "$FLASH" || problem "the replayed log does not end as the flash: $(cmp "$RUNDIR/work.img" "$FLASH" 2>&1 | head -n 1)"
	# What syncflash reported as done must be on the card by then: the state at the mark made
	# right after it returned (flushed writes only) boots v2 as the primary.
	local durable
	durable=$(durable_at end-syncflash "$out")
	[[ $durable == *"pair=primary version=2 "* ]] ||
		problem "syncflash returned before its last step was flushed: the card could be left with: ${durable:-no state}"
	trial_checks "$out"
	# Both sides of the update seen: v1 before, v2 (primary) at the end.
	grep -q 'version=1 ' "$RUNDIR/states.txt" || problem "no checked state booted v1"
	tail -n 1 "$RUNDIR/states.txt" | grep -q 'pair=primary version=2 ' || problem "the last state is not v2 as primary: $(tail -n 1 "$RUNDIR/states.txt")"
	grep -qE '^log: ' <<<"$out" && echo "    $(grep -E '^log: ' <<<"$out")"
	((rc == 0)) || return 0
	local what="flush states"
	[[ $POINTS == every ]] && what="states (one per log entry)"
	echo "    $n $what checked, all bootable ($states distinct; +${re:-0} reordered states, all bootable)"
	echo "    trial state: $TRIAL_STATES checked states hold a trial record (syncflash's start, a take, mark-good), each one of the records written, never a third; $TRIAL_WRITES"
	echo "    pairs chosen: $(sed -E 's/.*pair=([a-z]+) version=([0-9?]+).*/\1:v\2/' "$RUNDIR/states.txt" | sort | uniq -c | awk '{ printf "%s %sx, ", $2, $1 }' | sed 's/, $//')"
	echo "    fsck.fat -n complained in $(grep -c 'fsck=complains' "$RUNDIR/states.txt") of $((states + ${re:-0})) states (noted, not fatal); most often:"
	grep -hvE '^(==|fsck.fat |Checking we can access|/tmp/)' "$RUNDIR/fsck-notes.txt" 2>/dev/null | sed 's/[0-9]\{3,\}/N/g' | sort | uniq -c | sort -rn | head -n 3 | sed 's/^/      /'
	[[ -n ${KEEP_LOGS:-} ]] && cp "$RUNDIR/fsck-notes.txt" "$LOGDIR/syncflash-flushpoints.fsck.txt" 2>/dev/null
	return 0
}
