# Issue 18 item 4: a medium WITHOUT LiveOS/trial.state (fetch/flash-v1.img, made with stock tools:
# a flash made by hand or before trials) still stops a crash loop. The server's v2 exits at once
# (trial_bad_v2). The first boot without live.fetch creates nothing. The first fetch of v2 creates
# the trial file (the medium remounted rw for that one write, said on the console) and begins v2's
# trial with rd.live.tries=2; the second boot finds the file and takes the last try; the third
# boots v1 by itself (tries + 1 power-ons, within tries + 2). A fourth boot does not fetch v2 again
# and writes nothing. The console said "created" exactly once. Then the same medium write-protected:
# the fetched v2 does not boot untried (v1 does, saying why) unless rd.live.tries=0.
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

# ro_boot SCRIPT APPEND: net_boot (fetch-lib.sh) of trialbad from a fresh copy of the medium
# attached read-only, as a write-protected card is.
ro_boot() {
	local n=1
	while [[ -e $RUNDIR/console.$n.log ]]; do n=$((n + 1)); done
	mv "$RUNDIR/console.log" "$RUNDIR/console.$n.log"
	make_flash "$BUILD/$MEDIUM" "$RUNDIR/ro.img"
	{ echo ". /run/tests/lib.sh"; cat "$1"; echo done_tests; } >"$RUNDIR/test.$n.sh"
	make_tests_disk "$RUNDIR/tests.$n.img" "$RUNDIR/test.$n.sh" || { problem "cannot build the TESTS disk"; return 1; }
	QEMU_EXTRA=("${NET_ARGS[@]}" -drive "file=$RUNDIR/ro.img,format=raw,if=none,id=again1,readonly=on" -device "virtio-blk-pci,drive=again1"
		-drive "file=$RUNDIR/tests.$n.img,format=raw,if=none,id=again2" -device "virtio-blk-pci,drive=again2")
	qemu_start "$RUNDIR" "$(fetch_append http://10.0.2.100/ok/trialbad/) $2" "" "" 200
	QEMU_EXTRA=()
	qemu_wait
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
	# A medium that cannot be written (a write-protected card: the disk read-only): no file can be
	# made, so the fetched v2 does not boot untried; v1 does, saying why. rd.live.tries=0 asks
	# for untried boots: then v2 boots, with nothing written.
	cat >"$RUNDIR/ro.sh" <<'G'
check_live_root
check booted-local test "$(liveinit state get booted)" = local
check version-1 test "$(liveinit state get image_version)" = 1
check ro-reason sh -c 'liveinit state get fallback_reason | grep -q "does not boot untried (rd.live.tries=0 allows that)"'
check no-trial-file test ! -e /run/live/medium/LiveOS/trial.state
G
	ro_boot "$RUNDIR/ro.sh" "panic=1 rd.live.tries=2"
	for m in root-md7 booted-local version-1 ro-reason no-trial-file done; do
		marker "$m" || problem "write-protected medium: no 'LIVEROOT-TEST ok $m'"
	done
	grep -aq 'trial: .*trial.state: missing, and the medium cannot be written' <(tr -d '\r' <"$RUNDIR/console.log") ||
		problem "write-protected medium: the console does not say the file cannot be created"
	# (v2's init exits at once: no guest script runs there; the console tells.)
	echo check_live_root >"$RUNDIR/ro0.sh"
	ro_boot "$RUNDIR/ro0.sh" "panic=1 rd.live.tries=0"
	log=$(tr -d '\r' <"$RUNDIR/console.log")
	grep -aq 'version 2: rd.live.tries=0: boots untried' <<<"$log" ||
		problem "write-protected medium, rd.live.tries=0: no 'version 2: rd.live.tries=0: boots untried' line"
	grep -aq 'trial-v2: init exits at once' <<<"$log" ||
		problem "write-protected medium, rd.live.tries=0: v2 did not boot"
	grep -aq 'is on trial' <<<"$log" && problem "write-protected medium, rd.live.tries=0: an image went on trial"
	fetch_stop
	local fs
	fs=$(all_fails)
	[[ -n $fs ]] && problem "$fs"
}
