# Every flush point of a syncflash, not just a few kills: the guest boots v1 with rd.live.ram (the
# medium released), stacks dm-log-writes on the `make flash` partition with a log disk beside it,
# and runs syncflash of a signed v2 through it. v2 is a release with its own kernel: its signed
# SHA256SUMS lists vmlinuz and initrd.img too (the flash's /boot ones with 512 zero bytes
# appended, so each state tells them apart; syncflash-lib.sh signed_v2_boot). The host then
# replays the log onto the flash as it was before the boot (tests/qemu/logreplay.py) and, at
# every FLUSH and FUA entry and every mark, checks the medium with the project's own selection
# (`liveinit select-image` with the key, the dm-verity tree checked offline when the chosen pair
# has sidecars, the next pair tried when it does not verify, as /init does): each state must hold
# a signed, verified pair, whose own kernel and initramfs, when its manifest lists them, match it
# (select-image does not hash them; found as pairs::Pair::resolved finds them mid-rotation). The
# log is replayed onto the partition alone; its replayed end state must be the flash's partition
# byte for byte (the log missed no write). fsck.fat -n findings are counted, not fatal (FAT32 has
# no journal; what counts is what boots).
#
# The model: a card whose volatile write cache is lost at the cut keeps exactly what it was told
# to flush (and FUA writes); dm-log-writes logs a plain write only when a later flush completes,
# so each log prefix ending at a FLUSH/FUA entry is such a state. FUA-only points are checked too
# (the kernel logs them at completion). A cache that wrote back out of order: for each FLUSH, up
# to LOGREPLAY_REORDER (default 4) states holding only a subset of the writes logged before it
# (all subsets when there are few; logreplay.py --reorder), one only when there are more than 32
# (LOGREPLAY_REORDER_BIG=32:1, --reorder-big: a file's data, under a temporary name; the release's
# kernel and initramfs made such intervals twice as many). LOGREPLAY_POINTS=every adds every
# in-order prefix. Torn sectors are not modelled.
#
# The trial-state writes (issue 12) are recorded too: syncflash's trial start (inside the
# syncflash), then `liveinit trial take` and `liveinit mark-good` for v2 through /dev/mapper/lw
# (marks begin-/end-take, begin-/end-markgood). Each state's LiveOS/trial.state must read as one
# of the records written (none, v2 on trial with 3 then 2 tries, good), in log order never
# back; each record durable once its command returned; each record write FUA or flushed.
#
# The loader's switch to a good release's own kernel (core/src/loader.rs) is recorded too: before
# `liveinit mark-good` the guest sets kernel=own (v2 as if running on its own kernel) and the key,
# so mark-good makes v2 the loader's (checked: it says "the loader's now"): /boot/vmlinuz-2 and
# /boot/initrd-2.img, syslinux.cfg then loader/entries/liveroot.conf rewritten, the flash's
# /boot/vmlinuz and /boot/initrd.img deleted. In each state, each entry names (KERNEL/INITRD,
# linux/initrd) a kernel and an initramfs that exist (read with mtools, which follows the FAT:
# an entry on a cluster the FAT says is free counts as missing) and whose digests are together
# the flash's original pair or v2's, never a mix; their other lines are unchanged, and so are
# ldlinux.sys, ldlinux.c32, mbr.bin, BOOTX64.EFI and loader.conf. In log order each entry moves
# from orig to v2 once, never back; once mark-good returned (mark end-markgood) both name v2's
# and /boot/vmlinuz and /boot/initrd.img are gone. Each state's line in states.txt says
# entries=SYSLINUX,SDBOOT (orig|v2|mix|missing) and old-boot=present|partial|gone.
#
# Hook for other recorded operations (e.g. the trial-state update of issue 12): FLUSHPOINT_GUEST_EXTRA
# is guest shell run while the log is recording, after the syncflash, between the marks
# `begin-extra` and `end-extra`; its states are replayed and checked the same way.
. "$TOP/tests/qemu/flash-lib.sh"
. "$TOP/tests/qemu/syncflash-lib.sh"
DESC="dm-log-writes during syncflash and mark-good: every FLUSH/FUA state replayed on the host holds a verified pair, and loader entries each naming one release's kernel and initramfs"
APPEND="root=live:LABEL=$LIVE_LABEL rd.live.image rd.live.ram"
TIMEOUT=300
FLASH_UNCHANGED=
EXPECT="root-md7 booted-v1 medium-released insmod lw-created flash-write-back synced nothing-to-do trial-started trial-take mark-good loader-adopted lw-removed"
FLUSHPOINT_GUEST_EXTRA=${FLUSHPOINT_GUEST_EXTRA:-}
POINTS=${LOGREPLAY_POINTS:-flush}
REORDER=${LOGREPLAY_REORDER:-4}
REORDER_BIG=${LOGREPLAY_REORDER_BIG:-32:1}
OFFSET=1048576
prepare() {
	flash_prepare || return
	signed_v2_boot "$FLASH@@$OFFSET" || return
	# v1 (the flash's own pair) signed too, version 1, with the same throw-away key: every state
	# is then checked with the key, so an unsigned or half-written pair never counts.
	KEY=$BUILD/syncflash-key
	local d=$RUNDIR/v1
	mkdir -p "$d"
	MTOOLS_SKIP_CHECK=1 mcopy -i "$FLASH@@$OFFSET" ::/LiveOS/SHA256SUMS "$d/SHA256SUMS"
	minisign -S -s "$KEY/sec" -m "$d/SHA256SUMS" -x "$d/SHA256SUMS.minisig" -t "version=1" >/dev/null
	MTOOLS_SKIP_CHECK=1 mcopy -i "$FLASH@@$OFFSET" "$d/SHA256SUMS.minisig" ::/LiveOS/SHA256SUMS.minisig
	# The partition alone (what dm-log-writes logged): each replayed state is then a FAT image
	# that fsck.fat and mtools read in place.
	local start sectors
	read -r start sectors < <(partx -g -o START,SECTORS -n 1 "$FLASH")
	((start * 512 == OFFSET)) || problem "the flash's partition starts at sector ${start:-?}, not at $OFFSET bytes"
	dd if="$FLASH" of="$RUNDIR/base.img" bs=1M iflag=skip_bytes,count_bytes skip="$OFFSET" count=$((sectors * 512)) status=none
	truncate -s 128M "$RUNDIR/log.img"
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
mkdir -p /run/live/ram && cp $T/squashfs.img $T/SHA256SUMS $T/SHA256SUMS.minisig $T/vmlinuz $T/initrd.img /run/live/ram/
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
# mark-good then makes v2 the loader's (core/src/loader.rs adopt_running): as if v2 ran on its
# own kernel, from the medium's primary pair, verified with the key.
liveinit state set kernel=own image=LiveOS/squashfs.img pubkey=$T/pub
dmsetup message lw 0 mark begin-markgood
liveinit mark-good >/tmp/mg.out 2>&1; echo "mark-good: exit $?"; cat /tmp/mg.out
dmsetup message lw 0 mark end-markgood
check mark-good grep -q "marked good" /tmp/mg.out
check loader-adopted grep -q "the loader's now" /tmp/mg.out
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
why=
# The boot files nothing may touch read back unchanged (boot.sha: the flash's before; copied
# out in one go, their base names all different).
boot=ok
mkdir "$d/bf"
# shellcheck disable=SC2046
mcopy -n -i "$img" $(awk '{ print "::" $2 }' "$RUNDIR/boot.sha") "$d/bf/" 2>/dev/null
(cd "$d/bf" && sha256sum -c --quiet "$RUNDIR/boot.sums" >/dev/null 2>&1) ||
	boot="changed:$(cd "$d/bf" && sha256sum -c "$RUNDIR/boot.sums" 2>/dev/null | sed -n 's/: FAILED.*//p' | head -n 1)"
# digest NAME: sha256 of the file NAME on the medium (once per name and state); "missing" when
# mtype reads nothing (no such file, or one at cluster 0, or on a cluster the FAT says is free).
: >"$d/sums"
digest() {
	local s
	s=$(awk -v n="$1" '$1 == n { print $2; exit }' "$d/sums")
	if [ -z "$s" ]; then
		s=$(mtype -i "$img" "::${1:-/}" 2>/dev/null | sha256sum)
		s=${s%% *}
		[ "$s" = e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ] && s=missing
		echo "${1:-none} $s" >>"$d/sums"
	fi
	echo "$s"
}
# what DIGEST: which release's file it is (release.sha: orig and v2's kernel and initramfs).
what() { awk -v s="$1" '$2 == s { print $1 "-kernel"; f = 1; exit } $3 == s { print $1 "-initrd"; f = 1; exit } END { if (!f) print "other" }' "$RUNDIR/release.sha"; }
# The loader entries (core/src/loader.rs): each names a kernel and an initramfs that exist and
# are together one release's, the flash's own (orig) or v2's; never a mix, never a missing file.
# Every other line of the entry as it was (boot.rest).
entries=
for e in /boot/syslinux/syslinux.cfg /loader/entries/liveroot.conf; do
	rel=missing
	if mtype -i "$img" "::$e" 2>/dev/null | tr -d '\r' >"$d/entry" && [ -s "$d/entry" ]; then
		k=$(awk 'NF >= 2 && (tolower($1) == "kernel" || tolower($1) == "linux") { print $2; exit }' "$d/entry")
		i=$(awk 'NF >= 2 && tolower($1) == "initrd" { print $2; exit }' "$d/entry")
		ks=$(digest "$k") is=$(digest "$i")
		rel=$(awk -v k="$ks" -v i="$is" '$2 == k && $3 == i { print $1; exit }' "$RUNDIR/release.sha")
		if [ -z "$rel" ]; then
			rel=mix
			why="${why:+$why; }$e names $k ($ks $(what "$ks")) and $i ($is $(what "$is"))"
		fi
		rest=$(grep -viE '^[[:space:]]*(kernel|linux|initrd)[[:space:]]' "$d/entry" | sha256sum | cut -c1-64)
		grep -qx "$rest $e" "$RUNDIR/boot.rest" || why="${why:+$why; }$e: its other lines changed"
	else
		why="${why:+$why; }$e missing or empty"
	fi
	entries="$entries${entries:+,}$rel"
done
# The files the flash's entries named: present until both entries name v2's, then deleted.
old=
for f in /boot/vmlinuz /boot/initrd.img; do
	mdir -b -i "$img" "::$f" >/dev/null 2>&1 && old="${old}+" || old="$old-"
done
case $old in ++) old=present ;; --) old=gone ;; *) old=partial ;; esac
part=$REPLAY_IMAGE
if [ "$REPLAY_OFFSET" != 0 ]; then
	part=$d/part
	dd if="$REPLAY_IMAGE" of="$part" bs=1M iflag=skip_bytes skip="$REPLAY_OFFSET" status=none
