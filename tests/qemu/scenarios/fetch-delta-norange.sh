# live.fetch, delta possible (index signed, seed there) but the server ignores Range: the whole
# image is downloaded, said in the log, and v2 boots verified.
DESC="live.fetch: delta, server without Range → full download, v2 booted"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=fetch/flash-v1.img
EXPECT="root-md7 state-booted state-image_version image-is-v2 full-said"
prepare() {
	fetch_server norange delta
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
check full-said sh -c "dmesg | grep -q 'no Range support: downloading in full'"
G
}
verify() {
	fetch_stop
	local sent size
	sent=$(image_bytes_sent delta)
	size=$(stat -c %s "$FETCH/srv/delta/squashfs.img")
	((sent >= size)) || problem "a full download sent only $sent bytes of a $size-byte image"
}
