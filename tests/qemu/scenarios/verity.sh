# `dmsnap verity` against the real dm-verity target: an image and its sidecars made on the host by
# `liveroot imgcheck --verity-format` are mapped in the live system; the content reads back
# identical, table/status match dmsetup's, a block overwritten on the underlying file (not
# through dm) gives EIO and a kernel log line after the caches are dropped, never the new bytes,
# and status turns CORRUPTED. The boot itself mounted the sample medium's squashfs.img through
# dm-verity (live-base) with the sidecars `make image` put beside it. A wrong root hash, a bad superblock, a wrong size or a data block 0
# that does not match are refused with exit 3 and leave no dm device and no loop behind.
DESC="dmsnap verity: map, read back, corruption gives EIO, refusals leave nothing"
TOOLS="dmsetup"
TIMEOUT=300
BLOCKS=600
EXPECT="root-md7 verity-wrong-roothash verity-bad-superblock verity-wrong-size verity-block0
	verity-map verity-node verity-content verity-table-parity verity-table-form verity-status-parity
	verity-status-verified verity-listed verity-readonly verity-loops verity-restart-option
	verity-eio verity-never-new-bytes verity-kernel-log verity-status-corrupted
	verity-other-blocks verity-remove verity-nothing-left verity-boot-mounted verity-status-all
	verity-boot-roothash verity-boot-state"
prepare() {
	local d=$RUNDIR/v
	mkdir -p "$d"
	head -c $((BLOCKS * 4096)) /dev/urandom >"$d/v.img"
	"$BUILD/publisher/liveroot" imgcheck --verity-format "$d/v.img" >/dev/null || problem "imgcheck --verity-format failed"
	# The host's veritysetup agrees with the sidecars.
	veritysetup verify "$d/v.img" "$d/v.img.verity" "$(cat "$d/v.img.roothash")" >/dev/null 2>&1 ||
		problem "veritysetup verify refuses imgcheck's sidecars"
	TESTS_FILES=("$d/v.img" "$d/v.img.verity" "$d/v.img.roothash")
}
guest() {
	echo "BLOCKS=$BLOCKS"
	cat <<'G'
check_live_root
export DM_DISABLE_UDEV=1
W=/tmp/verity-check
mkdir -p $W && mount -t tmpfs -o size=48m verity-check $W
cp $T/v.img $T/v.img.verity $T/v.img.roothash $W/
R=$(cat $W/v.img.roothash)
loops() { liveroot losetup -a 2>&1 | sort; }
dms() { dmsnap list --all 2>&1; }
L0=$(loops) D0=$(dms)
left() { # what a failed or removed mapping left behind, empty when nothing
	[ "$(loops)" = "$L0" ] || echo "loops: $(loops | tr '\n' ' ')"
	[ "$(dms)" = "$D0" ] || echo "dm: $(dms | tr '\n' ' ')"
	[ -e /dev/mapper/vt ] && echo "/dev/mapper/vt exists"
}
# refuse NAME TEXT ARGS...: dmsnap verity vt ARGS exits 3, says TEXT, leaves nothing.
refuse() {
	name=$1 text=$2
	shift 2
	out=$(dmsnap verity vt "$@" 2>&1)
	rc=$?
	echo "  $name: exit $rc: $out"
	junk=$(left)
	if [ $rc -ne 3 ]; then fail $name "exit $rc (want 3): $out"
	elif ! echo "$out" | grep -qF -- "$text"; then fail $name "'$out' lacks '$text'"
	elif [ -n "$junk" ]; then fail $name "left behind: $junk"
	else ok $name; fi
}
case $R in 0*) WRONG=1${R#?} ;; *) WRONG=0${R#?} ;; esac
refuse verity-wrong-roothash "hash tree does not match the root hash" --data $W/v.img --hash $W/v.img.verity --roothash $WRONG
cp $W/v.img.verity $W/bad.verity && printf X | dd of=$W/bad.verity bs=1 count=1 conv=notrunc 2>/dev/null
refuse verity-bad-superblock 'no "verity" signature' --data $W/v.img --hash $W/bad.verity --roothash-file $W/v.img.roothash
cp $W/v.img $W/grown.img && dd if=/dev/zero bs=4096 count=1 2>/dev/null >>$W/grown.img
refuse verity-wrong-size "the rest would be unverified" --data $W/grown.img --hash $W/v.img.verity --roothash $R
# Tree and root hash fine, data block 0 changed: caught by the first read through the device,
# after the device and its loops were made: all of it must go again.
cp $W/v.img $W/b0.img && printf 'XXXX' | dd of=$W/b0.img bs=1 seek=100 conv=notrunc 2>/dev/null
refuse verity-block0 "data block 0 does not verify through dm-verity" --data $W/b0.img --hash $W/v.img.verity --roothash $R
rm -f $W/bad.verity $W/grown.img $W/b0.img

check verity-map dmsnap verity vt --data $W/v.img --hash $W/v.img.verity --roothash-file $W/v.img.roothash
check verity-node test -b /dev/mapper/vt
a=$(sha256sum </dev/mapper/vt) b=$(sha256sum <$W/v.img)
check verity-content [ "$a" = "$b" ]
a=$(dmsetup table vt 2>&1) b=$(dmsnap table vt 2>&1)
echo "  table: $b"
check verity-table-parity [ "$a" = "$b" ]
check verity-table-form sh -c "echo '$b' | grep -qE '^0 $((BLOCKS * 8)) verity 1 7:[0-9]+ 7:[0-9]+ 4096 4096 $BLOCKS 1 sha256 $R [0-9a-f]{64}\$'"
a=$(dmsetup status vt 2>&1) b=$(dmsnap status --raw vt 2>&1)
echo "  status --raw: $b"
check verity-status-parity [ "$a" = "$b" ]
s=$(dmsnap status vt 2>&1)
check verity-status-verified [ "$s" = "vt: verity, verified" ]
check verity-listed sh -c "dmsnap list | grep -q '^vt	('"
check verity-readonly [ "$(blockdev --getro /dev/mapper/vt)" = 1 ]
vloops() { # the loops holding the image and its tree: read-only, autoclear
	n=0
	for b in /sys/block/loop*/loop/backing_file; do
		case $(cat $b) in $W/v.img|$W/v.img.verity) ;; *) continue ;; esac
		d=${b%/loop/backing_file}
		[ "$(cat $d/ro)" = 1 ] && [ "$(cat $d/loop/autoclear)" = 1 ] || { echo "$d: ro $(cat $d/ro) autoclear $(cat $d/loop/autoclear)"; return 1; }
		n=$((n + 1))
	done
	[ $n = 2 ] || { echo "$n loops"; return 1; }
}
check verity-loops vloops

