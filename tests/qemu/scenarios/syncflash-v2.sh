# syncflash end to end: the box runs v1 from the flash, gets a signed v2 into /run/live/ram as
# imgfetch leaves it (copied from the TESTS disk here: the network fetch is imgfetch's test),
# `syncflash` (no arguments: all from /run/live/state) writes it; a second run has nothing to
# do. Then the box boots again with no network and no TESTS image: v2 boots from the flash,
# verified, and v1 is kept as the .old pair.
. "$TOP/tests/qemu/syncflash-lib.sh"
DESC="fetched v2 synced to the ext4 flash; next boot (no network) runs v2 from the flash"
FLASH_UNCHANGED=
EXPECT="booted-v1 synced nothing-to-do medium-ro-again"
prepare() {
	signed_v2
}
guest() {
	sync_v2_guest
}
verify() {
	local f want
	for f in squashfs.img SHA256SUMS SHA256SUMS.minisig; do
		want=$(sha256sum <"$V2/$f" | cut -c1-64)
		[[ $(medium_sha "$FLASH" "/LiveOS/$f") == "$want" ]] || problem "flash LiveOS/$f is not v2's"
	done
	want=$(debugfs -R "cat /LiveOS/squashfs.img" "$BUILD/$LIVE_IMG" 2>/dev/null | sha256sum | cut -c1-64)
	[[ $(medium_sha "$FLASH" /LiveOS/squashfs.img.old) == "$want" ]] || problem "flash LiveOS/squashfs.img.old is not v1"
	# v1's sidecars (when the sample image has them) went to .old with it; v2 has none. The
	# sample flash has no trial file: syncflash made one, with v2 on trial in it.
	local list="SHA256SUMS SHA256SUMS.minisig SHA256SUMS.old squashfs.img squashfs.img.old trial.state" sc
	for sc in squashfs.img.verity squashfs.img.roothash; do
		[[ $(medium_sha "$BUILD/$LIVE_IMG" "/LiveOS/$sc") != - ]] && list+=" $sc.old"
	done
	[[ $(medium_list "$FLASH" | tr '\n' ' ') == "$(tr ' ' '\n' <<<"$list" | sort | tr '\n' ' ')" ]] ||
		problem "flash LiveOS holds: $(medium_list "$FLASH" | tr '\n' ' ')"
	local script=$RUNDIR/again.sh
	{
		v2_boot_checks
		cat <<'G'
check no-network sh -c '! ls /sys/class/net | grep -qv "^lo$"'
G
	} >"$script"
	boot_again "root=live:LABEL=$LIVE_LABEL rd.live.image" 150 "$script" "$FLASH"
	local m
	for m in root-md7 booted-v2 verified primary-pair no-network done; do
		marker "$m" || problem "boot from the synced flash: no 'LIVEROOT-TEST ok $m'"
	done
	local fs
	fs=$(tr -d '\r' <"$RUNDIR/console.log" | grep -aoE 'LIVEROOT-TEST FAIL .*')
	[[ -n $fs ]] && problem "boot from the synced flash: $fs"
}
