# Boot cost does not grow with the image: the sample OS plus 400 MiB of incompressible content
# (mk/mkimage.sh FILL_MIB=400, published with dm-verity sidecars) boots through dm-verity, and
# by the time the sample OS is up the boot has read only a small part of the medium: what it
# needed, verified as read. Counted from the medium's own block statistics (sectors read), not
# timed: the same check holds on a fast or a loaded machine. (make bench times it.)
DESC="400 MiB image boots reading a small part of it (dm-verity, no whole-image hash)"
MEDIUM=
TIMEOUT=240
FILL=400
# At most this much of the medium may be read before the sample OS is up.
MAX_READ_MIB=48
EXPECT="root-md7 booted-through-verity image-is-big read-little"
prepare() {
	local dir=$BUILD/fill-$FILL
	if ! PUBLISHER=$BUILD/publisher/liveroot FILL_MIB=$FILL "$TOP/mk/mkimage.sh" "$dir" >/dev/null; then
		problem "mk/mkimage.sh FILL_MIB=$FILL failed"
		return
	fi
	# run.sh boots $FLASH as the flash disk, and checks it is unchanged afterwards.
	FLASH=$RUNDIR/big.img
	make_flash "$dir/live-flash.img" "$FLASH"
	FLASH_SHA=$(sha256sum <"$FLASH")
}
guest() {
	echo "FILL=$FILL MAX_READ_MIB=$MAX_READ_MIB"
	cat <<'G'
# Read the counter first: everything below reads from the medium too.
MED=$(sed -n 's/^medium=//p' /run/live/state)
read_mib=$(( $(awk '{ print $3 }' /sys/class/block/${MED#/dev/}/stat) / 2048 ))
img_mib=$(( $(stat -c %s /run/live/medium/LiveOS/squashfs.img) >> 20 ))
echo "medium $MED: $read_mib MiB read during the boot; squashfs.img is $img_mib MiB"
check_live_root
check booted-through-verity sh -c "grep -q '^/dev/mapper/live-base /run/live/squashfs squashfs ' /proc/mounts"
check image-is-big [ "$img_mib" -ge "$FILL" ]
check read-little [ "$read_mib" -le "$MAX_READ_MIB" ]
G
}