fi
if fsck.fat -n "$part" >"$d/fsck.out" 2>&1; then fsck=clean; else fsck=complains; fi
rm -f "$d/part"
skip= pair=
while :; do
	# shellcheck disable=SC2086
	if ! out=$("$LIVEROOT" liveinit select-image "$d/LiveOS" squashfs.img --pubkey-file "$KEYPUB" --check auto $skip 2>"$d/sel.err"); then
		why="${why:+$why; }no pair: $(tr '\n' ' ' <"$d/sel.err")"
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
# The chosen pair's own kernel and initramfs, when its manifest lists them, verify too (/init
# boots them; select-image does not hash them): found as pairs::Pair::resolved finds them, the
# primary's name borrowed while a rotation has the primary without its manifest.
pboot=-
if [ -n "$pair" ]; then
	case $pair in primary) sfx= ;; *) sfx=.$pair ;; esac
	for f in vmlinuz initrd.img; do
		want=$(awk -v f="$f" '$2 == f || $2 == "*" f { print $1; exit }' "$d/LiveOS/SHA256SUMS$sfx")
		[ -n "$want" ] || continue
		p=$d/LiveOS/$f$sfx
		if [ -n "$sfx" ] && [ ! -e "$d/LiveOS/SHA256SUMS" ] && [ ! -e "$p" ] && [ -e "$d/LiveOS/$f" ]; then p=$d/LiveOS/$f; fi
		s=$(sha256sum <"$p" 2>/dev/null)
		if [ "${s%% *}" = "$want" ]; then
			[ "$pboot" = bad ] || pboot=ok
		else
			pboot=bad
			why="${why:+$why; }pair $pair: ${p#"$d"/} does not match its manifest"
		fi
	done
