# make release is reproducible: the same Debian root, key, version and SOURCE_DATE_EPOCH, made
# twice into two directories, give the same bytes in every file (the image, its sidecars and
# index, the kernel, the initramfs, SHA256SUMS). The signature differs only if minisign's does
# (it signs deterministically: Ed25519), so it is compared too. Host only; make test-all.
. "$TOP/tests/qemu/debian-lib.sh"
DESC="make release twice from the same Debian root: the same bytes"
HOST_ONLY=1
verify() {
	local tar a=$RUNDIR/a b=$RUNDIR/b f
	tar=$("$TOP/tests/debian/root.sh" v1 2>"$RUNDIR/root.log") || { problem "Debian root: $(tail -n 2 "$RUNDIR/root.log")"; return; }
	debian_keys || { problem "no test key pair"; return; }
	for d in "$a" "$b"; do
		make -s -C "$TOP" release ROOTFS="$tar" KEY="$DEBIAN_KEYS/sec" PUBKEY="$DEBIAN_KEYS/pub" VERSION=7 \
			OUT="$d" MARK_GOOD=systemd >"$d.log" 2>&1 || { problem "make release: $(tail -n 2 "$d.log")"; return; }
	done
	for f in "$a"/*; do
		cmp -s "$f" "$b/${f##*/}" || problem "${f##*/} differs between two runs"
	done
	[[ $(ls "$a") == "$(ls "$b")" ]] || problem "the two runs made different files: $(ls "$a") / $(ls "$b")"
	rm -rf "$a" "$b"
}