# The other policies only change the table (reading a bad block there would reboot the box).
dmsnap verity vt2 --data $W/v.img --hash $W/v.img.verity --roothash $R --on-corruption restart
t=$(dmsetup table vt2 2>&1)
dmsnap remove vt2
check verity-restart-option sh -c "echo '$t' | grep -q ' 1 restart_on_corruption\$'"

# Overwrite block 100 on the file under the loop, drop the caches, read it through dm-verity.
B=100
dd if=/dev/urandom of=$W/new.blk bs=4096 count=1 2>/dev/null
dd if=$W/new.blk of=$W/v.img bs=4096 seek=$B count=1 conv=notrunc 2>/dev/null
sync
echo 3 >/proc/sys/vm/drop_caches
k0=$(dmesg | grep -c 'verity.*corrupt')
if dd if=/dev/mapper/vt of=$W/got.blk bs=4096 skip=$B count=1 2>$W/dd.err; then
	fail verity-eio "the read of block $B succeeded"
elif grep -qi 'input/output error' $W/dd.err; then
	ok verity-eio
else
	fail verity-eio "dd failed without EIO: $(cat $W/dd.err)"
fi
check verity-never-new-bytes sh -c "! cmp -s $W/got.blk $W/new.blk"
dmesg | grep 'verity' | tail -n 3 | sed 's/^/  kernel: /'
check verity-kernel-log [ "$(dmesg | grep -c 'verity.*corrupt')" -gt "$k0" ]
s=$(dmsnap status vt 2>&1)
echo "  status: $s / raw: $(dmsnap status --raw vt)"
check verity-status-corrupted [ "$s" = "vt: verity, CORRUPTED (blocks failed verification)" ]
check verity-other-blocks dd if=/dev/mapper/vt of=/dev/null bs=4096 skip=$((B + 200)) count=8

check verity-remove dmsnap remove vt
junk=$(left)
check verity-nothing-left [ -z "$junk" ]
[ -n "$junk" ] && echo "  left: $junk"
umount $W

# The boot itself: /init mapped the medium's squashfs.img through dm-verity with the sidecars
# mk/mkimage.sh published, from the root hash the manifest binds, and mounted the squashfs
# from that device (not from a loop of the file).
M=/run/live/medium/LiveOS
check verity-boot-mounted sh -c "grep -q '^/dev/mapper/live-base /run/live/squashfs squashfs ' /proc/mounts"
s=$(dmsnap status 2>&1)
echo "  status (all): $(echo "$s" | tr '\n' '|')"
check verity-status-all sh -c "echo '$s' | grep -qx 'live-base: verity, verified' && echo '$s' | grep -q '^live-rw: '"
check verity-boot-roothash sh -c "dmsnap table live-base | grep -q \" \$(cat $M/squashfs.img.roothash) \""
check verity-boot-state sh -c "grep -qx \"verity=\$(cat $M/squashfs.img.roothash)\" /run/live/state"
G
}
