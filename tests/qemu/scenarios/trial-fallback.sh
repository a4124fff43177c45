# Never brick: a v2 that verifies but whose /sbin/init exits at once. The box runs v1 from a
# FAT32 flash that holds LiveOS/trial.state (as `make flash` will make it); syncflash writes v2
# and puts it on trial (3 tries). Each v2 boot takes a try before switch_root (one sector
# rewritten in place through the raw device: checked on the flash image), then init exits, the
# kernel panics, panic=1 reboots (QEMU -no-reboot ends: the next boot is the next power-on). The
# 4th boot finds no tries left: v2 is marked failed, v1 (.old) boots and /run/live/state says why
# (fallback_reason=, no trial=). The 5th boot stays on v1 and writes nothing (flash identical).
. "$TOP/tests/qemu/syncflash-lib.sh"
. "$TOP/tests/qemu/trial-lib.sh"
DESC="v2 whose init exits: 3 tries (one sector each), then v1 boots by itself, says why, and stays without writes"
MEDIUM=$FAT_IMG
FLASH_UNCHANGED=
TIMEOUT=240
EXPECT="booted-v1 synced on-trial tries-3"

# bad_v2: $BAD/squashfs.img = v2 (make_version) whose /sbin/init is a script that exits 1.
bad_v2() {
	local v2=$BUILD/trial-v2 tmp
	BAD=$BUILD/trial-v2bad
	make_version "$v2" 2 0
	[[ -f $BAD/key && $(cat "$BAD/key") == "$(cat "$v2/key")" ]] && return 0
	rm -rf "$BAD"
	mkdir -p "$BAD"
	tmp=$(mktemp -d "$BAD/.tmp.XXXXXX")
	unsquashfs -q -n -d "$tmp/sq" "$v2/squashfs.img" >/dev/null
	printf '#!/bin/sh\necho "trial-v2: init exits at once"\nexit 1\n' >"$tmp/init"
	printf '%s\n' "rm /sbin/init" "write $tmp/init /sbin/init" "sif /sbin/init mode 0100755" >"$tmp/cmds"
	debugfs -w -f "$tmp/cmds" "$tmp/sq/LiveOS/rootfs.img" >/dev/null 2>&1
	debugfs -R "cat /sbin/init" "$tmp/sq/LiveOS/rootfs.img" 2>/dev/null | grep -q 'init exits at once' ||
		{ problem "bad_v2: /sbin/init was not replaced"; return 1; }
	env -u SOURCE_DATE_EPOCH mksquashfs "$tmp/sq" "$BAD/squashfs.img" -noappend -quiet -no-progress -all-root \
		-mkfs-time "$SOURCE_DATE_EPOCH" -all-time "$SOURCE_DATE_EPOCH" >/dev/null
	(cd "$BAD" && sha256sum squashfs.img >SHA256SUMS)
	rm -rf "$tmp"
	cp "$v2/key" "$BAD/key"
}

prepare() {
	bad_v2
	TESTS_FILES=("$BAD/squashfs.img" "$BAD/SHA256SUMS")
	trial_file_on_flash
}

guest() {
	trial_sync_guest
}

verify() {
	local script=$RUNDIR/v1.sh n prev=$RUNDIR/prev.img log t0 s
	cat >"$script" <<'G'
check_live_root
check booted-v1 test "$(cat /etc/liveroot-version)" = 1
check old-pair test "$(liveinit state get medium_pair)" = old
check fallback-reason sh -c 'liveinit state get fallback_reason | grep -q "failed its trial: 3 boots without mark-good"'
check no-trial-key sh -c '! liveinit state get trial'
echo "state: fallback_reason=$(liveinit state get fallback_reason)"
eval "$(liveinit trial status)"
check recorded-failed test "$TRIAL_STATUS" = failed
G
	t0=$(date +%s)
	for n in 1 2 3; do
		cp "$FLASH" "$prev"
		boot_again "$TRIAL_APPEND" 150 "$script" "$FLASH"
		log=$(tr -d '\r' <"$RUNDIR/console.log")
		[[ $QEMU_RC == 0 ]] || problem "v2 boot $n: QEMU ended with $QEMU_RC, not by the panic's reboot"
		grep -aq "is on trial: try $n of 3, $((3 - n)) left" <<<"$log" || problem "v2 boot $n: no 'try $n of 3' line"
		grep -aq 'trial-v2: init exits at once' <<<"$log" || problem "v2 boot $n: v2's init did not run"
		grep -aq 'Kernel panic' <<<"$log" || problem "v2 boot $n: no kernel panic"
		s=$(changed_sectors "$prev" "$FLASH")
		[[ $s == 1 ]] || problem "v2 boot $n changed $s sectors of the flash, not 1"
		echo "    measured: trial boot $n of v2 wrote $((s * 512)) bytes to the flash ($s sector changed)"
	done
	boot_again "$TRIAL_APPEND" 150 "$script" "$FLASH"
	local up=$(($(date +%s) - t0))
	for m in root-md7 booted-v1 old-pair fallback-reason no-trial-key recorded-failed done; do
		marker "$m" || problem "fallback boot: no 'LIVEROOT-TEST ok $m'"
	done
	grep -aq 'trial: .*failed its trial.*booting the previous image' <(tr -d '\r' <"$RUNDIR/console.log") ||
		problem "fallback boot: the console does not say why"
	cp "$FLASH" "$prev"
	boot_again "$TRIAL_APPEND" 150 "$script" "$FLASH"
	for m in root-md7 booted-v1 fallback-reason recorded-failed done; do
		marker "$m" || problem "second v1 boot: no 'LIVEROOT-TEST ok $m'"
	done
	s=$(changed_sectors "$prev" "$FLASH")
	[[ $s == 0 ]] || problem "the boot after the fallback wrote $s sectors of the flash"
	echo "    measured: the v1 boot after the fallback wrote $((s * 512)) bytes to the flash"
	local fs
	fs=$(all_fails)
	[[ -n $fs ]] && problem "$fs"
	echo "    measured: failing v2's first boot to v1 up again: 4 boots, ${up}s (TCG, panic=1)"
}
