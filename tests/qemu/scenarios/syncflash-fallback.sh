# The boot's fallback: the primary image does not match its manifest (here: v2's bytes under
# v1's SHA256SUMS), a complete .old pair (v1) and a leftover incomplete .new are on the FAT32
# flash. /init says why the primary was refused, boots .old, records medium_pair=old, and
# writes nothing to the flash (FLASH_UNCHANGED).
. "$TOP/tests/qemu/syncflash-lib.sh"
DESC="primary fails verification → the .old pair boots, with the reason on the console"
MEDIUM=$FAT_IMG
EXPECT="booted-v1 old-pair verified"
prepare() {
	make_version "$BUILD/syncflash-v2" 2 0
	local m=(env MTOOLS_SKIP_CHECK=1)
	"${m[@]}" mcopy -i "$FLASH" ::/LiveOS/squashfs.img "$RUNDIR/v1.img"
	"${m[@]}" mcopy -i "$FLASH" "$RUNDIR/v1.img" ::/LiveOS/squashfs.img.old
	"${m[@]}" mcopy -i "$FLASH" ::/LiveOS/SHA256SUMS "$RUNDIR/v1.sums"
	"${m[@]}" mcopy -i "$FLASH" "$RUNDIR/v1.sums" ::/LiveOS/SHA256SUMS.old
	# The .old pair is complete: its dm-verity sidecars too, when the sample image has them.
	fat_sidecars_to "$FLASH" .old >/dev/null
	"${m[@]}" mcopy -o -i "$FLASH" "$BUILD/syncflash-v2/squashfs.img" ::/LiveOS/squashfs.img
	"${m[@]}" mcopy -i "$FLASH" "$BUILD/syncflash-v2/squashfs.img" ::/LiveOS/squashfs.img.new
}
guest() {
	cat <<'G'
check_live_root
check booted-v1 test "$(cat /etc/liveroot-version)" = 1
check old-pair test "$(liveinit state get medium_pair)" = old
check verified test "$(liveinit state get verified)" = sha256
G
}
verify() {
	local log
	log=$(tr -d '\r' <"$RUNDIR/console.log")
	grep -aqE 'liveroot: (verify|verity): .*LiveOS/squashfs.img: (checksum mismatch( with [^ ]*SHA256SUMS)?, image refused|.*does not verify through dm-verity)' <<<"$log" ||
		problem "no line saying why the primary was refused"
	grep -aq 'liveroot: verify: .*squashfs.img refused; booting the old image .*squashfs.img.old' <<<"$log" ||
		problem "no line saying the .old image boots"
}
