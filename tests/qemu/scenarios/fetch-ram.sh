# rd.live.ram + live.fetch: the local copy in RAM must leave room for the fetched image (today the
# RAM tmpfs is sized to the local files + 1 MiB); the newer signed image boots, the local copy is
# released. rd.live.tries=0: untried, so the flash stays byte-identical (trial-nofile has a trial).
DESC="rd.live.ram + live.fetch: newer signed image (v2) → booted from RAM"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=fetch/flash-v1.img
EXPECT="root-md7 state-booted state-image_version state-floor image-is-v2 local-copy-released"
prepare() {
	fetch_server ok new
	APPEND="root=live:LABEL=$LIVE_LABEL rd.live.ram ip=dhcp live.fetch=$FETCH_URL live.fetch.timeout=60 rd.live.tries=0"
}
guest() {
	cat <<G
check_live_root
$(state_is booted net)
$(state_is image_version 2)
$(state_is floor 2)
check image-is-v2 grep -qx 2 /etc/image-version
check local-copy-released sh -c '! grep -q " /run/live/ram/local " /proc/mounts'
G
}
verify() { fetch_stop; }
