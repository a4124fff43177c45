# A cut mid-rotation: no primary pair, the .old pair signed version 5; the server offers a signed
# version 3. The floor is 5 (every pair that verifies counts), so v3 is a rollback: v5 boots.
DESC="no primary manifest, .old signed v5, server signed v3 → v5 boots, floor=5"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=fetch/flash-oldv5.img
EXPECT="root-md7 state-floor state-image_version state-medium_pair no-v3 state-pubkey pubkey-copied bound-digest"
prepare() {
	fetch_server ok v3
	APPEND=$(fetch_append)
}
guest() {
	cat <<G
check_live_root
$(state_is floor 5)
$(state_is image_version 5)
$(state_is medium_pair old)
check no-v3 test ! -e /etc/image-version
$(state_is pubkey /run/live/pubkey)
check pubkey-copied grep -q '^untrusted comment: minisign public key' /run/live/pubkey
check bound-digest sh -c 'grep -qx "\$(liveinit state get image_sha256)  squashfs.img" /run/live/medium/LiveOS/SHA256SUMS.old'
G
}
verify() {
	fetch_stop
	grep -aqE 'liveroot: fetch: .*version 3 is older than the local version 5: rollback refused; booting the local image' "$RUNDIR/console.log" ||
		problem "no 'fetch: ... version 3 is older than the local version 5: rollback refused' line"
}
