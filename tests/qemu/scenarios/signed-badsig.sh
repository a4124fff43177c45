# A public key is baked in (make initramfs PUBKEY=file) and the flash's SHA256SUMS.minisig was
# made with another key: refused before anything from the image is mounted.
DESC="PUBKEY baked in, local manifest signed by another key → refused before mounting"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=fetch/flash-badsig.img
EXPECT="no-squashfs-mounted no-md7"
drive() {
	if ! wait_for 'liveroot: verify: .*signature verification failed' "$TIMEOUT"; then
		problem "no 'verify: ... signature verification failed' line"
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
