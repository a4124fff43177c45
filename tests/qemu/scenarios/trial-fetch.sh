# Never brick, fetched images: a signed v2 on the server whose /sbin/init exits. Each boot fetches
# it into RAM and, since it is not on the flash, its trial begins at its first boot (3 tries,
# recorded in the flash's LiveOS/trial.state). After three panics the 4th boot fetches it, finds
# its tries used up, tears it down and boots the local v1 (fallback_reason=). The 5th boot does
# not fetch v2 again (--newer-than the failed version). A v3 put on the server later is fetched,
# on trial (trial=2), and marks itself good: no floor while it is only in RAM (the flash's v1 must
# boot without the network); syncflash writes it, its good record goes on from the flash and the
# floor rises to 3 then.
. "$TOP/tests/qemu/fetch-lib.sh"
. "$TOP/tests/qemu/syncflash-lib.sh"
. "$TOP/tests/qemu/trial-lib.sh"
DESC="fetched v2 whose init exits: 3 tries, then v1 by itself; v2 not fetched again, v3 later is"
MEDIUM=fetch/flash-v1.img
FLASH_UNCHANGED=
TIMEOUT=240
EXPECT="root-md7"

prepare() {
	trial_bad_v2
	local t
	t=$(mktemp -d)
	"$BUILD/liveroot" liveinit trial create "$t/trial.state"
	printf 'cd /LiveOS\nwrite %s trial.state\n' "$t/trial.state" | debugfs -w -f - "$FLASH" >/dev/null 2>&1
	rm -rf "$t"
	fetch_server ok trialbad
	QEMU_EXTRA=()
}
guest() { echo check_live_root; }

verify() {
	local v1=$RUNDIR/v1.sh v3=$RUNDIR/v3.sh n log m
	cat >"$v1" <<'G'
check_live_root
check booted-local test "$(liveinit state get booted)" = local
check version-1 test "$(liveinit state get image_version)" = 1
check fallback-reason sh -c 'liveinit state get fallback_reason | grep -q "version 2 failed its trial: 3 boots without mark-good"'
check no-trial-key sh -c '! liveinit state get trial'
G
	cat >"$v3" <<'G'
check_live_root
check booted-net test "$(liveinit state get booted)" = net
check version-3 test "$(liveinit state get image_version)" = 3
check trial-2 test "$(liveinit state get trial)" = 2
check marked sh -c 'liveinit mark-good | grep -q "version 3 marked good; the trial is over (the floor rises when syncflash writes it)"'
eval "$(liveinit trial status)"
check no-floor-in-ram test "${TRIAL_FLOOR:-0}" -lt 3
if syncflash >/tmp/sf.out 2>&1; then ok synced; else fail synced "exit $?: $(cat /tmp/sf.out)"; fi
cat /tmp/sf.out
check trial-kept grep -q "the image's trial goes on from the flash (good, floor 3)" /tmp/sf.out
eval "$(liveinit trial status)"
check floor-3 test "$TRIAL_FLOOR" = 3
check failed-2 test "$TRIAL_FAILED" = 2
G
	for n in 1 2 3; do
		net_boot trialbad "$v1" panic=1
		log=$(tr -d '\r' <"$RUNDIR/console.log")
		grep -aq "version 2 is on trial: try $n of 3" <<<"$log" || problem "fetched v2 boot $n: no 'try $n of 3' line"
		grep -aq 'trial-v2: init exits at once' <<<"$log" || problem "fetched v2 boot $n: v2's init did not run"
	done
	net_boot trialbad "$v1" panic=1
	for m in root-md7 booted-local version-1 fallback-reason no-trial-key done; do
		marker "$m" || problem "fallback boot: no 'LIVEROOT-TEST ok $m'"
	done
	grep -aq 'fetch: .*trial: version 2 failed its trial.*booting the local image' <(tr -d '\r' <"$RUNDIR/console.log") ||
		problem "fallback boot: the console does not say why"
	# No fallback in this boot: v2 is not fetched at all, the local v1 is the primary.
	grep -v fallback-reason "$v1" >"$RUNDIR/plain.sh"
	net_boot trialbad "$RUNDIR/plain.sh" panic=1
	for m in root-md7 booted-local version-1 no-trial-key done; do
		marker "$m" || problem "boot after the fallback: no 'LIVEROOT-TEST ok $m'"
	done
	grep -aq 'fetch: .*already up to date (version 2); booting the local image' <(tr -d '\r' <"$RUNDIR/console.log") ||
		problem "boot after the fallback: v2 was not skipped as already up to date (the failed version)"
	net_boot v3 "$v3" panic=1
	for m in root-md7 booted-net version-3 trial-2 marked no-floor-in-ram synced trial-kept floor-3 failed-2 done; do
		marker "$m" || problem "v3 boot: no 'LIVEROOT-TEST ok $m'"
	done
	fetch_stop
	local fs
	fs=$(all_fails)
	[[ -n $fs ]] && problem "$fs"
}
