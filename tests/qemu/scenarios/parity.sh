# dmsnap/mdmirror against dmsetup/mdadm in the live system (the tools ride on the TESTS disk:
# test image only). Runs tests/qemu/dmsnap-check.sh and tests/qemu/mdmirror-check.sh; each is
# sourced by the guest after lib.sh and reports with ok/fail itself; a nonzero exit also fails.
# mdmirror-check gets a scratch disk of its own (serial SCRATCH) and md9, since md7 is the root.
DESC="dmsetup/mdadm parity checks"
TOOLS="dmsetup mdadm"
TIMEOUT=300
checks=("$TOP/tests/qemu/dmsnap-check.sh" "$TOP/tests/qemu/mdmirror-check.sh")
TESTS_FILES=("${checks[@]}")
EXPECT="root-md7"
for c in "${checks[@]}"; do EXPECT="$EXPECT $(basename "$c" .sh)"; done
prepare() {
	truncate -s 96M "$RUNDIR/scratch.img"
	QEMU_EXTRA+=(-drive "file=$RUNDIR/scratch.img,format=raw,if=none,id=scratchdrv"
		-device "virtio-blk-pci,drive=scratchdrv,id=scratch,serial=SCRATCH")
}
guest() {
	echo check_live_root
	echo 'SCRATCH=; for s in /sys/block/vd*/serial; do [ "$(cat "$s")" = SCRATCH ] && SCRATCH=${s%/serial}; done'
	echo '[ -n "$SCRATCH" ] && SCRATCH=/dev/${SCRATCH##*/} || fail scratch "no disk with serial SCRATCH"'
	for c in "${checks[@]}"; do
		c=$(basename "$c")
		if [[ $c == mdmirror-check.sh ]]; then
			printf 'if (MDCHECK_MD=md9; set -- "$SCRATCH"; . "$T/%s"); then ok %s; else fail %s "exit $?"; fi\n' "$c" "${c%.sh}" "${c%.sh}"
		else
			printf 'if (. "$T/%s"); then ok %s; else fail %s "exit $?"; fi\n' "$c" "${c%.sh}" "${c%.sh}"
		fi
	done
}
