# A public key is baked in (make initramfs PUBKEY=file) and the flash's SHA256SUMS.minisig was
# made with another key: refused before anything from the image is mounted.
DESC="PUBKEY baked in, local manifest signed by another key → refused before mounting"
. "$TOP/tests/qemu/fetch-lib.sh"
MEDIUM=fetch/flash-badsig.img
EXPECT="no-squashfs-mounted no-md7"
drive() {
	refused_before_mounting 'liveroot: verify: .*signature verification failed' "'verify: ... signature verification failed'"
}
verify() {
	not_booted
}
