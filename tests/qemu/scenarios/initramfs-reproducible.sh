# The same inputs give the same initramfs bytes.
DESC="initramfs built twice is byte-identical"
HOST_ONLY=1
verify() {
	local a=$RUNDIR/a.cpio.gz b=$RUNDIR/b.cpio.gz
	if [[ -n $STOCK ]]; then
		"$TOP/mk/stockinit/build.sh" "$a" >/dev/null && sleep 1 && "$TOP/mk/stockinit/build.sh" "$b" >/dev/null
	else
		"$TOP/mk/mkinitramfs.sh" "$a" >/dev/null && sleep 1 && "$TOP/mk/mkinitramfs.sh" "$b" >/dev/null
	fi || { problem "building the initramfs failed"; return; }
	cmp -s "$a" "$b" || problem "two builds differ: $(cmp "$a" "$b" 2>&1)"
	[[ -n $STOCK ]] || cmp -s "$a" "$INITRD" || problem "differs from $INITRD (stale build?)"
}
