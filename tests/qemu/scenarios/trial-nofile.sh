# Issue 18 item 4: a medium WITHOUT LiveOS/trial.state (fetch/flash-v1.img, made with stock tools:
# a flash made by hand or before trials) still stops a crash loop. The server's v2 exits at once
# (trial_bad_v2). The first boot without live.fetch creates nothing. The first fetch of v2 creates
# the trial file (the medium remounted rw for that one write, said on the console) and begins v2's
# trial with rd.live.tries=2; the second boot finds the file and takes the last try; the third
# boots v1 by itself (tries + 1 power-ons, within tries + 2). A fourth boot does not fetch v2 again
# and writes nothing. The console said "created" exactly once.
. "$TOP/tests/qemu/fetch-lib.sh"
. "$TOP/tests/qemu/syncflash-lib.sh"
. "$TOP/tests/qemu/trial-lib.sh"
DESC="no trial.state on the medium: the first fetched boot creates it; v2 crashing twice, then v1 by itself"
MEDIUM=fetch/flash-v1.img
FLASH_UNCHANGED=
TIMEOUT=240
EXPECT="root-md7 no-trial-file"

prepare() {
	trial_bad_v2
	fetch_server ok trialbad
	QEMU_EXTRA=()
}
# The first boot (no live.fetch): a local image needs no record, nothing is created.
guest() {
	echo check_live_root
	echo "check no-trial-file test ! -e /run/live/medium/LiveOS/trial.state"
}

verify() {
	local v1=$RUNDIR/v1.sh n log m sum
	debugfs -R "stat /LiveOS/trial.state" "$FLASH" 2>/dev/null | grep -q Inode &&
		problem "the boot without live.fetch created LiveOS/trial.state"
	cat >"$v1" <<'G'
check_live_root
check booted-local test "$(liveinit state get booted)" = local
check version-1 test "$(liveinit state get image_version)" = 1
check fallback-reason sh -c 'liveinit state get fallback_reason | grep -q "version 2 failed its trial: 2 boots without mark-good"'
check no-trial-key sh -c '! liveinit state get trial'
check trial-file test -f /run/live/medium/LiveOS/trial.state
eval "$(liveinit trial status)"
check failed-2 test "$TRIAL_FAILED" = 2
check status-failed test "$TRIAL_STATUS" = failed
G
	for n in 1 2; do
		net_boot trialbad "$v1" "panic=1 rd.live.tries=2"
		log=$(tr -d '\r' <"$RUNDIR/console.log")
		grep -aq "version 2 is on trial: try $n of 2" <<<"$log" || problem "fetched v2 boot $n: no 'try $n of 2' line"
		grep -aq 'trial-v2: init exits at once' <<<"$log" || problem "fetched v2 boot $n: v2's init did not run"
	done
	net_boot trialbad "$v1" "panic=1 rd.live.tries=2"
	for m in root-md7 booted-local version-1 fallback-reason no-trial-key trial-file failed-2 status-failed done; do
		marker "$m" || problem "fallback boot (power-on 3 of the fetch): no 'LIVEROOT-TEST ok $m'"
	done
	grep -aq 'fetch: .*trial: version 2 failed its trial.*booting the local image' <(tr -d '\r' <"$RUNDIR/console.log") ||
		problem "fallback boot: the console does not say why"
	# The loop is over: v2 is not fetched again, and the boot writes nothing.
	sum=$(sha256sum <"$FLASH")
	grep -v fallback-reason "$v1" >"$RUNDIR/plain.sh"
	net_boot trialbad "$RUNDIR/plain.sh" "panic=1 rd.live.tries=2"
	for m in root-md7 booted-local version-1 no-trial-key trial-file done; do
		marker "$m" || problem "boot after the fallback: no 'LIVEROOT-TEST ok $m'"
	done
	grep -aq 'fetch: .*already up to date (version 2); booting the local image' <(tr -d '\r' <"$RUNDIR/console.log") ||
		problem "boot after the fallback: v2 was not skipped as already up to date (the failed version)"
	[[ $(sha256sum <"$FLASH") == "$sum" ]] || problem "boot after the fallback: the flash changed"
	n=$(cat "$RUNDIR"/console*.log | tr -d '\r' | grep -ac 'liveroot: trial: created .*LiveOS/trial.state')
	[[ $n == 1 ]] || problem "the console said 'created LiveOS/trial.state' $n times, not once"
	debugfs -R "stat /LiveOS/trial.state" "$FLASH" 2>/dev/null | grep -q 'Size: 8192' ||
		problem "no 8 KiB LiveOS/trial.state on the flash afterwards"
	fetch_stop
	local fs
	fs=$(all_fails)
	[[ -n $fs ]] && problem "$fs"
}
