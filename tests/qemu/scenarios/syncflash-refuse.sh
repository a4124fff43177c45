# syncflash refusals in a live session, each with its reason and exit code; the flash stays
# byte-identical (FLASH_UNCHANGED): no room beside the current image, an image that does not
# match its manifest, the medium forced read-only, the medium missing, nothing fetched.
. "$TOP/tests/qemu/syncflash-lib.sh"
DESC="syncflash refusals: no room, bad image, forced read-only, no medium, nothing fetched"
EXPECT="no-room bad-image no-medium nothing-fetched forced-ro"
prepare() {
	local d=$RUNDIR/files
	mkdir -p "$d"
	make_version "$BUILD/syncflash-v2" 2 0
	make_version "$BUILD/syncflash-big" 3 12 # more than the 10 MiB ext4 medium can take
	cp "$BUILD/syncflash-v2/squashfs.img" "$d/v2.img"
	cp "$BUILD/syncflash-v2/SHA256SUMS" "$d/v2.sums"
	cp "$BUILD/syncflash-big/squashfs.img" "$d/big.img"
	cp "$BUILD/syncflash-big/SHA256SUMS" "$d/big.sums"
	# v2's manifest with its first digit changed (0 to 1, anything else to 0): the image does not
	# match it. (Before, a digest starting with f came back unchanged.)
	sed '1{/^0/{s/^0/1/;b};s/^./0/}' "$d/v2.sums" >"$d/bad.sums"
	cmp -s "$d/bad.sums" "$d/v2.sums" && problem "bad.sums equals v2.sums"
	TESTS_FILES=("$d"/*)
}
guest() {
	cat <<'G'
check_live_root
# expect NAME CODE WORDS CMD...: CMD exits CODE and its message contains WORDS.
expect() {
	local name=$1 code=$2 words=$3 out rc
	shift 3
	out=$("$@" 2>&1); rc=$?
	echo "$name: exit $rc: $out"
	if [ "$rc" = "$code" ] && echo "$out" | grep -q "$words"; then ok "$name"; else fail "$name" "exit $rc: $out"; fi
}
expect no-room 1 "no room for the new image beside the current one" syncflash --image $T/big.img --manifest $T/big.sums
expect bad-image 3 "checksum mismatch" syncflash --image $T/v2.img --manifest $T/bad.sums
grep -v '^medium_mount=' /run/live/state | sed 's|^medium=.*|medium=/dev/nonexistent|' >/tmp/state.nomedium
mkdir -p /tmp/v2 && cp $T/v2.img /tmp/v2/squashfs.img && cp $T/v2.sums /tmp/v2/SHA256SUMS
echo "image_file=/tmp/v2/squashfs.img" >>/tmp/state.nomedium
expect no-medium 1 "medium is missing" syncflash --state /tmp/state.nomedium
: >/tmp/state.empty
expect nothing-fetched 1 "no fetched image" syncflash --state /tmp/state.empty
MED=$(liveinit state get medium)
blockdev --setro "$MED"
expect forced-ro 1 "cannot remount read-write" syncflash --image $T/v2.img --manifest $T/v2.sums
blockdev --setrw "$MED"
ls -l /run/live/medium/LiveOS
G
}
