# syncflash with a public key (recorded in the state as the boot records it: pubkey=) on a
# FAT32 flash whose booted primary pair is signed by another key and whose .old pair (the same
# v1) is signed by the right one: the primary is not kept as the keeper (deleted, with the
# reason), the good .old stays, the signed v2 becomes the primary. Then v2's signature goes
# missing from the flash: syncing v3 again keeps the signed .old, not the unsigned primary. An
# unsigned source is refused (exit 3). The boot here has no key (the primary boots on its
# checksums) and the booted image is that primary: deleting it while looped leaves the medium
# read-write (a warning, exit 0). Without the key the primary would have been kept (its
# checksums are fine): the host checks which signature .old holds at the end.
. "$TOP/tests/qemu/syncflash-lib.sh"
DESC="syncflash with a key: a primary with a bad or missing signature is not kept as the keeper"
MEDIUM=$FAT_IMG
FLASH_UNCHANGED=
EXPECT="booted-primary badsig-synced badsig-not-kept badsig-stays-rw nosig-synced nosig-not-kept unsigned-source-refused"
prepare() {
	local d=$RUNDIR/files k=$BUILD/syncflash-key v
	mkdir -p "$d" "$k"
	[[ -f $k/sec ]] || minisign -G -W -f -p "$k/pub" -s "$k/sec" >/dev/null
	[[ -f $k/other.sec ]] || minisign -G -W -f -p "$k/other.pub" -s "$k/other.sec" >/dev/null
	cp "$k/pub" "$d/key.pub"
	make_version "$BUILD/syncflash-v2" 2 0
	make_version "$BUILD/syncflash-v3" 3 0
	for v in 2 3; do
		cp "$BUILD/syncflash-v$v/squashfs.img" "$d/v$v.img"
		cp "$BUILD/syncflash-v$v/SHA256SUMS" "$d/v$v.sums"
		minisign -S -W -s "$k/sec" -m "$d/v$v.sums" -x "$d/v$v.minisig" -t "version=$v" >/dev/null
	done
	# v1 as the flash has it, signed badly (primary) and well (.old).
	local m=(env MTOOLS_SKIP_CHECK=1)
	"${m[@]}" mcopy -i "$FLASH" ::/LiveOS/SHA256SUMS "$RUNDIR/v1.sums"
	"${m[@]}" mcopy -i "$FLASH" ::/LiveOS/squashfs.img "$RUNDIR/v1.img"
	minisign -S -W -s "$k/other.sec" -m "$RUNDIR/v1.sums" -x "$RUNDIR/v1.bad.minisig" -t "version=1" >/dev/null
	minisign -S -W -s "$k/sec" -m "$RUNDIR/v1.sums" -x "$RUNDIR/v1.good.minisig" -t "version=1" >/dev/null
	"${m[@]}" mcopy -i "$FLASH" "$RUNDIR/v1.bad.minisig" ::/LiveOS/SHA256SUMS.minisig
	"${m[@]}" mcopy -i "$FLASH" "$RUNDIR/v1.img" ::/LiveOS/squashfs.img.old
	"${m[@]}" mcopy -i "$FLASH" "$RUNDIR/v1.sums" ::/LiveOS/SHA256SUMS.old
	"${m[@]}" mcopy -i "$FLASH" "$RUNDIR/v1.good.minisig" ::/LiveOS/SHA256SUMS.minisig.old
	OLD_SIDECARS=$(fat_sidecars_to "$FLASH" .old | tr '\n' ' ')
	TESTS_FILES=("$d"/*)
}
guest() {
	cat <<'G'
check_live_root
check booted-primary test "$(liveinit state get medium_pair)" = primary
# fetched NAME: the pair NAME as imgfetch leaves it in /run/live/ram.
fetched() {
	rm -rf /run/live/ram && mkdir -p /run/live/ram
	cp $T/$1.img /run/live/ram/squashfs.img && cp $T/$1.sums /run/live/ram/SHA256SUMS &&
		cp $T/$1.minisig /run/live/ram/SHA256SUMS.minisig
}
fetched v2
liveinit state set booted=ram image_file=/run/live/ram/squashfs.img pubkey=$T/key.pub
syncflash >/run/sf1.out 2>&1; rc=$?
sed 's/^/  | /' /run/sf1.out
check badsig-synced test "$rc" = 0
check badsig-not-kept grep -q "primary pair not kept: .*SHA256SUMS.minisig: signature verification failed: made with a different key" /run/sf1.out
# The booted image was that primary: deleted while looped, the medium cannot go read-only yet.
check badsig-stays-rw grep -q "stays read-write: a deleted file on it is still open" /run/sf1.out
ls -l /run/live/medium/LiveOS
M=/run/live/medium
rm $M/LiveOS/SHA256SUMS.minisig
fetched v3
syncflash >/run/sf2.out 2>&1; rc=$?
sed 's/^/  | /' /run/sf2.out
check nosig-synced test "$rc" = 0
check nosig-not-kept grep -q "primary pair not kept: .*SHA256SUMS.minisig: missing" /run/sf2.out
ls -l $M/LiveOS
syncflash --image $T/v2.img --manifest $T/v2.sums --sig /run/no-such.minisig >/run/sf3.out 2>&1; rc=$?
sed 's/^/  | /' /run/sf3.out
check unsigned-source-refused sh -c "[ $rc = 3 ] && grep -q 'missing (a public key is installed' /run/sf3.out"
G
}
verify() {
	local f want d=$RUNDIR/files
	for f in img:squashfs.img sums:SHA256SUMS minisig:SHA256SUMS.minisig; do
		want=$(sha256sum <"$d/v3.${f%%:*}" | cut -c1-64)
		[[ $(medium_sha "$FLASH" "/LiveOS/${f#*:}") == "$want" ]] || problem "flash LiveOS/${f#*:} is not v3's"
	done
	for f in img:squashfs.img.old sums:SHA256SUMS.old good.minisig:SHA256SUMS.minisig.old; do
		want=$(sha256sum <"$RUNDIR/v1.${f%%:*}" | cut -c1-64)
		[[ $(medium_sha "$FLASH" "/LiveOS/${f#*:}") == "$want" ]] || problem "flash LiveOS/${f#*:} is not v1's (${f%%:*})"
	done
	# trial.state: made by the first syncflash (the flash had none), v3 on trial in it.
	want="SHA256SUMS SHA256SUMS.minisig SHA256SUMS.minisig.old SHA256SUMS.old squashfs.img squashfs.img.old trial.state $OLD_SIDECARS"
	[[ $(medium_list "$FLASH" | tr '\n' ' ') == "$(tr ' ' '\n' <<<"$want" | grep . | sort | tr '\n' ' ')" ]] ||
		problem "flash LiveOS holds: $(medium_list "$FLASH" | tr '\n' ' ')"
}
