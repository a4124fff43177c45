# A medium published without dm-verity sidecars (SHA256SUMS lists squashfs.img alone), one byte
# of squashfs.img flipped: the whole-image check refuses it before anything is mounted. (With
# sidecars the image is checked as it is read instead: verity-medium.sh.)
DESC="no sidecars, corrupted squashfs.img → refused by the whole-image check"
EXPECT="no-squashfs-mounted no-md7"
prepare() {
	local sums=$RUNDIR/sums
	debugfs -R "cat /LiveOS/SHA256SUMS" "$FLASH" 2>/dev/null | grep ' squashfs.img$' >"$sums"
	[[ -s $sums ]] || { problem "no squashfs.img line in the sample SHA256SUMS"; return; }
	printf 'cd /LiveOS\nrm squashfs.img.verity\nrm squashfs.img.roothash\nrm SHA256SUMS\nwrite %s SHA256SUMS\n' "$sums" |
		debugfs -w -f - "$FLASH" >/dev/null 2>&1
	[[ $(debugfs -R "ls -l /LiveOS" "$FLASH" 2>/dev/null | grep -c 'squashfs.img\.') == 0 ]] ||
		problem "the sidecars are still on the medium"
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
	refused_before_mounting "$v.*$f|$f.*$v" "verification error"
}
verify() {
	not_booted
	grep -aqi 'squashfs error' "$RUNDIR/console.log" && problem "the kernel read the corrupted squashfs"
	return 0
}
