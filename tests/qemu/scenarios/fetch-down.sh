# Nobody listens behind 10.0.2.100: the signed local image (key baked into the initramfs) boots,
# well within live.fetch.timeout.
DESC="live.fetch, server down → signed local image boots (verified=sig, version 1)"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=fetch/flash-v1.img
EXPECT="root-md7 state-booted state-verified state-image_version no-v2"
prepare() {
	fetch_server down
	APPEND="root=live:LABEL=$LIVE_LABEL ip=dhcp live.fetch=$FETCH_URL live.fetch.timeout=15"
}
guest() {
	cat <<G
check_live_root
$(state_is booted local)
$(state_is verified sig)
$(state_is image_version 1)
check no-v2 test ! -e /etc/image-version
G
}
verify() {
	grep -aqE 'liveroot: fetch: .*(refused|reset|closed|timed out).*; booting the local image' "$RUNDIR/console.log" ||
		problem "no 'fetch: ...; booting the local image' line"
}
