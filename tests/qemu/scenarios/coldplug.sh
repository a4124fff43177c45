# The flash is a USB stick on a qemu-xhci controller and nothing else: the boot sees it only when
# `liveinit coldplug` (through find-medium --coldplug) has loaded xhci_pci for the controller,
# then usb-storage for the stick, then sd_mod for its disk, each by the devices' modalias. /init
# itself names no hardware driver.
DESC="flash on USB only: drivers by modalias (xhci_pci, usb-storage, sd_mod), root on md7"
FLASH_BUS=usb
APPEND="root=live:LABEL=$LIVE_LABEL rd.live.image rd.retry=60"
EXPECT="root-md7 md7-member-live-rw root-readable medium-on-usb drivers-loaded coldplug-in-kmsg"
skip() { [[ -n $STOCK ]] && echo "the stock initramfs loads a fixed list"; }
guest() {
	cat <<'G'
check_live_root
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
	local log d=$RUNDIR/x
	log=$(tr -d '\r' <"$RUNDIR/console.log")
	grep -aqE 'coldplug: loaded .*xhci_pci' <<<"$log" || problem "the console does not say coldplug loaded xhci_pci"
	grep -aqE 'coldplug: loaded .*usb_storage' <<<"$log" || problem "the console does not say coldplug loaded usb_storage"
	mkdir -p "$d"
	(cd "$d" && gzip -dc "$INITRD" | cpio -id --quiet init 2>/dev/null) || { problem "cannot unpack /init from $INITRD"; return; }
	local m
	for m in xhci_pci ehci_pci usb_storage usb-storage uas sd_mod virtio_pci virtio_blk virtio_net e1000 ahci ata_piix nvme sdhci_pci mmc_block; do
		grep -qw -- "$m" "$d/init" && problem "/init names the hardware driver $m"
	done
	return 0
}
