# LiveOS/settings (core/src/settings.rs): the command line says nothing of the network; the
# stick's settings file names the server, the interface and the timeout, and also holds two keys
# it may not set (live.pubkey=, rd.break): each is ignored with one console line, the newer
# signed image is fetched from the file's URL and boots, and /run/live/state says which settings
# came from the file.
DESC="LiveOS/settings: live.fetch from the file → v2 fetched; live.pubkey, rd.break in it ignored"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=fetch/flash-v1.img
EXPECT="root-md7 state-booted state-image_version state-fetched_from state-settings image-is-v2 no-cmdline-fetch"
prepare() {
	fetch_server ok
	# CR LF, as a Windows editor writes it; a key the file may not set comes first.
	printf '%s\r\n' "# this stick's settings" "live.pubkey=RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3" \
		"live.fetch=$FETCH_URL" "ip=dhcp" "live.fetch.timeout=60" "rd.break" >"$RUNDIR/settings"
	printf 'cd /LiveOS\nwrite %s settings\n' "$RUNDIR/settings" | debugfs -w -f - "$FLASH" >/dev/null 2>&1
	# rd.live.tries=0: the fetched image boots untried and the flash stays byte-identical.
	APPEND="root=live:LABEL=$LIVE_LABEL rd.live.tries=0"
}
guest() {
	cat <<G
check_live_root
$(state_is booted net)
$(state_is image_version 2)
$(state_is fetched_from "$FETCH_URL")
$(state_is settings live.fetch,ip,live.fetch.timeout)
check image-is-v2 grep -qx 2 /etc/image-version
check no-cmdline-fetch sh -c '! grep -q live.fetch /proc/cmdline'
G
}
verify() {
	fetch_stop
	local log
	log=$(tr -d '\r' <"$RUNDIR/console.log")
	grep -aqF 'liveinit: LiveOS/settings: live.pubkey: not allowed here (it would trust another key than the one built into the initramfs)' <<<"$log" ||
		problem "no 'LiveOS/settings: live.pubkey: not allowed here' line"
	grep -aqF 'liveinit: LiveOS/settings: rd.break: not allowed here (' <<<"$log" || problem "no 'LiveOS/settings: rd.break: not allowed here' line"
	grep -aqF 'liveinit: LiveOS/settings: using live.fetch, ip, live.fetch.timeout' <<<"$log" || problem "no 'LiveOS/settings: using ...' line"
	grep -aqF 'trusting live.pubkey=' <<<"$log" && problem "the file's live.pubkey= was used"
	grep -aq 'rd.break: the root is mounted' <<<"$log" && problem "the file's rd.break was used"
	grep -qE '^GET /ok/new/squashfs.img 20[06] ' "$RUNDIR/http.log" || problem "the image was not fetched from the file's URL: $(cat "$RUNDIR/http.log")"
}
