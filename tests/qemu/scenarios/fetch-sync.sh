# Network to flash, end to end: the box boots v1 from its flash, the image server has a newer
# signed v2, the box boots that from RAM and `syncflash` (no arguments: all from
# /run/live/state) writes it to the flash. Then it boots again with no network at all: v2
# comes from the flash, verified by its signature, from the primary names. syncflash also left
# the boot's validators cache (/run/live/fetch.cache, decided against v2 once fetched) as
# LiveOS/fetch.cache: a third boot, with the server back and its v2 unchanged, checks with one
# conditional GET of SHA256SUMS.minisig answered 304 (server --log), nothing else requested.
# (The medium has no LiveOS/trial.state: the first boot creates it and v2 boots on trial, which
# syncflash carries over; the second boot marks it good, else the third would not fetch at all:
# one trial at a time.)
DESC="fetch v2 over the network, syncflash, reboot without network → v2 from the flash; then one 304"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=fetch/flash-v1.img
FLASH_UNCHANGED=
TIMEOUT=240
EXPECT="root-md7 state-booted image-is-v2 synced cache-synced"
prepare() {
	fetch_server ok
	APPEND=$(fetch_append)
}
guest() {
	cat <<G
check_live_root
$(state_is booted net)
check image-is-v2 grep -qx 2 /etc/image-version
if syncflash >/tmp/sf.out 2>&1; then ok synced; else fail synced "exit \$?: \$(cat /tmp/sf.out)"; fi
cat /tmp/sf.out
check cache-synced grep -q 'LiveOS/fetch.cache: the server.s validators for this version' /tmp/sf.out
G
}
verify() {
	fetch_stop
	local script=$RUNDIR/again.sh m fs
	cat >"$script" <<'G'
check_live_root
check from-flash grep -qx booted=local /run/live/state
check flash-is-v2 grep -qx 2 /etc/image-version
check verified-sig grep -qx verified=sig /run/live/state
check pair-primary grep -qx medium_pair=primary /run/live/state
check cache-on-flash grep -qx above=2 /run/live/medium/LiveOS/fetch.cache
check marked-good sh -c 'liveinit mark-good | grep -q "version 2 marked good"'
G
	# No -netdev this time: the flash is all the box has.
	boot_again "root=live:LABEL=$LIVE_LABEL" 120 "$script" "$FLASH"
	for m in root-md7 from-flash flash-is-v2 verified-sig pair-primary cache-on-flash marked-good done; do
		marker "$m" || problem "second boot: no 'LIVEROOT-TEST ok $m'"
	done
	fs=$(tr -d '\r' <"$RUNDIR/console.log" | grep -aoE 'LIVEROOT-TEST FAIL .*')
	[[ -n $fs ]] && problem "second boot: $fs"

	# The server back (the same files: the same validators), with the box's network.
	local lines cost
	QEMU_EXTRA=()
	rm -f "$RUNDIR/port" # else fetch_server reads the first server's port
	fetch_server ok
	AGAIN_EXTRA=("${QEMU_EXTRA[@]}")
	QEMU_EXTRA=()
	sleep 1
	lines=$(wc -l <"$RUNDIR/http.log")
	cat >"$script" <<'G'
check_live_root
check from-flash grep -qx booted=local /run/live/state
check flash-is-v2 grep -qx 2 /etc/image-version
G
	boot_again "$(fetch_append)" 120 "$script" "$FLASH"
	AGAIN_EXTRA=()
	for m in root-md7 from-flash flash-is-v2 done; do
		marker "$m" || problem "third boot: no 'LIVEROOT-TEST ok $m'"
	done
	grep -aqF "fetch: $FETCH_URL: already up to date (version 2): SHA256SUMS.minisig not modified since the last check (HTTP 304); booting the local image" \
		<(tr -d '\r' <"$RUNDIR/console.log") || problem "third boot: no 'already up to date (version 2) ... (HTTP 304)' line"
	sleep 1
	fetch_stop
	tail -n +$((lines + 1)) "$RUNDIR/http.log" >"$RUNDIR/http-304.log"
	cost=$(awk '{ n += $4 + $5 } END { print n + 0 }' "$RUNDIR/http-304.log")
	echo "third boot: $(wc -l <"$RUNDIR/http-304.log") request(s), $cost bytes on the wire: $(tr '\n' ';' <"$RUNDIR/http-304.log")"
	[[ $(wc -l <"$RUNDIR/http-304.log") == 1 ]] && grep -q '^GET /ok/new/SHA256SUMS.minisig 304 ' "$RUNDIR/http-304.log" ||
		problem "third boot: expected one 'GET /ok/new/SHA256SUMS.minisig 304', got: $(cat "$RUNDIR/http-304.log")"
	fs=$(tr -d '\r' <"$RUNDIR/console.log" | grep -aoE 'LIVEROOT-TEST FAIL .*')
	[[ -n $fs ]] && problem "third boot: $fs"
	return 0
}
