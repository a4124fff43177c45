# live.fetch: the server has a newer signed image → it is streamed into RAM, verified, booted.
DESC="live.fetch: newer signed image (v2 > local v1) → booted from RAM"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=fetch/flash-v1.img
EXPECT="root-md7 state-booted state-image_version state-fetched_from state-image_file image-is-v2"
prepare() {
	fetch_server ok
	# rd.live.tries=0: the fetched image boots untried and the flash stays byte-identical (a
	# trial would create LiveOS/trial.state: trial-nofile).
	APPEND="$(fetch_append) rd.live.tries=0"
}
guest() {
	cat <<G
check_live_root
$(state_is booted net)
$(state_is image_version 2)
$(state_is fetched_from "$FETCH_URL")
$(state_is image_file /run/live/ram/squashfs.img)
check image-is-v2 grep -qx 2 /etc/image-version
G
}
verify() { fetch_stop; }
