# `make initramfs MIN_VERSION=6` and a medium signed version 5: refused with the reason.
DESC="MIN_VERSION=6 initramfs, medium signed v5 → refused at verify with the reason"
. "$TOP/tests/qemu/fetch-lib.sh"
INITRD=$FETCH/initramfs-min6.cpio.gz
MEDIUM=fetch/flash-v5.img
EXPECT="no-squashfs-mounted no-md7"
drive() {
	if ! wait_for 'liveroot: verify: .*version 5 is below the minimum 6 built into the initramfs' "$TIMEOUT"; then
		problem "no 'verify: ... version 5 is below the minimum 6 built into the initramfs' line"
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
