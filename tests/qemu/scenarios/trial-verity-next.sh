# Issue 18 item 5b: each pair /init picks gets its own trial decision. The FAT flash's primary is
# on trial (a record written on the host: 3 tries) but its data does not match its dm-verity tree
# (block 0 changed; the manifest binds the changed bytes, so select-image, which leaves the image
# to dm-verity, accepts it): the primary's try is taken, its mapping is refused, and the .old pair
# (the sample image, not on trial) boots as a plain boot: no trial= in the state, so no watchdog
# armed for an image nothing will mark good (before, the primary's TRIAL was kept for .old).
. "$TOP/tests/qemu/syncflash-lib.sh"
. "$TOP/tests/qemu/trial-lib.sh"
DESC="primary on trial fails its dm-verity mapping: .old boots with its own trial decision (none)"
MEDIUM=$FAT_IMG
FLASH_UNCHANGED=
TIMEOUT=240
EXPECT="root-md7 old-pair no-trial-key no-fallback primary-try-counted"

prepare() {
	local t f sha m="MTOOLS_SKIP_CHECK=1"
	t=$(mktemp -d)
	for f in squashfs.img SHA256SUMS squashfs.img.verity squashfs.img.roothash; do
		env $m mcopy -i "$FLASH" "::/LiveOS/$f" "$t/$f"
		env $m mren -i "$FLASH" "::/LiveOS/$f" "::/LiveOS/$f.old"
	done
	cp "$t/squashfs.img" "$t/bad.img"
	printf 'X' | dd of="$t/bad.img" bs=1 seek=100 conv=notrunc status=none
	sha=$(sha256sum <"$t/bad.img" | cut -d' ' -f1)
	sed "s/^[0-9a-f]*  squashfs.img\$/$sha  squashfs.img/" "$t/SHA256SUMS" >"$t/SHA256SUMS.bad"
	env $m mcopy -i "$FLASH" "$t/bad.img" ::/LiveOS/squashfs.img
	env $m mcopy -i "$FLASH" "$t/SHA256SUMS.bad" ::/LiveOS/SHA256SUMS
	env $m mcopy -i "$FLASH" "$t/squashfs.img.verity" ::/LiveOS/squashfs.img.verity
	env $m mcopy -i "$FLASH" "$t/squashfs.img.roothash" ::/LiveOS/squashfs.img.roothash
	"$BUILD/liveroot" liveinit trial create "$t/trial.state"
	"$BUILD/liveroot" liveinit trial start --file "$t/trial.state" --sha256 "$sha" --tries 3 --via-fs >/dev/null
	env $m mcopy -i "$FLASH" "$t/trial.state" ::/LiveOS/trial.state
	rm -rf "$t"
	APPEND=$TRIAL_APPEND
}
guest() {
	cat <<'G'
check_live_root
check old-pair test "$(liveinit state get medium_pair)" = old
check no-trial-key sh -c '! liveinit state get trial'
check no-fallback sh -c '! liveinit state get fallback_reason'
eval "$(liveinit trial status)"
check primary-try-counted test "$TRIAL_STATUS:$TRIAL_LEFT" = trial:2
G
}
verify() {
	local log
	log=$(tr -d '\r' <"$RUNDIR/console.log")
	grep -aq 'is on trial: try 1 of 3' <<<"$log" || problem "no 'try 1 of 3' line for the primary"
	grep -aq 'verity: .*; trying the next pair' <<<"$log" || problem "the primary's dm-verity mapping was not refused"
}
