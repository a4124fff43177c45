# Waiting for a medium that is not there, with the flash a USB stick: while it waits, find-medium
# says what it waits for and which drivers coldplug loaded; the error names them too.
DESC="flash on USB, unknown label: the wait says what it waits for and what it loaded"
FLASH_BUS=usb
APPEND="root=live:LABEL=NOSUCHLABEL rd.live.image rd.retry=8"
skip() { [[ -n $STOCK ]] && echo "the stock initramfs loads a fixed list"; }
drive() {
	refused_before_mounting 'NOSUCHLABEL: not found after 8 s' "find-medium timeout"
}
verify() {
	local log
	log=$(tr -d '\r' <"$RUNDIR/console.log")
	grep -aqE '^liveinit: find-medium: waiting for LABEL=NOSUCHLABEL \([5-7] s of 8; drivers loaded: .*xhci_pci.*usb_storage.*\)$' <<<"$log" ||
		problem "no wait line naming the label and the drivers loaded"
	grep -aqE '^liveroot: find-medium: LABEL=NOSUCHLABEL: not found after 8 s; found: sda \(ext4, LABEL=LIVE.*; drivers loaded: .*xhci_pci.*usb_storage.*sd_mod' <<<"$log" ||
		problem "the error does not list the USB disk and the drivers loaded"
	not_booted
}