fi
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
line="$REPLAY_POINT: pair=${pair:-none} version=$ver trial=$trial pair-boot=$pboot entries=$entries old-boot=$old other-boot=$boot fsck=$fsck"
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
# entry_checks REPLAY_OUTPUT: each loader entry moves from the flash's kernel and initramfs to
# v2's once, in log order (syslinux.cfg first), never back; once mark-good returned, both name
# v2's and the flash's /boot/vmlinuz and /boot/initrd.img are gone. (Each state's entries were
# checked in check.sh: one release's complete pair each, never a mix.)
entry_checks() {
	local seq col d
	seq=$(grep -v 'writes before it' "$RUNDIR/states.txt" | sed -n 's/.* entries=\([^ ]*\) old-boot=\([^ ]*\) .*/\1:\2/p' | uniq)
	ENTRY_ORDER=$(tr '\n' ' ' <<<"$seq" | sed 's/ $//; s/ / → /g')
	for col in 1 2; do
		cut -d: -f1 <<<"$seq" | cut -d, -f"$col" | uniq | tr '\n' ' ' | grep -qxE '(orig )?(v2 )?' ||
			problem "entry $col (1 syslinux, 2 systemd-boot) in log order is not orig then v2: $ENTRY_ORDER"
	done
	[[ $(head -n 1 <<<"$seq") == orig,orig:present ]] || problem "the first state's entries are not the flash's: $(head -n 1 <<<"$seq")"
	d=$(durable_at end-markgood "$1")
	ENTRY_END=$(sed -n 's/.* \(entries=[^ ]* old-boot=[^ ]*\) .*/\1/p' <<<"$d")
	[[ $ENTRY_END == "entries=v2,v2 old-boot=gone" ]] ||
		problem "once mark-good returned the durable entries are not both v2's with the old files gone: ${d:-no state}"
	ENTRY_V2=$(grep -c ' entries=[^ ]*v2' "$RUNDIR/states.txt")
}
verify() {
	marker synced || return
	write_check
	: >"$RUNDIR/states.txt"
	local f
	# bootfile PATH: the flash's file as it was before the boot.
	bootfile() { MTOOLS_SKIP_CHECK=1 mtype -i "$RUNDIR/base.img" "::$1" 2>/dev/null; }
	for f in /boot/syslinux/ldlinux.sys /boot/syslinux/ldlinux.c32 /boot/syslinux/mbr.bin /EFI/BOOT/BOOTX64.EFI \
		/loader/loader.conf /boot/syslinux/syslinux.cfg /loader/entries/liveroot.conf /boot/vmlinuz /boot/initrd.img; do
		MTOOLS_SKIP_CHECK=1 mdir -a -b -i "$RUNDIR/base.img" "::$f" >/dev/null 2>&1 || problem "$f: not on the flash"
	done
	for f in /boot/syslinux/ldlinux.sys /boot/syslinux/ldlinux.c32 /boot/syslinux/mbr.bin \
		/EFI/BOOT/BOOTX64.EFI /loader/loader.conf; do
		echo "$(bootfile "$f" | sha256sum | cut -c1-64) $f"
	done >"$RUNDIR/boot.sha"
	# The same for sha256sum -c in a directory holding them by their base names.
	awk '{ n = $2; sub(/.*\//, "", n); print $1 "  " n }' "$RUNDIR/boot.sha" >"$RUNDIR/boot.sums"
	# The entries' lines other than kernel and initrd (command line, serial, ...) stay as they were.
	for f in /boot/syslinux/syslinux.cfg /loader/entries/liveroot.conf; do
		echo "$(bootfile "$f" | tr -d '\r' | grep -viE '^[[:space:]]*(kernel|linux|initrd)[[:space:]]' | sha256sum | cut -c1-64) $f"
	done >"$RUNDIR/boot.rest"
	# The two releases an entry may name: the flash's own kernel and initramfs, and v2's.
	{
		echo "orig $(bootfile /boot/vmlinuz | sha256sum | cut -c1-64) $(bootfile /boot/initrd.img | sha256sum | cut -c1-64)"
		echo "v2 $(sha256sum <"$V2B/vmlinuz" | cut -c1-64) $(sha256sum <"$V2B/initrd.img" | cut -c1-64)"
	} >"$RUNDIR/release.sha"
	local out rc=0 t0=$SECONDS
	out=$(RUNDIR=$RUNDIR LIVEROOT=$BUILD/liveroot KEYPUB=$KEY/pub \
		python3 "$TOP/tests/qemu/logreplay.py" "$RUNDIR/log.img" "$RUNDIR/base.img" "$RUNDIR/work.img" \
		--points "$POINTS" --reorder "$REORDER" --reorder-big "$REORDER_BIG" --check "sh $RUNDIR/check.sh" 2>&1) || rc=$?
	# The per-state lines (pair chosen, fsck) are kept on failure, or with KEEP_LOGS=1.
	rm -f "$LOGDIR"/syncflash-flushpoints.*
	[[ $rc != 0 || -n ${KEEP_LOGS:-} ]] && cp "$RUNDIR/states.txt" "$LOGDIR/syncflash-flushpoints.states.txt" 2>/dev/null
	local summary n states re
	summary=$(grep -E '^[0-9]+ points, ' <<<"$out")
	n=$(awk '{ print $1 }' <<<"$summary")
	states=$(awk '{ print $3 }' <<<"$summary")
	re=$(sed -n 's/.*(+\([0-9]*\) reordered).*/\1/p' <<<"$summary")
	if ((rc != 0)) || [[ -z $summary ]] || [[ -n ${KEEP_LOGS:-} ]]; then
		# Kept to replay by hand (BASE: the partition): logreplay.py LOG BASE WORK --list / --check ...
		cp --sparse=always "$RUNDIR/log.img" "$LOGDIR/syncflash-flushpoints.log.img"
		cp --sparse=always "$RUNDIR/base.img" "$LOGDIR/syncflash-flushpoints.base.img"
		cp "$RUNDIR/check.sh" "$LOGDIR/syncflash-flushpoints.check.sh" 2>/dev/null
		for f in boot.sha boot.sums boot.rest release.sha; do cp "$RUNDIR/$f" "$LOGDIR/syncflash-flushpoints.$f" 2>/dev/null; done
		echo "$out" >"$LOGDIR/syncflash-flushpoints.replay.txt"
	fi
	if ((rc != 0)) || [[ -z $summary ]]; then
		problem "replay: exit $rc: $(grep -E '^BAD|logreplay:' <<<"$out" | head -n 5 | tr '\n' ' ') $summary"
		local l
		while IFS= read -r l; do problem "state $l"; done < <(grep -E 'pair=none| why=|other-boot=changed' "$RUNDIR/states.txt" | head -n 5)
		[[ -n $summary ]] || return
	fi
	((n > 0)) || { problem "no flush states in the log"; return; }
	# The log must hold every write: its full replay is the flash the guest left.
	local size
	size=$(stat -c %s "$RUNDIR/work.img")
	cmp -s -i "0:$OFFSET" -n "$size" "$RUNDIR/work.img" "$FLASH" ||
		problem "the replayed log does not end as the flash's partition: $(cmp -i "0:$OFFSET" -n "$size" "$RUNDIR/work.img" "$FLASH" 2>&1 | head -n 1)"
	# What syncflash reported as done must be on the card by then: the state at the mark made
	# right after it returned (flushed writes only) boots v2 as the primary.
	local durable
	durable=$(durable_at end-syncflash "$out")
	[[ $durable == *"pair=primary version=2 "* ]] ||
		problem "syncflash returned before its last step was flushed: the card could be left with: ${durable:-no state}"
	trial_checks "$out"
	entry_checks "$out"
	# Both sides of the update seen: v1 before, v2 (primary) at the end.
	grep -q 'version=1 ' "$RUNDIR/states.txt" || problem "no checked state booted v1"
	tail -n 1 "$RUNDIR/states.txt" | grep -q 'pair=primary version=2 ' || problem "the last state is not v2 as primary: $(tail -n 1 "$RUNDIR/states.txt")"
	grep -qE '^log: ' <<<"$out" && echo "    $(grep -E '^log: ' <<<"$out"); replayed and checked in $((SECONDS - t0))s"
	((rc == 0)) || return 0
	local what="flush states"
	[[ $POINTS == every ]] && what="states (one per log entry)"
	echo "    $n $what checked, all bootable ($states distinct; +${re:-0} reordered states, all bootable)"
	echo "    loader entries (syslinux,systemd-boot) in log order: $ENTRY_ORDER; $ENTRY_V2 states with an entry on v2's; at end-markgood: $ENTRY_END"
	echo "    trial state: $TRIAL_STATES checked states hold a trial record (syncflash's start, a take, mark-good), each one of the records written, never a third; $TRIAL_WRITES"
	echo "    pairs chosen: $(sed -E 's/.*pair=([a-z]+) version=([0-9?]+).*/\1:v\2/' "$RUNDIR/states.txt" | sort | uniq -c | awk '{ printf "%s %sx, ", $2, $1 }' | sed 's/, $//')"
	echo "    fsck.fat -n complained in $(grep -c 'fsck=complains' "$RUNDIR/states.txt") of $((states + ${re:-0})) states (noted, not fatal); most often:"
	grep -hvE '^(==|fsck.fat |Checking we can access|/tmp/)' "$RUNDIR/fsck-notes.txt" 2>/dev/null | sed 's/[0-9]\{3,\}/N/g' | sort | uniq -c | sort -rn | head -n 3 | sed 's/^/      /'
	[[ -n ${KEEP_LOGS:-} ]] && cp "$RUNDIR/fsck-notes.txt" "$LOGDIR/syncflash-flushpoints.fsck.txt" 2>/dev/null
	return 0
}
