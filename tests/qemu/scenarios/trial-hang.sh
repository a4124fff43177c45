# Never brick, the hang: a v2 that verifies but whose /sbin/init hangs (prints its uptime every
# 2 s, forever). QEMU has an i6300esb watchdog (-device i6300esb, the default watchdog action
# reset; -no-reboot turns the reset into QEMU's exit, and the next boot is the next power-on).
# The command line has rd.live.tries=2 rd.live.watchdog=$WD and no panic=.
# 1. v1 (not on trial): the watchdog is there but not armed; /init set kernel.panic to 10. v1
#    syncs the hanging v2, which is put on trial with 2 tries.
# 2-3. v2 boots: a try is taken, /init arms the watchdog ($WD s) and switches root; v2 hangs; the
#    watchdog resets the box about $WD s after /init left (its last uptime line), with no panic
#    and well before the harness's timeout.
# 4. Tries used up: v1 (.old) boots by itself with fallback_reason=, not armed. It syncs a good
#    v3 (on trial).
# 5. v3 on trial, armed: while another process holds the device, `watchdog disarm` leaves it
#    alone (busy, exit 0); then mark-good disarms it (sysfs state inactive) and the box is still
#    up $WD+10 s later. Last, a kernel panic (sysrq c) reboots after the 10 s /init set: QEMU
#    ends by itself instead of at the timeout.
. "$TOP/tests/qemu/syncflash-lib.sh"
. "$TOP/tests/qemu/trial-lib.sh"
DESC="v2 that hangs: the watchdog resets it (2 tries), v1 boots by itself; mark-good disarms; a panic reboots"
MEDIUM=$FAT_IMG
FLASH_UNCHANGED=
TIMEOUT=240
WD=20
# No panic= at all: the panic case must reboot by /init's own setting.
CONSOLE_APPEND="console=ttyS0 loglevel=4"
# liveroot.stamps: the init-exec stamp says when /init left (uptimes below).
HANG_APPEND="root=live:LABEL=LIVE rd.live.image rd.live.tries=2 rd.live.watchdog=$WD liveroot.stamps"
APPEND=$HANG_APPEND
QEMU_EXTRA=(-device i6300esb -action watchdog=reset)
AGAIN_EXTRA=("${QEMU_EXTRA[@]}")
EXPECT="booted-v1 wd-present wd-not-armed panic-10 synced on-trial tries-2"

# hang_v2: $HANG/squashfs.img = v2 (make_version) whose /sbin/init prints its uptime and sleeps,
# forever.
hang_v2() {
	local v2=$BUILD/trial-v2 tmp
	HANG=$BUILD/trial-v2hang
	make_version "$v2" 2 0
	[[ -f $HANG/key && $(cat "$HANG/key") == "$(cat "$v2/key")" ]] && return 0
	rm -rf "$HANG"
	mkdir -p "$HANG"
	tmp=$(mktemp -d "$HANG/.tmp.XXXXXX")
	unsquashfs -q -n -d "$tmp/sq" "$v2/squashfs.img" >/dev/null
	printf '#!/bin/sh\nwhile :; do echo "trial-v2: hung at $(cut -d" " -f1 /proc/uptime)"; sleep 2; done\n' >"$tmp/init"
	printf '%s\n' "rm /sbin/init" "write $tmp/init /sbin/init" "sif /sbin/init mode 0100755" >"$tmp/cmds"
	debugfs -w -f "$tmp/cmds" "$tmp/sq/LiveOS/rootfs.img" >/dev/null 2>&1
	debugfs -R "cat /sbin/init" "$tmp/sq/LiveOS/rootfs.img" 2>/dev/null | grep -q 'trial-v2: hung' ||
		{ problem "hang_v2: /sbin/init was not replaced"; return 1; }
	env -u SOURCE_DATE_EPOCH mksquashfs "$tmp/sq" "$HANG/squashfs.img" -noappend -quiet -no-progress -all-root \
		-mkfs-time "$SOURCE_DATE_EPOCH" -all-time "$SOURCE_DATE_EPOCH" >/dev/null
	(cd "$HANG" && sha256sum squashfs.img >SHA256SUMS)
	rm -rf "$tmp"
	cp "$v2/key" "$HANG/key"
}

