# A release whose kernel never reaches /init falls back by itself: OVMF (systemd-boot), the
# stick on USB. See tests/qemu/debian-badkernel.inc.
FIRMWARE=uefi
FLASH_BUS=usb
DESC="Debian: a release whose kernel panics before /init falls back to the previous one (OVMF, USB)"
. "$TOP/tests/qemu/debian-badkernel.inc"
