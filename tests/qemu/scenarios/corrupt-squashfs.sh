# One byte of squashfs.img flipped on the (copied) medium: refused before anything is mounted.
DESC="corrupted squashfs.img → refused by verification"
EXPECT="no-squashfs-mounted no-md7"
prepare() {
	# Physical block of the image's 200th block on the ext4 medium; flip its first byte.
	local blk off byte
	blk=$(debugfs -R "bmap /LiveOS/squashfs.img 200" "$FLASH" 2>/dev/null)
	off=$((blk * 4096))
	byte=$(od -An -tu1 -j "$off" -N1 "$FLASH" | tr -d ' ')
	printf "$(printf '\\%03o' $((byte ^ 0xff)))" | dd of="$FLASH" bs=1 seek="$off" conv=notrunc status=none
}
drive() {
	# An error line: a verification word and a failure word, in either order.
	local v='(verif|checksum|sha256|hash|digest)' f='(fail|mismatch|bad|refus|invalid|corrupt|wrong)'
	if ! wait_for "$v.*$f|$f.*$v" "$TIMEOUT"; then
		problem "no error line about verification"
		return
	fi
	sleep 3
	send 'grep -q squashfs /proc/mounts && echo LIVEROOT-TEST" FAIL" no-squashfs-mounted: squashfs mounted || echo LIVEROOT-TEST" ok" no-squashfs-mounted'
	send 'test -b /dev/md7 && echo LIVEROOT-TEST" FAIL" no-md7: md7 exists || echo LIVEROOT-TEST" ok" no-md7'
	wait_for 'LIVEROOT-TEST (ok|FAIL) no-md7' 30
	qemu_quit
	ENDED_BY_DRIVE=1
}
verify() {
	grep -aq 'sample-os: up' "$RUNDIR/console.log" && problem "the sample OS booted anyway"
	grep -aqi 'squashfs error' "$RUNDIR/console.log" && problem "the kernel read the corrupted squashfs"
	return 0
}
