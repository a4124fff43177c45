# Network to flash, end to end: the box boots v1 from its flash, the image server has a newer
# signed v2, the box boots that from RAM and `syncflash` (no arguments: all from
# /run/live/state) writes it to the flash. Then it boots again with no network at all: v2
# comes from the flash, verified by its signature, from the primary names.
DESC="fetch v2 over the network, syncflash, reboot without network → v2 from the flash"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=fetch/flash-v1.img
FLASH_UNCHANGED=
TIMEOUT=240
EXPECT="root-md7 state-booted image-is-v2 synced"
prepare() {
	fetch_server ok
	APPEND="root=live:LABEL=$LIVE_LABEL ip=dhcp live.fetch=$FETCH_URL live.fetch.timeout=60"
}
guest() {
	cat <<G
check_live_root
$(state_is booted net)
check image-is-v2 grep -qx 2 /etc/image-version
if syncflash >/tmp/sf.out 2>&1; then ok synced; else fail synced "exit \$?: \$(cat /tmp/sf.out)"; fi
cat /tmp/sf.out
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
G
	# No -netdev this time: the flash is all the box has.
	boot_again "root=live:LABEL=$LIVE_LABEL" 120 "$script" "$FLASH"
	for m in root-md7 from-flash flash-is-v2 verified-sig pair-primary done; do
		marker "$m" || problem "second boot: no 'LIVEROOT-TEST ok $m'"
	done
	fs=$(tr -d '\r' <"$RUNDIR/console.log" | grep -aoE 'LIVEROOT-TEST FAIL .*')
	[[ -n $fs ]] && problem "second boot: $fs"
	return 0
}
