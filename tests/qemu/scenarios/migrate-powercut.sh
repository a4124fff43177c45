# Power cut (QEMU stopped through its monitor) in the middle of migrate's copy: the flash is unchanged, the next
# boot is live again (the half-written target attached) and migrate, rerun, succeeds.
DESC="power cut mid-copy: flash unchanged, next boot live, migrate reruns"
TIMEOUT=180
EXPECT="root-md7 copying"
prepare() {
	TARGET_IMG=$RUNDIR/target.img
	truncate -s 512M "$TARGET_IMG"
	add_disk "$TARGET_IMG" TARGET
}
guest() {
	cat <<'G'
check_live_root
TARGET=$(disk_by_serial TARGET)
migrate --yes --no-bootloader --speed-max 10000 "$TARGET" >/tmp/m.out 2>&1 &
n=0
until [ "$(cut -d' ' -f1 /sys/block/md7/md/sync_completed)" -gt 40000 ] 2>/dev/null; do
	n=$((n + 1)); [ $n -gt 300 ] && break; sleep 0.1
done
grep -q recover /sys/block/md7/md/sync_action && ok copying
cat /proc/mdstat
# The runner's "done" marker, then the host cuts the power.
ok done
echo POWER-CUT-NOW
sleep 120
G
}
drive() {
	if wait_for 'POWER-CUT-NOW' 150; then
		qemu_quit # the monitor's quit: QEMU stops at once, nothing is flushed in the guest
		ENDED_BY_DRIVE=1
	fi
}
verify() {
	local script=$RUNDIR/again.sh
	cat >"$script" <<'G'
check_live_root
TARGET=$(ls /dev/vd* | while read -r d; do [ "$(findfs LABEL=TESTS)" = "$d" ] || [ "$(mount_dev /run/live/medium)" = "$d" ] || echo "$d"; done | head -n 1)
echo "target: $TARGET"
if migrate --yes --no-bootloader "$TARGET" >/tmp/m.out 2>&1; then ok rerun; else fail rerun "exit $?: $(tail -n 1 /tmp/m.out)"; fi
grep -v ' recover: ' /tmp/m.out
check md7-only-target test "$(md7_members)" = "${TARGET#/dev/}"
G
	boot_again "root=live:LABEL=$LIVE_LABEL rd.live.image" 150 "$script" "$FLASH" "$TARGET_IMG"
	local m fs
	for m in root-md7 md7-member-live-rw rerun md7-only-target done; do
		marker "$m" || problem "boot after the cut: no 'LIVEROOT-TEST ok $m'"
	done
	fs=$(tr -d '\r' <"$RUNDIR/console.log" | grep -aoE 'LIVEROOT-TEST FAIL .*')
	[[ -n $fs ]] && problem "boot after the cut: $fs"
	[[ $(sha256sum <"$FLASH") == "$FLASH_SHA" ]] || problem "the flash changed"
}
