# The `make flash` image on IDE (a CF card on an IDE adapter) under SeaBIOS: the BIOS runs the
# MBR code, syslinux loads the kernel and initramfs from the FAT32 partition, /init finds the
# partition by LABEL=LIVE behind the PATA driver and boots the verified image to root on md7.
. "$TOP/tests/qemu/flash-lib.sh"
DESC="make flash image on IDE (CF card), SeaBIOS + syslinux: live root on md7"
FIRMWARE=bios
FLASH_BUS=ide
TIMEOUT=300
EXPECT="root-md7 md7-member-live-rw medium-partition medium-fat32 image-verified image-on-medium squashfs-mounted cmdline-ends-with-append via-syslinux"
prepare() { flash_prepare; }
guest() {
	flash_guest_checks '/dev/sd[a-z]1'
	# syslinux puts BOOT_IMAGE= first; no -kernel boot has it.
	echo 'check via-syslinux sh -c "grep -q \"^BOOT_IMAGE=/boot/vmlinuz \" /proc/cmdline"'
}
verify() {
	not_kernel_boot
	grep -aq 'SYSLINUX 6' "$RUNDIR/console.log" || problem "no SYSLINUX banner on the serial console"
	flash_entries_end_with_append "$FLASH"
}
