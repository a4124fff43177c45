# The `make flash` image under UEFI (OVMF) on virtio: the firmware starts \EFI\BOOT\BOOTX64.EFI
# (systemd-boot, the removable-media path: no boot entry in NVRAM), which loads the kernel and
# initramfs named by loader/entries/liveroot.conf; /init boots the verified image to md7.
. "$TOP/tests/qemu/flash-lib.sh"
DESC="make flash image under OVMF, systemd-boot: live root on md7"
FIRMWARE=uefi
FLASH_BUS=virtio
TIMEOUT=420
EXPECT="root-md7 md7-member-live-rw medium-partition medium-fat32 image-verified image-on-medium squashfs-mounted cmdline-ends-with-append uefi-boot via-systemd-boot"
prepare() { flash_prepare; }
guest() {
	flash_guest_checks '/dev/vd[a-z]1'
	cat <<'G'
check uefi-boot test -d /sys/firmware/efi
# systemd-boot puts initrd=\boot\initrd.img (its path, with backslashes) first on the line.
# (Its LoaderEntrySelected EFI variable would say more, but efivarfs is a module the sample OS
# does not have.)
check via-systemd-boot sh -c 'case "$(cat /proc/cmdline)" in "initrd=\\boot\\initrd.img "*) true ;; *) false ;; esac'
G
}
verify() {
	not_kernel_boot
	grep -aq 'BdsDxe: starting .*UEFI' "$RUNDIR/console.log" || problem "no 'BdsDxe: starting' line: OVMF did not start a boot option"
	flash_entries_end_with_append "$FLASH"
}