prepare() {
	hang_v2
	TESTS_FILES=("$HANG/squashfs.img" "$HANG/SHA256SUMS")
	trial_file_on_flash
}

guest() {
	cat <<'G'
check_live_root
check booted-v1 test "$(cat /etc/liveroot-version)" = 1
check wd-present test -c /dev/watchdog
check wd-not-armed sh -c '! liveinit state get watchdog && test "$(cat /sys/class/watchdog/watchdog0/state)" = inactive'
check panic-10 test "$(cat /proc/sys/kernel/panic)" = 10
mkdir -p /run/live/ram && cp $T/squashfs.img $T/SHA256SUMS /run/live/ram/
liveinit state set booted=ram image_file=/run/live/ram/squashfs.img
if syncflash >/tmp/sf.out 2>&1; then ok synced; else fail synced "exit $?: $(cat /tmp/sf.out)"; fi
eval "$(liveinit trial status --file /run/live/medium/LiveOS/trial.state)"
check on-trial test "$TRIAL_STATUS" = trial
check tries-2 test "$TRIAL_LEFT" = 2
G
}

# uptimes LOG: the init-exec stamp's uptime and the last "hung at" uptime, in whole seconds.
uptimes() {
	local exec last
	exec=$(grep -aoE 'liveroot-stamp init-exec [0-9.]+' <<<"$1" | tail -n1 | awk '{ print int($3) }')
	last=$(grep -aoE 'trial-v2: hung at [0-9.]+' <<<"$1" | tail -n1 | awk '{ print int($4) }')
	echo "${exec:-x} ${last:-x}"
}

