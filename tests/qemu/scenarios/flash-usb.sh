# The `make flash` image as a USB stick (xhci + usb-storage, the only device on that controller)
# under SeaBIOS: the BIOS runs the MBR code, syslinux loads the kernel and initramfs from the
# FAT32 partition, and /init, which names no hardware driver, sees the stick only once `liveinit
# coldplug` (through find-medium --coldplug) has loaded xhci_pci for the controller, then
# usb-storage for the stick, then sd_mod for its disk, each by the devices' modalias; it finds the
# partition by LABEL=LIVE and boots the verified image to root on md7.
. "$TOP/tests/qemu/flash-lib.sh"
DESC="make flash image as a USB stick, SeaBIOS + syslinux, drivers by modalias: live root on md7"
FIRMWARE=bios
FLASH_BUS=usb
TIMEOUT=300
EXPECT="root-md7 md7-member-live-rw medium-partition medium-fat32 image-verified image-on-medium
	squashfs-mounted cmdline-ends-with-append via-syslinux root-readable medium-on-usb drivers-loaded
	coldplug-in-kmsg"
skip() { [[ -n $STOCK ]] && echo "the stock initramfs loads a fixed list"; }
prepare() { flash_prepare; }
guest() {
	flash_guest_checks '/dev/sd[a-z]1'
	# syslinux puts BOOT_IMAGE= first; no -kernel boot has it.
	echo 'check via-syslinux sh -c "grep -q \"^BOOT_IMAGE=/boot/vmlinuz \" /proc/cmdline"'
	cat <<'G'
medium=$(sed -n 's/^medium=//p' /run/live/state)
echo "medium: $medium ($(readlink -f /sys/class/block/${medium#/dev/} 2>/dev/null))"
check medium-on-usb sh -c "readlink -f /sys/class/block/${medium#/dev/} | grep -q /usb"
check drivers-loaded sh -c 'for m in xhci_pci usb_storage sd_mod; do test -d /sys/module/$m || { echo "$m not loaded"; exit 1; }; done'
dmesg | grep 'liveroot: coldplug' || true
check coldplug-in-kmsg sh -c 'dmesg | grep "liveroot: coldplug: loaded" | grep -q xhci_pci && dmesg | grep "liveroot: coldplug: loaded" | grep -q usb_storage'
echo "modalias:"
find /sys/devices -name modalias -exec cat {} + 2>/dev/null | sort -u
G
}
verify() {
	not_kernel_boot
	grep -aq 'SYSLINUX 6' "$RUNDIR/console.log" || problem "no SYSLINUX banner on the serial console"
	flash_entries_end_with_append "$FLASH"
	local log d=$RUNDIR/x
	log=$(tr -d '\r' <"$RUNDIR/console.log")
	grep -aqE 'coldplug: loaded .*xhci_pci' <<<"$log" || problem "the console does not say coldplug loaded xhci_pci"
	grep -aqE 'coldplug: loaded .*usb_storage' <<<"$log" || problem "the console does not say coldplug loaded usb_storage"
	mkdir -p "$d"
	# The initramfs the firmware booted: the flash's own.
	MTOOLS_SKIP_CHECK=1 mcopy -n -i "$FLASH@@1M" ::/boot/initrd.img "$d/initrd.img" &&
		(cd "$d" && gzip -dc initrd.img | cpio -id --quiet init 2>/dev/null) || { problem "cannot unpack /init from the flash's initrd.img"; return; }
	local m
	for m in xhci_pci ehci_pci usb_storage usb-storage uas sd_mod virtio_pci virtio_blk virtio_net e1000 ahci ata_piix nvme sdhci_pci mmc_block; do
		grep -qw -- "$m" "$d/init" && problem "/init names the hardware driver $m"
	done
	return 0
}
