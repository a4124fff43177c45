# root=live:http://...: no disk but the TESTS one; the image exists only on the server.
DESC="root=live:http:// with no medium → signed image booted from RAM"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=
FLASH_UNCHANGED=
EXPECT="root-md7 state-booted state-image_version image-is-v2"
prepare() {
	fetch_server ok
	APPEND="root=live:$FETCH_URL ip=dhcp live.fetch.timeout=60"
}
guest() {
	cat <<G
check_live_root
$(state_is booted net)
$(state_is image_version 2)
check image-is-v2 grep -qx 2 /etc/image-version
G
}
verify() { fetch_stop; }