verify() {
	local fb=$RUNDIR/v1.sh good=$RUNDIR/v3.sh nothing=$RUNDIR/nothing.sh n log t0 t1 up e l
	local V3=$BUILD/trial-v3
	make_version "$V3" 3 0
	: >"$nothing"
	t0=$(date +%s)
	for n in 1 2; do
		t1=$(date +%s)
		boot_again "$HANG_APPEND" 150 "$nothing" "$FLASH"
		log=$(tr -d '\r' <"$RUNDIR/console.log")
		[[ $QEMU_RC == 0 ]] || problem "v2 boot $n: QEMU ended with $QEMU_RC (124: the harness's timeout), not by the watchdog's reset"
		grep -aq "is on trial: try $n of 2, $((2 - n)) left" <<<"$log" || problem "v2 boot $n: no 'try $n of 2' line"
		grep -aq "watchdog: /dev/watchdog armed: a reset in $WD s" <<<"$log" || problem "v2 boot $n: /init did not arm the watchdog"
		grep -aq 'trial-v2: hung at' <<<"$log" || problem "v2 boot $n: v2's init did not run"
		grep -aqE 'Kernel panic|reboot: (Restarting|Power down)' <<<"$log" && problem "v2 boot $n: ended by the kernel, not by a watchdog reset"
		read -r e l <<<"$(uptimes "$log")"
		if [[ $e == x || $l == x ]]; then
			problem "v2 boot $n: no init-exec stamp or hung line"
		else
			# The reset comes $WD s after /init armed it (just before init-exec); the last line
			# is at most 2 s (its period) + rounding before the reset.
			((l - e >= WD - 4 && l - e <= WD + 4)) || problem "v2 boot $n: last sign of life $((l - e)) s after /init left, not about $WD s"
			echo "    v2 boot $n: reset by the watchdog about $((l - e)) s after switch_root; QEMU ran $(($(date +%s) - t1)) s (timeout 150)"
		fi
	done

	cat >"$fb" <<G
check_live_root
check booted-v1 test "\$(cat /etc/liveroot-version)" = 1
check old-pair test "\$(liveinit state get medium_pair)" = old
check fallback-reason sh -c 'liveinit state get fallback_reason | grep -q "failed its trial: 2 boots without mark-good"'
check no-trial-key sh -c '! liveinit state get trial'
check not-armed sh -c '! liveinit state get watchdog && test "\$(cat /sys/class/watchdog/watchdog0/state)" = inactive'
mkdir -p /run/live/ram && cp \$T/squashfs.img \$T/SHA256SUMS /run/live/ram/
liveinit state set booted=ram image_file=/run/live/ram/squashfs.img
if syncflash >/tmp/sf.out 2>&1; then ok synced-v3; else fail synced-v3 "exit \$?: \$(cat /tmp/sf.out)"; fi
G
	TESTS_FILES=("$V3/squashfs.img" "$V3/SHA256SUMS")
	boot_again "$HANG_APPEND" 150 "$fb" "$FLASH"
	up=$(($(date +%s) - t0))
	for m in root-md7 booted-v1 old-pair fallback-reason no-trial-key not-armed synced-v3 done; do
		marker "$m" || problem "fallback boot: no 'LIVEROOT-TEST ok $m'"
	done
	TESTS_FILES=()

	cat >"$good" <<G
check_live_root
check booted-v3 test "\$(cat /etc/liveroot-version)" = 3
check trial-1 test "\$(liveinit state get trial)" = 1
check armed test "\$(liveinit state get watchdog)" = $WD
check wd-active test "\$(cat /sys/class/watchdog/watchdog0/state)" = active
check wd-timeout test "\$(cat /sys/class/watchdog/watchdog0/timeout)" = $WD
# Held by another process (as a watchdog daemon would): disarm leaves it to it, exit 0.
exec 3>/dev/watchdog
check busy-left sh -c 'liveinit watchdog disarm 2>/tmp/d.err && grep -q "busy: the OS.s watchdog daemon holds it" /tmp/d.err'
exec 3>&-
check still-active test "\$(cat /sys/class/watchdog/watchdog0/state)" = active
check marked sh -c 'liveinit mark-good 2>/tmp/m.err | grep -q "marked good" && grep -q "/dev/watchdog disarmed" /tmp/m.err'
check wd-inactive test "\$(cat /sys/class/watchdog/watchdog0/state)" = inactive
check state-cleared test -z "\$(liveinit state get watchdog)"
check idempotent sh -c 'liveinit mark-good 2>&1 | grep -q "is already good"'
sleep $((WD + 10))
ok alive-after-$((WD + 10))s
check panic-10 test "\$(cat /proc/sys/kernel/panic)" = 10
done_tests
echo "trial-hang: sysrq crash"
echo c >/proc/sysrq-trigger
G
	t1=$(date +%s)
	boot_again "$HANG_APPEND" 200 "$good" "$FLASH"
	log=$(tr -d '\r' <"$RUNDIR/console.log")
	for m in root-md7 booted-v3 trial-1 armed wd-active wd-timeout busy-left still-active marked wd-inactive state-cleared idempotent "alive-after-$((WD + 10))s" panic-10 done; do
		marker "$m" || problem "v3 boot: no 'LIVEROOT-TEST ok $m'"
	done
	[[ $QEMU_RC == 0 ]] || problem "v3 boot: QEMU ended with $QEMU_RC (124: the harness's timeout), not by the panic's reboot"
	grep -aq 'Kernel panic - not syncing: sysrq triggered crash' <<<"$log" || problem "v3 boot: no sysrq panic"
	grep -aq 'Rebooting in 10 seconds' <<<"$log" || problem "v3 boot: the panic did not reboot after /init's 10 s"
	echo "    v3 boot: up $WD+10 s after mark-good; the panic rebooted it; QEMU ran $(($(date +%s) - t1)) s (timeout 200)"
	local fs
	fs=$(all_fails)
	[[ -n $fs ]] && problem "$fs"
	echo "    measured: a hanging v2's first boot to v1 up: 3 boots, ${up}s (TCG, rd.live.watchdog=$WD, rd.live.tries=2)"
}
