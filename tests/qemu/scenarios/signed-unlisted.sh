# A key is built in and LiveOS/SHA256SUMS is correctly signed, but it lists only other.img (which
# is there and matches): it vouches for nothing about squashfs.img, which must not boot.
DESC="signed manifest that does not list the image → refused at verify, nothing mounted"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=fetch/flash-unlisted.img
EXPECT="no-squashfs-mounted no-md7"
drive() {
	if ! wait_for 'liveroot: verify: .*does not list squashfs.img' "$TIMEOUT"; then
		problem "no 'verify: ... does not list squashfs.img' line"
		return
	fi
	sleep 3
	send 'grep -q squashfs /proc/mounts && echo LIVEROOT-TEST" FAIL" no-squashfs-mounted: squashfs mounted || echo LIVEROOT-TEST" ok" no-squashfs-mounted'
	send 'test -b /dev/md7 && echo LIVEROOT-TEST" FAIL" no-md7: md7 exists || echo LIVEROOT-TEST" ok" no-md7'
	wait_for 'LIVEROOT-TEST (ok|FAIL) no-md7' 30
	qemu_quit
	ENDED_BY_DRIVE=1
}
verify() {
	grep -aq 'sample-os: up' "$RUNDIR/console.log" && problem "the sample OS booted anyway"
	return 0
}
