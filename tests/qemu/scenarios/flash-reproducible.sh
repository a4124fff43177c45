# make flash: the same inputs give the same bytes (two builds a second apart, into two names), and
# bad input is refused with `mkflash: object: reason`, leaving nothing behind.
DESC="make flash built twice is byte-identical; bad input refused, nothing left"
HOST_ONLY=1
verify() {
	local a=$RUNDIR/out/a.img b=$RUNDIR/out/b.img
	mkdir -p "$RUNDIR/out"
	# SETTINGS: a file for LiveOS/settings, checked; one with a key it may not set, one with a
	# bad value: refused below.
	printf '# box\nlive.fetch=http://10.0.2.100/img/\nrd.live.machine_id=box-7\n' >"$RUNDIR/good.settings"
	printf 'live.fetch=http://10.0.2.100/img/\nrd.break\n' >"$RUNDIR/bad.settings"
	printf 'live.fetch=https://10.0.2.100/img/\n' >"$RUNDIR/badval.settings"
	make -s -C "$TOP" flash FLASH="$a" APPEND="quiet x=1" SETTINGS="$RUNDIR/good.settings" >"$RUNDIR/a.log" 2>&1 &&
		sleep 1 && make -s -C "$TOP" flash FLASH="$b" APPEND="quiet x=1" SETTINGS="$RUNDIR/good.settings" >"$RUNDIR/b.log" 2>&1 ||
		{ problem "make flash failed: $(tail -n 3 "$RUNDIR"/[ab].log | tr '\n' ' ')"; return; }
	cmp -s "$a" "$b" || problem "two builds differ: $(cmp "$a" "$b" 2>&1)"
	# The MBR: syslinux's code in the first 440 bytes, one active 0x0c partition at 2048.
	cmp -s -n 440 "$a" /usr/lib/syslinux/mbr/mbr.bin || problem "the MBR code is not syslinux's mbr.bin"
	sfdisk -d "$a" 2>/dev/null | grep -qE 'start= *2048, size= *[0-9]+, type=c, bootable' ||
		problem "partition table: $(sfdisk -d "$a" 2>&1 | tr '\n' ' ')"
	local f
	for f in /boot/vmlinuz /boot/initrd.img /boot/syslinux/ldlinux.sys /boot/syslinux/ldlinux.c32 \
		/boot/syslinux/syslinux.cfg /boot/syslinux/mbr.bin /EFI/BOOT/BOOTX64.EFI /loader/loader.conf \
		/loader/entries/liveroot.conf /LiveOS/squashfs.img /LiveOS/SHA256SUMS /LiveOS/settings; do
		MTOOLS_SKIP_CHECK=1 mdir -a -i "$a@@1M" "::$f" >/dev/null 2>&1 || problem "$f: not on the flash"
	done
	cmp -s <(MTOOLS_SKIP_CHECK=1 mtype -i "$a@@1M" ::/LiveOS/settings 2>/dev/null) "$RUNDIR/good.settings" ||
		problem "LiveOS/settings is not the SETTINGS file"
	[[ $(blkid -o value -s LABEL --probe --offset 1048576 "$a" 2>/dev/null) == LIVE ]] ||
		problem "the partition's label is not LIVE: $(blkid --probe --offset 1048576 "$a" 2>&1)"
	# Refusals: DIR without squashfs.img, bad labels, too small: message, exit 1, no file.
	mkdir -p "$RUNDIR/empty"
	# Also: an unsigned image with PUBKEY, and files that do not match SHA256SUMS (the boot would
	# refuse both).
	# Secure Boot: one of the pair only, a key that is not the certificate's, an encrypted key.
	local -a cases=("SQUASHFS=$RUNDIR/empty" "LABEL=TOOLONGLABEL" "LABEL=li.ve" "SIZE_MIB=64 SQUASHFS=$RUNDIR/big"
		"PUBKEY=$RUNDIR/key.pub SQUASHFS=$RUNDIR/big" "SQUASHFS=$RUNDIR/bad"
		"SB_KEY=$RUNDIR/other.key" "SB_CERT=$SB_TEST_CERT" "SB_KEY=$RUNDIR/other.key SB_CERT=$SB_TEST_CERT"
		"SB_KEY=$SB_TEST_KEY SB_CERT=$SB_TEST_CERT" "SETTINGS=$RUNDIR/bad.settings" "SETTINGS=$RUNDIR/badval.settings")
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$RUNDIR/other.key" 2>/dev/null
	mkdir -p "$RUNDIR/big" "$RUNDIR/bad"
	head -c $((70 << 20)) /dev/zero >"$RUNDIR/big/squashfs.img"
	(cd "$RUNDIR/big" && sha256sum squashfs.img >SHA256SUMS)
	echo x >"$RUNDIR/bad/squashfs.img"
	(cd "$RUNDIR/bad" && sha256sum squashfs.img >SHA256SUMS && echo y >squashfs.img)
	minisign -G -W -f -p "$RUNDIR/key.pub" -s "$RUNDIR/key.sec" >/dev/null
	local c out rc
	for c in "${cases[@]}"; do
		# shellcheck disable=SC2086
		out=$(make -s -C "$TOP" flash FLASH="$RUNDIR/out/bad.img" $c 2>&1) && rc=0 || rc=$?
		((rc != 0)) || problem "$c: accepted"
		grep -qE '^mkflash: [^:]+: .+' <<<"$out" || problem "$c: no 'mkflash: object: reason' line: $out"
		[[ $c != SETTINGS=*/bad.settings ]] || grep -qxF "mkflash: $RUNDIR/bad.settings: rd.break: not allowed here (it would open a shell before the system's own start-up)" <<<"$out" ||
			problem "$c: not 'mkflash: FILE: rd.break: not allowed here (...)': $out"
		[[ -e $RUNDIR/out/bad.img ]] && problem "$c: left $RUNDIR/out/bad.img"
		ls -A "$RUNDIR/out" | grep -q mkflash && problem "$c: left a temporary directory"
	done
	rm -rf "$RUNDIR/out" "$RUNDIR/big"
}
