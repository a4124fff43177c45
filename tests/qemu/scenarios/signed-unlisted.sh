# A key is built in and LiveOS/SHA256SUMS is correctly signed, but it lists only other.img (which
# is there and matches): it vouches for nothing about squashfs.img, which must not boot.
DESC="signed manifest that does not list the image → refused at verify, nothing mounted"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=fetch/flash-unlisted.img
EXPECT="no-squashfs-mounted no-md7"
drive() {
	refused_before_mounting 'liveroot: verify: .*does not list squashfs.img' "'verify: ... does not list squashfs.img'"
}
verify() {
	not_booted
}
