# `make initramfs MIN_VERSION=6` and a medium signed version 5: refused with the reason.
DESC="MIN_VERSION=6 initramfs, medium signed v5 → refused at verify with the reason"
. "$TOP/tests/qemu/fetch-lib.sh"
INITRD=$FETCH/initramfs-min6.cpio.gz
MEDIUM=fetch/flash-v5.img
EXPECT="no-squashfs-mounted no-md7"
drive() {
	refused_before_mounting 'liveroot: verify: .*version 5 is below the minimum 6 built into the initramfs' "'verify: ... version 5 is below the minimum 6 built into the initramfs'"
}
verify() {
	not_booted
}
