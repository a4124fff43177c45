# live.fetch with a signed block index: the local v1 is the seed, only the blocks it lacks are
# fetched (the server's log counts them), and v2 boots verified.
DESC="live.fetch: delta (v1 seeds v2, few files changed) → small download, v2 booted"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=fetch/flash-v1.img
EXPECT="root-md7 state-booted state-image_version image-is-v2 delta-said"
prepare() {
	fetch_server ok delta
	# rd.live.tries=0: the fetched image boots untried and the flash stays byte-identical (a
	# trial would create LiveOS/trial.state: trial-nofile).
	APPEND="$(fetch_append) rd.live.tries=0"
}
guest() {
	cat <<G
check_live_root
$(state_is booted net)
$(state_is image_version 2)
check image-is-v2 grep -qx 2 /etc/image-version
dmesg | grep 'liveroot: fetch:' | tr ' ' '\n' | grep -A12 -m1 '^delta:' | tr '\n' ' '; echo
check delta-said sh -c "dmesg | grep -q 'liveroot: fetch: .*imgfetch: delta: .* blocks from the seeds'"
G
}
verify() {
	fetch_stop
	local sent size
	sent=$(image_bytes_sent delta)
	size=$(stat -c %s "$FETCH/srv/delta/squashfs.img")
	echo "fetch-delta: $sent bytes of the image sent for a $size-byte image"
	((sent > 0 && sent * 10 < size)) || problem "delta sent $sent bytes of a $size-byte image (expected under 10 %)"
}
