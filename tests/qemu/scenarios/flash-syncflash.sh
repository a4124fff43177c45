# syncflash on the partitioned flash of `make flash`: the box boots v1 from the stick through
# SeaBIOS, gets a signed v2 into /run/live/ram (as imgfetch leaves it; copied from the TESTS disk
# here), `syncflash` writes it to the FAT32 partition (found by LABEL=LIVE, mounted at
# /run/live/medium). The next firmware boot (no TESTS copy of v2, no network) boots v2 from the
# partition, verified, with v1 kept as the .old pair and the boot files untouched.
. "$TOP/tests/qemu/flash-lib.sh"
. "$TOP/tests/qemu/syncflash-lib.sh"
DESC="make flash image: fetched v2 synced to the FAT32 partition; next BIOS boot runs v2"
FIRMWARE=bios
FLASH_BUS=virtio
TIMEOUT=300
FLASH_UNCHANGED=
EXPECT="root-md7 booted-v1 medium-partition synced nothing-to-do medium-ro-again"
prepare() {
	flash_prepare || return
	signed_v2
	BOOT_SHA=$(boot_files_sha "$FLASH")
}
# The boot files on the flash's partition, one digest.
boot_files_sha() {
	local f
	for f in /boot/vmlinuz /boot/initrd.img /boot/syslinux/ldlinux.sys /boot/syslinux/syslinux.cfg \
		/EFI/BOOT/BOOTX64.EFI /loader/entries/liveroot.conf; do
		medium_sha "$1@@1M" "$f"
	done | sha256sum | cut -c1-64
}
guest() {
	sync_v2_guest "check medium-partition sh -c 'case \"\$(liveinit state get medium)\" in /dev/vd[a-z]1) true ;; *) false ;; esac'"
}
verify() {
	local f want fat=$FLASH@@1M
	for f in squashfs.img SHA256SUMS SHA256SUMS.minisig; do
		want=$(sha256sum <"$V2/$f" | cut -c1-64)
		[[ $(medium_sha "$fat" "/LiveOS/$f") == "$want" ]] || problem "flash LiveOS/$f is not v2's"
	done
	want=$(medium_sha "$FLASH_TEST_IMG@@1M" /LiveOS/squashfs.img)
	[[ $(medium_sha "$fat" /LiveOS/squashfs.img.old) == "$want" ]] || problem "flash LiveOS/squashfs.img.old is not v1"
	[[ $(boot_files_sha "$FLASH") == "$BOOT_SHA" ]] || problem "the boot files on the flash changed"
	cmp -s -n 440 "$FLASH" "$FLASH_TEST_IMG" || problem "the MBR code changed"
	local script=$RUNDIR/again.sh
	{
		v2_boot_checks
		cat <<'G'
check medium-partition sh -c 'case "$(liveinit state get medium)" in /dev/vd[a-z]1) true ;; *) false ;; esac'
check via-syslinux sh -c 'grep -q "^BOOT_IMAGE=/boot/vmlinuz " /proc/cmdline'
G
	} >"$script"
	FIRMWARE=bios boot_again "" 300 "$script" "$FLASH"
	not_kernel_boot
	local m
	for m in root-md7 booted-v2 verified primary-pair medium-partition via-syslinux done; do
		marker "$m" || problem "firmware boot from the synced flash: no 'LIVEROOT-TEST ok $m'"
	done
	local fs
	fs=$(tr -d '\r' <"$RUNDIR/console.log" | grep -aoE 'LIVEROOT-TEST FAIL .*')
	[[ -n $fs ]] && problem "boot from the synced flash: $fs"
}
