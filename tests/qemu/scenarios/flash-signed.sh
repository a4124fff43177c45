# The contract's form, `make flash SQUASHFS=DIR PUBKEY=file LABEL=L FLASH=out.img APPEND=...`:
# a signed image (version=2) with the key baked into the flash's initramfs, another label, booted
# as a USB stick under OVMF. The boot finds the partition by that label and checks the signature.
. "$TOP/tests/qemu/flash-lib.sh"
. "$TOP/tests/qemu/syncflash-lib.sh"
DESC="make flash SQUASHFS=DIR PUBKEY=key LABEL=STICK2: signed image boots from USB under OVMF"
FIRMWARE=uefi
FLASH_BUS=usb
TIMEOUT=420
SIGNED_APPEND="rd.live.image panic=-1 loglevel=4 liveroot.test=signed-end"
EXPECT="root-md7 md7-member-live-rw booted-v2 verified-sig medium-label medium-partition cmdline-ends-with-append uefi-boot"
prepare() {
	local dir=$RUNDIR/dir k=$BUILD/syncflash-key out=$RUNDIR/signed.img
	make_version "$BUILD/syncflash-v2" 2 0
	[[ -f $k/sec ]] || { mkdir -p "$k" && minisign -G -W -f -p "$k/pub" -s "$k/sec" >/dev/null; }
	mkdir -p "$dir"
	cp "$BUILD/syncflash-v2/squashfs.img" "$BUILD/syncflash-v2/SHA256SUMS" "$dir/"
	minisign -S -s "$k/sec" -m "$dir/SHA256SUMS" -x "$dir/SHA256SUMS.minisig" -t "version=2" >/dev/null
	if ! make -s -C "$TOP" flash SQUASHFS="$dir" PUBKEY="$k/pub" LABEL=STICK2 FLASH="$out" \
		APPEND="$SIGNED_APPEND" >"$RUNDIR/make-flash.log" 2>&1; then
		problem "make flash failed: $(tail -n 3 "$RUNDIR/make-flash.log" | tr '\n' ' ')"
		: >"$FLASH"
		return
	fi
	make_flash "$out" "$FLASH"
	rm -f "$out" "$(dirname "$out")/.$(basename "$out").stamp"
}
guest() {
	cat <<G
check_live_root
check booted-v2 test "\$(cat /etc/liveroot-version)" = 2
check verified-sig test "\$(liveinit state get verified)" = sig
check medium-label test "\$(liveinit state get medium_spec)" = LABEL=STICK2
check medium-partition sh -c 'case "\$(liveinit state get medium)" in /dev/sd[a-z]1) true ;; *) false ;; esac'
check uefi-boot test -d /sys/firmware/efi
entry=\$(sed -e 's/^initrd=[^ ]* //' /proc/cmdline)
case "\$entry" in
"root=live:LABEL=STICK2 "*" $SIGNED_APPEND") ok cmdline-ends-with-append ;;
*) fail cmdline-ends-with-append "\$entry" ;;
esac
G
}
verify() { not_kernel_boot; }
