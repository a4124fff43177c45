# live.fetch: tampered image → checksum mismatch → the local image boots, with one line saying why.
DESC="live.fetch: tampered image → checksum mismatch → local"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=fetch/flash-v1.img
EXPECT="root-md7 state-booted state-image_version no-v2 no-image-in-ram"
prepare() {
	fetch_server tamper new
	APPEND="root=live:LABEL=$LIVE_LABEL ip=dhcp live.fetch=$FETCH_URL live.fetch.timeout=60"
}
guest() {
	cat <<G
check_live_root
$(state_is booted local)
$(state_is image_version 1)
check no-v2 test ! -e /etc/image-version
check no-image-in-ram test ! -e /run/live/ram/squashfs.img
G
}
verify() {
	fetch_stop
	grep -aqE 'liveroot: fetch: .*checksum mismatch.*; booting the local image' "$RUNDIR/console.log" ||
		problem "no 'fetch: ...checksum mismatch...; booting the local image' line"
}
