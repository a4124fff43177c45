# The medium changes under the running system: after a verity boot, one block of squashfs.img is
# overwritten on the raw medium (the block device, not through any mapping) and the page cache
# dropped. The image is verity-big.sh's (400 MiB of filler): a block in its middle holds filler
# that the running system never reads, so only the check reads it (a block the system needs
# would give the system the EIO: a process dies of SIGBUS, as it must). Whoever reads that block
# again through the boot's live-base gets EIO and the kernel logs the corruption; the new bytes
# never come out, though they are on the medium.
DESC="image overwritten on the raw medium after boot → EIO, never the new bytes"
FLASH_UNCHANGED=
EXPECT="root-md7 booted-through-verity block-read-before medium-overwritten medium-has-new-bytes
	read-gives-eio never-new-bytes kernel-log status-corrupted"
MEDIUM=
TIMEOUT=240
FILL=400
prepare() {
	local size blocks dir=$BUILD/fill-$FILL
	if ! PUBLISHER=$BUILD/publisher/liveroot FILL_MIB=$FILL "$TOP/mk/mkimage.sh" "$dir" >/dev/null; then
		problem "mk/mkimage.sh FILL_MIB=$FILL failed"
		return
	fi
	# run.sh boots $FLASH as the flash disk.
	FLASH=$RUNDIR/big.img
	make_flash "$dir/live-flash.img" "$FLASH"
	size=$(debugfs -R "stat /LiveOS/squashfs.img" "$FLASH" 2>/dev/null | awk '/Size:/ { for (i = 1; i < NF; i++) if ($i == "Size:") print $(i + 1); exit }')
	blocks=$((size / 4096))
	((blocks > 8)) || { problem "squashfs.img has $blocks blocks"; return; }
	VB=$((blocks / 2))
	VPHYS=$(debugfs -R "bmap /LiveOS/squashfs.img $VB" "$FLASH" 2>/dev/null)
	[[ $VPHYS =~ ^[0-9]+$ && $VPHYS -gt 0 ]] || problem "no physical block for image block $VB"
}
guest() {
	echo "VB=$VB VPHYS=$VPHYS"
	cat <<'G'
check_live_root
check booted-through-verity sh -c "grep -q '^/dev/mapper/live-base /run/live/squashfs squashfs ' /proc/mounts"
MED=$(sed -n 's/^medium=//p' /run/live/state)
echo "medium $MED, image block $VB at medium block $VPHYS"
rd() { dd if="$1" bs=4096 skip="$2" count=1 2>/dev/null | md5sum | cut -d' ' -f1; }
old=$(rd /dev/mapper/live-base "$VB")
echo "  block before: $old"
check block-read-before sh -c "[ -n '$old' ] && [ \"\$(dd if=$MED bs=4096 skip=$VPHYS count=1 2>/dev/null | md5sum | cut -d' ' -f1)\" = '$old' ]"
# 4 KiB of 'Z' where that block lies on the medium, written to the raw device.
dd if=/dev/zero bs=4096 count=1 2>/dev/null | tr '\0' 'Z' >/tmp/z
new=$(md5sum </tmp/z | cut -d' ' -f1)
check medium-overwritten dd if=/tmp/z of="$MED" bs=4096 seek="$VPHYS" count=1 conv=notrunc,fsync
sync
echo 3 >/proc/sys/vm/drop_caches
check medium-has-new-bytes [ "$(rd "$MED" "$VPHYS")" = "$new" ]
out=$(dd if=/dev/mapper/live-base of=/tmp/blk bs=4096 skip="$VB" count=1 2>&1); rc=$?
echo "  dd through live-base: exit $rc: $out"
check read-gives-eio sh -c "[ $rc -ne 0 ] && echo '$out' | grep -Eqi 'input/output error|i/o error'"
check never-new-bytes sh -c "! [ -s /tmp/blk ] || [ \"\$(md5sum </tmp/blk | cut -d' ' -f1)\" != '$new' ]"
check kernel-log sh -c "dmesg | grep -Eq 'verity.*(data|metadata) block $VB is corrupted'"
check status-corrupted sh -c "dmsnap status live-base | grep -q CORRUPTED"
G
}
